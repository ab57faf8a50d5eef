//! Routers per deployment: the top-level routes (deployment 0, the implicit `$default` API on
//! the `$default` stage) and one router per side of every stage (its API, or its canary's).
//!
//! **Owns:** building one [`Router`] per deployment from the routes of each (contiguous in the
//! config's route list) and translating between a deployment's own route indices and the
//! config's. **Leaves out:** which deployment serves a request (see [`super::front`] and
//! [`crate::config::apis`]) and the priority and conflict rules within one (see [`super`]):
//! two deployments never conflict, the same key may be in each.

use std::ops::Range;

use super::{RouteError, RouteMatch, RouteSpec, Router};

#[derive(Debug, Clone)]
struct Part {
    router: Router,
    /// Index of the deployment's first route in the config's route list.
    base: usize,
}

/// One router per deployment; route indices in and out are the config's.
#[derive(Debug, Clone)]
pub struct Routers {
    parts: Box<[Part]>,
}

impl Routers {
    /// Builds a router per deployment: `ranges[d]` is deployment `d`'s run of `routes`
    /// (`ranges[0]` the top-level routes). Errors name routes by their index in `routes`.
    pub fn build(
        routes: &[RouteSpec<'_>],
        ranges: &[Range<usize>],
    ) -> Result<Routers, Vec<RouteError>> {
        let mut parts = Vec::with_capacity(ranges.len().max(1));
        let mut errors = Vec::new();
        let whole = 0..routes.len();
        let ranges = if ranges.is_empty() {
            std::slice::from_ref(&whole)
        } else {
            ranges
        };
        for r in ranges {
            let Some(specs) = routes.get(r.clone()) else {
                continue;
            };
            match Router::build(specs) {
                Ok(router) => parts.push(Part {
                    router,
                    base: r.start,
                }),
                Err(errs) => errors.extend(errs.into_iter().map(|e| RouteError {
                    index: e.index + r.start,
                    other: e.other.map(|o| o + r.start),
                    message: e.message,
                })),
            }
        }
        if errors.is_empty() {
            Ok(Routers {
                parts: parts.into(),
            })
        } else {
            Err(errors)
        }
    }

    /// [`Router::lookup`] among the top-level routes.
    pub fn lookup<'p>(
        &self,
        method: &[u8],
        host: Option<&[u8]>,
        path: &'p [u8],
    ) -> Option<RouteMatch<'p>> {
        self.lookup_in(0, method, host, path)
    }

    /// [`Router::lookup`] among deployment `d`'s routes; the route index is the config's.
    pub fn lookup_in<'p>(
        &self,
        d: u32,
        method: &[u8],
        host: Option<&[u8]>,
        path: &'p [u8],
    ) -> Option<RouteMatch<'p>> {
        let part = self.parts.get(d as usize)?;
        let m = part.router.lookup(method, host, path)?;
        Some(RouteMatch {
            route: m.route + part.base,
            params: m.params,
        })
    }

    /// Parameter names of route `route` (the config's index) in path order.
    pub fn param_names(&self, route: usize) -> &[Box<str>] {
        let at = self.parts.partition_point(|p| p.base <= route);
        match at.checked_sub(1).and_then(|i| self.parts.get(i)) {
            Some(p) => p.router.param_names(route - p.base),
            None => &[],
        }
    }

    /// Number of routes over all deployments.
    pub fn route_count(&self) -> usize {
        self.parts.iter().map(|p| p.router.route_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str) -> RouteSpec<'_> {
        RouteSpec { key, host: None }
    }

    #[test]
    fn deployments_are_separate_and_indices_global() {
        let specs = [
            spec("GET /a/{x}"),
            spec("GET /a/{x}"),
            spec("GET /b/{y}/{z}"),
            spec("GET /a/{x}"),
        ];
        let r = Routers::build(&specs, &[0..1, 1..3, 3..4]).unwrap();
        assert_eq!(r.lookup(b"GET", None, b"/a/1").map(|m| m.route), Some(0));
        assert_eq!(
            r.lookup_in(1, b"GET", None, b"/a/1").map(|m| m.route),
            Some(1)
        );
        assert_eq!(
            r.lookup_in(1, b"GET", None, b"/b/1/2").map(|m| m.route),
            Some(2)
        );
        assert_eq!(
            r.lookup_in(2, b"GET", None, b"/a/1").map(|m| m.route),
            Some(3)
        );
        assert!(r.lookup_in(2, b"GET", None, b"/b/1/2").is_none());
        assert!(r.lookup_in(9, b"GET", None, b"/a/1").is_none());
        assert_eq!(&*r.param_names(2)[1], "z");
        assert_eq!(&*r.param_names(3)[0], "x");
        assert_eq!(r.route_count(), 4);
    }

    #[test]
    fn conflicts_are_per_deployment_with_global_indices() {
        let specs = [spec("GET /a"), spec("GET /a"), spec("GET /a")];
        assert!(Routers::build(&specs, &[0..1, 1..2, 2..3]).is_ok());
        let e = Routers::build(&specs, &[0..1, 1..3]).unwrap_err();
        assert_eq!((e[0].index, e[0].other), (2, Some(1)));
    }
}
