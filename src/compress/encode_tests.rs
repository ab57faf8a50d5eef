//! The encoders: gzip and brotli round trips, sync flushes that make everything written so far
//! decodable, and [`Compressing`]: the source's bursts flushed when it has nothing more at
//! hand, large output handed out in steps, the end and trailers after the last bytes, never an
//! empty data step.

use super::*;
use std::collections::VecDeque;
use std::io::Read;
use std::task::{Context, Poll, Waker};

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// What a decoder makes of a stream's prefix (a flushed, unfinished stream).
fn partial(coding: Coding, b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 20];
    let n = match coding {
        Coding::Gzip => read_some(flate2::read::GzDecoder::new(b), &mut out),
        Coding::Brotli => read_some(brotli::Decompressor::new(b, 4096), &mut out),
    };
    out.truncate(n);
    out
}

fn read_some(mut r: impl Read, out: &mut [u8]) -> usize {
    let mut n = 0;
    while let Ok(k) = r.read(&mut out[n..]) {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

fn text(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{{\"id\":{i},\"name\":\"item {}\"}},", i % 17).into_bytes())
        .take(n)
        .collect()
}

#[test]
fn whole_round_trips() {
    let body = text(100_000);
    let gz = whole(Coding::Gzip, &body).unwrap();
    assert_eq!(gunzip(&gz), body);
    assert!(gz.len() < body.len() / 4, "{}", gz.len());
    let br = whole(Coding::Brotli, &body).unwrap();
    assert_eq!(unbrotli(&br), body);
    assert!(br.len() < body.len() / 4, "{}", br.len());
}

#[test]
fn a_flush_makes_what_was_written_decodable() {
    for coding in [Coding::Gzip, Coding::Brotli] {
        let mut e = Encoder::new(coding);
        e.write(b"data: first event\n\n").unwrap();
        let mut sent = e.flush().unwrap().to_vec();
        assert_eq!(
            partial(coding, &sent),
            b"data: first event\n\n",
            "{coding:?}"
        );
        e.write(b"data: second\n\n").unwrap();
        sent.extend_from_slice(&e.flush().unwrap());
        assert_eq!(
            partial(coding, &sent),
            b"data: first event\n\ndata: second\n\n"
        );
        sent.extend_from_slice(&e.finish().unwrap());
        let all = match coding {
            Coding::Gzip => gunzip(&sent),
            Coding::Brotli => unbrotli(&sent),
        };
        assert_eq!(all, b"data: first event\n\ndata: second\n\n");
    }
}

/// A source handing out `steps`: `None` entries are "nothing at hand" for `next_buffered`.
struct Steps(VecDeque<Option<BodyChunk>>);

impl ResponseBody for Steps {
    async fn next_chunk(&mut self) -> Result<BodyChunk, GatewayError> {
        loop {
            match self.0.pop_front() {
                Some(Some(s)) => return Ok(s),
                Some(None) => continue,
                None => return Err(GatewayError::UpstreamTimeout),
            }
        }
    }

    fn next_buffered(&mut self) -> Result<Option<BodyChunk>, GatewayError> {
        match self.0.front() {
            Some(Some(_)) => Ok(self.0.pop_front().flatten()),
            Some(None) => Ok(None),
            None => Ok(None),
        }
    }
}

fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the test source never waits"),
    }
}

fn data(s: &[u8]) -> Option<BodyChunk> {
    Some(BodyChunk::Data(Bytes::copy_from_slice(s)))
}

#[test]
fn bursts_are_flushed_as_they_end() {
    for coding in [Coding::Gzip, Coding::Brotli] {
        let steps = VecDeque::from([
            data(b"event one\n"),
            data(b"event two\n"),
            None,
            data(b"event three\n"),
            None,
            Some(BodyChunk::End {
                trailers: Bytes::from_static(b"x-t: 1\r\n"),
            }),
        ]);
        let mut src = Steps(steps);
        let mut z = Compressing::new(&mut src, coding);
        let mut sent = Vec::new();
        // the first burst: one step, decodable on its own
        let BodyChunk::Data(d) = now(z.next_chunk()).unwrap() else {
            panic!("data first")
        };
        sent.extend_from_slice(&d);
        assert_eq!(partial(coding, &sent), b"event one\nevent two\n");
        assert!(z.next_buffered().unwrap().is_none());
        let BodyChunk::Data(d) = now(z.next_chunk()).unwrap() else {
            panic!("the second burst")
        };
        sent.extend_from_slice(&d);
        assert_eq!(
            partial(coding, &sent),
            b"event one\nevent two\nevent three\n"
        );
        // the end: the encoder's last bytes, then the trailers
        let trailers = loop {
            match now(z.next_chunk()).unwrap() {
                BodyChunk::Data(d) => {
                    assert!(!d.is_empty());
                    sent.extend_from_slice(&d);
                }
                BodyChunk::End { trailers } => break trailers,
            }
        };
        assert_eq!(trailers, &b"x-t: 1\r\n"[..]);
        let all = match coding {
            Coding::Gzip => gunzip(&sent),
            Coding::Brotli => unbrotli(&sent),
        };
        assert_eq!(all, b"event one\nevent two\nevent three\n");
        assert!(z.next_buffered().is_err(), "nothing after the end");
    }
}

#[test]
fn a_large_fast_body_comes_out_in_steps() {
    let body = text(2_000_000);
    let steps: VecDeque<_> = body
        .chunks(32 * 1024)
        .map(data)
        .chain([Some(BodyChunk::End {
            trailers: Bytes::new(),
        })])
        .collect();
    let mut src = Steps(steps);
    let mut z = Compressing::new(&mut src, Coding::Gzip);
    let mut sent = Vec::new();
    let mut steps = 0;
    while let Some(step) = z.next_buffered().unwrap() {
        match step {
            BodyChunk::Data(d) => {
                assert!(!d.is_empty());
                sent.extend_from_slice(&d);
                steps += 1;
            }
            BodyChunk::End { .. } => break,
        }
    }
    assert!(steps > 2, "{steps}");
    assert_eq!(gunzip(&sent), body);
}
