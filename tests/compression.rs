//! Compression on the wire, both drivers: responses compressed with gzip or brotli as the
//! client's `Accept-Encoding` q-values say (`q=0`, `*`, identity), decoded here by Python's
//! `gzip` module and the `brotli` crate; `Vary` merged with the origin's, a strong `ETag` made
//! weak, `content-length` dropped and the body re-framed (chunked for HTTP/1.1,
//! close-delimited for HTTP/1.0, END_STREAM for HTTP/2); each never-compress case (HEAD, small,
//! a type not listed, already encoded, `no-transform`, 206, 204, an error under `min_bytes`);
//! a chunked stream compressed and still streamed (the origin sends its second event only
//! after the client decoded the first); per-route settings and `compression = false`; a mock
//! compressed with the compressed length; request bodies decoded for a templated route, a
//! bomb refused with the origin seeing nothing, corrupt and unknown codings, and a route that
//! does not hold bodies forwarding the encoded body untouched.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;

use common::h2client::{H2, H2C};
use common::*;

/// A 5000-byte JSON document.
fn doc() -> String {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < 4990 {
        s.push_str(&format!("{{\"id\":{i},\"name\":\"pet {i}\"}},"));
        i += 1;
    }
    s.truncate(4999);
    s.push(']');
    s
}

/// The origin: by the path's last segment (see each arm).
fn origin() -> Origin {
    Origin::start(|r| {
        let last = r.target.rsplit('/').next().unwrap_or_default().to_string();
        let body = doc();
        let (status, fields, body) = match last.as_str() {
            "json" => (
                "200 OK",
                "content-type: application/json\r\nvary: Origin\r\netag: \"v1\"\r\nx-origin: 1\r\n",
                body,
            ),
            "small" => (
                "200 OK",
                "content-type: application/json\r\n",
                "{\"a\":1}".into(),
            ),
            "png" => ("200 OK", "content-type: image/png\r\n", body),
            "encoded" => (
                "200 OK",
                "content-type: application/json\r\ncontent-encoding: gzip\r\n",
                body,
            ),
            "notransform" => (
                "200 OK",
                "content-type: application/json\r\ncache-control: max-age=60, no-transform\r\n",
                body,
            ),
            "range" => (
                "206 Partial Content",
                "content-type: application/json\r\ncontent-range: bytes 0-4999/9000\r\n",
                body,
            ),
            "nocontent" => {
                return Reply::Raw(
                    b"HTTP/1.1 204 No Content\r\ncontent-type: application/json\r\n\r\n".to_vec(),
                )
            }
            "chunked" => {
                let raw = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_string();
                return Reply::Raw(raw.into_bytes());
            }
            "vary" => (
                "200 OK",
                "content-type: application/json\r\nVary: accept-encoding\r\n",
                body,
            ),
            _ => (
                "200 OK",
                "content-type: text/plain\r\n",
                format!("{} {} {}", r.method, r.target, r.body.len()),
            ),
        };
        Reply::Raw(
            format!(
                "HTTP/1.1 {status}\r\n{fields}content-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
}

fn mock_body() -> String {
    doc().replace("pet", "mock")
}

fn config(o: &Origin) -> String {
    upstream_toml("origin", &[o.addr], "")
        + &format!(
            r#"
[compression]
min_bytes = 1024

[[route]]
key = "GET /{{proxy+}}"
upstream = "origin"

[[route]]
key = "HEAD /{{proxy+}}"
upstream = "origin"

[[route]]
key = "GET /off/{{proxy+}}"
upstream = "origin"
compression = false

[[route]]
key = "GET /tiny/{{proxy+}}"
upstream = "origin"
compression = {{ min_bytes = 5, types = ["image/png", "application/json"] }}

[[route]]
key = "GET /mock"
mock = {{ status = 200, body = '{mock}', headers = {{ "content-type" = "application/json", "etag" = '"m1"' }} }}

[[route]]
key = "POST /tpl"
upstream = "origin"
request_template = "got $input.json('$.order.id')"
max_body_bytes = 1048576

[[route]]
key = "POST /plain"
upstream = "origin"
"#,
            mock = mock_body()
        )
}

fn get(path: &str, accept: Option<&str>) -> Vec<u8> {
    let ae = accept.map_or(String::new(), |a| format!("accept-encoding: {a}\r\n"));
    format!("GET {path} HTTP/1.1\r\nhost: api.example\r\n{ae}\r\n").into_bytes()
}

/// gzip decoded by Python's `gzip` module (an independent decoder).
fn python_gunzip(b: &[u8]) -> Vec<u8> {
    let mut p = std::process::Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    p.stdin.take().unwrap().write_all(b).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success(), "python could not gunzip");
    out.stdout
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .expect("valid brotli");
    out
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Every value of the field `name`, joined as one list.
fn all(r: &Response, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The response is as the origin sent it: no coding, its own length, no `vary` from us.
fn identity(r: &Response, body: &[u8]) {
    assert_eq!(r.header("content-encoding"), None, "{}", r.head);
    assert_eq!(r.body, body, "{}", r.head);
    assert!(
        !all(r, "vary")
            .to_ascii_lowercase()
            .contains("accept-encoding"),
        "{}",
        r.head
    );
}

both_drivers! {
    fn the_clients_weights_choose_the_coding(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let cases = [
            ("gzip", Some("gzip")),
            ("br", Some("br")),
            ("gzip;q=0.5, br;q=0.9", Some("br")),
            ("gzip, deflate, br", Some("br")),
            ("br;q=0, gzip", Some("gzip")),
            ("*", Some("br")),
            ("*;q=0.1, br;q=0", Some("gzip")),
            ("gzip;q=0, br;q=0", None),
            ("gzip;q=0.4, identity", None),
            ("deflate", None),
        ];
        for (accept, coding) in cases {
            let r = roundtrip(g.addr, &get("/json", Some(accept)));
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-origin"), Some("1"));
            // the answer depends on accept-encoding either way: the origin's vary, then ours
            assert_eq!(all(&r, "vary"), "Origin, accept-encoding", "{accept}: {}", r.head);
            match coding {
                Some(c) => {
                    assert_eq!(r.header("content-encoding"), Some(c), "{accept}: {}", r.head);
                    assert_eq!(r.header("content-length"), None, "{}", r.head);
                    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
                    assert_eq!(r.header("etag"), Some("W/\"v1\""));
                    let body = if c == "gzip" { python_gunzip(&r.body) } else { unbrotli(&r.body) };
                    assert_eq!(String::from_utf8(body).unwrap(), doc());
                    assert!(r.body.len() < 2500, "{}", r.body.len());
                }
                None => {
                    assert_eq!(r.header("content-encoding"), None, "{accept}: {}", r.head);
                    assert_eq!(r.header("content-length"), Some("5000"));
                    assert_eq!(r.header("etag"), Some("\"v1\""));
                    assert_eq!(r.text(), doc());
                }
            }
        }
        // no accept-encoding: as produced, and vary says why
        let r = roundtrip(g.addr, &get("/json", None));
        assert_eq!((r.header("content-encoding"), r.text()), (None, doc()));
        assert_eq!(all(&r, "vary"), "Origin, accept-encoding");
        // an origin's vary that already names accept-encoding is not repeated
        let r = roundtrip(g.addr, &get("/vary", Some("gzip")));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(all(&r, "vary"), "accept-encoding");
        // a keep-alive connection goes on after a compressed response
        let mut c = Client::new(g.addr);
        c.send(&get("/json", Some("gzip")));
        let first = c.read(false).unwrap();
        c.send(&get("/json", Some("br")));
        let second = c.read(false).unwrap();
        assert_eq!(gunzip(&first.body), doc().as_bytes());
        assert_eq!(unbrotli(&second.body), doc().as_bytes());
    }

    fn what_is_never_compressed(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let body = doc();
        for path in ["/small", "/png", "/notransform", "/range"] {
            let r = roundtrip(g.addr, &get(path, Some("gzip, br")));
            let expect = if path == "/small" { "{\"a\":1}".to_string() } else { body.clone() };
            identity(&r, expect.as_bytes());
            assert_eq!(r.header("content-length"), Some(expect.len().to_string().as_str()), "{path}");
        }
        // already encoded: passed through untouched, its own coding
        let r = roundtrip(g.addr, &get("/encoded", Some("gzip, br")));
        assert_eq!((r.header("content-encoding"), r.body.clone()), (Some("gzip"), body.clone().into_bytes()));
        assert_eq!(r.header("content-length"), Some("5000"));
        // 204: no content, no coding
        let r = roundtrip(g.addr, &get("/nocontent", Some("gzip")));
        assert_eq!((r.status, r.header("content-encoding")), (204, None));
        // HEAD: the identity head
        let r = roundtrip(g.addr, b"HEAD /json HTTP/1.1\r\nhost: a\r\naccept-encoding: gzip\r\n\r\n");
        assert_eq!((r.status, r.header("content-encoding")), (200, None));
        assert_eq!(r.header("content-length"), Some("5000"));
        assert_eq!(r.header("etag"), Some("\"v1\""));
        // a gateway error under min_bytes
        let r = roundtrip(g.addr, b"DELETE /x HTTP/1.1\r\nhost: a\r\naccept-encoding: gzip\r\n\r\n");
        assert_eq!((r.status, r.header("content-encoding")), (404, None));
        assert_eq!(r.text(), "{\"message\":\"Not Found\"}");
    }

    fn routes_override_or_turn_it_off(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, &get("/off/json", Some("gzip")));
        identity(&r, doc().as_bytes());
        // the route's own types and minimum
        let r = roundtrip(g.addr, &get("/tiny/png", Some("gzip")));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(gunzip(&r.body), doc().as_bytes());
        let r = roundtrip(g.addr, &get("/tiny/small", Some("gzip")));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(gunzip(&r.body), b"{\"a\":1}");
        let r = roundtrip(g.addr, &get("/tiny/encoded", Some("br")));
        assert_eq!(r.header("content-encoding"), Some("gzip"), "the origin's own");
        // a chunked body of unknown length is compressed whatever its size
        let r = roundtrip(g.addr, &get("/chunked", Some("gzip")));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(gunzip(&r.body), b"hello world");
    }

    fn http10_clients_get_a_close_delimited_body(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /json HTTP/1.0\r\nconnection: keep-alive\r\naccept-encoding: br\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.header("content-encoding"), Some("br"), "{}", r.head);
        assert_eq!((r.header("content-length"), r.header("transfer-encoding")), (None, None));
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(unbrotli(&r.body), doc().as_bytes());
    }

    fn a_mock_is_compressed_with_its_compressed_length(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, &get("/mock", Some("gzip")));
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{}", r.head);
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(r.header("etag"), Some("W/\"m1\""));
        assert_eq!(r.header("vary"), Some("accept-encoding"));
        assert_eq!(python_gunzip(&r.body), mock_body().as_bytes());
        let r = roundtrip(g.addr, &get("/mock", None));
        assert_eq!((r.header("content-encoding"), r.text()), (None, mock_body()));
        assert_eq!(r.header("etag"), Some("\"m1\""));
    }

    fn a_chunked_stream_is_compressed_and_still_streamed(d) {
        // the origin sends one event, then waits until the test decoded it, then the rest
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        let origin = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = Vec::new();
            read_head(&mut s, &mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n10\r\ndata: event one\n\r\n").unwrap();
            go_rx.recv().unwrap();
            s.write_all(b"10\r\ndata: event two\n\r\n0\r\n\r\n").unwrap();
        });
        let text = upstream_toml("sse", &[addr], "")
            + "[compression]\ntypes = [\"text/event-stream\"]\n[[route]]\nkey = \"GET /events\"\nupstream = \"sse\"\n";
        let g = Gateway::start(d, 1, &text);
        let mut c = connect(g.addr);
        c.write_all(&get("/events", Some("gzip"))).unwrap();
        let mut buf = Vec::new();
        let head = read_head(&mut c, &mut buf).unwrap();
        assert!(head.contains("content-encoding: gzip\r\n"), "{head}");
        assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
        // chunks until the first event decodes (the origin is still holding the second)
        let mut compressed = Vec::new();
        let decoded = |b: &[u8]| {
            let mut out = vec![0u8; 4096];
            let mut d = flate2::read::GzDecoder::new(b);
            let mut n = 0;
            while let Ok(k) = d.read(&mut out[n..]) {
                if k == 0 { break; }
                n += k;
            }
            out.truncate(n);
            out
        };
        while decoded(&compressed) != b"data: event one\n" {
            let chunk = read_chunk(&mut c, &mut buf).expect("the first event before the origin's end");
            assert!(!chunk.is_empty(), "the body ended early");
            compressed.extend_from_slice(&chunk);
        }
        go_tx.send(()).unwrap();
        loop {
            let chunk = read_chunk(&mut c, &mut buf).unwrap();
            if chunk.is_empty() { break; }
            compressed.extend_from_slice(&chunk);
        }
        assert_eq!(gunzip(&compressed), b"data: event one\ndata: event two\n");
        origin.join().unwrap();
    }

    fn request_bodies_are_decoded_for_a_templated_route(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let post = |path: &str, coding: &str, body: &[u8]| {
            let mut raw = format!("POST {path} HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\ncontent-encoding: {coding}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            raw.extend_from_slice(body);
            roundtrip(g.addr, &raw)
        };
        let json = br#"{"order": {"id": 42}}"#;
        let r = post("/tpl", "gzip", &gzip(json));
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = o.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(String::from_utf8_lossy(&seen[0].body), "got 42");
        assert_eq!(seen[0].header("content-encoding"), None, "{}", seen[0].head_text());
        let mut br = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 20);
        br.write_all(json).unwrap();
        let r = post("/tpl", "br", &br.into_inner());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(String::from_utf8_lossy(&o.requests()[1].body), "got 42");
        // a bomb: 10 MB of zeros in ~10 KB, refused by ratio; the origin sees nothing
        let bomb = gzip(&vec![0u8; 10_000_000]);
        let r = post("/tpl", "gzip", &bomb);
        assert_eq!(r.status, 413);
        assert_eq!(r.text(), "{\"message\":\"Decoded request body expands more than max_decoded_ratio (100) times\"}");
        // corrupt, unknown
        let r = post("/tpl", "gzip", json);
        assert_eq!((r.status, r.text()), (400, "{\"message\":\"Request body is not valid gzip data\"}".to_string()));
        let r = post("/tpl", "compress", json);
        assert_eq!(r.status, 415);
        assert_eq!(o.requests().len(), 2);
        // a route that does not hold bodies forwards the encoded body untouched
        let encoded = gzip(json);
        let r = post("/plain", "gzip", &encoded);
        assert_eq!(r.status, 200);
        let seen = o.requests().pop().unwrap();
        assert_eq!(seen.header("content-encoding"), Some("gzip"));
        assert_eq!(seen.body, encoded);
    }

    fn http2_clients_get_compressed_data_frames(d) {
        let o = origin();
        let g = Gateway::start_with(d, 1, H2C, &config(&o));
        let mut c = H2::connect(g.addr);
        let req = c.req("GET", "/json", &[("accept-encoding", "gzip")]);
        let r = c.send(req, None).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("content-length"), None);
        assert_eq!(r.header("etag"), Some("W/\"v1\""));
        let vary: Vec<&str> = r.headers.get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(vary, ["Origin", "accept-encoding"]);
        assert_eq!(gunzip(&r.body), doc().as_bytes());
        let req = c.req("GET", "/mock", &[("accept-encoding", "br")]);
        let r = c.send(req, None).unwrap();
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(unbrotli(&r.body), mock_body().as_bytes());
        let req = c.req("GET", "/json", &[("accept-encoding", "gzip;q=0")]);
        let r = c.send(req, None).unwrap();
        assert_eq!((r.header("content-encoding"), r.text()), (None, doc()));
        assert_eq!(r.header("content-length"), Some("5000"));
    }
}

/// Reads one chunk of a chunked body (its data; empty at the last chunk, trailers skipped).
fn read_chunk(s: &mut impl Read, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let line_end = |buf: &Vec<u8>| find(buf, b"\r\n");
    let fill = |s: &mut dyn Read, buf: &mut Vec<u8>| -> Option<()> {
        let mut b = [0u8; 4096];
        match s.read(&mut b) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.extend_from_slice(&b[..n]);
                Some(())
            }
        }
    };
    let e = loop {
        if let Some(e) = line_end(buf) {
            break e;
        }
        fill(s, buf)?;
    };
    let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..e]).trim(), 16).ok()?;
    buf.drain(..e + 2);
    if size == 0 {
        while find(buf, b"\r\n").is_none_or(|i| i != 0) {
            if let Some(i) = find(buf, b"\r\n") {
                buf.drain(..i + 2);
                continue;
            }
            fill(s, buf)?;
        }
        buf.drain(..2);
        return Some(Vec::new());
    }
    while buf.len() < size + 2 {
        fill(s, buf)?;
    }
    let data = buf[..size].to_vec();
    buf.drain(..size + 2);
    Some(data)
}
