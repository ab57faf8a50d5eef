//! TLS over a monoio `TcpStream`, driven by rustls in tollgate's I/O model.
//!
//! Owns: [`TlsStream`] (a socket plus a `rustls::Connection`: the server side for clients, the
//! client side for origins), the handshake under a deadline ([`TlsStream::accept`],
//! [`TlsStream::connect`]) with the reason it failed ([`HandshakeError`]), what the handshake
//! established ([`TlsFacts`]), reads, writes, close_notify, and the liveness probe of a pooled
//! origin connection ([`TlsStream::probe_idle`]). Leaves out: building rustls configs
//! (certificates, SNI, client CAs: `crate::tls`), parsing the client certificate (the caller
//! gets its DER from [`TlsStream::peer_cert_der`]), and HTTP.
//!
//! Data flow, reading: no buffer is ever lent to a pending read. The stream waits for socket
//! readiness ([`TlsStream::readable`]), then [`TlsStream::try_read`] feeds rustls synchronously
//! from non-blocking `recv(2)`s (`read_tls`), decrypts (`process_new_packets`) and moves ALL the
//! plaintext rustls holds into the caller's `BytesMut`. Invariant: after a successful
//! `try_read` rustls holds no readable plaintext, so "the socket is readable" is again the only
//! sign that more can be read, and an idle keep-alive connection can wait on readiness alone.
//! Bytes of an incomplete record stay in rustls's deframer; their rest is still to come on the
//! socket. The raw reader also follows the record layer's framing of what it hands rustls
//! ([`RecordCursor`]), so a pooled connection's probe can tell "quiet between records" from
//! "in the middle of one". Writing: plaintext goes into rustls's `writer()` (encrypted into
//! records at once), and `write_tls` hands the records straight to non-blocking `send(2)`s
//! (no buffer of ours, no copy); when the socket is full the write waits for writability under
//! the caller's deadline (a caller that must not wait, the tunnel's relay, uses
//! [`TlsStream::try_write`] of `write_now` instead). What the socket did not take stays queued
//! in rustls, so a record is never half taken out: it goes first with the next send. TLS
//! bytes that rustls produces
//! while reading (alerts, a key update's answer) are sent right away the same way; on an idle
//! connection what the socket does not take at once waits in rustls for the next read or
//! write (a full socket on an idle connection means a peer that does not read, whose
//! connection ends with its idle timeout). A write that failed or timed out poisons the
//! stream ([`WriteEnd::Poisoned`]): no alert follows it. A healthy stream dropped without
//! [`TlsStream::notify_close`] (a pooled origin connection evicted, a client connection closed
//! by the idle table) sends close_notify on the way out, best effort (RFC 8446 §6.1).
//!
//! Memory (rustls 0.23.46, ring, x86_64; `tests/tls_idle_memory.rs` measures and bounds it):
//! a `ServerConnection` is 1168 bytes inline, a `TlsStream` 1256 (the caller boxes it). An idle
//! server connection after its handshake and one request keeps 7.3 KiB (TLS 1.2) to 7.4 KiB
//! (TLS 1.3) on the heap, the box included: 4 KiB of it is rustls's read (deframer) buffer,
//! which rustls shrinks back to 4 KiB when empty but never frees, with no call to release it
//! (only its unbuffered API, where the caller owns that buffer, could); the rest is the record
//! keys (ring's expanded key schedules, both directions), the traffic state machine, and the
//! send/receive queues, empty once drained. Nothing of this module's own is allocated: reads
//! and writes move bytes between rustls and the socket directly.

use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};

pub use super::{IoFail, ReadEnd, MIN_READ_SPARE};

mod wire;
mod write_now;
use wire::{RawIo, RecordCursor, RecordReader};

/// Most `read_tls` calls (each takes at most rustls's 4 KiB read size, more only to finish a
/// record) one `try_read` or `probe_idle` makes: a peer that keeps the socket full of records
/// without plaintext (or of plaintext, with a large `want`) cannot hold the core; what is left
/// keeps the socket readable, so the caller comes back after the others had their turn.
pub const MAX_TLS_READS_PER_CALL: usize = 64;

/// The message rustls 0.23 gives its fatal error when the certificate resolver found no
/// certificate for the ClientHello (`server/hs.rs`; rustls has no dedicated variant for it).
const NO_CERT_RESOLVED: &str = "no server certificate chain resolved";

/// Why a TLS handshake failed. Each variant is a reason an operator acts on differently.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The whole handshake did not finish within its limit (a silent or slow peer).
    #[error("TLS handshake timed out")]
    Timeout,
    /// The peer closed the connection (TCP end of stream) during the handshake.
    #[error("peer closed the connection during the TLS handshake")]
    PeerClosed,
    /// No protocol version in common: e.g. a TLS 1.1 ClientHello (RFC 8446 §4.2.1, RFC 5246
    /// Appendix E), or the peer refused ours with a protocol_version alert.
    #[error("no TLS protocol version in common: {0}")]
    ProtocolVersion(rustls::Error),
    /// The server has no certificate for the name the client asked for (RFC 6066 §3, SNI).
    #[error("no certificate for the requested server name")]
    NoCertificate,
    /// The client's certificate was missing where required, or did not verify (RFC 8446
    /// §4.4.2.4, RFC 5280).
    #[error("client certificate refused: {0}")]
    ClientCertificate(rustls::Error),
    /// The server's (origin's) certificate did not verify: unknown CA, wrong name, expired
    /// (RFC 5280, RFC 9525).
    #[error("server certificate refused: {0}")]
    ServerCertificate(rustls::Error),
    /// Any other TLS failure (no cipher suite in common, a malformed message, an alert).
    #[error("TLS handshake failed: {0}")]
    Tls(rustls::Error),
    /// A socket error.
    #[error("socket error during the TLS handshake: {0}")]
    Io(io::Error),
}

/// A refused server-side handshake: why, and the version chosen before it failed (`None` when
/// it failed before one was: a ClientHello without a version in common, a timeout, ...).
#[derive(Debug)]
pub struct Refused {
    pub error: HandshakeError,
    pub version: Option<&'static str>,
}

/// A protocol version as the metrics and the access log name it ("TLSv1.2", "TLSv1.3").
fn version_name(v: Option<rustls::ProtocolVersion>) -> Option<&'static str> {
    match v? {
        rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
        rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
        _ => None,
    }
}

/// Whether rustls holds plaintext that no `try_read` has taken yet. Only the handshake can
/// leave some (a client's first request in the same flight as its Finished); `try_read` always
/// takes all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Nothing,
    Plaintext,
}

pub use crate::facts::TlsFacts;

/// How the sending side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteEnd {
    /// Records go out whole, in order.
    Open,
    /// close_notify or a fatal alert was queued: nothing more is sent after it.
    Closed,
    /// A write failed or timed out: the peer may hold part of a record, or the socket is
    /// unusable, so no alert (close_notify included) may follow (it would be taken for the
    /// rest of that record, or go nowhere).
    Poisoned,
}

pub use crate::tls::ClientCert;

/// A TLS connection over a monoio TCP stream. Large (rustls's state is over 1 KiB): keep it
/// boxed where idle connections park.
pub struct TlsStream {
    tcp: TcpStream,
    conn: Connection,
    end: ReadEnd,
    held: Held,
    write: WriteEnd,
    /// The framing of the raw bytes fed to rustls so far.
    records: RecordCursor,
}

impl TlsStream {
    /// Runs the server side of a handshake on an accepted connection, bounded by `limit` as a
    /// whole. On failure the alert rustls produced is sent (best effort) before the error says
    /// why.
    pub async fn accept(
        tcp: TcpStream,
        cfg: Arc<rustls::ServerConfig>,
        limit: Duration,
    ) -> Result<(TlsStream, TlsFacts), HandshakeError> {
        TlsStream::accept_versioned(tcp, cfg, limit)
            .await
            .map_err(|r| r.error)
    }

    /// [`TlsStream::accept`], with a failure also telling the protocol version negotiated
    /// before it (a refused client certificate comes after the version was chosen), for the
    /// handshake metrics.
    pub async fn accept_versioned(
        tcp: TcpStream,
        cfg: Arc<rustls::ServerConfig>,
        limit: Duration,
    ) -> Result<(TlsStream, TlsFacts), Refused> {
        let conn = ServerConnection::new(cfg).map_err(|e| Refused {
            error: HandshakeError::Tls(e),
            version: None,
        })?;
        let mut s = TlsStream::new(tcp, Connection::Server(conn));
        if let Err(error) = s.handshake(Instant::now() + limit).await {
            let version = version_name(s.conn.protocol_version());
            return Err(Refused { error, version });
        }
        let facts = s.facts();
        Ok((s, facts))
    }

    /// Runs the client side of a handshake with an origin, verifying its certificate for
    /// `server_name` (as `cfg` says), bounded by `limit` as a whole.
    pub async fn connect(
        tcp: TcpStream,
        cfg: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        limit: Duration,
    ) -> Result<TlsStream, HandshakeError> {
        let conn = ClientConnection::new(cfg, server_name).map_err(HandshakeError::Tls)?;
        let mut s = TlsStream::new(tcp, Connection::Client(conn));
        s.handshake(Instant::now() + limit).await?;
        Ok(s)
    }

    fn new(tcp: TcpStream, conn: Connection) -> TlsStream {
        TlsStream {
            tcp,
            conn,
            end: ReadEnd::Open,
            held: Held::Nothing,
            write: WriteEnd::Open,
            records: RecordCursor::BOUNDARY,
        }
    }

    /// rustls's `read_tls` from the socket, without blocking, following the record framing.
    fn read_tls(&mut self) -> io::Result<usize> {
        self.conn.read_tls(&mut RecordReader {
            fd: self.tcp.as_raw_fd(),
            records: &mut self.records,
        })
    }

    /// Alternates sending rustls's flight and reading the peer's until the handshake is done
    /// (RFC 8446 §2, RFC 5246 §7.3); the last flight (a TLS 1.3 server's session tickets) is
    /// sent before returning.
    async fn handshake(&mut self, deadline: Instant) -> Result<(), HandshakeError> {
        loop {
            self.send_tls(deadline).await.map_err(|e| match e {
                IoFail::Timeout => HandshakeError::Timeout,
                IoFail::Io(e) => HandshakeError::Io(e),
            })?;
            if !self.conn.is_handshaking() {
                break;
            }
            match self.readable_by(deadline).await {
                Ok(()) => {}
                Err(IoFail::Timeout) => return Err(HandshakeError::Timeout),
                Err(IoFail::Io(e)) => return Err(HandshakeError::Io(e)),
            }
            match self.read_tls() {
                Ok(0) => return Err(HandshakeError::PeerClosed),
                Ok(_) => {}
                Err(e) if retry(&e) => continue,
                Err(e) => return Err(HandshakeError::Io(e)),
            }
            match self.conn.process_new_packets() {
                Ok(state) if state.peer_has_closed() => self.end = ReadEnd::CloseNotify,
                Ok(_) => {}
                Err(e) => {
                    // the fatal alert rustls queued (RFC 8446 §6.2) ends the sending side
                    self.write = WriteEnd::Closed;
                    self.send_now();
                    return Err(self.classify(e));
                }
            }
        }
        if self.plaintext_held() {
            self.held = Held::Plaintext;
        }
        Ok(())
    }

    /// Names why a handshake failed from rustls's error and which side we are.
    fn classify(&self, e: rustls::Error) -> HandshakeError {
        use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P};
        let server = matches!(self.conn, Connection::Server(_));
        match e {
            // rustls wants signature_algorithms before it looks at versions: a ClientHello
            // without it is a pre-TLS 1.2 client's (RFC 5246 §7.4.1.4.1 introduced it; TLS 1.3
            // requires it, RFC 8446 §4.2.3), such as a TLS 1.1-only one (refused with
            // handshake_failure rather than protocol_version)
            E::PeerIncompatible(P::SignatureAlgorithmsExtensionRequired) if server => {
                HandshakeError::ProtocolVersion(e)
            }
            E::PeerIncompatible(
                P::Tls12NotOffered
                | P::Tls12NotOfferedOrEnabled
                | P::SupportedVersionsExtensionRequired
                | P::ServerDoesNotSupportTls12Or13
                | P::ServerTlsVersionIsDisabledByOurConfig,
            )
            | E::AlertReceived(A::ProtocolVersion) => HandshakeError::ProtocolVersion(e),
            E::General(ref m) if server && m == NO_CERT_RESOLVED => HandshakeError::NoCertificate,
            E::NoCertificatesPresented | E::InvalidCertificate(_) if server => {
                HandshakeError::ClientCertificate(e)
            }
            E::InvalidCertificate(_) => HandshakeError::ServerCertificate(e),
            e => HandshakeError::Tls(e),
        }
    }

    fn facts(&self) -> TlsFacts {
        let version = version_name(self.conn.protocol_version()).unwrap_or("unknown");
        let (sni, client_cert) = match &self.conn {
            // only a server-side connection has a client certificate to describe; rustls
            // verified it against `client_ca` during the handshake
            Connection::Server(c) => (
                c.server_name().map(Box::from),
                self.peer_cert_der().and_then(crate::tls::client_cert_facts),
            ),
            Connection::Client(_) => (None, None),
        };
        TlsFacts {
            version,
            sni,
            alpn: self.conn.alpn_protocol().map(Box::from),
            client_cert,
        }
    }

    /// The DER of the peer's end-entity certificate, when it presented one (a verified client
    /// certificate on the server side, the origin's on the client side).
    pub fn peer_cert_der(&self) -> Option<&[u8]> {
        self.conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref())
    }

    pub fn raw_fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// How the read side stands (whether an end came with close_notify).
    pub fn read_end(&self) -> ReadEnd {
        self.end
    }

    /// Something can be read without waiting for the socket: plaintext the handshake left, or
    /// an end already seen.
    pub fn ready_now(&self) -> bool {
        self.held == Held::Plaintext || self.end != ReadEnd::Open
    }

    /// Waits until a [`TlsStream::try_read`] may make progress (a wake-up may be spurious:
    /// e.g. only part of a record arrived), lending no buffer.
    pub async fn readable(&self) -> io::Result<()> {
        if self.ready_now() {
            return Ok(());
        }
        self.tcp.readable(false).await
    }

    /// [`TlsStream::readable`] bounded by `deadline`.
    pub async fn readable_by(&self, deadline: Instant) -> Result<(), IoFail> {
        if self.ready_now() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(IoFail::Timeout);
        }
        match monoio::time::timeout(left, self.tcp.readable(false)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(IoFail::Io(e)),
            Err(_) => Err(IoFail::Timeout),
        }
    }

    /// Takes what arrived, synchronously: receives, decrypts, and appends ALL plaintext rustls
    /// then holds to `buf` (growing it; at least `want` more bytes of room when little is
    /// spare). Reading from the socket stops once `want` plaintext bytes came or it has no
    /// more. Returns the plaintext bytes appended; 0 means the peer's data ended (see
    /// [`TlsStream::read_end`]); `WouldBlock` means no plaintext yet (nothing arrived, only
    /// part of a record, or only handshake-layer messages such as session tickets).
    pub fn try_read(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        if buf.capacity() - buf.len() < MIN_READ_SPARE {
            buf.reserve(want.max(MIN_READ_SPARE));
        }
        let mut got = self.drain_plaintext(buf);
        let mut reads = 0;
        while self.end == ReadEnd::Open && got < want.max(1) && reads < MAX_TLS_READS_PER_CALL {
            reads += 1;
            match self.read_tls() {
                // (close_notify, after which rustls also reads nothing, ended the loop already)
                Ok(0) => {
                    self.end = ReadEnd::Eof;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // the alert rustls queued for the peer (RFC 8446 §6.2), best effort; it
                    // ends the sending side
                    self.write = WriteEnd::Closed;
                    self.send_now();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            got += self.drain_plaintext(buf);
            if state.peer_has_closed() {
                self.end = ReadEnd::CloseNotify;
            }
        }
        self.send_now();
        match (got, self.end) {
            (0, ReadEnd::Open) => Err(io::ErrorKind::WouldBlock.into()),
            _ => Ok(got),
        }
    }

    /// Moves all plaintext rustls holds to the end of `buf`.
    fn drain_plaintext(&mut self, buf: &mut BytesMut) -> usize {
        self.held = Held::Nothing;
        let mut got = 0;
        loop {
            let mut rd = self.conn.reader();
            let n = match rd.fill_buf() {
                Ok(chunk) if !chunk.is_empty() => {
                    buf.extend_from_slice(chunk);
                    chunk.len()
                }
                _ => return got,
            };
            rd.consume(n);
            got += n;
        }
    }

    /// rustls holds plaintext not yet taken.
    fn plaintext_held(&mut self) -> bool {
        matches!(self.conn.reader().fill_buf(), Ok(chunk) if !chunk.is_empty())
    }

    /// Waits for readiness and reads once ([`TlsStream::try_read`]) until it gives plaintext or
    /// the end: the plain stream's `read_more`.
    pub async fn read_more(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        loop {
            match self.try_read(buf, want) {
                Err(e) if retry(&e) => self.readable().await?,
                r => return r,
            }
        }
    }

    /// [`TlsStream::read_more`] bounded by `limit`.
    pub async fn read_within(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
        limit: Duration,
    ) -> Result<usize, IoFail> {
        let deadline = Instant::now() + limit;
        loop {
            match self.try_read(buf, want) {
                Err(e) if retry(&e) => self.readable_by(deadline).await?,
                Err(e) => return Err(IoFail::Io(e)),
                Ok(n) => return Ok(n),
            }
        }
    }

    /// Encrypts and sends all of `data`, bounded by `limit` as a whole. After a timeout or an
    /// error the stream is poisoned and must be closed: the peer may hold half a record.
    pub async fn write_all(&mut self, data: &[u8], limit: Duration) -> Result<(), IoFail> {
        let deadline = Instant::now() + limit;
        if self.write != WriteEnd::Open {
            return Err(IoFail::Io(io::ErrorKind::BrokenPipe.into()));
        }
        let mut rest = data;
        while !rest.is_empty() {
            // rustls encrypts at once, up to its send-buffer limit (64 KiB by default)
            let n = self.conn.writer().write(rest).map_err(IoFail::Io)?;
            rest = rest.get(n..).unwrap_or_default();
            // (records left queued by an earlier non-blocking send go first)
            let queued = self.conn.wants_write();
            self.send_tls(deadline).await?;
            if n == 0 && !queued {
                return Err(IoFail::Io(io::ErrorKind::WriteZero.into()));
            }
        }
        Ok(())
    }

    /// Writes all of `out`, then clears it (keeping its allocation), bounded by `limit`.
    pub async fn flush(&mut self, out: &mut BytesMut, limit: Duration) -> Result<(), IoFail> {
        if out.is_empty() {
            return Ok(());
        }
        self.write_all(out, limit).await?;
        out.clear();
        Ok(())
    }

    /// Sends close_notify before the connection is dropped (RFC 8446 §6.1: each party sends
    /// it before closing its write side; a client that gets none cannot tell the end from a
    /// truncation), without waiting: what the socket does not take now is dropped with it.
    /// Nothing is sent twice (rustls sends one close_notify or fatal alert at most), nothing
    /// after a failed write ([`WriteEnd::Poisoned`]) or during a handshake.
    pub fn notify_close(&mut self) {
        if self.write != WriteEnd::Open || self.conn.is_handshaking() {
            return;
        }
        self.write = WriteEnd::Closed;
        self.conn.send_close_notify();
        self.send_now();
    }

    /// Sends close_notify (RFC 8446 §6.1, RFC 5246 §7.2.1; as [`TlsStream::notify_close`]),
    /// then ends the TCP write side. Best effort: the alert goes with a non-blocking send (it
    /// is a few dozen bytes and the previous writes all completed).
    pub async fn shutdown_write(&mut self) {
        self.notify_close();
        let _ = self.tcp.shutdown().await;
    }

    /// For a pooled origin connection about to be reused: without blocking, takes what arrived
    /// while it was idle through rustls and tells whether it can carry a request. Handshake-
    /// layer records (TLS 1.3 NewSessionTicket, RFC 8446 §4.6.1; a KeyUpdate, §4.6.3) leave it
    /// alive; close_notify, TCP end of stream, any error, ANY plaintext byte (a stray or late
    /// response, which would be taken for the next answer), or part of a record whose rest
    /// has not come (RFC 8446 §5.1 framing, followed as the bytes arrive) mean it is dead.
    pub fn probe_idle(&mut self) -> bool {
        if self.ready_now() {
            return false;
        }
        for _ in 0..MAX_TLS_READS_PER_CALL {
            match self.read_tls() {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // all taken; part of a record without its rest is the start of something
                    // sent while nobody asked (a stray or late response): whatever it is, the
                    // next response would be read behind it
                    if self.records.mid_record() {
                        return false;
                    }
                    // nothing wrong: answer what needs one (a KeyUpdate)
                    self.send_now();
                    return true;
                }
                Err(_) => return false,
            }
            match self.conn.process_new_packets() {
                Ok(state) if state.peer_has_closed() || state.plaintext_bytes_to_read() > 0 => {
                    return false
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        // an idle connection that keeps receiving records is not one to reuse
        false
    }

    /// Sends the TLS records rustls has queued, under `deadline`: `write_tls` straight into
    /// non-blocking `send(2)`s, waiting for writability only when the socket is full. A failure
    /// or timeout poisons the stream ([`WriteEnd::Poisoned`]).
    async fn send_tls(&mut self, deadline: Instant) -> Result<(), IoFail> {
        let r = self.send_all(deadline).await;
        if r.is_err() {
            self.write = WriteEnd::Poisoned;
        }
        r
    }

    async fn send_all(&mut self, deadline: Instant) -> Result<(), IoFail> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut RawIo(self.tcp.as_raw_fd())) {
                // send(2) of a non-empty chunk takes at least a byte or fails
                Ok(0) => return Err(IoFail::Io(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(IoFail::Timeout);
                    }
                    match monoio::time::timeout(left, self.tcp.writable(false)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(IoFail::Io(e)),
                        Err(_) => return Err(IoFail::Timeout),
                    }
                }
                Err(e) => return Err(IoFail::Io(e)),
            }
        }
        Ok(())
    }

    /// Sends what rustls has queued as far as the socket takes it now, without waiting; the
    /// rest stays queued in rustls and goes first with the next send. Nothing on a poisoned
    /// stream.
    fn send_now(&mut self) {
        while self.write != WriteEnd::Poisoned && self.conn.wants_write() {
            match self.conn.write_tls(&mut RawIo(self.tcp.as_raw_fd())) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

impl Drop for TlsStream {
    /// A healthy stream closed without [`TlsStream::notify_close`] (an evicted or expired
    /// pooled origin connection, a client connection the idle table closed) still tells the
    /// peer its data ended (RFC 8446 §6.1): close_notify with one non-blocking send, no wait.
    fn drop(&mut self) {
        self.notify_close();
    }
}

/// A read that should be tried again after a readiness wait.
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
