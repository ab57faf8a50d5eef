//! One HTTP/2 stream's task: the lifecycle over an [`H2Stream`].
//!
//! Owns: [`stream_task`], the [`crate::session::h2::StreamTask`] the server hands the HTTP/2
//! connection task (sessions do not import `proxy`): it counts the request in the worker's
//! `busy` (a drain waits for it, as for an HTTP/1 request) and runs [`lifecycle::handle`] on the
//! generation that was current when the request arrived, or [`lifecycle::reject_head`] for a
//! head the translation refused. Leaves out: the connection (`crate::session::h2`).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::lifecycle;
use crate::error::GatewayError;
use crate::http::RequestHead;
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

/// Serves one HTTP/2 request to completion (see the module docs).
pub fn stream_task(
    w: Rc<Worker>,
    g: Rc<Generation>,
    mut s: H2Stream,
    head: Result<RequestHead, GatewayError>,
) -> Pin<Box<dyn Future<Output = ()>>> {
    // counted at once (not when the task first runs): a drain starting meanwhile waits for it
    w.busy.set(w.busy.get() + 1);
    let busy = BusyGuard(w.clone());
    Box::pin(async move {
        let _busy = busy;
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
