//! Fixtures for unit tests that need a worker or an accepted client connection (test builds
//! only). Owns: a worker on a given config, and a real loopback pair whose server side is
//! accepted as the accept loop would (non-blocking, facts captured). Leaves out: anything a
//! test asserts on.

use std::cell::Cell;
use std::rc::Rc;

use crate::facts::ConnFacts;
use crate::session::h1::Downstream;
use crate::transport::Stream;
use crate::worker::{Generation, Worker};

/// A worker (epoll flavour, worker 0) on the config `toml`.
pub(crate) fn worker(toml: &str) -> Worker {
    let cfg = std::sync::Arc::new(crate::config::from_str(toml).unwrap());
    let throttle = std::sync::Arc::new(crate::throttle::Throttle::new(cfg.throttle.clone(), 1));
    let health = crate::health::HealthBoard::new(&cfg);
    let g = Generation::first(0, cfg, throttle, None, &health);
    Worker::new(0, crate::runtime::DriverKind::Epoll, g)
}

/// A connected loopback pair: the client's blocking socket, and the server side as monoio's
/// stream with its facts (call inside a monoio runtime).
pub(crate) fn accepted() -> (std::net::TcpStream, monoio::net::TcpStream, ConnFacts) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, peer) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let local = s.local_addr().unwrap();
    let s = monoio::net::TcpStream::from_std(s).unwrap();
    (client, s, ConnFacts::plain(peer, local))
}

/// [`accepted`] as a plain HTTP/1 client connection.
pub(crate) fn downstream() -> (std::net::TcpStream, Downstream) {
    let (client, s, facts) = accepted();
    let conn = Downstream::new(Stream::Plain(s), facts, Rc::new(Cell::new(false)));
    (client, conn)
}

/// An HTTP/2 GET for `/` on stream `id` as a client writes it (HPACK: indexed :method GET,
/// :scheme http, :path /; a literal :authority), END_STREAM.
pub(crate) fn h2_get_frame(id: u32) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x84, 0x41, 9];
    block.extend_from_slice(b"localhost");
    let mut f = vec![0, 0, block.len() as u8, 1, 0x5];
    f.extend_from_slice(&id.to_be_bytes());
    f.extend(block);
    f
}

/// The HTTP/2 frames in `b` as (type, flags, stream, first payload word).
pub(crate) fn h2_frames(mut b: &[u8]) -> Vec<(u8, u8, u32, u32)> {
    let mut v = Vec::new();
    while b.len() >= 9 {
        let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
        let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff;
        let word = b
            .get(9..13)
            .map_or(0, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
        v.push((b[3], b[4], stream, word));
        b = b.get(9 + len..).unwrap_or(&[]);
    }
    v
}
