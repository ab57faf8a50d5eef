//! What an idle HTTP/2 (h2c) connection keeps on the heap, server side, on both drivers.
//!
//! A counting global allocator (process wide: the gateway's worker is another thread) measures
//! the live bytes `CONNS` idle connections add, each after the prefaces, the SETTINGS exchange
//! and one GET answered by a mock route, as `loadtest/h2.sh`'s idle part does. The client here
//! is raw sockets and stack buffers, so what it holds while measuring (the `TcpStream`s, in a
//! vector allocated beforehand) allocates nothing. Two request encodings: literal-only HPACK
//! (no field enters the server's decoder table) and `:authority` with incremental indexing (as
//! h2load and browsers send it: the decoder keeps that entry for the connection's life). The
//! tests run one at a time (a process-wide counter), print the figure, and bound it so the cost
//! cannot creep up unnoticed; the breakdown is in `src/session/h2.rs`'s module docs.

// a test crate: a broken fixture should fail the test loudly
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

struct Counting;

/// Bytes allocated minus bytes freed, by every thread of the process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a plain
// atomic (Relaxed: only its value after the threads settle matters, read after a join-free
// sleep, so an exact figure is not claimed beyond what the bound allows).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `alloc` above with layout `l`.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measurement at a time: the counter is process wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Connections measured per run.
const CONNS: usize = 200;
/// Upper bound per idle h2c connection, literal-only HPACK: under nginx's 1.7 KiB RSS figure
/// (`loadtest/h2.sh`, README). Measured: 1508 B (epoll), 1544 B (io_uring): the task (its
/// header and the parked serve future, 520 B), `Shared` behind its `Rc` (680 B: the protocol
/// machine's 496 B and the stream inboxes' table), the connection facts (64 B), the
/// closed-stream bitset (64 B) and the driver's registration of the socket. Before this
/// accounting: 4.4 KiB (a 2 KiB serve future boxed inside the dispatching task, a monoio
/// timer per idle connection, the stream tables' retained capacity, the response encoder's
/// dynamic table).
const IDLE_MAX_LITERAL: isize = 1600;
/// Upper bound with `:authority` indexed: the decoder's table keeps the entry (one slot of the
/// ring buffer, the name and value copied into one shared buffer). Measured 1615 / 1651 B.
const IDLE_MAX_INDEXED: isize = 1720;
const LIVE_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq)]
enum Hpack {
    Literal,
    Indexed,
}

/// An empty SETTINGS frame, and the ack of the server's.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
const SETTINGS_ACK: [u8; 9] = [0, 0, 0, 4, 1, 0, 0, 0, 0];

/// Opens an h2c connection and has `GET /hello` answered on stream 1, leaving it idle.
fn open_and_get(addr: SocketAddr, hpack: Hpack) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIVE_LIMIT)).unwrap();
    // HPACK (RFC 7541): :method GET, :scheme http (static 2, 6), :path literal without
    // indexing (name 4), :authority literal without indexing (§6.2.2) or with incremental
    // indexing (§6.2.1) (name 1)
    let mut block = [0u8; 64];
    let mut n = 0;
    for b in [0x82, 0x86, 0x04, 6] {
        block[n] = b;
        n += 1;
    }
    block[n..n + 6].copy_from_slice(b"/hello");
    n += 6;
    block[n] = if hpack == Hpack::Indexed { 0x41 } else { 0x01 };
    block[n + 1] = 9;
    block[n + 2..n + 11].copy_from_slice(b"localhost");
    n += 11;
    let mut req = [0u8; 128];
    let mut m = 0;
    req[..24].copy_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    m += 24;
    req[m..m + 9].copy_from_slice(&SETTINGS);
    m += 9;
    // HEADERS, END_STREAM | END_HEADERS, stream 1
    req[m..m + 9].copy_from_slice(&[0, 0, n as u8, 1, 0x5, 0, 0, 0, 1]);
    m += 9;
    req[m..m + n].copy_from_slice(&block[..n]);
    m += n;
    s.write_all(&req[..m]).unwrap();
    // read frames until stream 1 ends; ack the server's SETTINGS
    let mut buf = [0u8; 4096];
    let mut have = 0;
    let mut acked = false;
    let mut ended = false;
    while !(ended && acked) {
        let r = s.read(&mut buf[have..]).unwrap();
        assert!(r > 0, "the connection closed before the response");
        have += r;
        let mut at = 0;
        while have - at >= 9 {
            let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
            if have - at < 9 + len {
                break;
            }
            let (kind, flags) = (buf[at + 3], buf[at + 4]);
            let id = u32::from_be_bytes([buf[at + 5], buf[at + 6], buf[at + 7], buf[at + 8]]);
            if kind == 4 && flags & 1 == 0 {
                s.write_all(&SETTINGS_ACK).unwrap();
                acked = true;
            }
            if kind == 1 && id == 1 {
                assert_eq!(buf[at + 9], 0x88, "a 200 (static index 8)");
            }
            if (kind == 0 || kind == 1) && id == 1 && flags & 1 == 1 {
                ended = true;
            }
            assert_ne!(kind, 7, "no GOAWAY");
            at += 9 + len;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
    s
}

/// Waits until the live byte count stops moving (the worker finished with the connections).
fn settled() -> isize {
    let until = Instant::now() + LIVE_LIMIT;
    let mut last = LIVE.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let now = LIVE.load(Ordering::Relaxed);
        if now == last || Instant::now() > until {
            return now;
        }
        last = now;
    }
}

fn measure(driver: &str, hpack: Hpack) -> isize {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Gateway::start_with(
        driver,
        1,
        "h2c = true",
        "[[route]]\nkey = \"GET /hello\"\nmock = { status = 200, body = \"hi\" }\n",
    );
    let mut held = Vec::with_capacity(CONNS + 1);
    // one connection first: the worker's pools, maps and metrics reach their steady size
    held.push(open_and_get(g.addr, hpack));
    let before = settled();
    for _ in 0..CONNS {
        held.push(open_and_get(g.addr, hpack));
    }
    let after = settled();
    // all still open (no GOAWAY, no close): a short read timeout sees nothing pending
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(n) => panic!("an idle connection got {n} bytes: {:?}", &b[..n]),
            Err(e) => assert!(matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
        }
    }
    drop(held);
    drop(g);
    (after - before) / CONNS as isize
}

fn check(driver: &str, hpack: Hpack, max: isize) {
    let per_conn = measure(driver, hpack);
    let mode = match hpack {
        Hpack::Literal => "literal",
        Hpack::Indexed => "indexed",
    };
    eprintln!("{driver} h2c {mode}: an idle HTTP/2 connection keeps {per_conn} B on the heap");
    assert!(
        per_conn > 0 && per_conn <= max,
        "{per_conn} B per connection (bound {max})"
    );
}

/// Upper bound per connection that has sent nothing yet to a listener with `server.h2c` (its
/// task waits for the first bytes to tell HTTP/2 from HTTP/1, in a box freed once they came).
/// Measured: 1310 B (io_uring) / 1356 B (epoll): the task, the boxed look at the first bytes,
/// the driver's registration. Before: ~2 KiB, a monoio `Sleep` (~640 B) inline in that box for
/// the head-read deadline, which now is in the worker's idle table.
const SILENT_MAX: isize = 1408;

/// Heap per connection of `CONNS` connections that send nothing, on an h2c listener.
fn measure_silent(driver: &str) -> isize {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Gateway::start_with(
        driver,
        1,
        "h2c = true\n[server.timeouts]\nheader_read_ms = 60000",
        "[[route]]\nkey = \"GET /hello\"\nmock = { status = 200, body = \"hi\" }\n",
    );
    let mut held = Vec::with_capacity(CONNS + 1);
    held.push(open_and_get(g.addr, Hpack::Literal));
    let before = settled();
    for _ in 0..CONNS {
        held.push(TcpStream::connect(g.addr).unwrap());
    }
    let after = settled();
    // the gateway still serves beside them
    drop(open_and_get(g.addr, Hpack::Literal));
    drop(held);
    drop(g);
    (after - before) / CONNS as isize
}

both_drivers! {
    fn a_silent_connection_on_an_h2c_listener_holds_no_timer(d) {
        let per_conn = measure_silent(d);
        eprintln!("{d} h2c listener: a silent connection keeps {per_conn} B on the heap");
        assert!(per_conn > 0 && per_conn <= SILENT_MAX, "{per_conn} B per connection (bound {SILENT_MAX})");
    }

    fn an_idle_h2c_connection_is_small_literal_hpack(d) {
        check(d, Hpack::Literal, IDLE_MAX_LITERAL);
    }

    fn an_idle_h2c_connection_is_small_indexed_authority(d) {
        check(d, Hpack::Indexed, IDLE_MAX_INDEXED);
    }
}
