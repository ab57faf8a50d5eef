//! One HTTP/2 stream's task: the lifecycle over an [`H2Stream`].
//!
//! Owns: [`stream_task`], the [`crate::session::h2::StreamTask`] the server hands the HTTP/2
//! connection task (sessions do not import `proxy`): it counts the request in the worker's
//! `busy` (a drain waits for it, as for an HTTP/1 request) and runs [`lifecycle::handle`] on the
//! generation that was current when the request arrived, or [`lifecycle::reject_head`] for a
//! head the translation refused. A panic inside a stream's task is contained ([`CatchUnwind`]):
//! the task ends, its stream is freed (RST_STREAM CANCEL when its response had not completed),
//! the connection and the worker go on, as the server's connection tasks are guarded. Leaves
//! out: the connection (`crate::session::h2`).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::lifecycle;
use crate::error::GatewayError;
use crate::http::RequestHead;
use crate::runtime::CatchUnwind;
use crate::session::h2_stream::H2Stream;
use crate::worker::{Cx, Generation, Worker};

/// Decrements the worker's busy count when the stream's request ends, even by a panic.
struct BusyGuard(Rc<Worker>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let c = &self.0.busy;
        c.set(c.get().saturating_sub(1));
    }
}

/// Counts `work` in the worker's `busy` at once (not when the task first runs: a drain starting
/// meanwhile waits for it) and boxes it, panics contained.
fn guarded(
    w: &Rc<Worker>,
    work: impl Future<Output = ()> + 'static,
) -> Pin<Box<dyn Future<Output = ()>>> {
    w.busy.set(w.busy.get() + 1);
    let busy = BusyGuard(w.clone());
    Box::pin(CatchUnwind(async move {
        let _busy = busy;
        work.await;
    }))
}

/// Serves one HTTP/2 request to completion (see the module docs).
pub fn stream_task(
    w: Rc<Worker>,
    g: Rc<Generation>,
    mut s: H2Stream,
    head: Result<RequestHead, GatewayError>,
) -> Pin<Box<dyn Future<Output = ()>>> {
    let w2 = w.clone();
    guarded(&w2, async move {
        let cx = Cx { w: &w, g: &g };
        match head {
            Ok(head) => {
                lifecycle::handle(&cx, &mut s, head).await;
            }
            Err(e) => {
                lifecycle::reject_head(&cx, &mut s, e).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::time::Duration;

    use bytes::BytesMut;

    use super::*;
    use crate::transport::Stream;

    /// The stream task of [`stream_task`] with a bug: it panics while holding its stream.
    fn buggy_stream(
        w: Rc<Worker>,
        _g: Rc<Generation>,
        s: H2Stream,
        _h: Result<RequestHead, GatewayError>,
    ) -> Pin<Box<dyn Future<Output = ()>>> {
        guarded(&w, async move {
            let _s = s;
            monoio::time::sleep(Duration::from_millis(10)).await;
            panic!("stream bug");
        })
    }

    /// A panic in one stream's task resets that stream (CANCEL) and spares the connection (a
    /// PING is still answered, a second stream is served the same way) and the worker (the
    /// runtime goes on; without the guard the panic unwinds out of `block_on`).
    async fn a_panicking_stream_spares_the_connection() {
        let w = Rc::new(crate::testkit::worker(
            "[[route]]\nkey = \"GET /x\"\nmock = {}\n",
        ));
        let (mut client, s, facts) = crate::testkit::accepted();
        w.open_connections.set(1);
        let conn = crate::session::h2::serve(
            Stream::Plain(s),
            facts,
            Rc::new(Cell::new(false)),
            BytesMut::new(),
            w.clone(),
            buggy_stream,
        );
        let handle = monoio::spawn(conn);
        client.write_all(crate::http2::PREFACE).unwrap();
        client.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap(); // empty SETTINGS
        client.write_all(&crate::testkit::h2_get_frame(1)).unwrap();
        monoio::time::sleep(Duration::from_millis(150)).await;
        client.write_all(&crate::testkit::h2_get_frame(3)).unwrap();
        monoio::time::sleep(Duration::from_millis(150)).await;
        // PING with payload 1..=8
        client
            .write_all(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        monoio::time::sleep(Duration::from_millis(150)).await;
        client.set_nonblocking(true).unwrap();
        let mut got = vec![0u8; 4096];
        let n = client.read(&mut got).unwrap_or(0);
        let f = crate::testkit::h2_frames(&got[..n]);
        // RST_STREAM (3) with CANCEL (8) on both streams, then the PING ack (6, flag 1)
        assert!(f.contains(&(3, 0, 1, 8)), "stream 1 reset: {f:?}");
        assert!(f.contains(&(3, 0, 3, 8)), "stream 3 reset: {f:?}");
        assert!(f.contains(&(6, 1, 0, 0x0102_0304)), "PING answered: {f:?}");
        assert_eq!(w.busy.get(), 0, "the panicked tasks were uncounted");
        drop(client);
        handle.await;
        assert_eq!(w.open_connections.get(), 0);
    }

    #[test]
    fn a_panicking_stream_spares_the_connection_epoll() {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(a_panicking_stream_spares_the_connection());
    }

    #[test]
    fn a_panicking_stream_spares_the_connection_io_uring() {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(a_panicking_stream_spares_the_connection());
    }
}
