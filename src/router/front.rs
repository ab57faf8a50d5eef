//! The front door: which stage serves a request, before its route is looked up (API Gateway's
//! custom-domain API mappings, `[[mapping]]`).
//!
//! **Owns:** the compiled mapping rules and [`Front::select`]: a request's host, path and
//! fields → the stage and how many bytes of base path to strip. **Leaves out:** what a stage
//! is (its deployments, canary; see [`crate::config::apis`]) and the route lookup within it
//! ([`super::Router`]).
//!
//! # Priority rules
//! Rules are grouped by host, searched in this order; the first rule that matches wins:
//! 1. rules whose exact host equals the request host (ASCII case-insensitive, port ignored);
//! 2. rules for `*.suffix` whose suffix matches, longest suffix first;
//! 3. rules without a host.
//!
//! Within a group, a longer base path beats a shorter one (whole segments: `/v1` matches
//! `/v1` and `/v1/pets`, never `/v10`), and at equal base path a rule with a `header`
//! condition beats one without. A request no rule matches goes to the top-level routes (the
//! implicit `$default` API on the `$default` stage at `/`).
//!
//! # Cost
//! Base paths are indexed by their first segment in each group (one hash lookup), so 50 APIs
//! under 50 base paths cost the same as one; rules under the same first segment (or at `/`)
//! are scanned in priority order.

use ahash::AHashMap;

use super::parse::{strip_port, MAX_HOST};

/// One `[[mapping]]`, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `*.suffix` as `Wildcard(".suffix")`, or an exact lowercased host; `None`: any host.
    pub host: Option<HostRule>,
    /// The base path without a trailing `/` (`""` for `/`), e.g. `/v1` or `/v1/pets`.
    pub base: Box<[u8]>,
    /// `(lowercase name, exact value)`.
    pub header: Option<(Box<str>, Box<[u8]>)>,
    /// What the rule selects (a stage index).
    pub stage: u32,
}

/// The host part of a [`Rule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    Exact(Box<[u8]>),
    /// `.suffix` (the `*` dropped).
    Wildcard(Box<[u8]>),
}

/// What [`Front::select`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub stage: u32,
    /// Bytes of the path that are the base path (stripped before routing).
    pub strip: usize,
}

#[derive(Debug, Default)]
struct Group {
    /// Rules by the first segment of their base path, each list in priority order.
    by_first: AHashMap<Box<[u8]>, Vec<u32>>,
    /// Rules at `/`, header-conditioned first.
    root: Vec<u32>,
}

/// The compiled mapping rules (empty: every request goes to the top-level routes).
#[derive(Debug, Default)]
pub struct Front {
    rules: Vec<Rule>,
    exact: AHashMap<Box<[u8]>, Group>,
    /// `(".suffix", group)`, longest suffix first.
    wildcards: Vec<(Box<[u8]>, Group)>,
    any: Group,
}

impl Front {
    /// Compiles `rules` (already validated: base paths start with `/`, hosts lowercased).
    pub fn build(rules: Vec<Rule>) -> Front {
        let mut f = Front::default();
        for (i, r) in rules.iter().enumerate() {
            let group = match &r.host {
                None => &mut f.any,
                Some(HostRule::Exact(h)) => f.exact.entry(h.clone()).or_default(),
                Some(HostRule::Wildcard(s)) => {
                    let at = match f.wildcards.iter().position(|(x, _)| x == s) {
                        Some(at) => at,
                        None => {
                            f.wildcards.push((s.clone(), Group::default()));
                            f.wildcards.len() - 1
                        }
                    };
                    &mut f.wildcards[at].1
                }
            };
            match first_segment(&r.base) {
                Some(seg) => group.by_first.entry(seg.into()).or_default().push(i as u32),
                None => group.root.push(i as u32),
            }
        }
        // priority within a list: longer base path first, then header-conditioned first
        let order = |rules: &[Rule], list: &mut Vec<u32>| {
            list.sort_by_key(|&i| {
                let r = &rules[i as usize];
                (std::cmp::Reverse(r.base.len()), r.header.is_none(), i)
            });
        };
        let groups = std::iter::once(&mut f.any)
            .chain(f.exact.values_mut())
            .chain(f.wildcards.iter_mut().map(|(_, g)| g));
        for g in groups {
            order(&rules, &mut g.root);
            for list in g.by_first.values_mut() {
                order(&rules, list);
            }
        }
        f.wildcards
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        f.rules = rules;
        f
    }

    /// Whether there are no rules (every request goes to the top-level routes).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, as compiled.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The stage serving a request to `host` (port allowed, ignored) for `path` (without the
    /// query), `field(name)` giving a request field's value by lowercase name; `None`: the
    /// top-level routes. Allocates nothing.
    pub fn select<'f>(
        &self,
        host: Option<&[u8]>,
        path: &[u8],
        field: impl Fn(&str) -> Option<&'f [u8]>,
    ) -> Option<Selected> {
        if self.rules.is_empty() {
            return None;
        }
        let first = first_segment(path);
        if let Some(host) = host {
            let host = strip_port(host);
            if host.len() <= MAX_HOST && (!self.exact.is_empty() || !self.wildcards.is_empty()) {
                let mut buf = [0u8; MAX_HOST];
                let lower = &mut buf[..host.len()];
                lower.copy_from_slice(host);
                lower.make_ascii_lowercase();
                let lower = &*lower;
                if let Some(g) = self.exact.get(lower) {
                    if let Some(s) = self.in_group(g, first, path, &field) {
                        return Some(s);
                    }
                }
                for (suffix, g) in &self.wildcards {
                    if lower.len() > suffix.len() && lower.ends_with(suffix) {
                        if let Some(s) = self.in_group(g, first, path, &field) {
                            return Some(s);
                        }
                    }
                }
            }
        }
        self.in_group(&self.any, first, path, &field)
    }

    fn in_group<'f>(
        &self,
        g: &Group,
        first: Option<&[u8]>,
        path: &[u8],
        field: &impl Fn(&str) -> Option<&'f [u8]>,
    ) -> Option<Selected> {
        let by_first = first.and_then(|s| g.by_first.get(s));
        let lists = by_first.into_iter().chain(std::iter::once(&g.root));
        for list in lists {
            for &i in list {
                let Some(r) = self.rules.get(i as usize) else {
                    continue;
                };
                if !under(path, &r.base) {
                    continue;
                }
                if let Some((name, value)) = &r.header {
                    if field(name) != Some(&value[..]) {
                        continue;
                    }
                }
                return Some(Selected {
                    stage: r.stage,
                    strip: r.base.len(),
                });
            }
        }
        None
    }
}

/// A `[[mapping]]`'s `host`: `name.example`, `*.name.example` or a bracketed IPv6 literal, as
/// a route's host (see the router's module docs), without a port.
pub fn host_rule(host: &str) -> Result<HostRule, String> {
    match super::parse::parse_host(Some(host))? {
        super::parse::HostSel::Exact(h) => Ok(HostRule::Exact(h)),
        super::parse::HostSel::Wildcard(s) => Ok(HostRule::Wildcard(s)),
        super::parse::HostSel::None => Err("host is empty".into()),
    }
}

/// The first segment of `path` (`/v1/pets` → `v1`); `None` for `/`, `""` or a path not
/// starting with `/`.
fn first_segment(path: &[u8]) -> Option<&[u8]> {
    let rest = path.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let seg = rest.get(..end)?;
    (!seg.is_empty()).then_some(seg)
}

/// Whether `path` is `base` or below it, by whole segments (`""` is the root: every path).
fn under(path: &[u8], base: &[u8]) -> bool {
    match path.strip_prefix(base) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(host: Option<&str>, base: &str, header: Option<(&str, &str)>, stage: u32) -> Rule {
        Rule {
            host: host.map(|h| match h.strip_prefix('*') {
                Some(s) => HostRule::Wildcard(s.as_bytes().into()),
                None => HostRule::Exact(h.as_bytes().into()),
            }),
            base: base.trim_end_matches('/').as_bytes().into(),
            header: header.map(|(n, v)| (n.into(), v.as_bytes().into())),
            stage,
        }
    }

    fn pick(f: &Front, host: &str, path: &str, hdr: Option<(&str, &str)>) -> Option<(u32, usize)> {
        let field = |n: &str| hdr.filter(|(k, _)| *k == n).map(|(_, v)| v.as_bytes());
        f.select(Some(host.as_bytes()), path.as_bytes(), field)
            .map(|s| (s.stage, s.strip))
    }

    #[test]
    fn base_paths_match_whole_segments_longest_first() {
        let f = Front::build(vec![
            rule(Some("api.example.com"), "/v1", None, 1),
            rule(Some("api.example.com"), "/v1/admin", None, 2),
            rule(Some("api.example.com"), "/", None, 3),
        ]);
        assert_eq!(pick(&f, "api.example.com", "/v1/pets", None), Some((1, 3)));
        assert_eq!(pick(&f, "API.example.com:8443", "/v1", None), Some((1, 3)));
        assert_eq!(
            pick(&f, "api.example.com", "/v1/admin/x", None),
            Some((2, 9))
        );
        assert_eq!(pick(&f, "api.example.com", "/v10/pets", None), Some((3, 0)));
        assert_eq!(pick(&f, "api.example.com", "/", None), Some((3, 0)));
        assert_eq!(pick(&f, "other.example.com", "/v1/pets", None), None);
    }

    #[test]
    fn header_rules_beat_plain_ones_at_the_same_base() {
        let f = Front::build(vec![
            rule(None, "/", None, 1),
            rule(None, "/", Some(("accept-version", "2")), 2),
        ]);
        assert_eq!(pick(&f, "h", "/pets", None), Some((1, 0)));
        assert_eq!(
            pick(&f, "h", "/pets", Some(("accept-version", "2"))),
            Some((2, 0))
        );
        assert_eq!(
            pick(&f, "h", "/pets", Some(("accept-version", "3"))),
            Some((1, 0))
        );
    }

    #[test]
    fn hosts_exact_then_wildcard_then_any() {
        let f = Front::build(vec![
            rule(None, "/v1", None, 1),
            rule(Some("*.example.com"), "/v1", None, 2),
            rule(Some("*.eu.example.com"), "/v1", None, 4),
            rule(Some("a.example.com"), "/v1", None, 3),
        ]);
        assert_eq!(pick(&f, "a.example.com", "/v1/x", None), Some((3, 3)));
        assert_eq!(pick(&f, "b.example.com", "/v1/x", None), Some((2, 3)));
        assert_eq!(pick(&f, "b.eu.example.com", "/v1/x", None), Some((4, 3)));
        assert_eq!(pick(&f, "example.com", "/v1/x", None), Some((1, 3)));
        // a host group without a matching base path falls through to the next group
        assert_eq!(pick(&f, "a.example.com", "/v2/x", None), None);
        let empty = Front::build(Vec::new());
        assert!(empty.is_empty());
        assert_eq!(pick(&empty, "a", "/v1", None), None);
    }
}
