//! Idle-connection deadlines without a timer per connection.
//!
//! Owns: the worker's table of client connections that are waiting for their next request (or
//! their first byte; idle HTTP/2 connections too, which tell the sweep's shutdown from a client
//! close by [`IdleGuard::expired`] and answer it with a GOAWAY), each with a deadline on a coarse per-worker clock, and the sweeper task that
//! closes the expired ones. A monoio timer is ~640 bytes, more than everything else an idle
//! connection holds, so idle waits register here instead (16 bytes) and the sweeper, ticking at a
//! fraction of the shortest idle timeout, calls `shutdown(2)` on expired sockets: the pending
//! readiness wait then completes, the read sees end of stream, and the connection closes through
//! its normal path. Deadlines are thus enforced to within one tick. Leaves out: timeouts of busy
//! connections (head reads, bodies, upstreams), which use ordinary timers for the short time a
//! request is in flight.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Fastest sweep tick.
pub const MIN_TICK: Duration = Duration::from_millis(10);
/// Slowest sweep tick.
pub const MAX_TICK: Duration = Duration::from_millis(500);

#[derive(Clone, Copy)]
struct Entry {
    fd: RawFd,
    /// Shut down when the worker starts draining too ([`IdleTable::register_until_drain`]).
    on_drain: bool,
    /// Deadline in milliseconds on the worker's coarse clock.
    deadline_ms: u64,
    /// Registration number: a guard only clears the entry it registered, never a newer one in
    /// the same (swept and reused) slot.
    generation: u64,
}

/// The per-worker idle table and coarse clock.
pub struct IdleTable {
    start: Instant,
    /// Milliseconds since `start`, refreshed by each sweep and each registration.
    now_ms: Cell<u64>,
    entries: RefCell<Vec<Option<Entry>>>,
    free: RefCell<Vec<usize>>,
    tick: Duration,
    generation: Cell<u64>,
}

impl IdleTable {
    /// A table whose sweeper ticks at an eighth of the shortest idle timeout (clamped).
    pub fn new(shortest_timeout: Duration) -> Self {
        IdleTable {
            start: Instant::now(),
            now_ms: Cell::new(0),
            entries: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            tick: (shortest_timeout / 8).clamp(MIN_TICK, MAX_TICK),
            generation: Cell::new(0),
        }
    }

    /// The sweep interval.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    fn refresh(&self) -> u64 {
        let ms = self.start.elapsed().as_millis() as u64;
        self.now_ms.set(ms);
        ms
    }

    /// Registers `fd` as idle until `timeout` from now; the returned guard unregisters it.
    pub fn register(&self, fd: RawFd, timeout: Duration) -> IdleGuard<'_> {
        self.add(fd, timeout, false)
    }

    /// As [`IdleTable::register`], and also shut down when the worker starts draining
    /// ([`IdleTable::expire_on_drain`]): an idle HTTP/2 connection then answers with its
    /// GOAWAY at once, where an idle HTTP/1 one just closes when its worker stops.
    pub fn register_until_drain(&self, fd: RawFd, timeout: Duration) -> IdleGuard<'_> {
        self.add(fd, timeout, true)
    }

    fn add(&self, fd: RawFd, timeout: Duration, on_drain: bool) -> IdleGuard<'_> {
        let deadline_ms = self.refresh() + timeout.as_millis() as u64;
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let entry = Some(Entry {
            fd,
            on_drain,
            deadline_ms,
            generation,
        });
        let mut entries = self.entries.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(i) => {
                if let Some(e) = entries.get_mut(i) {
                    *e = entry;
                }
                i
            }
            None => {
                entries.push(entry);
                entries.len() - 1
            }
        };
        IdleGuard {
            table: self,
            slot,
            generation,
        }
    }

    /// Shuts down every expired socket and forgets it; returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.refresh();
        self.expire(|e| e.deadline_ms <= now)
    }

    /// The drain started: shuts down the connections registered with
    /// [`IdleTable::register_until_drain`] as if their deadline had passed; returns how many.
    pub fn expire_on_drain(&self) -> usize {
        self.expire(|e| e.on_drain)
    }

    fn expire(&self, due: impl Fn(&Entry) -> bool) -> usize {
        let mut expired = 0;
        let mut entries = self.entries.borrow_mut();
        let mut free = self.free.borrow_mut();
        for (i, slot) in entries.iter_mut().enumerate() {
            if let Some(e) = slot {
                if due(e) {
                    // Only the reading side: the wait wakes and the read sees end of stream,
                    // while the sending side stays open for the owner's goodbye on its way out
                    // (TLS close_notify, RFC 8446 §6.1; the FIN follows with the close).
                    // SAFETY: the fd belongs to a live connection: its guard removes the entry
                    // before the connection's socket can be closed. shutdown(2) only ends the
                    // stream; the owner still closes the descriptor.
                    unsafe {
                        libc::shutdown(e.fd, libc::SHUT_RD);
                    }
                    *slot = None;
                    free.push(i);
                    expired += 1;
                }
            }
        }
        expired
    }

    /// Connections currently registered.
    pub fn len(&self) -> usize {
        self.entries.borrow().iter().filter(|e| e.is_some()).count()
    }

    /// Whether no connection is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes its connection from the idle table when dropped.
pub struct IdleGuard<'a> {
    table: &'a IdleTable,
    slot: usize,
    generation: u64,
}

impl IdleGuard<'_> {
    /// Whether the sweeper shut the connection down: its deadline passed (the owner's read then
    /// ends, and this tells a timeout from the client's own close).
    pub fn expired(&self) -> bool {
        let entries = self.table.entries.borrow();
        !entries
            .get(self.slot)
            .is_some_and(|e| e.is_some_and(|e| e.generation == self.generation))
    }
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        let mut entries = self.table.entries.borrow_mut();
        if let Some(slot) = entries.get_mut(self.slot) {
            // a swept entry's slot may already hold another connection's registration
            if slot.is_some_and(|e| e.generation == self.generation) {
                *slot = None;
                self.table.free.borrow_mut().push(self.slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn expired_sockets_are_shut_down_and_live_ones_kept() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (sa, _) = l.accept().unwrap();
        let b = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (sb, _) = l.accept().unwrap();
        let t = IdleTable::new(Duration::from_millis(80));
        let _ga = t.register(sa.as_raw_fd(), Duration::ZERO);
        let gb = t.register(sb.as_raw_fd(), Duration::from_secs(60));
        assert!(!_ga.expired() && !gb.expired());
        assert_eq!(t.sweep(), 1);
        assert_eq!(t.len(), 1);
        assert!(_ga.expired(), "the swept registration knows it");
        assert!(!gb.expired());
        let mut byte = [0u8; 1];
        // the owner's pending read wakes with end of stream, its sending side still open
        let mut sa = sa;
        sa.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(
            sa.read(&mut byte).unwrap(),
            0,
            "expired socket reads end of stream"
        );
        use std::io::Write;
        sa.write_all(b"x").unwrap();
        // the peer gets the goodbye, then end of stream once the owner closes
        drop(sa);
        let mut a = a;
        a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(a.read(&mut byte).unwrap(), 1);
        assert_eq!(
            a.read(&mut byte).unwrap(),
            0,
            "expired peer sees end of stream"
        );
        drop(gb);
        assert!(t.is_empty());
        // freed slots are reused
        let _g = t.register(sb.as_raw_fd(), Duration::from_secs(60));
        assert_eq!(t.entries.borrow().len(), 2);
        drop(b);
    }

    #[test]
    fn a_swept_guard_does_not_clear_the_slot_s_next_owner() {
        let t = IdleTable::new(Duration::from_millis(80));
        let old = t.register(-1, Duration::ZERO);
        assert_eq!(t.sweep(), 1); // frees the slot; the old guard is still alive
        let new = t.register(-2, Duration::from_secs(60));
        drop(old);
        assert_eq!(t.len(), 1, "the newer registration survives");
        drop(new);
        assert!(t.is_empty());
    }
}
