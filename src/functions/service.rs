//! The functions thread: its state, its tick loop, and carrying out the schedulers' actions.
//!
//! Owns [`Service`] (every local function's [`Scheduler`], the invocations waiting for an
//! answer, the live processes with their Runtime API mailboxes) and what the thread's main
//! loop (`super::run`) calls every [`TICK`]: it applies the control messages (a reloaded
//! config, stop), reaps exited processes and lets each scheduler check its deadlines. Everything else is event-driven:
//! the Invoke API ([`super::invoke_api`]) calls [`Service::invoke`], the Runtime API
//! ([`super::runtime_api`]) calls [`Service::next_called`], [`Service::respond`] and
//! [`Service::init_error`]; each feeds the scheduler and carries out what it returns
//! ([`Service::act`]): spawning a process (the one blocking call here: fork/exec, short) with
//! its Runtime API listener and log pumps, handing an invocation to a parked `next`, answering
//! an invocation, killing or terminating a process. Leaves out protocol details (the two API
//! modules) and the process itself ([`super::sandbox`]).
//!
//! All of it is single-threaded: the state sits in a `RefCell` that no borrow holds across an
//! `.await`; answers travel to waiting connections through [`super::signal`]'s oneshots.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::ids::{trace_id, uuid_v4};
use super::logs::{self, LogSink};
use super::runtime_api::{self, Assigned, Mailbox};
use super::sandbox::{Sandbox, SandboxSpec};
use super::scheduler::{Action, Admission, Failure, InvId, Limits, SandboxId, Scheduler};
use super::signal::{oneshot, Latch, Receiver, Sender};
use super::{FunctionStats, StatsList, LOCAL_REGION};
use crate::config::{Config, FunctionConfig, FunctionKind, LocalFunction};

/// How often the thread reaps, checks deadlines and reads control messages.
pub const TICK: Duration = Duration::from_millis(20);

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function's response payload.
    Payload(Bytes),
    /// The function reported an error (`invocation/{id}/error`): the posted body, and the
    /// `Lambda-Runtime-Function-Error-Type` it named.
    FunctionError { body: Bytes, error_type: String },
    /// No answer from the function.
    Failed(Failure),
    /// The service stopped before it ran.
    Stopped,
}

/// Why an invocation was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Throttled,
    Draining,
}

struct Pending {
    request_id: String,
    label: String,
    event: Bytes,
    reply: Sender<Outcome>,
    /// The process running it and its Lambda request id, once dispatched.
    running_on: Option<SandboxId>,
}

struct Func {
    config: FunctionConfig,
    local: LocalFunction,
    sched: Scheduler,
    retired: bool,
    region: String,
}

struct Proc {
    func: Rc<str>,
    sandbox: Sandbox,
    mailbox: Rc<Mailbox>,
    /// The gateway request id of what it runs, or ran last (for its log lines).
    label: Rc<RefCell<String>>,
    /// The invocation it runs (dispatched, not answered yet).
    current: Option<(InvId, String)>,
}

enum Mode {
    Serving,
    /// Stop taking invocations; stop the processes once none is in flight or at `until`.
    Draining {
        until: Instant,
    },
    /// Processes told to stop; the thread ends once all are reaped (or at `until`).
    Stopping {
        until: Instant,
    },
}

struct State {
    funcs: Vec<Func>,
    pending: HashMap<InvId, Pending>,
    procs: HashMap<SandboxId, Proc>,
    next_inv: InvId,
    next_func: u64,
    mode: Mode,
}

/// The functions service's state on its thread.
pub struct Service {
    st: RefCell<State>,
    stats: StatsList,
    log: LogSink,
    /// Set when the thread ends: listeners and connections close.
    pub closed: Latch,
}

impl Service {
    pub fn new(config: &Config, stats: StatsList, log: LogSink) -> Rc<Service> {
        let svc = Rc::new(Service {
            st: RefCell::new(State {
                funcs: Vec::new(),
                pending: HashMap::new(),
                procs: HashMap::new(),
                next_inv: 1,
                next_func: 1,
                mode: Mode::Serving,
            }),
            stats,
            log,
            closed: Latch::default(),
        });
        svc.apply(config);
        svc
    }

    /// A reloaded config (see the module doc of [`super`] for what changes how).
    pub fn apply(self: &Rc<Self>, config: &Config) {
        let now = Instant::now();
        let mut out = Vec::new();
        {
            let mut st = self.st.borrow_mut();
            let State {
                funcs, next_func, ..
            } = &mut *st;
            let locals: Vec<(&FunctionConfig, &LocalFunction)> = config
                .functions
                .iter()
                .filter_map(|f| match &f.kind {
                    FunctionKind::Local(l) => Some((f, l)),
                    FunctionKind::Remote(_) => None,
                })
                .collect();
            for func in funcs.iter_mut().filter(|f| !f.retired) {
                match locals.iter().find(|(f, _)| f.name == func.config.name) {
                    Some((f, l)) => {
                        let spec_changed = !same_process(&func.local, l);
                        func.config = (*f).clone();
                        func.local = (*l).clone();
                        func.region = region_of(l);
                        func.sched.set_limits(Limits::of(f, l), now, &mut out);
                        if spec_changed {
                            func.sched.new_generation(now, &mut out);
                        }
                    }
                    None => {
                        func.retired = true;
                        func.sched.retire(now, &mut out);
                    }
                }
            }
            for (f, l) in locals {
                if funcs.iter().any(|x| !x.retired && x.config.name == f.name) {
                    continue;
                }
                // removed, and back before its processes are gone: the same scheduler takes
                // it again (its processes still count against `concurrency`; its stats go on)
                if let Some(func) = funcs.iter_mut().find(|x| x.config.name == f.name) {
                    let spec_changed = !same_process(&func.local, l);
                    func.retired = false;
                    func.config = f.clone();
                    func.local = l.clone();
                    func.region = region_of(l);
                    func.sched
                        .unretire(Limits::of(f, l), spec_changed, now, &mut out);
                    continue;
                }
                let stats = Arc::new(FunctionStats {
                    name: f.name.clone(),
                    ..FunctionStats::default()
                });
                // Process numbers: a range of 2^32 per function, unique in the service.
                let first = *next_func << 32;
                *next_func += 1;
                funcs.push(Func {
                    config: f.clone(),
                    local: l.clone(),
                    sched: Scheduler::new(Limits::of(f, l), stats, first),
                    retired: false,
                    region: region_of(l),
                });
            }
        }
        self.act(out);
        self.publish_stats();
    }

    /// The stats list holds the functions of the current config, and removed ones until their
    /// processes are gone.
    fn publish_stats(&self) {
        let st = self.st.borrow();
        let list: Vec<Arc<FunctionStats>> =
            st.funcs.iter().map(|f| f.sched.stats().clone()).collect();
        if let Ok(mut s) = self.stats.lock() {
            *s = list;
        }
    }

    /// A new invocation of `name`: its Lambda request id and the answer to come.
    pub fn invoke(
        self: &Rc<Self>,
        name: &str,
        event: Bytes,
        label: String,
    ) -> Result<(String, Receiver<Outcome>), Refusal> {
        let now = Instant::now();
        let mut out = Vec::new();
        let request_id = uuid_v4();
        let rx = {
            let mut st = self.st.borrow_mut();
            if !matches!(st.mode, Mode::Serving) {
                return Err(Refusal::Draining);
            }
            let inv = st.next_inv;
            let State { funcs, pending, .. } = &mut *st;
            let Some(func) = funcs
                .iter_mut()
                .find(|f| !f.retired && f.config.name == name)
            else {
                return Err(Refusal::NotFound);
            };
            let (tx, rx) = oneshot();
            pending.insert(
                inv,
                Pending {
                    request_id: request_id.clone(),
                    label,
                    event,
                    reply: tx,
                    running_on: None,
                },
            );
            if func.sched.arrive(inv, now, &mut out) == Admission::Throttled {
                pending.remove(&inv);
                return Err(Refusal::Throttled);
            }
            st.next_inv += 1;
            rx
        };
        self.act(out);
        Ok((request_id, rx))
    }

    /// Process `sb` called `invocation/next`.
    pub fn next_called(self: &Rc<Self>, sb: SandboxId) {
        let mut out = Vec::new();
        {
            let mut st = self.st.borrow_mut();
            if let Some(f) = st.funcs.iter_mut().find(|f| f.sched.owns(sb)) {
                f.sched.ready(sb, Instant::now(), &mut out);
            }
        }
        self.act(out);
    }

    /// Process `sb` answered its invocation `request_id`; false when that is not what it
    /// runs now (an unknown id, or one answered already: timed out).
    pub fn respond(self: &Rc<Self>, sb: SandboxId, request_id: &str, outcome: Outcome) -> bool {
        let mut out = Vec::new();
        let reply = {
            let mut st = self.st.borrow_mut();
            let State {
                funcs,
                procs,
                pending,
                ..
            } = &mut *st;
            let Some(proc) = procs.get_mut(&sb) else {
                return false;
            };
            let Some((inv, id)) = proc.current.as_ref() else {
                return false;
            };
            if id != request_id {
                return false;
            }
            let inv = *inv;
            let Some(f) = funcs.iter_mut().find(|f| f.sched.owns(sb)) else {
                return false;
            };
            if !f.sched.finished(sb, inv, Instant::now(), &mut out) {
                return false;
            }
            // The label stays until the next invocation: what the process wrote before its
            // answer may be read from its pipe after it.
            proc.current = None;
            pending.remove(&inv).map(|p| p.reply)
        };
        if let Some(tx) = reply {
            tx.send(outcome);
        }
        self.act(out);
        true
    }

    /// Whether process `sb` runs the invocation `request_id` now (dispatched, unanswered).
    pub fn runs(&self, sb: SandboxId, request_id: &str) -> bool {
        self.st
            .borrow()
            .procs
            .get(&sb)
            .and_then(|p| p.current.as_ref())
            .is_some_and(|(_, id)| id == request_id)
    }

    /// Process `sb` posted `init/error` with `body`.
    pub fn init_error(self: &Rc<Self>, sb: SandboxId, body: &[u8]) {
        let mut out = Vec::new();
        {
            let mut st = self.st.borrow_mut();
            let why = String::from_utf8_lossy(body).into_owned();
            if let Some(f) = st.funcs.iter_mut().find(|f| f.sched.owns(sb)) {
                f.sched.init_failed(sb, why, Instant::now(), &mut out);
            }
        }
        self.act(out);
    }

    /// One tick: reap, deadlines, stop progress. True when the thread may end.
    pub fn tick(self: &Rc<Self>) -> bool {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut exited = Vec::new();
        let gone;
        {
            let mut st = self.st.borrow_mut();
            for (&sb, proc) in st.procs.iter_mut() {
                match proc.sandbox.try_wait() {
                    Ok(None) => {}
                    Ok(Some(_)) | Err(_) => exited.push(sb),
                }
            }
            for sb in exited {
                if let Some(proc) = st.procs.remove(&sb) {
                    proc.mailbox.close();
                }
                if let Some(f) = st.funcs.iter_mut().find(|f| f.sched.owns(sb)) {
                    f.sched.exited(sb, now, &mut out);
                }
            }
            for f in st.funcs.iter_mut() {
                f.sched.tick(now, &mut out);
            }
            let before = st.funcs.len();
            st.funcs.retain(|f| !(f.retired && f.sched.is_done()));
            gone = st.funcs.len() != before;
        }
        super::sandbox::reap_dropped();
        if gone {
            self.publish_stats();
        }
        self.act(out);
        self.stop_progress(now)
    }

    /// Stop taking invocations; stop everything once those in flight are done or `grace`
    /// passed.
    pub fn begin_stop(self: &Rc<Self>, grace: Duration) {
        let mut st = self.st.borrow_mut();
        if matches!(st.mode, Mode::Serving) {
            st.mode = Mode::Draining {
                until: Instant::now() + grace,
            };
        }
    }

    fn stop_progress(self: &Rc<Self>, now: Instant) -> bool {
        let mut out = Vec::new();
        let mut left = Vec::new();
        let done = {
            let mut st = self.st.borrow_mut();
            match st.mode {
                Mode::Serving => false,
                Mode::Draining { until } => {
                    let busy = st.funcs.iter().any(|f| f.sched.in_flight() > 0);
                    if !busy || now >= until {
                        for f in st.funcs.iter_mut() {
                            left.extend(f.sched.stop_all(now, &mut out));
                        }
                        st.mode = Mode::Stopping {
                            until: now + super::scheduler::STOP_GRACE + Duration::from_secs(1),
                        };
                    }
                    false
                }
                Mode::Stopping { until } => st.procs.is_empty() || now >= until,
            }
        };
        let replies: Vec<Sender<Outcome>> = {
            let mut st = self.st.borrow_mut();
            left.iter()
                .filter_map(|inv| st.pending.remove(inv).map(|p| p.reply))
                .collect()
        };
        for tx in replies {
            tx.send(Outcome::Stopped);
        }
        self.act(out);
        done
    }

    /// Carries out the schedulers' actions (and those they cause in turn).
    fn act(self: &Rc<Self>, mut todo: Vec<Action>) {
        while !todo.is_empty() {
            let mut more = Vec::new();
            for a in todo {
                self.act_one(a, &mut more);
            }
            todo = more;
        }
    }

    fn act_one(self: &Rc<Self>, action: Action, more: &mut Vec<Action>) {
        match action {
            Action::Spawn { sandbox, .. } => {
                let result = self.spawn(sandbox);
                let mut st = self.st.borrow_mut();
                if let Some(f) = st.funcs.iter_mut().find(|f| f.sched.owns(sandbox)) {
                    if let Err(why) = &result {
                        (self.log)(&format!(
                            "tollgate: function {}: cannot start a process: {why}",
                            f.config.name
                        ));
                    }
                    f.sched.spawned(sandbox, result, Instant::now(), more);
                }
            }
            Action::Dispatch {
                inv,
                sandbox,
                deadline,
            } => self.dispatch(inv, sandbox, deadline),
            Action::Fail { inv, failure } => {
                let reply = {
                    let mut st = self.st.borrow_mut();
                    let p = st.pending.remove(&inv);
                    if let Some(sb) = p.as_ref().and_then(|p| p.running_on) {
                        if let Some(proc) = st.procs.get_mut(&sb) {
                            proc.current = None;
                        }
                    }
                    p.map(|p| p.reply)
                };
                if let Some(tx) = reply {
                    tx.send(Outcome::Failed(failure));
                }
            }
            Action::Kill { sandbox } => {
                if let Some(proc) = self.st.borrow_mut().procs.get_mut(&sandbox) {
                    proc.sandbox.kill();
                    proc.mailbox.close();
                }
            }
            Action::Terminate { sandbox } => {
                if let Some(proc) = self.st.borrow_mut().procs.get_mut(&sandbox) {
                    proc.sandbox.terminate();
                }
            }
            Action::Ready {
                sandbox,
                cold,
                took,
            } => {
                let st = self.st.borrow();
                if let (true, Some(proc)) = (cold, st.procs.get(&sandbox)) {
                    (self.log)(&format!(
                        "tollgate: function {} cold start (pid {}) ready in {} ms",
                        proc.func,
                        proc.sandbox.pid(),
                        took.as_millis()
                    ));
                }
            }
        }
    }

    /// Starts process `sb`: its Runtime API listener, the process, its log pumps.
    fn spawn(self: &Rc<Self>, sb: SandboxId) -> Result<(), String> {
        let (name, local, region) = {
            let st = self.st.borrow();
            let f = st
                .funcs
                .iter()
                .find(|f| f.sched.owns(sb))
                .ok_or("the function is gone")?;
            (f.config.name.clone(), f.local.clone(), f.region.clone())
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen for its Runtime API: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen for its Runtime API: {e}"))?;
        let spec = SandboxSpec {
            function: &name,
            local: &local,
            region: &region,
            runtime_api: addr,
        };
        let mut sandbox = Sandbox::spawn(&spec).map_err(|e| e.to_string())?;
        let listener = match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                sandbox.kill();
                return Err(format!("cannot listen for its Runtime API: {e}"));
            }
        };
        let func: Rc<str> = name.as_str().into();
        let label = Rc::new(RefCell::new(String::new()));
        let (stdout, stderr) = sandbox.take_output();
        if let Some(o) = stdout {
            monoio::spawn(logs::pump(
                o,
                func.clone(),
                "stdout",
                label.clone(),
                self.log.clone(),
            ));
        }
        if let Some(e) = stderr {
            monoio::spawn(logs::pump(
                e,
                func.clone(),
                "stderr",
                label.clone(),
                self.log.clone(),
            ));
        }
        let mailbox = Rc::new(Mailbox::default());
        monoio::spawn(runtime_api::serve(
            listener,
            self.clone(),
            sb,
            mailbox.clone(),
        ));
        self.st.borrow_mut().procs.insert(
            sb,
            Proc {
                func,
                sandbox,
                mailbox,
                label,
                current: None,
            },
        );
        Ok(())
    }

    fn dispatch(&self, inv: InvId, sb: SandboxId, deadline: Instant) {
        let mut st = self.st.borrow_mut();
        let State {
            funcs,
            pending,
            procs,
            ..
        } = &mut *st;
        let (Some(p), Some(proc)) = (pending.get_mut(&inv), procs.get_mut(&sb)) else {
            return;
        };
        let Some(f) = funcs.iter().find(|f| f.sched.owns(sb)) else {
            return;
        };
        p.running_on = Some(sb);
        proc.current = Some((inv, p.request_id.clone()));
        *proc.label.borrow_mut() = p.label.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        let deadline_ms = SystemTime::now()
            .checked_add(left)
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        *proc.mailbox.assigned.borrow_mut() = Some(Assigned {
            request_id: p.request_id.clone(),
            deadline_ms,
            event: p.event.clone(),
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                f.region,
                crate::lambda::LOCAL_ACCOUNT_ID,
                f.config.name
            ),
            trace_id: trace_id(),
        });
        proc.mailbox.work.wake();
    }

    /// Whether `name` is a local function of the current config.
    pub fn has_function(&self, name: &str) -> bool {
        self.st
            .borrow()
            .funcs
            .iter()
            .any(|f| !f.retired && f.config.name == name)
    }

    /// Kills every process left (the thread ends).
    pub fn kill_all(&self) {
        for proc in self.st.borrow_mut().procs.values_mut() {
            proc.sandbox.kill();
            proc.mailbox.close();
        }
    }

    /// Invocations waiting or running, over all functions (for tests and the stop).
    pub fn in_flight(&self) -> usize {
        self.st.borrow().pending.len()
    }

    /// Processes alive (for tests).
    pub fn processes(&self) -> Vec<u32> {
        self.st
            .borrow()
            .procs
            .values()
            .map(|p| p.sandbox.pid())
            .collect()
    }
}

/// Whether two versions of a function start the same process (otherwise a reload starts a
/// new generation of processes).
fn same_process(a: &LocalFunction, b: &LocalFunction) -> bool {
    a.command == b.command
        && a.cwd == b.cwd
        && a.env == b.env
        && a.user == b.user
        && a.handler == b.handler
        && a.memory_mb == b.memory_mb
}

/// `AWS_REGION` of a local function: its `env`'s, else [`LOCAL_REGION`].
fn region_of(l: &LocalFunction) -> String {
    l.env
        .iter()
        .rev()
        .find(|(k, _)| k == "AWS_REGION")
        .map_or_else(|| LOCAL_REGION.to_string(), |(_, v)| v.clone())
}
