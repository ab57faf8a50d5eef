//! Re-resolving upstream host names: one resolver thread per process, off the workers.
//!
//! Owns: [`DnsBoard`], what `GET /status` and the metrics show about every target (the addresses
//! it stands for now, when and how its name was last looked up, lookup counts by upstream), and
//! the resolver thread. Every [`RESOLVE_TICK`] the thread looks up the host-name targets whose
//! upstream's `resolve_interval_ms` has passed (blocking getaddrinfo, or the resolver the server
//! was given, on this thread only). A failed lookup, or one with no address, keeps the last good
//! answer: it is counted and logged, and the target keeps its addresses. When an answer differs
//! from the addresses being served, the controller compiles the current config text again with
//! the new answers (`Controller::apply_resolved`) and hands it to the workers as
//! a new generation, exactly as a reload does: an upstream whose addresses changed starts afresh
//! on each worker but adopts idle pooled connections to addresses it keeps, and health (active
//! verdict, passive ejection) carries over per address. IP-literal targets are never looked up.
//! A reload looks names up too (through [`LastGood`]); its lookups are recorded here like the
//! thread's ([`DnsBoard::looked_up`]), so `GET /status` never shows an older lookup's result
//! beside the addresses a reload just found, and an answer of the thread's whose lookup started
//! before a reload's successful one is not applied over the reload's (`reloaded_since`).
//! Leaves out: parsing targets and the lookup itself (see [`crate::config::resolve`]).
//!
//! The board is behind a mutex touched only by control-plane threads (this one, the admin
//! thread, reloads); workers never see it.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::resolve::{self, Resolver, Target};
use crate::config::Config;
use crate::metrics::prom::{escape, family, json_str};

use super::reload::Controller;

/// How often the resolver thread looks for names that are due (it sleeps in between).
pub const RESOLVE_TICK: Duration = Duration::from_millis(50);

/// How the latest lookup of a name went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An IP literal: never looked up.
    Literal,
    Ok,
    /// The lookup failed; the target keeps its last good addresses.
    Failed(String),
}

/// One target of one upstream.
#[derive(Debug, Clone)]
struct Entry {
    upstream: String,
    target: String,
    kind: Target,
    /// The addresses being served for this target.
    addrs: Vec<SocketAddr>,
    /// The target's `weight` (each of its addresses carries it).
    weight: u32,
    /// Unix milliseconds of the latest lookup (load included).
    at_ms: u64,
    result: Lookup,
    next: Instant,
    interval: Duration,
    /// When the latest reload that looked the name up successfully started that lookup (an
    /// answer of the resolver thread's that started before it is older than what it serves).
    reloaded: Option<Instant>,
}

impl Entry {
    /// A lookup of this entry's name ended with `result` (at `now`, Unix millisecond `at_ms`):
    /// recorded, counted in its upstream's `totals`, and the next one is an interval away.
    fn finished(&mut self, result: Lookup, now: Instant, at_ms: u64, totals: &mut [Totals]) {
        if let Some(t) = totals.iter_mut().find(|t| t.upstream == self.upstream) {
            match result {
                Lookup::Ok => t.ok += 1,
                Lookup::Failed(_) => t.failed += 1,
                Lookup::Literal => {} // never looked up
            }
        }
        self.at_ms = at_ms;
        self.next = now + self.interval;
        self.result = result;
    }
}

/// Lookup counts of one upstream (kept while the process runs: counters never go back).
#[derive(Debug, Clone)]
struct Totals {
    upstream: String,
    ok: u64,
    failed: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    totals: Vec<Totals>,
}

/// What the process knows about its targets' names.
#[derive(Debug, Default)]
pub struct DnsBoard {
    state: Mutex<State>,
}

/// A name due for a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Due {
    host: String,
    port: u16,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl DnsBoard {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `config` (at startup, and after each applied reload or re-resolution): its
    /// targets with the addresses it serves. A target already known keeps its lookup history.
    pub fn follow(&self, config: &Config) {
        let now = Instant::now();
        let mut st = self.lock();
        let old = std::mem::take(&mut st.entries);
        for u in &config.upstreams {
            for t in &u.names {
                let prev = old
                    .iter()
                    .find(|e| e.upstream == u.name && e.target == t.target);
                let literal = matches!(t.kind, Target::Literal(_));
                st.entries.push(Entry {
                    upstream: u.name.clone(),
                    target: t.target.clone(),
                    kind: t.kind.clone(),
                    addrs: t.addrs.clone(),
                    weight: t.weight,
                    at_ms: prev.map_or_else(unix_ms, |p| p.at_ms),
                    result: match prev {
                        _ if literal => Lookup::Literal,
                        Some(p) => p.result.clone(),
                        None => Lookup::Ok,
                    },
                    next: prev
                        .filter(|p| p.interval == u.resolve_interval)
                        .map_or(now + u.resolve_interval, |p| p.next),
                    interval: u.resolve_interval,
                    reloaded: prev.and_then(|p| p.reloaded),
                });
            }
            if !st.totals.iter().any(|t| t.upstream == u.name) {
                st.totals.push(Totals {
                    upstream: u.name.clone(),
                    ok: 0,
                    failed: 0,
                });
            }
        }
    }

    /// The names due for a lookup at `now` (each once, however many upstreams use it).
    fn due(&self, now: Instant) -> Vec<Due> {
        let st = self.lock();
        let mut out: Vec<Due> = Vec::new();
        for e in st.entries.iter().filter(|e| e.next <= now) {
            if let Target::Name { host, port } = &e.kind {
                let d = Due {
                    host: host.clone(),
                    port: *port,
                };
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Records lookup results; returns the good answers that differ from what is served.
    fn record(&self, results: &[(Due, io::Result<Vec<SocketAddr>>)]) -> Vec<Answer> {
        let now = Instant::now();
        let at = unix_ms();
        let mut changed = Vec::new();
        let mut st = self.lock();
        let State { entries, totals } = &mut *st;
        for e in entries.iter_mut() {
            let Target::Name { host, port } = &e.kind else {
                continue;
            };
            let Some((_, r)) = results
                .iter()
                .find(|(d, _)| d.host == *host && d.port == *port)
            else {
                continue;
            };
            match r {
                Ok(addrs) => {
                    if *addrs != e.addrs {
                        let a = Answer {
                            host: host.clone(),
                            port: *port,
                            addrs: addrs.clone(),
                        };
                        if !changed.contains(&a) {
                            changed.push(a);
                        }
                    }
                    e.finished(Lookup::Ok, now, at, totals);
                }
                Err(err) => {
                    let m = err.to_string();
                    if e.result != Lookup::Failed(m.clone()) {
                        eprintln!(
                            "tollgate: dns: cannot resolve {} of upstream {}: {m}; keeping {}",
                            e.target,
                            e.upstream,
                            list(&e.addrs)
                        );
                    }
                    e.finished(Lookup::Failed(m), now, at, totals);
                }
            }
        }
        changed
    }

    /// Records the lookups a reload made (through [`LastGood`]): they are the latest for their
    /// names, counted and shown like the resolver thread's, and the next periodic lookup is an
    /// interval away. Called after the reload's config is followed, so its new targets are
    /// there; the addresses are the ones the reload serves (a failure kept the last good).
    pub fn looked_up(&self, outcomes: &[Outcome]) {
        let now = Instant::now();
        let at = unix_ms();
        let mut st = self.lock();
        let State { entries, totals } = &mut *st;
        for e in entries.iter_mut() {
            let Target::Name { host, port } = &e.kind else {
                continue;
            };
            // the latest lookup of the name in this reload
            let Some(o) = outcomes
                .iter()
                .rev()
                .find(|o| o.host == *host && o.port == *port)
            else {
                continue;
            };
            let result = match &o.result {
                Ok(()) => {
                    e.reloaded = Some(o.started); // a failure kept the last good: nothing newer
                    Lookup::Ok
                }
                Err(m) => Lookup::Failed(m.clone()),
            };
            e.finished(result, now, at, totals);
        }
    }

    /// Whether a reload looked `host:port` up after `started` (when the resolver thread started
    /// its lookup): the reload's answer is the newer one and is being served.
    pub fn reloaded_since(&self, host: &str, port: u16, started: Instant) -> bool {
        self.lock().entries.iter().any(|e| {
            matches!(&e.kind, Target::Name { host: h, port: p } if h == host && *p == port)
                && e.reloaded.is_some_and(|r| r > started)
        })
    }

    /// The addresses each name target of `config`'s upstreams is served with, as answers.
    fn served(config: &Config) -> Vec<Answer> {
        let mut out: Vec<Answer> = Vec::new();
        for t in config.upstreams.iter().flat_map(|u| &u.names) {
            if let Target::Name { host, port } = &t.kind {
                if !out.iter().any(|a| a.host == *host && a.port == *port) {
                    out.push(Answer {
                        host: host.clone(),
                        port: *port,
                        addrs: t.addrs.clone(),
                    });
                }
            }
        }
        out
    }

    /// `"upstreams"` of `GET /status`: each upstream's targets, addresses and latest lookup.
    pub fn status_json(&self) -> String {
        let st = self.lock();
        let mut out = String::from("[");
        let mut first = true;
        for t in &st.totals {
            let mine: Vec<&Entry> = st
                .entries
                .iter()
                .filter(|e| e.upstream == t.upstream)
                .collect();
            if mine.is_empty() {
                continue; // an upstream a reload removed: counted in metrics only
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str("{\"name\":");
            json_str(&mut out, &t.upstream);
            out.push_str(",\"targets\":[");
            for (j, e) in mine.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str("{\"target\":");
                json_str(&mut out, &e.target);
                out.push_str(",\"addresses\":[");
                let addrs: Vec<String> = e.addrs.iter().map(|a| format!("\"{a}\"")).collect();
                out.push_str(&addrs.join(","));
                out.push(']');
                match &e.result {
                    Lookup::Literal => out.push_str(",\"resolved\":\"literal\""),
                    Lookup::Ok => {
                        let _ = write!(out, ",\"resolved\":\"ok\",\"resolved_at_ms\":{}", e.at_ms);
                    }
                    Lookup::Failed(m) => {
                        let _ = write!(
                            out,
                            ",\"resolved\":\"error\",\"resolved_at_ms\":{},\"error\":",
                            e.at_ms
                        );
                        json_str(&mut out, m);
                    }
                }
                let _ = write!(out, ",\"weight\":{}}}", e.weight);
            }
            out.push_str("]}");
        }
        out.push(']');
        out
    }

    /// The resolution metric families, in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        let st = self.lock();
        let mut out = String::new();
        family(
            &mut out,
            "tollgate_upstream_resolved_addresses",
            "gauge",
            "Addresses an upstream target stands for now.",
        );
        for e in &st.entries {
            let _ = writeln!(
                out,
                "tollgate_upstream_resolved_addresses{{upstream=\"{}\",target=\"{}\"}} {}",
                escape(&e.upstream),
                escape(&e.target),
                e.addrs.len()
            );
        }
        family(
            &mut out,
            "tollgate_dns_resolutions_total",
            "counter",
            "Lookups of upstream target names, by result.",
        );
        for t in &st.totals {
            for (result, n) in [("ok", t.ok), ("error", t.failed)] {
                let _ = writeln!(
                    out,
                    "tollgate_dns_resolutions_total{{upstream=\"{}\",result=\"{result}\"}} {n}",
                    escape(&t.upstream)
                );
            }
        }
        out
    }

    /// Remarks for `GET /config`: the addresses of each host-name target.
    pub fn annotations(config: &Config) -> Vec<crate::config::effective::Annotation> {
        config
            .upstreams
            .iter()
            .enumerate()
            // a remote function's hidden upstream is no `[[upstream]]` of the file
            .filter(|(_, u)| {
                !u.name
                    .starts_with(crate::config::functions::HIDDEN_UPSTREAM_PREFIX)
                    && u.names
                        .iter()
                        .any(|t| matches!(t.kind, Target::Name { .. }))
            })
            .map(|(i, u)| crate::config::effective::Annotation {
                section: "upstream",
                index: Some(i),
                key: "targets",
                value: None,
                comment: format!("resolved: {}", list(&u.targets)),
            })
            .collect()
    }
}

fn list(addrs: &[SocketAddr]) -> String {
    let v: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    v.join(", ")
}

/// A good answer for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<SocketAddr>,
}

/// A resolver answering from known answers only (compiling the config being served again with
/// new answers, without looking anything up under the reload lock), else from `fallback`.
/// `listen` holds the listen (and admin) names as written with the address each one binds
/// now, so they are not looked up again and stay where they are.
pub struct Known {
    pub answers: Vec<Answer>,
    pub listen: Vec<(String, SocketAddr)>,
    pub fallback: Option<Arc<dyn Resolver>>,
}

impl Known {
    /// The listen and admin addresses of `config` as written, with the address each binds.
    pub fn bound(config: &Config) -> Vec<(String, SocketAddr)> {
        let Ok(t) = crate::config::effective::table(&config.source) else {
            return Vec::new();
        };
        let written = |v: Option<&toml::Value>| v.and_then(toml::Value::as_str).map(str::to_string);
        let server = t.get("server");
        let listen = server
            .and_then(|s| s.get("listen"))
            .and_then(toml::Value::as_array);
        // one address per entry, in order (a duplicate is a config error)
        let mut out: Vec<(String, SocketAddr)> = listen
            .into_iter()
            .flatten()
            .map(|v| written(Some(v)))
            .zip(&config.server.listen)
            .filter_map(|(w, &a)| Some((w?, a)))
            .collect();
        let admin = written(t.get("admin").and_then(|a| a.get("listen")));
        if let (Some(w), Some(a)) = (admin, config.admin) {
            out.push((w, a));
        }
        out
    }
}

impl Resolver for Known {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Some(a) = self
            .answers
            .iter()
            .find(|a| a.host == host && a.port == port)
        {
            return Ok(a.addrs.clone());
        }
        match &self.fallback {
            Some(r) => r.lookup(host, port),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no known answer")),
        }
    }

    fn listen(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        let same = |w: &str| {
            w.rsplit_once(':')
                .is_some_and(|(h, p)| h == host && p.parse::<u16>().ok() == Some(port))
        };
        if let Some(&(_, a)) = self.listen.iter().find(|(w, _)| same(w)) {
            return Ok(a);
        }
        match &self.fallback {
            Some(r) => r.listen(host, port),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no known answer")),
        }
    }
}

/// How one lookup of a reload went (for [`DnsBoard::looked_up`]).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub host: String,
    pub port: u16,
    /// When the lookup started.
    pub started: Instant,
    pub result: Result<(), String>,
}

/// The resolver a reload compiles with: `inner`, and when a lookup fails, the addresses the
/// name is served with now (the last good answer), so a DNS outage does not block a reload.
/// It notes how each lookup went, for `GET /status` and the metrics.
pub struct LastGood {
    pub inner: Arc<dyn Resolver>,
    pub served: Vec<Answer>,
    outcomes: Mutex<Vec<Outcome>>,
}

impl LastGood {
    pub fn new(inner: Arc<dyn Resolver>, config: &Config) -> Self {
        LastGood {
            inner,
            served: DnsBoard::served(config),
            outcomes: Mutex::new(Vec::new()),
        }
    }

    /// How the lookups made so far went, in order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Resolver for LastGood {
    /// A listen name as at startup: the inner resolver's first answer (not sorted).
    fn listen(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        self.inner.listen(host, port)
    }

    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let started = Instant::now();
        let r = resolve::lookup(self.inner.as_ref(), host, port);
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Outcome {
                host: host.to_string(),
                port,
                started,
                result: r.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            });
        match r {
            Ok(a) => Ok(a),
            Err(e) => match self
                .served
                .iter()
                .find(|a| a.host == host && a.port == port)
            {
                Some(a) => {
                    eprintln!(
                        "tollgate: dns: cannot resolve {host}: {e}; keeping {}",
                        list(&a.addrs)
                    );
                    Ok(a.addrs.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// Starts the resolver thread; it ends when the server drains.
pub fn spawn(
    control: Arc<Controller>,
    resolver: Arc<dyn Resolver>,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tollgate-dns".into())
        .spawn(move || {
            while !control.shutting_down() {
                std::thread::sleep(RESOLVE_TICK);
                let started = Instant::now();
                let due = control.dns().due(started);
                if due.is_empty() {
                    continue;
                }
                let results: Vec<(Due, io::Result<Vec<SocketAddr>>)> = due
                    .into_iter()
                    .map(|d| {
                        let r = resolve::lookup(resolver.as_ref(), &d.host, d.port);
                        (d, r)
                    })
                    .collect();
                let changed = control.dns().record(&results);
                if !changed.is_empty() {
                    control.apply_resolved(changed, started);
                }
            }
        })
}

/// The answers of the config being served, with `fresh` ones taking precedence.
pub fn merged(config: &Config, fresh: Vec<Answer>) -> Vec<Answer> {
    let mut out = fresh;
    for a in DnsBoard::served(config) {
        if !out.iter().any(|f| f.host == a.host && f.port == a.port) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn due(host: &str) -> Due {
        Due {
            host: host.into(),
            port: 80,
        }
    }

    #[test]
    fn only_a_new_set_of_addresses_is_a_change_and_failures_keep_the_last_good() {
        let known = Arc::new(Known {
            answers: vec![Answer {
                host: "svc".into(),
                port: 80,
                addrs: vec![addr("10.0.0.1:80"), addr("10.0.0.2:80")],
            }],
            listen: Vec::new(),
            fallback: None,
        });
        let text = "[[upstream]]\nname = \"u\"\ntargets = [\"svc:80\", \"10.9.9.9:1\"]\n[[route]]\nkey = \"GET /\"\nupstream = \"u\"\n";
        let config = crate::config::from_str_with(text, known).unwrap();
        assert_eq!(config.upstreams[0].targets.len(), 3);
        let board = DnsBoard::default();
        board.follow(&config);
        let later = Instant::now() + Duration::from_secs(31);
        assert_eq!(
            board.due(later),
            vec![due("svc")],
            "the literal is never due"
        );
        // the same set (as the resolver sorts it): no change
        let same = vec![addr("10.0.0.1:80"), addr("10.0.0.2:80")];
        assert!(board.record(&[(due("svc"), Ok(same))]).is_empty());
        assert!(
            board.due(Instant::now()).is_empty(),
            "the next lookup is an interval away"
        );
        // a failure: counted, the addresses stay
        let failed = board.record(&[(due("svc"), Err(io::Error::other("timeout")))]);
        assert!(failed.is_empty());
        let status = board.status_json();
        assert!(
            status.contains(r#""addresses":["10.0.0.1:80","10.0.0.2:80"],"resolved":"error""#),
            "{status}"
        );
        let m = board.prometheus();
        assert!(
            m.contains("tollgate_dns_resolutions_total{upstream=\"u\",result=\"error\"} 1\n"),
            "{m}"
        );
        assert!(
            m.contains("tollgate_dns_resolutions_total{upstream=\"u\",result=\"ok\"} 1\n"),
            "{m}"
        );
        assert!(
            m.contains(
                "tollgate_upstream_resolved_addresses{upstream=\"u\",target=\"10.9.9.9:1\"} 1\n"
            ),
            "{m}"
        );
        // another set: a change to apply
        let new = vec![addr("10.0.0.3:80")];
        let changed = board.record(&[(due("svc"), Ok(new.clone()))]);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].addrs, new);
    }
}
