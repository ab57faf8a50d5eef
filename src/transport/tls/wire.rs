//! The bytes between rustls and the socket: non-blocking `recv(2)`/`send(2)` for rustls's
//! `read_tls`/`write_tls` ([`RawIo`]), and the record layer's framing of what is read
//! ([`RecordCursor`], followed by [`RecordReader`]). Leaves out: what the records mean (rustls
//! decrypts and validates them) and when to read or write (the parent module).

use std::io::{self, Read, Write};
use std::os::fd::RawFd;

/// Non-blocking `recv(2)`/`send(2)` on the socket, for rustls's `read_tls`/`write_tls`: the
/// bytes move synchronously, so no buffer is ever lent to an operation in flight.
pub(super) struct RawIo(pub(super) RawFd);

/// [`RawIo`]'s reading side, following the record framing of what it hands rustls.
pub(super) struct RecordReader<'a> {
    pub(super) fd: RawFd,
    pub(super) records: &'a mut RecordCursor,
}

impl Read for RecordReader<'_> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let n = RawIo(self.fd).read(dst)?;
        self.records.feed(dst.get(..n).unwrap_or_default());
        Ok(n)
    }
}

impl Read for RawIo {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        // SAFETY: recv(2) writes at most `dst.len()` bytes into `dst`, valid for writes; the fd
        // belongs to the TlsStream's TcpStream, open for the duration of the call.
        let n = unsafe {
            libc::recv(
                self.0,
                dst.as_mut_ptr().cast(),
                dst.len(),
                libc::MSG_DONTWAIT,
            )
        };
        // negative (-1) exactly when it failed
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
}

impl Write for RawIo {
    fn write(&mut self, src: &[u8]) -> io::Result<usize> {
        // SAFETY: send(2) reads at most `src.len()` bytes from `src`; the fd is open (as above).
        // MSG_NOSIGNAL: a peer that reset gives EPIPE, not SIGPIPE.
        let n = unsafe {
            libc::send(
                self.0,
                src.as_ptr().cast(),
                src.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the raw bytes handed to rustls stand in the record layer's framing (RFC 8446 §5.1,
/// RFC 5246 §6.2: each record is a 5-byte header, content type (1), legacy version (2) and a
/// 2-byte big-endian length, then that many bytes). Only the framing is followed, nothing is
/// checked: rustls validates the records themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecordCursor {
    /// `got` bytes of a header so far (0: between records); `len` the length bytes seen.
    Header { got: u8, len: u16 },
    /// Inside a record's body, `left` bytes still to come.
    Body { left: u16 },
}

/// Bytes of a record header (RFC 8446 §5.1).
const RECORD_HEADER_LEN: u8 = 5;

impl RecordCursor {
    pub(super) const BOUNDARY: RecordCursor = RecordCursor::Header { got: 0, len: 0 };

    /// Follows `bytes`, which come right after what was fed before.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self {
                RecordCursor::Body { left } => {
                    let take = usize::from(*left).min(bytes.len());
                    bytes = bytes.get(take..).unwrap_or_default();
                    // take <= left
                    *left -= take as u16;
                    if *left == 0 {
                        *self = RecordCursor::BOUNDARY;
                    }
                }
                RecordCursor::Header { got, len } => {
                    let Some((&b, rest)) = bytes.split_first() else {
                        return;
                    };
                    bytes = rest;
                    // bytes 3 and 4 of the header are the length
                    if *got >= 3 {
                        *len = (*len << 8) | u16::from(b);
                    }
                    *got += 1;
                    if *got == RECORD_HEADER_LEN {
                        *self = match *len {
                            0 => RecordCursor::BOUNDARY,
                            left => RecordCursor::Body { left },
                        };
                    }
                }
            }
        }
    }

    /// Part of a record came, its rest has not.
    pub(super) fn mid_record(self) -> bool {
        self != RecordCursor::BOUNDARY
    }
}
