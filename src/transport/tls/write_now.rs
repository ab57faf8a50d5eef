//! Non-blocking writes on a [`TlsStream`], for a caller that must never wait on one side while
//! the other has bytes to move (the tunnel's full-duplex relay, `session::h1_tunnel`).
//!
//! Owns: [`TlsStream::try_write`] (plaintext into rustls's `writer()`, encrypted into records at
//! once, then as many queued records as the socket takes now), [`TlsStream::write_queued`]
//! (records still waiting for the socket: the caller waits for writability, then calls
//! `try_write` again), and [`TlsStream::shutdown_bare`] (a TCP end without close_notify, to
//! pass on a peer's truncation as one). Leaves out: waiting (the caller's readiness wait) and
//! the timed writes of the parent module. Records are never half taken out: what the socket
//! does not take stays queued in rustls and goes first with the next send.

use std::io::{self, Write};
use std::os::fd::AsRawFd;

use monoio::io::AsyncWriteRent;

use super::wire::RawIo;
use super::{TlsStream, WriteEnd};

impl TlsStream {
    /// Hands as much of `data` to rustls as its send buffer takes (its default limit: 64 KiB
    /// of records queued), then sends queued records until the socket is full, without
    /// waiting. Returns the bytes of `data` taken (0 for an empty `data`: only a flush of what
    /// is queued); `WouldBlock` when nothing of a non-empty `data` could be taken. A failed
    /// send poisons the stream ([`WriteEnd::Poisoned`]).
    pub fn try_write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.write != WriteEnd::Open {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        // records queued earlier go first (their sequence numbers, RFC 8446 §5.3)
        self.send_queued()?;
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.conn.writer().write(data)?;
        self.send_queued()?;
        if n == 0 {
            // rustls's send buffer is full of records the socket did not take
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// rustls holds records the socket has not taken yet.
    pub fn write_queued(&self) -> bool {
        self.write == WriteEnd::Open && self.conn.wants_write()
    }

    /// Sends queued records until none is left or the socket is full.
    fn send_queued(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut RawIo(self.tcp.as_raw_fd())) {
                Ok(0) => {
                    self.write = WriteEnd::Poisoned;
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => {
                    self.write = WriteEnd::Poisoned;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Ends the TCP write side WITHOUT close_notify, and never sends one afterwards (nor on
    /// drop): passes on a peer's end that came without close_notify as what it was, so the
    /// other side can still tell a truncation from a clean end (RFC 8446 §6.1).
    pub async fn shutdown_bare(&mut self) {
        if self.write == WriteEnd::Open {
            self.write = WriteEnd::Closed;
        }
        let _ = self.tcp.shutdown().await;
    }
}
