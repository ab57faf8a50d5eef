//! Upstream target names: parsing `host:port`, and looking names up through a [`Resolver`].
//!
//! Owns: the [`Resolver`] trait (getaddrinfo through `ToSocketAddrs` by default, swappable so
//! tests can change answers without a DNS server), telling an IP literal (never looked up again)
//! from a host name (looked up at load and then every `resolve_interval_ms` by the server's
//! resolver thread), and keeping every address a name returns, sorted and deduplicated (so a
//! DNS server rotating its answers does not look like a change), and the address a `listen` or
//! `admin.listen` name binds ([`listen_address`]: the first answer, by the same resolver, so a
//! config compiled again from known answers looks nothing up). Leaves out: when to look up
//! again and what to do with a new answer (see `crate::server::dns`), and the "port missing"
//! check of `tollgate check`.
//!
//! Lookups block (getaddrinfo has no timeout of ours), so they only ever run on control-plane
//! threads: the thread loading a config (startup, `SIGHUP`, `POST /reload`) and the resolver
//! thread, never a worker. Which resolver a load uses is set for the duration of the call with
//! [`with_resolver`] (a scoped, thread-local choice): config loading keeps its signature and
//! the default is the system's.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Looks up the addresses of a host name.
pub trait Resolver: Send + Sync {
    /// Every address `host` has, with `port`; an error (or no address) when it has none.
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;

    /// The one address a `listen` (or `admin.listen`) name binds: the first answer, in the
    /// resolver's order (getaddrinfo's for the system's).
    fn listen(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        self.lookup(host, port)?.into_iter().next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
        })
    }
}

/// The system's resolver: getaddrinfo(3) (`/etc/hosts`, DNS, ... as nsswitch.conf says).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// The system resolver, shared.
pub fn system() -> Arc<dyn Resolver> {
    Arc::new(SystemResolver)
}

/// A target as written in `targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP address and port: used as is, never looked up.
    Literal(SocketAddr),
    /// A host name and port: looked up at load and re-resolved periodically.
    Name { host: String, port: u16 },
}

impl Target {
    /// Parses `host:port`, `ipv4:port` or `[ipv6]:port`; `None` when it is none of them.
    pub fn parse(s: &str) -> Option<Target> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Some(Target::Literal(a));
        }
        let (host, port) = s.rsplit_once(':')?;
        let port = port.parse::<u16>().ok()?;
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        valid.then(|| Target::Name {
            host: host.to_string(),
            port,
        })
    }
}

thread_local! {
    static SCOPED: RefCell<Option<Arc<dyn Resolver>>> = const { RefCell::new(None) };
}

/// Runs `f` (a config load on this thread) with names looked up by `resolver`.
pub fn with_resolver<R>(resolver: Arc<dyn Resolver>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<dyn Resolver>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            SCOPED.with(|s| *s.borrow_mut() = prev);
        }
    }
    let prev = SCOPED.with(|s| s.borrow_mut().replace(resolver));
    let _restore = Restore(prev);
    f()
}

/// Every address of `target` (sorted, deduplicated), by the resolver in scope.
pub fn addresses(target: &Target) -> io::Result<Vec<SocketAddr>> {
    match target {
        Target::Literal(a) => Ok(vec![*a]),
        Target::Name { host, port } => {
            let resolver = SCOPED.with(|s| s.borrow().clone()).unwrap_or_else(system);
            lookup(resolver.as_ref(), host, *port)
        }
    }
}

/// The address a listen address as written (`ip:port`, `[ip6]:port` or `host:port`) binds; a
/// host name is looked up by the resolver in scope (the system's, first answer, outside any).
pub fn listen_address(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a); // a literal is never looked up
    }
    match SCOPED.with(|r| r.borrow().clone()) {
        None => s.to_socket_addrs().ok()?.next(),
        Some(r) => {
            let (host, port) = s.rsplit_once(':')?;
            r.listen(host, port.parse().ok()?).ok()
        }
    }
}

/// `resolver`'s answer for `host`, sorted and deduplicated; no address at all is an error.
pub fn lookup(resolver: &dyn Resolver, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let mut out = resolver.lookup(host, port)?;
    // sorted: a server that rotates its answers is not a change of addresses
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<SocketAddr>);

    impl Resolver for Fixed {
        fn lookup(&self, _: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            Ok(self
                .0
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect())
        }
    }

    #[test]
    fn literals_and_names() {
        let lit = Target::parse("[::1]:80").unwrap();
        assert_eq!(lit, Target::Literal("[::1]:80".parse().unwrap()));
        let name = Target::parse("origin.internal:8080").unwrap();
        assert_eq!(
            name,
            Target::Name {
                host: "origin.internal".into(),
                port: 8080
            }
        );
        for bad in [
            "localhost",
            "host:",
            ":80",
            "host:99999",
            "a b:80",
            "::1:80x",
        ] {
            assert_eq!(Target::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_address_once_and_the_scoped_resolver_wins() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let fixed: Arc<dyn Resolver> = Arc::new(Fixed(vec![b, a, b]));
        let name = Target::parse("svc:7").unwrap();
        let got = with_resolver(fixed, || addresses(&name)).unwrap();
        assert_eq!(
            got,
            vec![
                "10.0.0.1:7".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:7".parse().unwrap()
            ]
        );
        let none: Arc<dyn Resolver> = Arc::new(Fixed(vec![]));
        assert!(with_resolver(none, || addresses(&name)).is_err());
        // outside the scope: the system's (localhost always resolves)
        assert!(!addresses(&Target::parse("localhost:7").unwrap())
            .unwrap()
            .is_empty());
    }
}
