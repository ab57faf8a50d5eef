//! The compression decision: every never-compress case, `min_bytes` on known lengths only,
//! media types, `Vary` merged with the producer's, the weak `ETag`, and a held body rendered
//! again compressed.

use super::*;
use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::http::{parse_request, parse_response, Limits, ResponseHead};
use bytes::{Bytes, BytesMut};

fn request(raw: &str) -> RequestHead {
    let mut b = BytesMut::from(raw.as_bytes());
    parse_request(&mut b, &Limits::default()).unwrap().unwrap()
}

fn origin(raw: &str) -> ResponseHead {
    let mut b = BytesMut::from(raw.as_bytes());
    parse_response(&mut b, false, &Limits::default())
        .unwrap()
        .unwrap()
}

const GET: &str = "GET / HTTP/1.1\r\nhost: a\r\naccept-encoding: gzip\r\n\r\n";

fn json(extra: &str, len: &str) -> String {
    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n{extra}{len}\r\n")
}

fn ok(policy: &Policy, req: &str, raw: &str) -> bool {
    let h = origin(raw);
    eligible(policy, &request(req), &Response::origin(&h, None))
}

#[test]
fn what_is_never_compressed() {
    let p = Policy::default();
    let long = "content-length: 5000\r\n";
    assert!(ok(&p, GET, &json("", long)));
    assert!(ok(&p, GET, &json("", "transfer-encoding: chunked\r\n")));
    // HEAD, ranges, encoded bodies, no-transform, no content
    assert!(!ok(
        &p,
        "HEAD / HTTP/1.1\r\nhost: a\r\n\r\n",
        &json("", long)
    ));
    assert!(!ok(&p, GET, &json("content-encoding: identity\r\n", long)));
    assert!(!ok(&p, GET, &json("content-range: bytes 0-1/9\r\n", long)));
    assert!(!ok(
        &p,
        GET,
        &json("cache-control: public, No-Transform\r\n", long)
    ));
    assert!(ok(&p, GET, &json("cache-control: no-cache\r\n", long)));
    let partial =
        "HTTP/1.1 206 Partial Content\r\ncontent-type: text/plain\r\ncontent-length: 5000\r\n\r\n";
    assert!(!ok(&p, GET, partial));
    assert!(!ok(
        &p,
        GET,
        "HTTP/1.1 204 No Content\r\ncontent-type: text/plain\r\n\r\n"
    ));
    assert!(!ok(
        &p,
        GET,
        "HTTP/1.1 304 Not Modified\r\ncontent-type: text/plain\r\n\r\n"
    ));
    // small known lengths, types not listed, no type at all
    assert!(!ok(&p, GET, &json("", "content-length: 1023\r\n")));
    assert!(ok(&p, GET, &json("", "content-length: 1024\r\n")));
    assert!(!ok(
        &p,
        GET,
        "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 5000\r\n\r\n"
    ));
    assert!(!ok(
        &p,
        GET,
        "HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"
    ));
    assert!(ok(
        &p,
        GET,
        "HTTP/1.1 200 OK\r\ncontent-type: application/problem+json\r\ncontent-length: 5000\r\n\r\n"
    ));
    assert!(ok(
        &p,
        GET,
        "HTTP/1.1 200 OK\r\ncontent-type: Text/HTML\r\ncontent-length: 5000\r\n\r\n"
    ));
}

#[test]
fn held_bodies_use_their_length() {
    let p = Policy {
        min_bytes: 10,
        types: types::defaults(),
    };
    let req = request(GET);
    // an error's JSON (23 bytes) is over 10, under the default 1024
    let e = Response::error(GatewayError::NoRoute);
    assert!(eligible(&p, &req, &e));
    assert!(!eligible(&Policy::default(), &req, &e));
    let m = MockResponse::build(
        200,
        [(&b"content-type"[..], &b"text/plain"[..])],
        Bytes::from_static(b"0123456789"),
    );
    assert!(eligible(&p, &req, &Response::held(m)));
}

#[test]
fn vary_covers_and_weak_etags() {
    assert!(vary_covers(b"Origin, Accept-Encoding"));
    assert!(vary_covers(b"*"));
    assert!(!vary_covers(b"accept-encodings, origin"));
    let on = Encoding {
        coding: Some(Coding::Gzip),
        vary: true,
    };
    assert_eq!(&*field_value(&on, b"ETag", b"\"v1\""), b"W/\"v1\"");
    assert_eq!(&*field_value(&on, b"etag", b"W/\"v1\""), b"W/\"v1\"");
    assert_eq!(&*field_value(&on, b"x-etag", b"\"v1\""), b"\"v1\"");
    assert_eq!(
        &*field_value(&Encoding::default(), b"etag", b"\"v1\""),
        b"\"v1\""
    );
    let mut fields = Vec::new();
    each_field(&on, |n, v| fields.push((n.to_vec(), v.to_vec())));
    assert_eq!(
        fields,
        vec![
            (b"content-encoding".to_vec(), b"gzip".to_vec()),
            (b"vary".to_vec(), b"accept-encoding".to_vec())
        ]
    );
}

#[test]
fn a_held_body_is_rendered_again_compressed() {
    let body = Bytes::from("{\"a\": \"".to_string() + &"x".repeat(3000) + "\"}");
    let m = MockResponse::build(
        201,
        [
            (&b"content-type"[..], &b"application/json"[..]),
            (&b"etag"[..], &b"\"abc\""[..]),
        ],
        body.clone(),
    );
    let r = Response::held(m);
    let h = encode::held(&r, Coding::Gzip).unwrap();
    assert_eq!(h.status, 201);
    let head = String::from_utf8(h.head.to_vec()).unwrap();
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\netag: W/\"abc\"\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n",
            h.body.len()
        )
    );
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&h.body[..]), &mut out).unwrap();
    assert_eq!(out, body);
}
