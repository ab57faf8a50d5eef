//! Debian packages a test needs (curl, nghttp2-client, chromium, python3-brotli...), installed
//! once per test process when missing, as README's test command promises on a fresh machine.
//!
//! Installs are serialised within the process (test threads run in parallel) and wait for
//! apt's own locks across processes (`DPkg::Lock::Timeout`); when an install fails (package
//! lists missing or stale on a fresh machine), the lists are updated and the install retried
//! once. A package that still cannot be installed fails the test loudly with apt's output.

use std::process::{Command, Output};
use std::sync::Mutex;

/// Serialises installs within the process.
static LOCK: Mutex<()> = Mutex::new(());

/// How long apt waits for another process's lock, in seconds.
const LOCK_WAIT_S: &str = "600";

fn apt(args: &[&str]) -> Output {
    Command::new("apt-get")
        .args(["-o", &format!("DPkg::Lock::Timeout={LOCK_WAIT_S}"), "-q"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("cannot run apt-get {args:?}: {e}"))
}

/// Makes `present()` true by installing `packages` when it is not (see the module doc).
pub fn install(packages: &[&str], present: impl Fn() -> bool) {
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if present() {
        return;
    }
    let mut args = vec!["install", "-y"];
    args.extend_from_slice(packages);
    let first = apt(&args);
    if first.status.success() && present() {
        return;
    }
    let update = apt(&["update"]);
    let second = apt(&args);
    assert!(
        second.status.success() && present(),
        "installing {packages:?} failed:\n{}\n{}\napt-get update: {}\n{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr),
        update.status,
        String::from_utf8_lossy(&update.stderr),
    );
}

/// Whether `bin --version` (or `arg`) runs successfully.
pub fn runs(bin: &str, arg: &str) -> bool {
    Command::new(bin)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}
