//! Request field validation (RFC 9113 §8.1.1, §8.2, §8.3; h2spec 8.1, 8.2, 8.3) from lists of
//! decoded fields.

use bytes::Bytes;

use super::*;

fn field(n: &str, v: &str) -> Field {
    Field {
        name: Bytes::copy_from_slice(n.as_bytes()),
        value: Bytes::copy_from_slice(v.as_bytes()),
        sensitive: false,
    }
}

fn block(kind: BlockKind, fields: &[(&str, &str)]) -> Result<Finished, &'static str> {
    let mut b = Block::new(kind);
    for (n, v) in fields {
        b.push(field(n, v));
    }
    b.finish()
}

fn request(fields: &[(&str, &str)]) -> Result<RequestFields, &'static str> {
    match block(BlockKind::Request, fields)? {
        Finished::Request(r) => Ok(r),
        Finished::Trailers(_) => unreachable!(),
    }
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.com"),
    (":path", "/a?b"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = GET.to_vec();
    v.extend_from_slice(extra);
    v
}

fn pairs(r: &RequestFields) -> Vec<(&[u8], &[u8])> {
    r.fields.iter().map(|(n, v)| (&n[..], &v[..])).collect()
}

#[test]
fn a_plain_request() {
    let r = request(&with(&[("accept", "*/*"), ("x-a", "1")])).unwrap();
    assert_eq!(&r.method[..], b"GET");
    assert_eq!(r.scheme.as_deref(), Some(&b"https"[..]));
    assert_eq!(r.authority.as_deref(), Some(&b"example.com"[..]));
    assert_eq!(&r.path[..], b"/a?b");
    assert_eq!(r.protocol, None);
    assert_eq!(r.content_length, None);
    assert_eq!(
        pairs(&r),
        vec![(&b"accept"[..], &b"*/*"[..]), (b"x-a", b"1")]
    );
}

#[test]
fn cookie_crumbs_are_joined_where_the_first_was() {
    let r = request(&with(&[
        ("cookie", "a=1"),
        ("x-a", "1"),
        ("cookie", "b=2"),
        ("cookie", "c=3"),
    ]))
    .unwrap();
    assert_eq!(
        pairs(&r),
        vec![(&b"cookie"[..], &b"a=1; b=2; c=3"[..]), (b"x-a", b"1")]
    );
}

#[test]
fn host_and_authority() {
    // host alone becomes the authority and leaves the fields
    let r = request(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        ("host", "h.example"),
    ])
    .unwrap();
    assert_eq!(r.authority.as_deref(), Some(&b"h.example"[..]));
    assert!(r.fields.is_empty());
    // equal: host removed
    let r = request(&with(&[("host", "example.com")])).unwrap();
    assert!(r.fields.is_empty());
    // differing: malformed (§8.3.1)
    assert_eq!(
        request(&with(&[("host", "other.example")])),
        Err(":authority and host differ")
    );
    assert!(request(&with(&[("host", "example.com"), ("host", "example.com")])).is_err());
    // userinfo, space or an empty value in :authority
    for bad in ["user@example.com", "a b", ""] {
        let mut v = GET.to_vec();
        v[2].1 = bad;
        assert_eq!(request(&v), Err("invalid :authority"), "{bad:?}");
    }
}

#[test]
fn content_length_values_must_agree_and_be_digits() {
    let r = request(&with(&[("content-length", "12"), ("content-length", "12")])).unwrap();
    assert_eq!(r.content_length, Some(12));
    // equal duplicates are one value: one field forwarded (as the HTTP/1 parser keeps one)
    assert_eq!(pairs(&r), vec![(&b"content-length"[..], &b"12"[..])]);
    for bad in ["", "1x", "-1", "+1", "1, 1", "99999999999999999999"] {
        assert!(
            request(&with(&[("content-length", bad)])).is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(
        request(&with(&[("content-length", "1"), ("content-length", "2")])),
        Err("content-length values disagree")
    );
}

#[test]
fn field_names_and_values_per_8_2() {
    for (n, v) in [
        ("X-Upper", "1"),
        ("x a", "1"),
        ("x:a", "1"),
        ("", "1"),
        ("x-a", "a\0b"),
        ("x-a", "a\rb"),
        ("x-a", "a\nb"),
        ("x-a", " lead"),
        ("x-a", "trail\t"),
        // RFC 9110 §5.5: no control character but HTAB, no DEL
        ("x-a", "a\x01b"),
        ("x-a", "a\x1bb"),
        ("x-a", "a\x7fb"),
    ] {
        assert!(request(&with(&[(n, v)])).is_err(), "{n:?}: {v:?}");
    }
    // inner whitespace and obs-text are fine
    assert!(request(&with(&[("x-a", "a b\tc \u{e9}")])).is_ok());
}

#[test]
fn connection_specific_fields_are_malformed() {
    for (n, v) in [
        ("connection", "keep-alive"),
        ("keep-alive", "5"),
        ("proxy-connection", "x"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
        ("te", "trailers, gzip"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
    ] {
        assert!(request(&with(&[(n, v)])).is_err(), "{n}");
    }
    let r = request(&with(&[("te", "trailers")])).unwrap();
    assert_eq!(pairs(&r), vec![(&b"te"[..], &b"trailers"[..])]);
}

#[test]
fn pseudo_header_rules_8_3() {
    // missing each required one
    for skip in [0, 1, 3] {
        let v: Vec<_> = GET
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, f)| *f)
            .collect();
        assert!(request(&v).is_err(), "without {}", GET[skip].0);
    }
    // §8.3.1: http(s) needs :authority or host; another scheme may go without
    let no_authority: Vec<_> = GET[..2].iter().chain(&GET[3..]).copied().collect();
    assert_eq!(
        request(&no_authority),
        Err("http(s) request without :authority or host")
    );
    let mut v = no_authority.clone();
    v[1].1 = "HTTP";
    assert!(request(&v).is_err(), "schemes are case-insensitive");
    v.push(("host", "h.example"));
    assert!(request(&v).is_ok());
    let mut v = no_authority;
    v[1].1 = "urn";
    assert!(request(&v).is_ok());
    // duplicated, unknown, response-only, after a regular field, :protocol
    for extra in [
        (":path", "/"),
        (":method", "GET"),
        (":foo", "x"),
        (":status", "200"),
        (":protocol", "websocket"),
    ] {
        assert!(request(&with(&[extra])).is_err(), "{extra:?}");
    }
    let mut v = vec![("x-a", "1")];
    v.extend(GET);
    assert_eq!(request(&v), Err("pseudo-header after a regular field"));
    // :path: empty, not origin-form, "*" only for OPTIONS
    for (method, path, ok) in [
        ("GET", "", false),
        ("GET", "a", false),
        ("GET", "http://x/", false),
        ("GET", "*", false),
        ("OPTIONS", "*", true),
        ("OPTIONS", "/", true),
        ("OPTIONS", "**", false),
        ("GET", "/a b", false),
        ("GET", "/a\x01", false),
        ("GET", "/caf\u{e9}", false),
        ("GET", "/%20?q=1#f", true),
    ] {
        let mut v = GET.to_vec();
        v[0].1 = method;
        v[3].1 = path;
        assert_eq!(request(&v).is_ok(), ok, "{method} {path:?}");
    }
    // invalid method and scheme tokens
    let mut v = GET.to_vec();
    v[0].1 = "G T";
    assert!(request(&v).is_err());
    v = GET.to_vec();
    v[1].1 = "1http";
    assert!(request(&v).is_err());
}

#[test]
fn connect_has_method_and_authority_only() {
    let r = request(&[(":method", "CONNECT"), (":authority", "db:5432")]).unwrap();
    assert_eq!((r.scheme, &r.path[..]), (None, &b""[..]));
    assert_eq!(r.authority.as_deref(), Some(&b"db:5432"[..]));
    assert!(request(&[(":method", "CONNECT")]).is_err());
    assert!(request(&[
        (":method", "CONNECT"),
        (":authority", "db:5432"),
        (":path", "/")
    ])
    .is_err());
}

#[test]
fn trailers_have_no_pseudo_headers() {
    assert_eq!(
        block(BlockKind::Trailers, &[("x-sum", "1"), ("x-b", "a")]),
        Ok(Finished::Trailers(vec![
            (Bytes::from_static(b"x-sum"), Bytes::from_static(b"1")),
            (Bytes::from_static(b"x-b"), Bytes::from_static(b"a")),
        ]))
    );
    assert_eq!(
        block(BlockKind::Trailers, &[(":path", "/")]),
        Err("pseudo-header in trailers")
    );
    assert!(block(BlockKind::Trailers, &[("transfer-encoding", "chunked")]).is_err());
}

#[test]
fn fields_forbidden_in_trailers_are_dropped() {
    // RFC 9110 §6.5.1, the HTTP/1 NOT_IN_TRAILERS rule: framing, routing, authentication,
    // content-* are not taken from trailers
    assert_eq!(
        block(
            BlockKind::Trailers,
            &[
                ("content-length", "5"),
                ("x-checksum", "abc"),
                ("host", "evil.example"),
                ("authorization", "Bearer x"),
                ("content-type", "text/plain"),
                ("te", "trailers"),
            ]
        ),
        Ok(Finished::Trailers(vec![(
            Bytes::from_static(b"x-checksum"),
            Bytes::from_static(b"abc")
        )]))
    );
}

#[test]
fn authority_follows_the_http1_host_rule() {
    for bad in [
        "a/b",
        "h.example:99999",
        "h.example:",
        "[::1",
        "a,b",
        "h.example:8x",
    ] {
        let mut v = GET.to_vec();
        v[2].1 = bad;
        assert_eq!(request(&v), Err("invalid :authority"), "{bad:?}");
    }
    for good in [
        "h.example:8443",
        "[::1]:443",
        "10.0.0.1",
        "xn--caf-dma.example",
    ] {
        let mut v = GET.to_vec();
        v[2].1 = good;
        assert!(request(&v).is_ok(), "{good:?}");
    }
}

#[test]
fn first_error_wins_and_fields_are_dropped() {
    let mut b = Block::new(BlockKind::Request);
    b.push(field("X-A", "1"));
    for f in GET {
        b.push(field(f.0, f.1));
    }
    assert!(b.fields.is_empty());
    assert_eq!(b.finish(), Err("uppercase field name"));
}
