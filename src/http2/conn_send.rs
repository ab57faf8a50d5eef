//! The send side of [`Connection`]: response heads and trailers (HPACK-encoded into HEADERS +
//! CONTINUATION by the peer's SETTINGS_MAX_FRAME_SIZE, §4.3, §6.2, §6.10), DATA within the
//! stream and connection send windows (§6.9), and the credit of the receive windows as the
//! application consumes request bodies (WINDOW_UPDATE once half a window is owed).

use bytes::Bytes;

use super::super::frame;
use super::{Closed, Connection, Half, Head, StreamGone};

impl Connection {
    /// How many DATA payload bytes may be sent on `id` now (min of the stream's and the
    /// connection's send windows); 0 = wait for `Event::WindowUpdate` (or the stream is gone).
    pub fn send_capacity(&self, id: u32) -> usize {
        match self.streams.get(&id) {
            Some(s) if s.local == Half::Open => s.send_window.min(self.send_window).max(0) as usize,
            _ => 0,
        }
    }

    /// Response head: `:status` + `fields` (lowercase names, no connection-specific fields),
    /// HPACK-encoded, split into HEADERS + CONTINUATION by the peer's max frame size.
    pub fn send_headers<'a>(
        &mut self,
        id: u32,
        status: u16,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        end_stream: bool,
    ) -> Result<(), StreamGone> {
        self.sendable(id)?;
        // RFC 9110 §15.2: a 1xx response is interim, never the end of the stream; one final
        // head per response (§8.1) — driver bugs, caught in debug builds
        debug_assert!(!(status < 200 && end_stream), "1xx with END_STREAM");
        if let Some(s) = self.streams.get_mut(&id) {
            debug_assert!(s.head != Head::Final, "a second final response head");
            if status >= 200 {
                s.head = Head::Final;
            }
        }
        self.put_block(id, Some(status_bytes(status)), fields, end_stream);
        if end_stream {
            self.end_local(id);
        }
        Ok(())
    }

    /// Trailers: HEADERS with END_STREAM and no pseudo-header (§8.1).
    pub fn send_trailers<'a>(
        &mut self,
        id: u32,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), StreamGone> {
        self.sendable(id)?;
        self.put_block(id, None, fields, true);
        self.end_local(id);
        Ok(())
    }

    /// Sends up to `send_capacity` bytes from the front of `data` (frames of the peer's max
    /// frame size), END_STREAM when `end_stream` and all of `data` went. Returns the bytes
    /// taken (`data` keeps the rest).
    pub fn send_data(
        &mut self,
        id: u32,
        data: &mut Bytes,
        end_stream: bool,
    ) -> Result<usize, StreamGone> {
        self.sendable(id)?;
        let n = data.len().min(self.send_capacity(id));
        let chunk = data.split_to(n);
        let last = end_stream && data.is_empty();
        let max = self.peer.max_frame_size as usize;
        if chunk.is_empty() {
            if last {
                frame::put_data(&mut self.out, id, b"", true);
            }
        } else {
            let mut frames = chunk.chunks(max).peekable();
            while let Some(part) = frames.next() {
                frame::put_data(&mut self.out, id, part, last && frames.peek().is_none());
            }
        }
        self.send_window -= n as i64;
        if let Some(s) = self.streams.get_mut(&id) {
            s.send_window -= n as i64;
        }
        // each DATA frame may be credited by the peer on its stream and on the connection
        let frames = n.div_ceil(max.max(1));
        self.wu_credit = (self.wu_credit as usize)
            .saturating_add(2 * frames)
            .min(super::WINDOW_UPDATE_CREDIT_MAX as usize) as u32;
        if last {
            self.end_local(id);
        }
        Ok(n)
    }

    /// The application consumed `n` bytes of stream `id`'s request body: credit both windows,
    /// a WINDOW_UPDATE queued once at least half a window is owed (not one frame per chunk).
    /// At most the bytes delivered and not released yet count; on a stream that is gone this
    /// does nothing (its unreleased bytes were credited when it went).
    pub fn release_capacity(&mut self, id: u32, n: usize) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX).min(s.unreleased);
        s.unreleased -= n;
        self.credit(id, n as usize);
    }

    /// Credits `n` received bytes of stream `id` to both receive windows (released by the
    /// application, or padding that never reached it).
    pub(super) fn credit(&mut self, id: u32, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.credit_conn(n);
        let full = i64::from(self.recv_initial);
        let half = self.recv_initial / 2;
        if let Some(s) = self.streams.get_mut(&id) {
            if s.remote == Half::Closed {
                return;
            }
            s.recv_owed = s.recv_owed.saturating_add(n);
            if s.recv_owed >= half.max(1) {
                // never more than the window we advertised, whatever is released
                let inc = i64::from(s.recv_owed).min(full - s.recv_window);
                s.recv_owed = 0;
                if inc > 0 {
                    s.recv_window += inc;
                    frame::put_window_update(&mut self.out, id, inc as u32);
                }
            }
        }
    }

    /// Credits the connection window by `n` (application reads and bytes we dropped).
    pub(super) fn credit_conn(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.recv_owed = self.recv_owed.saturating_add(n);
        let full = i64::from(self.limits.connection_window_size);
        if self.recv_owed >= (self.limits.connection_window_size / 2).max(1) {
            // never more than the window we advertised, whatever is released
            let inc = i64::from(self.recv_owed).min(full - self.recv_window);
            self.recv_owed = 0;
            if inc > 0 {
                self.recv_window += inc;
                frame::put_window_update(&mut self.out, 0, inc as u32);
            }
        }
    }

    fn sendable(&self, id: u32) -> Result<(), StreamGone> {
        match self.streams.get(&id) {
            Some(s) if s.local == Half::Open => Ok(()),
            _ => Err(StreamGone),
        }
    }

    /// Our END_STREAM went out: half-closed (local), or closed when the client's side ended.
    pub(super) fn end_local(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.local = Half::Closed;
            if s.remote == Half::Closed {
                self.remove_stream(id);
                self.remember(id, Closed::Ended);
            }
        }
    }

    /// HPACK-encodes `fields` straight into the output behind a HEADERS header, re-framed
    /// into CONTINUATIONs only when the block exceeds the peer's max frame size.
    fn put_block<'a>(
        &mut self,
        id: u32,
        status: Option<[u8; 3]>,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        end_stream: bool,
    ) {
        let start = self.out.len();
        frame::put_head(&mut self.out, 0, frame::HEADERS, 0, id);
        // one block in two calls: a pending table size update goes first, as §4.2 requires
        if let Some(status) = status {
            let pseudo = (&b":status"[..], &status[..], false);
            self.encoder.encode([pseudo], &mut self.out);
        }
        self.encoder
            .encode(fields.map(|(n, v)| (n, v, false)), &mut self.out);
        let len = self.out.len() - start - frame::HEADER_LEN;
        let max = self.peer.max_frame_size as usize;
        if len <= max {
            let flags = frame::FLAG_END_HEADERS
                | if end_stream {
                    frame::FLAG_END_STREAM
                } else {
                    0
                };
            // §4.1: the 24-bit length (at most max_frame_size < 2^24) and the flags, in place
            let [_, l0, l1, l2] = (len as u32).to_be_bytes();
            if let Some(head) = self.out.get_mut(start..start + 5) {
                head[0] = l0;
                head[1] = l1;
                head[2] = l2;
                head[4] = flags;
            }
        } else {
            let block = self.out.split_off(start + frame::HEADER_LEN);
            self.out.truncate(start);
            frame::put_header_block(&mut self.out, id, &block, end_stream, max);
        }
    }
}

/// The three ASCII digits of a status code (100..=999 in practice; others are clamped).
fn status_bytes(status: u16) -> [u8; 3] {
    let s = status.clamp(100, 999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}
