//! Helpers for the local-function tests: the Python interpreter with the real AWS runtime
//! client (`awslambdaric`, installed with pip once per test binary when missing), a temp
//! directory per test that the handlers record into (pids, intervals), `[[function]]` tables
//! running tests/fixtures/lambda/py/app.py, process checks through /proc, and metric lookups.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Python that runs the functions: its absolute path (a pyenv shim needs a `HOME` the
/// function does not get) and its user base (where `pip --user` put awslambdaric).
pub struct Python {
    pub exe: String,
    pub user_base: String,
}

/// The absolute path of the interpreter behind `python3` (`sys.executable`: not a pyenv shim,
/// which needs more of the environment than a function gets), resolved once per test binary.
pub fn python_exe() -> &'static str {
    static EXE: OnceLock<String> = OnceLock::new();
    EXE.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "python3 -c failed");
        String::from_utf8(out.stdout)
            .expect("utf-8 path")
            .trim()
            .to_string()
    })
}

/// The interpreter behind `python3`, with awslambdaric importable: installed with
/// `pip install --user` the first time a test asks when the import fails. Panics (fails the
/// test, never skips it) when Python is missing or the install fails.
pub fn python() -> &'static Python {
    static PY: OnceLock<Python> = OnceLock::new();
    PY.get_or_init(|| {
        let imports = || {
            Command::new("python3")
                .args(["-c", "import awslambdaric"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !imports() {
            let pip = |extra: &[&str]| {
                Command::new("python3")
                    .args(["-m", "pip", "install", "--quiet", "--user"])
                    .args(extra)
                    .arg("awslambdaric")
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            // PEP 668 system Pythons refuse --user installs without the flag; old pips do
            // not know the flag
            let ok = pip(&["--break-system-packages"]) || pip(&[]);
            assert!(
                ok && imports(),
                "awslambdaric is not importable and `python3 -m pip install --user awslambdaric` failed"
            );
        }
        let out = Command::new("python3")
            .args(["-c", "import site; print(site.getuserbase())"])
            .output()
            .expect("python3 runs");
        let text = String::from_utf8(out.stdout).expect("utf-8 paths");
        Python {
            exe: python_exe().to_string(),
            user_base: text.lines().next().expect("user base").to_string(),
        }
    })
}

/// tests/fixtures/lambda: the standard-library runtime client `fake_runtime.py` (run with its
/// `app.handler`) and the awslambdaric handlers under `py/`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lambda")
}

/// The handlers' directory (the functions' `cwd`).
pub fn handlers_dir() -> PathBuf {
    fixtures_dir().join("py")
}

/// A `[[function]]` table running `fake_runtime.py app.handler` in [`fixtures_dir`] with the
/// `env` entries (TOML inline-table pairs, e.g. `TABLE = "pets"`) and `timeout_ms`.
pub fn fake_function(name: &str, env: &str, timeout_ms: u64) -> String {
    format!(
        "[[function]]\nname = \"{name}\"\ncommand = [\"{}\", \"fake_runtime.py\", \"app.handler\"]\n\
         cwd = \"{}\"\nenv = {{ {env} }}\ntimeout_ms = {timeout_ms}\nconcurrency = 2\n\n",
        python_exe(),
        fixtures_dir().display()
    )
}

/// A fresh directory a test's functions record into (`RECORD_DIR`), removed on drop.
pub struct Record {
    pub dir: PathBuf,
}

impl Record {
    pub fn new(tag: &str) -> Record {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tollgate-lambda-local-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pids")).unwrap();
        Record { dir }
    }

    /// Every process started so far (each writes its pid at init).
    pub fn pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(self.dir.join("pids"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The (start, end, pid) intervals the `slow` handler recorded, epoch ns.
    pub fn intervals(&self) -> Vec<(u128, u128, u32)> {
        std::fs::read_to_string(self.dir.join("intervals"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                )
            })
            .collect()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Knobs of one `[[function]]` table.
#[derive(Clone)]
pub struct Func<'a> {
    pub name: &'a str,
    /// The handler in app.py (`echo`, `shape`, ...), or `missing.handler` for an init error.
    pub handler: &'a str,
    pub timeout_ms: u64,
    pub concurrency: u32,
    pub queue: u32,
    pub idle_ms: u64,
    /// Extra `env` entries (TOML inline-table pairs, e.g. `TABLE = "pets"`).
    pub env: &'a str,
}

impl<'a> Func<'a> {
    pub fn new(name: &'a str, handler: &'a str) -> Func<'a> {
        Func {
            name,
            handler,
            timeout_ms: 1000,
            concurrency: 2,
            queue: 16,
            idle_ms: 60_000,
            env: "",
        }
    }

    /// The `[[function]]` table: `python -m awslambdaric app.HANDLER` in the handlers'
    /// directory, recording into `rec`.
    pub fn toml(&self, rec: &Record) -> String {
        let py = python();
        let handler = if self.handler.contains('.') {
            self.handler.to_string()
        } else {
            format!("app.{}", self.handler)
        };
        let extra = if self.env.is_empty() {
            String::new()
        } else {
            format!(", {}", self.env)
        };
        format!(
            "[[function]]\nname = \"{}\"\ncommand = [\"{}\", \"-m\", \"awslambdaric\", \"{handler}\"]\ncwd = \"{}\"\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\", PYTHONUSERBASE = \"{}\", RECORD_DIR = \"{}\"{extra} }}\ntimeout_ms = {}\nconcurrency = {}\nqueue = {}\nidle_ms = {}\n\n",
            self.name,
            py.exe,
            handlers_dir().display(),
            py.user_base,
            rec.dir.display(),
            self.timeout_ms,
            self.concurrency,
            self.queue,
            self.idle_ms,
        )
    }
}

/// A `[[route]]` invoking `function`.
pub fn route(key: &str, function: &str, format: &str) -> String {
    format!(
        "[[route]]\nkey = \"{key}\"\nfunction = \"{function}\"\npayload_format = \"{format}\"\n\n"
    )
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits (bounded: 10 s) until `cond` holds.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that none of `pids` exists any more (waits a bounded while for the reaper).
pub fn assert_gone(pids: &[u32]) {
    for &p in pids {
        eventually(&format!("process {p} gone"), || !pid_alive(p));
    }
}

/// The admin `/metrics` text.
pub fn metrics(admin: SocketAddr) -> String {
    super::get(admin, "/metrics").text()
}

/// The value of one metric line (`name{labels}`), or None when absent.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Asserts `series` has `value` in the admin's `/metrics`.
pub fn assert_metric(admin: SocketAddr, series: &str, value: f64) {
    let m = metrics(admin);
    assert_eq!(metric(&m, series), Some(value), "{series} in\n{m}");
}

/// Asserts the admin's `/metrics` text holds each of `lines`.
pub fn assert_metrics_contain(admin: SocketAddr, lines: &[&str]) {
    let m = metrics(admin);
    for line in lines {
        assert!(m.contains(line), "{line} missing in\n{m}");
    }
}

/// The entry of function `name` in the admin's `/stats`.
pub fn function_stats(admin: SocketAddr, name: &str) -> serde_json::Value {
    let st: serde_json::Value = serde_json::from_str(&super::get(admin, "/stats").text()).unwrap();
    st["functions"]
        .as_array()
        .expect("a functions list")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {st}"))
        .clone()
}

/// A fresh access-log path for one test (`[access_log]` with [`access_log_toml`]).
pub fn log_path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "tollgate-lambda-local-{}-{tag}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// A JSON access log written at once.
pub fn access_log_toml(path: &Path) -> String {
    format!(
        "[access_log]\npath = \"{}\"\nformat = \"json\"\nflush_ms = 1\n\n",
        path.display()
    )
}

/// The access-log line of request `rid` (waits for the writer, bounded).
pub fn log_line(path: &Path, rid: &str) -> String {
    let pat = format!("\"requestId\":\"{rid}\"");
    let mut found = None;
    eventually(&format!("an access-log line for {rid}"), || {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        found = log.lines().find(|l| l.contains(&pat)).map(str::to_string);
        found.is_some()
    });
    found.unwrap()
}

/// The JSON value of `name` in an access-log line.
pub fn field(line: &str, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    v.get(name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing in {line}"))
}

/// The Rust function (tests/fixtures/lambda/rust-hello, AWS's `lambda_runtime` crate), built
/// once per test binary into `TARGET/lambda-fixtures` (TARGET: the target dir this test
/// binary was built in, found from its own path `TARGET/debug/deps/NAME`). Prints how long
/// the build took. Panics when it does not build.
pub fn rust_hello() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("TARGET/debug/deps/NAME")
            .to_path_buf();
        let fixtures = target.join("lambda-fixtures");
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/lambda/rust-hello/Cargo.toml");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let started = Instant::now();
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&fixtures)
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "rust-hello does not build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "rust-hello (lambda_runtime) built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        fixtures.join("debug/rust-hello")
    })
}
