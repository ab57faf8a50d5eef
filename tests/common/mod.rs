//! Test harness: tollgate started in-process on real sockets, a recording origin that keeps the
//! exact bytes it received, and a raw HTTP/1.1 client. Every test runs on both drivers through
//! [`both_drivers!`], or on both drivers over plain TCP and over TLS through [`all_transports!`]
//! (conn.rs: the transport mode, the TLS gateway registry and the client [`Conn`]).
#![allow(dead_code)]
// The harness panics to fail the test using it; the crate-wide deny of unwrap/expect
// (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tollgate::server::reload::{ConfigSource, ReloadReport};
use tollgate::server::{self, ServerHandle};

pub mod apt;
pub mod conn;
pub mod h2client;
pub mod h2env;
pub mod h2raw;
pub mod h2wire;
pub mod jwt;
pub mod lambda;
pub mod tls_client;
pub mod tls_origin;

#[allow(unused_imports)]
pub use conn::{proto, transport, Conn, Transport};

/// Generates each test once per driver: `io_uring::name` and `epoll::name`.
#[macro_export]
macro_rules! both_drivers {
    ($(fn $name:ident($d:ident) $body:block)*) => {
        mod io_uring {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { let $d: &str = "io_uring"; $body } )*
        }
        mod epoll {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { let $d: &str = "epoll"; $body } )*
        }
    };
}

/// A running in-process gateway, drained and joined on drop.
pub struct Gateway {
    handle: Option<ServerHandle>,
    /// The first `server.listen` address, or in TLS mode the first `tls.listen` address.
    pub addr: SocketAddr,
    /// The config file the gateway was started from (and reloads read).
    pub config_path: std::path::PathBuf,
    /// In TLS mode, the `[tls]` table appended to every config text (also on rewrites).
    tls: Option<String>,
}

impl Gateway {
    /// Starts tollgate with `[server]` preset (loopback port 0, `workers`, `driver`) followed by
    /// `rest` (upstreams and routes; may also hold `[server.limits]`-style tables).
    pub fn start(driver: &str, workers: usize, rest: &str) -> Gateway {
        let text = server_toml(driver, workers, "") + rest;
        Gateway::from_toml(&text)
    }

    /// Like [`Gateway::start`] with extra lines inside `[server]`.
    pub fn start_with(driver: &str, workers: usize, server_extra: &str, rest: &str) -> Gateway {
        let text = server_toml(driver, workers, server_extra) + rest;
        Gateway::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Gateway {
        Gateway::from_toml_with(text, tollgate::config::resolve::system())
    }

    /// [`Gateway::from_toml`] with upstream host names looked up by `resolver` (at load, by
    /// reloads and by the resolver thread).
    pub fn from_toml_with(
        text: &str,
        resolver: Arc<dyn tollgate::config::resolve::Resolver>,
    ) -> Gateway {
        // TLS mode: unless the test configures TLS itself, add a listener and serve `addr` on it
        let tls = (transport() == Transport::Tls
            && !text.starts_with("[tls]")
            && !text.contains("\n[tls]"))
        .then(conn::tls_section);
        let owned = text.to_string() + tls.as_deref().unwrap_or("");
        let text = owned.as_str();
        let cfg = tollgate::config::from_str_with(text, resolver.clone())
            .unwrap_or_else(|e| panic!("test config invalid:\n{}\n{text}", e.render("test")));
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tollgate-test-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).expect("config file written");
        let source = ConfigSource::File(path.clone());
        let handle = server::start_with(Arc::new(cfg), source, resolver).expect("gateway starts");
        let addr = match tls {
            Some(_) => {
                let a = handle.tls_addrs()[0];
                conn::register_tls(a);
                a
            }
            None => handle.local_addrs()[0],
        };
        Gateway {
            handle: Some(handle),
            addr,
            config_path: path,
            tls,
        }
    }

    /// Replaces the config file's text (a following reload reads it).
    pub fn write_config(&self, text: &str) {
        let text = text.to_string() + self.tls.as_deref().unwrap_or("");
        std::fs::write(&self.config_path, text).expect("config file written");
    }

    /// Reloads the config file (as SIGHUP does).
    pub fn reload(&self) -> Result<ReloadReport, String> {
        self.handle().reload().map_err(|e| e.to_string())
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    /// The first plain (`server.listen`) address, in either mode.
    pub fn plain_addr(&self) -> SocketAddr {
        self.handle().local_addrs()[0]
    }

    pub fn stop(mut self) {
        conn::unregister_tls(self.addr);
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        conn::unregister_tls(self.addr);
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.join();
        }
        let _ = std::fs::remove_file(&self.config_path);
    }
}

pub fn server_toml(driver: &str, workers: usize, extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\ndriver = \"{driver}\"\n{extra}\n"
    )
}

/// An `[[upstream]]` table for `origin`.
pub fn upstream_toml(name: &str, addrs: &[SocketAddr], extra: &str) -> String {
    let targets: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[[upstream]]\nname = \"{name}\"\ntargets = [{}]\n{extra}\n",
        targets.join(", ")
    )
}

/// One request as the origin received it.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The exact bytes of this request on the wire (head and body as framed).
    pub raw: Vec<u8>,
    pub method: String,
    pub target: String,
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// The decoded body (empty when the origin was told not to keep bodies).
    pub body: Vec<u8>,
    pub body_len: u64,
    /// Index of the origin-side connection that carried the request.
    pub conn: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn head_text(&self) -> String {
        let end = find(&self.raw, b"\r\n\r\n").map_or(self.raw.len(), |i| i + 4);
        String::from_utf8_lossy(&self.raw[..end]).into_owned()
    }
}

/// What the origin does after reading a request.
pub enum Reply {
    /// Write these bytes, keep the connection.
    Raw(Vec<u8>),
    /// Write these bytes, then close.
    RawThenClose(Vec<u8>),
    /// Close without answering.
    Close,
    /// Wait, then do the inner reply.
    After(Duration, Box<Reply>),
    /// Write a body of `len` bytes (pattern `i % 251`) with Content-Length, in 64 KiB writes.
    Stream(u64),
}

impl Reply {
    /// `200 OK` with a Content-Length body.
    pub fn ok(body: &str) -> Reply {
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A recording origin on its own threads (blocking std sockets).
pub struct Origin {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Origin {
    /// An origin answering every request with `handler`, keeping bodies.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Origin {
        Origin::start_opts(true, handler)
    }

    /// An origin answering `200` with body `"{method} {target}"`.
    pub fn echo() -> Origin {
        Origin::start(|r| Reply::ok(&format!("{} {}", r.method, r.target)))
    }

    pub fn start_opts(
        keep_bodies: bool,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("origin binds");
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (recorded, connections, stop) =
                (recorded.clone(), connections.clone(), stop.clone());
            thread::spawn(move || {
                for s in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(s) = s else { continue };
                    let id = connections.fetch_add(1, Ordering::AcqRel);
                    let (recorded, handler) = (recorded.clone(), handler.clone());
                    thread::spawn(move || {
                        serve_origin_conn(s, id, keep_bodies, &recorded, &*handler)
                    });
                }
            });
        }
        Origin {
            addr,
            recorded,
            connections,
            stop,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn serve_origin_conn(
    mut s: TcpStream,
    conn: usize,
    keep_bodies: bool,
    recorded: &Mutex<Vec<Recorded>>,
    handler: &Handler,
) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(mut rec) = read_request(&mut s, &mut buf, keep_bodies) else {
            return;
        };
        rec.conn = conn;
        recorded.lock().unwrap().push(rec.clone());
        let mut reply = handler(&rec);
        loop {
            match reply {
                Reply::After(d, inner) => {
                    thread::sleep(d);
                    reply = *inner;
                }
                Reply::Raw(b) => {
                    if s.write_all(&b).is_err() {
                        return;
                    }
                    break;
                }
                Reply::RawThenClose(b) => {
                    let _ = s.write_all(&b);
                    let _ = s.shutdown(Shutdown::Both);
                    return;
                }
                Reply::Close => {
                    let _ = s.shutdown(Shutdown::Both);
                    return;
                }
                Reply::Stream(len) => {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                    if s.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let chunk: Vec<u8> = (0..65_536u64).map(|i| (i % 251) as u8).collect();
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(chunk.len() as u64) as usize;
                        if s.write_all(&chunk[..n]).is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                    break;
                }
            }
        }
    }
}

/// Reads from `s` into `buf` until it holds a whole head; the head's length (through the empty
/// line). None at EOF or on error.
fn head_end(s: &mut (impl Read + ?Sized), buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Some(i + 4);
        }
        fill(s, buf)?;
    }
}

/// Reads one head from `s` (for origins and clients written by hand whose messages carry no
/// body) and takes it out of `buf`; what follows it stays there. None at EOF or on error.
pub fn read_head(s: &mut (impl Read + ?Sized), buf: &mut Vec<u8>) -> Option<String> {
    let end = head_end(s, buf)?;
    let head: Vec<u8> = buf.drain(..end).collect();
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Reads one request (head + body, chunked or Content-Length) from `s`, keeping the exact
/// bytes; what follows it stays in `buf`. None at EOF, on error or on a head httparse refuses.
pub fn read_request(
    s: &mut (impl Read + ?Sized),
    buf: &mut Vec<u8>,
    keep_bodies: bool,
) -> Option<Recorded> {
    let head_end = head_end(s, buf)?;
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..head_end]).ok()?;
    let mut rec = Recorded {
        method: req.method?.to_string(),
        target: req.path?.to_string(),
        version: req.version?,
        headers: owned_headers(req.headers),
        ..Default::default()
    };
    let chunked = rec
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut raw: Vec<u8> = buf.drain(..head_end).collect();
    if chunked {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(s, buf)?;
            };
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = u64::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            raw.extend(buf.drain(..line_end + 2));
            if size == 0 {
                // trailers until an empty line
                loop {
                    let e = loop {
                        if let Some(i) = find(buf, b"\r\n") {
                            break i;
                        }
                        fill(s, buf)?;
                    };
                    raw.extend(buf.drain(..e + 2));
                    if e == 0 {
                        break;
                    }
                }
                break;
            }
            let need = size as usize + 2;
            while buf.len() < need {
                fill(s, buf)?;
            }
            let data: Vec<u8> = buf.drain(..need).collect();
            rec.body_len += size;
            if keep_bodies {
                rec.body.extend_from_slice(&data[..size as usize]);
                raw.extend_from_slice(&data);
            }
        }
    } else if let Some(cl) = rec.header("content-length") {
        let mut left: u64 = cl.trim().parse().ok()?;
        while left > 0 {
            if buf.is_empty() {
                fill(s, buf)?;
            }
            let n = (left as usize).min(buf.len());
            let data: Vec<u8> = buf.drain(..n).collect();
            left -= n as u64;
            rec.body_len += n as u64;
            if keep_bodies {
                rec.body.extend_from_slice(&data);
                raw.extend_from_slice(&data);
            }
        }
    }
    rec.raw = raw;
    Some(rec)
}

fn fill(s: &mut (impl Read + ?Sized), buf: &mut Vec<u8>) -> Option<()> {
    let mut tmp = [0u8; 65_536];
    match s.read(&mut tmp) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            Some(())
        }
    }
}

fn owned_headers(hs: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response as the client received it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head's exact bytes.
    pub head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection with a 10 s read timeout (TLS to a TLS-mode gateway's address).
pub fn connect(addr: SocketAddr) -> Conn {
    let s = Conn::connect(addr).expect("connect to gateway");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A client that keeps unread bytes between responses (pipelining, keep-alive).
pub struct Client {
    pub stream: Conn,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            stream: connect(addr),
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("client write");
    }

    /// Reads one response; `head_request` suppresses the body as for HEAD.
    pub fn read(&mut self, head_request: bool) -> Option<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            fill(&mut self.stream, &mut self.buf)?;
        };
        let mut hs = [httparse::EMPTY_HEADER; 128];
        let mut r = httparse::Response::new(&mut hs);
        r.parse(&self.buf[..head_end]).expect("valid response head");
        let mut resp = Response {
            status: r.code?,
            version: r.version?,
            headers: owned_headers(r.headers),
            body: Vec::new(),
            head: String::from_utf8_lossy(&self.buf[..head_end]).into_owned(),
        };
        self.buf.drain(..head_end);
        if head_request || resp.status == 204 || resp.status == 304 || resp.status < 200 {
            return Some(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            loop {
                let e = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    fill(&mut self.stream, &mut self.buf)?;
                };
                let line = String::from_utf8_lossy(&self.buf[..e]).into_owned();
                let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
                self.buf.drain(..e + 2);
                if size == 0 {
                    loop {
                        let e = loop {
                            if let Some(i) = find(&self.buf, b"\r\n") {
                                break i;
                            }
                            fill(&mut self.stream, &mut self.buf)?;
                        };
                        self.buf.drain(..e + 2);
                        if e == 0 {
                            return Some(resp);
                        }
                    }
                }
                while self.buf.len() < size + 2 {
                    fill(&mut self.stream, &mut self.buf)?;
                }
                resp.body.extend(self.buf.drain(..size));
                assert_eq!(&self.buf[..2], b"\r\n", "chunk data must end with CRLF");
                self.buf.drain(..2);
            }
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl.parse().expect("content-length");
            while self.buf.len() < n {
                fill(&mut self.stream, &mut self.buf)?;
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            while fill(&mut self.stream, &mut self.buf).is_some() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    /// True when the server closed the connection (EOF) with nothing else pending.
    pub fn is_closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// Sends `raw` on a fresh connection and reads one response.
pub fn roundtrip(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut c = Client::new(addr);
    c.send(raw);
    c.read(raw.starts_with(b"HEAD ")).expect("a response")
}

/// `GET path` with `Host: localhost` (a name the admin listener accepts), on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// The raw JSON text of `name` in a JSON access-log line: a string with its quotes, or a number
/// (`lambda::field` parses the line instead).
pub fn raw_field<'a>(line: &'a str, name: &str) -> &'a str {
    let pat = format!("\"{name}\":");
    let at = line
        .find(&pat)
        .unwrap_or_else(|| panic!("{name} missing in {line}"))
        + pat.len();
    let rest = &line[at..];
    let end = if rest.starts_with('"') {
        let b = rest.as_bytes();
        let mut i = 1;
        while b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    } else {
        rest.find([',', '}']).unwrap()
    };
    &rest[..end]
}

/// A loopback port nobody listens on, taken from below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), so no outbound connection of a test running meanwhile
/// can be handed it as its local port while a test has released it on purpose (a listener
/// removed by a reload and added back).
pub fn unephemeral_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // spread concurrent callers over the range by a per-process counter and the pid
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let span = usize::from(low.saturating_sub(10_000)).max(1);
    let start = (std::process::id() as usize).wrapping_mul(7919) % span;
    for _ in 0..span {
        let i = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = 10_000 + i as u16;
        // one after the other: a listener alive on one address would refuse the other
        let loopback = TcpListener::bind(("127.0.0.1", port)).is_ok();
        if loopback && TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}
