//! One function process ("sandbox"): start, environment, output capture, stop, reap.
//!
//! SKELETON (issue 11 contract): signatures are final; the sandbox slice fills in the bodies.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::process::ExitStatus;

use crate::config::LocalFunction;

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

/// A running function process, in its own process group.
pub struct Sandbox {
    pid: u32,
}

impl Sandbox {
    /// Starts the process: `command` in `cwd`, the environment of [`environment`] and nothing
    /// else, stdin from /dev/null, stdout and stderr each into a socket pair whose other end
    /// [`Sandbox::take_output`] hands out, its own process group, killed if tollgate dies, as
    /// `user` when set. Blocking (fork/exec): call it off the workers.
    pub fn spawn(spec: &SandboxSpec<'_>) -> io::Result<Sandbox> {
        let _ = spec;
        Err(io::Error::other("not built yet"))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The read ends of stdout and stderr (once).
    pub fn take_output(&mut self) -> (Option<UnixStream>, Option<UnixStream>) {
        (None, None)
    }

    /// SIGTERM to the process group.
    pub fn terminate(&mut self) {}

    /// SIGKILL to the process group.
    pub fn kill(&mut self) {}

    /// The exit status once the process has exited (reaped), without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(None)
    }
}

/// The exact environment a process gets: the Lambda variables and the function's `env`.
pub fn environment(spec: &SandboxSpec<'_>) -> Vec<(String, String)> {
    let _ = spec;
    Vec::new()
}
