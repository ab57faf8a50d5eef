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
