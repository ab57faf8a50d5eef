//! Response compression: the streaming encoder for relayed bodies and the one-shot one for
//! bodies held in memory.
//!
//! Owns: [`Encoder`] (gzip through flate2's miniz backend, brotli through the `brotli` crate;
//! input written as it comes, output taken as it is produced, a sync flush on demand, the
//! stream's end), the levels ([`GZIP_LEVEL`], [`BROTLI_QUALITY`], [`BROTLI_LGWIN`]),
//! [`whole`] and [`held`] (a body held in memory compressed at once and rendered again as a
//! held response: `content-length` of the compressed bytes, `content-encoding`, a weak
//! `ETag`), and [`Compressing`]: a [`ResponseBody`] that compresses another one step by step,
//! so the sessions relay a compressed body exactly as any other. Leaves out: deciding to
//! compress (see [`super::choose`]) and framing (the sessions).
//!
//! Flushing: [`Compressing`] hands out compressed bytes when [`OUT_STEP`] of them are ready,
//! and sync-flushes the encoder (gzip `Z_SYNC_FLUSH`, brotli `BROTLI_OPERATION_FLUSH`)
//! whenever its source has nothing more at hand, the moment the relay itself flushes to the
//! client: a body arriving in bursts (SSE, chunked streams) reaches the client burst by burst,
//! a fast one is compressed in large blocks. Memory per compressed stream: the encoder's state
//! (miniz: about 300 KiB; brotli at [`BROTLI_LGWIN`]: its window plus hash tables) and at most
//! [`OUT_STEP`] of output.

use std::io::Write;

use bytes::Bytes;

use super::Coding;
use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::http::{BodyChunk, BodyKind};
use crate::response::{Response, ResponseBody, Source};

/// gzip level: 5. With flate2's miniz backend, level 6 (zlib's default) searches much longer
/// for 1–2% smaller output: measured on JSON, level 5 is about 3× faster than 6, level 1 4×
/// faster again and 8% larger.
pub const GZIP_LEVEL: u32 = 5;
/// Brotli quality: 4 is the usual choice for on-the-fly compression (smaller output than
/// gzip at a similar speed; quality 5 and above cost several times the CPU).
pub const BROTLI_QUALITY: u32 = 4;
/// Brotli window, log2 bytes: 256 KiB keeps each stream's memory small; API bodies rarely
/// repeat at larger distances.
pub const BROTLI_LGWIN: u32 = 18;
/// The brotli writer's internal output buffer.
const BROTLI_BUFFER: usize = 16 * 1024;
/// Compressed output handed to the relay once this much is ready (without waiting for a
/// flush).
pub const OUT_STEP: usize = 16 * 1024;

/// A streaming encoder writing into its own output buffer.
pub enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

/// An encoder failed (it cannot, writing into memory; kept as an error, never a panic).
fn failed(_: std::io::Error) -> GatewayError {
    GatewayError::Internal("response compression failed")
}

impl Encoder {
    pub fn new(coding: Coding) -> Encoder {
        match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_LGWIN,
            ))),
        }
    }

    /// Compresses `data` (output may stay inside the encoder until a flush).
    pub fn write(&mut self, data: &[u8]) -> Result<(), GatewayError> {
        match self {
            Encoder::Gzip(e) => e.write_all(data).map_err(failed),
            Encoder::Brotli(e) => e.write_all(data).map_err(failed),
        }
    }

    /// Compressed bytes produced so far and not yet taken.
    pub fn ready(&mut self) -> usize {
        self.out().len()
    }

    /// Takes the compressed bytes produced so far.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.out()))
    }

    /// Sync flush: everything written so far becomes decodable output; then takes it.
    pub fn flush(&mut self) -> Result<Bytes, GatewayError> {
        match self {
            Encoder::Gzip(e) => e.flush().map_err(failed)?,
            Encoder::Brotli(e) => e.flush().map_err(failed)?,
        }
        Ok(self.take())
    }

    /// Ends the stream: the rest of the output (with gzip's trailer).
    pub fn finish(self) -> Result<Bytes, GatewayError> {
        match self {
            Encoder::Gzip(e) => e.finish().map(Bytes::from).map_err(failed),
            // the writer ends the stream (BROTLI_OPERATION_FINISH) as it hands back its output
            Encoder::Brotli(e) => Ok(Bytes::from(e.into_inner())),
        }
    }

    fn out(&mut self) -> &mut Vec<u8> {
        match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Brotli(e) => e.get_mut(),
        }
    }
}

/// `body` compressed whole.
pub fn whole(coding: Coding, body: &[u8]) -> Result<Bytes, GatewayError> {
    let mut e = Encoder::new(coding);
    e.write(body)?;
    e.finish()
}

/// A response held in memory (an error, a mock, a held one) rendered again with its body
/// compressed: the producer's fields (a strong `ETag` made weak) and `content-encoding`, then
/// `content-length` of the compressed body. `None` for a relayed response (or should the
/// encoder fail: the response is then sent as produced).
pub fn held(r: &Response<'_>, coding: Coding) -> Option<MockResponse> {
    let status = match &r.source {
        Source::Error(e) => e.status(),
        Source::Mock(m) => m.status,
        Source::Held(m) => m.status,
        Source::Origin { .. } => return None,
    };
    let body = whole(coding, r.static_body()).ok()?;
    let enc = super::Encoding {
        coding: Some(coding),
        vary: false,
    };
    let mut owned: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(8);
    super::each_producer_field(r, |n, v| {
        owned.push((n.to_vec(), super::field_value(&enc, n, v).into_owned()));
    });
    let encoding = (
        b"content-encoding".to_vec(),
        coding.token().as_bytes().to_vec(),
    );
    owned.push(encoding);
    let fields = owned.iter().map(|(n, v)| (&n[..], &v[..]));
    Some(MockResponse::build(status, fields, body))
}

/// A relayed body compressed step by step (see the module doc): the source's data steps go
/// through the encoder, its end becomes the encoder's last bytes, then the end (trailers
/// kept). Never hands out an empty data step.
pub struct Compressing<'b, B> {
    src: &'b mut B,
    enc: Option<Encoder>,
    /// Input written since the last flush.
    dirty: bool,
    /// The source's end, handed out after the encoder's last bytes.
    end: Option<Bytes>,
    /// The end was handed out.
    done: bool,
}

impl<'b, B: ResponseBody> Compressing<'b, B> {
    pub fn new(src: &'b mut B, coding: Coding) -> Self {
        Compressing {
            src,
            enc: Some(Encoder::new(coding)),
            dirty: false,
            end: None,
            done: false,
        }
    }

    /// Takes one step of the source: data goes into the encoder (handed out once
    /// [`OUT_STEP`] is ready), the end finishes it.
    fn absorb(&mut self, step: BodyChunk) -> Result<Option<BodyChunk>, GatewayError> {
        let Some(enc) = self.enc.as_mut() else {
            return Err(GatewayError::Internal("compressed body read past its end"));
        };
        match step {
            BodyChunk::Data(d) => {
                enc.write(&d)?;
                self.dirty = true;
                if enc.ready() >= OUT_STEP {
                    return Ok(Some(BodyChunk::Data(enc.take())));
                }
                Ok(None)
            }
            BodyChunk::End { trailers } => {
                let last = match self.enc.take() {
                    Some(enc) => enc.finish()?,
                    None => Bytes::new(),
                };
                self.end = Some(trailers);
                if last.is_empty() {
                    Ok(self.end_step())
                } else {
                    Ok(Some(BodyChunk::Data(last)))
                }
            }
        }
    }

    fn end_step(&mut self) -> Option<BodyChunk> {
        let trailers = self.end.take()?;
        self.done = true;
        Some(BodyChunk::End { trailers })
    }
}

impl<B: ResponseBody> ResponseBody for Compressing<'_, B> {
    async fn next_chunk(&mut self) -> Result<BodyChunk, GatewayError> {
        loop {
            if let Some(step) = self.next_buffered()? {
                return Ok(step);
            }
            let step = self.src.next_chunk().await?;
            if let Some(out) = self.absorb(step)? {
                return Ok(out);
            }
        }
    }

    fn next_buffered(&mut self) -> Result<Option<BodyChunk>, GatewayError> {
        if self.end.is_some() {
            return Ok(self.end_step());
        }
        if self.done {
            return Err(GatewayError::Internal("compressed body read past its end"));
        }
        loop {
            match self.src.next_buffered()? {
                Some(step) => {
                    if let Some(out) = self.absorb(step)? {
                        return Ok(Some(out));
                    }
                }
                // nothing more at hand: what was written goes out now (the relay is about to
                // flush to the client and wait)
                None => {
                    let Some(enc) = self.enc.as_mut().filter(|_| self.dirty) else {
                        return Ok(None);
                    };
                    self.dirty = false;
                    let out = enc.flush()?;
                    return Ok((!out.is_empty()).then_some(BodyChunk::Data(out)));
                }
            }
        }
    }
}

/// A relayed body as the session sends it: as produced, or compressed (see [`relayed`]).
/// Static dispatch: one branch per step.
pub enum Relayed<'b, B> {
    Plain(&'b mut B),
    Compressed(Compressing<'b, B>),
}

/// The body a session relays for `r` and the framing kind to relay it as: compressed when the
/// response filter chose a coding (its length is then unknown until its end, so a
/// `Length` body is re-framed as `Chunked`: chunked for HTTP/1.1, close-delimited for
/// HTTP/1.0, END_STREAM for HTTP/2); as it is otherwise (an empty body is never compressed:
/// the choice is dropped, so the head says nothing of it).
pub fn relayed<'b, B: ResponseBody>(
    r: &mut Response<'_>,
    kind: BodyKind,
    body: &'b mut B,
) -> (BodyKind, Relayed<'b, B>) {
    let origin = matches!(r.source, Source::Origin { .. });
    match r.added.encoding.coding {
        Some(coding) if origin && kind != BodyKind::Empty => {
            let kind = match kind {
                BodyKind::Length(_) => BodyKind::Chunked,
                k => k,
            };
            (kind, Relayed::Compressed(Compressing::new(body, coding)))
        }
        _ => {
            r.added.encoding.coding = None;
            (kind, Relayed::Plain(body))
        }
    }
}

impl<B: ResponseBody> ResponseBody for Relayed<'_, B> {
    async fn next_chunk(&mut self) -> Result<BodyChunk, GatewayError> {
        match self {
            Relayed::Plain(b) => b.next_chunk().await,
            Relayed::Compressed(c) => c.next_chunk().await,
        }
    }

    fn next_buffered(&mut self) -> Result<Option<BodyChunk>, GatewayError> {
        match self {
            Relayed::Plain(b) => b.next_buffered(),
            Relayed::Compressed(c) => c.next_buffered(),
        }
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
