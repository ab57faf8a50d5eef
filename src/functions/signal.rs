//! Task-to-task signalling on the functions thread: a oneshot, a wake-up flag, and a race of
//! two futures.
//!
//! Owns the few primitives the service's tasks use to hand results to each other: an
//! invocation's answer travels from whichever task produced it (a Runtime API connection, the
//! tick loop) to the Invoke API connection that waits for it ([`oneshot`]); a parked
//! `invocation/next` or accept loop is woken when its sandbox gets work or goes away
//! ([`Wake`]). Leaves out anything that crosses threads: every task here runs on the one
//! functions thread, so `Rc` + `Cell`/`RefCell` and a stored `Waker` suffice (monoio has no
//! cross-thread wake-ups; what comes from other threads arrives through the tick loop's
//! channel).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

struct Inner<T> {
    value: RefCell<Option<T>>,
    /// The sender was dropped without sending.
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The sending half: [`Sender::send`] once; dropping it unsent makes the receiver yield `None`.
pub struct Sender<T>(Rc<Inner<T>>);

/// The receiving half: `recv().await` yields the value, or `None` if the sender was dropped.
pub struct Receiver<T>(Rc<Inner<T>>);

/// A single-threaded oneshot channel.
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(Inner {
        value: RefCell::new(None),
        closed: Cell::new(false),
        waker: RefCell::new(None),
    });
    (Sender(inner.clone()), Receiver(inner))
}

impl<T> Sender<T> {
    pub fn send(self, value: T) {
        *self.0.value.borrow_mut() = Some(value);
        // Drop wakes the receiver.
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.closed.set(true);
        if let Some(w) = self.0.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    pub async fn recv(self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(v) = self.0.value.borrow_mut().take() {
                return Poll::Ready(Some(v));
            }
            if self.0.closed.get() {
                return Poll::Ready(None);
            }
            *self.0.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A wake-up for one waiting task: [`Wake::wait`] returns after the next [`Wake::wake`] (or at
/// once if one came since the last wait). The waiter re-checks its condition after each.
#[derive(Default)]
pub struct Wake {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Wake {
    pub fn wake(&self) {
        self.pending.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.pending.replace(false) {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A one-way "closed" flag any number of tasks wait on: [`Latch::set`] wakes them all.
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Latch {
    pub fn set(&self) {
        self.set.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Returns once set.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            let mut ws = self.wakers.borrow_mut();
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// Which of two raced futures finished first.
pub enum First<A, B> {
    Left(A),
    Right(B),
}

/// Polls both; returns the first to finish (the other is dropped: only race futures whose
/// drop loses nothing, like an accept against a stop signal).
pub async fn race<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(First::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(First::Right(v));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn on_both(f: fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>>) {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("epoll runtime");
        rt.block_on(f());
        if let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
        {
            rt.block_on(f());
        }
    }

    #[test]
    fn oneshot_delivers_across_tasks_and_reports_a_dropped_sender() {
        on_both(|| {
            Box::pin(async {
                let (tx, rx) = oneshot::<u32>();
                monoio::spawn(async move {
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    tx.send(7);
                });
                assert_eq!(rx.recv().await, Some(7));
                let (tx, rx) = oneshot::<u32>();
                monoio::spawn(async move {
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    drop(tx);
                });
                assert_eq!(rx.recv().await, None);
            })
        });
    }

    #[test]
    fn wake_and_race() {
        on_both(|| {
            Box::pin(async {
                let w = Rc::new(Wake::default());
                let w2 = w.clone();
                monoio::spawn(async move {
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    w2.wake();
                });
                let r = race(w.wait(), monoio::time::sleep(Duration::from_secs(5))).await;
                assert!(matches!(r, First::Left(())));
                let r = race(w.wait(), async {}).await;
                assert!(matches!(r, First::Right(())), "no wake pending");
                let l = Rc::new(Latch::default());
                let waiters: Vec<_> = (0..3)
                    .map(|_| {
                        let l = l.clone();
                        monoio::spawn(async move { l.wait().await })
                    })
                    .collect();
                monoio::time::sleep(Duration::from_millis(5)).await;
                l.set();
                for t in waiters {
                    t.await;
                }
                assert!(l.is_set());
            })
        });
    }
}
