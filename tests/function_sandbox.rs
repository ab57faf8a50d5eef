//! A function process's output as the functions service reads it: the read ends that
//! `Sandbox::take_output` hands out, wrapped with `monoio::net::UnixStream::from_std` on each
//! driver, carry stdout and stderr apart to EOF, read concurrently on one thread (the
//! process-level behaviour, non-blocking read ends included, is unit-tested in
//! `src/functions/sandbox.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use monoio::io::AsyncReadRent;
use tollgate::config::LocalFunction;
use tollgate::functions::sandbox::{Sandbox, SandboxSpec};

fn function(script: &str) -> LocalFunction {
    LocalFunction {
        command: vec!["sh".into(), "-c".into(), script.into()],
        cwd: PathBuf::from("/"),
        env: vec![("GREETING".into(), "hello".into())],
        handler: "app.handler".into(),
        concurrency: 1,
        idle: Duration::from_secs(1),
        queue: 1,
        memory_mb: 128,
        user: None,
    }
}

/// Everything `stream` carries until EOF, read the way the service's log pump reads it.
async fn read_to_eof(stream: std::os::unix::net::UnixStream) -> String {
    let mut stream = monoio::net::UnixStream::from_std(stream).expect("from_std");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64];
    loop {
        let (res, b) = stream.read(buf).await;
        buf = b;
        let n = res.expect("read");
        if n == 0 {
            return String::from_utf8(out).expect("utf-8");
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// A variable of tollgate's own environment (as AWS credentials would be) that no function
/// may see.
const SENTINEL: &str = "TOLLGATE_SANDBOX_SENTINEL";

/// Sets [`SENTINEL`] once, before any test of this binary spawns or builds a runtime (every
/// test goes through here first), so no other thread reads the environment meanwhile.
fn set_sentinel() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var(SENTINEL, "leaked"));
}

/// Runs `script` as a function and returns (stdout, stderr, exit code), both streams read
/// concurrently on a runtime of `driver`.
fn run(driver: &str, script: &str) -> (String, String, Option<i32>) {
    set_sentinel();
    let local = function(script);
    let spec = SandboxSpec {
        function: "outfn",
        local: &local,
        region: "us-east-1",
        runtime_api: "127.0.0.1:9".parse().unwrap(),
    };
    let mut sandbox = Sandbox::spawn(&spec).expect("spawn");
    let (out, err) = sandbox.take_output();
    let (out, err) = (out.expect("stdout"), err.expect("stderr"));
    let work = async move {
        let out = monoio::spawn(read_to_eof(out));
        let err = read_to_eof(err).await;
        (out.await, err)
    };
    let (out, err) = match driver {
        "io_uring" => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .expect("io_uring runtime")
            .block_on(work),
        _ => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("epoll runtime")
            .block_on(work),
    };
    // both streams ended: the process is gone or going; a bounded wait for its status
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = sandbox.try_wait().expect("try_wait") {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never exited");
        std::thread::sleep(Duration::from_millis(10));
    };
    (out, err, status.code())
}

both_drivers! {
    fn stdout_and_stderr_are_read_apart_to_eof(driver) {
        // more than one read's worth on stdout, interleaved with stderr
        let (out, err, code) = run(
            driver,
            "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"out $i $GREETING\"; echo \"err $i\" >&2; done; exit 3",
        );
        let want_out: String = (1..=10).map(|i| format!("out {i} hello\n")).collect();
        let want_err: String = (1..=10).map(|i| format!("err {i}\n")).collect();
        assert_eq!(out, want_out);
        assert_eq!(err, want_err);
        assert_eq!(code, Some(3));
    }

    fn tollgates_environment_does_not_reach_the_function(driver) {
        let (out, err, code) = run(driver, "env");
        assert_eq!(std::env::var(SENTINEL).as_deref(), Ok("leaked"));
        assert!(!out.contains(SENTINEL), "{out}");
        assert!(out.lines().any(|l| l == "GREETING=hello"), "{out}");
        assert!(out.lines().any(|l| l == "AWS_LAMBDA_FUNCTION_NAME=outfn"), "{out}");
        assert_eq!(err, "");
        assert_eq!(code, Some(0));
    }

    fn a_silent_stream_does_not_hold_up_the_other(driver) {
        // stderr stays silent while stdout talks across a pause: both reads are pending on
        // the one thread at once, and the silent one ends with the process (EOF at exit, as
        // the parent kept no copy of the write ends)
        let (out, err, code) = run(driver, "echo one; sleep 0.2; echo two");
        assert_eq!(out, "one\ntwo\n");
        assert_eq!(err, "");
        assert_eq!(code, Some(0));
    }
}
