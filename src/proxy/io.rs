//! Socket helpers over monoio's owned-buffer I/O, with deadlines.
//!
//! Owns: appending reads into a `BytesMut` (monoio reads into a buffer from offset 0, so every
//! read lends the *spare* part through `slice_mut(len..cap)`), whole writes, and timeouts. A read
//! or write whose deadline passes is dropped: monoio cancels the in-flight operation, and the
//! caller always closes that socket afterwards, so no data can be half-consumed and then reused.

use std::io;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// Why a timed socket operation failed.
#[derive(Debug)]
pub enum IoFail {
    Timeout,
    Io(io::Error),
}

/// Spare capacity below which a read first grows (or reclaims) the buffer.
pub const MIN_READ_SPARE: usize = 1024;

/// Reads once into the spare capacity of `buf`; when less than [`MIN_READ_SPARE`] is spare, the
/// buffer first gets `want` more bytes of room. Returns the number of bytes read; 0 means the
/// peer closed its side.
pub async fn read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ_SPARE {
        buf.reserve(want.max(MIN_READ_SPARE));
    }
    let owned = std::mem::take(buf);
    let (len, cap) = (owned.len(), owned.capacity());
    let (res, slice) = stream.read(owned.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

/// A non-blocking `recv(2)` into the spare capacity of `buf`, done synchronously, so the buffer
/// is never lent to a pending operation. Used right after a readiness wait, when data (or end of
/// stream) is known to be there: a burst of wake-ups then needs one buffer at a time instead of
/// one per connection. `WouldBlock` means the readiness was spurious.
pub fn try_read(stream: &TcpStream, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ_SPARE {
        buf.reserve(want.max(MIN_READ_SPARE));
    }
    let n = recv_now(stream, buf.spare_capacity_mut())?;
    // SAFETY: recv(2) initialised exactly `n` bytes of the spare capacity, right after the
    // current length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One non-blocking `recv(2)` into `dst` (which need not be initialised): the number of bytes
/// received, at most `dst.len()`, all at its start; 0 means the peer closed its side.
pub fn recv_now(stream: &TcpStream, dst: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: recv(2) writes at most `dst.len()` bytes into `dst`, which is valid for writes;
    // the fd is owned by `stream` and open for the duration of the call.
    let n = unsafe {
        libc::recv(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            dst.as_mut_ptr().cast(),
            dst.len(),
            libc::MSG_DONTWAIT,
        )
    };
    // negative (-1) exactly when it failed
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Waits, bounded by `deadline`, until `stream` is readable (data, end of stream or an error),
/// lending no buffer: the caller then takes the bytes synchronously (`recv(2)`, as [`try_read`]
/// does), so nothing received is lost when the deadline passes. A wake-up may be spurious.
pub async fn readable_by(stream: &TcpStream, deadline: Instant) -> Result<(), IoFail> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(IoFail::Timeout);
    }
    match monoio::time::timeout(left, stream.readable(false)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(IoFail::Io(e)),
        Err(_) => Err(IoFail::Timeout),
    }
}

/// [`read_more`] bounded by `limit`.
pub async fn read_within(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    want: usize,
    limit: Duration,
) -> Result<usize, IoFail> {
    if limit.is_zero() {
        return Err(IoFail::Timeout);
    }
    match monoio::time::timeout(limit, read_more(stream, buf, want)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(IoFail::Io(e)),
        Err(_) => Err(IoFail::Timeout),
    }
}

/// Writes all of `out`, then clears it (keeping its allocation), bounded by `limit`.
pub async fn flush(
    stream: &mut TcpStream,
    out: &mut BytesMut,
    limit: Duration,
) -> Result<(), IoFail> {
    if out.is_empty() {
        return Ok(());
    }
    let owned = std::mem::take(out);
    match monoio::time::timeout(limit, stream.write_all(owned)).await {
        Ok((Ok(_), mut b)) => {
            b.clear();
            *out = b;
            Ok(())
        }
        Ok((Err(e), _)) => Err(IoFail::Io(e)),
        Err(_) => Err(IoFail::Timeout),
    }
}
