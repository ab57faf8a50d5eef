//! Transport: the byte streams of client and origin connections, and what is known about a
//! client connection from the moment it was accepted.
//!
//! Owns: [`Stream`], the one type every client and origin connection is read and written
//! through (plain TCP today; TLS joins as a second variant implementing the same methods), the
//! timed I/O on it ([`IoFail`]), and whether a read side ended cleanly ([`ReadEnd`]);
//! [`bufpool`], the per-worker read
//! buffers both client sessions and the outbound client borrow. Leaves out: HTTP (see
//! [`crate::session`] and [`crate::proxy`]), accepting and connecting (the accept loop in
//! [`crate::server`], the upstream pools).
//!
//! The connection's facts (peer, scheme, TLS parameters) are [`crate::facts`]' (re-exported
//! here): the accept loop and the handshake fill them in, the layers above read them.
//!
//! Data flow: the accept loop wraps the socket in a [`Stream`] and records its [`ConnFacts`];
//! from then on only [`Stream`]'s methods touch the socket. Reads append to a `BytesMut`: an
//! owned-buffer read lends the buffer's *spare* part (monoio reads from offset 0 of what it is
//! given, so the spare capacity is sliced out with `slice_mut(len..cap)`); an idle connection
//! instead waits for readiness without a buffer ([`Stream::readable`]) and then takes what is
//! there synchronously ([`Stream::try_read`]). A caller that must never block on one write
//! (the tunnel's full-duplex relay) writes the same way: [`Stream::try_write`] takes what the
//! socket takes now, [`Stream::writable`] waits for room without a buffer, and
//! [`Stream::write_queued`] tells whether TLS still holds records. A timed read or write whose limit passes is
//! dropped: monoio cancels the in-flight operation, and the caller always closes that stream
//! afterwards, so no data is half-consumed and then reused.

pub mod bufpool;
pub mod tls;

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

pub use tls::{HandshakeError, Refused, TlsStream};

// The connection's facts live in the neutral `facts` module (the lifecycle reads them without
// naming the transport); re-exported here for code that already had them from here.
pub use crate::facts::{ClientCert, ConnFacts, PeerIp, Scheme, TlsFacts};

/// Why a timed stream operation failed.
#[derive(Debug)]
pub enum IoFail {
    Timeout,
    Io(io::Error),
}

/// How the read side of a stream stands: whether the peer's data ended, and how. On TLS an
/// end without close_notify may be a truncation (RFC 8446 §6.1: close_notify is what tells the
/// end of the data from an attacker's or a network's cut), so a close-delimited message (RFC
/// 9112 §6.3, item 8) is only complete with [`ReadEnd::CloseNotify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// More may come (no end seen yet; for plain TCP see [`Stream::read_end`]).
    Open,
    /// The TLS peer sent close_notify: a clean end of its data (RFC 8446 §6.1, RFC 5246
    /// §7.2.1). Nothing more can legitimately come.
    CloseNotify,
    /// End of stream at the transport: TCP FIN (or an end rustls saw) without close_notify on
    /// TLS; on plain TCP, its only kind of end.
    Eof,
}

/// Spare capacity below which a read first grows (or reclaims) the buffer.
pub const MIN_READ_SPARE: usize = 1024;

/// A connection's byte stream: the only way client and origin sockets are read and written.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (rustls, see [`tls`]); boxed: its state is over a kilobyte, and an idle
    /// connection's parked future holds the stream.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Waits until the stream has something to read (data, end of stream or an error), lending
    /// no buffer. A wake-up may be spurious.
    pub async fn readable(&self) -> io::Result<()> {
        // One socket readiness future for both variants (an idle connection parks it, so it
        // must not grow by a second future type): TLS first answers from what it holds.
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) if t.ready_now() => return Ok(()),
            Stream::Tls(t) => t.tcp(),
        };
        tcp.readable(false).await
    }

    /// [`Stream::readable`] bounded by `deadline`: the caller then takes the bytes
    /// synchronously ([`Stream::try_read`]), so nothing received is lost when the deadline
    /// passes.
    pub async fn readable_by(&self, deadline: Instant) -> Result<(), IoFail> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(IoFail::Timeout);
        }
        match monoio::time::timeout(left, self.readable()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(IoFail::Io(e)),
            Err(_) => Err(IoFail::Timeout),
        }
    }

    /// Waits until the SOCKET is readable (raw bytes, end of stream or an error), bounded by
    /// `deadline`, whatever TLS already holds: for callers that take raw bytes
    /// ([`Stream::discard`]). [`Stream::readable_by`] answers at once while TLS holds an end or
    /// plaintext, which a raw reader never consumes: waiting on it would spin the core.
    pub async fn socket_readable_by(&self, deadline: Instant) -> Result<(), IoFail> {
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.tcp(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(IoFail::Timeout);
        }
        match monoio::time::timeout(left, tcp.readable(false)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(IoFail::Io(e)),
            Err(_) => Err(IoFail::Timeout),
        }
    }

    /// A synchronous, non-blocking read into the spare capacity of `buf` (which first gets
    /// `want` more bytes of room when less than [`MIN_READ_SPARE`] is spare), so the buffer is
    /// never lent to a pending operation. Used right after a readiness wait. `Ok(0)`: end of
    /// stream; `WouldBlock`: nothing (yet) to hand out.
    pub fn try_read(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        let s = match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => return t.try_read(buf, want),
        };
        reserve_spare(buf, want);
        let n = recv_now(s.as_raw_fd(), buf.spare_capacity_mut())?;
        // SAFETY: recv(2) initialised exactly `n` bytes of the spare capacity, right after the
        // current length.
        unsafe { buf.set_len(buf.len() + n) };
        Ok(n)
    }

    /// Reads once into the spare capacity of `buf` (growing it as [`Stream::try_read`] does).
    /// Returns the number of bytes read; 0 means the peer closed its side.
    pub async fn read_more(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        reserve_spare(buf, want);
        match self {
            Stream::Plain(s) => {
                let owned = std::mem::take(buf);
                let (len, cap) = (owned.len(), owned.capacity());
                let (res, slice) = s.read(owned.slice_mut(len..cap)).await;
                *buf = slice.into_inner();
                res
            }
            Stream::Tls(t) => t.read_more(buf, want).await,
        }
    }

    /// [`Stream::read_more`] bounded by `limit`.
    pub async fn read_within(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
        limit: Duration,
    ) -> Result<usize, IoFail> {
        if limit.is_zero() {
            return Err(IoFail::Timeout);
        }
        match monoio::time::timeout(limit, self.read_more(buf, want)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(IoFail::Io(e)),
            Err(_) => Err(IoFail::Timeout),
        }
    }

    /// Writes all of `data`, bounded by `limit`.
    pub async fn write_all(&mut self, data: Bytes, limit: Duration) -> Result<(), IoFail> {
        match self {
            Stream::Plain(s) => match monoio::time::timeout(limit, s.write_all(data)).await {
                Ok((Ok(_), _)) => Ok(()),
                Ok((Err(e), _)) => Err(IoFail::Io(e)),
                Err(_) => Err(IoFail::Timeout),
            },
            Stream::Tls(t) => t.write_all(&data, limit).await,
        }
    }

    /// Writes all of `out`, then clears it (keeping its allocation), bounded by `limit`.
    pub async fn flush(&mut self, out: &mut BytesMut, limit: Duration) -> Result<(), IoFail> {
        if out.is_empty() {
            return Ok(());
        }
        match self {
            Stream::Plain(s) => {
                let owned = std::mem::take(out);
                match monoio::time::timeout(limit, s.write_all(owned)).await {
                    Ok((Ok(_), mut b)) => {
                        b.clear();
                        *out = b;
                        Ok(())
                    }
                    Ok((Err(e), _)) => Err(IoFail::Io(e)),
                    Err(_) => Err(IoFail::Timeout),
                }
            }
            Stream::Tls(t) => t.flush(out, limit).await,
        }
    }

    /// Waits until the SOCKET can take more bytes (or has an error), lending no buffer: for a
    /// caller with bytes pending from [`Stream::try_write`] (on TLS: records queued, see
    /// [`Stream::write_queued`]). A wake-up may be spurious.
    pub async fn writable(&self) -> io::Result<()> {
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.tcp(),
        };
        tcp.writable(false).await
    }

    /// Writes what the stream takes of `data` now, without waiting: one non-blocking `send(2)`
    /// (TLS: the plaintext into rustls, then its records as far as the socket takes them,
    /// see [`TlsStream::try_write`]). Returns the bytes of `data` taken; `WouldBlock` when
    /// none could be. An empty `data` only sends what TLS still has queued.
    pub fn try_write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) if !data.is_empty() => send_now(s.as_raw_fd(), data),
            Stream::Plain(_) => Ok(0),
            Stream::Tls(t) => t.try_write(data),
        }
    }

    /// Bytes already taken by [`Stream::try_write`] still wait for the socket (TLS records
    /// queued in rustls; never on plain TCP, whose `send(2)` takes bytes into the kernel).
    pub fn write_queued(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(t) => t.write_queued(),
        }
    }

    /// Whether the end of the peer's data, once read, was a clean one: on TLS only with
    /// close_notify (RFC 8446 §6.1); on plain TCP the FIN is its only kind of end.
    pub fn ended_cleanly(&self) -> bool {
        match self {
            Stream::Plain(_) => true,
            Stream::Tls(t) => t.read_end() == ReadEnd::CloseNotify,
        }
    }

    /// Closes the sending side at the TCP level only: on TLS without close_notify, ever
    /// (passing on a peer's end that came without one, so a truncation stays visible, RFC
    /// 8446 §6.1); on plain TCP the same as [`Stream::shutdown_write`].
    pub async fn shutdown_write_bare(&mut self) {
        match self {
            Stream::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Stream::Tls(t) => t.shutdown_bare().await,
        }
    }

    /// Closes the sending side (`shutdown(SHUT_WR)`): the peer reads what was sent, then end
    /// of stream; reading goes on. A failure (the peer is already gone) shows on the next
    /// read.
    pub async fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Stream::Tls(t) => t.shutdown_write().await,
        }
    }

    /// Before the stream is dropped: on TLS, close_notify (RFC 8446 §6.1), sent without
    /// waiting; nothing on plain TCP (the close itself is the end).
    pub fn notify_close(&mut self) {
        if let Stream::Tls(t) = self {
            t.notify_close();
        }
    }

    /// Reads and drops what is there (a lingering close discarding a client's bytes, after
    /// the response and end of stream were sent): one non-blocking `recv(2)` into `scratch`,
    /// which need not be initialised and is not read. `Ok(0)`: end of stream. On TLS the raw
    /// records are dropped undecrypted: close_notify was already sent, nothing read now is
    /// ever used.
    pub fn discard(&mut self, scratch: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        recv_now(self.raw_fd(), scratch)
    }

    /// Whether a pooled (idle) origin connection can carry a new request: nothing may be
    /// readable yet. End of stream, an error or any unread byte (a response nobody asked for,
    /// which would be taken for the next request's) mean it cannot. Non-blocking, consumes
    /// nothing: a `recv(2)` with `MSG_PEEK`. (TLS looks through its records instead: session
    /// tickets are fine, close_notify or plaintext are not.)
    pub fn probe_idle(&mut self) -> bool {
        let s = match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => return t.probe_idle(),
        };
        let mut byte = 0u8;
        // SAFETY: recv(2) writes at most 1 byte into `byte`, which outlives the call; the fd
        // is owned by this stream and open.
        let n = unsafe {
            libc::recv(
                s.as_raw_fd(),
                std::ptr::addr_of_mut!(byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }

    /// How the read side stands. TLS tracks it (close_notify or a bare TCP end, as its reads
    /// saw them); a plain TCP stream keeps no state and answers [`ReadEnd::Eof`], its only
    /// kind of end: ask after a read returned 0.
    pub fn read_end(&self) -> ReadEnd {
        match self {
            Stream::Plain(_) => ReadEnd::Eof,
            Stream::Tls(t) => t.read_end(),
        }
    }

    /// The socket's descriptor: for the idle table's timeouts, which act on the socket itself,
    /// never on the bytes.
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(t) => t.raw_fd(),
        }
    }

    /// Sets `TCP_NODELAY` (responses and requests are written whole, Nagle only delays them).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.set_nodelay(on),
            Stream::Tls(t) => t.tcp().set_nodelay(on),
        }
    }
}

fn reserve_spare(buf: &mut BytesMut, want: usize) {
    if buf.capacity() - buf.len() < MIN_READ_SPARE {
        buf.reserve(want.max(MIN_READ_SPARE));
    }
}

/// One non-blocking `send(2)` of `src` on `fd`: the number of bytes the kernel took (at least
/// one, for a non-empty `src`), or `WouldBlock` when the socket is full.
fn send_now(fd: RawFd, src: &[u8]) -> io::Result<usize> {
    // SAFETY: send(2) reads at most `src.len()` bytes from `src`, valid for reads; `fd` is
    // owned by a live stream of the caller for the duration of the call. MSG_NOSIGNAL: a peer
    // that reset gives EPIPE, not SIGPIPE.
    let n = unsafe {
        libc::send(
            fd,
            src.as_ptr().cast(),
            src.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    // negative (-1) exactly when it failed
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// One non-blocking `recv(2)` on `fd` into `dst` (which need not be initialised): the number of
/// bytes received, at most `dst.len()`, all at its start; 0 means the peer closed its side.
fn recv_now(fd: RawFd, dst: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: recv(2) writes at most `dst.len()` bytes into `dst`, which is valid for writes;
    // `fd` is owned by a live stream of the caller for the duration of the call.
    let n = unsafe { libc::recv(fd, dst.as_mut_ptr().cast(), dst.len(), libc::MSG_DONTWAIT) };
    // negative (-1) exactly when it failed
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
