//! The `aws_iam` authorizer end to end, on both drivers, real sockets: requests signed by AWS's
//! own signer (the `aws-sigv4` crate, as the AWS SDKs sign) in the header form (with and
//! without a session token, the payload hashed from the body, named in
//! `x-amz-content-sha256`, or `UNSIGNED-PAYLOAD`) and the presigned query form reach the
//! origin byte for byte; every refusal is a 403 with AWS's message; a body the signature
//! covers is read whole and forwarded exactly (content-length and chunked, HTTP/1 and
//! HTTP/2); bodies whose signature cannot be checked first are charged to the worker's budget
//! as they arrive, bounded in time, and given back (slow clients cannot starve signed
//! requests); config errors name the key and line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use common::h2client::{H2, H2C};
use common::*;

const REGION: &str = "eu-west-1";
const ALICE_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const ALICE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const ALICE_ARN: &str = "arn:aws:iam::123456789012:user/alice";
const TEMP_KEY: &str = "ASIAIOSFODNN7TEMP0001";
const TEMP_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
const TEMP_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLETOKEN/+=";
/// A host name the gateway does not route on: the signature covers it.
const HOST: &str = "api.example.com";

fn set_env() {
    std::env::set_var("TOLLGATE_IAM_TEST_ALICE", ALICE_SECRET);
    std::env::set_var("TOLLGATE_IAM_TEST_TEMP", TEMP_SECRET);
    std::env::set_var("TOLLGATE_IAM_TEST_TOKEN", TEMP_TOKEN);
}

fn authorizer_toml() -> String {
    format!(
        r#"
[[authorizer]]
name = "iam"
type = "aws_iam"
region = "{REGION}"

[[authorizer.credential]]
access_key_id = "{ALICE_KEY}"
secret_env = "TOLLGATE_IAM_TEST_ALICE"
principal = "{ALICE_ARN}"
allow = ["GET /pets/*", "POST /orders"]

[[authorizer.credential]]
access_key_id = "{TEMP_KEY}"
secret_env = "TOLLGATE_IAM_TEST_TEMP"
session_token_env = "TOLLGATE_IAM_TEST_TOKEN"
principal = "arn:aws:sts::123456789012:assumed-role/deploy/build-7"
allow = ["*"]
"#
    )
}

fn start(d: &str, origin: &Origin, server_extra: &str) -> Gateway {
    set_env();
    let rest = upstream_toml("o", &[origin.addr], "")
        + &authorizer_toml()
        + "[[route]]\nkey = \"GET /pets/{id}\"\nupstream = \"o\"\nauthorizer = \"iam\"\n\
           [[route]]\nkey = \"POST /orders\"\nupstream = \"o\"\nauthorizer = \"iam\"\n\
           [[route]]\nkey = \"DELETE /pets/{id}\"\nupstream = \"o\"\nauthorizer = \"iam\"\n\
           [[route]]\nkey = \"GET /open\"\nupstream = \"o\"\n";
    Gateway::start_with(d, 1, server_extra, &rest)
}

/// How a test request is signed.
#[derive(Clone, Copy)]
struct Signing<'a> {
    key: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    location: SignatureLocation,
    /// `x-amz-content-sha256` sent (and signed) with the payload's hash.
    content_sha256: bool,
    unsigned: bool,
    time: SystemTime,
    region: &'a str,
    service: &'a str,
}

fn alice() -> Signing<'static> {
    Signing {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        token: None,
        location: SignatureLocation::Headers,
        content_sha256: false,
        unsigned: false,
        time: SystemTime::now(),
        region: REGION,
        service: "execute-api",
    }
}

/// Names and values.
type Pairs = Vec<(String, String)>;

/// The fields and query parameters AWS's signer adds to `method host target` with `body`.
fn sign_with(
    s: Signing<'_>,
    method: &str,
    host: &str,
    target: &str,
    body: &[u8],
) -> (Pairs, Pairs) {
    let creds = aws_credential_types::Credentials::new(
        s.key,
        s.secret,
        s.token.map(str::to_owned),
        None,
        "test",
    );
    let identity = creds.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = s.location;
    if s.content_sha256 {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if s.location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let params: aws_sigv4::http_request::SigningParams = v4::SigningParams::builder()
        .identity(&identity)
        .region(s.region)
        .name(s.service)
        .time(s.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable_body = if s.unsigned {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(body)
    };
    let url = format!("http://{host}{target}");
    let headers = [("host", host), ("content-type", "application/json")];
    let req = SignableRequest::new(method, url, headers.into_iter(), signable_body).unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let (fields, query) = instructions.into_parts();
    let fields = fields
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    let query = query
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.into_owned()))
        .collect();
    (fields, query)
}

/// Percent-encodes a presigned parameter's value (unreserved bytes stay).
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A signed HTTP/1.1 request as raw bytes: the target with the presigned parameters added,
/// the signer's fields, and `body` framed with content-length (or chunked in two chunks).
fn request(s: Signing<'_>, method: &str, target: &str, body: &[u8], chunked: bool) -> Vec<u8> {
    let (fields, query) = sign_with(s, method, HOST, target, body);
    let mut target = target.to_string();
    for (i, (n, v)) in query.iter().enumerate() {
        let sep = if i == 0 && !target.contains('?') {
            '?'
        } else {
            '&'
        };
        target.push_str(&format!("{sep}{n}={}", enc(v)));
    }
    let mut out =
        format!("{method} {target} HTTP/1.1\r\nhost: {HOST}\r\ncontent-type: application/json\r\n");
    for (n, v) in &fields {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    let mut out = out.into_bytes();
    if chunked {
        let (a, b) = body.split_at(body.len() / 2);
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        for part in [a, b] {
            if !part.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else if !body.is_empty() || method == "POST" {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A gateway with one worker whose `iam` authorizer has these body limits, and its origin.
fn budget_gateway(d: &str, budget: usize, max: usize, timeout_ms: u64) -> (Gateway, Origin) {
    let o = Origin::echo();
    set_env();
    let limits = format!(
        "unverified_body_budget_bytes = {budget}\nmax_body_bytes = {max}\n\
         unverified_body_timeout_ms = {timeout_ms}\nregion = "
    );
    let rest = upstream_toml("o", &[o.addr], "")
        + &authorizer_toml().replace("region = ", &limits)
        + "[[route]]\nkey = \"POST /orders\"\nupstream = \"o\"\nauthorizer = \"iam\"\n";
    (Gateway::start_with(d, 1, "", &rest), o)
}

/// A client that sent a validly signed `POST /orders` head declaring `len` body bytes (the
/// payload hash the body's own) and only the first `sent` of them.
fn slow_client(addr: std::net::SocketAddr, len: usize, sent: usize) -> Client {
    let raw = request(alice(), "POST", "/orders", &vec![b'a'; len], false);
    let mut c = Client::new(addr);
    c.send(&raw[..raw.len() - (len - sent)]);
    c
}

fn message(r: &Response) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error body");
    v["message"].as_str().expect("a message").to_string()
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

both_drivers! {
    fn presigned_as_aws_sigv4_and_botocore_sign_it_verifies(d) {
        // aws-sigv4 presigns the empty body's hash (SignableBody::Bytes(b"")), not
        // UNSIGNED-PAYLOAD, for execute-api; and form-decodes `+` to a space (signs %20)
        let o = Origin::echo();
        let g = start(d, &o, "");
        let s = Signing { location: SignatureLocation::QueryParams, ..alice() };
        for target in ["/pets/1", "/pets/1?kind=cat", "/pets/1?q=a+b", "/pets/1?q=a%2Bb&r=x+y"] {
            let raw = request(s, "GET", target, b"", false);
            let r = roundtrip(g.addr, &raw);
            assert_eq!(r.status, 200, "{target}: {}", r.text());
            assert!(r.text().starts_with(&format!("GET {target}")), "{}", r.text());
            // a changed value verifies in neither reading of `+`
            let tampered = String::from_utf8(raw).unwrap().replacen("X-Amz-Expires=300", "X-Amz-Expires=299", 1);
            let r = roundtrip(g.addr, tampered.as_bytes());
            assert_eq!((r.status, message(&r)), (403, MISMATCH.to_string()), "{target}");
        }
        // a presigned POST whose body the signer hashed: read, hashed, forwarded
        let r = roundtrip(g.addr, &request(s, "POST", "/orders", b"{\"n\":1}", false));
        assert_eq!(r.status, 200, "{}", r.text());
        // a header-signed `+` query, as aws-sigv4 signs it
        let r = roundtrip(g.addr, &request(alice(), "GET", "/pets/1?q=a+b", b"", false));
        assert_eq!(r.status, 200, "{}", r.text());
        // botocore, when this machine has it, presigns the same way
        if let Some(url) = botocore_presign() {
            let r = roundtrip(g.addr, format!("GET {url} HTTP/1.1\r\nhost: {HOST}\r\n\r\n").as_bytes());
            assert_eq!(r.status, 200, "botocore {url}: {}", r.text());
        }
    }

    fn wrong_scopes_get_aws_words(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let us = Signing { region: "us-east-1", ..alice() };
        let lambda = Signing { service: "lambda", ..alice() };
        for (s, want) in [
            (us, "Credential should be scoped to a valid region, not 'us-east-1'. "),
            (lambda, "Credential should be scoped to correct service: 'execute-api'. "),
        ] {
            for location in [SignatureLocation::Headers, SignatureLocation::QueryParams] {
                for body in [&b""[..], b"12"] {
                    let s = Signing { location, ..s };
                    let r = roundtrip(g.addr, &request(s, "POST", "/orders", body, false));
                    assert_eq!((r.status, message(&r)), (403, want.to_string()));
                }
            }
        }
        assert!(o.requests().is_empty());
    }

    fn a_body_independent_signature_is_verified_before_the_body(d) {
        // x-amz-content-sha256 (a digest or UNSIGNED-PAYLOAD): a wrong signature is refused
        // while the client still holds its body back for 100 Continue
        let o = Origin::echo();
        let g = start(d, &o, "");
        let wrong = Signing { secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ", content_sha256: true, ..alice() };
        for s in [wrong, Signing { unsigned: true, ..wrong }] {
            let raw = request(s, "POST", "/orders", b"12345", false);
            let mut head = raw[..raw.len() - 5].to_vec();
            let at = find(&head, b"content-length").unwrap();
            head.splice(at..at, b"expect: 100-continue\r\n".iter().copied());
            let mut c = Client::new(g.addr);
            c.send(&head);
            let r = c.read(false).expect("an answer without the body");
            assert_eq!((r.status, message(&r)), (403, MISMATCH.to_string()));
        }
        // the right key, a digest of another body: refused once the body is read
        let s = Signing { content_sha256: true, ..alice() };
        let mut raw = request(s, "POST", "/orders", b"12345", false);
        let n = raw.len();
        raw[n - 1] = b'6';
        let r = roundtrip(g.addr, &raw);
        assert_eq!((r.status, message(&r)), (403, MISMATCH.to_string()));
        assert!(o.requests().is_empty());
    }

    fn unverified_bodies_are_charged_as_they_arrive_and_given_back(d) {
        // a worker holds at most 1000 bytes of bodies whose signature is not verified yet
        let g_o = budget_gateway(d, 1000, 1000, 4_000);
        let (g, o) = (&g_o.0, &g_o.1);
        // a client proving nothing yet holds back the end of its body: only the 900 bytes it
        // sent are charged, not the 1000 it declared
        let held = slow_client(g.addr, 1000, 900);
        std::thread::sleep(Duration::from_millis(300)); // the gateway takes its head and bytes
        let small = request(alice(), "POST", "/orders", &[b's'; 50], false);
        let r = roundtrip(g.addr, &small);
        assert_eq!(r.status, 200, "{}", r.text());
        // beyond what is left (content-length or chunked): 503 once the bytes arrive
        for chunked in [false, true] {
            let r = roundtrip(g.addr, &request(alice(), "POST", "/orders", &[b'b'; 200], chunked));
            assert_eq!((r.status, r.text()), (503, r#"{"message":"Service Unavailable"}"#.to_string()));
        }
        // over max_body_bytes: 413 before a byte is charged
        let r = roundtrip(g.addr, &request(alice(), "POST", "/orders", &[b'b'; 1001], false));
        assert_eq!(r.status, 413, "{}", r.text());
        // after the 503s a body that fits is read again (their charges were given back)
        let r = roundtrip(g.addr, &small);
        assert_eq!(r.status, 200, "{}", r.text());
        // a digest the client named does not need the budget: verified first
        let s = Signing { content_sha256: true, ..alice() };
        let r = roundtrip(g.addr, &request(s, "POST", "/orders", &[b'b'; 200], false));
        assert_eq!(r.status, 200, "{}", r.text());
        // the holder goes away mid-body: its 900 bytes are given back, so 200 bytes fit again
        held.stream.shutdown(std::net::Shutdown::Both).unwrap();
        drop(held);
        let big = request(alice(), "POST", "/orders", &[b'b'; 200], false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let r = loop {
            let r = roundtrip(g.addr, &big);
            if r.status != 503 || std::time::Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(r.status, 200, "the dropped client's charge was never given back: {}", r.text());
        // a client too slow for unverified_body_timeout_ms: 408, the connection closed, and its
        // bytes given back
        let mut slow = slow_client(g.addr, 1000, 900);
        let r = slow.read(false).expect("408 at the deadline");
        assert_eq!((r.status, r.text()), (408, r#"{"message":"Request Timeout"}"#.to_string()));
        assert!(slow.is_closed());
        let r = roundtrip(g.addr, &big);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(o.requests().len(), 5);
    }

    fn slow_clients_cannot_starve_a_signed_request(d) {
        // max_body_bytes = the budget: before, one client declaring the largest body took the
        // whole budget for as long as it trickled
        let g_o = budget_gateway(d, 64 * 1024, 64 * 1024, 30_000);
        let g = &g_o.0;
        let slow: Vec<Client> = (0..7).map(|_| slow_client(g.addr, 64 * 1024, 100)).collect();
        std::thread::sleep(Duration::from_millis(300)); // the gateway takes their heads
        for _ in 0..3 {
            let r = roundtrip(g.addr, &request(alice(), "POST", "/orders", &[b'w'; 1024], false));
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.text(), "POST /orders");
        }
        drop(slow);
    }

    fn header_signed_requests_reach_the_origin_unchanged(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        // a path the signer double-encodes (execute-api), a query, no body
        let raw = request(alice(), "GET", "/pets/a%20b?kind=cat&sort=asc", b"", false);
        let r = roundtrip(g.addr, &raw);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), "GET /pets/a%20b?kind=cat&sort=asc");
        let got = o.requests();
        assert_eq!(got.len(), 1);
        // the signature travels on to the origin as sent, nothing repaired
        let auth = got[0].header("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"), "{auth}");

        // temporary credentials with their session token (signed)
        let temp = Signing { key: TEMP_KEY, secret: TEMP_SECRET, token: Some(TEMP_TOKEN), ..alice() };
        let r = roundtrip(g.addr, &request(temp, "DELETE", "/pets/7", b"", false));
        assert_eq!(r.status, 200, "{}", r.text());
    }

    fn payload_hash_forms_verify_and_forward_the_exact_body(d) {
        let o = Origin::start(|r| Reply::ok(&String::from_utf8_lossy(&r.body)));
        let g = start(d, &o, "");
        let body = br#"{"pet":"rex","qty":2}"#;
        for (what, s) in [
            ("body hashed by the gateway", alice()),
            ("x-amz-content-sha256 digest", Signing { content_sha256: true, ..alice() }),
            ("UNSIGNED-PAYLOAD", Signing { content_sha256: true, unsigned: true, ..alice() }),
        ] {
            for chunked in [false, true] {
                let before = o.requests().len();
                let r = roundtrip(g.addr, &request(s, "POST", "/orders", body, chunked));
                assert_eq!(r.status, 200, "{what} chunked={chunked}: {}", r.text());
                assert_eq!(r.body, body, "{what} chunked={chunked}");
                let got = &o.requests()[before];
                assert_eq!(got.body, body, "{what} chunked={chunked}");
                // the origin's framing is valid for what it got: one content-length, or a
                // chunked body re-encoded (never both)
                let framing = (got.header("content-length"), got.header("transfer-encoding"));
                match (chunked, framing) {
                    (false, (Some(n), None)) => assert_eq!(n, body.len().to_string()),
                    (true, (None, Some(te))) => assert_eq!(te, "chunked"),
                    other => panic!("{what}: framing {other:?}"),
                }
                assert!(got.raw.ends_with(if chunked { &b"0\r\n\r\n"[..] } else { &body[..] }));
            }
        }
    }

    fn a_tampered_body_is_refused(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        for s in [alice(), Signing { content_sha256: true, ..alice() }] {
            let mut raw = request(s, "POST", "/orders", b"amount=10", false);
            let n = raw.len();
            raw[n - 1] = b'1'; // amount=10 becomes amount=11, same length
            let r = roundtrip(g.addr, &raw);
            assert_eq!(r.status, 403);
            assert_eq!(message(&r), MISMATCH);
        }
        assert!(o.requests().is_empty());
    }

    fn presigned_queries_verify(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let s = Signing { location: SignatureLocation::QueryParams, unsigned: true, ..alice() };
        let raw = request(s, "GET", "/pets/1?kind=cat", b"", false);
        let r = roundtrip(g.addr, &raw);
        assert_eq!(r.status, 200, "{}", r.text());
        let target = r.text();
        assert!(target.starts_with("GET /pets/1?kind=cat&X-Amz-Algorithm=AWS4-HMAC-SHA256&"), "{target}");
        // with a session token in X-Amz-Security-Token
        let temp = Signing { key: TEMP_KEY, secret: TEMP_SECRET, token: Some(TEMP_TOKEN), ..s };
        let r = roundtrip(g.addr, &request(temp, "GET", "/pets/2", b"", false));
        assert_eq!(r.status, 200, "{}", r.text());
        // one parameter changed after signing
        let tampered = String::from_utf8(raw).unwrap().replace("kind=cat", "kind=dog");
        let r = roundtrip(g.addr, tampered.as_bytes());
        assert_eq!(r.status, 403);
        assert_eq!(message(&r), MISMATCH);
        // presigned six minutes ago for five minutes: expired
        let old = Signing { time: SystemTime::now() - Duration::from_secs(360), ..s };
        let r = roundtrip(g.addr, &request(old, "GET", "/pets/1", b"", false));
        assert_eq!(r.status, 403);
        assert!(message(&r).starts_with("Signature expired: "), "{}", r.text());
    }

    fn refusals_carry_aws_messages(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        // no signature at all
        let r = roundtrip(g.addr, format!("GET /pets/1 HTTP/1.1\r\nhost: {HOST}\r\n\r\n").as_bytes());
        assert_eq!(r.status, 403);
        assert_eq!(r.text(), r#"{"message":"Missing Authentication Token"}"#);
        // a wrong secret
        let wrong = Signing { secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ", ..alice() };
        let r = roundtrip(g.addr, &request(wrong, "GET", "/pets/1", b"", false));
        assert_eq!(r.status, 403);
        assert_eq!(message(&r), MISMATCH);
        // an unknown key, and a temporary key's request without its token
        let unknown = Signing { key: "AKIAIOSFODNN7UNKNOWN", ..alice() };
        let r = roundtrip(g.addr, &request(unknown, "GET", "/pets/1", b"", false));
        assert_eq!((r.status, message(&r)), (403, INVALID_TOKEN.to_string()));
        let tokenless = Signing { key: TEMP_KEY, secret: TEMP_SECRET, ..alice() };
        let r = roundtrip(g.addr, &request(tokenless, "GET", "/pets/1", b"", false));
        assert_eq!((r.status, message(&r)), (403, INVALID_TOKEN.to_string()));
        // signed ten minutes ago: AWS's words with the dates
        let old = Signing { time: SystemTime::now() - Duration::from_secs(600), ..alice() };
        let raw = request(old, "GET", "/pets/1", b"", false);
        let r = roundtrip(g.addr, &raw);
        assert_eq!(r.status, 403);
        let m = message(&r);
        let text = String::from_utf8(raw.clone()).unwrap();
        let date = text
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-date: "))
            .expect("signed with x-amz-date")
            .to_string();
        assert!(m.starts_with(&format!("Signature expired: {date} is now earlier than ")), "{m}");
        assert!(m.ends_with(" - 5 min.)"), "{m}");
        // a route alice's allow patterns do not name
        let r = roundtrip(g.addr, &request(alice(), "DELETE", "/pets/7", b"", false));
        assert_eq!(r.status, 403);
        assert_eq!(
            message(&r),
            format!("User: {ALICE_ARN} is not authorized to perform: execute-api:Invoke on \
                     resource: arn:aws:execute-api:{REGION}:123456789012:tollgate/$default/DELETE/pets/7")
        );
        // a malformed Authorization
        let r = roundtrip(g.addr, format!("GET /pets/1 HTTP/1.1\r\nhost: {HOST}\r\nauthorization: Bearer x\r\n\r\n").as_bytes());
        assert_eq!(r.status, 403);
        assert!(message(&r).starts_with("Authorization header requires 'Credential' parameter."));
        // none of these reached the origin; a route without the authorizer is open
        assert!(o.requests().is_empty());
        assert_eq!(get(g.addr, "/open").status, 200);
    }

    fn curl_aws_sigv4_as_in_the_readme(d) {
        // the README's worked example: curl signs SigV4 itself (curl >= 7.75)
        let o = Origin::start(|r| Reply::ok(&format!("{} {} {}", r.method, r.target, String::from_utf8_lossy(&r.body))));
        let g = start(d, &o, "");
        let user = format!("{ALICE_KEY}:{ALICE_SECRET}");
        common::apt::install(&["curl"], || common::apt::runs("curl", "--version"));
        let curl = |extra: &[&str], path: &str| {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
                .args(["--aws-sigv4", &format!("aws:amz:{REGION}:execute-api"), "--user", &user])
                .args(extra)
                .arg(format!("http://{}{path}", g.addr))
                .output()
                .expect("curl runs (apt-get install -y curl)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(curl(&[], "/pets/7?x=1"), "GET /pets/7?x=1 \n200");
        let posted = curl(&["-H", "content-type: application/json", "-d", "{\"pet\":7}"], "/orders");
        assert_eq!(posted, "POST /orders {\"pet\":7}\n200");
        let denied = curl(&["-X", "DELETE"], "/pets/7");
        assert!(denied.ends_with("\n403") && denied.contains("is not authorized"), "{denied}");
    }

    fn a_lambda_route_gets_the_held_body_in_its_event(d) {
        // the Lambda integration reads the body whole (read_body): on an IAM route it gets
        // the body the authorizer held, not a second read of a connection already drained
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDLAMBDAINVOKER");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "lambda-invoker-secret");
        let ep = Origin::start(|_| {
            let body = r#"{"statusCode":200,"body":"from lambda"}"#;
            Reply::Raw(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ).into_bytes())
        });
        set_env();
        let text = server_toml(d, 1, "")
            + &format!(
                "[[function]]\nname = \"orders\"\narn = \"arn:aws:lambda:eu-west-1:123456789012:function:orders\"\n\
                 endpoint = \"http://{}\"\ntimeout_ms = 5000\n",
                ep.addr
            )
            + &authorizer_toml()
            + "[[route]]\nkey = \"POST /orders\"\nfunction = \"orders\"\nauthorizer = \"iam\"\n";
        let g = Gateway::from_toml(&text);
        let body = br#"{"pet":"rex"}"#;
        for chunked in [false, true] {
            let r = roundtrip(g.addr, &request(alice(), "POST", "/orders", body, chunked));
            assert_eq!((r.status, r.text()), (200, "from lambda".to_string()));
            let event: serde_json::Value =
                serde_json::from_slice(&ep.requests().pop().unwrap().body).unwrap();
            assert_eq!(event["body"], String::from_utf8_lossy(body).as_ref(), "{event}");
        }
    }

    fn get_config_shows_no_secret(d) {
        // the secrets come from the environment: GET /config shows where, never what
        set_env();
        let text = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_string()
            + &authorizer_toml()
            + "[[route]]\nkey = \"GET /x\"\nmock = {}\nauthorizer = \"iam\"\n";
        let g = Gateway::start_with(d, 1, "", &text);
        let admin = g.handle().admin_addr().expect("admin listener");
        let r = get(admin, "/config");
        assert_eq!(r.status, 200);
        let body = r.text();
        assert!(body.contains("secret_env = \"TOLLGATE_IAM_TEST_ALICE\""), "{body}");
        assert!(body.contains(ALICE_KEY), "{body}");
        for secret in [ALICE_SECRET, TEMP_SECRET, TEMP_TOKEN] {
            assert!(!body.contains(secret), "{body}");
        }
    }

    fn what_no_body_can_save_is_refused_before_the_body(d) {
        // unknown key, expired, wrong region: answered at once, while the client still holds
        // its body back (no 100 Continue, no wait for bytes an unauthenticated client owes)
        let o = Origin::echo();
        let g = start(d, &o, "");
        let unknown = Signing { key: "AKIAIOSFODNN7UNKNOWN", ..alice() };
        let old = Signing { time: SystemTime::now() - Duration::from_secs(600), ..alice() };
        for (s, want) in [(unknown, INVALID_TOKEN), (old, "Signature expired: ")] {
            let raw = request(s, "POST", "/orders", b"12345", false);
            let head_end = raw.len() - 5;
            let mut c = Client::new(g.addr);
            let mut head = raw[..head_end].to_vec();
            // the client waits for 100 Continue before it sends the body
            let at = find(&head, b"content-length").unwrap();
            head.splice(at..at, b"expect: 100-continue\r\n".iter().copied());
            c.send(&head);
            let r = c.read(false).expect("an answer without the body");
            assert_eq!(r.status, 403);
            assert!(message(&r).starts_with(want), "{}", r.text());
        }
        assert!(o.requests().is_empty());
    }

    fn a_body_over_the_limit_is_413(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let s = alice();
        let (fields, _) = sign_with(s, "POST", HOST, "/orders", b"");
        let mut head = format!("POST /orders HTTP/1.1\r\nhost: {HOST}\r\ncontent-type: application/json\r\n");
        for (n, v) in &fields {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        // declared larger than API Gateway's 10 MiB: refused from its length
        head.push_str(&format!("content-length: {}\r\n\r\n", 10 * 1024 * 1024 + 1));
        let r = roundtrip(g.addr, head.as_bytes());
        assert_eq!(r.status, 413, "{}", r.text());
        assert!(o.requests().is_empty());
    }

    fn http2_post_body_is_verified_and_forwarded(d) {
        let o = Origin::start(|r| Reply::ok(&String::from_utf8_lossy(&r.body)));
        let g = start(d, &o, H2C);
        let body = b"{\"order\":42}";
        let mut h2 = H2::connect(g.addr);
        for s in [alice(), Signing { content_sha256: true, ..alice() }] {
            let (fields, _) = sign_with(s, "POST", "localhost", "/orders", body);
            let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
            headers.extend(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let req = h2.req("POST", "/orders", &headers);
            let r = h2.send(req, Some(body)).unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.body, body);
            let got = o.requests().pop().unwrap();
            assert_eq!(got.body, body);
        }
        // a wrong signature over HTTP/2 too
        let (mut fields, _) = sign_with(alice(), "POST", "localhost", "/orders", b"other");
        fields.retain(|(n, _)| n != "x-amz-content-sha256");
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        headers.extend(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let req = h2.req("POST", "/orders", &headers);
        let r = h2.send(req, Some(body)).unwrap();
        assert_eq!(r.status, 403);
    }
}

/// A URL presigned by botocore for `GET http://HOST/pets/1?q=a+b` (None when python3 has no
/// botocore: aws-sigv4 covers the same rules above).
fn botocore_presign() -> Option<String> {
    let script = format!(
        "import botocore.session, botocore.auth, botocore.awsrequest, datetime\n\
         c = botocore.session.Session().get_component('credential_provider')\n\
         from botocore.credentials import Credentials\n\
         r = botocore.awsrequest.AWSRequest(method='GET', url='http://{HOST}/pets/1?q=a+b')\n\
         botocore.auth.SigV4QueryAuth(Credentials('{ALICE_KEY}', '{ALICE_SECRET}'), 'execute-api', '{REGION}', expires=300).add_auth(r)\n\
         print(r.url)\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .ok();
    let Some(out) = out.filter(|o| o.status.success()) else {
        eprintln!("botocore not available: its presign check skipped (aws-sigv4's ran)");
        return None;
    };
    let url = String::from_utf8(out.stdout).ok()?;
    let url = url
        .trim()
        .strip_prefix(&format!("http://{HOST}"))?
        .to_string();
    Some(url)
}

/// The errors a config gets, as `(line, key, message)`.
fn config_errors(text: &str) -> Vec<(usize, String, String)> {
    set_env();
    match tollgate::config::from_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect()
        }
    }
}

#[test]
fn config_errors_name_the_key_and_line() {
    let base = server_toml("epoll", 1, "")
        + "[[route]]\nkey = \"GET /x\"\nmock = {}\nauthorizer = \"iam\"\n"
        + &authorizer_toml();
    // the secret's variable is not set
    let unset = base.replace("TOLLGATE_IAM_TEST_TEMP\"", "TOLLGATE_IAM_TEST_NOT_SET\"");
    let e = config_errors(&unset);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "authorizer[0].credential[1].secret_env");
    assert!(
        e[0].2.contains("TOLLGATE_IAM_TEST_NOT_SET is not set"),
        "{e:?}"
    );
    let line = unset.lines().position(|l| l.contains("NOT_SET")).unwrap() + 1;
    assert_eq!(e[0].0, line);
    // a malformed access key id
    let bad = base.replace(ALICE_KEY, "akia-example");
    let e = config_errors(&bad);
    assert_eq!(e[0].1, "authorizer[0].credential[0].access_key_id", "{e:?}");
    assert_eq!(
        e[0].0,
        bad.lines()
            .position(|l| l.contains("akia-example"))
            .unwrap()
            + 1
    );
    // the budget's range, and a request authorizer's key
    let bad = base.replace(
        "region = ",
        "unverified_body_budget_bytes = 0\ncache_bytes = 65536\nregion = ",
    );
    let e = config_errors(&bad);
    let line = |k: &str| bad.lines().position(|l| l.starts_with(k)).unwrap() + 1;
    assert!(
        e.iter()
            .any(|(l, k, m)| *l == line("unverified_body_budget_bytes")
                && k == "authorizer[0].unverified_body_budget_bytes"
                && m.contains("1..=1073741824")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|(l, k, m)| *l == line("cache_bytes")
            && k == "authorizer[0].cache_bytes"
            && m.contains("has no cache_bytes")),
        "{e:?}"
    );
    // a budget below one body (the default max_body_bytes, 10 MiB, or a set one), and the
    // deadline's range
    for (limits, key) in [
        (
            "unverified_body_budget_bytes = 65536\n",
            "unverified_body_budget_bytes",
        ),
        (
            "max_body_bytes = 65537\nunverified_body_budget_bytes = 65536\n",
            "unverified_body_budget_bytes",
        ),
        ("max_body_bytes = 100000000\n", "max_body_bytes"),
    ] {
        let bad = base.replace("region = ", &format!("{limits}region = "));
        let e = config_errors(&bad);
        let line = bad.lines().position(|l| l.starts_with(key)).unwrap() + 1;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].0, e[0].1.as_str()),
            (line, &*format!("authorizer[0].{key}")),
            "{e:?}"
        );
        assert!(e[0].2.contains("is below max_body_bytes"), "{e:?}");
    }
    let bad = base.replace("region = ", "unverified_body_timeout_ms = 0\nregion = ");
    let e = config_errors(&bad);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "authorizer[0].unverified_body_timeout_ms", "{e:?}");
    assert!(e[0].2.contains("1..=300000"), "{e:?}");
    // no credential at all
    let cut = base.find("[[authorizer.credential]]").unwrap();
    let e = config_errors(&base[..cut]);
    assert_eq!(e[0].1, "authorizer[0].credential", "{e:?}");
    assert!(e[0].2.contains("at least one"), "{e:?}");
}
