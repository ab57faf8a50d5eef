//! One function process ("sandbox"): start, environment, output capture, stop, reap.
//!
//! Owns: turning a [`SandboxSpec`] into a running process the way AWS Lambda starts one: the
//! exact environment ([`environment`]: the Lambda variables, then the function's `env`, nothing
//! of tollgate's own), `command[0]` resolved against tollgate's `PATH` (or, when it holds a
//! `/`, against the function's `cwd`, like a custom runtime's `./bootstrap`), stdin from
//! /dev/null, stdout and stderr each into one end of a Unix socket pair whose other end
//! [`Sandbox::take_output`] hands out, its own process group (so a stop reaches the
//! function's children too), `PR_SET_PDEATHSIG(SIGKILL)` (so no function outlives tollgate),
//! and, when tollgate runs as root and the function has a `user`, that user's uid and gid with
//! no supplementary groups. Stopping is `killpg` (SIGTERM, SIGKILL); reaping is
//! [`Sandbox::try_wait`], never blocking. Also [`lookup_user`], which the config slice calls to
//! turn `user = "NAME"` into a uid and gid at load.
//!
//! Leaves out: when to start and stop processes (the functions service's scheduler), the
//! Runtime API they talk to, and pumping their output into tollgate's log (the service wraps
//! the read ends with `monoio::net::UnixStream::from_std`). Everything here is blocking std
//! code (fork/exec, getpwnam_r): it runs on the functions thread or the control thread, never
//! on a worker.
//!
//! Data flow: spec → [`resolve_command`] (a path) → [`environment`] (the list) → `Command`
//! (`env_clear`, the list, `current_dir`, stdio, `process_group(0)`, `pre_exec`) → fork/exec →
//! [`Sandbox`] { the child, the two read ends }.

use std::cell::RefCell;
use std::ffi::{CString, OsStr};
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{LocalFunction, RunAs};

/// The `PATH` AWS Lambda gives a function (its documented runtime value). The directory of
/// the resolved `command[0]` goes in front of it when it is not already in it.
pub const LAMBDA_PATH: &str = "/usr/local/bin:/usr/bin/:/bin:/opt/bin";

/// `AWS_LAMBDA_FUNCTION_VERSION`: local functions have one version.
pub const FUNCTION_VERSION: &str = "$LATEST";

/// `AWS_EXECUTION_ENV`: what runs the function (Lambda's own value names the runtime).
pub const EXECUTION_ENV: &str = "tollgate";

/// The variable the function's `env` may not override: it is how the process finds its own
/// Runtime API listener, which only tollgate knows.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";

/// The largest buffer [`lookup_user`] grows to for one `getpwnam_r` entry (the passwd line's
/// strings); far above any real entry, it bounds the loop.
pub const MAX_PASSWD_BUFFER: usize = 1 << 20;

/// The first buffer [`lookup_user`] tries when `sysconf(_SC_GETPW_R_SIZE_MAX)` gives no hint.
pub const PASSWD_BUFFER_START: usize = 1024;

/// What a process is started with.
pub struct SandboxSpec<'a> {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function: &'a str,
    pub local: &'a LocalFunction,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`.
    pub region: &'a str,
    /// `AWS_LAMBDA_RUNTIME_API`: this process's own Runtime API listener.
    pub runtime_api: SocketAddr,
}

/// Whether the process has been reaped yet (the status is kept once it has).
#[derive(Debug, Clone, Copy)]
enum Exit {
    Running,
    Reaped(ExitStatus),
}

/// A running function process, in its own process group.
pub struct Sandbox {
    pid: u32,
    /// `Some` until drop hands it to the dropped list.
    child: Option<Child>,
    exit: Exit,
    stdout: Option<UnixStream>,
    stderr: Option<UnixStream>,
}

impl Sandbox {
    /// Starts the process: `command` in `cwd`, the environment of [`environment`] and nothing
    /// else, stdin from /dev/null, stdout and stderr each into a socket pair whose other end
    /// [`Sandbox::take_output`] hands out, its own process group, killed if tollgate dies, as
    /// `user` when set. Blocking (fork/exec): call it off the workers.
    ///
    /// "Killed if tollgate dies" is `PR_SET_PDEATHSIG(SIGKILL)`, which Linux ties to the
    /// *thread* that forked the child, not the process: the signal fires when that thread
    /// exits. The functions service spawns from its one long-lived thread, which lives as long
    /// as the service; a sandbox spawned from a short-lived thread dies with that thread. It
    /// reaches the direct child only: the function's own children are reached by stopping the
    /// process group ([`Sandbox::kill`]).
    ///
    /// `user` applies only when tollgate runs as root (effective uid 0); otherwise the process
    /// runs as tollgate's user (the config load warns about it).
    ///
    /// Errors name the command: `command not found: X` when `command[0]` resolves to no
    /// executable file, `cannot start X: cwd DIR: <error>` when `cwd` is not a directory,
    /// else `cannot start X: <OS error>` (the error's kind is kept).
    pub fn spawn(spec: &SandboxSpec<'_>) -> io::Result<Sandbox> {
        let local = spec.local;
        let Some(name) = local.command.first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the function's command is empty",
            ));
        };
        // checked here so the error says which: exec's ENOENT would blame the command
        let cwd_error = match std::fs::metadata(&local.cwd) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )),
            Err(e) => Some(e),
        };
        if let Some(e) = cwd_error {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot start {name}: cwd {}: {e}", local.cwd.display()),
            ));
        }
        let program = resolve_command(name, &local.cwd, std::env::var_os("PATH").as_deref())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("command not found: {name}"),
                )
            })?;
        let env = environment_for(spec, program.parent());
        let (stdout_read, stdout_write) = output_pair()?;
        let (stderr_read, stderr_write) = output_pair()?;

        let mut command = Command::new(&program);
        command
            .arg0(name)
            .args(local.command.iter().skip(1))
            .env_clear()
            .envs(env)
            .current_dir(&local.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout_write))
            .stderr(Stdio::from(stderr_write))
            // setpgid(0, 0) in the child: its own group, so killpg reaches its children too
            .process_group(0);
        let setup = ChildSetup {
            parent: std::process::id(),
            user: effective_user(local.user),
            max_fd: max_fd(),
        };
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe functions may be called (the parent may have had other threads
        // holding locks, e.g. the allocator's). It calls only raw syscalls through libc
        // (close_range / fcntl, setgroups, setgid, setuid, prctl, getppid, _exit), reads a
        // Copy struct captured
        // by value, allocates nothing, and builds its errors with
        // `io::Error::last_os_error`, which stores the errno inline without allocating.
        unsafe {
            command.pre_exec(move || setup.run());
        }
        reap_dropped();
        let spawned = command.spawn();
        // the parent's copies of the write ends go with the command: from now on the only
        // writers are the child (and what it hands them to), so EOF on a read end means all
        // of them are gone
        drop(command);
        let child = spawned.map_err(|e| spawn_error(name, e))?;
        Ok(Sandbox {
            pid: child.id(),
            child: Some(child),
            exit: Exit::Running,
            stdout: Some(stdout_read),
            stderr: Some(stderr_read),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The read ends of stdout and stderr (once; `None` after). Both are switched to
    /// non-blocking here, as `monoio::net::UnixStream::from_std` (how the service pumps them)
    /// requires: a blocking read on them would stall the functions thread. A caller reading
    /// them with std's blocking `Read` must switch them back (`set_nonblocking(false)`).
    /// Whoever takes them must drain them: a process whose output nobody reads blocks in
    /// `write` once the socket's buffer is full; dropping a read end makes the process's
    /// writes to that stream fail (EPIPE / SIGPIPE).
    pub fn take_output(&mut self) -> (Option<UnixStream>, Option<UnixStream>) {
        let nonblocking = |s: UnixStream| match s.set_nonblocking(true) {
            Ok(()) => Some(s),
            // cannot happen on a socket we own; a stream that would block the thread is
            // worse than none (the process's output is then lost, it still runs)
            Err(_) => None,
        };
        (
            self.stdout.take().and_then(nonblocking),
            self.stderr.take().and_then(nonblocking),
        )
    }

    /// SIGTERM to the process group (the function and every child it started that stayed in
    /// its group). A group already gone is not an error.
    pub fn terminate(&mut self) {
        self.signal_group(libc::SIGTERM);
    }

    /// SIGKILL to the process group. A group already gone is not an error.
    pub fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
    }

    /// The exit status once the process has exited (reaped), without blocking. Once reaped,
    /// the status is kept and returned again.
    ///
    /// When it finds the process exited, it first SIGKILLs what is left of its process group
    /// (children the function started and did not wait for: Lambda resets the whole
    /// environment when its runtime exits), while the unreaped leader still holds the group's
    /// id, then reaps. Errors: the OS error of `waitid(2)` (`ECHILD` if something else reaped
    /// the process: do not `waitpid(-1)` elsewhere in tollgate).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Exit::Reaped(status) = self.exit {
            return Ok(Some(status));
        }
        if !self.exited()? {
            return Ok(None);
        }
        self.signal_group(libc::SIGKILL);
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait()?;
        if let Some(status) = status {
            self.exit = Exit::Reaped(status);
        }
        Ok(status)
    }

    /// Whether the process has exited, without reaping it (`waitid(WNOWAIT)`): the zombie
    /// keeps its pid, hence its group's id, reserved.
    fn exited(&self) -> io::Result<bool> {
        let pid = libc::id_t::from(self.pid);
        // SAFETY: siginfo_t is plain old data; zeroed, its si_pid reads 0 when WNOHANG finds
        // no exited child (waitid(2)).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is ours and outlives the call; WNOWAIT leaves the child unreaped.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: waitid filled `info` (or left it zeroed); si_pid is valid for SIGCHLD info.
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// `killpg(pid, sig)`: the group id is the child's pid (`process_group(0)`). Only while
    /// the leader is unreaped: until then its pid (the group's id) cannot be handed to another
    /// process, after that it can (to a later sandbox, which would lead a group of the same
    /// id), so a reaped sandbox signals nobody; [`Sandbox::try_wait`] kills the group's
    /// leftovers just before reaping.
    fn signal_group(&self, sig: libc::c_int) {
        if matches!(self.exit, Exit::Reaped(_)) {
            return;
        }
        let Ok(pgid) = libc::pid_t::try_from(self.pid) else {
            return;
        };
        // never killpg(0) or a negative id (that would mean our own group, or every process)
        if pgid <= 1 {
            return;
        }
        // SAFETY: killpg and kill are plain syscalls on integers; their only failures are
        // ESRCH (gone: nothing to do) and EPERM (cannot happen for our own child). The leader
        // is signalled by pid too: one that left its group (setsid, setpgid) escapes killpg,
        // and until it is reaped its pid is still ours.
        unsafe {
            libc::killpg(pgid, sig);
            libc::kill(pgid, sig);
        }
    }
}

thread_local! {
    /// Processes dropped before they could be reaped (killed, not gone yet), per thread as
    /// the sandboxes are: [`reap_dropped`] reaps them.
    static DROPPED: RefCell<Vec<Child>> = const { RefCell::new(Vec::new()) };
}

/// Reaps, without blocking, the processes of sandboxes dropped on this thread before they
/// were gone; returns how many are still waiting. The functions service calls it on its tick;
/// [`Sandbox::spawn`] calls it too, so zombies never pile up even without the tick.
pub fn reap_dropped() -> usize {
    DROPPED
        .try_with(|dropped| {
            let mut dropped = dropped.borrow_mut();
            // keep only those still running (an error means reaped elsewhere: gone)
            dropped.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
            dropped.len()
        })
        .unwrap_or(0)
}

impl Drop for Sandbox {
    /// SIGKILL to the group and one non-blocking reap attempt. Drop never blocks (it runs on
    /// the functions thread): a process not gone yet moves to this thread's dropped list,
    /// which [`reap_dropped`] reaps (the service's tick, or the next spawn).
    fn drop(&mut self) {
        if !matches!(self.exit, Exit::Running) {
            return;
        }
        self.kill();
        if let Ok(Some(_)) | Err(_) = self.try_wait() {
            return;
        }
        if let Some(child) = self.child.take() {
            let _ = DROPPED.try_with(|dropped| dropped.borrow_mut().push(child));
        }
    }
}

/// The exact environment a process gets: the Lambda variables and the function's `env`.
///
/// In order: `AWS_LAMBDA_RUNTIME_API`, `_HANDLER`, `AWS_LAMBDA_FUNCTION_NAME`,
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, `LAMBDA_TASK_ROOT`, `LAMBDA_RUNTIME_DIR`, `AWS_LAMBDA_LOG_STREAM_NAME`,
/// `AWS_LAMBDA_LOG_GROUP_NAME`, `AWS_EXECUTION_ENV`, `TZ`, `LANG`, `PATH`, then the function's
/// `env` in its order. An `env` key naming one of the Lambda variables replaces its value in
/// place (except `AWS_LAMBDA_RUNTIME_API`, which stays tollgate's); an `env` that sets
/// `AWS_REGION` but not `AWS_DEFAULT_REGION` moves both. `HOME` is not set unless `env` sets it
/// (Python's user site then needs `HOME` or `PYTHONUSERBASE` in `env`). `PATH` is
/// [`LAMBDA_PATH`] with the directory of the resolved `command[0]` in front, so an interpreter
/// from pyenv or a virtualenv finds its siblings. Nothing of tollgate's own environment (no
/// AWS credentials) is passed.
pub fn environment(spec: &SandboxSpec<'_>) -> Vec<(String, String)> {
    let program = spec.local.command.first().and_then(|name| {
        resolve_command(name, &spec.local.cwd, std::env::var_os("PATH").as_deref())
    });
    environment_for(spec, program.as_deref().and_then(Path::parent))
}

/// [`environment`] with `command[0]` already resolved (`program_dir`: its directory).
fn environment_for(spec: &SandboxSpec<'_>, program_dir: Option<&Path>) -> Vec<(String, String)> {
    let local = spec.local;
    let cwd = local.cwd.to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> = vec![
        (RUNTIME_API_VAR.into(), spec.runtime_api.to_string()),
        ("_HANDLER".into(), local.handler.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.function.into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            local.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".into(),
            FUNCTION_VERSION.into(),
        ),
        ("AWS_REGION".into(), spec.region.into()),
        ("AWS_DEFAULT_REGION".into(), spec.region.into()),
        ("LAMBDA_TASK_ROOT".into(), cwd.clone()),
        ("LAMBDA_RUNTIME_DIR".into(), cwd),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream_name(spec)),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", spec.function),
        ),
        ("AWS_EXECUTION_ENV".into(), EXECUTION_ENV.into()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("PATH".into(), function_path(program_dir)),
    ];
    let sets = |key: &str| local.env.iter().any(|(k, _)| k == key);
    if sets("AWS_REGION") && !sets("AWS_DEFAULT_REGION") {
        if let Some((_, region)) = local.env.iter().rev().find(|(k, _)| k == "AWS_REGION") {
            set(&mut env, "AWS_DEFAULT_REGION", region);
        }
    }
    for (key, value) in &local.env {
        if key != RUNTIME_API_VAR {
            set(&mut env, key, value);
        }
    }
    env
}

/// Replaces `key`'s value in place, or appends it.
fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_owned(),
        None => env.push((key.to_owned(), value.to_owned())),
    }
}

/// [`LAMBDA_PATH`], with `program_dir` in front unless it is already one of its entries.
fn function_path(program_dir: Option<&Path>) -> String {
    let Some(dir) = program_dir.and_then(Path::to_str).filter(|d| !d.is_empty()) else {
        return LAMBDA_PATH.to_owned();
    };
    // `Path` equality ignores a trailing slash (`/usr/bin/` is `/usr/bin`)
    if LAMBDA_PATH
        .split(':')
        .any(|entry| Path::new(entry) == Path::new(dir))
    {
        return LAMBDA_PATH.to_owned();
    }
    format!("{dir}:{LAMBDA_PATH}")
}

/// `YYYY/MM/DD/[$LATEST]` + 32 hex digits, the shape of Lambda's log stream names: the date
/// is today's in UTC, the digits a hash of what tells this process apart from every other
/// one running now (tollgate's pid, the function, its own Runtime API address), so
/// [`environment`] is a function of the spec and names each live sandbox's stream once.
fn log_stream_name(spec: &SandboxSpec<'_>) -> String {
    use std::hash::{Hash, Hasher};
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = crate::fmt::civil_from_days(days);
    let half = |salt: u8| {
        // SipHash with fixed keys: the same input gives the same digits in every run
        let mut h = std::hash::DefaultHasher::new();
        (salt, std::process::id(), spec.function, spec.runtime_api).hash(&mut h);
        h.finish()
    };
    format!(
        "{y:04}/{m:02}/{d:02}/[{FUNCTION_VERSION}]{:016x}{:016x}",
        half(0),
        half(1)
    )
}

/// Where `command[0]` is, as `execvp(3)` would find it, but decided before the fork so the
/// error can name the command: a name holding a `/` is a path, relative ones taken from the
/// function's `cwd` (where the process starts, as a custom runtime's `./bootstrap`); a bare
/// name is looked up in `path` (tollgate's own `PATH`), skipping empty and relative entries
/// (which would depend on tollgate's working directory). The first regular file with an
/// execute bit wins.
pub fn resolve_command(name: &str, cwd: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let candidate = cwd.join(name);
        return is_executable(&candidate).then_some(candidate);
    }
    let path = path?;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A regular file (after symlinks) with any execute bit set.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A socket pair for one output stream: (tollgate's read end, the child's write end). Our end
/// is shut for writing, so the child reading its stdout sees EOF rather than blocking.
fn output_pair() -> io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.shutdown(std::net::Shutdown::Write)?;
    Ok((ours, OwnedFd::from(theirs)))
}

/// The spawn error, naming the command.
fn spawn_error(name: &str, e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        // exec's ENOENT after our resolution: the file vanished, or its interpreter (`#!`)
        // is missing
        return io::Error::new(e.kind(), format!("command not found: {name} ({e})"));
    }
    io::Error::new(e.kind(), format!("cannot start {name}: {e}"))
}

/// `user` when it applies: set, and tollgate running as root.
fn effective_user(user: Option<RunAs>) -> Option<RunAs> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    user.filter(|_| root)
}

/// What the child does between fork and exec (after std's dup2s, chdir and setpgid): a
/// `Copy` value so the closure captures no heap data.
#[derive(Clone, Copy)]
struct ChildSetup {
    /// tollgate's pid, captured before the fork.
    parent: u32,
    user: Option<RunAs>,
    /// One past the highest fd the child may have inherited (`RLIMIT_NOFILE`, read before the
    /// fork: getrlimit is not on the async-signal-safe list): the fallback's loop bound.
    max_fd: libc::c_int,
}

/// The lowest fd the child keeps only if it was opened close-on-exec: 0, 1 and 2 are its
/// stdio (std dup2s them before `pre_exec`), everything above is tollgate's.
const FIRST_PRIVATE_FD: libc::c_uint = 3;

/// The fallback loop's bound when `RLIMIT_NOFILE` cannot be read or is unlimited.
const FALLBACK_MAX_FD: libc::c_int = 65_536;

/// `RLIMIT_NOFILE`'s soft limit (no fd of ours can be at or above it), else
/// [`FALLBACK_MAX_FD`].
fn max_fd() -> libc::c_int {
    // SAFETY: rlimit is plain old data; getrlimit writes only into it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is ours and outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return FALLBACK_MAX_FD;
    }
    libc::c_int::try_from(limit.rlim_cur).unwrap_or(FALLBACK_MAX_FD)
}

/// Marks every fd from [`FIRST_PRIVATE_FD`] up close-on-exec, in the forked child: the
/// function must inherit none of tollgate's descriptors (client sockets, the Invoke API's
/// connections, other sandboxes' Runtime API connections and output pipes), whatever opened
/// them without `O_CLOEXEC` (monoio's io_uring accept does not pass `SOCK_CLOEXEC`).
/// Close-on-exec rather than close: std's own exec-error pipe must survive until the exec
/// (it reports a failed exec to the parent). `close_range(2)` with `CLOSE_RANGE_CLOEXEC`
/// (Linux 5.11) does it in one call; older kernels get `fcntl(F_SETFD)` per fd up to
/// `max_fd` (EBADF for unused fds is ignored).
///
/// # Safety
/// Only between fork and exec, where it calls only async-signal-safe syscalls.
unsafe fn cloexec_inherited(max_fd: libc::c_int) {
    // SAFETY: close_range is a plain syscall on integers; it touches only this process's fd
    // table (the child's own copy).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            FIRST_PRIVATE_FD,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return;
    }
    let first = FIRST_PRIVATE_FD as libc::c_int;
    for fd in first..max_fd.max(first) {
        // SAFETY: fcntl is async-signal-safe; on an fd not open it fails with EBADF, which
        // is fine: there is nothing to mark.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

impl ChildSetup {
    /// Runs in the forked child: async-signal-safe syscalls only (see the SAFETY comment at
    /// the `pre_exec` call).
    ///
    /// Order matters: supplementary groups are dropped and the gid set while still root (both
    /// need CAP_SETGID, gone after setuid); the parent-death signal is set last because Linux
    /// clears it whenever the effective uid or gid changes (prctl(2)).
    fn run(self) -> io::Result<()> {
        // SAFETY (all calls below): plain syscalls on integers and null pointers, each
        // async-signal-safe; none touches memory the parent's other threads may own.
        unsafe {
            cloexec_inherited(self.max_fd);
            if let Some(user) = self.user {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(user.gid) != 0
                    || libc::setuid(user.uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // tollgate died between the fork and the prctl: the signal will never come
            // (the child was reparented), so go now rather than run unsupervised
            if u32::try_from(libc::getppid()).ok() != Some(self.parent) {
                libc::_exit(1);
            }
        }
        Ok(())
    }
}

/// A user's uid and primary gid (`getpwnam_r(3)`), for a function's `user = "NAME"`. Called at
/// config load (blocking: it may read /etc/passwd or ask NSS). Errors: `InvalidInput` for a
/// name with a NUL byte, `NotFound` for an unknown user, the OS error otherwise.
pub fn lookup_user(name: &str) -> io::Result<(u32, u32)> {
    let cname = CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("user name holds a NUL byte: {name:?}"),
        )
    })?;
    // SAFETY: sysconf has no preconditions; -1 (no hint) is handled.
    let hint = unsafe { libc::sysconf(libc::_SC_GETPW_R_SIZE_MAX) };
    let mut size = usize::try_from(hint)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(PASSWD_BUFFER_START)
        .min(MAX_PASSWD_BUFFER);
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: passwd is plain old data; zeroed is a valid (empty) value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to memory we own that outlives the call; `buf.len()`
        // is the buffer's true size; getpwnam_r writes the entry's strings only into `buf`.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < MAX_PASSWD_BUFFER {
            size = (size * 2).min(MAX_PASSWD_BUFFER);
            continue;
        }
        // "not found" is 0 with a null result, but some NSS modules say ENOENT or ESRCH
        // (getpwnam_r(3), RETURN VALUE)
        let missing = rc == libc::ENOENT || rc == libc::ESRCH;
        if rc != 0 && !missing {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if missing || result.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such user: {name}"),
            ));
        }
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    /// Liveness bound for every wait below (never a performance threshold).
    const LIVENESS: Duration = Duration::from_secs(20);

    fn function(command: &[&str], cwd: &Path, env: &[(&str, &str)]) -> LocalFunction {
        LocalFunction {
            command: command.iter().map(|s| s.to_string()).collect(),
            cwd: cwd.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            handler: "app.handler".into(),
            concurrency: 1,
            idle: Duration::from_secs(1),
            queue: 1,
            memory_mb: 256,
            user: None,
        }
    }

    fn spec<'a>(name: &'a str, local: &'a LocalFunction) -> SandboxSpec<'a> {
        SandboxSpec {
            function: name,
            local,
            region: "us-east-1",
            runtime_api: "127.0.0.1:45678".parse().unwrap(),
        }
    }

    /// A fresh empty directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-sandbox-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Spawns `command` in `/` with no `env` of its own.
    fn spawn_in_root(name: &str, command: &[&str]) -> Sandbox {
        let local = function(command, Path::new("/"), &[]);
        Sandbox::spawn(&spec(name, &local)).unwrap()
    }

    /// The pid the process prints on its first stdout line (a blocking read, bounded).
    fn first_line_pid(sandbox: &mut Sandbox) -> u32 {
        let (out, _) = sandbox.take_output();
        let out = out.unwrap();
        out.set_nonblocking(false).unwrap();
        out.set_read_timeout(Some(LIVENESS)).unwrap();
        let mut first = String::new();
        BufReader::new(out).read_line(&mut first).unwrap();
        first.trim().parse().unwrap()
    }

    /// Everything a read end carries until EOF (blocking, bounded by LIVENESS).
    fn read_all(stream: Option<UnixStream>) -> String {
        let mut stream = stream.expect("the read end, once");
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(LIVENESS)).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }

    /// Polls `try_wait` until the process is reaped (bounded).
    fn wait(sandbox: &mut Sandbox) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = sandbox.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < LIVENESS,
                "process {} never exited",
                sandbox.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether `pid` still runs (a zombie waiting for its reaper does not).
    fn alive(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "PID (COMM) STATE ...": the state follows the last ')'
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    fn wait_dead(pid: u32) {
        let start = Instant::now();
        while alive(pid) {
            assert!(start.elapsed() < LIVENESS, "process {pid} still alive");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn lines(text: &str) -> Vec<(String, String)> {
        text.lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn the_environment_is_the_lambda_variables_then_the_functions_env() {
        let local = function(
            &["/bin/sh", "-c", "true"],
            Path::new("/srv/fn"),
            &[("TABLE", "pets"), ("LANG", "C.UTF-8")],
        );
        let env = environment(&spec("hello", &local));
        let stream = env
            .iter()
            .find(|(k, _)| k == "AWS_LAMBDA_LOG_STREAM_NAME")
            .map(|(_, v)| v.clone())
            .unwrap();
        let (date, id) = stream.split_once("/[$LATEST]").unwrap();
        assert_eq!(date.len(), 10, "{stream}");
        assert!(
            date.chars().all(|c| c.is_ascii_digit() || c == '/'),
            "{stream}"
        );
        assert_eq!(id.len(), 32, "{stream}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{stream}");
        let expected: Vec<(String, String)> = [
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:45678"),
            ("_HANDLER", "app.handler"),
            ("AWS_LAMBDA_FUNCTION_NAME", "hello"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("LAMBDA_TASK_ROOT", "/srv/fn"),
            ("LAMBDA_RUNTIME_DIR", "/srv/fn"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", &stream),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello"),
            ("AWS_EXECUTION_ENV", "tollgate"),
            ("TZ", ":UTC"),
            // the function's env replaces a Lambda variable in place
            ("LANG", "C.UTF-8"),
            // /bin is one of Lambda's entries already
            ("PATH", LAMBDA_PATH),
            ("TABLE", "pets"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, expected);
        // a function of the spec: the same list each time
        assert_eq!(environment(&spec("hello", &local)), env);
    }

    #[test]
    fn the_runtime_api_cannot_be_overridden_and_aws_region_moves_both() {
        let local = function(
            &["/bin/sh"],
            Path::new("/srv/fn"),
            &[
                ("AWS_LAMBDA_RUNTIME_API", "10.0.0.1:1"),
                ("AWS_REGION", "eu-west-1"),
                ("HOME", "/home/fn"),
                ("PATH", "/opt/custom"),
            ],
        );
        let env = environment(&spec("hello", &local));
        let get = |key: &str| {
            env.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), ["127.0.0.1:45678"]);
        assert_eq!(get("AWS_REGION"), ["eu-west-1"]);
        assert_eq!(get("AWS_DEFAULT_REGION"), ["eu-west-1"]);
        assert_eq!(get("HOME"), ["/home/fn"]);
        assert_eq!(get("PATH"), ["/opt/custom"]);
        // HOME only when env sets it
        let bare = function(&["/bin/sh"], Path::new("/srv/fn"), &[]);
        assert!(!environment(&spec("hello", &bare))
            .iter()
            .any(|(k, _)| k == "HOME"));
    }

    #[test]
    fn path_gets_the_commands_directory_in_front() {
        let dir = temp_dir("pathdir");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tool = bin.join("python3");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let local = function(&["bin/python3", "-m", "x"], &dir, &[]);
        let env = environment(&spec("hello", &local));
        let path = env.iter().find(|(k, _)| k == "PATH").unwrap();
        assert_eq!(path.1, format!("{}:{LAMBDA_PATH}", bin.display()));
        // the same directory through tollgate's PATH
        let found = resolve_command("python3", Path::new("/"), Some(bin.as_os_str()));
        assert_eq!(found.as_deref(), Some(tool.as_path()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn commands_resolve_as_execvp_but_skip_relative_path_entries_and_plain_files() {
        let dir = temp_dir("resolve");
        let plain = dir.join("data");
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let boot = dir.join("bootstrap");
        std::fs::write(&boot, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&boot, std::fs::Permissions::from_mode(0o700)).unwrap();
        // a name with a slash: from the function's cwd
        assert_eq!(
            resolve_command("./bootstrap", &dir, None).as_deref(),
            Some(dir.join("./bootstrap").as_path())
        );
        assert_eq!(resolve_command("./data", &dir, None), None);
        // a bare name: PATH only, absolute entries only, executable files only
        let path = std::env::join_paths([Path::new(""), Path::new("."), &dir]).unwrap();
        assert_eq!(
            resolve_command("bootstrap", Path::new("/"), Some(&path)).as_deref(),
            Some(boot.as_path())
        );
        assert_eq!(resolve_command("data", Path::new("/"), Some(&path)), None);
        assert_eq!(resolve_command("bootstrap", Path::new("/"), None), None);
        assert_eq!(resolve_command("", &dir, Some(&path)), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_process_sees_exactly_its_environment_and_none_of_tollgates() {
        let local = function(&["env"], Path::new("/"), &[("TABLE", "pets")]);
        let spec = spec("envfn", &local);
        // std's Command passes the variables sorted by name: compare as sets
        let sorted = |mut v: Vec<(String, String)>| {
            v.sort();
            v
        };
        let before = sorted(environment(&spec));
        let mut sandbox = Sandbox::spawn(&spec).unwrap();
        let (out, err) = sandbox.take_output();
        let got = sorted(lines(&read_all(out)));
        assert_eq!(read_all(err), "");
        let after = sorted(environment(&spec));
        // none of tollgate's own variables (as AWS credentials would be) reaches the function
        // (no set_var here: other tests run threads that read the environment through libc)
        let ours: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| !before.iter().any(|(e, _)| e == k))
            .collect();
        assert!(
            !ours.is_empty(),
            "the test process has no variable of its own"
        );
        for key in &ours {
            assert!(!got.iter().any(|(k, _)| k == key), "{key} leaked");
        }
        // (before and after differ only if the UTC date turned in between)
        assert!(got == before || got == after, "{got:?}\n!=\n{before:?}");
        assert!(wait(&mut sandbox).success());
    }

    #[test]
    fn the_process_inherits_no_descriptor_beyond_its_stdio() {
        use std::os::fd::AsRawFd;
        // what monoio's io_uring accept produces: sockets without close-on-exec
        let inheritable = |fd: libc::c_int| {
            // SAFETY: fcntl on an fd this test owns.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert!(flags >= 0);
            // SAFETY: as above.
            assert_eq!(
                unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) },
                0
            );
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        for fd in [
            listener.as_raw_fd(),
            client.as_raw_fd(),
            accepted.as_raw_fd(),
        ] {
            inheritable(fd);
        }
        let mut sandbox = spawn_in_root("fdfn", &["ls", "/proc/self/fd"]);
        let (out, _) = sandbox.take_output();
        let fds: Vec<u32> = read_all(out)
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert!(wait(&mut sandbox).success());
        // 0, 1, 2 and the one ls opened to read the directory (the lowest free: 3)
        assert_eq!(fds, [0, 1, 2, 3], "leaked descriptors: {fds:?}");
        drop((listener, client, accepted));
    }

    #[test]
    fn the_process_runs_in_its_cwd_with_stdin_empty() {
        let dir = temp_dir("cwd");
        let local = function(&["sh", "-c", "pwd; cat; echo end"], &dir, &[]);
        let mut sandbox = Sandbox::spawn(&spec("cwdfn", &local)).unwrap();
        let (out, _) = sandbox.take_output();
        assert_eq!(read_all(out), format!("{}\nend\n", dir.display()));
        assert!(wait(&mut sandbox).success());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stdout_and_stderr_arrive_separately_once() {
        let mut sandbox = spawn_in_root(
            "outfn",
            &["sh", "-c", "echo to-out; echo to-err >&2; echo more-out"],
        );
        let (out, err) = sandbox.take_output();
        assert!(matches!(sandbox.take_output(), (None, None)));
        assert_eq!(read_all(out), "to-out\nmore-out\n");
        assert_eq!(read_all(err), "to-err\n");
        assert!(wait(&mut sandbox).success());
    }

    #[test]
    fn the_read_ends_are_non_blocking() {
        let mut sandbox = spawn_in_root("nbfn", &["sleep", "30"]);
        let (out, _) = sandbox.take_output();
        let mut out = out.unwrap();
        let err = out.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        sandbox.kill();
        assert_eq!(wait(&mut sandbox).signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn kill_ends_the_whole_process_group() {
        let mut sandbox = spawn_in_root("groupfn", &["sh", "-c", "sleep 30 & echo $!; wait"]);
        let grandchild = first_line_pid(&mut sandbox);
        assert!(alive(sandbox.pid()) && alive(grandchild));
        assert_eq!(sandbox.try_wait().unwrap(), None);
        sandbox.kill();
        assert_eq!(wait(&mut sandbox).signal(), Some(libc::SIGKILL));
        wait_dead(grandchild);
        // a group already gone: no error, no effect
        sandbox.kill();
        sandbox.terminate();
    }

    #[test]
    fn terminate_sends_sigterm_to_the_group() {
        let mut sandbox = spawn_in_root("termfn", &["sleep", "30"]);
        sandbox.terminate();
        assert_eq!(wait(&mut sandbox).signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn the_process_dies_with_the_thread_that_spawned_it() {
        // PR_SET_PDEATHSIG fires when the spawning *thread* exits (the functions thread in
        // tollgate, which lives as long as the service): here a short-lived one
        let local = function(&["sleep", "30"], Path::new("/"), &[]);
        let mut sandbox = std::thread::scope(|s| {
            s.spawn(|| Sandbox::spawn(&spec("orphan", &local)).unwrap())
                .join()
                .unwrap()
        });
        assert_eq!(wait(&mut sandbox).signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn a_user_applies_when_running_as_root() {
        let (uid, gid) = lookup_user("nobody").unwrap();
        let mut local = function(&["sh", "-c", "id -u; id -G"], Path::new("/"), &[]);
        local.user = Some(RunAs { uid, gid });
        let mut sandbox = Sandbox::spawn(&spec("userfn", &local)).unwrap();
        let (out, err) = sandbox.take_output();
        let out = read_all(out);
        assert_eq!(read_all(err), "");
        assert!(wait(&mut sandbox).success());
        // SAFETY: geteuid/getegid cannot fail
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if euid == 0 {
            // the user's uid, and its primary group alone (supplementary groups dropped)
            assert_eq!(out, format!("{uid}\n{gid}\n"));
        } else {
            // not root: `user` is ignored, the process runs as tollgate
            assert!(out.starts_with(&format!("{euid}\n{egid}")), "{out}");
        }
    }

    #[test]
    fn a_missing_command_is_named() {
        let local = function(&["tollgate-no-such-command", "x"], Path::new("/"), &[]);
        let err = Sandbox::spawn(&spec("missing", &local)).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            "command not found: tollgate-no-such-command"
        );
        let local = function(&["./bootstrap"], Path::new("/"), &[]);
        let err = Sandbox::spawn(&spec("missing", &local)).err().unwrap();
        assert_eq!(err.to_string(), "command not found: ./bootstrap");
        let local = function(&[], Path::new("/"), &[]);
        let err = Sandbox::spawn(&spec("missing", &local)).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_cwd_that_does_not_exist_fails_the_spawn_naming_the_command() {
        let local = function(&["sh", "-c", "true"], Path::new("/nonexistent-dir"), &[]);
        let err = Sandbox::spawn(&spec("nocwd", &local)).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            "cannot start sh: cwd /nonexistent-dir: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn try_wait_returns_the_status_after_exit_and_keeps_it() {
        let mut sandbox = spawn_in_root("exitfn", &["sh", "-c", "exit 7"]);
        let status = wait(&mut sandbox);
        assert_eq!(status.code(), Some(7));
        assert_eq!(sandbox.try_wait().unwrap(), Some(status));
    }

    #[test]
    fn dropping_a_sandbox_kills_its_group() {
        let mut sandbox = spawn_in_root("dropfn", &["sh", "-c", "sleep 30 & echo $!; wait"]);
        let pid = sandbox.pid();
        let grandchild = first_line_pid(&mut sandbox);
        drop(sandbox);
        wait_dead(pid);
        wait_dead(grandchild);
        // what drop could not reap, reap_dropped does (the service's tick)
        let start = Instant::now();
        while reap_dropped() > 0 {
            assert!(start.elapsed() < LIVENESS, "process {pid} never reaped");
            std::thread::sleep(Duration::from_millis(10));
        }
        // reaped, not a zombie: the pid is gone from /proc
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn the_groups_leftovers_die_when_the_process_exits() {
        // the function exits leaving a background child behind: reaping it kills the rest of
        // its group, as Lambda resets the environment when the runtime exits
        let mut sandbox = spawn_in_root("leftfn", &["sh", "-c", "sleep 30 & echo $!"]);
        let grandchild = first_line_pid(&mut sandbox);
        assert!(wait(&mut sandbox).success());
        wait_dead(grandchild);
    }

    #[test]
    fn users_are_looked_up_by_name() {
        assert_eq!(lookup_user("root").unwrap(), (0, 0));
        let (uid, _) = lookup_user("nobody").unwrap();
        assert_eq!(uid, 65534);
        let err = lookup_user("tollgate-no-such-user").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "no such user: tollgate-no-such-user");
        let err = lookup_user("no\0body").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
