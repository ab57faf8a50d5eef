//! Task-to-task signalling on the functions thread: a oneshot, a wake-up flag, and a race of
//! two futures.
//!
//! Owns the few primitives the service's tasks use to hand results to each other: an
//! invocation's answer travels from whichever task produced it (a Runtime API connection, the
//! tick loop) to the Invoke API connection that waits for it ([`oneshot`]); a parked
//! `invocation/next` or accept loop is woken when its sandbox gets work or goes away
//! ([`Wake`], every parked waiter), connections wait for the service to close ([`Latch`]), and
//! an accept loop that reached its connection bound waits for one to end ([`Count`]). Every
//! wait removes its waker when dropped, so losing a [`race`] leaves nothing behind. Leaves out anything that crosses threads: every task here runs on the one
//! functions thread, so `Rc` + `Cell`/`RefCell` and a stored `Waker` suffice (monoio has no
//! cross-thread wake-ups; what comes from other threads arrives through the tick loop's
//! channel).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

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

/// The wakers of the tasks parked on one [`Wake`] or [`Latch`], each under a key its wait
/// future holds and removes on drop: a wait that loses a race (or whose connection ends)
/// leaves nothing behind, so the list holds only tasks parked right now.
#[derive(Default)]
struct Waiters {
    next_key: Cell<u64>,
    parked: RefCell<Vec<(u64, Waker)>>,
}

impl Waiters {
    /// Parks (or re-parks, with the newest waker) the wait holding `key`.
    fn park(&self, key: &mut Option<u64>, waker: &Waker) {
        let mut parked = self.parked.borrow_mut();
        if let Some(k) = *key {
            if let Some((_, w)) = parked.iter_mut().find(|(pk, _)| *pk == k) {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                return;
            }
        }
        let k = self.next_key.get();
        self.next_key.set(k.wrapping_add(1));
        parked.push((k, waker.clone()));
        *key = Some(k);
    }

    fn remove(&self, key: Option<u64>) {
        if let Some(k) = key {
            self.parked.borrow_mut().retain(|(pk, _)| *pk != k);
        }
    }

    /// Wakes every parked task (they stay listed until their wait returns or is dropped).
    fn wake_all(&self) {
        // collected first: a waker may run code that parks again (not on monoio, which only
        // schedules, but cheap to be safe against a re-borrow)
        let wakers: Vec<Waker> = self
            .parked
            .borrow()
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    fn len(&self) -> usize {
        self.parked.borrow().len()
    }
}

/// A wait on [`Waiters`] that unparks itself when dropped.
struct Parked<'a, F> {
    waiters: &'a Waiters,
    key: Option<u64>,
    /// Ready once this returns true (checked on every poll).
    done: F,
}

impl<F: FnMut() -> bool + Unpin> Future for Parked<'_, F> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if (this.done)() {
            this.waiters.remove(this.key.take());
            return Poll::Ready(());
        }
        this.waiters.park(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl<F> Drop for Parked<'_, F> {
    fn drop(&mut self) {
        self.waiters.remove(self.key.take());
    }
}

/// A wake-up for the tasks waiting on one condition: [`Wake::wait`] returns after the next
/// [`Wake::wake`] (or at once if one came while nobody waited). Every parked waiter is woken
/// (two `invocation/next` calls on one process each re-check the mailbox); each re-checks its
/// condition after.
#[derive(Default)]
pub struct Wake {
    /// A wake that came while nobody waited: the next wait returns at once.
    pending: Cell<bool>,
    /// Bumped by every wake: a parked wait returns once it differs from what it saw.
    generation: Cell<u64>,
    waiters: Waiters,
}

impl Wake {
    pub fn wake(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        if self.waiters.len() == 0 {
            self.pending.set(true);
        }
        self.waiters.wake_all();
    }

    pub async fn wait(&self) {
        if self.pending.replace(false) {
            return;
        }
        let seen = self.generation.get();
        Parked {
            waiters: &self.waiters,
            key: None,
            done: || self.generation.get() != seen,
        }
        .await
    }

    /// How many tasks are parked in [`Wake::wait`] now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

/// A one-way "closed" flag any number of tasks wait on: [`Latch::set`] wakes them all.
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    waiters: Waiters,
}

impl Latch {
    pub fn set(&self) {
        self.set.set(true);
        self.waiters.wake_all();
    }

    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Returns once set. A wait dropped before (e.g. the losing side of a [`race`]) leaves no
    /// waker behind.
    pub async fn wait(&self) {
        Parked {
            waiters: &self.waiters,
            key: None,
            done: || self.set.get(),
        }
        .await
    }

    /// How many tasks are parked in [`Latch::wait`] now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

/// A count of open things (connections) with a wake-up when one ends: [`Count::hold`] counts
/// one until its guard drops.
#[derive(Default)]
pub struct Count {
    open: Cell<usize>,
    ended: Wake,
}

/// One counted thing; dropping it ends it.
pub struct Held(Rc<Count>);

impl Count {
    pub fn get(&self) -> usize {
        self.open.get()
    }

    pub fn hold(self: &Rc<Self>) -> Held {
        self.open.set(self.open.get() + 1);
        Held(self.clone())
    }

    /// Returns after a [`Held`] drops (or at once if one did while nobody waited).
    pub async fn changed(&self) {
        self.ended.wait().await
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
        self.0.ended.wake();
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
                assert_eq!(l.waiting(), 0);
            })
        });
    }

    #[test]
    fn dropped_waits_leave_no_waker_behind() {
        on_both(|| {
            Box::pin(async {
                let l = Latch::default();
                let w = Wake::default();
                for _ in 0..1000 {
                    // each loses the race: polled once (parked), then dropped
                    let r = race(l.wait(), async {}).await;
                    assert!(matches!(r, First::Right(())));
                    let r = race(w.wait(), async {}).await;
                    assert!(matches!(r, First::Right(())));
                }
                assert_eq!(l.waiting(), 0, "latch wakers leaked");
                assert_eq!(w.waiting(), 0, "wake wakers leaked");
            })
        });
    }

    #[test]
    fn a_wake_reaches_every_parked_waiter() {
        on_both(|| {
            Box::pin(async {
                let w = Rc::new(Wake::default());
                let done = Rc::new(Cell::new(0));
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        let (w, done) = (w.clone(), done.clone());
                        monoio::spawn(async move {
                            w.wait().await;
                            done.set(done.get() + 1);
                        })
                    })
                    .collect();
                monoio::time::sleep(Duration::from_millis(5)).await;
                assert_eq!(w.waiting(), 2);
                w.wake();
                for t in tasks {
                    t.await;
                }
                assert_eq!(done.get(), 2, "one parked waiter was never woken");
                assert_eq!(w.waiting(), 0);
            })
        });
    }
}
