//! Message body framing: decoding and encoding on bytes only (RFC 9112 6-7).
//!
//! Owns [`BodyDecoder`] (Content-Length, chunked and close-delimited bodies
//! read from the front of a connection buffer), [`ChunkedDecoder`] (the
//! chunked state machine, RFC 9112 7.1) and [`BodyEncoder`] (re-framing on
//! the way out). It leaves out how the framing was chosen (the head parsers
//! decide [`BodyKind`]), I/O, flow control and content codings.
//!
//! Data flow: the decoder splits data off the front of the caller's
//! `BytesMut` zero-copy (`split_to(..).freeze()`), yielding partial data as
//! soon as it is available, then one `End` carrying the validated trailer
//! fields that may be forwarded (RFC 9110 §6.5.1; the others are dropped,
//! a malformed line is an error); bytes after the body stay in the buffer
//! (pipelining).
//! The encoder appends framed bytes to an output `BytesMut`. All framing
//! errors are `BadRequest` since the decoder serves both directions: the
//! proxy maps errors on an origin's body to 502 itself.

use bytes::{Buf, Bytes, BytesMut};

use super::fields::{self, allowed_in_trailer, hex_val, is_tchar, quoted_string_len};
use super::{BodyKind, HttpError, Limits};

/// One piece of a decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyChunk {
    /// Body bytes, never empty.
    Data(Bytes),
    /// The body is complete. `trailers`: the validated trailer field lines
    /// that may be forwarded (RFC 9110 §6.5.1, see `fields::NOT_IN_TRAILERS`),
    /// each with its CRLF, without the final empty line; empty if none
    /// (always empty for non-chunked bodies).
    End { trailers: Bytes },
}

impl BodyChunk {
    fn end() -> BodyChunk {
        BodyChunk::End {
            trailers: Bytes::new(),
        }
    }
}

/// Incremental body decoder. Feed it the connection buffer in a loop:
///
/// ```ignore
/// while let Some(c) = dec.decode(&mut buf)? {
///     match c { BodyChunk::Data(d) => send(d), BodyChunk::End { .. } => break }
/// }
/// // Ok(None): read more into `buf` and call again; on EOF call `dec.eof()`.
/// ```
///
/// Always call it with the same buffer: the chunked decoder remembers how far
/// it has already scanned the unconsumed front of that buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// Content-Length: bytes still to come.
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// Until EOF (responses only).
    CloseDelimited,
    /// Complete; the next `decode` yields `End` once (used for `Empty`).
    Done,
    /// `End` has been yielded; `decode` returns `Ok(None)` from now on.
    Finished,
}

impl BodyDecoder {
    /// Decoder for a request body: chunked bodies are capped at
    /// `limits.max_body_bytes` (Content-Length was checked by
    /// `parse_request`), chunk-size lines at `max_chunk_line_bytes`,
    /// trailer sections at `max_head_bytes` and `max_headers` field lines.
    /// `Empty` -> `Done`.
    pub fn new(kind: BodyKind, limits: &Limits) -> Self {
        Self::with_body_cap(kind, limits, limits.max_body_bytes)
    }

    /// Decoder for a response body: no cap on the body size (responses are
    /// unlimited); default chunk-line and trailer limits.
    pub fn new_response(kind: BodyKind) -> Self {
        Self::with_body_cap(kind, &Limits::default(), u64::MAX)
    }

    /// Decoder with explicit limits and body cap (`u64::MAX` = none). The
    /// cap applies to chunked bodies; a Content-Length is trusted as given.
    pub fn with_body_cap(kind: BodyKind, limits: &Limits, max_body: u64) -> Self {
        match kind {
            BodyKind::Empty => BodyDecoder::Done,
            BodyKind::Length(n) => BodyDecoder::Length { remaining: n },
            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(
                max_body,
                limits.max_chunk_line_bytes,
                limits.max_head_bytes,
                limits.max_headers,
            )),
            BodyKind::CloseDelimited => BodyDecoder::CloseDelimited,
        }
    }

    /// Consume from the front of `buf`: `Ok(Some(Data))` (zero-copy, never
    /// empty), `Ok(Some(End))` once when the body completes, `Ok(None)` when
    /// more input is needed or after `End`. Bytes after the body stay in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BodyChunk>, HttpError> {
        match self {
            BodyDecoder::Length { remaining: 0 } | BodyDecoder::Done => {
                *self = BodyDecoder::Finished;
                Ok(Some(BodyChunk::end()))
            }
            BodyDecoder::Length { remaining } => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                *remaining = remaining.saturating_sub(n as u64);
                Ok(Some(BodyChunk::Data(buf.split_to(n).freeze())))
            }
            BodyDecoder::CloseDelimited => {
                if buf.is_empty() {
                    return Ok(None);
                }
                Ok(Some(BodyChunk::Data(buf.split().freeze())))
            }
            BodyDecoder::Chunked(c) => {
                let out = c.decode(buf)?;
                if matches!(out, Some(BodyChunk::End { .. })) {
                    *self = BodyDecoder::Finished;
                }
                Ok(out)
            }
            BodyDecoder::Finished => Ok(None),
        }
    }

    /// The peer closed the connection (after `buf` was drained by `decode`):
    /// a close-delimited or complete body -> `Ok(End)`, anything unfinished
    /// -> `Err(UnexpectedEof)`.
    pub fn eof(&mut self) -> Result<BodyChunk, HttpError> {
        if matches!(self, BodyDecoder::CloseDelimited) || self.is_done() {
            *self = BodyDecoder::Finished;
            Ok(BodyChunk::end())
        } else {
            Err(HttpError::UnexpectedEof)
        }
    }

    /// The whole body has been received (close-delimited: only after EOF).
    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Length { remaining } => *remaining == 0,
            BodyDecoder::Chunked(c) => c.is_done(),
            BodyDecoder::CloseDelimited => false,
            BodyDecoder::Done | BodyDecoder::Finished => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line; the first `scanned` bytes of the buffer
    /// are known to hold no LF.
    Size { scanned: usize },
    /// Inside chunk-data.
    Data { remaining: u64 },
    /// Expecting the CRLF that ends chunk-data.
    DataCrlf,
    /// Reading the trailer section: lines before `line_start` are
    /// validated (`fields` of them); `line_start + scanned` bytes hold no
    /// further LF.
    Trailers {
        line_start: usize,
        scanned: usize,
        fields: usize,
    },
    /// Last chunk and trailer section consumed.
    Done,
}

/// Decoder for the chunked transfer coding (RFC 9112 7.1):
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-size   = 1*HEXDIG
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// ```
///
/// Strict: no whitespace in the chunk-size line (the BWS of chunk-ext is
/// taken as empty), at most 16 hex digits, exact CRLFs, no bare LF. Trailer
/// lines are held to the rules of header field lines (RFC 9112 §7.1.2, §5)
/// and bounded like a head; fields not allowed in trailers are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Data bytes decoded so far.
    total: u64,
    max_body: u64,
    max_line: usize,
    max_trailers: usize,
    max_trailer_fields: usize,
}

fn bad(msg: &'static str) -> HttpError {
    HttpError::BadRequest(msg)
}

impl ChunkedDecoder {
    /// `max_body`: cap on the decoded data (-> BodyTooLarge); `max_line`:
    /// cap on a chunk-size line incl. CRLF; `max_trailers`: cap on the
    /// trailer section incl. its final CRLF, `max_trailer_fields` on its
    /// field lines (both -> HeadTooLarge).
    pub fn new(
        max_body: u64,
        max_line: usize,
        max_trailers: usize,
        max_trailer_fields: usize,
    ) -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { scanned: 0 },
            total: 0,
            max_body,
            max_line,
            max_trailers,
            max_trailer_fields,
        }
    }

    /// Data bytes decoded so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.total
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// See [`BodyDecoder::decode`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BodyChunk>, HttpError> {
        loop {
            match self.state {
                ChunkState::Size { scanned } => {
                    let Some(size) = self.size_line(buf, scanned)? else {
                        return Ok(None);
                    };
                    if size == 0 {
                        self.state = ChunkState::Trailers {
                            line_start: 0,
                            scanned: 0,
                            fields: 0,
                        };
                        continue;
                    }
                    self.total = self
                        .total
                        .checked_add(size)
                        .ok_or(HttpError::BodyTooLarge)?;
                    if self.total > self.max_body {
                        return Err(HttpError::BodyTooLarge);
                    }
                    self.state = ChunkState::Data { remaining: size };
                }
                ChunkState::Data { remaining } => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let left = remaining.saturating_sub(n as u64);
                    self.state = if left == 0 {
                        ChunkState::DataCrlf
                    } else {
                        ChunkState::Data { remaining: left }
                    };
                    return Ok(Some(BodyChunk::Data(buf.split_to(n).freeze())));
                }
                // RFC 9112 7.1: chunk-data is followed by exactly CRLF.
                ChunkState::DataCrlf => match buf.get(..2) {
                    Some(b"\r\n") => {
                        buf.advance(2);
                        self.state = ChunkState::Size { scanned: 0 };
                    }
                    Some(_) => return Err(bad("chunk data not followed by CRLF")),
                    None if buf.first().is_some_and(|&b| b != b'\r') => {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    None => return Ok(None),
                },
                ChunkState::Trailers {
                    line_start,
                    scanned,
                    fields,
                } => {
                    return self.trailers(buf, line_start, scanned, fields);
                }
                ChunkState::Done => return Ok(None),
            }
        }
    }

    /// Parse and consume a complete chunk-size line, or remember how far the
    /// buffer was scanned and return `None`.
    fn size_line(&mut self, buf: &mut BytesMut, scanned: usize) -> Result<Option<u64>, HttpError> {
        let window = buf.get(..buf.len().min(self.max_line)).unwrap_or_default();
        let from = scanned.min(window.len());
        let Some(lf) = find_lf(window, from) else {
            if buf.len() >= self.max_line {
                return Err(bad("chunk-size line too long"));
            }
            self.state = ChunkState::Size {
                scanned: window.len(),
            };
            return Ok(None);
        };
        let line = window.get(..lf).unwrap_or_default();
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(bad("bare LF in chunked framing"));
        };
        let size = parse_chunk_line(line)?;
        buf.advance(lf + 1);
        Ok(Some(size))
    }

    /// RFC 9112 7.1.2: trailer-section = *( field-line CRLF ), then CRLF.
    /// The section is handed out once complete and valid: zero-copy when
    /// every field may be forwarded, else only the fields that may.
    fn trailers(
        &mut self,
        buf: &mut BytesMut,
        mut line_start: usize,
        mut scanned: usize,
        mut fields: usize,
    ) -> Result<Option<BodyChunk>, HttpError> {
        loop {
            let window = buf
                .get(..buf.len().min(self.max_trailers))
                .unwrap_or_default();
            let Some(lf) = find_lf(window, line_start.saturating_add(scanned)) else {
                if buf.len() >= self.max_trailers {
                    return Err(HttpError::HeadTooLarge);
                }
                scanned = window.len().saturating_sub(line_start);
                self.state = ChunkState::Trailers {
                    line_start,
                    scanned,
                    fields,
                };
                return Ok(None);
            };
            let line = window.get(line_start..lf).unwrap_or_default();
            let Some(line) = line.strip_suffix(b"\r") else {
                return Err(bad("bare LF in chunked framing"));
            };
            if line.is_empty() {
                let trailers = forwardable_trailers(buf.split_to(line_start).freeze());
                buf.advance(2);
                self.state = ChunkState::Done;
                return Ok(Some(BodyChunk::End { trailers }));
            }
            // field-line = field-name ":" OWS field-value OWS; no obs-fold,
            // no CTLs but HTAB, no bare CR (RFC 9112 5, RFC 9110 5.5). A
            // line without a colon (e.g. a request line) is malformed.
            if !fields::is_valid_field_line(line) {
                return Err(bad("invalid trailer field"));
            }
            // The trailer section is bounded like a head (bytes above).
            fields += 1;
            if fields > self.max_trailer_fields {
                return Err(HttpError::HeadTooLarge);
            }
            line_start = lf + 1;
            scanned = 0;
        }
    }
}

/// The field lines of a validated trailer section (each `name: value\r\n`)
/// that may be forwarded (RFC 9110 §6.5.1); the others are dropped. No copy
/// when all of them may.
fn forwardable_trailers(section: Bytes) -> Bytes {
    let name = |line: &[u8]| -> bool {
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        allowed_in_trailer(line.get(..colon).unwrap_or_default())
    };
    let lines = || section.split_inclusive(|&b| b == b'\n');
    if lines().all(name) {
        return section;
    }
    let mut kept = BytesMut::with_capacity(section.len());
    for line in lines().filter(|l| name(l)) {
        kept.extend_from_slice(line);
    }
    kept.freeze()
}

/// Index of the first LF in `buf[from..]`.
fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.iter().position(|&b| b == b'\n').map(|i| from + i)
}

/// Parse `chunk-size [ chunk-ext ]` (without CRLF). Extensions are
/// validated and discarded (RFC 9112 7.1.1: unrecognised ones are ignored).
fn parse_chunk_line(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|&&b| hex_val(b).is_some()).count();
    if digits == 0 {
        return Err(bad("missing chunk size"));
    }
    // 16 hex digits fill a u64; more would overflow (leading zeros or not).
    if digits > 16 {
        return Err(bad("chunk size too large"));
    }
    let (hex, mut ext) = line.split_at(digits);
    let size = hex.iter().fold(0u64, |acc, &b| {
        (acc << 4) | u64::from(hex_val(b).unwrap_or(0))
    });
    // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
    // chunk-ext-name = token; chunk-ext-val = token / quoted-string
    while !ext.is_empty() {
        let Some(rest) = ext.strip_prefix(b";") else {
            return Err(bad("invalid chunk extension"));
        };
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name_len == 0 {
            return Err(bad("invalid chunk extension"));
        }
        ext = rest.get(name_len..).unwrap_or_default();
        if let Some(val) = ext.strip_prefix(b"=") {
            let val_len = if val.first() == Some(&b'"') {
                quoted_string_len(val).unwrap_or(0)
            } else {
                val.iter().take_while(|&&b| is_tchar(b)).count()
            };
            if val_len == 0 {
                return Err(bad("invalid chunk extension"));
            }
            ext = val.get(val_len..).unwrap_or_default();
        }
    }
    Ok(size)
}

/// Body re-framing for the outgoing side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoder {
    /// Content-Length: bytes still allowed.
    Length {
        remaining: u64,
    },
    Chunked,
    CloseDelimited,
    /// No body (after `finish` a chunked encoder becomes `Empty` too).
    Empty,
}

impl BodyEncoder {
    /// The encoder matching the framing the proxy emits for `kind`.
    pub fn new(kind: BodyKind) -> Self {
        match kind {
            BodyKind::Empty => BodyEncoder::Empty,
            BodyKind::Length(n) => BodyEncoder::Length { remaining: n },
            BodyKind::Chunked => BodyEncoder::Chunked,
            BodyKind::CloseDelimited => BodyEncoder::CloseDelimited,
        }
    }

    /// Append framed `data` to `out`. Chunked: `{hex}\r\n` data `\r\n`
    /// (nothing for empty data: a zero-size chunk would end the body);
    /// Length / CloseDelimited: data as is; Empty: nothing. Length: data
    /// beyond `remaining` -> `Err(BadResponse)`, never silently truncated.
    pub fn encode(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), HttpError> {
        match self {
            BodyEncoder::Length { remaining } => {
                let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
                if n > *remaining {
                    return Err(HttpError::BadResponse("body longer than Content-Length"));
                }
                *remaining -= n;
                out.extend_from_slice(data);
            }
            BodyEncoder::Chunked if !data.is_empty() => {
                out.reserve(data.len() + 20);
                put_hex(out, u64::try_from(data.len()).unwrap_or(u64::MAX));
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            BodyEncoder::CloseDelimited => out.extend_from_slice(data),
            BodyEncoder::Chunked | BodyEncoder::Empty => {}
        }
        Ok(())
    }

    /// End the body. Chunked: `0\r\n` + trailers + `\r\n` (trailers must be
    /// field lines each ending in CRLF, as `BodyChunk::End` yields them, else
    /// `Err(BadResponse)`), then the encoder becomes `Empty`. Length: `Err`
    /// if bytes are missing. Others: nothing.
    pub fn finish(&mut self, trailers: &[u8], out: &mut BytesMut) -> Result<(), HttpError> {
        match self {
            BodyEncoder::Chunked => {
                if !fields::is_valid_trailer_section(trailers) {
                    return Err(HttpError::BadResponse("invalid trailer section"));
                }
                out.extend_from_slice(b"0\r\n");
                out.extend_from_slice(trailers);
                out.extend_from_slice(b"\r\n");
                *self = BodyEncoder::Empty;
                Ok(())
            }
            BodyEncoder::Length { remaining } if *remaining != 0 => {
                Err(HttpError::BadResponse("body shorter than Content-Length"))
            }
            _ => Ok(()),
        }
    }
}

/// Append `n` as lowercase hex without leading zeros.
fn put_hex(out: &mut BytesMut, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut len = 0;
    for (i, slot) in tmp.iter_mut().rev().enumerate() {
        *slot = HEX[((n >> (4 * i)) & 0xf) as usize];
        len = i + 1;
        if n >> (4 * i) >> 4 == 0 {
            break;
        }
    }
    out.extend_from_slice(tmp.get(16 - len..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feed `input` in pieces of `step` bytes; collect data, trailers and the
    /// bytes left over after End.
    fn run(
        mut dec: BodyDecoder,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Bytes, BytesMut), HttpError> {
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut pieces = input.chunks(step.max(1));
        loop {
            match dec.decode(&mut buf)? {
                Some(BodyChunk::Data(d)) => {
                    assert!(!d.is_empty());
                    data.extend_from_slice(&d);
                }
                Some(BodyChunk::End { trailers }) => {
                    assert_eq!(dec.decode(&mut buf)?, None);
                    assert!(dec.is_done());
                    pieces.for_each(|p| buf.extend_from_slice(p));
                    return Ok((data, trailers, buf));
                }
                None => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => {
                        return match dec.eof()? {
                            BodyChunk::End { trailers } => Ok((data, trailers, buf)),
                            BodyChunk::Data(_) => unreachable!(),
                        }
                    }
                },
            }
        }
    }

    fn chunked() -> BodyDecoder {
        BodyDecoder::new(BodyKind::Chunked, &Limits::default())
    }

    fn chunked_err(input: &[u8]) -> HttpError {
        run(chunked(), input, usize::MAX).expect_err("must fail")
    }

    fn b400(m: &'static str) -> HttpError {
        HttpError::BadRequest(m)
    }

    #[test]
    fn length_body() {
        let l = Limits::default();
        let (data, t, rest) =
            run(BodyDecoder::new(BodyKind::Length(5), &l), b"helloGET /", 3).unwrap();
        assert_eq!((&data[..], &t[..]), (&b"hello"[..], &b""[..]));
        assert_eq!(&rest[..], b"GET /");
        let mut dec = BodyDecoder::new(BodyKind::Length(5), &l);
        let mut buf = BytesMut::from(&b"hel"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(BodyChunk::Data(Bytes::from_static(b"hel"))))
        );
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(!dec.is_done());
        assert_eq!(dec.eof(), Err(HttpError::UnexpectedEof));
        let mut dec = BodyDecoder::new(BodyKind::Length(0), &l);
        assert!(dec.is_done());
        let mut buf = BytesMut::from(&b"next"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(Some(BodyChunk::end())));
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], b"next");
    }

    #[test]
    fn empty_body_yields_end_once() {
        let mut dec = BodyDecoder::new(BodyKind::Empty, &Limits::default());
        assert_eq!(dec, BodyDecoder::Done);
        assert!(dec.is_done());
        let mut buf = BytesMut::from(&b"x"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(Some(BodyChunk::end())));
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], b"x");
        assert_eq!(dec.eof(), Ok(BodyChunk::end()));
    }

    #[test]
    fn close_delimited_body() {
        let mut dec = BodyDecoder::new_response(BodyKind::CloseDelimited);
        let mut buf = BytesMut::new();
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"abc");
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(BodyChunk::Data(Bytes::from_static(b"abc"))))
        );
        assert!(!dec.is_done());
        assert_eq!(dec.eof(), Ok(BodyChunk::end()));
        assert!(dec.is_done());
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    const SAMPLE: &[u8] =
        b"5\r\nhello\r\n6;ext=1;e2=\"q v\";flag\r\n world\r\nA\r\n0123456789\r\n0;last\r\nT: v\r\nU:\tw x \r\n\r\nNEXT";

    #[test]
    fn chunked_one_piece_and_byte_by_byte_agree() {
        let (data, trailers, rest) = run(chunked(), SAMPLE, usize::MAX).unwrap();
        assert_eq!(&data[..], b"hello world0123456789");
        assert_eq!(&trailers[..], b"T: v\r\nU:\tw x \r\n");
        assert_eq!(&rest[..], b"NEXT");
        for step in [1, 2, 3, 7] {
            let (d, t, r) = run(chunked(), SAMPLE, step).unwrap();
            assert_eq!((d, t), (data.clone(), trailers.clone()), "step {step}");
            assert_eq!(&r[..], b"NEXT");
        }
    }

    #[test]
    fn chunked_partial_data_is_yielded() {
        let mut dec = chunked();
        let mut buf = BytesMut::from(&b"a\r\nhel"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(BodyChunk::Data(Bytes::from_static(b"hel"))))
        );
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(dec.eof(), Err(HttpError::UnexpectedEof));
    }

    #[test]
    fn chunk_sizes() {
        let (d, _, _) = run(
            chunked(),
            b"000000000000000F\r\n0123456789abcde\r\n0\r\n\r\n",
            1,
        )
        .unwrap();
        assert_eq!(d.len(), 15);
        let (d, _, _) = run(chunked(), b"00\r\n\r\n", 1).unwrap();
        assert!(d.is_empty());
        assert_eq!(
            chunked_err(b"00000000000000001\r\nx\r\n"),
            b400("chunk size too large")
        );
        assert_eq!(
            chunked_err(b"10000000000000000\r\n"),
            b400("chunk size too large")
        );
        assert_eq!(chunked_err(b"\r\n"), b400("missing chunk size"));
        assert_eq!(chunked_err(b"x\r\n"), b400("missing chunk size"));
        assert_eq!(chunked_err(b"-1\r\n"), b400("missing chunk size"));
        assert_eq!(chunked_err(b" 5\r\nhello\r\n"), b400("missing chunk size"));
        assert_eq!(
            chunked_err(b"5 \r\nhello\r\n"),
            b400("invalid chunk extension")
        );
        assert_eq!(
            chunked_err(b"0x5\r\nhello\r\n"),
            b400("invalid chunk extension")
        );
        assert_eq!(
            chunked_err(b"5\nhello\r\n"),
            b400("bare LF in chunked framing")
        );
        assert_eq!(
            chunked_err(b"5\r\r\nhello\r\n"),
            b400("invalid chunk extension")
        );
        // u64::MAX sized chunk: no overflow, just the body cap.
        assert_eq!(
            chunked_err(b"ffffffffffffffff\r\n"),
            HttpError::BodyTooLarge
        );
        let mut dec = BodyDecoder::new_response(BodyKind::Chunked);
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(BodyChunk::Data(Bytes::from_static(b"ab"))))
        );
    }

    #[test]
    fn chunk_extensions() {
        for ext in [
            ";a",
            ";a=b",
            ";a=\"b c\"",
            ";a=\"\\\"\"",
            ";a;b=c;d=\"\"",
            ";!#$%&'*+-.^_`|~=x",
        ] {
            let input = format!("1{ext}\r\nx\r\n0{ext}\r\n\r\n");
            let (d, _, _) =
                run(chunked(), input.as_bytes(), 1).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(&d[..], b"x");
        }
        for ext in [
            " ;a",
            "; a",
            ";a =b",
            ";a= b",
            ";=b",
            ";a=",
            ";a=\"b",
            ";a=b c",
            ";a=b;",
            ";a=\"\x01\"",
            ";",
            "g",
        ] {
            let input = format!("1{ext}\r\nx\r\n0\r\n\r\n");
            assert_eq!(
                chunked_err(input.as_bytes()),
                b400("invalid chunk extension"),
                "{ext:?}"
            );
        }
    }

    #[test]
    fn chunk_line_limit() {
        let l = Limits::default();
        let long = format!("1;{}", "a".repeat(l.max_chunk_line_bytes));
        // No CRLF yet, but already over the limit.
        let mut dec = chunked();
        let mut buf = BytesMut::from(long.as_bytes());
        assert_eq!(dec.decode(&mut buf), Err(b400("chunk-size line too long")));
        // Exactly at the limit (CRLF included) is fine.
        let at = format!(
            "1;{}\r\nx\r\n0\r\n\r\n",
            "a".repeat(l.max_chunk_line_bytes - 4)
        );
        assert!(run(chunked(), at.as_bytes(), 100).is_ok());
        let over = format!(
            "1;{}\r\nx\r\n0\r\n\r\n",
            "a".repeat(l.max_chunk_line_bytes - 3)
        );
        assert_eq!(
            run(chunked(), over.as_bytes(), 100),
            Err(b400("chunk-size line too long"))
        );
    }

    #[test]
    fn data_crlf() {
        let e = b400("chunk data not followed by CRLF");
        assert_eq!(chunked_err(b"3\r\nabcX\r\n0\r\n\r\n"), e);
        assert_eq!(chunked_err(b"3\r\nabc\rX0\r\n\r\n"), e);
        assert_eq!(chunked_err(b"3\r\nabc\n0\r\n\r\n"), e);
        assert_eq!(chunked_err(b"3\r\nabcd\r\n0\r\n\r\n"), e);
        for step in [1, 2] {
            assert_eq!(run(chunked(), b"3\r\nabcX\r\n", step), Err(e));
        }
        let mut dec = chunked();
        let mut buf = BytesMut::from(&b"3\r\nabc\r"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(BodyChunk::Data(_)))));
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn trailers() {
        let (_, t, _) = run(chunked(), b"0\r\n\r\n", 1).unwrap();
        assert!(t.is_empty());
        let e = b400("invalid trailer field");
        assert_eq!(chunked_err(b"0\r\nBad Name: x\r\n\r\n"), e);
        assert_eq!(chunked_err(b"0\r\nA: x\r\n folded\r\n\r\n"), e);
        assert_eq!(chunked_err(b"0\r\nA : x\r\n\r\n"), e);
        assert_eq!(chunked_err(b"0\r\nA: \x01\r\n\r\n"), e);
        assert_eq!(chunked_err(b"0\r\nA: x\ry\r\n\r\n"), e);
        assert_eq!(chunked_err(b"0\r\nNoColon\r\n\r\n"), e);
        assert_eq!(
            chunked_err(b"0\r\nA: x\n\r\n"),
            b400("bare LF in chunked framing")
        );
        assert_eq!(chunked_err(b"0\r\n\n"), b400("bare LF in chunked framing"));
        let l = Limits {
            max_head_bytes: 16,
            ..Limits::default()
        };
        let dec = || BodyDecoder::new(BodyKind::Chunked, &l);
        assert!(run(dec(), b"0\r\nA: 012345678\r\n\r\n", 1).is_ok());
        assert_eq!(
            run(dec(), b"0\r\nA: 0123456789\r\n\r\n", 1),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            run(dec(), b"0\r\nA: 0123456789012345", 1),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn trailers_not_allowed_in_trailers_are_dropped() {
        // RFC 9110 §6.5.1: framing, routing, hop-by-hop, request modifiers, authentication,
        // response control data and content metadata never come from a trailer
        let input = b"1\r\nx\r\n0\r\nX-Checksum: 42\r\nContent-Length: 5\r\n\
Transfer-Encoding: chunked\r\nHost: evil\r\nTrailer: a\r\nConnection: close\r\nKeep-Alive: 1\r\n\
TE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: p\r\nAuthorization: a\r\nCookie: c\r\n\
Set-Cookie: s\r\nExpect: 100-continue\r\nRange: bytes=0-1\r\nIf-Match: *\r\n\
Content-Type: text/x\r\nContent-Encoding: gzip\r\nCache-Control: no-store\r\nMax-Forwards: 1\r\n\
X-Forwarded-For: 1.2.3.4\r\nServer-Timing: db;dur=5\r\nx-ok:\tv w \r\n\r\nNEXT";
        for step in [1, 5, usize::MAX] {
            let (data, t, rest) = run(chunked(), input, step).unwrap();
            assert_eq!(&data[..], b"x");
            assert_eq!(
                &t[..],
                &b"X-Checksum: 42\r\nServer-Timing: db;dur=5\r\nx-ok:\tv w \r\n"[..],
                "step {step}"
            );
            assert_eq!(&rest[..], b"NEXT");
        }
        // only dropped fields: an empty section, still a valid end
        let (_, t, _) = run(chunked(), b"0\r\nHost: a\r\ncontent-length: 0\r\n\r\n", 1).unwrap();
        assert!(t.is_empty());
        // responses are filtered the same way
        let (_, t, _) = run(
            BodyDecoder::new_response(BodyKind::Chunked),
            b"0\r\nSet-Cookie: a=b\r\nX-T: 1\r\n\r\n",
            3,
        )
        .unwrap();
        assert_eq!(&t[..], b"X-T: 1\r\n");
    }

    #[test]
    fn malformed_trailer_lines_are_refused() {
        let e = b400("invalid trailer field");
        for line in [
            &b"GET / HTTP/1.1"[..],
            b"GET /admin HTTP/1.1\r\nHost: x",
            b"POST http://a/ HTTP/1.1",
            b"X-A :b",
            b" X-A: b",
            b"X-A: b\x7f",
            b"X-A: \x00",
            b": v",
            b"X@A: v",
        ] {
            let mut input = b"0\r\nX-Ok: 1\r\n".to_vec();
            input.extend_from_slice(line);
            input.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                chunked_err(&input),
                e,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn trailer_field_count_is_bounded() {
        let l = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let dec = || BodyDecoder::new(BodyKind::Chunked, &l);
        assert!(run(dec(), b"0\r\nA: 1\r\nB: 2\r\n\r\n", 1).is_ok());
        assert_eq!(
            run(dec(), b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 1),
            Err(HttpError::HeadTooLarge)
        );
        // dropped fields count too: the bound is on what the peer sent
        assert_eq!(
            run(dec(), b"0\r\nHost: 1\r\nHost: 2\r\nHost: 3\r\n\r\n", 100),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn body_cap() {
        let l = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let mut dec = BodyDecoder::new(BodyKind::Chunked, &l);
        let mut buf = BytesMut::from(&b"6\r\nabcdef\r\n4\r\nghij\r\n1\r\nk\r\n0\r\n\r\n"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(BodyChunk::Data(_)))));
        assert!(matches!(dec.decode(&mut buf), Ok(Some(BodyChunk::Data(_)))));
        assert_eq!(dec.decode(&mut buf), Err(HttpError::BodyTooLarge));
        let (d, _, _) = run(
            BodyDecoder::new(BodyKind::Chunked, &l),
            b"a\r\n0123456789\r\n0\r\n\r\n",
            1,
        )
        .unwrap();
        assert_eq!(d.len(), 10);
        let big = b"b\r\n0123456789a\r\n0\r\n\r\n";
        assert_eq!(
            run(BodyDecoder::new(BodyKind::Chunked, &l), big, 1),
            Err(HttpError::BodyTooLarge)
        );
        assert!(run(BodyDecoder::new_response(BodyKind::Chunked), big, 1).is_ok());
    }

    #[test]
    fn encoder_length() {
        let mut out = BytesMut::new();
        let mut enc = BodyEncoder::new(BodyKind::Length(5));
        enc.encode(b"hel", &mut out).unwrap();
        assert_eq!(
            enc.finish(b"", &mut out),
            Err(HttpError::BadResponse("body shorter than Content-Length"))
        );
        assert_eq!(
            enc.encode(b"lo!", &mut out),
            Err(HttpError::BadResponse("body longer than Content-Length"))
        );
        enc.encode(b"lo", &mut out).unwrap();
        enc.finish(b"", &mut out).unwrap();
        assert_eq!(&out[..], b"hello");
    }

    #[test]
    fn encoder_chunked() {
        let mut out = BytesMut::new();
        let mut enc = BodyEncoder::new(BodyKind::Chunked);
        enc.encode(b"hello", &mut out).unwrap();
        enc.encode(b"", &mut out).unwrap();
        enc.encode(&[b'x'; 26], &mut out).unwrap();
        enc.finish(b"T: v\r\n", &mut out).unwrap();
        let mut want = b"5\r\nhello\r\n1a\r\n".to_vec();
        want.extend_from_slice(&[b'x'; 26]);
        want.extend_from_slice(b"\r\n0\r\nT: v\r\n\r\n");
        assert_eq!(&out[..], &want[..]);
        assert_eq!(enc, BodyEncoder::Empty);
        enc.finish(b"", &mut out).unwrap();
        assert_eq!(&out[..], &want[..]);
        let mut enc = BodyEncoder::Chunked;
        for t in [
            &b"T: v"[..],
            b"T: v\n",
            b"\r\n",
            b"Bad Name: v\r\n",
            b"T: v\r\n\r\n",
        ] {
            assert_eq!(
                enc.finish(t, &mut out),
                Err(HttpError::BadResponse("invalid trailer section"))
            );
        }
    }

    #[test]
    fn encoder_other() {
        let mut out = BytesMut::new();
        BodyEncoder::new(BodyKind::CloseDelimited)
            .encode(b"abc", &mut out)
            .unwrap();
        BodyEncoder::new(BodyKind::Empty)
            .encode(b"zzz", &mut out)
            .unwrap();
        BodyEncoder::new(BodyKind::Empty)
            .finish(b"", &mut out)
            .unwrap();
        BodyEncoder::new(BodyKind::CloseDelimited)
            .finish(b"", &mut out)
            .unwrap();
        assert_eq!(&out[..], b"abc");
    }

    #[test]
    fn hex_formatting() {
        for (n, s) in [
            (1u64, "1"),
            (0xa, "a"),
            (0x10, "10"),
            (0xabc, "abc"),
            (0, "0"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut out = BytesMut::new();
            put_hex(&mut out, n);
            assert_eq!(&out[..], s.as_bytes());
        }
    }

    proptest! {
        #[test]
        fn chunked_round_trip(
            pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            with_trailers: bool,
        ) {
            let mut wire = BytesMut::new();
            let mut enc = BodyEncoder::new(BodyKind::Chunked);
            for p in &pieces {
                enc.encode(p, &mut wire).unwrap();
            }
            let trailers: &[u8] = if with_trailers { b"X-Sum: 1\r\nY: a b\r\n" } else { b"" };
            enc.finish(trailers, &mut wire).unwrap();
            wire.extend_from_slice(b"NEXT");
            // Split the wire bytes at arbitrary points and feed them in.
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            let mut dec = chunked();
            let mut buf = BytesMut::new();
            let (mut data, mut got_trailers) = (Vec::new(), None);
            for w in points.windows(2) {
                buf.extend_from_slice(&wire[w[0]..w[1]]);
                while let Some(c) = dec.decode(&mut buf).unwrap() {
                    match c {
                        BodyChunk::Data(d) => { prop_assert!(!d.is_empty()); data.extend_from_slice(&d) }
                        BodyChunk::End { trailers } => { got_trailers = Some(trailers); break }
                    }
                }
            }
            prop_assert_eq!(data, pieces.concat());
            prop_assert_eq!(got_trailers.as_deref(), Some(trailers));
            prop_assert_eq!(&buf[..], b"NEXT");
        }

        #[test]
        fn chunked_decoder_never_panics(data in prop::collection::vec(any::<u8>(), 0..400), step in 1usize..20) {
            let l = Limits { max_chunk_line_bytes: 16, max_head_bytes: 32, max_body_bytes: 64, ..Limits::default() };
            let _ = run(BodyDecoder::new(BodyKind::Chunked, &l), &data, step);
            let _ = run(chunked(), &data, step);
        }

        #[test]
        fn mutated_chunked_never_panics(
            muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            step in 1usize..8,
        ) {
            let mut data = SAMPLE.to_vec();
            for (idx, byte) in muts {
                let i = idx.index(data.len());
                data[i] = byte;
            }
            let _ = run(chunked(), &data, step);
        }
    }
}
