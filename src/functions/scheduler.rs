//! One local function's scheduler: admission, the FIFO queue, which process runs what, and
//! every deadline. Sans-IO.
//!
//! Owns the state machine of a function's invocations and processes ("sandboxes"): an
//! invocation arrives ([`Scheduler::arrive`]) and is dispatched to an idle process, queued
//! behind a process it caused to start (a cold start), queued for a busy one, or throttled
//! (429); processes go Starting (spawned, not yet parked in `invocation/next`) → Idle → Busy →
//! AwaitingNext (answered, not yet back in `next`: not dispatchable) → Idle ..., and Stopping once told to stop (SIGTERM, SIGKILL after [`STOP_GRACE`]) until they
//! are reaped. Leaves out all I/O: it never touches a process, a socket or a clock. Every call
//! takes `now` and appends what the caller must do to `out` ([`Action`]: spawn, hand an
//! invocation to a process, answer an invocation with a failure, kill, terminate), so the
//! tests drive it with a fake clock and fake processes.
//!
//! Data flow: the service ([`super::service`]) feeds it what happened (arrivals, spawn results,
//! a process's first `next`, responses, init errors, exits, ticks, reloads) and carries out the
//! actions, which may in turn produce events (a failed spawn). Limits: a function never has
//! more than `concurrency` processes alive (reaped or not: a killed process still counts until
//! it is gone, so "at most N at once" holds for real processes), and never more than `queue`
//! invocations waiting beyond those its starting processes will take.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::actions::{
    Action, Admission, Failure, InvId, Limits, SandboxId, INIT_TIMEOUT, STOP_GRACE,
};
use super::FunctionStats;

/// Where a process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Spawned; has not called `invocation/next` yet.
    Starting { since: Instant, cold: bool },
    /// Parked in `invocation/next` since then.
    Idle { since: Instant },
    /// Answered its invocation at `since` and has not called `invocation/next` again: not
    /// dispatchable until it does (bounded by `idle`).
    AwaitingNext { since: Instant },
    /// Running `inv` until `deadline`.
    Busy { inv: InvId, deadline: Instant },
    /// Told to stop at `since` (`killed`: SIGKILL sent), not reaped yet.
    Stopping { since: Instant, killed: bool },
}

#[derive(Debug)]
struct Slot {
    id: SandboxId,
    generation: u64,
    state: State,
    /// Stop once the invocation it runs is done (an older generation, or a retired function).
    retire: bool,
}

#[derive(Debug)]
struct Waiting {
    inv: InvId,
    since: Instant,
    /// Already lost one process that failed to start.
    retried: bool,
}

/// One local function's invocations and processes.
#[derive(Debug)]
pub struct Scheduler {
    limits: Limits,
    generation: u64,
    slots: Vec<Slot>,
    queue: VecDeque<Waiting>,
    /// No new invocations: serve the queue, then stop every process.
    retired: bool,
    next_sandbox: SandboxId,
    stats: Arc<FunctionStats>,
}

impl Scheduler {
    /// `first_sandbox`: where this function's process numbers start (unique per service).
    pub fn new(limits: Limits, stats: Arc<FunctionStats>, first_sandbox: SandboxId) -> Scheduler {
        Scheduler {
            limits,
            generation: 0,
            slots: Vec::new(),
            queue: VecDeque::new(),
            retired: false,
            next_sandbox: first_sandbox,
            stats,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn stats(&self) -> &Arc<FunctionStats> {
        &self.stats
    }

    /// Whether `sandbox` is one of this function's live processes.
    pub fn owns(&self, sandbox: SandboxId) -> bool {
        self.slots.iter().any(|s| s.id == sandbox)
    }

    /// The invocation `sandbox` runs now.
    pub fn running(&self, sandbox: SandboxId) -> Option<InvId> {
        self.slots.iter().find_map(|s| match s.state {
            State::Busy { inv, .. } if s.id == sandbox => Some(inv),
            _ => None,
        })
    }

    /// Nothing queued, nothing running, no process left: a retired function can go.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.slots.is_empty()
    }

    /// Invocations queued or running.
    pub fn in_flight(&self) -> usize {
        self.queue.len() + self.busy()
    }

    /// Admission of a new invocation (see the module doc).
    pub fn arrive(&mut self, inv: InvId, now: Instant, out: &mut Vec<Action>) -> Admission {
        if self.retired {
            return Admission::Throttled;
        }
        let idle = self.idle_current().is_some();
        let room_to_spawn = self.slots.len() < self.limits.concurrency as usize;
        // processes about to take a queued invocation (starting, or answered and on their
        // way back to `next`) cover as many; the new one must fit in `queue` beyond them
        let beyond = (self.queue.len() + 1).saturating_sub(self.takers());
        if !idle && !room_to_spawn && beyond > self.limits.queue as usize {
            return Admission::Throttled;
        }
        self.queue.push_back(Waiting {
            inv,
            since: now,
            retried: false,
        });
        self.pump(now, out);
        self.publish();
        if self.queue.iter().any(|w| w.inv == inv) {
            Admission::Queued
        } else {
            Admission::Dispatched
        }
    }

    /// The result of an [`Action::Spawn`]: `Err` carries why it could not start.
    pub fn spawned(
        &mut self,
        sandbox: SandboxId,
        result: Result<(), String>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match result {
            Err(why) => {
                if let Some(i) = self.slots.iter().position(|s| s.id == sandbox) {
                    self.slots.remove(i);
                    self.start_failed(why, now, out);
                }
            }
            // a cold start is a process started for an invocation: counted once it runs
            Ok(()) => {
                let cold = self.slots.iter().any(|s| {
                    s.id == sandbox && matches!(s.state, State::Starting { cold: true, .. })
                });
                if cold {
                    self.stats.cold_starts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.pump(now, out);
        self.publish();
    }

    /// The process called `invocation/next`: every call makes it dispatchable again; the
    /// first also ends its start ([`Action::Ready`]).
    pub fn ready(&mut self, sandbox: SandboxId, now: Instant, out: &mut Vec<Action>) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.id == sandbox) else {
            return;
        };
        match slot.state {
            State::Starting { since, cold } => {
                slot.state = State::Idle { since: now };
                out.push(Action::Ready {
                    sandbox,
                    cold,
                    took: now.saturating_duration_since(since),
                });
            }
            State::AwaitingNext { .. } => slot.state = State::Idle { since: now },
            State::Idle { .. } | State::Busy { .. } | State::Stopping { .. } => return,
        }
        self.pump(now, out);
        self.publish();
    }

    /// The process answered `inv` (response or function error). False when `inv` is not what
    /// it runs (answered already: timed out).
    pub fn finished(
        &mut self,
        sandbox: SandboxId,
        inv: InvId,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(slot) = self.slots.iter_mut().find(|s| s.id == sandbox) else {
            return false;
        };
        if !matches!(slot.state, State::Busy { inv: i, .. } if i == inv) {
            return false;
        }
        if slot.retire {
            slot.state = State::Stopping {
                since: now,
                killed: false,
            };
            out.push(Action::Terminate { sandbox });
        } else {
            slot.state = State::AwaitingNext { since: now };
        }
        self.pump(now, out);
        self.publish();
        true
    }

    /// The process posted `init/error` (`why`: what it said): it is killed; an invocation it
    /// ran fails with that.
    pub fn init_failed(
        &mut self,
        sandbox: SandboxId,
        why: String,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.id == sandbox) else {
            return;
        };
        let was = slot.state;
        if matches!(was, State::Stopping { killed: true, .. }) {
            return;
        }
        slot.state = State::Stopping {
            since: now,
            killed: true,
        };
        out.push(Action::Kill { sandbox });
        match was {
            State::Starting { .. } => self.start_failed(why, now, out),
            State::Busy { inv, .. } => out.push(Action::Fail {
                inv,
                failure: Failure::InitError(why),
            }),
            State::Idle { .. } | State::AwaitingNext { .. } | State::Stopping { .. } => {}
        }
        self.pump(now, out);
        self.publish();
    }

    /// The process exited and was reaped.
    pub fn exited(&mut self, sandbox: SandboxId, now: Instant, out: &mut Vec<Action>) {
        let Some(i) = self.slots.iter().position(|s| s.id == sandbox) else {
            return;
        };
        let slot = self.slots.remove(i);
        match slot.state {
            State::Busy { inv, .. } => out.push(Action::Fail {
                inv,
                failure: Failure::ExitError,
            }),
            State::Starting { .. } => {
                self.start_failed("the process exited before it was ready".into(), now, out)
            }
            State::Idle { .. } | State::AwaitingNext { .. } | State::Stopping { .. } => {}
        }
        self.pump(now, out);
        self.publish();
    }

    /// Deadlines: running past `timeout`, starting past `init_timeout`, waiting past
    /// `timeout` (for a busy process; waiting for a starting one is bounded by its start),
    /// idle past `idle`, stopping past [`STOP_GRACE`].
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let limits = self.limits;
        let mut start_failures = Vec::new();
        for slot in &mut self.slots {
            match slot.state {
                State::Busy { inv, deadline } if deadline <= now => {
                    slot.state = State::Stopping {
                        since: now,
                        killed: true,
                    };
                    out.push(Action::Kill { sandbox: slot.id });
                    out.push(Action::Fail {
                        inv,
                        failure: Failure::TimedOut {
                            timeout: limits.timeout,
                            waited: false,
                        },
                    });
                }
                State::Starting { since, .. } if since + limits.init_timeout <= now => {
                    slot.state = State::Stopping {
                        since: now,
                        killed: true,
                    };
                    out.push(Action::Kill { sandbox: slot.id });
                    start_failures.push(format!(
                        "the process did not call invocation/next within {} ms",
                        limits.init_timeout.as_millis()
                    ));
                }
                State::Idle { since } | State::AwaitingNext { since }
                    if since + limits.idle <= now =>
                {
                    slot.state = State::Stopping {
                        since: now,
                        killed: false,
                    };
                    out.push(Action::Terminate { sandbox: slot.id });
                }
                State::Stopping {
                    since,
                    killed: false,
                } if since + STOP_GRACE <= now => {
                    slot.state = State::Stopping {
                        since,
                        killed: true,
                    };
                    out.push(Action::Kill { sandbox: slot.id });
                }
                // killed but not reaped after STOP_GRACE: a process that left its group
                // (or a group whose leader exited) is sent SIGKILL again, every grace
                State::Stopping {
                    since,
                    killed: true,
                } if since + STOP_GRACE <= now => {
                    slot.state = State::Stopping {
                        since: now,
                        killed: true,
                    };
                    out.push(Action::Kill { sandbox: slot.id });
                }
                _ => {}
            }
        }
        for why in start_failures {
            self.start_failed(why, now, out);
        }
        // Waiting past the timeout for a busy process. The oldest ones, which the starting
        // processes will take, are bounded by the init limit instead (Lambda does not count
        // init against the function's timeout).
        // Any entry, whatever its position, waits at most `max_queue_wait` in total.
        let covered = self.starting_current();
        let max_wait = max_queue_wait(&limits);
        let mut i = 0;
        while let Some(w) = self.queue.get(i) {
            let limit = if i < covered {
                max_wait
            } else {
                limits.timeout
            };
            if w.since + limit > now {
                i += 1;
                continue;
            }
            let inv = w.inv;
            self.queue.remove(i);
            out.push(Action::Fail {
                inv,
                failure: Failure::TimedOut {
                    timeout: limits.timeout,
                    waited: true,
                },
            });
        }
        self.pump(now, out);
        self.publish();
    }

    /// A reload changed the limits (applied in place).
    /// Lower `concurrency`: idle processes beyond it stop now, busy ones keep their call but
    /// no new invocation is dispatched while `concurrency` are busy.
    pub fn set_limits(&mut self, limits: Limits, now: Instant, out: &mut Vec<Action>) {
        self.limits = limits;
        let live = |s: &Slot| !matches!(s.state, State::Stopping { .. });
        let mut excess = self
            .slots
            .iter()
            .filter(|s| live(s))
            .count()
            .saturating_sub(limits.concurrency as usize);
        for slot in &mut self.slots {
            if excess == 0 {
                break;
            }
            if let State::Idle { .. } | State::AwaitingNext { .. } = slot.state {
                slot.state = State::Stopping {
                    since: now,
                    killed: false,
                };
                out.push(Action::Terminate { sandbox: slot.id });
                excess -= 1;
            }
        }
        self.pump(now, out);
        self.publish();
    }

    /// A reload changed how processes are started: new invocations go to processes of a new
    /// generation; the old ones finish what they run, then stop.
    pub fn new_generation(&mut self, now: Instant, out: &mut Vec<Action>) {
        // the entries the old generation's starting processes covered lose that cover: their
        // wait for a free process starts now, not when they arrived
        let covered = self.starting_current();
        for w in self.queue.iter_mut().take(covered) {
            w.since = now;
        }
        self.generation += 1;
        self.retire_older(now, out);
        self.pump(now, out);
        self.publish();
    }

    /// The function was removed (or the service stops): no new invocations; the queue is
    /// served, then every process stops.
    pub fn retire(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.retired = true;
        self.pump(now, out);
        self.publish();
    }

    /// A removed function is configured again before its processes are gone: it takes
    /// invocations again under `limits`; `spec_changed`: its processes start differently now
    /// (a new generation). Processes already told to stop still count against `concurrency`
    /// until they are gone.
    pub fn unretire(
        &mut self,
        limits: Limits,
        spec_changed: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.retired = false;
        if spec_changed {
            self.new_generation(now, out);
        }
        self.set_limits(limits, now, out);
    }

    /// Stops every process now (SIGTERM; SIGKILL after [`STOP_GRACE`] on later ticks) and
    /// fails nothing: the caller answers what is left.
    pub fn stop_all(&mut self, now: Instant, out: &mut Vec<Action>) -> Vec<InvId> {
        self.retired = true;
        let mut left: Vec<InvId> = self.queue.drain(..).map(|w| w.inv).collect();
        for slot in &mut self.slots {
            if let State::Busy { inv, .. } = slot.state {
                left.push(inv);
            }
            if !matches!(slot.state, State::Stopping { .. }) {
                slot.state = State::Stopping {
                    since: now,
                    killed: false,
                };
                out.push(Action::Terminate { sandbox: slot.id });
            }
        }
        self.publish();
        left
    }

    /// Dispatches what can be dispatched, spawns what the queue needs, stops what is no
    /// longer needed.
    fn pump(&mut self, now: Instant, out: &mut Vec<Action>) {
        while !self.queue.is_empty() && self.busy() < self.limits.concurrency as usize {
            let Some(i) = self.idle_current() else { break };
            let Some(w) = self.queue.pop_front() else {
                break;
            };
            let deadline = now + self.limits.timeout;
            if let Some(slot) = self.slots.get_mut(i) {
                slot.state = State::Busy {
                    inv: w.inv,
                    deadline,
                };
                out.push(Action::Dispatch {
                    inv: w.inv,
                    sandbox: slot.id,
                    deadline,
                });
            }
        }
        while self.queue.len() > self.takers()
            && self.slots.len() < self.limits.concurrency as usize
        {
            let sandbox = self.next_sandbox;
            self.next_sandbox += 1;
            self.slots.push(Slot {
                id: sandbox,
                generation: self.generation,
                state: State::Starting {
                    since: now,
                    cold: true,
                },
                retire: false,
            });
            out.push(Action::Spawn {
                sandbox,
                generation: self.generation,
                cold: true,
            });
        }
        if self.retired && self.queue.is_empty() {
            self.retire_all(now, out);
        }
    }

    /// Idle and starting processes of older generations stop; busy ones after their call.
    fn retire_older(&mut self, now: Instant, out: &mut Vec<Action>) {
        let generation = self.generation;
        for slot in self.slots.iter_mut().filter(|s| s.generation < generation) {
            retire_slot(slot, now, out);
        }
    }

    fn retire_all(&mut self, now: Instant, out: &mut Vec<Action>) {
        for slot in &mut self.slots {
            retire_slot(slot, now, out);
        }
    }

    /// A process meant for the queue failed to start (`why`): the oldest invocation it left
    /// uncovered gets one more chance, then fails.
    fn start_failed(&mut self, why: String, _now: Instant, out: &mut Vec<Action>) {
        if self.queue.len() <= self.starting_current() {
            return;
        }
        let Some(head) = self.queue.front_mut() else {
            return;
        };
        if !head.retried {
            head.retried = true;
            return;
        }
        let inv = head.inv;
        self.queue.pop_front();
        out.push(Action::Fail {
            inv,
            failure: Failure::InitError(why),
        });
    }

    /// The most recently parked idle process of the current generation (the others then
    /// reach their idle limit and stop: the pool shrinks to what the load needs).
    fn idle_current(&self) -> Option<usize> {
        let mut best: Option<(usize, Instant)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if let State::Idle { since } = s.state {
                if s.generation == self.generation
                    && !s.retire
                    && best.is_none_or(|(_, b)| since > b)
                {
                    best = Some((i, since));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    fn starting_current(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| {
                s.generation == self.generation
                    && !s.retire
                    && matches!(s.state, State::Starting { .. })
            })
            .count()
    }

    /// Processes that will take a queued invocation without a spawn: starting ones of the
    /// current generation, and those that answered and have not called `next` again yet.
    fn takers(&self) -> usize {
        let awaiting = self
            .slots
            .iter()
            .filter(|s| {
                s.generation == self.generation
                    && !s.retire
                    && matches!(s.state, State::AwaitingNext { .. })
            })
            .count();
        self.starting_current() + awaiting
    }

    fn busy(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::Busy { .. }))
            .count()
    }

    /// The live numbers (Relaxed: independent gauges, see [`FunctionStats`]).
    fn publish(&self) {
        self.stats
            .concurrent
            .store(self.busy() as u64, Ordering::Relaxed);
        self.stats
            .queued
            .store(self.queue.len() as u64, Ordering::Relaxed);
        self.stats
            .processes
            .store(self.slots.len() as u64, Ordering::Relaxed);
    }
}

/// The longest any invocation waits in the queue: its own `timeout` behind busy processes
/// plus twice the init limit (a process meant for it may fail to start once, then it gets one
/// more). With the production limits, [`crate::config::functions::local_answer_bound`] is this
/// plus the run.
pub fn max_queue_wait(limits: &Limits) -> Duration {
    limits
        .timeout
        .saturating_add(limits.init_timeout.saturating_mul(2))
}

/// Stops an idle or starting process now; a busy one after its call.
fn retire_slot(slot: &mut Slot, now: Instant, out: &mut Vec<Action>) {
    match slot.state {
        State::Idle { .. } | State::AwaitingNext { .. } | State::Starting { .. } => {
            slot.state = State::Stopping {
                since: now,
                killed: false,
            };
            out.push(Action::Terminate { sandbox: slot.id });
        }
        State::Busy { .. } => slot.retire = true,
        State::Stopping { .. } => {}
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
