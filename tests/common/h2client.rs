//! An HTTP/2 test client: the `h2` crate on a current-thread tokio runtime, run on the test's
//! thread while the gateway runs on its own monoio threads. [`H2::connect`] speaks HTTP/2 with
//! prior knowledge (h2c, RFC 9113 §3.3) to a plain gateway address, or over TLS with ALPN `h2`
//! (RFC 9113 §3.2) to a registered TLS address: the TLS side is the harness's blocking rustls
//! [`super::Conn`], bridged to the tokio socket the h2 client uses by a loopback relay with one
//! thread per direction. [`h2_modes!`] generates a test for io_uring/epoll × h2c/tls.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Request};

use super::conn::{is_tls, Conn};

/// Liveness bound for one client operation (never a performance threshold).
pub const LIVE: Duration = Duration::from_secs(20);

/// Generates each test four times: `{io_uring,epoll}::{h2c,tls}::name`, the body running with
/// the harness's transport set (TLS mode: the gateway gets a `[tls]` listener, `g.addr` is it,
/// and [`H2::connect`] negotiates `h2` by ALPN). Gateways in these tests enable `server.h2c`
/// (see [`H2C`]), which TLS mode does not use.
#[macro_export]
macro_rules! h2_modes {
    ($(fn $name:ident($d:ident) $body:block)*) => {
        mod io_uring {
            #[allow(unused_imports)]
            use super::*;
            mod h2c {
                #[allow(unused_imports)]
                use super::super::*;
                $( #[test] fn $name() {
                    let _t = $crate::common::conn::enter($crate::common::conn::Transport::Plain);
                    let $d: &str = "io_uring"; $body
                } )*
            }
            mod tls {
                #[allow(unused_imports)]
                use super::super::*;
                $( #[test] fn $name() {
                    let _t = $crate::common::conn::enter($crate::common::conn::Transport::Tls);
                    let $d: &str = "io_uring"; $body
                } )*
            }
        }
        mod epoll {
            #[allow(unused_imports)]
            use super::*;
            mod h2c {
                #[allow(unused_imports)]
                use super::super::*;
                $( #[test] fn $name() {
                    let _t = $crate::common::conn::enter($crate::common::conn::Transport::Plain);
                    let $d: &str = "epoll"; $body
                } )*
            }
            mod tls {
                #[allow(unused_imports)]
                use super::super::*;
                $( #[test] fn $name() {
                    let _t = $crate::common::conn::enter($crate::common::conn::Transport::Tls);
                    let $d: &str = "epoll"; $body
                } )*
            }
        }
    };
}

/// The `[server]` line HTTP/2 tests add (plain listeners accept HTTP/2 with prior knowledge).
pub const H2C: &str = "h2c = true";

/// A response as the h2 client received it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/2 connection to a gateway, with the runtime that drives it.
pub struct H2 {
    pub rt: tokio::runtime::Runtime,
    pub send: SendRequest<Bytes>,
    /// The connection task: Ok when the gateway closed it cleanly (GOAWAY), else the error.
    pub conn: Option<tokio::task::JoinHandle<Result<(), h2::Error>>>,
    /// `https` over TLS, `http` over h2c.
    pub scheme: &'static str,
}

/// Relays a local TCP socket (the tokio side) to a TLS connection that negotiated `h2`.
fn tls_relay(addr: SocketAddr) -> SocketAddr {
    let tls = Conn::connect_alpn(addr, &[b"h2"]).expect("TLS connect");
    assert_eq!(tls.alpn().as_deref(), Some(&b"h2"[..]), "ALPN chose h2");
    tls.set_read_timeout(None).unwrap();
    // small frames (WINDOW_UPDATE, acks) must not wait for Nagle and a delayed ACK
    tls.set_nodelay(true).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = l.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut sock, _)) = l.accept() else {
            return;
        };
        let (mut sock_w, mut tls_r) = (sock.try_clone().unwrap(), tls.try_clone().unwrap());
        let down = thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match tls_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sock_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = sock_w.shutdown(Shutdown::Write);
        });
        let mut tls_w = tls;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tls_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tls_w.shutdown(Shutdown::Write);
        let _ = down.join();
    });
    local
}

impl H2 {
    /// Connects to `addr` (TLS with ALPN h2 when it is a registered TLS address, else h2c)
    /// and completes the HTTP/2 handshake.
    pub fn connect(addr: SocketAddr) -> H2 {
        Self::connect_with(addr, h2::client::Builder::new())
    }

    /// [`H2::connect`] with the client's settings (window sizes, ...).
    pub fn connect_with(addr: SocketAddr, builder: h2::client::Builder) -> H2 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (target, scheme) = if is_tls(addr) {
            (tls_relay(addr), "https")
        } else {
            (addr, "http")
        };
        let (send, conn) = rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(target).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (send, conn) = tokio::time::timeout(LIVE, builder.handshake(tcp))
                .await
                .expect("h2 handshake in time")
                .expect("h2 handshake");
            (send, tokio::spawn(conn))
        });
        H2 {
            rt,
            send,
            conn: Some(conn),
            scheme,
        }
    }

    /// A request for `path` on authority `localhost`.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}://localhost{path}", self.scheme));
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    /// Sends `req` with `body` (None: END_STREAM on HEADERS) and reads the whole response.
    pub fn send(&mut self, req: Request<()>, body: Option<&[u8]>) -> Result<Resp, h2::Error> {
        let send = self.send.clone();
        let body = body.map(Bytes::copy_from_slice);
        self.rt.block_on(async move {
            tokio::time::timeout(LIVE, fetch(send, req, body))
                .await
                .expect("response in time")
        })
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Resp {
        let r = self.req("GET", path, &[]);
        self.send(r, None).expect("GET over HTTP/2")
    }

    /// Waits (bounded) for the gateway to end the connection; Ok: a clean end (GOAWAY).
    pub fn closed(&mut self) -> Result<(), h2::Error> {
        let conn = self.conn.take().expect("connection task");
        self.rt.block_on(async move {
            tokio::time::timeout(LIVE, conn)
                .await
                .expect("connection ends in time")
                .expect("connection task")
        })
    }
}

/// Sends one request and collects the response (body and trailers), releasing flow-control
/// capacity as it reads.
pub async fn fetch(
    mut send: SendRequest<Bytes>,
    req: Request<()>,
    body: Option<Bytes>,
) -> Result<Resp, h2::Error> {
    send = send.ready().await?;
    let (resp, mut stream) = send.send_request(req, body.is_none())?;
    if let Some(b) = body {
        send_body(&mut stream, b).await?;
    }
    let resp = resp.await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut recv = resp.into_body();
    let mut body = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await?;
    Ok(Resp {
        status,
        headers,
        body,
        trailers,
    })
}

/// Sends `b` as the request body within the stream's flow control, then END_STREAM.
pub async fn send_body(stream: &mut h2::SendStream<Bytes>, mut b: Bytes) -> Result<(), h2::Error> {
    while !b.is_empty() {
        stream.reserve_capacity(b.len());
        let cap = std::future::poll_fn(|cx| stream.poll_capacity(cx))
            .await
            .ok_or_else(|| h2::Error::from(h2::Reason::STREAM_CLOSED))??;
        let part = b.split_to(cap.min(b.len()));
        stream.send_data(part, false)?;
    }
    stream.send_data(Bytes::new(), true)
}
