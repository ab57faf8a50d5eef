//! The small HTTP/1.1 server side both of the service's listeners share.
//!
//! Owns reading one request (head by [`crate::http::parse_request`], body by
//! [`crate::http::BodyDecoder`] under a byte limit, `Expect: 100-continue` answered) from a
//! keep-alive connection, and writing one response with `content-length`. Leaves out routing
//! and meaning (see [`super::runtime_api`], [`super::invoke_api`]) and any parsing of its own:
//! the codec is the gateway's strict one (RFC 9112), so a malformed request gets the status
//! the codec names and the connection is closed (RFC 9112 §9.3: the framing can no longer be
//! trusted). Reads wait for readiness without lending a buffer and then take the bytes
//! synchronously ([`Stream::readable_by`] + [`Stream::try_read`]), so a parked connection holds
//! no buffer in flight.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::http::{
    parse_request, BodyChunk, BodyDecoder, BodyKind, HttpError, Limits, RequestHead,
};
use crate::transport::{IoFail, Stream};

/// Bytes asked for per read.
const READ_CHUNK: usize = 16 * 1024;
/// How long a request head may take from its first byte to its end (not reset by each read:
/// a peer trickling bytes cannot hold the connection).
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How long a request body may take, from the end of its head to its last byte (6 MB at most,
/// over loopback).
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);
/// How long writing one response may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One complete request.
pub struct Request {
    pub head: RequestHead,
    pub body: Bytes,
}

/// Why no request came.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or went quiet past the idle limit) between requests: nothing to answer.
    Closed,
    /// A protocol error: answer `err.status()`, then close.
    Http(HttpError),
}

/// One server-side connection.
pub struct Conn {
    stream: Stream,
    buf: BytesMut,
    /// The codec's limits; its body limit is left open so the head parses whatever its
    /// `Content-Length` and the caller can route on it ([`Conn::read_body`] applies
    /// `max_body`).
    limits: Limits,
    max_body: usize,
}

impl Conn {
    /// `max_body`: the body limit (413 beyond, RFC 9110 §15.5.14).
    pub fn new(tcp: monoio::net::TcpStream, max_body: usize) -> Conn {
        let _ = tcp.set_nodelay(true);
        Conn {
            stream: Stream::Plain(tcp),
            buf: BytesMut::new(),
            limits: Limits {
                max_body_bytes: u64::MAX,
                ..Limits::default()
            },
            max_body,
        }
    }

    /// Reads the next request; waits up to `idle` for it to start (`None`: no limit).
    pub async fn read_request(&mut self, idle: Option<Duration>) -> Result<Request, ReadError> {
        let head = self.read_head(idle).await?;
        let body = self.read_body(&head).await?;
        Ok(Request { head, body })
    }

    /// Reads the next request's head; waits up to `idle` for its first byte (`None`: no
    /// limit), then up to [`HEAD_DEADLINE`] for the rest.
    pub async fn read_head(&mut self, idle: Option<Duration>) -> Result<RequestHead, ReadError> {
        let mut deadline = idle.map(|d| Instant::now() + d);
        let mut started = false;
        loop {
            match parse_request(&mut self.buf, &self.limits) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Http(e)),
            }
            if !self.buf.is_empty() && !started {
                started = true;
                deadline = Some(Instant::now() + HEAD_DEADLINE);
            }
            match self.fill(deadline).await {
                Some(0) | None if self.buf.is_empty() => return Err(ReadError::Closed),
                Some(0) | None => return Err(ReadError::Http(HttpError::UnexpectedEof)),
                Some(_) => {}
            }
        }
    }

    /// Reads `head`'s body, within [`BODY_DEADLINE`]; over the body limit: `BodyTooLarge`
    /// (at once when `Content-Length` says so, RFC 9110 §15.5.14).
    pub async fn read_body(&mut self, head: &RequestHead) -> Result<Bytes, ReadError> {
        if let BodyKind::Length(n) = head.body {
            if n > self.max_body as u64 {
                return Err(ReadError::Http(HttpError::BodyTooLarge));
            }
        }
        let deadline = Instant::now() + BODY_DEADLINE;
        if head.expect_continue {
            // RFC 9110 §10.1.1: the client may wait for this before sending the body.
            let go = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            if self.stream.write_all(go, WRITE_TIMEOUT).await.is_err() {
                return Err(ReadError::Closed);
            }
        }
        let mut dec = BodyDecoder::with_body_cap(head.body, &self.limits, self.max_body as u64);
        let mut body = BytesMut::new();
        loop {
            match dec.decode(&mut self.buf) {
                Ok(Some(BodyChunk::Data(d))) => {
                    if body.len() + d.len() > self.max_body {
                        return Err(ReadError::Http(HttpError::BodyTooLarge));
                    }
                    body.extend_from_slice(&d);
                }
                Ok(Some(BodyChunk::End { .. })) => break,
                Ok(None) => match self.fill(Some(deadline)).await {
                    Some(0) | None => return Err(ReadError::Http(HttpError::UnexpectedEof)),
                    Some(_) => {}
                },
                Err(e) => return Err(ReadError::Http(e)),
            }
        }
        Ok(body.freeze())
    }

    /// One read into the buffer: `Some(n)` (0 = end of stream), `None` on timeout or error.
    async fn fill(&mut self, deadline: Option<Instant>) -> Option<usize> {
        loop {
            let ready = match deadline {
                Some(d) => self.stream.readable_by(d).await.map_err(|_| ()),
                None => self.stream.readable().await.map_err(|_| ()),
            };
            ready.ok()?;
            match self.stream.try_read(&mut self.buf, READ_CHUNK) {
                Ok(n) => return Some(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
            }
        }
    }

    /// Writes `reply`; false when the connection must close (it was asked to, or failed).
    pub async fn write(&mut self, reply: &Reply) -> bool {
        let out = reply.encode();
        match self.stream.write_all(out, WRITE_TIMEOUT).await {
            Ok(()) => !reply.close,
            Err(IoFail::Timeout | IoFail::Io(_)) => false,
        }
    }
}

/// A response: status, extra fields, a body (sent with `content-length`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub fields: Vec<(&'static str, String)>,
    /// `content-type: application/json` is sent unless the status has no content.
    pub body: Bytes,
    /// Send `connection: close` and close after it.
    pub close: bool,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            fields: Vec::new(),
            body: body.into(),
            close: false,
        }
    }

    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.fields.push((name, value.into()));
        self
    }

    /// The answer to a protocol error: its status, then close.
    pub fn for_error(e: HttpError) -> Reply {
        let msg = serde_json::json!({ "message": e.to_string() }).to_string();
        Reply {
            close: true,
            ..Reply::json(e.status(), msg)
        }
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        // RFC 9110 §8.6: no content-length (nor content) in a 204.
        let has_content = self.status != 204 && self.status != 304;
        if has_content {
            out.extend_from_slice(b"content-type: application/json\r\n");
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if self.close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if has_content {
            out.extend_from_slice(&self.body);
        }
        Bytes::from(out)
    }
}

/// Reason phrases of the statuses the service sends (RFC 9110 §15).
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server `Conn` on `rt` answering what it reads, driven by a std client.
    fn conn_reads_chunked_bodies_and_answers_expect_continue(epoll: bool) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s.write_all(b"POST /a HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ntransfer-encoding: chunked\r\n\r\n")
                .expect("head");
            let mut got = [0u8; 25];
            s.read_exact(&mut got).expect("100");
            assert_eq!(&got, b"HTTP/1.1 100 Continue\r\n\r\n");
            // the body, then a pipelined second request with a body over the limit
            s.write_all(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nPOST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\n")
                .expect("rest");
            let mut all = Vec::new();
            let _ = s.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        let serve = async move {
            let l = monoio::net::TcpListener::from_std(listener).expect("listener");
            let (tcp, _) = l.accept().await.expect("accept");
            let mut c = Conn::new(tcp, 10);
            let r = c
                .read_request(Some(Duration::from_secs(10)))
                .await
                .expect("first");
            assert_eq!(r.head.path_bytes(), b"/a");
            assert_eq!(&r.body[..], b"abcde");
            assert!(c.write(&Reply::json(200, r.body.clone())).await);
            match c.read_request(Some(Duration::from_secs(10))).await {
                Err(ReadError::Http(e)) => {
                    assert_eq!(e, HttpError::BodyTooLarge);
                    c.write(&Reply::for_error(e)).await;
                }
                other => panic!("expected 413, got {:?}", other.map(|r| r.body)),
            }
        };
        if epoll {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("epoll")
                .block_on(serve);
        } else {
            match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(mut rt) => rt.block_on(serve),
                Err(_) => return,
            }
        }
        let out = client.join().expect("client");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("content-length: 5\r\n\r\nabcdeHTTP/1.1 413 Content Too Large\r\n"),
            "{out}"
        );
        assert!(out.contains("connection: close"), "{out}");
    }

    #[test]
    fn conn_round_trip_epoll() {
        conn_reads_chunked_bodies_and_answers_expect_continue(true);
    }

    #[test]
    fn conn_round_trip_io_uring() {
        conn_reads_chunked_bodies_and_answers_expect_continue(false);
    }

    #[test]
    fn reply_encoding() {
        let r = Reply::json(202, r#"{"status":"OK"}"#).field("x-a", "1");
        assert_eq!(
            &r.encode()[..],
            b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 15\r\nx-a: 1\r\n\r\n{\"status\":\"OK\"}"
        );
        let r = Reply {
            close: true,
            ..Reply::json(204, "ignored")
        };
        assert_eq!(
            &r.encode()[..],
            b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
        );
        let e = Reply::for_error(HttpError::BodyTooLarge);
        assert_eq!(e.status, 413);
        assert!(e.close);
    }
}
