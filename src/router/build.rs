//! Config-time half of the router: validates every route, detects
//! conflicts while inserting into a mutable trie, and freezes that trie into
//! the flat arrays of [`Router`].

use std::collections::BTreeMap;

use ahash::AHashMap;

use super::parse::{self, HostSel, Key, MethodSel, Seg};
use super::{
    Edge, Group, MethodEntry, Node, RouteError, RouteSpec, Router, Span, Table, LINEAR_EDGES, NONE,
};

/// See [`Router::build`].
pub(super) fn build(routes: &[RouteSpec<'_>]) -> Result<Router, Vec<RouteError>> {
    let mut b = Builder::default();
    let mut errors = Vec::new();
    let total: usize = routes
        .iter()
        .map(|r| r.key.len() + r.host.map_or(0, str::len))
        .sum();
    if routes.len() >= (u32::MAX / 4) as usize || total >= (u32::MAX / 2) as usize {
        return Err(vec![RouteError {
            index: 0,
            other: None,
            message: "route table too large".into(),
        }]);
    }
    b.nodes.push(BNode::default());
    b.groups.push(BGroup {
        root: 0,
        default: None,
    });
    let mut names = Vec::with_capacity(routes.len());
    for (index, spec) in routes.iter().enumerate() {
        let parsed =
            parse::parse_key(spec.key).and_then(|k| parse::parse_host(spec.host).map(|h| (k, h)));
        let (key, host) = match parsed {
            Ok(v) => v,
            Err(reason) => {
                errors.push(RouteError {
                    index,
                    other: None,
                    message: format!("{}: {reason}", describe(spec)),
                });
                names.push(Box::default());
                continue;
            }
        };
        let group = b.group_for(host);
        match key {
            Key::Default => {
                names.push(Box::default());
                let slot = &mut b.groups[group].default;
                match *slot {
                    Some(prev) => errors.push(conflict(
                        routes,
                        index,
                        prev,
                        "two $default routes for the same host",
                    )),
                    None => *slot = Some(index),
                }
            }
            Key::Route {
                method,
                segs,
                names: route_names,
            } => {
                names.push(route_names.into_boxed_slice());
                if let Err(prev) = b.insert(group, &segs, method, index) {
                    errors.push(conflict(routes, index, prev, "same method and path shape"));
                }
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.index, e.other));
        return Err(errors);
    }
    Ok(b.freeze(names))
}

fn describe(spec: &RouteSpec<'_>) -> String {
    match spec.host {
        Some(host) => format!("route {:?} (host {host:?})", spec.key),
        None => format!("route {:?}", spec.key),
    }
}

fn conflict(routes: &[RouteSpec<'_>], index: usize, other: usize, why: &str) -> RouteError {
    RouteError {
        index,
        other: Some(other),
        message: format!(
            "{} conflicts with {} ({why})",
            describe(&routes[index]),
            describe(&routes[other])
        ),
    }
}

#[derive(Default)]
struct BTable {
    exact: Vec<(Box<[u8]>, usize)>,
    any: Option<usize>,
}

impl BTable {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.any.is_none()
    }

    /// Adds `route`, or returns the route already holding that method.
    fn insert(&mut self, method: MethodSel, route: usize) -> Result<(), usize> {
        match method {
            MethodSel::Any => match self.any {
                Some(prev) => Err(prev),
                None => {
                    self.any = Some(route);
                    Ok(())
                }
            },
            MethodSel::Exact(m) => match self.exact.iter().find(|(e, _)| *e == m) {
                Some(&(_, prev)) => Err(prev),
                None => {
                    self.exact.push((m, route));
                    Ok(())
                }
            },
        }
    }
}

#[derive(Default)]
struct BNode {
    lits: BTreeMap<Box<[u8]>, usize>,
    param: Option<usize>,
    greedy: BTable,
    term: BTable,
}

struct BGroup {
    root: usize,
    default: Option<usize>,
}

/// Mutable trie used while building; frozen into the flat [`Router`].
#[derive(Default)]
struct Builder {
    nodes: Vec<BNode>,
    groups: Vec<BGroup>,
    exact: AHashMap<Box<[u8]>, usize>,
    wildcards: AHashMap<Box<[u8]>, usize>,
}

impl Builder {
    fn group_for(&mut self, host: HostSel) -> usize {
        let (map, key) = match host {
            HostSel::None => return 0,
            HostSel::Exact(h) => (&mut self.exact, h),
            HostSel::Wildcard(s) => (&mut self.wildcards, s),
        };
        if let Some(&g) = map.get(&key) {
            return g;
        }
        let g = self.groups.len();
        map.insert(key, g);
        self.groups.push(BGroup {
            root: self.nodes.len(),
            default: None,
        });
        self.nodes.push(BNode::default());
        g
    }

    fn child(&mut self, node: usize, seg: &Seg) -> usize {
        let fresh = self.nodes.len();
        let slot = match seg {
            Seg::Lit(text) => match self.nodes[node].lits.get(text) {
                Some(&c) => return c,
                None => {
                    self.nodes[node].lits.insert(text.clone(), fresh);
                    fresh
                }
            },
            _ => *self.nodes[node].param.get_or_insert(fresh),
        };
        if slot == fresh {
            self.nodes.push(BNode::default());
        }
        slot
    }

    /// Inserts a route; `Err(prev)` if `prev` already has the same method and
    /// path shape in this group.
    fn insert(
        &mut self,
        group: usize,
        segs: &[Seg],
        method: MethodSel,
        route: usize,
    ) -> Result<(), usize> {
        let mut node = self.groups[group].root;
        for seg in segs {
            if *seg == Seg::Greedy {
                return self.nodes[node].greedy.insert(method, route);
            }
            node = self.child(node, seg);
        }
        self.nodes[node].term.insert(method, route)
    }

    fn freeze(self, names: Vec<Box<[Box<str>]>>) -> Router {
        let mut out = Flat::default();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let edges_start = out.edges.len() as u32;
            for (label, &child) in &n.lits {
                let label = out.push_bytes(label);
                out.edges.push(Edge {
                    label,
                    parent: nodes.len() as u32,
                    child: child as u32,
                });
            }
            nodes.push(Node {
                edges_start,
                edges_len: n.lits.len() as u32,
                param: n.param.map_or(NONE, |p| p as u32),
                greedy: out.push_table(&n.greedy),
                term: out.push_table(&n.term),
            });
        }
        let hasher = ahash::RandomState::new();
        let slots = edge_index(&hasher, &nodes, &out);
        let mut wildcards: Vec<(Box<[u8]>, u32)> = self
            .wildcards
            .into_iter()
            .map(|(s, g)| (s, g as u32))
            .collect();
        wildcards.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Router {
            nodes: nodes.into(),
            edges: out.edges.into(),
            tables: out.tables.into(),
            methods: out.methods.into(),
            bytes: out.bytes.into(),
            groups: self
                .groups
                .iter()
                .map(|g| Group {
                    root: g.root as u32,
                    default: g.default.map_or(NONE, |d| d as u32),
                })
                .collect(),
            exact: self.exact.into_iter().map(|(h, g)| (h, g as u32)).collect(),
            wildcards: wildcards.into(),
            names: names.into(),
            slots,
            hasher,
        }
    }
}

/// Builds `Router::slots` for the nodes wider than `LINEAR_EDGES`.
fn edge_index(hasher: &ahash::RandomState, nodes: &[Node], flat: &Flat) -> Box<[u32]> {
    let wide = |n: &&Node| n.edges_len as usize > LINEAR_EDGES;
    let count: usize = nodes
        .iter()
        .filter(wide)
        .map(|n| n.edges_len as usize)
        .sum();
    if count == 0 {
        return Box::default();
    }
    let mut slots = vec![NONE; (count * 2).next_power_of_two()];
    let mask = slots.len() - 1;
    for (node_idx, n) in nodes.iter().enumerate().filter(|(_, n)| wide(n)) {
        let start = n.edges_start as usize;
        for edge_idx in start..start + n.edges_len as usize {
            let label = flat.edges[edge_idx].label;
            let start = label.start as usize;
            let text = &flat.bytes[start..start + label.len as usize];
            let mut i = hasher.hash_one((node_idx as u32, text)) as usize & mask;
            while slots[i] != NONE {
                i = (i + 1) & mask;
            }
            slots[i] = edge_idx as u32;
        }
    }
    slots.into()
}

/// Flat arrays being filled by [`Builder::freeze`].
#[derive(Default)]
struct Flat {
    edges: Vec<Edge>,
    tables: Vec<Table>,
    methods: Vec<MethodEntry>,
    bytes: Vec<u8>,
}

impl Flat {
    fn push_bytes(&mut self, text: &[u8]) -> Span {
        let span = Span {
            start: self.bytes.len() as u32,
            len: text.len() as u32,
        };
        self.bytes.extend_from_slice(text);
        span
    }

    fn push_table(&mut self, t: &BTable) -> u32 {
        if t.is_empty() {
            return NONE;
        }
        let start = self.methods.len() as u32;
        for (m, route) in &t.exact {
            let method = self.push_bytes(m);
            self.methods.push(MethodEntry {
                method,
                route: *route as u32,
            });
        }
        self.tables.push(Table {
            start,
            len: t.exact.len() as u32,
            any: t.any.map_or(NONE, |r| r as u32),
        });
        (self.tables.len() - 1) as u32
    }
}
