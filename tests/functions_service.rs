//! The local functions service end to end with real processes: a stdlib-only Python runtime
//! client (tests/fixtures/lambda/fake_runtime.py) speaking the Runtime API, and a std TCP
//! client speaking the Invoke API to `FunctionsHandle::addr()`. Both drivers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::lambda::{eventually, fixtures_dir, pid_alive, python, Record};
use serde_json::Value;
use tollgate::config::{Config, FunctionConfig, FunctionKind, LocalFunction};
use tollgate::functions::{snapshot, FunctionsHandle};

/// Knobs of the test function.
#[derive(Clone)]
struct Fx {
    timeout_ms: u64,
    concurrency: u32,
    queue: u32,
    idle_ms: u64,
    env: Vec<(String, String)>,
}

impl Default for Fx {
    fn default() -> Fx {
        Fx {
            timeout_ms: 3000,
            concurrency: 2,
            queue: 8,
            idle_ms: 60_000,
            env: Vec::new(),
        }
    }
}

fn function(name: &str, dir: &std::path::Path, fx: &Fx) -> FunctionConfig {
    let script = fixtures_dir().join("fake_runtime.py");
    let mut env = vec![(
        "FAKE_PIDS_DIR".to_string(),
        dir.join("pids").display().to_string(),
    )];
    env.extend(fx.env.iter().cloned());
    FunctionConfig {
        name: name.into(),
        timeout: Duration::from_millis(fx.timeout_ms),
        kind: FunctionKind::Local(LocalFunction {
            command: vec!["python3".into(), script.display().to_string()],
            cwd: dir.to_path_buf(),
            env,
            handler: "fake.handler".into(),
            concurrency: fx.concurrency,
            idle: Duration::from_millis(fx.idle_ms),
            queue: fx.queue,
            memory_mb: 128,
            user: None,
        }),
    }
}

fn config(driver: &str, functions: Vec<FunctionConfig>) -> Arc<Config> {
    // a mock route: config wants one (the service itself reads only `server` and `functions`)
    let text = common::server_toml(driver, 1, "")
        + "[[route]]\nkey = \"GET /\"\nmock = { body = \"k\" }\n";
    let mut c = tollgate::config::from_str(&text).unwrap();
    c.functions = functions;
    Arc::new(c)
}

/// A running service with one function "f" in a fresh directory (its cwd and pid files).
struct Svc {
    handle: Option<FunctionsHandle>,
    rec: Record,
}

impl Svc {
    fn start(driver: &str, fx: &Fx) -> Svc {
        let rec = Record::new(driver);
        let c = config(driver, vec![function("f", &rec.dir, fx)]);
        Svc {
            handle: Some(FunctionsHandle::start(&c).unwrap()),
            rec,
        }
    }
    fn h(&self) -> &FunctionsHandle {
        self.handle.as_ref().unwrap()
    }
    fn addr(&self) -> SocketAddr {
        self.h().addr()
    }
    /// (cold starts, concurrent, queued, processes) of "f".
    fn stats(&self) -> (u64, u64, u64, u64) {
        let s = snapshot(&self.h().stats());
        let f = s.iter().find(|s| s.name == "f").expect("stats of f");
        (
            f.cold_starts.load(Ordering::Relaxed),
            f.concurrent.load(Ordering::Relaxed),
            f.queued.load(Ordering::Relaxed),
            f.processes.load(Ordering::Relaxed),
        )
    }
    /// Invokes "f" once (the pid of its process), then holds that process with a 1.5 s
    /// invocation on another thread, returned once it runs.
    fn occupy(&self) -> (u32, std::thread::JoinHandle<Answer>) {
        let addr = self.addr();
        let first = invoke(addr, "f", "{}").json()["pid"].as_u64().unwrap() as u32;
        let slow = std::thread::spawn(move || invoke(addr, "f", r#"{"op":"sleep","ms":1500}"#));
        eventually("running", || self.stats().1 == 1);
        (first, slow)
    }
    /// Pids of every process started so far.
    fn pids(&self) -> Vec<u32> {
        self.rec.pids()
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop(Duration::ZERO);
        }
        // then `rec` removes the directory
    }
}

/// An Invoke API answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response (content-length framed) from `s`.
fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let fields: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed in the body");
        body.extend_from_slice(&chunk[..n]);
    }
    Answer {
        status,
        fields,
        body,
    }
}

fn request(name: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nhost: functions\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One invocation on a fresh connection.
fn invoke(addr: SocketAddr, name: &str, body: &str) -> Answer {
    invoke_with(addr, name, body, "")
}

fn invoke_with(addr: SocketAddr, name: &str, body: &str, extra: &str) -> Answer {
    let mut s = connect(addr);
    s.write_all(&request(name, body, extra)).unwrap();
    read_answer(&mut s)
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const APP_PY: &str = r#"
def handler(event, context):
    if event.get("op") == "raise":
        raise KeyError("nope")
    return {"echo": event, "request_id": context.aws_request_id,
            "remaining": context.get_remaining_time_in_millis(),
            "arn": context.invoked_function_arn}
"#;

both_drivers! {
    fn the_official_python_runtime_client_runs_unchanged(d) {
        let base = python().user_base.clone();
        let rec = Record::new("ric");
        let dir = &rec.dir;
        std::fs::write(dir.join("app.py"), APP_PY).unwrap();
        let mut f = function("f", dir, &Fx::default());
        if let FunctionKind::Local(l) = &mut f.kind {
            l.command = vec!["python3".into(), "-m".into(), "awslambdaric".into(), "app.handler".into()];
            l.handler = "app.handler".into();
            l.env.push(("PYTHONUSERBASE".into(), base));
        }
        let h = FunctionsHandle::start(&config(d, vec![f])).unwrap();
        let a = invoke(h.addr(), "f", r#"{"hello":"world"}"#);
        assert_eq!(a.status, 200, "{a:?} {}", String::from_utf8_lossy(&a.body));
        let v = a.json();
        assert_eq!(v["echo"], serde_json::json!({"hello":"world"}));
        assert_eq!(v["request_id"], a.field("x-amzn-RequestId").unwrap());
        assert_eq!(v["arn"], "arn:aws:lambda:us-east-1:000000000000:function:f");
        let left = v["remaining"].as_i64().unwrap();
        assert!(left > 0 && left <= 3000, "remaining {left}");
        let e = invoke(h.addr(), "f", r#"{"op":"raise"}"#);
        assert_eq!(e.status, 200);
        assert_eq!(e.field("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(e.json()["errorType"], "KeyError");
        h.stop(Duration::from_secs(1));
    }

    fn success_cold_then_warm_with_the_runtime_fields(d) {
        let svc = Svc::start(d, &Fx::default());
        let before = epoch_ms();
        let a = invoke(svc.addr(), "f", r#"{"op":"echo","n":1}"#);
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.field("content-type"), Some("application/json"));
        assert_eq!(a.field("X-Amz-Executed-Version"), Some("$LATEST"));
        assert_eq!(a.field("X-Amz-Function-Error"), None);
        let v = a.json();
        assert_eq!(v["event"], serde_json::json!({"op":"echo","n":1}));
        let id = a.field("x-amzn-RequestId").unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "a UUID v4: {id}");
        assert_eq!(v["fields"]["Lambda-Runtime-Aws-Request-Id"], id);
        assert_eq!(
            v["fields"]["Lambda-Runtime-Invoked-Function-Arn"],
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        let deadline: u64 = v["fields"]["Lambda-Runtime-Deadline-Ms"].as_str().unwrap().parse().unwrap();
        assert!(deadline >= before + 2_900 && deadline <= epoch_ms() + 3_000, "deadline {deadline}");
        assert!(v["fields"]["Lambda-Runtime-Trace-Id"].as_str().unwrap().starts_with("Root=1-"));
        let pid = v["pid"].as_u64().unwrap();
        // warm: the same process answers the next one, on a kept-alive connection
        let mut s = connect(svc.addr());
        for _ in 0..2 {
            s.write_all(&request("f", r#"{"op":"echo"}"#, "")).unwrap();
            let b = read_answer(&mut s);
            assert_eq!(b.status, 200);
            assert_eq!(b.json()["pid"].as_u64(), Some(pid));
        }
        assert_eq!(svc.stats(), (1, 0, 0, 1));
    }

    fn the_lambda_environment_and_nothing_else(d) {
        let fx = Fx { env: vec![("TABLE".into(), "pets".into())], ..Fx::default() };
        let svc = Svc::start(d, &fx);
        let a = invoke(svc.addr(), "f", r#"{"op":"env","names":["AWS_LAMBDA_FUNCTION_NAME","_HANDLER","AWS_LAMBDA_RUNTIME_API","AWS_REGION","TABLE","AWS_LAMBDA_FUNCTION_MEMORY_SIZE","CARGO_MANIFEST_DIR"]}"#);
        assert_eq!(a.status, 200, "{a:?}");
        let env = &a.json()["env"];
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "f");
        assert_eq!(env["_HANDLER"], "fake.handler");
        assert_eq!(env["AWS_REGION"], "us-east-1");
        assert_eq!(env["TABLE"], "pets");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
        assert!(env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(env["CARGO_MANIFEST_DIR"], Value::Null, "tollgate's environment leaked");
    }

    fn a_function_error_is_unhandled(d) {
        let svc = Svc::start(d, &Fx::default());
        let a = invoke(svc.addr(), "f", r#"{"op":"raise"}"#);
        assert_eq!(a.status, 200);
        assert_eq!(a.field("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(a.json()["errorType"], "ValueError");
        assert_eq!(a.json()["errorMessage"], "boom on purpose");
        // the process lives on
        assert_eq!(invoke(svc.addr(), "f", "{}").status, 200);
        assert_eq!(svc.stats().0, 1);
    }

    fn a_crash_is_an_exit_error_and_the_process_is_replaced(d) {
        let svc = Svc::start(d, &Fx::default());
        let a = invoke(svc.addr(), "f", r#"{"op":"exit"}"#);
        assert_eq!(a.status, 200);
        assert_eq!(a.field("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(a.json()["errorType"], "Runtime.ExitError");
        let id = a.field("x-amzn-RequestId").unwrap().to_string();
        assert!(a.json()["errorMessage"].as_str().unwrap().starts_with(&format!("RequestId: {id} ")));
        let b = invoke(svc.addr(), "f", "{}");
        assert_eq!(b.status, 200);
        assert_eq!(svc.stats().0, 2, "the replacement was a cold start");
        assert_eq!(svc.pids().len(), 2);
    }

    fn a_hung_invocation_times_out_and_its_process_is_killed(d) {
        let svc = Svc::start(d, &Fx { timeout_ms: 300, ..Fx::default() });
        let t = Instant::now();
        let a = invoke(svc.addr(), "f", r#"{"op":"sleep","ms":60000}"#);
        assert!(t.elapsed() < Duration::from_secs(10), "answered at the deadline, not at the end");
        assert_eq!(a.status, 200);
        assert_eq!(a.field("X-Amz-Function-Error"), Some("Unhandled"));
        let v = a.json();
        assert_eq!(v["errorType"], "Sandbox.Timedout");
        let id = a.field("x-amzn-RequestId").unwrap();
        assert_eq!(
            v["errorMessage"],
            format!("RequestId: {id} Error: Task timed out after 0.30 seconds")
        );
        let pids = svc.pids();
        assert_eq!(pids.len(), 1);
        eventually("the hung process is gone", || !pid_alive(pids[0]));
        eventually("no process left", || svc.stats().3 == 0);
        assert_eq!(invoke(svc.addr(), "f", "{}").status, 200, "a replacement starts");
    }

    fn concurrency_two_never_runs_more_than_two(d) {
        let svc = Svc::start(d, &Fx { concurrency: 2, queue: 16, ..Fx::default() });
        let addr = svc.addr();
        let threads: Vec<_> = (0..6)
            .map(|_| std::thread::spawn(move || invoke(addr, "f", r#"{"op":"sleep","ms":150}"#)))
            .collect();
        let answers: Vec<Answer> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut spans = Vec::new();
        let mut pids = std::collections::BTreeSet::new();
        for a in &answers {
            assert_eq!(a.status, 200, "{a:?}");
            let v = a.json();
            spans.push((v["start"].as_f64().unwrap(), v["end"].as_f64().unwrap()));
            pids.insert(v["pid"].as_u64().unwrap());
        }
        assert!(pids.len() <= 2, "processes: {pids:?}");
        for &(s, _) in &spans {
            let running = spans.iter().filter(|&&(s2, e2)| s2 <= s && s < e2).count();
            assert!(running <= 2, "{running} at once: {spans:?}");
        }
        assert!(svc.pids().len() <= 2);
        assert_eq!(svc.stats().1, 0);
    }

    fn a_full_queue_is_throttled(d) {
        let svc = Svc::start(d, &Fx { concurrency: 1, queue: 1, ..Fx::default() });
        let addr = svc.addr();
        // warm the process so both slow calls are admitted in order
        assert_eq!(invoke(addr, "f", "{}").status, 200);
        let slow: Vec<_> = (0..2)
            .map(|_| std::thread::spawn(move || invoke(addr, "f", r#"{"op":"sleep","ms":400}"#)))
            .collect();
        eventually("one running, one queued", || svc.stats().1 == 1 && svc.stats().2 == 1);
        let a = invoke(addr, "f", "{}");
        assert_eq!(a.status, 429);
        assert_eq!(a.field("x-amzn-ErrorType"), Some("TooManyRequestsException"));
        assert_eq!(
            a.body,
            br#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#
        );
        for t in slow {
            assert_eq!(t.join().unwrap().status, 200);
        }
    }

    fn idle_processes_stop_and_the_next_call_is_cold(d) {
        let svc = Svc::start(d, &Fx { idle_ms: 200, ..Fx::default() });
        let a = invoke(svc.addr(), "f", "{}");
        let first = a.json()["pid"].as_u64().unwrap() as u32;
        eventually("scaled to zero", || svc.stats().3 == 0);
        eventually("the idle process exited", || !pid_alive(first));
        let b = invoke(svc.addr(), "f", "{}");
        assert_eq!(b.status, 200);
        assert_ne!(b.json()["pid"].as_u64().unwrap() as u32, first);
        assert_eq!(svc.stats().0, 2);
    }

    fn reload_with_a_changed_env_starts_new_processes(d) {
        let fx = Fx { env: vec![("FOO".into(), "1".into())], ..Fx::default() };
        let svc = Svc::start(d, &fx);
        let ask = r#"{"op":"env","names":["FOO"]}"#;
        let a = invoke(svc.addr(), "f", ask);
        assert_eq!(a.json()["env"]["FOO"], "1");
        let old = a.json()["pid"].as_u64().unwrap() as u32;
        let fx2 = Fx { env: vec![("FOO".into(), "2".into())], ..Fx::default() };
        let g = function("f", &svc.rec.dir, &fx2);
        assert!(svc.h().apply(config(d, vec![g])), "applied");
        eventually("the old process stopped", || !pid_alive(old));
        let b = invoke(svc.addr(), "f", ask);
        assert_eq!(b.status, 200);
        assert_eq!(b.json()["env"]["FOO"], "2");
        // and a removed function is refused
        assert!(svc.h().apply(config(d, Vec::new())), "applied");
        assert_eq!(invoke(svc.addr(), "f", "{}").status, 404, "removed once apply returned");
    }

    fn reload_changes_concurrency_in_place(d) {
        let fx = Fx { concurrency: 1, queue: 0, ..Fx::default() };
        let svc = Svc::start(d, &fx);
        let addr = svc.addr();
        let (first, slow) = svc.occupy();
        assert_eq!(invoke(addr, "f", "{}").status, 429);
        let fx2 = Fx { concurrency: 2, ..fx };
        assert!(svc.h().apply(config(d, vec![function("f", &svc.rec.dir, &fx2)])), "applied");
        assert_eq!(invoke(addr, "f", "{}").status, 200, "a second process once apply returned");
        assert_eq!(slow.join().unwrap().json()["pid"].as_u64(), Some(first as u64));
        assert!(pid_alive(first), "an in-place change keeps the processes");
        assert_eq!(svc.pids().len(), 2);
    }

    fn a_function_removed_and_added_back_keeps_its_processes_and_stats(d) {
        let fx = Fx { concurrency: 1, queue: 0, ..Fx::default() };
        let svc = Svc::start(d, &fx);
        let addr = svc.addr();
        let (first, slow) = svc.occupy();
        assert!(svc.h().apply(config(d, Vec::new())), "applied");
        // removed, its process still busy: its numbers stay published
        assert_eq!(svc.stats().1, 1, "the removed function's stats while it drains");
        assert!(svc.h().apply(config(d, vec![function("f", &svc.rec.dir, &fx)])), "applied");
        // back before the old process is gone: that process still counts against
        // concurrency 1, so a second invocation is refused, not run in a second process
        assert_eq!(invoke(addr, "f", "{}").status, 429);
        assert_eq!(slow.join().unwrap().json()["pid"].as_u64(), Some(first as u64));
        assert_eq!(svc.stats().0, 1, "one cold start, counted across the removal");
        assert_eq!(svc.pids(), vec![first], "no second process");
    }

    fn stop_drains_what_is_in_flight(d) {
        let mut svc = Svc::start(d, &Fx::default());
        let addr = svc.addr();
        assert_eq!(invoke(addr, "f", "{}").status, 200);
        let slow = std::thread::spawn(move || invoke(addr, "f", r#"{"op":"sleep","ms":300}"#));
        eventually("running", || svc.stats().1 == 1);
        let pids = svc.pids();
        svc.handle.take().unwrap().stop(Duration::from_secs(5));
        assert_eq!(slow.join().unwrap().status, 200, "finished before the stop");
        for p in pids {
            assert!(!pid_alive(p), "process {p} outlived the stop");
        }
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    fn stop_past_its_grace_answers_503_and_kills(d) {
        let mut svc = Svc::start(d, &Fx { timeout_ms: 60_000, ..Fx::default() });
        let addr = svc.addr();
        let slow = std::thread::spawn(move || invoke(addr, "f", r#"{"op":"sleep","ms":60000}"#));
        eventually("running", || svc.stats().1 == 1);
        let pids = svc.pids();
        let t = Instant::now();
        svc.handle.take().unwrap().stop(Duration::from_millis(200));
        assert!(t.elapsed() < Duration::from_secs(10), "the stop is bounded");
        let a = slow.join().unwrap();
        assert_eq!(a.status, 503);
        assert_eq!(a.field("x-amzn-ErrorType"), Some("ServiceException"));
        for p in pids {
            assert!(!pid_alive(p), "process {p} outlived the stop");
        }
    }

    fn invoke_api_errors(d) {
        let svc = Svc::start(d, &Fx::default());
        let a = invoke(svc.addr(), "nope", "{}");
        assert_eq!(a.status, 404);
        assert_eq!(a.field("x-amzn-ErrorType"), Some("ResourceNotFoundException"));
        assert_eq!(a.json()["message"], "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope");
        let a = invoke(svc.addr(), "f", "{not json");
        assert_eq!(a.status, 400);
        assert_eq!(a.field("x-amzn-ErrorType"), Some("InvalidRequestContentException"));
        let a = invoke_with(svc.addr(), "f", "{}", "x-amz-invocation-type: DryRun\r\n");
        assert_eq!(a.status, 204);
        let a = invoke_with(svc.addr(), "f", "{}", "x-amz-invocation-type: Event\r\n");
        assert_eq!(a.status, 400);
        assert_eq!(a.field("x-amzn-ErrorType"), Some("InvalidParameterValueException"));
        // over 6 MB: refused from the head, the connection closed
        let mut s = connect(svc.addr());
        let head = format!(
            "POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            6 * 1024 * 1024 + 1
        );
        s.write_all(head.as_bytes()).unwrap();
        let a = read_answer(&mut s);
        assert_eq!(a.status, 413);
        assert_eq!(a.field("x-amzn-ErrorType"), Some("RequestEntityTooLargeException"));
        assert_eq!(a.field("connection"), Some("close"));
        assert_eq!(svc.stats().0, 0, "nothing started for refused calls");
    }

    fn the_runtime_api_refuses_wrong_ids_unknown_paths_and_large_bodies(d) {
        let svc = Svc::start(d, &Fx::default());
        let a = invoke(svc.addr(), "f", r#"{"op":"probe"}"#);
        assert_eq!(a.status, 200, "{a:?}");
        let p = &a.json()["event"]["probe"];
        assert_eq!(p["wrong_id"][0], 400);
        assert_eq!(
            p["wrong_id"][1],
            r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#
        );
        assert_eq!(p["unknown"], 404);
        assert_eq!(p["too_large"], 413);
        assert_eq!(
            p["too_large_body"],
            r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#
        );
    }

    fn a_runtime_api_listener_holds_at_most_four_connections(d) {
        let svc = Svc::start(d, &Fx::default());
        let a = invoke(svc.addr(), "f", r#"{"op":"env","names":["AWS_LAMBDA_RUNTIME_API"]}"#);
        let api: SocketAddr = a.json()["env"]["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap().parse().unwrap();
        let get = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        // the runtime holds one (parked in next); three more fill the listener, each answered
        let mut held: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut s = connect(api);
                s.write_all(get).unwrap();
                assert_eq!(read_answer(&mut s).status, 404);
                s
            })
            .collect();
        // a fifth is not accepted: its request waits
        let mut fifth = connect(api);
        fifth.write_all(get).unwrap();
        fifth.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut byte = [0u8; 1];
        assert!(fifth.read(&mut byte).is_err(), "answered beyond the bound");
        // until one ends
        held.pop();
        fifth.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = read_answer(&mut fifth);
        assert_eq!(r.status, 404);
        // the function still works through its own connection
        assert_eq!(invoke(svc.addr(), "f", "{}").status, 200);
    }

    fn a_response_over_6_mb_answers_the_invocation_as_a_function_error(d) {
        let svc = Svc::start(d, &Fx::default());
        let a = invoke(svc.addr(), "f", r#"{"op":"big"}"#);
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.field("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(a.json()["errorType"], "Function.ResponseSizeTooLarge");
        // the process carries on: the next invocation is served by it
        let b = invoke(svc.addr(), "f", "{}");
        assert_eq!(b.status, 200, "{b:?}");
        assert_eq!(b.field("X-Amz-Function-Error"), None);
    }

    fn an_init_error_is_answered_after_one_retry(d) {
        let fx = Fx { env: vec![("FAKE_INIT".into(), "error".into())], ..Fx::default() };
        let svc = Svc::start(d, &fx);
        let a = invoke(svc.addr(), "f", "{}");
        assert_eq!(a.status, 200);
        assert_eq!(a.field("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(a.json()["errorType"], "Runtime.FakeInitError");
        assert_eq!(svc.stats().0, 2, "one retry");
    }

    fn output_and_cold_starts_reach_the_log_with_the_request_id(d) {
        let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let l = lines.clone();
        let sink: tollgate::functions::logs::LogSink =
            Arc::new(move |line: &str| l.lock().unwrap().push(line.to_string()));
        let rec = Record::new("logs");
        let dir = &rec.dir;
        let h = FunctionsHandle::start_with_log(
            &config(d, vec![function("f", dir, &Fx::default())]),
            sink,
        )
        .unwrap();
        let a = invoke_with(h.addr(), "f", r#"{"op":"print"}"#, "x-request-id: req-42\r\n");
        assert_eq!(a.status, 200);
        let pid = a.json()["pid"].as_u64().unwrap();
        let has = |want: &str| lines.lock().unwrap().iter().any(|l| l == want);
        eventually("both lines logged", || {
            has("tollgate: function f [req-42] stdout: hello from stdout")
                && has("tollgate: function f [req-42] stderr: hello from stderr")
        });
        let cold = format!("tollgate: function f cold start (pid {pid}) ready in ");
        assert!(
            lines.lock().unwrap().iter().any(|l| l.starts_with(&cold) && l.ends_with(" ms")),
            "{:?}",
            lines.lock().unwrap()
        );
        h.stop(Duration::from_secs(1));
    }

    fn no_functions_at_all(d) {
        let h = FunctionsHandle::start(&config(d, Vec::new())).unwrap();
        assert_eq!(invoke(h.addr(), "f", "{}").status, 404);
        assert!(snapshot(&h.stats()).is_empty());
        h.stop(Duration::from_secs(1));
    }
}
