//! What a reload changed, and what it could not change: compared against what the process runs.
//!
//! Owns: [`Running`], the settings that only take effect at startup as this process runs them
//! (fixed at startup; the listen backlog follows the sockets actually bound), the notes a reload
//! gives when the file asks for something else (on every reload while the file and the process
//! differ, never when they agree), their marks in `GET /config`, and [`Changes`], the summary of
//! what a reload changed (routes, upstreams, API keys, limits added, removed or changed, and other
//! settings by dotted key) computed on the effective configurations (defaults filled, so spelling
//! out a default is no change). Leaves out: applying anything (see [`super::reload`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::{Table, Value};

use crate::config::compile::route_id;
use crate::config::effective::{self, Annotation};
use crate::config::Config;
use crate::runtime::DriverChoice;

/// Restart-only settings as the process runs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub workers: usize,
    pub driver: DriverChoice,
    pub ring_entries: u32,
    pub pin_cores: bool,
    pub read_buffer_bytes: usize,
    /// The admin listener's configured address (it is never rebound).
    pub admin: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    /// The backlog each listen address's sockets were made with (by configured address).
    pub backlog: Vec<(SocketAddr, u32)>,
}

fn driver_name(d: DriverChoice) -> &'static str {
    match d {
        DriverChoice::Auto => "auto",
        DriverChoice::IoUring => "io_uring",
        DriverChoice::Epoll => "epoll",
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

impl Running {
    /// What a process started with `config` runs.
    pub fn of(config: &Config) -> Self {
        let s = &config.server;
        Running {
            workers: s.workers.max(1),
            driver: s.driver,
            ring_entries: s.ring_entries,
            pin_cores: s.pin_cores,
            read_buffer_bytes: s.read_buffer_bytes,
            admin: config.admin,
            state_dir: config.throttle.state_dir.clone(),
            backlog: s.listen.iter().map(|&a| (a, s.backlog)).collect(),
        }
    }

    /// After `new` applied: addresses it added run with its backlog, removed ones are gone.
    pub fn applied(&mut self, new: &Config) {
        let old = std::mem::take(&mut self.backlog);
        self.backlog = new
            .server
            .listen
            .iter()
            .map(|&a| match old.iter().find(|(o, _)| *o == a) {
                Some(&kept) => kept,
                None => (a, new.server.backlog),
            })
            .collect();
    }

    /// The restart-only settings where `file` differs from what runs, as
    /// `(key, file value, running value)`.
    fn differences(&self, file: &Config) -> Vec<(&'static str, String, String)> {
        let f = &file.server;
        let mut out = Vec::new();
        let mut diff = |key, fv: String, rv: String| {
            if fv != rv {
                out.push((key, fv, rv));
            }
        };
        diff(
            "server.workers",
            f.workers.max(1).to_string(),
            self.workers.to_string(),
        );
        diff(
            "server.driver",
            driver_name(f.driver).into(),
            driver_name(self.driver).into(),
        );
        diff(
            "server.ring_entries",
            f.ring_entries.to_string(),
            self.ring_entries.to_string(),
        );
        diff(
            "server.pin_cores",
            f.pin_cores.to_string(),
            self.pin_cores.to_string(),
        );
        diff(
            "server.read_buffer_bytes",
            f.read_buffer_bytes.to_string(),
            self.read_buffer_bytes.to_string(),
        );
        diff("admin.listen", opt(file.admin), opt(self.admin));
        diff(
            "server.state_dir",
            opt(file.throttle.state_dir.as_ref().map(|p| p.display())),
            opt(self.state_dir.as_ref().map(|p| p.display())),
        );
        // kept addresses keep the backlog they were bound with
        let mut kept: Vec<u32> = self
            .backlog
            .iter()
            .filter(|(a, _)| f.listen.contains(a))
            .map(|&(_, b)| b)
            .filter(|&b| b != f.backlog)
            .collect();
        kept.dedup();
        if !kept.is_empty() {
            let running: Vec<String> = kept.iter().map(u32::to_string).collect();
            diff("server.backlog", f.backlog.to_string(), running.join(", "));
        }
        out
    }

    /// A note for each restart-only setting where `file` asks for something else than runs.
    pub fn notes(&self, file: &Config) -> Vec<String> {
        self.differences(file)
            .into_iter()
            .map(|(key, fv, rv)| {
                format!("{key}: the file has {fv}, the process runs {rv}; takes effect at restart")
            })
            .collect()
    }

    /// The marks `GET /config` shows on the restart-only settings of `file`: the running value,
    /// and a comment saying what the file has.
    pub fn annotations(&self, file: &Config) -> Vec<Annotation> {
        let mut out = Vec::new();
        let int = |v: usize| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let mut mark = |section, key, value: Option<Value>, comment: String| {
            out.push(Annotation {
                section,
                index: None,
                key,
                value,
                comment,
            });
        };
        let differences = self.differences(file);
        if !differences.iter().any(|(k, _, _)| *k == "server.workers") {
            // the count that runs, also when the file says 0 (one per core)
            mark("server", "workers", Some(int(self.workers)), String::new());
        }
        for (key, fv, rv) in differences {
            let running = format!("running; the file has {fv}, applies after restart");
            let (section, name, value) = match key {
                "server.workers" => ("server", "workers", Some(int(self.workers))),
                "server.driver" => ("server", "driver", Some(Value::String(rv.clone()))),
                "server.ring_entries" => (
                    "server",
                    "ring_entries",
                    Some(Value::Integer(self.ring_entries.into())),
                ),
                "server.pin_cores" => ("server", "pin_cores", Some(Value::Boolean(self.pin_cores))),
                "server.read_buffer_bytes" => (
                    "server",
                    "read_buffer_bytes",
                    Some(int(self.read_buffer_bytes)),
                ),
                "server.backlog" => {
                    mark(
                        "server",
                        "backlog",
                        None,
                        format!("kept addresses run with {rv}"),
                    );
                    continue;
                }
                "admin.listen" => match self.admin {
                    Some(a) => ("admin", "listen", Some(Value::String(a.to_string()))),
                    None => {
                        let m = "not listening: the admin listener starts at restart".into();
                        mark("admin", "listen", None, m);
                        continue;
                    }
                },
                _ => match &self.state_dir {
                    Some(d) => (
                        "server",
                        "state_dir",
                        Some(Value::String(d.display().to_string())),
                    ),
                    None => {
                        mark(
                            "server",
                            "state_dir",
                            None,
                            format!("not in use; {running}"),
                        );
                        continue;
                    }
                },
            };
            mark(section, name, value, running);
        }
        out
    }
}

/// Names added, removed and changed in one kind of thing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Compares two `(name, definition)` lists.
    fn of(old: &[(String, Value)], new: &[(String, Value)]) -> Self {
        let mut d = Diff::default();
        for (name, v) in new {
            match old.iter().find(|(n, _)| n == name) {
                None => d.added.push(name.clone()),
                Some((_, o)) if o != v => d.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        for (name, _) in old {
            if !new.iter().any(|(n, _)| n == name) {
                d.removed.push(name.clone());
            }
        }
        d
    }

    fn summary(&self, what: &str, out: &mut Vec<String>) {
        for (verb, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ] {
            if !names.is_empty() {
                out.push(format!("{what} {verb}: {}", names.join(", ")));
            }
        }
    }

    fn json(&self, out: &mut String) {
        out.push('{');
        for (i, (verb, names)) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("\"{verb}\":["));
            for (j, n) in names.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                crate::metrics::prom::json_str(out, n);
            }
            out.push(']');
        }
        out.push('}');
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// By route identity (`GET /x`, or `GET /x @host`).
    pub routes: Diff,
    /// By name; changed also when a target name resolves to other addresses.
    pub upstreams: Diff,
    /// By key name.
    pub api_keys: Diff,
    /// `throttle` (the gateway limit), `usage_plan NAME`, `route ID` (a route's limit).
    pub limits: Diff,
    /// `[[function]]` by name (a changed local function replaces its processes after their
    /// current invocation; see `crate::functions`).
    pub functions: Diff,
    /// Every other setting that changed, by dotted key (`server.timeouts.write_ms`).
    pub settings: Vec<String>,
}

/// Settings a reload cannot apply (see [`Running`]): never listed as changes, since the file
/// changing them changes nothing that runs; [`Running::notes`] reports them against the process.
const RESTART_ONLY: &[&str] = &[
    "server.workers",
    "server.driver",
    "server.ring_entries",
    "server.pin_cores",
    "server.read_buffer_bytes",
    "server.state_dir",
    "admin.listen",
];

impl Changes {
    /// What changed from `old` to `new` (both compiled, so both texts parse).
    pub fn between(old: &Config, new: &Config) -> Self {
        let ot = effective::table(&old.source).unwrap_or_default();
        let nt = effective::table(&new.source).unwrap_or_default();
        let mut upstreams = Diff::of(&named(&ot, "upstream"), &named(&nt, "upstream"));
        for u in &new.upstreams {
            let moved = old
                .upstreams
                .iter()
                .find(|o| o.name == u.name)
                .is_some_and(|o| o.targets != u.targets);
            if moved && !upstreams.changed.contains(&u.name) {
                upstreams.changed.push(u.name.clone());
            }
        }
        let limits = Diff::of(&limits(&ot), &limits(&nt));
        let mut settings = Vec::new();
        for section in ["server", "admin", "access_log", "api_keys", "tls"] {
            diff_keys(section, ot.get(section), nt.get(section), &mut settings);
        }
        // a reload does not apply these: they are compared with what runs, in the notes
        settings.retain(|k| !RESTART_ONLY.contains(&k.as_str()));
        Changes {
            routes: Diff::of(&routes(&ot), &routes(&nt)),
            upstreams,
            api_keys: Diff::of(&named(&ot, "api_key"), &named(&nt, "api_key")),
            limits,
            functions: Diff::of(&named(&ot, "function"), &named(&nt, "function")),
            settings,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
            && self.upstreams.is_empty()
            && self.api_keys.is_empty()
            && self.limits.is_empty()
            && self.functions.is_empty()
            && self.settings.is_empty()
    }

    /// One line for the log: `routes added: GET /a; upstreams changed: u`, or `no changes`.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no changes".to_string();
        }
        let mut parts = Vec::new();
        self.routes.summary("routes", &mut parts);
        self.upstreams.summary("upstreams", &mut parts);
        self.api_keys.summary("api keys", &mut parts);
        self.limits.summary("limits", &mut parts);
        self.functions.summary("functions", &mut parts);
        if !self.settings.is_empty() {
            parts.push(format!("settings changed: {}", self.settings.join(", ")));
        }
        parts.join("; ")
    }

    /// As a JSON object (`POST /reload`'s `changes`), the log line's summary first.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"summary\":");
        crate::metrics::prom::json_str(&mut out, &self.summary());
        out.push_str(",\"routes\":");
        self.routes.json(&mut out);
        out.push_str(",\"upstreams\":");
        self.upstreams.json(&mut out);
        out.push_str(",\"api_keys\":");
        self.api_keys.json(&mut out);
        out.push_str(",\"limits\":");
        self.limits.json(&mut out);
        out.push_str(",\"functions\":");
        self.functions.json(&mut out);
        out.push_str(",\"settings\":[");
        for (i, s) in self.settings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::metrics::prom::json_str(&mut out, s);
        }
        out.push_str("]}");
        out
    }
}

/// The elements of array of tables `section` by their `name`.
fn named(t: &Table, section: &str) -> Vec<(String, Value)> {
    tables(t, section)
        .filter_map(|e| {
            Some((
                e.get("name")?.as_str()?.to_string(),
                Value::Table(e.clone()),
            ))
        })
        .collect()
}

fn tables<'a>(t: &'a Table, section: &str) -> impl Iterator<Item = &'a Table> {
    t.get(section)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_table)
}

fn route_name(r: &Table) -> Option<String> {
    let key = r.get("key")?.as_str()?;
    Some(route_id(key, r.get("host").and_then(Value::as_str)))
}

fn routes(t: &Table) -> Vec<(String, Value)> {
    tables(t, "route")
        .filter_map(|r| Some((route_name(r)?, Value::Table(r.clone()))))
        .collect()
}

fn limits(t: &Table) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(g) = t.get("throttle") {
        out.push(("throttle".to_string(), g.clone()));
    }
    for (name, plan) in named(t, "usage_plan") {
        out.push((format!("usage_plan {name}"), plan));
    }
    for r in tables(t, "route") {
        if let (Some(id), Some(l)) = (route_name(r), r.get("throttle")) {
            out.push((format!("route {id}"), l.clone()));
        }
    }
    out
}

/// Dotted keys under `path` whose values differ between `old` and `new`.
fn diff_keys(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    match (old, new) {
        (Some(Value::Table(o)), Some(Value::Table(n))) => {
            let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff_keys(&format!("{path}.{k}"), o.get(k), n.get(k), out);
            }
        }
        (o, n) if o != n => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::from_str(text).unwrap_or_else(|e| panic!("{}", e.render("test")))
    }

    const BASE: &str = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n\n[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:9\"]\n\n[[route]]\nkey = \"GET /a\"\nupstream = \"u\"\nthrottle = { rate = 5, burst = 5 }\n\n[[route]]\nkey = \"GET /b\"\nmock = {}\n\n[[api_key]]\nname = \"k\"\nvalue = \"secret-0123456789abcdef\"\n";

    #[test]
    fn restart_notes_compare_against_what_runs() {
        let running = Running::of(&cfg(BASE));
        let one = cfg(&BASE.replace("workers = 2", "workers = 1"));
        let notes = running.notes(&one).join("\n");
        assert!(
            notes.contains("server.workers: the file has 1, the process runs 2"),
            "{notes}"
        );
        // the same file again: still noted (the process still runs 2)
        assert_eq!(running.notes(&one).len(), 1);
        // back to what runs: nothing to note
        assert!(running.notes(&cfg(BASE)).is_empty());
        let many = BASE.replace(
            "workers = 2",
            "workers = 2\ndriver = \"epoll\"\nread_buffer_bytes = 32768\nring_entries = 64\npin_cores = true\nstate_dir = \"/tmp/x\"\nbacklog = 128\n[admin]\nlisten = \"127.0.0.1:0\"",
        );
        let notes = running.notes(&cfg(&many)).join("\n");
        for key in [
            "server.driver: the file has epoll, the process runs auto",
            "server.read_buffer_bytes",
            "server.ring_entries",
            "server.pin_cores",
            "server.state_dir",
            "server.backlog: the file has 128, the process runs 4096",
            "admin.listen: the file has 127.0.0.1:0, the process runs none",
        ] {
            assert!(notes.contains(key), "{key} missing from: {notes}");
        }
        assert!(!notes.contains("workers"), "{notes}");
        // an address a reload adds is bound with the new backlog: no note for it
        let mut after = running.clone();
        let moved = cfg(&BASE
            .replace("127.0.0.1:0", "127.0.0.1:1")
            .replace("workers = 2", "workers = 2\nbacklog = 128"));
        after.applied(&moved);
        assert!(after.notes(&moved).is_empty(), "{:?}", after.notes(&moved));
    }

    #[test]
    fn restart_only_settings_are_notes_not_changes() {
        // workers 2 → 1 → 2 in the file while the process runs 2: no reload applies a change
        let two = cfg(BASE);
        let one = cfg(&BASE.replace("workers = 2", "workers = 1"));
        assert!(Changes::between(&two, &one).is_empty());
        let back = Changes::between(&one, &two);
        assert_eq!(back.summary(), "no changes");
        // an applicable setting next to it is still listed
        let both = cfg(&BASE.replace(
            "workers = 2",
            "workers = 1\n[server.timeouts]\nwrite_ms = 5",
        ));
        assert_eq!(
            Changes::between(&two, &both).settings,
            vec!["server.timeouts.write_ms".to_string()]
        );
    }

    #[test]
    fn spelling_out_a_default_is_no_change() {
        let a = cfg(BASE);
        // no change from `a` to the config of `text`
        let unchanged = |text: &str| {
            let c = Changes::between(&a, &cfg(text));
            assert!(c.is_empty(), "{c:?}");
            assert_eq!(c.summary(), "no changes");
        };
        unchanged(BASE);
        unchanged(&BASE.replace("workers = 2", "workers = 2\nbacklog = 4096"));
        // defaults that are not serde's: a forwarding route's `strip_api_key`, the limits'
        // `sync_interval_ms` without a `[throttle]` table
        unchanged(&BASE.replace(
            "upstream = \"u\"",
            "upstream = \"u\"\nstrip_api_key = false",
        ));
        unchanged(&BASE.replace(
            "workers = 2",
            "workers = 2\n[throttle]\nsync_interval_ms = 10",
        ));
    }

    #[test]
    fn every_kind_of_change_is_listed() {
        let a = cfg(BASE);
        let text = BASE
            .replace("rate = 5", "rate = 6")
            .replace("key = \"GET /b\"\nmock = {}", "key = \"GET /c\"\nmock = {}")
            .replace("name = \"k\"", "name = \"k2\"")
            .replace(
                "workers = 2",
                "workers = 2\n[server.timeouts]\nwrite_ms = 5",
            )
            .replace(
                "targets = [\"127.0.0.1:9\"]",
                "targets = [\"127.0.0.1:10\"]",
            );
        let c = Changes::between(&a, &cfg(&text));
        assert_eq!(c.routes.added, ["GET /c"]);
        assert_eq!(c.routes.removed, ["GET /b"]);
        assert_eq!(c.routes.changed, ["GET /a"]);
        assert_eq!(c.upstreams.changed, ["u"]);
        assert_eq!(
            (c.api_keys.added.as_slice(), c.api_keys.removed.as_slice()),
            (&["k2".to_string()][..], &["k".to_string()][..])
        );
        assert_eq!(c.limits.changed, ["route GET /a"]);
        assert_eq!(c.settings, ["server.timeouts.write_ms"]);
        let j = c.json();
        assert!(j.contains(",\"routes\":{\"added\":[\"GET /c\"],\"removed\":[\"GET /b\"],\"changed\":[\"GET /a\"]},"), "{j}");
        assert!(j.starts_with("{\"summary\":\"routes added: GET /c; routes removed: GET /b; routes changed: GET /a; "), "{j}");
        assert!(!j.contains("secret"), "{j}");
    }

    /// A target's weight belongs to its upstream: changing it is an upstream change (each
    /// worker builds the upstream afresh, adopting its idle connections by address); writing
    /// weight 1 out in the table form is no change at all.
    #[test]
    fn a_weight_change_changes_the_upstream() {
        let two = BASE.replace("\"127.0.0.1:9\"]", "\"127.0.0.1:9\", \"127.0.0.1:10\"]");
        let a = cfg(&two);
        let table = |w: u32| {
            let t = format!("{{ address = \"127.0.0.1:10\", weight = {w} }}]");
            cfg(&two.replace("\"127.0.0.1:10\"]", &t))
        };
        let heavier = table(4);
        assert_eq!(Changes::between(&a, &heavier).upstreams.changed, ["u"]);
        assert_ne!(a.upstreams[0], heavier.upstreams[0]);
        let same = table(1);
        assert!(Changes::between(&a, &same).upstreams.changed.is_empty());
        assert_eq!(a.upstreams[0], same.upstreams[0]);
    }

    /// `server.h2c` and `[server.http2]` apply per generation (to connections accepted after
    /// the reload), so they are changes a reload applies, not restart notes.
    #[test]
    fn http2_settings_are_reloadable_changes() {
        let a = cfg(BASE);
        let text = BASE.replace(
            "workers = 2",
            "workers = 2\nh2c = true\n[server.http2]\nmax_concurrent_streams = 10",
        );
        let b = cfg(&text);
        let c = Changes::between(&a, &b);
        assert_eq!(
            c.settings,
            ["server.h2c", "server.http2.max_concurrent_streams"]
        );
        assert!(Running::of(&a).notes(&b).is_empty());
    }

    #[test]
    fn functions_are_listed_by_name() {
        let f = |name: &str, queue: u32| {
            format!("[[function]]\nname = \"{name}\"\ncommand = [\"x\"]\nqueue = {queue}\n")
        };
        let a = cfg(&format!("{BASE}{}{}", f("kept", 1), f("gone", 1)));
        let b = cfg(&format!("{BASE}{}{}", f("kept", 2), f("new", 1)));
        let c = Changes::between(&a, &b);
        assert_eq!(c.functions.added, ["new"]);
        assert_eq!(c.functions.removed, ["gone"]);
        assert_eq!(c.functions.changed, ["kept"]);
        assert!(
            c.summary()
                .contains("functions added: new; functions removed: gone; functions changed: kept"),
            "{}",
            c.summary()
        );
        assert!(
            c.json().contains(",\"functions\":{\"added\":[\"new\"],"),
            "{}",
            c.json()
        );
        // the same text again: nothing changed
        assert!(Changes::between(&a, &a).functions.is_empty());
    }
}
