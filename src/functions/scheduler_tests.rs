//! The scheduler driven by a fake clock and fake processes: every action checked.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn limits(concurrency: u32, queue: u32) -> Limits {
    Limits {
        concurrency,
        queue,
        timeout: 1000 * MS,
        idle: 5000 * MS,
        init_timeout: 800 * MS,
    }
}

/// The failure of invocation `inv` past the 1000 ms timeout of [`limits`] (`waited`: spent
/// waiting for a free process, not running in one).
fn timed_out(inv: InvId, waited: bool) -> Action {
    Action::Fail {
        inv,
        failure: Failure::TimedOut {
            timeout: 1000 * MS,
            waited,
        },
    }
}

/// A scheduler plus a fake clock and the actions of the last call.
struct Rig {
    s: Scheduler,
    t0: Instant,
    now: Instant,
    out: Vec<Action>,
}

impl Rig {
    fn new(l: Limits) -> Rig {
        let t0 = Instant::now();
        Rig {
            s: Scheduler::new(l, Arc::new(FunctionStats::default()), 1),
            t0,
            now: t0,
            out: Vec::new(),
        }
    }
    /// A rig whose one process (sandbox 1) runs invocation 1: arrived, spawned and ready at
    /// 0, those actions taken.
    fn running(l: Limits) -> Rig {
        let mut r = Rig::new(l);
        r.arrive(1);
        r.spawn_ok();
        r.ready(1);
        r.take();
        r
    }
    fn at(&mut self, ms: u64) {
        self.now = self.t0 + Duration::from_millis(ms);
    }
    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }
    fn arrive(&mut self, inv: InvId) -> Admission {
        self.s.arrive(inv, self.now, &mut self.out)
    }
    /// Spawns report success; returns the spawned ids.
    fn spawn_ok(&mut self) -> Vec<SandboxId> {
        let spawns: Vec<SandboxId> = self
            .out
            .iter()
            .filter_map(|a| match a {
                Action::Spawn { sandbox, .. } => Some(*sandbox),
                _ => None,
            })
            .collect();
        for &sb in &spawns {
            self.s.spawned(sb, Ok(()), self.now, &mut self.out);
        }
        spawns
    }
    fn ready(&mut self, sb: SandboxId) {
        self.s.ready(sb, self.now, &mut self.out);
    }
    /// The process answers `inv` and calls `invocation/next` again, as a runtime does.
    fn finish(&mut self, sb: SandboxId, inv: InvId) -> bool {
        let ok = self.s.finished(sb, inv, self.now, &mut self.out);
        self.s.ready(sb, self.now, &mut self.out);
        ok
    }
    fn tick(&mut self) {
        self.s.tick(self.now, &mut self.out);
    }
    fn stat(&self) -> (u64, u64, u64, u64) {
        let st = self.s.stats();
        (
            st.concurrent.load(Ordering::Relaxed),
            st.queued.load(Ordering::Relaxed),
            st.processes.load(Ordering::Relaxed),
            st.cold_starts.load(Ordering::Relaxed),
        )
    }
}

fn dispatches(actions: &[Action]) -> Vec<(InvId, SandboxId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch { inv, sandbox, .. } => Some((*inv, *sandbox)),
            _ => None,
        })
        .collect()
}

#[test]
fn cold_start_then_warm_reuse() {
    let mut r = Rig::new(limits(2, 4));
    assert_eq!(r.arrive(10), Admission::Queued);
    assert_eq!(r.spawn_ok(), vec![1]);
    assert_eq!(r.stat(), (0, 1, 1, 1));
    r.take();
    r.at(30);
    r.ready(1);
    let a = r.take();
    assert!(a.contains(&Action::Ready {
        sandbox: 1,
        cold: true,
        took: 30 * MS
    }));
    assert_eq!(
        a.last(),
        Some(&Action::Dispatch {
            inv: 10,
            sandbox: 1,
            deadline: r.t0 + 1030 * MS
        })
    );
    assert_eq!(r.stat(), (1, 0, 1, 1));
    r.at(50);
    assert!(r.finish(1, 10));
    // warm: the idle process takes the next one at once, no spawn
    assert_eq!(r.arrive(11), Admission::Dispatched);
    assert_eq!(dispatches(&r.take()), vec![(11, 1)]);
    assert_eq!(r.stat(), (1, 0, 1, 1));
}

#[test]
fn concurrency_is_never_exceeded_and_the_queue_is_fifo() {
    let mut r = Rig::new(limits(2, 3));
    for inv in 1..=5 {
        assert_eq!(r.arrive(inv), Admission::Queued, "inv {inv}");
    }
    // two processes for five invocations, three beyond them may wait: the sixth is refused
    assert_eq!(r.arrive(6), Admission::Throttled);
    let spawned = r.spawn_ok();
    assert_eq!(spawned.len(), 2);
    assert_eq!(r.stat(), (0, 5, 2, 2));
    r.take();
    r.ready(spawned[0]);
    r.ready(spawned[1]);
    assert_eq!(
        dispatches(&r.take()),
        vec![(1, spawned[0]), (2, spawned[1])]
    );
    assert_eq!(
        r.arrive(7),
        Admission::Throttled,
        "2 busy + 3 queued is full"
    );
    let mut order = Vec::new();
    for _ in 0..3 {
        // whichever finishes, the oldest waiting goes next
        let busy: Vec<(SandboxId, InvId)> = spawned
            .iter()
            .filter_map(|&sb| r.s.running(sb).map(|i| (sb, i)))
            .collect();
        assert!(busy.len() <= 2);
        let (sb, inv) = busy[0];
        assert!(r.finish(sb, inv));
        order.extend(dispatches(&r.take()).into_iter().map(|(i, _)| i));
        assert!(r.stat().0 <= 2 && r.stat().2 <= 2);
    }
    assert_eq!(order, vec![3, 4, 5]);
    assert!(!r.take().iter().any(|a| matches!(a, Action::Spawn { .. })));
}

#[test]
fn queue_zero_refuses_beyond_the_processes() {
    let mut r = Rig::new(limits(1, 0));
    assert_eq!(r.arrive(1), Admission::Queued);
    assert_eq!(r.arrive(2), Admission::Throttled);
    r.spawn_ok();
    r.ready(1);
    assert_eq!(r.arrive(3), Admission::Throttled, "busy, no queue");
}

#[test]
fn a_hung_invocation_is_killed_and_answered_at_its_deadline() {
    let mut r = Rig::running(limits(1, 1));
    r.at(999);
    r.tick();
    assert!(r.take().is_empty());
    r.at(1000);
    r.tick();
    let a = r.take();
    assert!(a.contains(&Action::Kill { sandbox: 1 }));
    assert!(a.contains(&timed_out(1, false)));
    // a late response is refused; the killed process still counts until reaped
    assert!(!r.finish(1, 1));
    assert_eq!(r.stat().2, 1);
    assert_eq!(r.arrive(2), Admission::Queued);
    assert!(
        r.take().is_empty(),
        "no spawn while the killed one is alive"
    );
    r.s.exited(1, r.now, &mut r.out);
    assert_eq!(r.spawn_ok(), vec![2], "replacement once reaped");
}

#[test]
fn a_crash_while_busy_is_an_exit_error() {
    let mut r = Rig::running(limits(1, 1));
    r.s.exited(1, r.now, &mut r.out);
    assert_eq!(
        r.take(),
        vec![Action::Fail {
            inv: 1,
            failure: Failure::ExitError
        }]
    );
    assert_eq!(r.stat(), (0, 0, 0, 1));
}

#[test]
fn waiting_too_long_times_out() {
    let mut r = Rig::running(limits(1, 2));
    r.at(10);
    r.arrive(2);
    r.take();
    r.at(1009);
    r.tick();
    // inv 1 (dispatched at 0) times out at 1000 and is killed; inv 2 waited to 1010
    let a = r.take();
    assert!(a.contains(&timed_out(1, false)));
    assert!(!a.iter().any(|x| matches!(x, Action::Fail { inv: 2, .. })));
    r.at(1010);
    r.tick();
    assert_eq!(r.take(), vec![timed_out(2, true)]);
}

#[test]
fn init_timeout_retries_once_then_fails() {
    let mut r = Rig::new(limits(1, 1));
    r.arrive(1);
    r.spawn_ok();
    r.take();
    r.at(800);
    r.tick();
    assert_eq!(r.take(), vec![Action::Kill { sandbox: 1 }]);
    r.s.exited(1, r.now, &mut r.out);
    let again = r.spawn_ok();
    assert_eq!(
        again,
        vec![2],
        "the waiting invocation gets a second process"
    );
    r.take();
    r.at(900);
    r.s.init_failed(2, "boom".into(), r.now, &mut r.out);
    let a = r.take();
    assert!(a.contains(&Action::Kill { sandbox: 2 }));
    assert!(a.contains(&Action::Fail {
        inv: 1,
        failure: Failure::InitError("boom".into())
    }));
}

#[test]
fn a_failed_spawn_counts_as_a_failed_start() {
    let mut r = Rig::new(limits(1, 1));
    r.arrive(1);
    r.take();
    r.s.spawned(1, Err("command not found: nope".into()), r.now, &mut r.out);
    let a = r.take();
    assert!(matches!(a.as_slice(), [Action::Spawn { sandbox: 2, .. }]));
    r.s.spawned(2, Err("command not found: nope".into()), r.now, &mut r.out);
    assert_eq!(
        r.take(),
        vec![Action::Fail {
            inv: 1,
            failure: Failure::InitError("command not found: nope".into())
        }]
    );
    // neither process ever ran: no cold start counted
    assert_eq!(r.stat(), (0, 0, 0, 0));
}

#[test]
fn idle_processes_stop_scale_to_zero() {
    let mut r = Rig::running(limits(1, 1));
    r.at(100);
    r.finish(1, 1);
    r.take();
    r.at(5099);
    r.tick();
    assert!(r.take().is_empty());
    r.at(5100);
    r.tick();
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: 1 }]);
    r.at(7100);
    r.tick();
    assert_eq!(
        r.take(),
        vec![Action::Kill { sandbox: 1 }],
        "after STOP_GRACE"
    );
    r.s.exited(1, r.now, &mut r.out);
    assert_eq!(r.stat(), (0, 0, 0, 1));
    r.arrive(2);
    assert_eq!(r.spawn_ok(), vec![2]);
    assert_eq!(r.stat().3, 2, "the next call is a cold start");
}

#[test]
fn reload_generation_retires_old_processes_after_their_call() {
    let mut r = Rig::new(limits(2, 2));
    r.arrive(1);
    r.arrive(2);
    r.spawn_ok();
    r.ready(1);
    r.ready(2);
    r.finish(2, 2);
    r.take();
    r.s.new_generation(r.now, &mut r.out);
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: 2 }]);
    assert!(r.s.running(1).is_some());
    // new invocations never go to the old process
    assert_eq!(r.arrive(3), Admission::Queued);
    assert!(
        r.take().is_empty(),
        "both slots still taken by live processes"
    );
    r.s.exited(2, r.now, &mut r.out);
    assert_eq!(
        r.take(),
        vec![Action::Spawn {
            sandbox: 3,
            generation: 1,
            cold: true
        }]
    );
    assert!(r.finish(1, 1));
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: 1 }]);
    r.ready(3);
    assert_eq!(dispatches(&r.take()), vec![(3, 3)]);
}

#[test]
fn limits_change_in_place() {
    let mut r = Rig::new(limits(1, 0));
    r.arrive(1);
    assert_eq!(r.arrive(2), Admission::Throttled);
    r.take();
    r.s.set_limits(limits(2, 0), r.now, &mut r.out);
    assert_eq!(r.arrive(2), Admission::Queued);
    assert_eq!(r.spawn_ok(), vec![2]);
}

#[test]
fn a_retired_function_serves_its_queue_then_stops() {
    let mut r = Rig::new(limits(1, 2));
    r.arrive(1);
    r.arrive(2);
    r.spawn_ok();
    r.ready(1);
    r.take();
    r.s.retire(r.now, &mut r.out);
    assert!(r.take().is_empty());
    assert_eq!(r.arrive(3), Admission::Throttled);
    r.finish(1, 1);
    assert_eq!(dispatches(&r.take()), vec![(2, 1)]);
    r.finish(1, 2);
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: 1 }]);
    assert!(!r.s.is_done());
    r.s.exited(1, r.now, &mut r.out);
    assert!(r.s.is_done());
}

#[test]
fn stop_all_terminates_everything_and_hands_back_what_was_left() {
    let mut r = Rig::new(limits(1, 2));
    r.arrive(1);
    r.arrive(2);
    r.spawn_ok();
    r.ready(1);
    r.take();
    let mut left = r.s.stop_all(r.now, &mut r.out);
    left.sort();
    assert_eq!(left, vec![1, 2]);
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: 1 }]);
}

#[test]
fn waiting_for_a_starting_process_is_bounded_by_init_not_the_timeout() {
    let mut r = Rig::new(Limits {
        init_timeout: 5000 * MS,
        ..limits(1, 2)
    });
    r.arrive(1);
    r.spawn_ok();
    r.arrive(2);
    r.take();
    r.at(1500);
    r.tick();
    // inv 2 is beyond what the starting process will take: its wait is bounded by the timeout
    assert_eq!(r.take(), vec![timed_out(2, true)]);
    // inv 1, covered by the starting process, is still waiting
    r.at(3000);
    r.ready(1);
    assert_eq!(dispatches(&r.take()), vec![(1, 1)]);
}

#[test]
fn an_answered_process_takes_work_only_after_its_next_call() {
    let mut r = Rig::running(limits(1, 4));
    assert!(r.s.finished(1, 1, r.now, &mut r.out));
    // answered, not yet back in `next`: the new invocation waits for it (no cold start,
    // and it is not refused even with no queue room beyond that process)
    r.s.set_limits(limits(2, 0), r.now, &mut r.out);
    r.take();
    assert_eq!(r.arrive(2), Admission::Queued);
    let a = r.take();
    assert!(dispatches(&a).is_empty());
    assert!(
        !a.iter().any(|a| matches!(a, Action::Spawn { .. })),
        "{a:?}"
    );
    r.at(10);
    r.ready(1);
    let a = r.take();
    assert_eq!(dispatches(&a), vec![(2, 1)]);
    // a later `next` is no new start
    assert!(!a.iter().any(|a| matches!(a, Action::Ready { .. })));
    // a process that never comes back to `next` is stopped at the idle limit
    assert!(r.s.finished(1, 2, r.now, &mut r.out));
    r.take();
    r.at(10 + 5000);
    r.tick();
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: 1 }]);
}

#[test]
fn lowering_concurrency_bounds_running_invocations_and_stops_idle_processes() {
    let mut r = Rig::new(limits(3, 10));
    for inv in 1..=3 {
        r.arrive(inv);
    }
    let sbs = r.spawn_ok();
    assert_eq!(sbs.len(), 3);
    for &sb in &sbs {
        r.ready(sb);
    }
    assert_eq!(dispatches(&r.take()).len(), 3);
    // finish one: idle again; then lower concurrency to 1 with two still busy
    let (sb0, inv0) = (sbs[0], r.s.running(sbs[0]).unwrap());
    assert!(r.finish(sb0, inv0));
    r.take();
    r.s.set_limits(limits(1, 10), r.now, &mut r.out);
    assert_eq!(r.take(), vec![Action::Terminate { sandbox: sb0 }]);
    // two busy > 1: a new invocation waits even when one of them finishes
    r.arrive(4);
    let (sb1, inv1) = (sbs[1], r.s.running(sbs[1]).unwrap());
    assert!(r.finish(sb1, inv1));
    assert!(dispatches(&r.take()).is_empty(), "2 busy would exceed 1");
    let (sb2, inv2) = (sbs[2], r.s.running(sbs[2]).unwrap());
    assert!(r.finish(sb2, inv2));
    let d = dispatches(&r.take());
    assert_eq!(d.len(), 1, "one at a time now: {d:?}");
    assert_eq!(r.stat().0, 1);
}

#[test]
fn a_new_generation_restarts_the_wait_of_entries_its_old_starters_covered() {
    let mut r = Rig::new(limits(1, 4));
    r.at(0);
    r.arrive(1);
    r.spawn_ok();
    r.take();
    // the command changes while the old process is still starting, shortly before the
    // timeout: the entry is not timed out for a wait it did not cause
    r.at(900);
    r.s.new_generation(r.now, &mut r.out);
    r.spawn_ok();
    r.take();
    r.at(1100);
    r.tick();
    assert!(
        !r.take().iter().any(|a| matches!(a, Action::Fail { .. })),
        "timed out a queued invocation covered by a retired starting process"
    );
}

#[test]
fn a_killed_process_not_reaped_is_killed_again_every_grace() {
    let mut r = Rig::running(limits(1, 4));
    r.at(1000);
    r.tick();
    assert!(r.take().contains(&Action::Kill { sandbox: 1 }));
    r.at(1000 + 1999);
    r.tick();
    assert!(!r.take().contains(&Action::Kill { sandbox: 1 }));
    r.at(1000 + 2000);
    r.tick();
    assert!(
        r.take().contains(&Action::Kill { sandbox: 1 }),
        "no second SIGKILL"
    );
    // still counted until reaped
    assert_eq!(r.stat().2, 1);
}
