//! Upstream host names are re-resolved while tollgate runs, on both drivers: every address a
//! name returns is used, new answers reach the workers between requests, a failed lookup keeps
//! the last good answer, `/status` and the metrics show the addresses, and lookups never run on
//! a worker thread. Answers are swapped through an injected resolver (no DNS server needed);
//! one test uses the system resolver on `localhost`.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tollgate::config::resolve::Resolver;

/// A resolver whose answer the test sets; `None` makes every lookup fail. It records the
/// threads it ran on.
#[derive(Default)]
struct Swap {
    answer: Mutex<Option<Vec<SocketAddr>>>,
    threads: Mutex<Vec<String>>,
}

impl Swap {
    fn set(&self, answer: Option<&[SocketAddr]>) {
        *self.answer.lock().unwrap() = answer.map(<[SocketAddr]>::to_vec);
    }
}

impl Resolver for Swap {
    fn lookup(&self, host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
        let me = thread::current().name().unwrap_or("?").to_string();
        self.threads.lock().unwrap().push(me);
        assert_eq!(host, "svc.test");
        match &*self.answer.lock().unwrap() {
            Some(a) => Ok(a.clone()),
            None => Err(io::Error::other("SERVFAIL (test)")),
        }
    }
}

/// A resolver the test steps through: the resolver thread's lookups wait in `lookup` until the
/// test answers them one by one; any other thread's (startup, reloads) get `answer` at once.
struct Stepped {
    answer: Mutex<Vec<SocketAddr>>,
    entered: Mutex<std::sync::mpsc::Sender<()>>,
    go: Mutex<std::sync::mpsc::Receiver<Vec<SocketAddr>>>,
}

impl Resolver for Stepped {
    fn lookup(&self, _host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
        if thread::current().name() != Some("tollgate-dns") {
            return Ok(self.answer.lock().unwrap().clone());
        }
        let gone = || io::Error::other("the test ended");
        self.entered.lock().unwrap().send(()).map_err(|_| gone())?;
        self.go.lock().unwrap().recv().map_err(|_| gone())
    }
}

/// A resolver for two names: `gw.test` (the listen address, always 127.0.0.1) and `svc.test`
/// (the upstream, as the test sets it). It records which threads looked up which name.
struct TwoNames {
    svc: Mutex<Vec<SocketAddr>>,
    calls: Mutex<Vec<(String, String)>>,
}

impl Resolver for TwoNames {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let me = thread::current().name().unwrap_or("?").to_string();
        self.calls.lock().unwrap().push((me, host.to_string()));
        match host {
            "gw.test" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
            _ => Ok(self.svc.lock().unwrap().clone()),
        }
    }
}

/// A resolver that, once `armed`, holds every lookup of a thread other than the resolver
/// thread (a reload's) until the test lets it go: DNS that hangs.
struct Hanging {
    answer: Vec<SocketAddr>,
    armed: std::sync::atomic::AtomicBool,
    entered: Mutex<std::sync::mpsc::Sender<()>>,
    go: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Resolver for Hanging {
    fn lookup(&self, _host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
        let armed = self.armed.load(std::sync::atomic::Ordering::SeqCst);
        if armed && thread::current().name() != Some("tollgate-dns") {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.go.lock().unwrap().recv();
        }
        Ok(self.answer.clone())
    }
}

/// tollgate started with `resolver` (a [`Gateway`]: drained on drop), with its addresses.
struct Gw {
    g: Gateway,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Gw {
    fn start(text: &str, resolver: Arc<dyn Resolver>) -> Gw {
        let g = Gateway::from_toml_with(text, resolver);
        Gw {
            addr: g.addr,
            admin: g.handle().admin_addr().expect("admin configured"),
            g,
        }
    }
}

fn config(d: &str, targets: &str) -> String {
    server_toml(d, 2, "")
        + "[admin]\nlisten = \"127.0.0.1:0\"\n"
        + &format!(
            "[[upstream]]\nname = \"svc\"\ntargets = [{targets}]\nresolve_interval_ms = 1000\n"
        )
        + "[[route]]\nkey = \"GET /who\"\nupstream = \"svc\"\n"
}

/// Sends requests until `done` holds (an upper bound for liveness, not a timing assertion).
fn until(what: &str, gw: &Gw, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "never happened: {what}"
        );
        assert_eq!(get(gw.addr, "/who").status, 200);
        thread::sleep(Duration::from_millis(25));
    }
}

/// An origin answering `body` on `listener` (keep-alive, Content-Length).
fn tiny_origin(listener: TcpListener, body: &'static str) {
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let mut buf = Vec::new();
                while read_head(&mut s, &mut buf).is_some() {
                    let r = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(r.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

both_drivers! {
    fn new_answers_reach_the_workers_and_a_failed_lookup_keeps_the_last_good_one(d) {
        let one = Origin::start(|_| Reply::ok("one"));
        let two = Origin::start(|_| Reply::ok("two"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[one.addr]));
        let gw = Gw::start(&config(d, "\"svc.test:80\""), swap.clone());
        for _ in 0..4 {
            assert_eq!(get(gw.addr, "/who").text(), "one");
        }
        let status = get(gw.admin, "/status").text();
        assert!(
            status.contains(&format!(r#""upstreams":[{{"name":"svc","targets":[{{"target":"svc.test:80","addresses":["{}"],"resolved":"ok","resolved_at_ms":"#, one.addr)),
            "{status}"
        );

        // the name now has two addresses: both are used
        swap.set(Some(&[one.addr, two.addr]));
        until("the second address gets requests", &gw, || !two.requests().is_empty());
        let before = (one.requests().len(), two.requests().len());
        for _ in 0..20 {
            assert_eq!(get(gw.addr, "/who").status, 200);
        }
        assert!(one.requests().len() > before.0 && two.requests().len() > before.1, "both addresses serve");
        let metrics = get(gw.admin, "/metrics").text();
        assert!(
            metrics.contains("tollgate_upstream_resolved_addresses{upstream=\"svc\",target=\"svc.test:80\"} 2\n"),
            "{metrics}"
        );

        // DNS fails: the last good answer stays, counted and shown
        swap.set(None);
        until("the failure is recorded", &gw, || get(gw.admin, "/status").text().contains(r#""resolved":"error""#));
        let status = get(gw.admin, "/status").text();
        let mut both = [one.addr, two.addr];
        both.sort(); // addresses are kept sorted
        assert!(status.contains(&format!(r#""addresses":["{}","{}"]"#, both[0], both[1])), "{status}");
        assert!(status.contains("SERVFAIL (test)"), "{status}");
        let metrics = get(gw.admin, "/metrics").text();
        assert!(!metrics.contains("tollgate_dns_resolutions_total{upstream=\"svc\",result=\"error\"} 0\n"), "{metrics}");
        assert!(metrics.contains("tollgate_dns_resolutions_total{upstream=\"svc\",result=\"error\"} "), "{metrics}");
        let before = (one.requests().len(), two.requests().len());
        for _ in 0..20 {
            assert_eq!(get(gw.addr, "/who").status, 200);
        }
        assert!(one.requests().len() > before.0 && two.requests().len() > before.1, "still both");

        // the first address goes away: no request reaches it any more
        swap.set(Some(&[two.addr]));
        until("the first address is dropped", &gw, || {
            get(gw.admin, "/status").text().contains(&format!(r#""addresses":["{}"],"resolved":"ok""#, two.addr))
        });
        let gone = one.requests().len();
        for _ in 0..20 {
            assert_eq!(get(gw.addr, "/who").text(), "two");
        }
        assert_eq!(one.requests().len(), gone);
        // GET /config shows what the name stands for
        let cfg = get(gw.admin, "/config").text();
        assert!(cfg.contains(&format!("# resolved: {}", two.addr)), "{cfg}");
        assert!(cfg.contains("resolve_interval_ms = 1000"), "{cfg}");
        // lookups ran on the control plane only: the load and the resolver thread
        let threads = swap.threads.lock().unwrap().clone();
        assert!(threads.iter().any(|t| t == "tollgate-dns"), "{threads:?}");
        assert!(threads.iter().all(|t| !t.starts_with("tollgate-w")), "{threads:?}");
    }

    fn an_ejected_address_stays_ejected_when_the_name_changes(d) {
        let bad = Origin::start(|_| Reply::Raw(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".to_vec()));
        let good = Origin::start(|_| Reply::ok("good"));
        let third = Origin::start(|_| Reply::ok("third"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[bad.addr, good.addr]));
        let text = config(d, "\"svc.test:80\"").replace(
            "resolve_interval_ms = 1000\n",
            "resolve_interval_ms = 1000\npassive_failures = 1\npassive_cooldown_ms = 60000\n",
        );
        let gw = Gw::start(&text, swap.clone());
        let t = Instant::now();
        while bad.requests().is_empty() {
            assert!(t.elapsed() < Duration::from_secs(10), "round robin never reached the first address");
            get(gw.addr, "/who");
        }
        // one 500 ejects it for every worker
        for _ in 0..10 {
            assert_eq!(get(gw.addr, "/who").text(), "good");
        }
        assert_eq!(bad.requests().len(), 1);
        // the name gains an address: a new generation, and the ejection carries over by address
        swap.set(Some(&[bad.addr, good.addr, third.addr]));
        let t = Instant::now();
        while third.requests().is_empty() {
            assert!(t.elapsed() < Duration::from_secs(15), "the new address never got a request");
            assert_eq!(get(gw.addr, "/who").status, 200);
            thread::sleep(Duration::from_millis(25));
        }
        for _ in 0..20 {
            assert_eq!(get(gw.addr, "/who").status, 200);
        }
        assert_eq!(bad.requests().len(), 1, "the ejected address was tried again");
    }

    fn a_reloads_lookups_are_what_status_shows(d) {
        let one = Origin::start(|_| Reply::ok("one"));
        let two = Origin::start(|_| Reply::ok("two"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[one.addr]));
        let gw = Gw::start(&config(d, "\"svc.test:80\""), swap.clone());
        let handle = gw.g.handle();
        swap.set(None);
        let status = || get(gw.admin, "/status").text();
        until("the failure is recorded", &gw, || status().contains(r#""resolved":"error""#));
        // the resolver thread now looks the name up once a day only: what /status says next
        // comes from reloads
        let daily = config(d, "\"svc.test:80\"").replace("resolve_interval_ms = 1000", "resolve_interval_ms = 86400000");
        gw.g.write_config(&daily);
        handle.reload().expect("a DNS failure does not block the reload");
        assert!(status().contains(r#""resolved":"error""#), "{}", status());
        let failed = |m: &str| {
            m.lines()
                .find(|l| l.starts_with("tollgate_dns_resolutions_total{upstream=\"svc\",result=\"error\"}"))
                .and_then(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
                .unwrap()
        };
        let before = failed(&get(gw.admin, "/metrics").text());
        // DNS is back with another address; a reload looks the name up and serves it
        swap.set(Some(&[two.addr]));
        handle.reload().expect("reload applies");
        assert_eq!(get(gw.addr, "/who").text(), "two");
        let s = status();
        assert!(
            s.contains(&format!(r#""addresses":["{}"],"resolved":"ok""#, two.addr)),
            "the reload's successful lookup is not what /status shows: {s}"
        );
        assert!(!s.contains("SERVFAIL"), "{s}");
        // a reload's failed lookup is counted like the resolver thread's
        swap.set(None);
        handle.reload().expect("a DNS failure does not block the reload");
        assert!(status().contains(r#""resolved":"error""#), "{}", status());
        assert_eq!(failed(&get(gw.admin, "/metrics").text()), before + 1);
        assert_eq!(get(gw.addr, "/who").text(), "two", "the last good answer is kept");
    }

    fn an_answer_older_than_a_reloads_lookup_is_not_applied_over_it(d) {
        let [a, b, c] = [0, 1, 2].map(|_| Origin::start(|_| Reply::ok("x")));
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel();
        let stepped = Arc::new(Stepped {
            answer: Mutex::new(vec![a.addr]),
            entered: Mutex::new(entered_tx),
            go: Mutex::new(go_rx),
        });
        let gw = Gw::start(&config(d, "\"svc.test:80\""), stepped.clone());
        let bound = Duration::from_secs(15);
        // the resolver thread starts a lookup (it will answer b) ...
        entered.recv_timeout(bound).expect("the resolver thread looks the name up");
        // ... and while it waits, a reload looks the name up and serves c
        *stepped.answer.lock().unwrap() = vec![c.addr];
        gw.g.handle().reload().expect("reload applies");
        let served = |addr: SocketAddr| format!(r#""addresses":["{addr}"]"#);
        assert!(get(gw.admin, "/status").text().contains(&served(c.addr)));
        // the older lookup's answer arrives: the thread records it and would apply it
        go.send(vec![b.addr]).unwrap();
        // its next lookup means it is done with that answer
        entered.recv_timeout(bound).expect("the resolver thread looks the name up again");
        let status = get(gw.admin, "/status").text();
        assert!(status.contains(&served(c.addr)), "the older answer replaced the reload's: {status}");
        for _ in 0..10 {
            assert_eq!(get(gw.addr, "/who").status, 200);
        }
        assert!(b.requests().is_empty(), "requests went to the older answer's address");
        assert!(!c.requests().is_empty());
        go.send(vec![c.addr]).unwrap();
    }

    fn a_reload_waiting_for_dns_holds_off_no_scrape(d) {
        let one = Origin::start(|_| Reply::ok("one"));
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel();
        let hanging = Arc::new(Hanging {
            answer: vec![one.addr],
            armed: std::sync::atomic::AtomicBool::new(false),
            entered: Mutex::new(entered_tx),
            go: Mutex::new(go_rx),
        });
        let gw = Gw::start(&config(d, "\"svc.test:80\""), hanging.clone());
        hanging.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        let control = gw.g.handle().controller();
        let reload = thread::spawn(move || control.reload().map(|r| r.generation));
        entered.recv_timeout(Duration::from_secs(15)).expect("the reload looks the name up");
        // while the reload waits for DNS, metrics and status still answer
        let admin = gw.admin;
        let (tx, scraped) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send((get(admin, "/metrics").status, get(admin, "/status").status));
        });
        let answered = scraped.recv_timeout(Duration::from_secs(5));
        go.send(()).unwrap(); // DNS answers: the reload goes on
        assert_eq!(answered, Ok((200, 200)), "a scrape waited for the reload's DNS lookup");
        assert_eq!(reload.join().unwrap().expect("reload applies"), 1);
        assert_eq!(get(gw.addr, "/who").text(), "one");
    }

    fn a_listen_name_is_not_looked_up_again_when_an_upstream_name_changes(d) {
        let [one, two] = [0, 1].map(|_| Origin::start(|_| Reply::ok("x")));
        let names = Arc::new(TwoNames { svc: Mutex::new(vec![one.addr]), calls: Mutex::new(Vec::new()) });
        let text = config(d, "\"svc.test:80\"").replace("\"127.0.0.1:0\"", "\"gw.test:0\"");
        assert!(text.contains("listen = [\"gw.test:0\"]"), "{text}");
        let gw = Gw::start(&text, names.clone());
        assert_eq!(gw.addr.ip().to_string(), "127.0.0.1");
        *names.svc.lock().unwrap() = vec![two.addr];
        until("the new upstream address serves", &gw, || !two.requests().is_empty());
        // the generation the new answer made kept the listen address without looking it up:
        // the resolver thread looked up the upstream's name only
        let calls = names.calls.lock().unwrap().clone();
        assert!(
            calls.iter().all(|(thread, host)| thread != "tollgate-dns" || host == "svc.test"),
            "{calls:?}"
        );
        assert_eq!(get(gw.addr, "/who").status, 200, "still listening where it started");
    }

    fn a_request_in_flight_when_the_name_changes_finishes_on_its_address(d) {
        let one = Origin::start(|r| {
            if r.target.contains("slow") {
                Reply::After(Duration::from_secs(4), Box::new(Reply::ok("slow one")))
            } else {
                Reply::ok("one")
            }
        });
        let two = Origin::start(|_| Reply::ok("two"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[one.addr]));
        let gw = Gw::start(&config(d, "\"svc.test:80\""), swap.clone());
        let addr = gw.addr;
        let slow = thread::spawn(move || get(addr, "/who?slow"));
        let t = Instant::now();
        while !one.requests().iter().any(|r| r.target.contains("slow")) {
            assert!(t.elapsed() < Duration::from_secs(10), "the slow request never reached the origin");
            thread::sleep(Duration::from_millis(5));
        }
        // the name moves while the request is at the origin
        swap.set(Some(&[two.addr]));
        until("the new address serves", &gw, || !two.requests().is_empty());
        assert!(!slow.is_finished(), "the name changed only after the request had finished");
        let r = slow.join().unwrap();
        assert_eq!((r.status, r.text()), (200, "slow one".to_string()), "the request in flight finished where it started");
        let before = one.requests().len();
        for _ in 0..10 {
            assert_eq!(get(gw.addr, "/who").text(), "two");
        }
        assert_eq!(one.requests().len(), before, "the old address gets no new request");
    }

    fn upstreams_sharing_a_name_share_its_lookups(d) {
        let one = Origin::start(|_| Reply::ok("one"));
        let two = Origin::start(|_| Reply::ok("two"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[one.addr]));
        let text = config(d, "\"svc.test:80\"")
            + "[[upstream]]\nname = \"daily\"\ntargets = [\"svc.test:80\"]\nresolve_interval_ms = 86400000\n"
            + "[[route]]\nkey = \"GET /daily\"\nupstream = \"daily\"\n";
        let gw = Gw::start(&text, swap.clone());
        swap.set(Some(&[two.addr]));
        until("the new address serves", &gw, || !two.requests().is_empty());
        // one answer for the name: the upstream looking it up once a day moved with it
        for _ in 0..4 {
            assert_eq!(get(gw.addr, "/daily").text(), "two");
        }
        let status = get(gw.admin, "/status").text();
        let served = format!(r#""addresses":["{}"],"resolved":"ok""#, two.addr);
        assert_eq!(status.matches(&served).count(), 2, "{status}");
    }

    fn pooled_connections_to_an_address_the_name_dropped_are_closed(d) {
        // an origin counting the connections it accepted and those the gateway closed
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let one_addr = listener.local_addr().unwrap();
        let counts = Arc::new(Mutex::new((0usize, 0usize)));
        let c = counts.clone();
        thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                c.lock().unwrap().0 += 1;
                let c = c.clone();
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    while read_head(&mut s, &mut buf).is_some() {
                        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none").is_err() {
                            break;
                        }
                    }
                    c.lock().unwrap().1 += 1; // end of stream: the gateway closed it
                });
            }
        });
        let two = Origin::start(|_| Reply::ok("two"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[one_addr]));
        let gw = Gw::start(&config(d, "\"svc.test:80\""), swap.clone());
        for _ in 0..8 {
            assert_eq!(get(gw.addr, "/who").text(), "one");
        }
        let (accepted, closed) = *counts.lock().unwrap();
        assert!(accepted > 0 && closed < accepted, "idle connections are pooled: {accepted} {closed}");
        swap.set(Some(&[two.addr]));
        until("the new address serves", &gw, || !two.requests().is_empty());
        // well before the pool's idle timeout (60 s), the connections to the dropped address close
        let t = Instant::now();
        loop {
            let (accepted, closed) = *counts.lock().unwrap();
            if closed == accepted {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "{} of {accepted} connections to the dropped address still open", accepted - closed);
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn ip_literals_are_never_looked_up_and_a_reload_keeps_the_last_good_answer(d) {
        let one = Origin::start(|_| Reply::ok("one"));
        let swap = Arc::new(Swap::default());
        swap.set(Some(&[one.addr]));
        let gw = Gw::start(&config(d, &format!("\"{}\"", one.addr)), swap.clone());
        thread::sleep(Duration::from_millis(1500)); // longer than resolve_interval_ms
        assert!(swap.threads.lock().unwrap().is_empty(), "a literal was looked up");
        let status = get(gw.admin, "/status").text();
        assert!(status.contains(&format!(r#""addresses":["{}"],"resolved":"literal""#, one.addr)), "{status}");
        // a reload while DNS is down: the name keeps what it is served with
        gw.g.write_config(&config(d, "\"svc.test:80\""));
        gw.g.handle().reload().expect("reload applies");
        swap.set(None);
        gw.g.write_config(&(config(d, "\"svc.test:80\"") + "[[route]]\nkey = \"GET /x\"\nmock = {}\n"));
        let r = gw.g.handle().reload().expect("a DNS failure does not block the reload");
        assert_eq!(r.changes.routes.added, ["GET /x"]);
        assert_eq!(get(gw.addr, "/who").text(), "one");
    }

    fn the_system_resolver_on_localhost_uses_every_address(d) {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        let want: Vec<SocketAddr> = ("localhost", port).to_socket_addrs().unwrap().collect();
        let mut listeners = vec![v4];
        for a in &want {
            if a.is_ipv6() {
                listeners.push(TcpListener::bind(a).expect("the port is free on ::1 too"));
            }
        }
        for l in listeners {
            tiny_origin(l, "local");
        }
        let gw = Gw::start(&config(d, &format!("\"localhost:{port}\"")), tollgate::config::resolve::system());
        let status = get(gw.admin, "/status").text();
        let mut addrs: Vec<String> = want.iter().map(|a| format!("\"{a}\"")).collect();
        addrs.dedup();
        assert!(status.contains(&format!(r#""target":"localhost:{port}","addresses":[{}]"#, addrs.join(","))), "{status}");
        for _ in 0..10 {
            assert_eq!(get(gw.addr, "/who").text(), "local");
        }
    }
}
