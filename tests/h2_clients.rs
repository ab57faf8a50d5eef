//! Real HTTP/2 clients against the in-process gateway, on both drivers: curl
//! (`--http2-prior-knowledge` over h2c, `--http2` over TLS), nghttp (GET, POST, ten
//! concurrent streams), h2load (100 requests over 2 connections × 10 streams, all 2xx) and the
//! Python `h2` package running tests/py/h2_probe.py (GET, POST, concurrent streams, PING, a
//! malformed request reset with PROTOCOL_ERROR, a request after it). These are HTTP/2 stacks
//! independent of tollgate's own (the raw-frame tests decode with tollgate's HPACK). Missing
//! tools are installed by the test (apt-get for curl / nghttp2-client, pip --user for h2);
//! a failed install fails the test loudly, never skips it. Each gateway has a TLS listener
//! (ALPN default `h2`, `http/1.1`) and `server.h2c = true` on its plain listener.

// test helpers panic to fail the test (the deny is for runtime code)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use common::conn::{enter, Transport};
use common::h2env::Env;

/// Liveness bound for every client process (seconds, via coreutils `timeout`).
const PROC_LIVE: &str = "60";

fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg(PROC_LIVE)
        .arg(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    out
}

fn stdout_of(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Serialises installs (apt and pip hold locks) and runs each at most once per process.
static INSTALL: Mutex<()> = Mutex::new(());

fn ensure(done: &OnceLock<()>, present: impl Fn() -> bool, install: &[&str], what: &str) {
    done.get_or_init(|| {
        let _lock = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        if present() {
            return;
        }
        let out = Command::new(install[0])
            .args(&install[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {install:?} to install {what}: {e}"));
        assert!(
            out.status.success() && present(),
            "installing {what} with {install:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// curl with HTTP/2 (Debian's curl 7.88 is built with nghttp2).
fn need_curl() {
    static DONE: OnceLock<()> = OnceLock::new();
    let present = || {
        Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("HTTP2"))
    };
    DONE.get_or_init(|| common::apt::install(&["curl"], present));
}

/// nghttp and h2load (Debian nghttp2-client).
fn need_nghttp() {
    static DONE: OnceLock<()> = OnceLock::new();
    let present = || {
        ["nghttp", "h2load"].iter().all(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    };
    DONE.get_or_init(|| common::apt::install(&["nghttp2-client"], present));
}

/// The Python `h2` package.
fn need_python_h2() {
    static DONE: OnceLock<()> = OnceLock::new();
    let present = || {
        Command::new("python3")
            .args(["-c", "import h2.connection"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ensure(
        &DONE,
        present,
        &["python3", "-m", "pip", "install", "--quiet", "--user", "h2"],
        "python h2",
    );
}

/// A gateway with a TLS listener (`env.addr`) and h2c on its plain listener.
fn start(d: &str) -> (Env, SocketAddr, SocketAddr) {
    let _tls = enter(Transport::Tls);
    let env = Env::start(d, "");
    let (h2c, tls) = (env.g.plain_addr(), env.addr);
    assert_ne!(h2c, tls);
    (env, h2c, tls)
}

/// curl's arguments for one request: no proxy from the environment, a liveness bound, the
/// HTTP version and status appended to the body.
fn curl(extra: &[&str], url: &str) -> (String, String) {
    let mut args = vec![
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "30",
        "-w",
        "\n%{http_version} %{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = stdout_of("curl", &args);
    let (body, tail) = out.rsplit_once('\n').expect("curl -w line");
    (body.to_string(), tail.to_string())
}

both_drivers! {
    fn curl_h2c_prior_knowledge(d) {
        need_curl();
        let (env, h2c, _) = start(d);
        let (body, tail) = curl(&["--http2-prior-knowledge"], &format!("http://{h2c}/mock"));
        assert_eq!((body.as_str(), tail.as_str()), ("mocked", "2 200"));
        let (body, tail) = curl(
            &["--http2-prior-knowledge", "--data-binary", "hello from curl", "-H", "content-type: text/plain"],
            &format!("http://{h2c}/api/curl?x=1"),
        );
        assert_eq!((body.as_str(), tail.as_str()), ("POST /api/curl?x=1", "2 200"));
        let reqs = env.o.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body, b"hello from curl");
        assert_eq!(reqs[0].header("content-type"), Some("text/plain"));
        assert_eq!(reqs[0].header("x-forwarded-proto"), Some("http"));
        // without prior knowledge the same listener still speaks HTTP/1.1
        let (body, tail) = curl(&["--http1.1"], &format!("http://{h2c}/mock"));
        assert_eq!((body.as_str(), tail.as_str()), ("mocked", "1.1 200"));
    }

    fn curl_tls_alpn_h2(d) {
        need_curl();
        let (env, _, tls) = start(d);
        let url = format!("https://{tls}");
        let (body, tail) = curl(&["--http2", "-k"], &format!("{url}/mock"));
        assert_eq!((body.as_str(), tail.as_str()), ("mocked", "2 200"));
        let (body, tail) = curl(&["--http2", "-k", "--data-binary", "tls body"], &format!("{url}/api/tls"));
        assert_eq!((body.as_str(), tail.as_str()), ("POST /api/tls", "2 200"));
        let reqs = env.o.requests();
        assert_eq!(reqs[0].body, b"tls body");
        assert_eq!(reqs[0].header("x-forwarded-proto"), Some("https"));
        // a client offering only http/1.1 still gets HTTP/1.1
        let (body, tail) = curl(&["--http1.1", "-k"], &format!("{url}/mock"));
        assert_eq!((body.as_str(), tail.as_str()), ("mocked", "1.1 200"));
    }

    fn nghttp_get_post_and_concurrent(d) {
        need_nghttp();
        let (env, h2c, tls) = start(d);
        for base in [format!("http://{h2c}"), format!("https://{tls}")] {
            let out = stdout_of("nghttp", &["-nv", &format!("{base}/mock")]);
            assert!(out.contains(":status: 200"), "{out}");
            assert!(out.contains("recv SETTINGS frame"), "{out}");
            let out = stdout_of("nghttp", &["-nv", "-m", "10", &format!("{base}/api/many")]);
            assert_eq!(out.matches(":status: 200").count(), 10, "{out}");
        }
        let file = std::env::temp_dir().join(format!("tollgate-nghttp-{}-{d}", std::process::id()));
        std::fs::write(&file, b"nghttp body").unwrap();
        let out = stdout_of("nghttp", &["-nv", "-d", file.to_str().unwrap(), &format!("http://{h2c}/api/upload")]);
        let _ = std::fs::remove_file(&file);
        assert!(out.contains(":status: 200"), "{out}");
        let reqs = env.o.requests();
        assert_eq!(reqs.iter().filter(|r| r.target == "/api/many").count(), 20);
        let up = reqs.iter().find(|r| r.target == "/api/upload").expect("upload forwarded");
        assert_eq!(up.method, "POST");
        assert_eq!(up.body, b"nghttp body");
    }

    fn h2load_concurrent_streams_all_2xx(d) {
        need_nghttp();
        let (env, h2c, tls) = start(d);
        for url in [format!("http://{h2c}/api/load"), format!("https://{tls}/mock")] {
            let out = stdout_of("h2load", &["-n", "100", "-c", "2", "-m", "10", &url]);
            assert!(out.contains("100 succeeded"), "{out}");
            assert!(out.contains("status codes: 100 2xx"), "{out}");
            if url.starts_with("https") {
                assert!(out.contains("Application protocol: h2"), "{out}");
            }
        }
        assert_eq!(env.o.requests().iter().filter(|r| r.target == "/api/load").count(), 100);
    }

    fn python_h2_probe(d) {
        need_python_h2();
        let (env, h2c, tls) = start(d);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/h2_probe.py");
        for (addr, mode) in [(h2c, "h2c"), (tls, "tls")] {
            let out = stdout_of("python3", &[script, &addr.ip().to_string(), &addr.port().to_string(), mode]);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(
                lines,
                [
                    "get status=200 body=mocked",
                    "post status=200 body=POST /api/py",
                    "concurrent 200 200 200 200 200",
                    "ping ack=pyprobe!",
                    "malformed reset=1",
                    "after status=200",
                ],
                "{mode}"
            );
        }
        let reqs = env.o.requests();
        assert!(reqs.iter().all(|r| r.target != "/api/bad"), "the malformed request was forwarded");
        let posts: Vec<_> = reqs.iter().filter(|r| r.target == "/api/py").collect();
        assert_eq!(posts.len(), 2);
        assert!(posts.iter().all(|r| r.body == b"pybody"));
        assert_eq!(reqs.len(), 2 * 6);
    }
}
