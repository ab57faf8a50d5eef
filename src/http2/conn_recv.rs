//! The receive side of [`Connection`]: the client preface (§3.4), then frame by frame the
//! stream-state (§5.1, §5.1.1), flow-control (§6.9), settings (§6.5) and request framing
//! (§8.1) rules, with the abuse counters consulted on the way. Header blocks (HEADERS,
//! CONTINUATION) continue in `conn_headers.rs`.
//! Connection errors go through `fail` (GOAWAY queued), stream errors through
//! `stream_error` (RST_STREAM queued, `Event::StreamError` when the application knew the
//! stream).

use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::super::frame::{self, ErrorCode, Frame, FrameError, Head, Settings};
use super::super::limits::ZERO_COPY_MIN_BYTES;
use super::{Abuse, Closed, ConnError, Connection, Event, Half, Phase, Remembered};

impl Connection {
    /// Consumes every complete frame at the front of `input` (the client preface first);
    /// leaves a partial frame in place. Pushes events; queues acks, resets, WINDOW_UPDATEs.
    /// Err = connection error: GOAWAY with that code is queued; flush the output and close.
    pub fn recv(&mut self, input: &mut BytesMut, events: &mut Vec<Event>) -> Result<(), ConnError> {
        self.recv_at(input, events, Instant::now())
    }

    /// [`Connection::recv`] at the given time (the rate limits' clock; tests pass their own).
    pub fn recv_at(
        &mut self,
        input: &mut BytesMut,
        events: &mut Vec<Event>,
        now: Instant,
    ) -> Result<(), ConnError> {
        if let Phase::Failed(e) = self.phase {
            return Err(e);
        }
        self.counters.tick(now);
        self.recv_seq += 1;
        self.recv_frames(input, events)?;
        if self.control_out > self.limits.max_pending_output_bytes {
            return Err(self.fail(
                ErrorCode::EnhanceYourCalm,
                "the peer does not read what it asks for",
                Some(Abuse::OutputFlood),
            ));
        }
        Ok(())
    }

    fn recv_frames(
        &mut self,
        input: &mut BytesMut,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if self.phase == Phase::Preface {
            let seen = usize::from(self.preface_seen);
            let n = (frame::PREFACE.len() - seen).min(input.len());
            if input[..n] != frame::PREFACE[seen..seen + n] {
                // §3.4: an invalid preface is a connection error PROTOCOL_ERROR
                return Err(self.fail(
                    ErrorCode::ProtocolError,
                    "invalid connection preface",
                    None,
                ));
            }
            input.advance(n);
            self.preface_seen += n as u8;
            if usize::from(self.preface_seen) < frame::PREFACE.len() {
                return Ok(());
            }
            self.phase = Phase::FirstSettings;
        }
        loop {
            let Some(head) = input.get(..frame::HEADER_LEN) else {
                return Ok(());
            };
            let mut raw = [0u8; frame::HEADER_LEN];
            raw.copy_from_slice(head);
            let head = Head::parse(&raw);
            // §4.2: larger than our SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR (a connection
            // error: the frame may carry a header block, which alters connection state)
            if head.len > self.limits.max_frame_size {
                return Err(self.fail(
                    ErrorCode::FrameSizeError,
                    "frame larger than MAX_FRAME_SIZE",
                    None,
                ));
            }
            let total = frame::HEADER_LEN + head.len as usize;
            if input.len() < total {
                return Ok(()); // the rest of the frame is on its way
            }
            input.advance(frame::HEADER_LEN);
            let payload = input.split_to(head.len as usize).freeze();
            self.on_frame(head, payload, events)?;
        }
    }

    fn on_frame(
        &mut self,
        head: Head,
        payload: Bytes,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        // §6.10, §4.3: a header block's frames are contiguous; anything else inside one
        // (another stream's frame, any other type, even an unknown one) is PROTOCOL_ERROR
        if let Some(p) = &self.pending {
            if head.kind != frame::CONTINUATION || head.stream != p.stream {
                return Err(self.fail(
                    ErrorCode::ProtocolError,
                    "frame inside a header block",
                    None,
                ));
            }
        }
        if self.phase == Phase::FirstSettings {
            // §3.4: the client preface ends with a SETTINGS frame (not an ack)
            if head.kind != frame::SETTINGS || head.flags & frame::FLAG_ACK != 0 {
                return Err(self.fail(
                    ErrorCode::ProtocolError,
                    "first frame is not SETTINGS",
                    None,
                ));
            }
            self.phase = Phase::Open;
        }
        let parsed = match frame::parse(head, payload) {
            Ok(f) => f,
            Err(FrameError::Conn(code, reason)) => return Err(self.fail(code, reason, None)),
            Err(FrameError::Stream(id, code, reason)) => {
                return self.stream_error(id, code, reason, events);
            }
        };
        match parsed {
            Frame::Data {
                stream,
                data,
                end_stream,
                flow_len,
            } => self.on_data(stream, data, end_stream, flow_len, events),
            Frame::Headers {
                stream,
                fragment,
                end_stream,
                end_headers,
                priority,
            } => self.on_headers(stream, fragment, end_stream, end_headers, priority, events),
            Frame::Continuation {
                stream,
                fragment,
                end_headers,
            } => self.on_continuation(stream, fragment, end_headers, events),
            Frame::Priority { stream, priority } => {
                self.control()?;
                // §5.3.1: a stream cannot depend on itself: stream error PROTOCOL_ERROR. On an
                // idle stream §6.4 forbids RST_STREAM, so it is a connection error there (h2spec
                // 5.3.1 accepts either a stream or a connection error PROTOCOL_ERROR)
                if priority.dependency == stream && self.is_idle(stream) {
                    return Err(self.fail(
                        ErrorCode::ProtocolError,
                        "idle stream depends on itself",
                        None,
                    ));
                }
                if priority.dependency == stream {
                    return self.stream_error(
                        stream,
                        ErrorCode::ProtocolError,
                        "stream depends on itself",
                        events,
                    );
                }
                Ok(())
            }
            Frame::RstStream { stream, code } => self.on_rst_stream(stream, code, events),
            Frame::Settings { ack, settings } => self.on_settings(ack, settings, events),
            // §8.4: a client cannot push
            Frame::PushPromise { .. } => {
                Err(self.fail(ErrorCode::ProtocolError, "PUSH_PROMISE from a client", None))
            }
            Frame::Ping { ack, payload } => {
                self.control()?;
                // §6.7: answer with an ACK carrying the same payload; never answer an ACK
                if !ack {
                    self.queue_control(|out| frame::put_ping(out, true, payload));
                }
                Ok(())
            }
            Frame::GoAway {
                last_stream_id,
                code,
                ..
            } => {
                events.push(Event::GoAway {
                    last_stream_id,
                    code,
                });
                // a client sends one; more are a control-frame flood
                self.control()
            }
            Frame::WindowUpdate { stream, increment } => {
                self.on_window_update(stream, increment, events)
            }
            // §5.5: unknown frame types are ignored (but counted: they cost a frame each)
            Frame::Unknown { .. } => self.control(),
        }
    }

    /// §5.1: an idle stream is one the client has not opened yet; we never push, so even
    /// ids are always idle.
    fn is_idle(&self, id: u32) -> bool {
        id.is_multiple_of(2) || id > self.last_peer_stream
    }

    fn on_data(
        &mut self,
        id: u32,
        data: Bytes,
        end_stream: bool,
        flow_len: u32,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        // §6.9.1: every DATA counts against the connection window, whatever its stream
        self.recv_window -= i64::from(flow_len);
        if self.recv_window < 0 {
            return Err(self.fail(
                ErrorCode::FlowControlError,
                "connection receive window exceeded",
                None,
            ));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // bytes that reach no stream are credited back at once
            self.credit_conn(flow_len);
            if self.is_idle(id) {
                // §5.1 idle: only HEADERS and PRIORITY
                return Err(self.fail(ErrorCode::ProtocolError, "DATA on an idle stream", None));
            }
            return match self.closed_how(id) {
                // sent before the client saw our RST_STREAM: ignored, but counted (a flood of
                // them would otherwise cost frames for free)
                Remembered::Closed(Closed::ByUs) if data.is_empty() && !end_stream => self.empty(),
                Remembered::Closed(Closed::ByUs) => self.control(),
                // §5.1 closed: after END_STREAM both ways or the client's own RST_STREAM, a
                // connection error STREAM_CLOSED
                Remembered::Closed(Closed::Ended) => {
                    Err(self.fail(ErrorCode::StreamClosed, "DATA on a closed stream", None))
                }
                // closed too long ago to tell how, or skipped (implicitly closed, §5.1.1): a
                // stream error STREAM_CLOSED, counted as a control frame (no request work was
                // lost), once per stream id while remembered
                Remembered::NeverOpened | Remembered::Forgotten => {
                    self.queue_control(|out| {
                        frame::put_rst_stream(out, id, ErrorCode::StreamClosed)
                    });
                    self.remember(id, Closed::ByUs);
                    self.control()
                }
            };
        };
        if s.remote == Half::Closed {
            // §5.1 half-closed (remote): STREAM_CLOSED
            self.credit_conn(flow_len);
            return self.stream_error(id, ErrorCode::StreamClosed, "DATA after END_STREAM", events);
        }
        s.recv_window -= i64::from(flow_len);
        if s.recv_window < 0 {
            self.credit_conn(flow_len);
            return self.stream_error(
                id,
                ErrorCode::FlowControlError,
                "stream receive window exceeded",
                events,
            );
        }
        // §8.1.1: DATA must add up to the content-length; nothing past it is delivered
        let mut length_error = None;
        if let Some(remaining) = &mut s.remaining {
            match remaining.checked_sub(data.len() as u64) {
                None => length_error = Some("DATA exceeds the content-length"),
                Some(r) if end_stream && r > 0 => {
                    length_error = Some("END_STREAM before the content-length")
                }
                Some(r) => *remaining = r,
            }
        }
        if let Some(reason) = length_error {
            self.credit_conn(flow_len);
            return self.stream_error(id, ErrorCode::ProtocolError, reason, events);
        }
        // the padding (and its length octet) never reaches the application: credit it now
        let padding = (flow_len as usize).saturating_sub(data.len());
        if data.is_empty() && !end_stream {
            self.credit(id, padding);
            return self.empty();
        }
        s.unreleased = s.unreleased.saturating_add(data.len() as u32);
        // a small payload is copied: a slice would pin the whole read buffer (conn.rs, memory
        // bound); a large one stays a zero-copy slice
        let data = if data.len() < ZERO_COPY_MIN_BYTES {
            Bytes::copy_from_slice(&data)
        } else {
            data
        };
        events.push(Event::Data {
            id,
            data,
            end_stream,
        });
        self.credit(id, padding);
        if end_stream {
            self.end_remote(id);
        }
        Ok(())
    }

    fn on_rst_stream(
        &mut self,
        id: u32,
        code: ErrorCode,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if self.is_idle(id) {
            // §6.4: RST_STREAM on an idle stream is a connection error PROTOCOL_ERROR
            return Err(self.fail(
                ErrorCode::ProtocolError,
                "RST_STREAM on an idle stream",
                None,
            ));
        }
        let Some(s) = self.remove_stream(id) else {
            // closed: ignored (§5.1), but a flood of them costs frames for nothing
            return self.control();
        };
        self.remember(id, Closed::Ended);
        events.push(Event::Reset { id, code });
        // CVE-2023-44487: a stream reset before we answered cost us work for nothing
        if s.local == Half::Open {
            return self.count_reset(Abuse::RapidReset);
        }
        Ok(())
    }

    fn on_settings(
        &mut self,
        ack: bool,
        s: Settings,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        self.control()?;
        if ack {
            // §6.5.3: our SETTINGS now apply
            if self.settings_unacked > 0 {
                self.settings_unacked -= 1;
                if self.settings_unacked == 0 {
                    self.decoder
                        .set_table_size_limit(self.limits.header_table_size as usize);
                    let delta =
                        i64::from(self.limits.initial_window_size) - i64::from(self.recv_initial);
                    self.recv_initial = self.limits.initial_window_size;
                    for st in self.streams.values_mut() {
                        st.recv_window += delta;
                    }
                }
            }
            return Ok(());
        }
        if let Some(size) = s.header_table_size {
            self.encoder.set_table_size(size as usize);
        }
        if let Some(size) = s.max_frame_size {
            self.peer.max_frame_size = size;
        }
        if let Some(window) = s.initial_window_size {
            // §6.9.2: the change applies to every stream's send window, possibly below zero;
            // past 2^31-1 is a connection error FLOW_CONTROL_ERROR
            let delta = i64::from(window) - i64::from(self.peer.initial_window);
            self.peer.initial_window = window;
            let mut overflow = false;
            for (&id, st) in self.streams.iter_mut() {
                let was = st.send_window;
                st.send_window += delta;
                overflow |= st.send_window > i64::from(frame::MAX_WINDOW);
                // only a window that opens wakes its sender (one event per stream per recv)
                if was <= 0
                    && st.send_window > 0
                    && st.local == Half::Open
                    && st.woken_in != self.recv_seq
                {
                    st.woken_in = self.recv_seq;
                    events.push(Event::WindowUpdate { id });
                }
            }
            if overflow {
                return Err(self.fail(
                    ErrorCode::FlowControlError,
                    "INITIAL_WINDOW_SIZE overflows a window",
                    None,
                ));
            }
        }
        self.queue_control(frame::put_settings_ack);
        Ok(())
    }

    fn on_window_update(
        &mut self,
        id: u32,
        increment: u32,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if id == 0 {
            // §6.9: increment 0 on the connection is a connection error PROTOCOL_ERROR;
            // §6.9.1: beyond 2^31-1 a connection error FLOW_CONTROL_ERROR
            if increment == 0 {
                return Err(self.fail(ErrorCode::ProtocolError, "WINDOW_UPDATE increment 0", None));
            }
            let was = self.send_window;
            self.send_window += i64::from(increment);
            if self.send_window > i64::from(frame::MAX_WINDOW) {
                return Err(self.fail(
                    ErrorCode::FlowControlError,
                    "connection window above 2^31-1",
                    None,
                ));
            }
            if was <= 0 && self.conn_woken_in != self.recv_seq {
                self.conn_woken_in = self.recv_seq;
                events.push(Event::WindowUpdate { id: 0 });
                return Ok(());
            }
            return self.window_update_credit();
        }
        let Some(s) = self.streams.get_mut(&id) else {
            if self.is_idle(id) {
                return Err(self.fail(
                    ErrorCode::ProtocolError,
                    "WINDOW_UPDATE on an idle stream",
                    None,
                ));
            }
            // closed: ignored (a client may credit the last DATA of a stream that has closed
            // since), but beyond the DATA we sent a flood of them is a control-frame flood
            return self.window_update_credit();
        };
        // the same two rules as stream errors
        if increment == 0 {
            return self.stream_error(
                id,
                ErrorCode::ProtocolError,
                "WINDOW_UPDATE increment 0",
                events,
            );
        }
        let was = s.send_window;
        s.send_window += i64::from(increment);
        if s.send_window > i64::from(frame::MAX_WINDOW) {
            return self.stream_error(
                id,
                ErrorCode::FlowControlError,
                "stream window above 2^31-1",
                events,
            );
        }
        // only a window that opens wakes the sender (send_capacity was 0 for it)
        if was <= 0 && s.local == Half::Open && s.woken_in != self.recv_seq {
            s.woken_in = self.recv_seq;
            events.push(Event::WindowUpdate { id });
            return Ok(());
        }
        self.window_update_credit()
    }

    /// A WINDOW_UPDATE that wakes no sender: flow control at work while it credits DATA frames
    /// we sent (see `wu_credit`), else a control frame that costs work for nothing.
    fn window_update_credit(&mut self) -> Result<(), ConnError> {
        match self.wu_credit.checked_sub(1) {
            Some(left) => {
                self.wu_credit = left;
                Ok(())
            }
            None => self.control(),
        }
    }

    /// The client's END_STREAM arrived: half-closed (remote), or closed when ours went too.
    pub(super) fn end_remote(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.remote = Half::Closed;
            if s.local == Half::Closed {
                self.remove_stream(id);
                self.remember(id, Closed::Ended);
            }
        }
    }

    /// A stream error (§5.4.2): RST_STREAM queued, the stream forgotten (frames in flight
    /// ignored), `Event::StreamError` when the application knew it; counted as a reset.
    pub(super) fn stream_error(
        &mut self,
        id: u32,
        code: ErrorCode,
        reason: &'static str,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let known = self.remove_stream(id).is_some();
        self.queue_control(|out| frame::put_rst_stream(out, id, code));
        self.remember(id, Closed::ByUs);
        if known {
            events.push(Event::StreamError { id, code, reason });
        } else {
            // no event (the application never saw the stream): the driver still counts it
            self.silent_resets = self.silent_resets.saturating_add(1);
        }
        self.count_reset(Abuse::RapidReset)
    }

    pub(super) fn count_reset(&mut self, abuse: Abuse) -> Result<(), ConnError> {
        if self.counters.note_reset(&self.limits) {
            return Err(self.fail(
                ErrorCode::EnhanceYourCalm,
                "too many reset streams",
                Some(abuse),
            ));
        }
        Ok(())
    }

    pub(super) fn control(&mut self) -> Result<(), ConnError> {
        if self.counters.note_control(&self.limits) {
            return Err(self.fail(
                ErrorCode::EnhanceYourCalm,
                "control frame flood",
                Some(Abuse::ControlFlood),
            ));
        }
        Ok(())
    }

    pub(super) fn empty(&mut self) -> Result<(), ConnError> {
        if self.counters.note_empty(&self.limits) {
            return Err(self.fail(
                ErrorCode::EnhanceYourCalm,
                "empty frame flood",
                Some(Abuse::EmptyFrames),
            ));
        }
        Ok(())
    }

    /// Queues a frame we send on our own, counted toward max_pending_output_bytes.
    pub(super) fn queue_control(&mut self, put: impl FnOnce(&mut BytesMut)) {
        let before = self.out.len();
        put(&mut self.out);
        self.control_out += self.out.len() - before;
    }
}
