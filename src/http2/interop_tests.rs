//! Interoperability with an independent implementation: the `h2` crate's client (tokio, test
//! builds only) talks to [`Connection`] driven by a minimal in-memory loop, through a tokio
//! duplex pipe. Its HPACK encoder (Huffman, dynamic table), SETTINGS, flow control and
//! CONTINUATION splitting are not ours, so these tests catch what tests written against our
//! own encoder cannot.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::conn::{Connection, Event};
use super::fields::RequestFields;
use super::limits::Limits;

/// A request being received: its head and body so far.
struct Exchange {
    fields: RequestFields,
    body: Vec<u8>,
    trailers: Vec<(Bytes, Bytes)>,
}

/// A response body waiting for window, then the trailers to end it with (none: END_STREAM on
/// the last DATA).
type Pending = HashMap<u32, (Bytes, Vec<(Bytes, Bytes)>)>;

/// What the test server does besides echoing.
#[derive(Clone, Copy, Default)]
struct Opts {
    /// Send GOAWAY(NO_ERROR) when this many requests have arrived.
    goaway_after: Option<usize>,
}

/// The response: `METHOD PATH BODYLEN` then the request body echoed; the request's joined
/// cookie and authority in fields, plus a large field when the request asks for one.
fn respond(conn: &mut Connection, id: u32, x: Exchange, pending: &mut Pending) {
    let f = &x.fields;
    let mut body = format!(
        "{} {} {}\n",
        String::from_utf8_lossy(&f.method),
        String::from_utf8_lossy(&f.path),
        x.body.len()
    )
    .into_bytes();
    body.extend_from_slice(&x.body);
    let cookie = f
        .fields
        .iter()
        .find(|(n, _)| &n[..] == b"cookie")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let authority = f.authority.clone().unwrap_or_default();
    let big = if f.fields.iter().any(|(n, _)| &n[..] == b"x-want-big") {
        vec![b'b'; 40_000]
    } else {
        Vec::new()
    };
    let len = body.len().to_string();
    let mut head: Vec<(&[u8], &[u8])> = vec![
        (b"content-type", b"text/plain"),
        (b"content-length", len.as_bytes()),
        (b"x-cookie", &cookie),
        (b"x-authority", &authority),
    ];
    if !big.is_empty() {
        head.push((b"x-big", &big));
    }
    conn.send_headers(id, 200, head.into_iter(), false)
        .expect("stream open");
    // request trailers come back as response trailers
    pending.insert(id, (Bytes::from(body), x.trailers));
}

/// Drives `Connection` over one end of the pipe until the client goes away.
async fn serve(io: DuplexStream, limits: Limits, opts: Opts) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut conn = Connection::new(limits);
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut events = Vec::new();
    let mut open: HashMap<u32, Exchange> = HashMap::new();
    let mut pending: Pending = HashMap::new();
    let mut requests = 0;
    loop {
        // response bodies, as far as the windows allow, then their trailers
        let ids: Vec<u32> = pending.keys().copied().collect();
        for id in ids {
            let Some((body, trailers)) = pending.get_mut(&id) else {
                continue;
            };
            let end = trailers.is_empty();
            if conn.send_data(id, body, end).is_err() {
                pending.remove(&id);
                continue;
            }
            if body.is_empty() {
                if !end {
                    let t = trailers.iter().map(|(n, v)| (&n[..], &v[..]));
                    conn.send_trailers(id, t).expect("stream open");
                }
                pending.remove(&id);
            }
        }
        let out = conn.take_output();
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            return;
        }
        match rd.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let r = conn.recv(&mut input, &mut events);
        for ev in events.drain(..) {
            match ev {
                Event::Request {
                    id,
                    fields,
                    end_stream,
                } => {
                    requests += 1;
                    if opts.goaway_after == Some(requests) {
                        conn.go_away(super::ErrorCode::NoError);
                    }
                    let x = Exchange {
                        fields: *fields,
                        body: Vec::new(),
                        trailers: Vec::new(),
                    };
                    if end_stream {
                        respond(&mut conn, id, x, &mut pending);
                    } else {
                        open.insert(id, x);
                    }
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    conn.release_capacity(id, data.len());
                    if let Some(x) = open.get_mut(&id) {
                        x.body.extend_from_slice(&data);
                    }
                    if end_stream {
                        if let Some(x) = open.remove(&id) {
                            respond(&mut conn, id, x, &mut pending);
                        }
                    }
                }
                Event::Reset { id, .. } | Event::StreamError { id, .. } => {
                    open.remove(&id);
                    pending.remove(&id);
                }
                Event::Trailers { id, fields } => {
                    if let Some(mut x) = open.remove(&id) {
                        x.trailers = fields;
                        respond(&mut conn, id, x, &mut pending);
                    }
                }
                Event::WindowUpdate { .. } | Event::GoAway { .. } => {}
            }
        }
        if let Err(e) = r {
            let _ = wr.write_all(&conn.take_output()).await;
            panic!("connection error against the h2 client: {e}");
        }
    }
}

async fn request(
    client: &mut h2::client::SendRequest<Bytes>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    extra: &[(&str, &str)],
) -> (http::response::Parts, Vec<u8>) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://api.example{path}"));
    for (n, v) in extra {
        req = req.header(*n, *v);
    }
    let req = req.body(()).unwrap();
    let mut c = client.clone().ready().await.unwrap();
    let (resp, mut send) = c.send_request(req, body.is_none()).unwrap();
    if let Some(body) = body {
        // respect the server's windows: send as capacity is granted
        let mut body = Bytes::from(body);
        while !body.is_empty() {
            send.reserve_capacity(body.len());
            let cap = std::future::poll_fn(|cx| send.poll_capacity(cx))
                .await
                .unwrap()
                .unwrap();
            let chunk = body.split_to(cap.min(body.len()));
            send.send_data(chunk, body.is_empty()).unwrap();
        }
    }
    let (parts, mut recv) = resp.await.unwrap().into_parts();
    let mut got = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.unwrap();
        recv.flow_control().release_capacity(chunk.len()).unwrap();
        got.extend_from_slice(&chunk);
    }
    (parts, got)
}

fn run(limits: Limits, client_window: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (cli, srv) = tokio::io::duplex(16 * 1024);
        tokio::spawn(serve(srv, limits, Opts::default()));
        let (client, h2conn) = h2::client::Builder::new()
            .initial_window_size(client_window)
            .handshake::<_, Bytes>(cli)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = h2conn.await;
        });
        let work = async {
            // concurrent streams: GETs, large uploads and downloads through both windows
            let mut tasks = Vec::new();
            for i in 0..12u32 {
                let mut c = client.clone();
                tasks.push(tokio::spawn(async move {
                    if i % 3 == 0 {
                        let body: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
                        let (parts, got) =
                            request(&mut c, "POST", &format!("/up/{i}"), Some(body.clone()), &[])
                                .await;
                        assert_eq!(parts.status, 200);
                        let head = format!("POST /up/{i} 200000\n");
                        assert_eq!(&got[..head.len()], head.as_bytes());
                        assert!(got[head.len()..] == body[..], "echoed body differs");
                    } else {
                        let (parts, got) =
                            request(&mut c, "GET", &format!("/get/{i}?q=1"), None, &[]).await;
                        assert_eq!(parts.status, 200);
                        assert_eq!(got, format!("GET /get/{i}?q=1 0\n").into_bytes());
                        assert_eq!(parts.headers["x-authority"], "api.example");
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // cookie crumbs joined, a 30 KB request field (CONTINUATION from the client) and
            // a 40 KB response field (CONTINUATION from us)
            let mut c = client.clone();
            let big = "v".repeat(30_000);
            let (parts, _) = request(
                &mut c,
                "GET",
                "/big",
                None,
                &[
                    ("cookie", "a=1"),
                    ("cookie", "b=2"),
                    ("x-big", &big),
                    ("x-want-big", "1"),
                ],
            )
            .await;
            assert_eq!(parts.headers["x-cookie"], "a=1; b=2");
            assert_eq!(parts.headers["x-big"].len(), 40_000);
        };
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .expect("the exchange finished");
    });
}

#[test]
fn h2_client_with_default_limits() {
    run(Limits::default(), 65_535);
}

#[test]
fn h2_client_with_small_windows() {
    run(
        Limits {
            initial_window_size: 16_384,
            connection_window_size: 65_535,
            ..Limits::default()
        },
        16_384,
    );
}

#[test]
fn h2_client_with_large_frames_and_no_header_table() {
    run(
        Limits {
            max_frame_size: 1 << 20,
            header_table_size: 0,
            initial_window_size: 1 << 20,
            ..Limits::default()
        },
        1 << 20,
    );
}

/// Starts the test server with `opts` and an h2 client on a fresh pipe.
async fn connect(opts: Opts) -> h2::client::SendRequest<Bytes> {
    let (cli, srv) = tokio::io::duplex(16 * 1024);
    tokio::spawn(serve(srv, Limits::default(), opts));
    let (client, h2conn) = h2::client::handshake(cli).await.unwrap();
    tokio::spawn(async move {
        let _ = h2conn.await;
    });
    client
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("the exchange finished")
    });
}

#[test]
fn h2_client_trailers_both_ways() {
    block_on(async {
        let client = connect(Opts::default()).await;
        let req = http::Request::builder()
            .method("POST")
            .uri("https://api.example/t")
            .body(())
            .unwrap();
        let mut c = client.ready().await.unwrap();
        let (resp, mut send) = c.send_request(req, false).unwrap();
        send.send_data(Bytes::from_static(b"abc"), false).unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", "42".parse().unwrap());
        send.send_trailers(trailers).unwrap();
        let (parts, mut body) = resp.await.unwrap().into_parts();
        assert_eq!(parts.status, 200);
        let mut got = Vec::new();
        while let Some(chunk) = body.data().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, b"POST /t 3\nabc");
        let t = body.trailers().await.unwrap().expect("response trailers");
        assert_eq!(t["x-sum"], "42");
    });
}

#[test]
fn h2_client_sees_goaway_and_finishes_the_accepted_stream() {
    block_on(async {
        let mut client = connect(Opts {
            goaway_after: Some(1),
        })
        .await;
        // the request that triggered GOAWAY is within its last stream id: it completes
        let (parts, got) = request(&mut client, "GET", "/first", None, &[]).await;
        assert_eq!(parts.status, 200);
        assert_eq!(got, b"GET /first 0\n");
        // a new stream after it is not served
        let req = http::Request::builder()
            .uri("https://api.example/second")
            .body(())
            .unwrap();
        let refused = match client.clone().ready().await {
            Err(_) => true,
            Ok(mut c) => match c.send_request(req, true) {
                Err(_) => true,
                Ok((resp, _)) => resp.await.is_err(),
            },
        };
        assert!(refused, "a stream after GOAWAY was served");
    });
}
