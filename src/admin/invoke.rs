//! The Lambda Invoke API for local functions on the admin listener:
//! `POST /2015-03-31/functions/NAME/invocations`, so `aws lambda invoke --endpoint-url
//! http://ADMIN --function-name NAME out.json` works against tollgate.
//!
//! Owns: recognising the path (the function by name, or by ARN as the SDKs may send it,
//! percent-decoded), reading the request body (by `Content-Length` only, at most the 6 MB
//! payload limit: 413 beyond, 411 for a chunked body), relaying it to the functions service's
//! internal Invoke API (one blocking HTTP/1.1 exchange over loopback, bounded by the longest
//! the service takes to answer, [`crate::config::functions::local_answer_bound`], plus
//! [`RELAY_SLACK`]) and relaying its answer: status, body and the
//! Invoke API's fields (`X-Amz-Function-Error`, `x-amzn-RequestId`, `x-amzn-ErrorType`,
//! `X-Amz-Executed-Version`, `Content-Type`). A function that is not a local one of the config
//! being served is answered 404 `ResourceNotFoundException` here, as AWS words it. Leaves out:
//! running the function and the Invoke API's own answers (see `crate::functions`); the SigV4
//! `Authorization` the CLI sends is ignored (the admin listener's own rules apply: a local or
//! IP `Host`, no cross-site `Origin`), and so are `X-Amz-Log-Type` and `X-Amz-Client-Context`.
//! Runs on the admin connection's own thread, never on a worker.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::Admin;
use crate::config::functions::MAX_PAYLOAD_BYTES;
use crate::config::FunctionKind;
use crate::functions::{invoke_path, percent_decode, INVOKE_PREFIX};
use crate::http::{parse_response, BodyKind, Limits, Method, RequestHead};

/// What the relay waits beyond the longest the service takes to answer
/// ([`crate::config::functions::local_answer_bound`]), so the service always answers first.
pub const RELAY_SLACK: Duration = Duration::from_secs(1);
/// Longest wait to connect to the service (loopback).
pub const RELAY_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest answer body relayed: the payload limit and room for the error envelope.
pub const MAX_ANSWER_BYTES: usize = MAX_PAYLOAD_BYTES + 64 * 1024;
/// The Invoke API fields relayed from the service's answer, as AWS spells them.
const RELAYED: [&str; 5] = [
    "Content-Type",
    "x-amzn-RequestId",
    "X-Amz-Function-Error",
    "x-amzn-ErrorType",
    "X-Amz-Executed-Version",
];

/// The function an Invoke API path names (`/2015-03-31/functions/{name}/invocations`,
/// percent-decoded: a name, or an ARN whose function name is taken); `None` for another path.
pub fn target(path: &[u8]) -> Option<String> {
    let rest = path.strip_prefix(INVOKE_PREFIX.as_bytes())?;
    let segment = rest.strip_suffix(b"/invocations")?;
    if segment.is_empty() || segment.contains(&b'/') {
        return None;
    }
    let decoded = percent_decode(segment)?;
    if decoded.starts_with("arn:") {
        // `arn:...:function:NAME[:QUALIFIER]`: the local function NAME
        let name = crate::config::functions::parse_arn(&decoded).ok()?.name;
        return Some(name.to_string());
    }
    Some(decoded)
}

/// An answer to write: status, Invoke API fields, body.
struct Answer {
    status: u16,
    fields: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    /// An Invoke API error as AWS answers it: `x-amzn-ErrorType` and
    /// `{"Type":...,"message":...}`.
    fn aws(status: u16, error_type: &'static str, kind: &str, message: &str) -> Answer {
        let body = serde_json::json!({ "Type": kind, "message": message }).to_string();
        Answer {
            status,
            fields: vec![
                ("Content-Type", "application/json".to_string()),
                ("x-amzn-ErrorType", error_type.to_string()),
            ],
            body: body.into_bytes(),
        }
    }
}

/// Serves one Invoke API request whose head is `head` (the body follows in `buf`, then on
/// `s`); `false`: the connection must close.
pub(super) fn serve(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    head: &RequestHead,
    name: &str,
    admin: &Admin,
    (idle, keep): (Duration, bool),
) -> bool {
    let len = match head.body {
        BodyKind::Empty => 0,
        BodyKind::Length(n) if n <= MAX_PAYLOAD_BYTES as u64 => n as usize,
        BodyKind::Length(n) => {
            let m = format!(
                "{n} byte payload is too large for the RequestResponse invocation type \
                 (limit {MAX_PAYLOAD_BYTES} bytes)"
            );
            let a = Answer::aws(413, "RequestEntityTooLargeException", "User", &m);
            let _ = write(s, &a, false);
            return false;
        }
        // the body's length is needed up front (RFC 9110 §15.5.12)
        BodyKind::Chunked | BodyKind::CloseDelimited => {
            super::fail(s, 411);
            return false;
        }
    };
    let Some(body) = read_body(s, buf, len, idle) else {
        return false;
    };
    let answer = if head.method_kind == Method::Post {
        invoke(admin, name, head, &body)
    } else {
        Answer {
            status: 405,
            fields: vec![("Content-Type", "application/json".to_string())],
            body: br#"{"message":"Method Not Allowed"}"#.to_vec(),
        }
    };
    write(s, &answer, keep).is_ok() && keep
}

/// The `len` body bytes: those already in `buf`, then read from `s`, all within `idle`.
fn read_body(s: &mut TcpStream, buf: &mut BytesMut, len: usize, idle: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + idle;
    let mut body = Vec::with_capacity(len);
    let have = buf.len().min(len);
    body.extend_from_slice(&buf.split_to(have));
    let mut chunk = [0u8; 16 * 1024];
    while body.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            super::fail(s, 408); // the body arrived too slowly (RFC 9110 §15.5.9)
            return None;
        }
        let _ = s.set_read_timeout(Some(left));
        let want = (len - body.len()).min(chunk.len());
        match s.read(chunk.get_mut(..want)?) {
            Ok(0) => return None,
            Ok(n) => body.extend_from_slice(chunk.get(..n)?),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    Some(body)
}

/// Relays the invocation to the functions service and its answer back.
fn invoke(admin: &Admin, name: &str, head: &RequestHead, body: &[u8]) -> Answer {
    let cur = admin.control.current();
    let local = cur
        .config
        .functions
        .iter()
        .find(|f| f.name == name && matches!(f.kind, FunctionKind::Local(_)));
    let Some(f) = local else {
        let m = format!("Function not found: {name}");
        return Answer::aws(404, "ResourceNotFoundException", "User", &m);
    };
    let Some(addr) = admin.functions_addr else {
        let m = "the functions service is not running";
        return Answer::aws(503, "ServiceException", "Service", m);
    };
    let invocation_type = head
        .header("x-amz-invocation-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("RequestResponse");
    let wait = crate::config::functions::local_answer_bound(f.timeout).saturating_add(RELAY_SLACK);
    let request = Request {
        path: invoke_path(&f.name),
        invocation_type,
        body,
    };
    match exchange(addr, &request, wait) {
        Ok(a) => a,
        Err(e) => {
            let m = format!("the functions service did not answer: {e}");
            Answer::aws(502, "ServiceException", "Service", &m)
        }
    }
}

/// What is sent to the service.
struct Request<'a> {
    path: String,
    invocation_type: &'a str,
    body: &'a [u8],
}

/// One blocking HTTP/1.1 exchange with the service at `addr`, all of it within `wait`.
fn exchange(addr: SocketAddr, r: &Request<'_>, wait: Duration) -> std::io::Result<Answer> {
    let deadline = Instant::now() + wait;
    let mut s = TcpStream::connect_timeout(&addr, RELAY_CONNECT_TIMEOUT)?;
    let _ = s.set_nodelay(true);
    s.set_write_timeout(Some(wait))?;
    let mut out = format!(
        "POST {} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-amz-invocation-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        r.path,
        r.invocation_type,
        r.body.len()
    )
    .into_bytes();
    out.extend_from_slice(r.body);
    s.write_all(&out)?;
    let timed_out = || std::io::Error::new(ErrorKind::TimedOut, "no answer in time");
    let mut buf = BytesMut::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    // reads more into `buf`; false at the end of the stream
    let mut more = |s: &mut TcpStream, buf: &mut BytesMut| -> std::io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(timed_out())
            }
            Err(e) => Err(e),
        }
    };
    let bad = |m: &str| std::io::Error::new(ErrorKind::InvalidData, m.to_string());
    let head = loop {
        match parse_response(&mut buf, false, &Limits::default()) {
            Ok(Some(h)) if h.status >= 200 => break h,
            Ok(Some(_)) => continue, // an interim 1xx (RFC 9110 §15.2): the final one follows
            Ok(None) => {}
            Err(e) => return Err(bad(&format!("bad answer head: {e}"))),
        }
        if !more(&mut s, &mut buf)? {
            return Err(bad("the connection closed before an answer"));
        }
    };
    let body = match head.body {
        BodyKind::Empty => Vec::new(),
        BodyKind::Length(n) if n <= MAX_ANSWER_BYTES as u64 => {
            while (buf.len() as u64) < n {
                if !more(&mut s, &mut buf)? {
                    return Err(bad("the answer body was cut short"));
                }
            }
            buf.split_to(n as usize).to_vec()
        }
        BodyKind::CloseDelimited => {
            while more(&mut s, &mut buf)? {
                if buf.len() > MAX_ANSWER_BYTES {
                    return Err(bad("the answer body is too large"));
                }
            }
            buf.to_vec()
        }
        BodyKind::Length(_) => return Err(bad("the answer body is too large")),
        BodyKind::Chunked => return Err(bad("a chunked answer (the service sends lengths)")),
    };
    let fields = RELAYED
        .iter()
        .filter_map(|&name| {
            let v = head.header(&name.to_ascii_lowercase())?;
            Some((name, String::from_utf8_lossy(v).into_owned()))
        })
        .collect();
    Ok(Answer {
        status: head.status,
        fields,
        body,
    })
}

fn write(s: &mut TcpStream, a: &Answer, keep: bool) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        a.status,
        crate::error::reason_phrase(a.status)
    );
    for (name, value) in &a.fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    // 204 (DryRun) carries no content (RFC 9110 §6.4.1)
    if crate::http::status_has_content(a.status) {
        out.push_str(&format!("content-length: {}\r\n", a.body.len()));
    }
    out.push_str("cache-control: no-store\r\n");
    if !keep {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if crate::http::status_has_content(a.status) {
        bytes.extend_from_slice(&a.body);
    }
    s.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_paths_name_the_function() {
        let t = |p: &str| target(p.as_bytes());
        assert_eq!(
            t("/2015-03-31/functions/hello/invocations").as_deref(),
            Some("hello")
        );
        assert_eq!(
            t("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello/invocations")
                .as_deref(),
            Some("hello")
        );
        assert_eq!(
            t("/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:hi:$LATEST/invocations")
                .as_deref(),
            Some("hi")
        );
        for other in [
            "/2015-03-31/functions//invocations",
            "/2015-03-31/functions/a/b/invocations",
            "/2015-03-31/functions/hello",
            "/2015-03-31/functions/hello/invocations/x",
            "/2015-03-31/functions/%zz/invocations",
            "/2015-03-31/functions/arn%3Anope/invocations",
            "/metrics",
        ] {
            assert_eq!(t(other), None, "{other}");
        }
    }
}
