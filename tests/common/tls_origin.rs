//! A recording origin over TLS, for tests of TLS to origins: the same [`Recorded`]/[`Reply`]
//! model as the plain [`super::Origin`], served by rustls on std threads (blocking sockets), and
//! certificates made in the test with rcgen ([`Pki`]: a CA, leaves for DNS names or IP
//! addresses, client certificates).
//!
//! It counts TCP connections and completed handshakes apart (a pooled connection reused by the
//! gateway adds neither), records the client certificate and the TLS version of each handshake,
//! and can be told ([`TlsOptions`]) to require a client certificate, to speak TLS 1.2 only, and
//! to do something once while a connection is idle between requests ([`IdleAction`]: send
//! close_notify, stray plaintext, or a TLS 1.3 KeyUpdate).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConnection;

use super::{find, Recorded, Reply};

/// A test CA that signs server and client certificates.
pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// A certificate signed by a [`Pki`], with its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `names` (DNS names or IP literals, each becoming a SAN of its
    /// kind).
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> Leaf {
        self.leaf(&[cn], rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], purpose: rcgen::ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = rcgen::CertificateParams::new(names.clone()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, names[0].clone());
        p.extended_key_usages = vec![purpose];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

impl Leaf {
    /// Writes `STEM.pem` and `STEM.key` into `dir`; their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{stem}.pem"));
        let k = dir.join(format!("{stem}.key"));
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// A fresh directory for one test's certificate files.
pub fn cert_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the origin does once on a connection that has been idle (no request bytes) for a while.
#[derive(Clone, Debug)]
pub enum IdleAction {
    /// Send close_notify and keep the TCP connection open (until the peer closes it).
    CloseNotify,
    /// Send these bytes as application data (a late or stray response).
    Stray(Vec<u8>),
    /// Update the traffic keys (TLS 1.3 KeyUpdate, RFC 8446 §4.6.3): handshake-layer only.
    KeyUpdate,
}

#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Require a client certificate that chains to this CA (PEM).
    pub client_ca: Option<String>,
    /// Offer TLS 1.2 only.
    pub tls12_only: bool,
    /// After this long without request bytes, do this (once per connection).
    pub idle: Option<(Duration, IdleAction)>,
    /// TLS 1.3 session tickets sent after each full handshake (rustls's default when `None`).
    pub tickets: Option<usize>,
    /// [`Reply::RawThenClose`] ends with a bare TCP close, without close_notify: what a
    /// truncation attack looks like (RFC 8446 §6.1).
    pub bare_close: bool,
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

#[derive(Default)]
struct Shared {
    recorded: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    /// Per completed handshake: the client certificate presented (DER), if any.
    client_certs: Mutex<Vec<Option<Vec<u8>>>>,
    versions: Mutex<Vec<rustls::ProtocolVersion>>,
    idle_actions: AtomicUsize,
}

/// A recording origin over TLS on its own threads.
pub struct TlsOrigin {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl TlsOrigin {
    /// An origin serving `leaf` on 127.0.0.1 (an ephemeral port), answering with `handler`.
    pub fn start(
        leaf: &Leaf,
        opts: TlsOptions,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TlsOrigin {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if opts.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap();
        let builder = match &opts.client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                use rustls::pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(c.unwrap()).unwrap();
                }
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(v)
            }
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let mut cfg = builder
            .with_single_cert(vec![leaf.cert_der.clone()], key)
            .unwrap();
        if let Some(n) = opts.tickets {
            cfg.send_tls13_tickets = n;
        }
        let cfg = Arc::new(cfg);
        let listener = TcpListener::bind("127.0.0.1:0").expect("origin binds");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (shared, stop) = (shared.clone(), stop.clone());
            thread::spawn(move || {
                for s in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(s) = s else { continue };
                    let id = shared.connections.fetch_add(1, Ordering::AcqRel);
                    let (shared, handler, cfg, opts) =
                        (shared.clone(), handler.clone(), cfg.clone(), opts.clone());
                    thread::spawn(move || serve(s, id, cfg, &opts, &shared, &*handler));
                }
            });
        }
        TlsOrigin { addr, shared, stop }
    }

    /// An origin answering `200` with body `"{method} {target}"`.
    pub fn echo(leaf: &Leaf, opts: TlsOptions) -> TlsOrigin {
        TlsOrigin::start(leaf, opts, |r| {
            Reply::ok(&format!("{} {}", r.method, r.target))
        })
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.shared.handshakes.load(Ordering::Acquire)
    }

    /// The client certificate (DER) of each completed handshake, in order.
    pub fn client_certs(&self) -> Vec<Option<Vec<u8>>> {
        self.shared.client_certs.lock().unwrap().clone()
    }

    /// The TLS version of each completed handshake, in order.
    pub fn versions(&self) -> Vec<rustls::ProtocolVersion> {
        self.shared.versions.lock().unwrap().clone()
    }

    /// Idle actions performed so far.
    pub fn idle_actions(&self) -> usize {
        self.shared.idle_actions.load(Ordering::Acquire)
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

/// How long a connection waits for a request before giving up on its peer.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// What one attempt to get more plaintext gave.
enum Fill {
    Data,
    /// close_notify, TCP end of stream, or an error.
    End,
    /// The read timeout passed without plaintext.
    Quiet,
}

struct Tls {
    tcp: TcpStream,
    conn: ServerConnection,
}

impl Tls {
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(bytes)?;
        self.flush()
    }

    /// Moves plaintext into `buf`, reading records from the socket as needed.
    fn fill(&mut self, buf: &mut Vec<u8>) -> Fill {
        let mut tmp = [0u8; 16_384];
        loop {
            match self.conn.reader().read(&mut tmp) {
                Ok(0) => return Fill::End,
                Ok(n) => {
                    buf.extend_from_slice(&tmp[..n]);
                    return Fill::Data;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Fill::End,
            }
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => return Fill::End,
                Ok(_) => {
                    if self.conn.process_new_packets().is_err() {
                        let _ = self.flush();
                        return Fill::End;
                    }
                    // a KeyUpdate's answer, say
                    if self.flush().is_err() {
                        return Fill::End;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Fill::Quiet
                }
                Err(_) => return Fill::End,
            }
        }
    }
}

fn serve(
    tcp: TcpStream,
    id: usize,
    cfg: Arc<rustls::ServerConfig>,
    opts: &TlsOptions,
    shared: &Shared,
    handler: &Handler,
) {
    let _ = tcp.set_read_timeout(Some(READ_LIMIT));
    let Ok(conn) = ServerConnection::new(cfg) else {
        return;
    };
    let mut s = Tls { tcp, conn };
    while s.conn.is_handshaking() {
        if s.conn.complete_io(&mut s.tcp).is_err() {
            let _ = s.flush();
            return;
        }
    }
    // a TLS 1.3 server's session tickets
    if s.flush().is_err() {
        return;
    }
    shared.client_certs.lock().unwrap().push(
        s.conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec()),
    );
    if let Some(v) = s.conn.protocol_version() {
        shared.versions.lock().unwrap().push(v);
    }
    shared.handshakes.fetch_add(1, Ordering::AcqRel);

    let mut idle = opts.idle.clone();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // wait for a request; an idle action is due after its time without one
        let wait = match &idle {
            Some((after, _)) if buf.is_empty() => *after,
            _ => READ_LIMIT,
        };
        let _ = s.tcp.set_read_timeout(Some(wait));
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match s.fill(&mut buf) {
                Fill::Data => {}
                Fill::End => return,
                Fill::Quiet => {
                    let Some((_, action)) = idle.take().filter(|_| buf.is_empty()) else {
                        return;
                    };
                    let _ = s.tcp.set_read_timeout(Some(READ_LIMIT));
                    let sent = match action {
                        IdleAction::CloseNotify => {
                            // the end of this connection: nothing more is answered on it
                            s.conn.send_close_notify();
                            let _ = s.flush();
                            shared.idle_actions.fetch_add(1, Ordering::AcqRel);
                            while !matches!(s.fill(&mut buf), Fill::End | Fill::Quiet) {}
                            return;
                        }
                        IdleAction::Stray(bytes) => s.send(&bytes),
                        IdleAction::KeyUpdate => match s.conn.refresh_traffic_keys() {
                            Ok(()) => s.flush(),
                            Err(e) => Err(io::Error::other(e)),
                        },
                    };
                    if sent.is_err() {
                        return;
                    }
                    shared.idle_actions.fetch_add(1, Ordering::AcqRel);
                }
            }
        };
        let _ = s.tcp.set_read_timeout(Some(READ_LIMIT));
        let Some(mut rec) = parse_head(&buf[..head_end]) else {
            return;
        };
        let mut raw: Vec<u8> = buf.drain(..head_end).collect();
        let len: usize = rec
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < len {
            if !matches!(s.fill(&mut buf), Fill::Data) {
                return;
            }
        }
        rec.body = buf.drain(..len).collect();
        rec.body_len = len as u64;
        raw.extend_from_slice(&rec.body);
        rec.raw = raw;
        rec.conn = id;
        shared.recorded.lock().unwrap().push(rec.clone());
        let mut reply = handler(&rec);
        loop {
            match reply {
                Reply::After(d, inner) => {
                    thread::sleep(d);
                    reply = *inner;
                }
                Reply::Raw(b) => {
                    if s.send(&b).is_err() {
                        return;
                    }
                    break;
                }
                Reply::RawThenClose(b) => {
                    let _ = s.send(&b);
                    if !opts.bare_close {
                        s.conn.send_close_notify();
                        let _ = s.flush();
                    }
                    return;
                }
                Reply::Close => return,
                Reply::Stream(len) => {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                    if s.send(head.as_bytes())
                        .and_then(|()| s.send(&body))
                        .is_err()
                    {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

fn parse_head(head: &[u8]) -> Option<Recorded> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    Some(Recorded {
        method: req.method?.to_string(),
        target: req.path?.to_string(),
        version: req.version?,
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        ..Default::default()
    })
}
