//! The gateway the HTTP/2 tests run against: one worker (so "the same worker still serves"
//! is literally the same core), `server.h2c = true` on the plain listener, optional
//! `[server.http2]` limits, a recording origin behind `ANY /api/{proxy+}`, a mock route
//! `GET /mock` and, when asked, an admin listener for `/metrics`. In TLS mode (the thread's
//! [`super::Transport`]) `g.addr` is the TLS listener, whose ALPN default offers `h2`.
//! Also the checks every conformance test ends with: the worker serves a fresh HTTP/2
//! connection, and the origin received nothing of a refused request.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::h2raw::{Block, H2};
use super::{get, upstream_toml, Gateway, Origin, Reply};

/// Holds the origin's answers until opened, so a test keeps a stream in a state it chose
/// (half-closed (remote): the request ended, the response not begun) without timing.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

/// How long a held origin answer waits at most (liveness, not performance).
const GATE_LIVE: Duration = Duration::from_secs(20);

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let g = self.open.lock().unwrap();
        let _ = self
            .cv
            .wait_timeout_while(g, GATE_LIVE, |open| !*open)
            .unwrap();
    }
}

/// Routes shared by the HTTP/2 tests.
pub fn routes(origin: &Origin) -> String {
    upstream_toml("origin", &[origin.addr], "response_timeout_ms = 10000")
        + r#"
[[route]]
key = "ANY /api/{proxy+}"
upstream = "origin"

[[route]]
key = "GET /mock"
mock = { status = 200, body = "mocked", headers = { "content-type" = "text/plain" } }
"#
}

/// A started gateway and what a test needs around it.
pub struct Env {
    pub g: Gateway,
    pub o: Origin,
    /// The address HTTP/2 clients use (h2c in plain mode, TLS+ALPN h2 in TLS mode).
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// Set by [`Env::held`]: the origin answers only once it is opened.
    pub gate: Option<Arc<Gate>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        // release held origin answers before the gateway drains
        if let Some(gate) = &self.gate {
            gate.open();
        }
    }
}

impl Env {
    /// One worker on driver `d`, h2c on, `[server.http2]` = `http2` (omitted when empty), an
    /// echo origin.
    pub fn start(d: &str, http2: &str) -> Env {
        Env::with_origin(d, http2, Origin::echo(), false)
    }

    /// [`Env::start`] with the given origin and optionally an admin listener.
    pub fn with_origin(d: &str, http2: &str, o: Origin, admin: bool) -> Env {
        Env::with_tables(d, http2, "", o, admin)
    }

    /// [`Env::with_origin`] with `[server.timeouts]` = `timeouts` (omitted when empty).
    pub fn with_tables(d: &str, http2: &str, timeouts: &str, o: Origin, admin: bool) -> Env {
        let mut rest = String::new();
        if !http2.is_empty() {
            rest += &format!("[server.http2]\n{http2}\n");
        }
        if !timeouts.is_empty() {
            rest += &format!("[server.timeouts]\n{timeouts}\n");
        }
        if admin {
            rest += "[admin]\nlisten = \"127.0.0.1:0\"\n";
        }
        rest += &routes(&o);
        let g = Gateway::start_with(d, 1, "h2c = true", &rest);
        let addr = g.addr;
        let admin = g.handle().admin_addr();
        Env {
            g,
            o,
            addr,
            admin,
            gate: None,
        }
    }

    /// [`Env::start`] whose origin holds every answer (`200 "held"`) until
    /// `env.gate` is opened.
    pub fn held(d: &str, http2: &str) -> Env {
        Env::held_with(d, http2, false)
    }

    /// [`Env::held`], optionally with an admin listener. Requests to `/api/large` are not
    /// held: they get a 1 MiB body ([`Reply::Stream`]).
    pub fn held_with(d: &str, http2: &str, admin: bool) -> Env {
        let gate = Arc::new(Gate::default());
        let g2 = gate.clone();
        let o = Origin::start(move |r| {
            if r.target.starts_with("/api/large") {
                return Reply::Stream(1 << 20);
            }
            g2.wait();
            Reply::ok("held")
        });
        let mut env = Env::with_origin(d, http2, o, admin);
        env.gate = Some(gate);
        env
    }

    /// Opens the gate of a [`Env::held`] origin.
    pub fn release(&self) {
        self.gate.as_ref().expect("a held origin").open();
    }

    pub fn h2(&self) -> H2 {
        H2::open(self.addr)
    }

    /// A fresh HTTP/2 connection is served by the (single) worker: GET /mock → 200.
    pub fn assert_serves(&self) {
        let mut h = H2::open(self.addr);
        let r = h.get_response(1, "/mock");
        assert_eq!(r.status, 200, "a fresh connection after the error");
        assert_eq!(r.text(), "mocked");
    }

    /// The origin received nothing before now: a fresh connection's `GET /api/probe` is the
    /// one and only request it ever saw, on its only connection (so no earlier request, not
    /// even a partial one, reached it: the origin's accept order follows the gateway's
    /// connects).
    pub fn assert_origin_untouched(&self) {
        let mut h = H2::open(self.addr);
        let r = h.get_response(1, "/api/probe");
        assert_eq!(r.status, 200, "probe through the origin");
        let reqs = self.o.requests();
        let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(
            targets,
            ["/api/probe"],
            "the origin must have received nothing else"
        );
        assert_eq!(
            self.o.connections(),
            1,
            "no other origin connection was opened"
        );
    }

    /// Polls `/metrics` until the counter `name` with `labels` reaches `want` (the close and
    /// the count happen on the worker after the GOAWAY we read); panics with the last
    /// exposition after [`GATE_LIVE`] (liveness only).
    pub fn wait_metric(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let deadline = std::time::Instant::now() + GATE_LIVE;
        loop {
            let text = self.metrics();
            let v = super::h2raw::metric_sum(&text, name, labels);
            if v >= want {
                assert_eq!(v, want, "{name}{labels:?} counted more than once:\n{text}");
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("{name}{labels:?} = {v}, want {want}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/metrics` from the admin listener.
    pub fn metrics(&self) -> String {
        get(self.admin.expect("admin listener"), "/metrics").text()
    }
}

/// `Block::request` with `content-length`.
pub fn post(path: &str, len: usize) -> Block {
    Block::request("POST", path).lit("content-length", &len.to_string())
}
