//! The transport a test runs over, so one test body covers plain TCP and TLS: [`all_transports!`]
//! generates each test four times (io_uring/epoll × plain/tls) and sets the thread's
//! [`Transport`] for its body. In TLS mode [`super::Gateway`] appends a `[tls]` listener with a
//! test certificate for `localhost` (one CA and leaf per test process) and hands out the TLS
//! address as `g.addr`, registering it here; the client helpers ([`super::connect`],
//! [`super::Client`], [`super::roundtrip`], [`super::get`]) look an address up in that registry
//! and speak TLS to it through [`Conn`], so a test's requests, reads, timeouts and half-closes
//! are the same lines in both modes. Plain mode is byte for byte what the tests did before.
//! Left out: anything about which TLS is negotiated (tests/tls.rs covers that).

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::tls_client::{Ca, CertDir};

/// What a test's client connections to the gateway's main address run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

thread_local! {
    static MODE: Cell<Transport> = const { Cell::new(Transport::Plain) };
}

/// Restores the thread's previous transport on drop (libtest may reuse a thread).
pub struct ModeGuard(Transport);

impl Drop for ModeGuard {
    fn drop(&mut self) {
        MODE.with(|m| m.set(self.0));
    }
}

/// Sets this thread's transport until the guard drops.
pub fn enter(t: Transport) -> ModeGuard {
    ModeGuard(MODE.with(|m| m.replace(t)))
}

/// This thread's transport (what a gateway started here listens with).
pub fn transport() -> Transport {
    MODE.with(Cell::get)
}

/// The scheme the gateway reports for this thread's transport (`X-Forwarded-Proto`).
pub fn proto() -> &'static str {
    match transport() {
        Transport::Plain => "http",
        Transport::Tls => "https",
    }
}

/// Gateway addresses that speak TLS (shared by every thread of the test binary: helpers may
/// run on threads a test spawns).
static TLS_ADDRS: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());

pub fn register_tls(addr: SocketAddr) {
    TLS_ADDRS.lock().unwrap().push(addr);
}

pub fn unregister_tls(addr: SocketAddr) {
    TLS_ADDRS.lock().unwrap().retain(|a| *a != addr);
}

pub fn is_tls(addr: SocketAddr) -> bool {
    TLS_ADDRS.lock().unwrap().contains(&addr)
}

/// The process's test PKI: a CA and a leaf for `localhost` (files live as long as the process;
/// the directory is named by pid under the temp dir).
struct Pki {
    _dir: CertDir,
    ca: CertificateDer<'static>,
    /// `cert = ...` / `key = ...` as TOML strings.
    pair: (String, String),
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = CertDir::new("transport");
        let ca = Ca::new(&dir, "transport", "Tollgate Transport Test CA");
        let leaf = ca.leaf(&dir, "localhost", &["localhost"]);
        Pki {
            ca: ca.der(),
            pair: leaf.toml_pair(),
            _dir: dir,
        }
    })
}

/// The `[tls]` table a TLS-mode gateway gets: a port-0 listener and the `localhost` certificate.
pub fn tls_section() -> String {
    let (cert, key) = &pki().pair;
    format!(
        "\n[tls]\nlisten = [\"127.0.0.1:0\"]\n\n[[tls.certificate]]\ncert = {cert}\nkey = {key}\n"
    )
}

/// One client config for the process (so later connections resume sessions, as real clients
/// do): trusts the test CA, TLS 1.2 and 1.3, ALPN `http/1.1` (RFC 7301).
fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add(pki().ca.clone()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut c = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(c)
        })
        .clone()
}

/// A client connection to a gateway: plain TCP, or TLS (handshake completed in
/// [`Conn::connect`], so a test's timings start with the HTTP exchange, as in plain mode).
/// Both kinds can be cloned, for a test that writes on one thread while it reads on another.
pub enum Conn {
    Plain(TcpStream),
    Tls(Arc<TlsConn>),
}

/// TLS bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A client TLS connection shareable between a reading and a writing thread.
pub struct TlsConn {
    sock: TcpStream,
    state: Mutex<TlsState>,
    /// Held while sealed records are written to the socket. Taken while `state` is held, so
    /// records reach the wire in the order they were sealed (their sequence numbers, RFC 8446
    /// §5.3), and `state` is released before the (possibly blocking) write, so a reader is
    /// never stuck behind a writer waiting for the peer.
    wire: Mutex<()>,
}

struct TlsState {
    conn: ClientConnection,
    /// TLS bytes read from the socket and not yet given to `conn`: it is fed only once its
    /// plaintext is all taken, as rustls refuses more beyond 16 KiB of it.
    pending: Vec<u8>,
}

impl TlsConn {
    /// Seals what the connection has queued and writes it, keeping record order (see `wire`).
    fn send_queued(&self, mut state: MutexGuard<'_, TlsState>) -> io::Result<()> {
        let mut out = Vec::new();
        while state.conn.wants_write() {
            state.conn.write_tls(&mut out)?;
        }
        let _wire = self.wire.lock().unwrap();
        drop(state);
        (&self.sock).write_all(&out)
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut tmp = vec![0u8; READ_CHUNK];
        loop {
            {
                let mut st = self.state.lock().unwrap();
                loop {
                    match st.conn.reader().read(buf) {
                        // Ok(0): the peer's close_notify (RFC 8446 §6.1); a TCP EOF without
                        // one is UnexpectedEof
                        Ok(n) => return Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    if st.pending.is_empty() {
                        break;
                    }
                    let st = &mut *st;
                    let n = st.conn.read_tls(&mut st.pending.as_slice())?;
                    st.pending.drain(..n);
                    st.conn.process_new_packets().map_err(io::Error::other)?;
                }
            }
            // wait for the peer without holding the state (a writer may be sealing meanwhile)
            let n = (&self.sock).read(&mut tmp)?;
            let mut st = self.state.lock().unwrap();
            if n == 0 && st.pending.is_empty() {
                // the TCP end of stream, for rustls to judge (close_notify seen or not)
                st.conn.read_tls(&mut &[][..])?;
                st.conn.process_new_packets().map_err(io::Error::other)?;
            }
            st.pending.extend_from_slice(&tmp[..n]);
            if st.conn.wants_write() {
                self.send_queued(st)?;
            }
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap();
        let n = st.conn.writer().write(buf)?;
        // records are sent now, not left buffered (tests time what they write)
        self.send_queued(st)?;
        Ok(n)
    }
}

impl Conn {
    /// Connects to `addr`, over TLS (SNI `localhost`, RFC 6066 §3) when it is a registered TLS
    /// gateway address.
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let tcp = TcpStream::connect(addr)?;
        if !is_tls(addr) {
            return Ok(Conn::Plain(tcp));
        }
        // liveness bound for the handshake only; callers set their own timeouts after
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(client_config(), name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut &tcp)?;
        }
        Ok(Conn::Tls(Arc::new(TlsConn {
            sock: tcp,
            state: Mutex::new(TlsState {
                conn,
                pending: Vec::new(),
            }),
            wire: Mutex::new(()),
        })))
    }

    /// Connects over TLS to `addr` (a registered TLS gateway address) offering the ALPN
    /// protocols `alpn` (RFC 7301), e.g. `h2` for HTTP/2.
    pub fn connect_alpn(addr: SocketAddr, alpn: &[&[u8]]) -> io::Result<Conn> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut c = (*client_config()).clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(Arc::new(c), name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut &tcp)?;
        }
        Ok(Conn::Tls(Arc::new(TlsConn {
            sock: tcp,
            state: Mutex::new(TlsState {
                conn,
                pending: Vec::new(),
            }),
            wire: Mutex::new(()),
        })))
    }

    /// The ALPN protocol the TLS handshake agreed on (None on plain TCP).
    pub fn alpn(&self) -> Option<Vec<u8>> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(t) => t
                .state
                .lock()
                .unwrap()
                .conn
                .alpn_protocol()
                .map(<[u8]>::to_vec),
        }
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(d)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// Over TLS, ending the write side first sends close_notify (RFC 8446 §6.1; RFC 5246
    /// §7.2.1), then shuts the TCP side down as asked.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Conn::Tls(t) = self {
            if how != Shutdown::Read {
                let mut st = t.state.lock().unwrap();
                st.conn.send_close_notify();
                t.send_queued(st)?;
            }
        }
        self.tcp().shutdown(how)
    }

    /// A second handle on the same connection (over TLS, sharing its state).
    pub fn try_clone(&self) -> io::Result<Conn> {
        match self {
            Conn::Plain(s) => Ok(Conn::Plain(s.try_clone()?)),
            Conn::Tls(t) => Ok(Conn::Tls(t.clone())),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(_) => Ok(()), // every write is sent before it returns
        }
    }
}

/// Generates each test four times: `io_uring::plain::name`, `io_uring::tls::name`,
/// `epoll::plain::name`, `epoll::tls::name`, the body running with the transport set (see the
/// module doc). A test written `plain_only fn name(d) { ... }` (with a comment saying why)
/// is generated in the plain modules only.
#[macro_export]
macro_rules! all_transports {
    ($($t:tt)*) => {
        mod io_uring {
            #[allow(unused_imports)]
            use super::*;
            mod plain {
                #[allow(unused_imports)]
                use super::super::*;
                $crate::__transport_tests!(@Plain "io_uring"; $($t)*);
            }
            mod tls {
                #[allow(unused_imports)]
                use super::super::*;
                $crate::__transport_tests!(@Tls "io_uring"; $($t)*);
            }
        }
        mod epoll {
            #[allow(unused_imports)]
            use super::*;
            mod plain {
                #[allow(unused_imports)]
                use super::super::*;
                $crate::__transport_tests!(@Plain "epoll"; $($t)*);
            }
            mod tls {
                #[allow(unused_imports)]
                use super::super::*;
                $crate::__transport_tests!(@Tls "epoll"; $($t)*);
            }
        }
    };
}

/// [`all_transports!`]'s worker: one `#[test]` per `fn`, skipping `plain_only` ones in TLS mode.
#[doc(hidden)]
#[macro_export]
macro_rules! __transport_tests {
    (@$mode:ident $drv:literal;) => {};
    (@Tls $drv:literal; plain_only fn $name:ident($d:ident) $body:block $($rest:tt)*) => {
        $crate::__transport_tests!(@Tls $drv; $($rest)*);
    };
    (@$mode:ident $drv:literal; plain_only fn $name:ident($d:ident) $body:block $($rest:tt)*) => {
        $crate::__transport_tests!(@$mode $drv; fn $name($d) $body $($rest)*);
    };
    (@$mode:ident $drv:literal; fn $name:ident($d:ident) $body:block $($rest:tt)*) => {
        #[test]
        fn $name() {
            let _transport = $crate::common::conn::enter($crate::common::conn::Transport::$mode);
            let $d: &str = $drv;
            $body
        }
        $crate::__transport_tests!(@$mode $drv; $($rest)*);
    };
}
