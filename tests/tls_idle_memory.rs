//! What an idle keep-alive TLS connection keeps on the heap, server side, on both drivers.
//!
//! A counting global allocator (per thread, so the rustls client on its own thread does not
//! count) measures the live bytes each `TlsStream::accept` leaves behind once the handshake and
//! one request/response are over: the boxed `TlsStream` with rustls's connection state and
//! buffers. Session storage and tickets are off so that the server's session cache (shared,
//! bounded) is not counted as per-connection memory. The figures are printed (see
//! `src/transport/tls.rs`'s module doc) and bounded, so the cost cannot creep up unnoticed.

// a test crate: a broken fixture (certificate, config) should fail the test loudly
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use tollgate::transport::tls::TlsStream;

const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

fn live() -> isize {
    LIVE.with(|c| c.get())
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local without destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `alloc` above with layout `l`.
        unsafe { System.dealloc(p, l) };
        count(-(l.size() as isize));
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Connections measured per run.
const CONNS: usize = 32;
/// Upper bound per idle connection. Measured (rustls 0.23.46, ring, x86_64): 7433 B with
/// TLS 1.2, 7537 B with TLS 1.3: the boxed `TlsStream` (1256 B), rustls's read buffer (4096 B,
/// kept once used), and ~2 KiB of record keys (ring's expanded AES-GCM key schedules for both
/// directions), the traffic state machine and the queues' small ring buffers.
const IDLE_MAX: isize = 8 * 1024;
const LIVE_LIMIT: Duration = Duration::from_secs(10);

fn measure(driver: &str, versions: &'static [&'static rustls::SupportedProtocolVersion]) -> isize {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut scfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![ck.cert.der().clone()],
            PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into()),
        )
        .unwrap();
    scfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    scfg.send_tls13_tickets = 0;
    let scfg = Arc::new(scfg);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let ccfg = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let clients = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..CONNS {
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(LIVE_LIMIT)).unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(ccfg.clone(), name).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            tls.write_all(b"ping").unwrap();
            let mut pong = [0u8; 4];
            tls.read_exact(&mut pong).unwrap();
            assert_eq!(&pong, b"pong");
            held.push(tls);
        }
        let _ = stop_rx.recv_timeout(LIVE_LIMIT);
    });
    let serve = async move {
        listener.set_nonblocking(true).unwrap();
        let listener = monoio::net::TcpListener::from_std(listener).unwrap();
        let mut kept = Vec::new();
        let mut total = 0;
        for _ in 0..CONNS {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            let before = live();
            let (s, _) = TlsStream::accept(tcp, scfg.clone(), LIVE_LIMIT)
                .await
                .unwrap();
            let mut s = Box::new(s);
            assert_eq!(s.read_within(&mut buf, 64, LIVE_LIMIT).await.unwrap(), 4);
            s.write_all(b"pong", LIVE_LIMIT).await.unwrap();
            // the request buffer is the caller's, not the connection's
            drop(buf);
            total += live() - before;
            kept.push(s);
        }
        let _ = stop_tx.send(());
        total / CONNS as isize
    };
    let per_conn = match driver {
        "io_uring" => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(serve),
        _ => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(serve),
    };
    clients.join().unwrap();
    per_conn
}

fn check(driver: &str, versions: &'static [&'static rustls::SupportedProtocolVersion]) {
    let per_conn = measure(driver, versions);
    eprintln!("{driver} {versions:?}: an idle TLS connection keeps {per_conn} B on the heap");
    assert!(
        per_conn > 0 && per_conn <= IDLE_MAX,
        "{per_conn} B per connection"
    );
}

mod io_uring {
    #[test]
    fn idle_tls12_connection_is_small() {
        super::check("io_uring", super::TLS12);
    }

    #[test]
    fn idle_tls13_connection_is_small() {
        super::check("io_uring", super::TLS13);
    }
}

mod epoll {
    #[test]
    fn idle_tls12_connection_is_small() {
        super::check("epoll", super::TLS12);
    }

    #[test]
    fn idle_tls13_connection_is_small() {
        super::check("epoll", super::TLS13);
    }
}
