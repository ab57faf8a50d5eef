//! Request routing: maps `(method, host, path)` to one configured route, the
//! same way AWS API Gateway HTTP APIs do.
//!
//! **Owns:** parsing and validating route keys (`"GET /pets/{id}"`,
//! `"ANY /{proxy+}"`, `"$default"`) and route hosts, detecting conflicts at
//! config load, compiling everything into an immutable [`Router`], the
//! per-request [`Router::lookup`], and path rewrite templates
//! ([`PathTemplate`]).
//!
//! **Leaves out:** everything about the request target before it gets here
//! (the caller strips the query string and has already rejected invalid
//! targets; there is no percent-decoding or normalisation: matching is on raw
//! bytes), what a route *does* (integrations, auth, rewrites are applied by the
//! proxy), and reloading (build a new `Router` and swap it).
//!
//! **Data flow:** config → `&[RouteSpec]` → [`Router::build`] parses every key
//! and host, reports *all* errors at once, and otherwise compiles one trie per
//! host group into flat arrays (nodes, sorted literal edges, method tables, a
//! byte arena). Per request, [`Router::lookup`] picks the host groups to search
//! (allocation-free: the host is lowercased into a stack buffer), runs a
//! depth-first search with backtracking over each group's trie and returns the
//! route index plus parameter values borrowed from the request path (a
//! [`SmallVec`] that stays inline for up to 4 parameters). The proxy then looks
//! up [`Router::param_names`] / its own per-route data by that index.
//!
//! # Paths
//!
//! A route path starts with `/` and is split on `/` into segments; `/` alone is
//! one empty segment, and a trailing slash is significant (`/pets/` ends with
//! an empty literal segment, so `/pets` and `/pets/` are different routes). A
//! segment is literal text, `{name}` (exactly one non-empty request segment),
//! or `{name+}` (greedy, last segment only, one or more remaining segments; its
//! value is the rest of the path without the leading `/` and may contain empty
//! segments). The request path is split the same way: `//` yields an empty
//! segment, which only an empty literal matches. A request path that does not
//! start with `/` (e.g. `*`) matches only `$default`.
//!
//! # Keys and hosts
//!
//! A key is exactly `"$default"` or `METHOD`, one space, and the path. METHOD
//! is an RFC 9110 token; `ANY` (uppercase) means every method, anything else
//! is matched byte-for-byte. Parameter names are `[A-Za-z0-9_]+`, unique per
//! route; literal segments may not contain `{ } ? #`, whitespace or control
//! characters, and a parameter must span its whole segment. A route host is
//! `name.example`, `*.name.example` (`*` only as the whole first label) or a
//! bracketed IPv6 literal, at most 255 bytes, without a port; it is compared
//! lowercased.
//!
//! # Priority rules
//!
//! Host groups are searched in this order, and the first group that yields a
//! match wins:
//! 1. routes whose exact host equals the request host (ASCII case-insensitive,
//!    port ignored; request hosts longer than 255 bytes match no host route);
//! 2. wildcard routes `*.suffix` whose suffix matches (one or more labels
//!    before `.suffix`; never `suffix` itself), longest suffix first;
//! 3. routes without a host.
//!
//! Within a group, among all routes whose method and path match:
//! * paths are compared segment by segment from the left, and at the first
//!   difference a literal segment beats `{param}`, which beats `{proxy+}`;
//! * at equal path, a specific method beats `ANY` (there is no implicit
//!   `HEAD`→`GET`; methods compare case-sensitively);
//! * the group's `$default` matches anything and comes last.
//!
//! So the lookup backtracks: with `GET /pets/{id}` and `POST /pets/dog`,
//! `GET /pets/dog` selects `GET /pets/{id}`. And because groups are searched
//! whole, a host group's `$default` beats every host-less route for requests
//! to that host.
//!
//! # Conflicts (rejected by [`Router::build`])
//!
//! * Two routes in the same host group (same exact host, or same wildcard
//!   suffix, or both host-less) with the same method token (`ANY` counts as
//!   one) and the same path shape: same segment count, same literals at the
//!   same positions, and params/greedy at the same positions — parameter names
//!   do not matter (`GET /pets/{id}` vs `GET /pets/{petId}`). `GET /x` and
//!   `ANY /x` do not conflict.
//! * Two `$default` routes in the same host group.
//!
//! Malformed keys and hosts are errors too; every [`RouteError`] names the
//! route(s) by index and key.
//!
//! # Compiled layout
//!
//! All host groups share one node array (each group has its own root).
//! Literal children are keyed by whole segment (no prefix compression) and
//! stored per node as a contiguous run of edges sorted by label; a node with
//! at most 8 children is scanned linearly, a wider one (e.g. a root with
//! thousands of `/svcN` prefixes) is found through one open-addressing index
//! keyed by `(node, label)` and hashed with a per-process random ahash seed.
//! Each node has at most one param child and one greedy method table (greedy
//! is always the last segment, hence terminal). A method table lists the
//! specific methods (linear scan) and then the `ANY` route. Labels and method
//! names live in one byte arena addressed by `u32` spans. The lookup is an
//! iterative DFS: only nodes with a param or greedy alternative push a
//! backtracking frame (inline capacity 16), and parameter values are
//! truncated back to the frame's mark when it is resumed.

mod build;
mod deployed;
pub mod front;
mod parse;
mod template;
#[cfg(test)]
mod tests;

use std::fmt;

use ahash::AHashMap;
use smallvec::SmallVec;

pub use deployed::Routers;
pub use front::Front;
use parse::MAX_HOST;
pub use template::PathTemplate;

/// One configured route: its key (`"METHOD /path"` or `"$default"`) and
/// optional host (`"api.example.com"` or `"*.example.com"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec<'a> {
    pub key: &'a str,
    pub host: Option<&'a str>,
}

/// A config error for the route at `index` (its position in the input
/// slice); for conflicts `other` is the earlier route it conflicts with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RouteError {
    pub index: usize,
    pub other: Option<usize>,
    pub message: String,
}

/// The outcome of a successful [`Router::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'p> {
    /// Index of the route in the slice given to [`Router::build`].
    pub route: usize,
    /// Parameter values in path order, matching [`Router::param_names`]. The
    /// greedy value is the remaining path without its leading `/`.
    pub params: SmallVec<[&'p [u8]; 4]>,
}

const NONE: u32 = u32::MAX;

/// A byte range in `Router::bytes`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Run of `Router::edges`, sorted by label.
    edges_start: u32,
    edges_len: u32,
    /// Param child node, or `NONE`.
    param: u32,
    /// Method table for a greedy route ending here, or `NONE`.
    greedy: u32,
    /// Method table for routes whose path ends at this node, or `NONE`.
    term: u32,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    label: Span,
    parent: u32,
    child: u32,
}

/// Nodes with at most this many literal children are scanned linearly; wider
/// ones go through `Router::slots`.
const LINEAR_EDGES: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Table {
    /// Run of `Router::methods`.
    start: u32,
    len: u32,
    /// The `ANY` route, or `NONE`.
    any: u32,
}

#[derive(Debug, Clone, Copy)]
struct MethodEntry {
    method: Span,
    route: u32,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    root: u32,
    default: u32,
}

/// The compiled route table. Immutable after [`Router::build`]; `Send + Sync`,
/// so one instance can be shared by all cores (or cloned per core).
#[derive(Clone)]
pub struct Router {
    nodes: Box<[Node]>,
    edges: Box<[Edge]>,
    tables: Box<[Table]>,
    methods: Box<[MethodEntry]>,
    bytes: Box<[u8]>,
    /// `groups[0]` is the host-less group.
    groups: Box<[Group]>,
    exact: AHashMap<Box<[u8]>, u32>,
    /// `(".suffix", group)`, longest suffix first.
    wildcards: Box<[(Box<[u8]>, u32)]>,
    names: Box<[Box<[Box<str>]>]>,
    /// Open-addressing index (power-of-two size, at most half full, linear
    /// probing) of the edges of nodes wider than `LINEAR_EDGES`, keyed by
    /// `(parent, label)`. Empty slots hold `NONE`.
    slots: Box<[u32]>,
    hasher: ahash::RandomState,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.names.len())
            .field("nodes", &self.nodes.len())
            .field("exact_hosts", &self.exact.len())
            .field("wildcard_hosts", &self.wildcards.len())
            .finish_non_exhaustive()
    }
}

/// One DFS frame: a trie node reached at request-path byte `pos` (start of
/// the segment to match next).
#[derive(Clone, Copy)]
struct Frame {
    node: u32,
    /// 1: param child next, 2: greedy next, 3: done (literal is tried first,
    /// before the frame is ever resumed).
    stage: u32,
    pos: usize,
    /// `params.len()` to restore when this frame is popped.
    mark: usize,
}

impl Router {
    /// Validates and compiles `routes`. On failure returns every error found
    /// (malformed keys/hosts and conflicts), sorted by route index.
    pub fn build(routes: &[RouteSpec<'_>]) -> Result<Router, Vec<RouteError>> {
        build::build(routes)
    }

    /// Finds the best route for a request, by the priority rules in the module
    /// docs. `host` is the request `Host` (port allowed, ignored); `path` is the
    /// raw path without the query string. Allocates nothing unless a search
    /// holds more than 4 parameter values or more than 16 pending backtracking
    /// points (nodes with param/greedy children along one descent).
    pub fn lookup<'p>(
        &self,
        method: &[u8],
        host: Option<&[u8]>,
        path: &'p [u8],
    ) -> Option<RouteMatch<'p>> {
        let mut params = SmallVec::new();
        if let Some(host) = host.filter(|_| !self.exact.is_empty() || !self.wildcards.is_empty()) {
            let host = parse::strip_port(host);
            if host.len() <= MAX_HOST {
                let mut buf = [0u8; MAX_HOST];
                let lower = &mut buf[..host.len()];
                lower.copy_from_slice(host);
                lower.make_ascii_lowercase();
                let lower = &*lower;
                if let Some(&g) = self.exact.get(lower) {
                    if let Some(route) = self.search_group(g, method, path, &mut params) {
                        return Some(RouteMatch { route, params });
                    }
                }
                for (suffix, g) in self.wildcards.iter() {
                    if lower.len() > suffix.len() && lower.ends_with(suffix) {
                        if let Some(route) = self.search_group(*g, method, path, &mut params) {
                            return Some(RouteMatch { route, params });
                        }
                    }
                }
            }
        }
        let route = self.search_group(0, method, path, &mut params)?;
        Some(RouteMatch { route, params })
    }

    /// Parameter names of `route` in path order (a greedy `{proxy+}` appears as
    /// `proxy`). Empty for `$default` and for out-of-range indices.
    pub fn param_names(&self, route: usize) -> &[Box<str>] {
        self.names.get(route).map_or(&[], |n| n)
    }

    /// Number of routes the router was built from.
    pub fn route_count(&self) -> usize {
        self.names.len()
    }

    fn search_group<'p>(
        &self,
        group: u32,
        method: &[u8],
        path: &'p [u8],
        params: &mut SmallVec<[&'p [u8]; 4]>,
    ) -> Option<usize> {
        let group = self.groups.get(group as usize)?;
        if path.first() == Some(&b'/') {
            if let Some(route) = self.search(group.root, method, path, params) {
                return Some(route as usize);
            }
        }
        (group.default != NONE).then_some(group.default as usize)
    }

    /// Depth-first search in priority order (literal, param, greedy; the
    /// method table decides at the end). Only nodes that have a param or
    /// greedy alternative push a backtracking frame; literal-only descents
    /// are plain loop iterations. On success `params` holds the values; on
    /// failure it is left as it was.
    fn search<'p>(
        &self,
        root: u32,
        method: &[u8],
        path: &'p [u8],
        params: &mut SmallVec<[&'p [u8]; 4]>,
    ) -> Option<u32> {
        let mut stack: SmallVec<[Frame; 16]> = SmallVec::new();
        let mut node_idx = root;
        let mut pos = 1;
        'descend: loop {
            let node = self.nodes[node_idx as usize];
            let rest = path.get(pos..).unwrap_or_default();
            let seg_len = rest.iter().position(|&b| b == b'/');
            let last = seg_len.is_none();
            let seg = rest
                .get(..seg_len.unwrap_or(rest.len()))
                .unwrap_or_default();
            if node.param != NONE || node.greedy != NONE {
                stack.push(Frame {
                    node: node_idx,
                    stage: 1,
                    pos,
                    mark: params.len(),
                });
            }
            if let Some(child) = self.literal_child(node_idx, &node, seg) {
                if !last {
                    node_idx = child;
                    pos += seg.len() + 1;
                    continue 'descend;
                }
                if let Some(route) = self.pick(self.nodes[child as usize].term, method) {
                    return Some(route);
                }
            }
            // Backtrack to the deepest node with an untried alternative.
            while let Some(top) = stack.last_mut() {
                let frame = *top;
                top.stage += 1;
                params.truncate(frame.mark);
                let node = self.nodes[frame.node as usize];
                let rest = path.get(frame.pos..).unwrap_or_default();
                let seg_len = rest.iter().position(|&b| b == b'/');
                let seg = rest
                    .get(..seg_len.unwrap_or(rest.len()))
                    .unwrap_or_default();
                match frame.stage {
                    1 if node.param != NONE && !seg.is_empty() => {
                        params.push(seg);
                        if seg_len.is_some() {
                            node_idx = node.param;
                            pos = frame.pos + seg.len() + 1;
                            continue 'descend;
                        }
                        let term = self.nodes[node.param as usize].term;
                        if let Some(route) = self.pick(term, method) {
                            return Some(route);
                        }
                    }
                    1 => {}
                    2 => {
                        if !rest.is_empty() {
                            if let Some(route) = self.pick(node.greedy, method) {
                                params.push(rest);
                                return Some(route);
                            }
                        }
                    }
                    _ => {
                        stack.pop();
                    }
                }
            }
            return None;
        }
    }

    /// The literal child of `node` labelled `seg`: a linear scan for small
    /// fan-out, the open-addressing edge index for wide nodes.
    fn literal_child(&self, node_idx: u32, node: &Node, seg: &[u8]) -> Option<u32> {
        let start = node.edges_start as usize;
        let edges = self.edges.get(start..start + node.edges_len as usize)?;
        if edges.len() <= LINEAR_EDGES {
            return edges
                .iter()
                .find(|e| bytes_eq(self.span(e.label), seg))
                .map(|e| e.child);
        }
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = self.hasher.hash_one((node_idx, seg)) as usize & mask;
        for _ in 0..self.slots.len() {
            let edge = self.edges.get(*self.slots.get(i)? as usize)?;
            if edge.parent == node_idx && bytes_eq(self.span(edge.label), seg) {
                return Some(edge.child);
            }
            i = (i + 1) & mask;
        }
        None
    }

    fn pick(&self, table: u32, method: &[u8]) -> Option<u32> {
        let table = self.tables.get(table as usize)?;
        let start = table.start as usize;
        let entries = self.methods.get(start..start + table.len as usize)?;
        entries
            .iter()
            .find(|e| bytes_eq(self.span(e.method), method))
            .map(|e| e.route)
            .or((table.any != NONE).then_some(table.any))
    }

    fn span(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.bytes
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }
}

/// Slice equality without a `memcmp` call: segments and methods are short.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
