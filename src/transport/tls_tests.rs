//! TlsStream over real loopback sockets, on both monoio drivers: rcgen certificates and small
//! rustls configs (ring provider) built here.

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::net::{TcpListener, TcpStream};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};

use super::{HandshakeError, IoFail, ReadEnd, TlsStream};
use crate::transport::Stream;

/// Upper bound for anything in these tests to happen (liveness, not performance).
const LIVE: Duration = Duration::from_secs(10);

fn on_uring<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("io_uring runtime")
        .block_on(f)
}

fn on_epoll<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("epoll runtime")
        .block_on(f)
}

/// One `#[test]` per driver for each async scenario below.
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        mod io_uring {
            $( #[test] fn $name() { super::on_uring(super::$name()) } )*
        }
        mod epoll {
            $( #[test] fn $name() { super::on_epoll(super::$name()) } )*
        }
    };
}

both_drivers!(
    echo_tls12,
    echo_tls13,
    blocking_client_tls12,
    blocking_client_tls13,
    large_transfer_tls12,
    large_transfer_tls13,
    partial_record_would_block,
    many_small_records_drained,
    request_in_handshake_flight,
    handshake_timeout_silent_client,
    tls11_client_hello_refused,
    tls11_client_hello_with_sig_algs_refused,
    unknown_ca_refused,
    unknown_sni_refused,
    client_cert_missing_refused,
    client_cert_unknown_ca_refused,
    client_cert_accepted,
    probe_alive_after_session_tickets,
    probe_dead_after_close_notify_tls12,
    probe_dead_after_close_notify_tls13,
    probe_dead_after_stray_plaintext_tls12,
    probe_dead_after_stray_plaintext_tls13,
    probe_dead_after_tcp_eof,
    stream_read_end_close_notify,
    stream_read_end_bare_tcp_eof,
    probe_dead_after_half_a_record,
    drop_sends_close_notify_tls12,
    drop_sends_close_notify_tls13,
    no_alert_after_a_write_timeout,
    writes_wait_for_a_full_socket,
);

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

struct Pki {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pki {
        cert: ck.cert.der().clone(),
        key: ck.key_pair.serialize_der(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_cfg(p: &Pki, versions: &[&'static SupportedProtocolVersion]) -> Arc<ServerConfig> {
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![p.cert.clone()],
            PrivateKeyDer::Pkcs8(p.key.clone().into()),
        )
        .unwrap();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

fn client_cfg(trust: &Pki, versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.cert.clone()).unwrap();
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// A connected loopback pair: (client side, server side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let c = TcpStream::connect(addr).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

/// Both sides of a TLS connection handshaken with each other, (client, server), with the
/// server's facts and both peer certificates checked.
async fn tls_pair(versions: &[&'static SupportedProtocolVersion]) -> (TlsStream, TlsStream) {
    let p = pki();
    let (c, s) = tcp_pair().await;
    let srv = monoio::spawn(TlsStream::accept(s, server_cfg(&p, versions), LIVE));
    let client = TlsStream::connect(c, client_cfg(&p, versions), localhost(), LIVE)
        .await
        .unwrap();
    let (server, facts) = srv.await.unwrap();
    let want = if versions == TLS13 {
        "TLSv1.3"
    } else {
        "TLSv1.2"
    };
    assert_eq!(facts.version, want);
    assert_eq!(facts.sni.as_deref(), Some("localhost"));
    assert_eq!(facts.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(facts.client_cert, None);
    assert_eq!(server.peer_cert_der(), None);
    assert_eq!(client.peer_cert_der(), Some(p.cert.as_ref()));
    (client, server)
}

/// Reads until `buf` holds `len` bytes or the end, checking after every read that rustls kept
/// no plaintext back (the invariant readiness waits rely on).
async fn read_to(s: &mut TlsStream, buf: &mut BytesMut, len: usize) -> usize {
    let deadline = Instant::now() + LIVE;
    while buf.len() < len {
        s.readable_by(deadline).await.unwrap();
        match s.try_read(buf, 16 * 1024) {
            Ok(0) => break,
            Ok(_) => assert!(!s.plaintext_held(), "plaintext left in rustls"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    buf.len()
}

async fn echo(versions: &[&'static SupportedProtocolVersion]) {
    let (mut client, mut server) = tls_pair(versions).await;
    let req = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n";
    client.write_all(req, LIVE).await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(read_to(&mut server, &mut buf, req.len()).await, req.len());
    assert_eq!(&buf[..], &req[..]);

    let mut out = BytesMut::from(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]);
    let sent = out.clone();
    server.flush(&mut out, LIVE).await.unwrap();
    assert!(out.is_empty());
    let mut got = BytesMut::new();
    let n = client.read_within(&mut got, 4096, LIVE).await.unwrap();
    assert_eq!(n, sent.len());
    assert_eq!(got, sent);

    // close_notify reaches the server as a clean end, not a bare TCP end
    client.shutdown_write().await;
    let mut rest = BytesMut::new();
    assert_eq!(server.read_more(&mut rest, 4096).await.unwrap(), 0);
    assert_eq!(server.read_end(), ReadEnd::CloseNotify);
    // and stays ended
    assert_eq!(server.try_read(&mut rest, 4096).unwrap(), 0);
    assert!(rest.is_empty());
}

async fn echo_tls12() {
    echo(TLS12).await
}

async fn echo_tls13() {
    echo(TLS13).await
}

/// The server side against rustls's own blocking client on a thread.
async fn blocking_client(versions: &'static [&'static SupportedProtocolVersion]) {
    let p = pki();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let ccfg = client_cfg(&p, versions);
    let peer = std::thread::spawn(move || {
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(LIVE)).unwrap();
        let conn = rustls::ClientConnection::new(ccfg, localhost()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"ping").unwrap();
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let version = tls.conn.protocol_version();
        (pong, version)
    });
    let (s, _) = l.accept().await.unwrap();
    let (mut server, facts) = TlsStream::accept(s, server_cfg(&p, versions), LIVE)
        .await
        .unwrap();
    assert_eq!(facts.sni.as_deref(), Some("localhost"));
    let mut buf = BytesMut::new();
    assert_eq!(read_to(&mut server, &mut buf, 4).await, 4);
    assert_eq!(&buf[..], b"ping");
    server.write_all(b"pong", LIVE).await.unwrap();
    buf.clear();
    assert_eq!(server.read_within(&mut buf, 1024, LIVE).await.unwrap(), 0);
    assert_eq!(server.read_end(), ReadEnd::CloseNotify);
    let (pong, version) = peer.join().unwrap();
    assert_eq!(&pong, b"pong");
    let want = if versions == TLS13 {
        rustls::ProtocolVersion::TLSv1_3
    } else {
        rustls::ProtocolVersion::TLSv1_2
    };
    assert_eq!(version, Some(want));
}

async fn blocking_client_tls12() {
    blocking_client(TLS12).await
}

async fn blocking_client_tls13() {
    blocking_client(TLS13).await
}

const MIB: usize = 1 << 20;

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

/// 1 MiB each way, byte for byte, with the drain invariant checked after every read.
async fn large_transfer(versions: &[&'static SupportedProtocolVersion]) {
    let (mut client, server) = tls_pair(versions).await;
    let up = pattern(MIB, 1);
    let down = pattern(MIB, 2);
    let down2 = down.clone();
    let srv = monoio::spawn(async move {
        let mut server = server;
        let mut buf = BytesMut::new();
        read_to(&mut server, &mut buf, MIB).await;
        server.write_all(&down2, LIVE).await.unwrap();
        (server, buf)
    });
    client.write_all(&up, LIVE).await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(read_to(&mut client, &mut buf, MIB).await, MIB);
    assert!(buf[..] == down[..], "download corrupted");
    let (_server, got) = srv.await;
    assert_eq!(got.len(), MIB);
    assert!(got[..] == up[..], "upload corrupted");
}

async fn large_transfer_tls12() {
    large_transfer(TLS12).await
}

async fn large_transfer_tls13() {
    large_transfer(TLS13).await
}

fn send_raw(fd: std::os::fd::RawFd, data: &[u8]) {
    // SAFETY: `data` is valid for reads of its length; `fd` is an open socket of the test.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    assert_eq!(usize::try_from(n).ok(), Some(data.len()));
}

/// Half a record gives WouldBlock (and no bytes); its rest gives the plaintext.
async fn partial_record_would_block() {
    let (mut client, mut server) = tls_pair(TLS13).await;
    client.conn.writer().write_all(b"hello").unwrap();
    let mut record = Vec::new();
    while client.conn.wants_write() {
        client.conn.write_tls(&mut record).unwrap();
    }
    let (head, tail) = record.split_at(record.len() / 2);
    send_raw(client.raw_fd(), head);
    let mut buf = BytesMut::new();
    server.readable_by(Instant::now() + LIVE).await.unwrap();
    let e = server.try_read(&mut buf, 1024).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert!(buf.is_empty());
    send_raw(client.raw_fd(), tail);
    assert_eq!(server.read_within(&mut buf, 1024, LIVE).await.unwrap(), 5);
    assert_eq!(&buf[..], b"hello");
}

/// Many small records arriving at once: one `try_read` takes the plaintext of every record it
/// decrypted, however many (rustls keeps one chunk per record), so none is left behind where
/// no readiness would announce it; the rest comes with later reads, in order.
async fn many_small_records_drained() {
    let (mut client, mut server) = tls_pair(TLS13).await;
    let mut sent = Vec::new();
    let mut wire = Vec::new();
    for i in 0..200u32 {
        let piece = format!("rec{i:06}\n");
        client.conn.writer().write_all(piece.as_bytes()).unwrap();
        sent.extend_from_slice(piece.as_bytes());
    }
    while client.conn.wants_write() {
        client.conn.write_tls(&mut wire).unwrap();
    }
    assert!(
        wire.len() > 4096 + 2048,
        "records should exceed one rustls read"
    );
    send_raw(client.raw_fd(), &wire);
    let deadline = Instant::now() + LIVE;
    while pending_bytes(server.raw_fd()) < wire.len() as i32 {
        assert!(Instant::now() < deadline, "records did not arrive");
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut buf = BytesMut::new();
    let n = server.try_read(&mut buf, 16).unwrap();
    assert!(n > 100, "one rustls read holds many records, got {n} bytes");
    assert!(!server.plaintext_held(), "plaintext left in rustls");
    assert_eq!(read_to(&mut server, &mut buf, sent.len()).await, sent.len());
    assert!(buf[..] == sent[..], "records out of order or lost");
}

/// A TLS 1.3 client's first request in the same flight as its Finished: the handshake decrypts
/// it already, and `readable` must not wait on a socket that will stay quiet.
async fn request_in_handshake_flight() {
    let p = pki();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let ccfg = client_cfg(&p, TLS13);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(LIVE)).unwrap();
        let mut conn = rustls::ClientConnection::new(ccfg, localhost()).unwrap();
        let mut queued = false;
        loop {
            if !conn.is_handshaking() && !queued {
                // encrypted behind the still unsent Finished: one write carries both
                conn.writer().write_all(b"ping").unwrap();
                queued = true;
            }
            let mut flight = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut flight).unwrap();
            }
            tcp.write_all(&flight).unwrap();
            if queued {
                break;
            }
            conn.read_tls(&mut tcp).unwrap();
            conn.process_new_packets().unwrap();
        }
        // stay connected (no end of stream to wake the server) until it has checked
        let _ = done_rx.recv_timeout(LIVE);
    });
    let (s, _) = l.accept().await.unwrap();
    let (mut server, _) = TlsStream::accept(s, server_cfg(&p, TLS13), LIVE)
        .await
        .unwrap();
    assert!(
        server.plaintext_held(),
        "the request did not come with the Finished"
    );
    let r = server
        .readable_by(Instant::now() + Duration::from_secs(2))
        .await;
    assert!(r.is_ok(), "readable waited for the socket: {:?}", r.err());
    let mut buf = BytesMut::new();
    assert_eq!(server.try_read(&mut buf, 64).unwrap(), 4);
    assert_eq!(&buf[..], b"ping");
    assert!(!server.plaintext_held());
    let _ = done_tx.send(());
    peer.join().unwrap();
}

async fn handshake_timeout_silent_client() {
    let p = pki();
    let (_client, s) = tcp_pair().await;
    let r = TlsStream::accept(s, server_cfg(&p, TLS13), Duration::from_millis(200)).await;
    assert!(matches!(r, Err(HandshakeError::Timeout)), "{:?}", r.err());
}

/// A minimal TLS 1.1 ClientHello: legacy_version 0x0302, no supported_versions extension;
/// with `sig_algs`, a signature_algorithms extension (which TLS 1.1 clients do not send, but
/// rustls wants before it looks at versions).
fn tls11_client_hello(sig_algs: bool) -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // session_id: empty
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    if sig_algs {
        // extensions (10 bytes): signature_algorithms (13), one scheme: rsa_pkcs1_sha256
        body.extend_from_slice(&[0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04]);
        body.extend_from_slice(&[0x04, 0x01, 0x08, 0x04]);
    }
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8]; // ClientHello, u24 length
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8]; // handshake record
    rec.extend_from_slice(&hs);
    rec
}

/// Sends a TLS 1.1 ClientHello; the handshake fails as ProtocolVersion and the client gets a
/// fatal alert (RFC 8446 §6.2: level 2) with description `alert`.
async fn tls11_refused(sig_algs: bool, alert: u8) {
    let p = pki();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(LIVE)).unwrap();
        tcp.write_all(&tls11_client_hello(sig_algs)).unwrap();
        // the alert record alone: the server's close may only be submitted once the
        // runtime runs again, after this thread is joined
        let mut got = [0u8; 7];
        tcp.read_exact(&mut got).unwrap();
        got
    });
    let (s, _) = l.accept().await.unwrap();
    let both = [&rustls::version::TLS12, &rustls::version::TLS13];
    let r = TlsStream::accept(s, server_cfg(&p, &both), LIVE).await;
    assert!(
        matches!(r, Err(HandshakeError::ProtocolVersion(_))),
        "{:?}",
        r.err()
    );
    drop(r);
    let got = peer.join().unwrap();
    assert_eq!(got.first(), Some(&0x15), "{got:02x?}");
    assert_eq!(
        got.get(3..7),
        Some(&[0x00, 0x02, 0x02, alert][..]),
        "{got:02x?}"
    );
}

/// As a TLS 1.1-only client sends it: handshake_failure (40).
async fn tls11_client_hello_refused() {
    tls11_refused(false, 40).await
}

/// With signature_algorithms, rustls reaches the version check: protocol_version (70).
async fn tls11_client_hello_with_sig_algs_refused() {
    tls11_refused(true, 70).await
}

/// An origin whose certificate is from another CA: the client side says so.
async fn unknown_ca_refused() {
    let (p, other) = (pki(), pki());
    let (c, s) = tcp_pair().await;
    let srv = monoio::spawn(TlsStream::accept(s, server_cfg(&p, TLS13), LIVE));
    let r = TlsStream::connect(c, client_cfg(&other, TLS13), localhost(), LIVE).await;
    assert!(
        matches!(r, Err(HandshakeError::ServerCertificate(_))),
        "{:?}",
        r.err()
    );
    drop(r);
    // the server got the client's bad_certificate/unknown_ca alert
    assert!(srv.await.is_err());
}

/// A server that has a certificate for "localhost" only (SNI, RFC 6066 §3) refuses a client
/// asking for another name: NoCertificate.
async fn unknown_sni_refused() {
    let p = pki();
    let key = provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(p.key.clone().into()))
        .unwrap();
    let mut by_name = rustls::server::ResolvesServerCertUsingSni::new();
    by_name
        .add(
            "localhost",
            rustls::sign::CertifiedKey::new(vec![p.cert.clone()], key),
        )
        .unwrap();
    let scfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(by_name));
    let (c, s) = tcp_pair().await;
    let srv = monoio::spawn(TlsStream::accept(s, Arc::new(scfg), LIVE));
    let other = ServerName::try_from("other.test").unwrap();
    let r = TlsStream::connect(c, client_cfg(&p, TLS13), other, LIVE).await;
    assert!(r.is_err());
    drop(r);
    let r = srv.await;
    assert!(
        matches!(r, Err(HandshakeError::NoCertificate)),
        "{:?}",
        r.err()
    );
}

/// Mutual TLS: a server requiring a client certificate verified against `ca` refuses a client
/// that presents `presented` (none, or one from another CA): ClientCertificate.
async fn client_cert_refused(presented: Option<&Pki>) {
    let (p, ca) = (pki(), pki());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let scfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![p.cert.clone()],
            PrivateKeyDer::Pkcs8(p.key.clone().into()),
        )
        .unwrap();
    let mut server_roots = rustls::RootCertStore::empty();
    server_roots.add(p.cert.clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)
        .unwrap()
        .with_root_certificates(server_roots);
    let ccfg = match presented {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.cert.clone()],
                PrivateKeyDer::Pkcs8(id.key.clone().into()),
            )
            .unwrap(),
    };
    let (c, s) = tcp_pair().await;
    let srv = monoio::spawn(TlsStream::accept(s, Arc::new(scfg), LIVE));
    // a TLS 1.3 client finishes before the server judged its certificate (RFC 8446 §4.4.2.4)
    let client = TlsStream::connect(c, Arc::new(ccfg), localhost(), LIVE).await;
    let r = srv.await;
    assert!(
        matches!(r, Err(HandshakeError::ClientCertificate(_))),
        "{:?}",
        r.err()
    );
    drop(r);
    // the client learns it from the server's alert on its first read
    if let Ok(mut client) = client {
        let mut buf = BytesMut::new();
        assert!(client.read_within(&mut buf, 64, LIVE).await.is_err());
        assert!(buf.is_empty());
    }
}

async fn client_cert_missing_refused() {
    client_cert_refused(None).await
}

async fn client_cert_unknown_ca_refused() {
    client_cert_refused(Some(&pki())).await
}

/// A client certificate from the configured CA passes; the server sees its DER.
async fn client_cert_accepted() {
    let (p, id) = (pki(), pki());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(id.cert.clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let scfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![p.cert.clone()],
            PrivateKeyDer::Pkcs8(p.key.clone().into()),
        )
        .unwrap();
    let mut server_roots = rustls::RootCertStore::empty();
    server_roots.add(p.cert.clone()).unwrap();
    let ccfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)
        .unwrap()
        .with_root_certificates(server_roots)
        .with_client_auth_cert(
            vec![id.cert.clone()],
            PrivateKeyDer::Pkcs8(id.key.clone().into()),
        )
        .unwrap();
    let (c, s) = tcp_pair().await;
    let srv = monoio::spawn(TlsStream::accept(s, Arc::new(scfg), LIVE));
    let _client = TlsStream::connect(c, Arc::new(ccfg), localhost(), LIVE)
        .await
        .unwrap();
    let (server, facts) = srv.await.unwrap();
    assert_eq!(server.peer_cert_der(), Some(id.cert.as_ref()));
    // parsed once at accept, as later phases and the access log see it
    let cert = facts.client_cert.expect("client certificate facts");
    assert_eq!(cert.subject_dn, "CN=rcgen self signed cert");
    assert_eq!(cert.issuer_dn, cert.subject_dn, "self-signed");
    assert!(cert.not_after.ends_with(" GMT"), "{}", cert.not_after);
}

fn pending_bytes(fd: std::os::fd::RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`; `fd` is an open socket of the test.
    assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }, 0);
    n
}

/// TLS 1.3 session tickets arriving on an idle origin connection leave it alive, are consumed,
/// and the connection still carries a request and its response.
async fn probe_alive_after_session_tickets() {
    let (mut client, mut server) = tls_pair(TLS13).await;
    client.tcp().readable(false).await.unwrap();
    assert!(
        pending_bytes(client.raw_fd()) > 0,
        "no session tickets came"
    );
    assert!(client.probe_idle());
    assert_eq!(pending_bytes(client.raw_fd()), 0, "tickets not consumed");
    assert!(client.probe_idle(), "a second probe on a quiet connection");

    client.write_all(b"GET /", LIVE).await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(read_to(&mut server, &mut buf, 5).await, 5);
    server.write_all(b"200", LIVE).await.unwrap();
    buf.clear();
    assert_eq!(client.read_within(&mut buf, 64, LIVE).await.unwrap(), 3);
    assert_eq!(&buf[..], b"200");
}

/// Probes after each arrival until the connection is found dead (or `LIVE` passes).
async fn probe_until_dead(client: &mut TlsStream) -> bool {
    let deadline = Instant::now() + LIVE;
    loop {
        if !client.probe_idle() {
            return true;
        }
        match client.readable_by(deadline).await {
            Ok(()) => {}
            Err(IoFail::Timeout) => return false,
            Err(IoFail::Io(e)) => panic!("{e}"),
        }
    }
}

/// What the server does to an idle pooled connection before the client probes it.
enum Kill {
    CloseNotify,
    Stray,
    TcpEof,
}

async fn probe_dead(versions: &[&'static SupportedProtocolVersion], kill: Kill) {
    let (mut client, mut server) = tls_pair(versions).await;
    assert!(client.probe_idle(), "alive before the server acted");
    match kill {
        Kill::CloseNotify => server.shutdown_write().await,
        Kill::Stray => server
            .write_all(b"HTTP/1.1 200 OK\r\n", LIVE)
            .await
            .unwrap(),
        // a bare FIN, without close_notify (the stream itself would send one when dropped)
        Kill::TcpEof => {
            // SAFETY: shutdown(2) on the test's own open socket.
            assert_eq!(unsafe { libc::shutdown(server.raw_fd(), libc::SHUT_WR) }, 0);
        }
    }
    assert!(probe_until_dead(&mut client).await, "probe kept it alive");
}

async fn probe_dead_after_close_notify_tls12() {
    probe_dead(TLS12, Kill::CloseNotify).await
}

async fn probe_dead_after_close_notify_tls13() {
    probe_dead(TLS13, Kill::CloseNotify).await
}

async fn probe_dead_after_stray_plaintext_tls12() {
    probe_dead(TLS12, Kill::Stray).await
}

async fn probe_dead_after_stray_plaintext_tls13() {
    probe_dead(TLS13, Kill::Stray).await
}

async fn probe_dead_after_tcp_eof() {
    probe_dead(TLS13, Kill::TcpEof).await
}

/// Reads through [`Stream`] until its end; returns the plaintext.
async fn stream_read_all(s: &mut Stream) -> BytesMut {
    let mut buf = BytesMut::new();
    let deadline = Instant::now() + LIVE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match s.read_within(&mut buf, 1024, left).await {
            Ok(0) => return buf,
            // (the end may already be seen with the last data)
            Ok(_) => {}
            Err(e) => panic!("read failed: {e:?}"),
        }
    }
}

/// `Stream::read_end` tells a TLS peer's close_notify ...
async fn stream_read_end_close_notify() {
    let (mut client, server) = tls_pair(TLS13).await;
    let mut server = Stream::Tls(Box::new(server));
    assert_eq!(server.read_end(), ReadEnd::Open);
    client.write_all(b"body", LIVE).await.unwrap();
    client.shutdown_write().await;
    assert_eq!(&stream_read_all(&mut server).await[..], b"body");
    assert_eq!(server.read_end(), ReadEnd::CloseNotify);
}

/// ... from a bare TCP end (a possible truncation), and a plain stream's end is `Eof`.
async fn stream_read_end_bare_tcp_eof() {
    let (mut client, server) = tls_pair(TLS12).await;
    let mut server = Stream::Tls(Box::new(server));
    client.write_all(b"body", LIVE).await.unwrap();
    // FIN without close_notify
    // SAFETY: shutdown(2) on the test's own open socket.
    assert_eq!(unsafe { libc::shutdown(client.raw_fd(), libc::SHUT_WR) }, 0);
    assert_eq!(&stream_read_all(&mut server).await[..], b"body");
    assert_eq!(server.read_end(), ReadEnd::Eof);

    let (plain_client, plain_server) = tcp_pair().await;
    let mut plain_client = Stream::Plain(plain_client);
    let mut plain_server = Stream::Plain(plain_server);
    plain_client
        .write_all(bytes::Bytes::from_static(b"body"), LIVE)
        .await
        .unwrap();
    plain_client.shutdown_write().await;
    assert_eq!(&stream_read_all(&mut plain_server).await[..], b"body");
    assert_eq!(plain_server.read_end(), ReadEnd::Eof);
}

#[test]
fn sizes() {
    // reported figures (see the module doc); a guard against the stream growing unnoticed
    let server = std::mem::size_of::<rustls::ServerConnection>();
    let client = std::mem::size_of::<rustls::ClientConnection>();
    let stream = std::mem::size_of::<TlsStream>();
    eprintln!("ServerConnection {server} B, ClientConnection {client} B, TlsStream {stream} B");
    let parts = std::mem::size_of::<rustls::Connection>() + std::mem::size_of::<TcpStream>();
    assert!(
        stream <= parts + 16,
        "TlsStream {stream} B, its parts {parts} B"
    );
}

/// The record framing followed across every possible split of a record stream, including
/// empty records and a header cut anywhere.
#[test]
fn record_cursor_follows_framing() {
    use super::RecordCursor;
    let mut wire = Vec::new();
    for len in [3usize, 0, 300, 1] {
        wire.extend_from_slice(&[0x17, 0x03, 0x03]);
        wire.extend_from_slice(&(len as u16).to_be_bytes());
        wire.extend(std::iter::repeat_n(0xaa, len));
    }
    for cut in 0..=wire.len() {
        let mut c = RecordCursor::BOUNDARY;
        let (a, b) = wire.split_at(cut);
        c.feed(a);
        // boundaries: 0, 8, 13, 318, 324
        let at_boundary = [0, 8, 13, 318, 324].contains(&cut);
        assert_eq!(c.mid_record(), !at_boundary, "cut at {cut}");
        c.feed(b);
        assert!(!c.mid_record(), "whole stream, cut at {cut}");
    }
}

/// Half a record of a late response on an idle pooled connection: no plaintext yet, but the
/// connection is dead (its rest would be read as the next response).
async fn probe_dead_after_half_a_record() {
    let (mut client, mut server) = tls_pair(TLS13).await;
    // the session tickets first (a quiet connection between records stays alive)
    client.tcp().readable(false).await.unwrap();
    assert!(client.probe_idle());
    server
        .conn
        .writer()
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        .unwrap();
    let mut record = Vec::new();
    while server.conn.wants_write() {
        server.conn.write_tls(&mut record).unwrap();
    }
    let (head, _) = record.split_at(record.len() / 2);
    send_raw(server.raw_fd(), head);
    let deadline = Instant::now() + LIVE;
    while pending_bytes(client.raw_fd()) < head.len() as i32 {
        assert!(Instant::now() < deadline, "half record did not arrive");
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !client.probe_idle(),
        "half a record kept the connection alive"
    );
}

/// A healthy stream dropped without notify_close (a pooled connection evicted, an idle client
/// closed by the idle table) still sends close_notify (RFC 8446 §6.1).
async fn drop_sends_close_notify(versions: &[&'static SupportedProtocolVersion]) {
    let (client, mut server) = tls_pair(versions).await;
    drop(client);
    let mut buf = BytesMut::new();
    assert_eq!(server.read_within(&mut buf, 64, LIVE).await.unwrap(), 0);
    assert_eq!(server.read_end(), ReadEnd::CloseNotify);
}

async fn drop_sends_close_notify_tls12() {
    drop_sends_close_notify(TLS12).await
}

async fn drop_sends_close_notify_tls13() {
    drop_sends_close_notify(TLS13).await
}

fn set_buf(fd: std::os::fd::RawFd, opt: libc::c_int, size: libc::c_int) {
    // SAFETY: setsockopt(2) reads one c_int from `size`; `fd` is an open socket of the test.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            std::ptr::addr_of!(size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

/// The content types of the complete TLS records at the start of `wire`.
fn record_types(wire: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = wire;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest.len() < 5 + len {
            break;
        }
        types.push(rest[0]);
        rest = &rest[5 + len..];
    }
    types
}

/// A write that timed out poisons the stream: neither notify_close, shutdown_write nor the
/// drop sends an alert after it, even once the socket has room again (the peer could hold
/// part of a record; an alert would be read as its rest). TLS 1.2, where an alert record's
/// content type (21) shows on the wire.
async fn no_alert_after_a_write_timeout() {
    let (mut client, mut server) = tls_pair(TLS12).await;
    set_buf(client.raw_fd(), libc::SO_SNDBUF, 16 * 1024);
    set_buf(server.raw_fd(), libc::SO_RCVBUF, 16 * 1024);
    let big = pattern(4 * MIB, 3);
    let r = client.write_all(&big, Duration::from_millis(300)).await;
    assert!(matches!(r, Err(IoFail::Timeout)), "{:?}", r.err());
    // make room (enough for all rustls still queues), then try every way an alert could go
    // out
    set_buf(client.raw_fd(), libc::SO_SNDBUF, 4 * MIB as libc::c_int);
    set_buf(server.raw_fd(), libc::SO_RCVBUF, 4 * MIB as libc::c_int);
    let mut wire = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let take = |wire: &mut Vec<u8>, chunk: &mut [u8]| loop {
        // SAFETY: recv(2) writes at most `chunk.len()` bytes into `chunk`; open test socket.
        let n = unsafe {
            libc::recv(
                server.raw_fd(),
                chunk.as_mut_ptr().cast(),
                chunk.len(),
                libc::MSG_DONTWAIT,
            )
        };
        match usize::try_from(n) {
            Ok(0) | Err(_) => return n == 0,
            Ok(n) => wire.extend_from_slice(&chunk[..n]),
        }
    };
    take(&mut wire, &mut chunk);
    client.notify_close();
    client.shutdown_write().await;
    drop(client);
    let deadline = Instant::now() + LIVE;
    while !take(&mut wire, &mut chunk) {
        assert!(Instant::now() < deadline, "no end of stream");
        let _ = server.tcp().readable(false).await;
    }
    let types = record_types(&wire);
    assert!(!types.is_empty(), "no record arrived");
    assert!(
        types.iter().all(|&t| t == 23),
        "only application data may arrive, got content types {:?}",
        types.iter().filter(|&&t| t != 23).collect::<Vec<_>>()
    );
    // the server's own drop: it is healthy, it may say goodbye (nothing to check)
    server.notify_close();
}

/// Writes through small socket buffers to a reader on the same thread (which only runs while
/// the writer waits): the socket fills again and again, every WouldBlock waits for
/// writability, and the bytes arrive whole, in order.
async fn writes_wait_for_a_full_socket() {
    let (mut client, server) = tls_pair(TLS13).await;
    set_buf(client.raw_fd(), libc::SO_SNDBUF, 32 * 1024);
    set_buf(server.raw_fd(), libc::SO_RCVBUF, 32 * 1024);
    let up = pattern(MIB, 5);
    let srv = monoio::spawn(async move {
        let mut server = server;
        let mut buf = BytesMut::new();
        let deadline = Instant::now() + LIVE;
        while buf.len() < MIB {
            server.readable_by(deadline).await.unwrap();
            match server.try_read(&mut buf, 8 * 1024) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
        buf
    });
    client.write_all(&up, LIVE).await.unwrap();
    let got = srv.await;
    assert_eq!(got.len(), MIB);
    assert!(got[..] == up[..], "upload corrupted");
}
