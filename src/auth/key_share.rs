//! One JWT authorizer's key set, shared by every worker of the process: std only (no runtime).
//!
//! Owns: [`SharedKeys`], the process-wide state of one authorizer's keys: the current
//! `Arc<KeySet>` and when it was fetched, who fetches now, when the last unknown-`kid` refetch
//! started, the failure streak — and the decision whether a worker may start a fetch
//! ([`SharedKeys::claim`]). Leaves out: the fetch itself and the waiting (see [`super::keys`],
//! which runs on a worker), parsing (see [`super::jwks`]).
//!
//! Where it lives: the compiled `JwtAuthorizer` holds one, created by the config compile, so
//! every worker of a generation sees the same one. Before a new generation is published (a
//! reload, or new DNS answers), the control thread puts the served config's `SharedKeys` into
//! the new config when the key source is unchanged (`super::carry::keep_shared`), so the set
//! carries over and every worker — also one that skipped a generation — takes that same one.
//!
//! Concurrency: the state is behind a [`Mutex`] taken only on slow paths (no set yet, a stale
//! set, an unknown `kid`, a fetch's end; never twice per request). The hot path reads one
//! atomic, [`SharedKeys::published`]: a worker keeps its own `Arc<KeySet>` copy with the
//! generation number it was published as and locks only when the number moved. The publisher
//! writes the set inside the lock and then stores the number with `Release`; a worker loads it
//! with `Acquire`, so seeing number g it also sees everything written before g was stored (and
//! it copies the set under the lock anyway, recording the number read there, so its copy and
//! its number always agree). `completed` (fetches ended, success or not) is likewise written
//! under the lock with `Release` and read with `Acquire` by the workers waiting for a fetch.
//! At most one fetch is in flight process-wide: claiming sets `in_flight` under the lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::jwks::KeySet;
use crate::config::auth::UNKNOWN_KID_REFETCH;
use crate::config::auth_jwt::JWKS_FETCH_TIMEOUT;

/// After a failed fetch, no new one starts for this long (requests without any key set get
/// 500 meanwhile; requests with the last good set are not affected).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// A fetch claimed longer ago than this is taken for abandoned (its worker stopped without
/// ending it) and may be claimed again: a fetch makes at most two GETs (discovery, then the
/// key set) of [`JWKS_FETCH_TIMEOUT`] each.
pub const FETCH_DEADLINE: Duration = Duration::from_secs(2 * JWKS_FETCH_TIMEOUT.as_secs() + 1);

/// The process-wide key set of one JWT authorizer (see the module doc).
pub struct SharedKeys {
    /// The authorizer's name, for log lines.
    name: Box<str>,
    /// The generation number of the set in `slot` (0: none yet); see the module doc.
    published: AtomicU64,
    /// Fetches ended (successfully or not); waiters wait for it to move.
    completed: AtomicU64,
    /// Fetches started (tests, diagnostics).
    started: AtomicU64,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    set: Option<Arc<KeySet>>,
    /// `published` when `set` was stored.
    generation: u64,
    /// When `set` was fetched.
    fetched: Option<Instant>,
    /// When the fetch in flight was claimed (`None`: none in flight).
    in_flight: Option<Instant>,
    /// When the last fetch failed, while the failure streak lasts.
    failed_at: Option<Instant>,
    /// When the last refetch for an unknown `kid` started.
    kid_refetch_at: Option<Instant>,
}

/// What a worker needs a fetch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The first set (none yet).
    First,
    /// A refresh of a set older than this.
    Refresh(Duration),
    /// A token named a `kid` missing from the set of this generation number.
    Kid { have: u64 },
}

/// The answer to [`SharedKeys::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller starts the fetch; `ticket`: wait for `completed` to move past it.
    Start { ticket: u64 },
    /// Another fetch is in flight: wait for `completed` to move past `ticket`.
    InFlight { ticket: u64 },
    /// Nothing to fetch: a set newer than the caller's, or fresh enough, is published.
    Fresh,
    /// A fetch failed less than [`RETRY_AFTER_FAILURE`] ago.
    Failed,
    /// The last unknown-`kid` refetch was less than [`UNKNOWN_KID_REFETCH`] ago.
    TooSoon,
}

/// A worker's copy of the published set.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub set: Option<Arc<KeySet>>,
    pub generation: u64,
    pub fetched: Option<Instant>,
}

impl SharedKeys {
    pub fn new(name: &str) -> SharedKeys {
        SharedKeys {
            name: name.into(),
            published: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            started: AtomicU64::new(0),
            slot: Mutex::new(Slot::default()),
        }
    }

    /// A poisoned lock only means a panic elsewhere while holding it; the slot stays
    /// consistent (every write to it is a plain store), so it is used as is.
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation number of the published set (the hot path's one atomic load).
    pub fn published(&self) -> u64 {
        // Acquire pairs with the Release store in `finish` (see the module doc)
        self.published.load(Ordering::Acquire)
    }

    /// Fetches ended so far (see [`Claim`]'s tickets).
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Fetches started so far, process-wide.
    pub fn fetches(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// The published set.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            set: s.set.clone(),
            generation: s.generation,
            fetched: s.fetched,
        }
    }

    /// Whether the caller may start a fetch for `want` (see [`Claim`]); a `Start` marks the
    /// fetch in flight, and the caller must end it with [`SharedKeys::finish`].
    pub fn claim(&self, want: Want, now: Instant) -> Claim {
        let mut s = self.lock();
        let ticket = self.completed.load(Ordering::Acquire);
        let abandoned = s
            .in_flight
            .is_some_and(|at| now.saturating_duration_since(at) >= FETCH_DEADLINE);
        if s.in_flight.is_some() && !abandoned {
            return Claim::InFlight { ticket };
        }
        let fresh = match want {
            Want::First => s.set.is_some(),
            Want::Refresh(refresh) => s
                .fetched
                .is_some_and(|at| now.saturating_duration_since(at) < refresh),
            Want::Kid { have } => s.generation != have,
        };
        if fresh {
            return Claim::Fresh;
        }
        let failed = s
            .failed_at
            .is_some_and(|at| now.saturating_duration_since(at) < RETRY_AFTER_FAILURE);
        if failed {
            return Claim::Failed;
        }
        if let Want::Kid { .. } = want {
            let recent = s
                .kid_refetch_at
                .is_some_and(|at| now.saturating_duration_since(at) < UNKNOWN_KID_REFETCH);
            if recent {
                return Claim::TooSoon;
            }
            s.kid_refetch_at = Some(now);
        }
        s.in_flight = Some(now);
        self.started.fetch_add(1, Ordering::Relaxed);
        Claim::Start { ticket }
    }

    /// Ends the fetch claimed by [`SharedKeys::claim`]: a set is published, a failure keeps
    /// the last good set (one stderr line per failure streak, process-wide).
    pub fn finish(&self, got: Result<KeySet, String>) {
        let mut s = self.lock();
        match got {
            Ok(set) => {
                s.set = Some(Arc::new(set));
                s.fetched = Some(Instant::now());
                s.generation = s.generation.wrapping_add(1);
                // Release: the set above is visible to whoever loads this number (Acquire)
                self.published.store(s.generation, Ordering::Release);
                if s.failed_at.take().is_some() {
                    eprintln!(
                        "tollgate: jwt authorizer {}: key set fetched again",
                        self.name
                    );
                }
            }
            Err(why) => {
                if s.failed_at.is_none() {
                    let kept = if s.set.is_some() {
                        "the last good key set keeps serving"
                    } else {
                        "no key set yet: its routes answer 500"
                    };
                    eprintln!(
                        "tollgate: jwt authorizer {}: key set fetch failed: {why} ({kept})",
                        self.name
                    );
                }
                s.failed_at = Some(Instant::now());
            }
        }
        s.in_flight = None;
        // Release, under the lock: a waiter seeing the new count sees the outcome
        self.completed.fetch_add(1, Ordering::Release);
    }
}

impl std::fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeys")
            .field("name", &self.name)
            .field("published", &self.published())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_then_fresh_failed_and_too_soon() {
        let k = SharedKeys::new("a");
        let t0 = Instant::now();
        assert_eq!(k.claim(Want::First, t0), Claim::Start { ticket: 0 });
        assert_eq!(k.claim(Want::First, t0), Claim::InFlight { ticket: 0 });
        k.finish(Ok(KeySet::default()));
        assert_eq!((k.published(), k.completed()), (1, 1));
        assert_eq!(k.claim(Want::First, t0), Claim::Fresh);
        // a kid missing from generation 0 (older than the published 1): verify again
        assert_eq!(k.claim(Want::Kid { have: 0 }, t0), Claim::Fresh);
        assert_eq!(
            k.claim(Want::Kid { have: 1 }, t0),
            Claim::Start { ticket: 1 }
        );
        k.finish(Err("down".into()));
        assert_eq!(k.published(), 1);
        assert_eq!(
            k.claim(Want::Kid { have: 1 }, Instant::now()),
            Claim::Failed
        );
        let later = Instant::now() + RETRY_AFTER_FAILURE;
        assert_eq!(k.claim(Want::Kid { have: 1 }, later), Claim::TooSoon);
        let much_later = later + UNKNOWN_KID_REFETCH;
        assert_eq!(
            k.claim(Want::Kid { have: 1 }, much_later),
            Claim::Start { ticket: 2 }
        );
        // an abandoned fetch may be claimed again after the deadline
        assert_eq!(
            k.claim(Want::First, much_later),
            Claim::InFlight { ticket: 2 }
        );
        let refresh = Want::Refresh(Duration::from_secs(1));
        assert!(matches!(
            k.claim(refresh, much_later + FETCH_DEADLINE),
            Claim::Start { .. }
        ));
        assert_eq!(k.fetches(), 4);
    }
}
