//! The header blocks of [`Connection`]'s receive side: HEADERS and CONTINUATION (§4.3, §6.2,
//! §6.10), what a block is for (a new stream's request, trailers, or a block only decoded to
//! keep HPACK in step: §5.1, §5.1.1, §5.1.2, §6.8), its decoding (COMPRESSION_ERROR on any
//! failure), validation by [`super::super::fields`] (malformed = stream error, §8.1.1), the
//! 431 answer to an oversized header list (§10.5.1), and the CONTINUATION flood caps.

use bytes::{Bytes, BytesMut};

use super::super::fields::{Block, BlockKind, Finished};
use super::super::frame::{self, ErrorCode, Priority};
use super::super::hpack::HpackError;
use super::{
    Abuse, Closed, ConnError, Connection, Event, Half, Head, PendingBlock, Remembered, Stream,
};

/// The JSON body of the 431 answer to a header list over the limit (RFC 9113 §10.5.1,
/// RFC 6585 §5).
const TOO_LARGE_BODY: &[u8] = br#"{"message":"Request Header Fields Too Large"}"#;

/// What a header block is for, decided when its HEADERS arrives (the block is decoded in any
/// case, to keep the HPACK table in step with the client's, RFC 9113 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// A new stream's request; `self_dependent`: its priority names itself (§5.3.1).
    Request { self_dependent: bool },
    /// Trailers of an open stream (§8.1).
    Trailers,
    /// Decoded, then dropped.
    Discard(Discard),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Discard {
    /// A stream we reset earlier: the client sent this before seeing our RST_STREAM. Counted
    /// as a reset (a request's decoding for nothing).
    Ignore,
    /// A stream closed too long ago to remember how (§5.1 closed): RST_STREAM STREAM_CLOSED,
    /// counted as a control frame.
    Forgotten,
    /// Over SETTINGS_MAX_CONCURRENT_STREAMS (§5.1.2): REFUSED_STREAM, counted as a reset.
    Refuse,
    /// After our GOAWAY (§6.8): REFUSED_STREAM, counted as a reset.
    GoingAway,
    /// A stream error on an existing stream.
    Reset(ErrorCode, &'static str),
}

impl Connection {
    pub(super) fn on_headers(
        &mut self,
        id: u32,
        fragment: Bytes,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let target = self.headers_target(id, end_stream, priority)?;
        // the encoded bytes are capped whether the block comes in one frame or several
        self.check_block_size(fragment.len(), Abuse::HeaderListTooLarge)?;
        if end_headers {
            // copied out of the read buffer: the fields are slices of the block, and must not
            // pin the buffer the rest of the read came in (conn.rs, memory bound)
            let block = Bytes::copy_from_slice(&fragment);
            return self.finish_block(id, target, end_stream, block, events);
        }
        if fragment.is_empty() {
            self.empty()?;
        }
        self.pending = Some(Box::new(PendingBlock {
            stream: id,
            end_stream,
            target,
            buf: BytesMut::from(&fragment[..]),
            continuations: 0,
        }));
        Ok(())
    }

    /// What a HEADERS frame on stream `id` is (§5.1, §5.1.1, §8.1).
    fn headers_target(
        &mut self,
        id: u32,
        end_stream: bool,
        priority: Option<Priority>,
    ) -> Result<Target, ConnError> {
        if id.is_multiple_of(2) {
            // §5.1.1: client streams are odd
            return Err(self.fail(
                ErrorCode::ProtocolError,
                "even stream id from a client",
                None,
            ));
        }
        if let Some(s) = self.streams.get(&id) {
            return Ok(if s.remote == Half::Closed {
                Target::Discard(Discard::Reset(
                    ErrorCode::StreamClosed,
                    "HEADERS after END_STREAM",
                ))
            } else if !end_stream {
                // §8.1: trailers end the stream
                Target::Discard(Discard::Reset(
                    ErrorCode::ProtocolError,
                    "trailers without END_STREAM",
                ))
            } else {
                Target::Trailers
            });
        }
        if id <= self.last_peer_stream {
            return match self.closed_how(id) {
                Remembered::Closed(Closed::ByUs) => Ok(Target::Discard(Discard::Ignore)),
                Remembered::Closed(Closed::Ended) => {
                    Err(self.fail(ErrorCode::StreamClosed, "HEADERS on a closed stream", None))
                }
                // §5.1.1: the identifier of a new stream is larger than every one the client
                // opened or reserved; h2spec 5.1.1/2 wants this connection error for an id
                // skipped earlier (never opened)
                Remembered::NeverOpened => {
                    Err(self.fail(ErrorCode::ProtocolError, "stream id not increasing", None))
                }
                // too old to tell: §5.1 "closed", the stream error STREAM_CLOSED, after the
                // block is decoded (it may be late trailers of a stream we answered early)
                Remembered::Forgotten => Ok(Target::Discard(Discard::Forgotten)),
            };
        }
        self.closed.advance(self.last_peer_stream, id);
        self.closed.opened(id);
        self.last_peer_stream = id;
        if let Some(last) = self.goaway_last {
            if id > last {
                return Ok(Target::Discard(Discard::GoingAway));
            }
        }
        if self.streams.len() >= self.limits.max_concurrent_streams as usize {
            return Ok(Target::Discard(Discard::Refuse));
        }
        Ok(Target::Request {
            self_dependent: priority.is_some_and(|p| p.dependency == id),
        })
    }

    pub(super) fn on_continuation(
        &mut self,
        id: u32,
        fragment: Bytes,
        end_headers: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        // (a CONTINUATION of another stream while a block is open failed in on_frame)
        let Some(mut p) = self.pending.take() else {
            return Err(self.fail(
                ErrorCode::ProtocolError,
                "CONTINUATION without a header block",
                None,
            ));
        };
        p.continuations = p.continuations.saturating_add(1);
        if p.continuations > self.limits.max_continuation_frames {
            return Err(self.fail(
                ErrorCode::EnhanceYourCalm,
                "too many CONTINUATION frames",
                Some(Abuse::ContinuationFlood),
            ));
        }
        if fragment.is_empty() && !end_headers {
            self.empty()?;
        }
        self.check_block_size(p.buf.len() + fragment.len(), Abuse::ContinuationFlood)?;
        p.buf.extend_from_slice(&fragment);
        if end_headers {
            return self.finish_block(id, p.target, p.end_stream, p.buf.freeze(), events);
        }
        self.pending = Some(p);
        Ok(())
    }

    /// The encoded block may not grow past max_header_list_size while it arrives, so an
    /// unfinished block never holds more memory than that (CVE-2024-27316).
    fn check_block_size(&mut self, len: usize, abuse: Abuse) -> Result<(), ConnError> {
        if len > self.limits.max_header_list_size as usize {
            return Err(self.fail(
                ErrorCode::EnhanceYourCalm,
                "header block larger than max_header_list_size",
                Some(abuse),
            ));
        }
        Ok(())
    }

    /// Decodes a complete block (§4.3: any decoding error is COMPRESSION_ERROR) and acts on
    /// it per its target.
    fn finish_block(
        &mut self,
        id: u32,
        target: Target,
        end_stream: bool,
        block: Bytes,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let kind = match target {
            Target::Trailers => BlockKind::Trailers,
            _ => BlockKind::Request,
        };
        let mut fields = Block::new(kind);
        match self.decoder.decode_with(&block, |f| fields.push(f)) {
            Ok(()) => {}
            Err(HpackError::HeaderListTooLarge) => {
                return self.header_list_too_large(id, target, end_stream, events);
            }
            Err(_) => {
                return Err(self.fail(
                    ErrorCode::CompressionError,
                    "header block decoding failed",
                    None,
                ));
            }
        }
        let self_dependent = match target {
            Target::Discard(d) => return self.discard(id, d, events),
            Target::Request { self_dependent } => self_dependent,
            Target::Trailers => false,
        };
        let finished = match fields.finish() {
            Ok(f) => f,
            // §8.1.1: malformed is a stream error PROTOCOL_ERROR
            Err(reason) => return self.stream_error(id, ErrorCode::ProtocolError, reason, events),
        };
        match finished {
            Finished::Trailers(fields) => {
                // the application may have reset the stream while the block arrived
                let Some(s) = self.streams.get(&id) else {
                    return Ok(());
                };
                if s.remaining.is_some_and(|r| r > 0) {
                    return self.stream_error(
                        id,
                        ErrorCode::ProtocolError,
                        "trailers before the content-length",
                        events,
                    );
                }
                events.push(Event::Trailers { id, fields });
                self.end_remote(id);
                Ok(())
            }
            Finished::Request(fields) => {
                if self_dependent {
                    return self.stream_error(
                        id,
                        ErrorCode::ProtocolError,
                        "stream depends on itself",
                        events,
                    );
                }
                // §8.1.1: END_STREAM on the HEADERS means a body of 0 bytes
                if end_stream && fields.content_length.is_some_and(|n| n > 0) {
                    return self.stream_error(
                        id,
                        ErrorCode::ProtocolError,
                        "END_STREAM before the content-length",
                        events,
                    );
                }
                self.open_stream(id, end_stream, fields.content_length);
                events.push(Event::Request {
                    id,
                    fields: Box::new(fields),
                    end_stream,
                });
                Ok(())
            }
        }
    }

    fn open_stream(&mut self, id: u32, end_stream: bool, content_length: Option<u64>) {
        self.streams.insert(
            id,
            Stream {
                remote: if end_stream { Half::Closed } else { Half::Open },
                local: Half::Open,
                send_window: i64::from(self.peer.initial_window),
                recv_window: i64::from(self.recv_initial),
                recv_owed: 0,
                unreleased: 0,
                head: Head::Pending,
                woken_in: 0,
                remaining: content_length,
            },
        );
    }

    /// RFC 9113 §10.5.1: a request whose header list exceeds the advertised limit gets a 431
    /// (with a JSON body when the window allows); its body, if any, is stopped with
    /// RST_STREAM NO_ERROR (§8.1). Counted as a reset.
    fn header_list_too_large(
        &mut self,
        id: u32,
        target: Target,
        end_stream: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        match target {
            Target::Discard(d) => return self.discard(id, d, events),
            Target::Trailers => {
                return self.stream_error(
                    id,
                    ErrorCode::ProtocolError,
                    "trailers larger than max_header_list_size",
                    events,
                );
            }
            Target::Request { .. } => {}
        }
        self.open_stream(id, end_stream, None);
        let len = TOO_LARGE_BODY.len().to_string();
        let fits = self.send_capacity(id) >= TOO_LARGE_BODY.len();
        // without the window for the body, the status alone (no content-type for no content)
        let fields: &[(&[u8], &[u8])] = if fits {
            &[
                (b"content-type", b"application/json"),
                (b"content-length", len.as_bytes()),
            ]
        } else {
            &[]
        };
        let _ = self.send_headers(id, 431, fields.iter().copied(), !fits);
        if fits {
            let _ = self.send_data(id, &mut Bytes::from_static(TOO_LARGE_BODY), true);
        }
        self.close_stream(id);
        self.count_reset(Abuse::HeaderListTooLarge)
    }

    fn discard(&mut self, id: u32, how: Discard, events: &mut Vec<Event>) -> Result<(), ConnError> {
        match how {
            // a request decoded for nothing: counted like the reset that caused it
            Discard::Ignore => self.count_reset(Abuse::RapidReset),
            Discard::Forgotten => {
                self.queue_control(|out| frame::put_rst_stream(out, id, ErrorCode::StreamClosed));
                self.control()
            }
            Discard::GoingAway => {
                self.queue_control(|out| frame::put_rst_stream(out, id, ErrorCode::RefusedStream));
                self.remember(id, Closed::ByUs);
                self.count_reset(Abuse::RapidReset)
            }
            Discard::Refuse => {
                // §5.1.2: REFUSED_STREAM, which tells the client it may retry
                self.queue_control(|out| frame::put_rst_stream(out, id, ErrorCode::RefusedStream));
                self.remember(id, Closed::ByUs);
                self.count_reset(Abuse::TooManyStreams)
            }
            Discard::Reset(code, reason) => self.stream_error(id, code, reason, events),
        }
    }
}
