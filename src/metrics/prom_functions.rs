//! The Lambda function metric families of the Prometheus exposition and the `functions` array
//! of `/stats` (a part of [`super`]).
//!
//! Owns: `tollgate_function_invocations_total`, `_errors_total`, `_throttles_total`,
//! `_timeouts_total` (counters) and `tollgate_function_duration_seconds` (histogram), each by
//! function, from the workers' merged [`FunctionCounts`]; `tollgate_function_cold_starts_total`
//! (counter), `tollgate_function_concurrent_executions`, `tollgate_function_queue_depth` and
//! `tollgate_function_processes` (gauges) of each local function, from the functions service's
//! live [`FunctionStats`]. Shown only when functions are configured (or still running after a
//! reload removed them). Leaves out: counting (the worker shards and the functions thread) and
//! the text format's helpers (the parent's).
//!
//! Data flow: the config's functions + merged counts + live stats → lines.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{escape, family, json_str, labelled_histogram};
use crate::config::{FunctionConfig, FunctionKind};
use crate::functions::FunctionStats;
use crate::metrics::FunctionCounts;

/// A worker-side family: name, help, and its value for a function.
type Counter = (&'static str, &'static str, fn(&FunctionCounts) -> u64);

/// A live family: name, type, help, and its value for a local function.
type Live = (
    &'static str,
    &'static str,
    &'static str,
    fn(&FunctionStats) -> u64,
);

/// The function families (nothing without functions).
pub(super) fn function_families(
    out: &mut String,
    functions: &[FunctionConfig],
    live: &[Arc<FunctionStats>],
    merged: &[FunctionCounts],
) {
    if functions.is_empty() && live.is_empty() {
        return;
    }
    let none = FunctionCounts::default();
    let counters: [Counter; 4] = [
        (
            "tollgate_function_invocations_total",
            "Lambda invocations, by function.",
            |c| c.invocations,
        ),
        (
            "tollgate_function_errors_total",
            "Invocations that failed (function error, malformed answer, Invoke API error), by function.",
            |c| c.errors,
        ),
        (
            "tollgate_function_throttles_total",
            "Invocations refused with 429 (concurrency and queue full, or AWS throttling), by function.",
            |c| c.throttles,
        ),
        (
            "tollgate_function_timeouts_total",
            "Invocations that ran past their timeout, by function.",
            |c| c.timeouts,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        for (i, f) in functions.iter().enumerate() {
            let v = value(merged.get(i).unwrap_or(&none));
            let _ = writeln!(out, "{name}{{function=\"{}\"}} {v}", escape(&f.name));
        }
    }
    let name = "tollgate_function_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Invocation duration as the gateway saw it (Invoke request sent to answer read), by function.",
    );
    for (i, f) in functions.iter().enumerate() {
        let c = merged.get(i).unwrap_or(&none);
        let label = escape(&f.name);
        labelled_histogram(
            out,
            name,
            ("function", &label),
            &c.duration,
            c.duration_sum_us,
        );
    }
    let lives: [Live; 4] = [
        (
            "tollgate_function_cold_starts_total",
            "counter",
            "Processes started for an invocation (cold starts), by local function.",
            |s| s.cold_starts.load(Ordering::Relaxed),
        ),
        (
            "tollgate_function_concurrent_executions",
            "gauge",
            "Invocations running in a process now, by local function.",
            |s| s.concurrent.load(Ordering::Relaxed),
        ),
        (
            "tollgate_function_queue_depth",
            "gauge",
            "Invocations waiting for a free process now, by local function.",
            |s| s.queued.load(Ordering::Relaxed),
        ),
        (
            "tollgate_function_processes",
            "gauge",
            "Processes alive now (starting, idle or busy), by local function.",
            |s| s.processes.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in lives {
        family(out, name, kind, help);
        for s in live {
            let _ = writeln!(
                out,
                "{name}{{function=\"{}\"}} {}",
                escape(&s.name),
                value(s)
            );
        }
    }
}

/// `,"functions":[...]`: per configured function, its kind, the workers' counts, the duration
/// quantiles (ms) and, for a local function, the live numbers (0 until it first ran).
pub(super) fn functions_json(
    out: &mut String,
    functions: &[FunctionConfig],
    live: &[Arc<FunctionStats>],
    merged: &[FunctionCounts],
) {
    out.push_str(",\"functions\":[");
    let none = FunctionCounts::default();
    for (i, f) in functions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let c = merged.get(i).unwrap_or(&none);
        let kind = match f.kind {
            FunctionKind::Local(_) => "local",
            FunctionKind::Remote(_) => "remote",
        };
        let q = |p: f64| {
            if c.duration.is_empty() {
                0.0
            } else {
                c.duration.value_at_quantile(p) as f64 / 1000.0
            }
        };
        let s = live.iter().find(|s| s.name == f.name);
        let l = |pick: fn(&FunctionStats) -> u64| s.map_or(0, |s| pick(s));
        out.push_str("{\"name\":");
        json_str(out, &f.name);
        let _ = write!(
            out,
            ",\"kind\":\"{kind}\",\"invocations\":{},\"errors\":{},\"throttles\":{},\"timeouts\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"cold_starts\":{},\"concurrent\":{},\"queue_depth\":{},\"processes\":{}}}",
            c.invocations,
            c.errors,
            c.throttles,
            c.timeouts,
            q(0.5),
            q(0.99),
            l(|s| s.cold_starts.load(Ordering::Relaxed)),
            l(|s| s.concurrent.load(Ordering::Relaxed)),
            l(|s| s.queued.load(Ordering::Relaxed)),
            l(|s| s.processes.load(Ordering::Relaxed)),
        );
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Outcome;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    fn remote(name: &str) -> FunctionConfig {
        FunctionConfig {
            name: name.into(),
            timeout: Duration::from_secs(3),
            kind: FunctionKind::Remote(crate::config::RemoteFunction {
                arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{name}"),
                region: "eu-west-1".into(),
                account: "123456789012".into(),
                function_path: name.into(),
                upstream: 0,
                host: "lambda.eu-west-1.amazonaws.com".into(),
                credentials: None,
            }),
        }
    }

    fn local(name: &str) -> FunctionConfig {
        FunctionConfig {
            name: name.into(),
            timeout: Duration::from_secs(3),
            kind: FunctionKind::Local(crate::config::LocalFunction {
                command: vec!["python3".into()],
                cwd: "/".into(),
                env: vec![],
                handler: "app.handler".into(),
                concurrency: 2,
                idle: Duration::from_secs(60),
                queue: 4,
                memory_mb: 128,
                user: None,
            }),
        }
    }

    fn sample() -> (
        Vec<FunctionConfig>,
        Vec<Arc<FunctionStats>>,
        Vec<FunctionCounts>,
    ) {
        let functions = vec![local("hello"), remote("or\"ders")];
        let live = vec![Arc::new(FunctionStats {
            name: "hello".into(),
            cold_starts: AtomicU64::new(2),
            concurrent: AtomicU64::new(1),
            queued: AtomicU64::new(3),
            processes: AtomicU64::new(2),
        })];
        let mut hello = FunctionCounts::default();
        hello.record(Outcome::Success, Duration::from_micros(300));
        hello.record(Outcome::Error, Duration::from_millis(20));
        hello.record(Outcome::Throttled, Duration::from_micros(80));
        let mut orders = FunctionCounts::default();
        orders.record(Outcome::TimedOut, Duration::from_secs(4));
        (functions, live, vec![hello, orders])
    }

    #[test]
    fn families_render_exactly() {
        let (functions, live, merged) = sample();
        let mut out = String::new();
        function_families(&mut out, &functions, &live, &merged);
        let buckets = |f: &str, counts: [u64; 18], total: u64, sum: &str| {
            let mut s = String::new();
            for (le, n) in super::super::BUCKETS_S.iter().zip(counts) {
                s += &format!("tollgate_function_duration_seconds_bucket{{function=\"{f}\",le=\"{le}\"}} {n}\n");
            }
            s += &format!("tollgate_function_duration_seconds_bucket{{function=\"{f}\",le=\"+Inf\"}} {total}\n");
            s += &format!("tollgate_function_duration_seconds_sum{{function=\"{f}\"}} {sum}\n");
            s += &format!("tollgate_function_duration_seconds_count{{function=\"{f}\"}} {total}\n");
            s
        };
        let expected = String::new()
            + "# HELP tollgate_function_invocations_total Lambda invocations, by function.\n"
            + "# TYPE tollgate_function_invocations_total counter\n"
            + "tollgate_function_invocations_total{function=\"hello\"} 3\n"
            + "tollgate_function_invocations_total{function=\"or\\\"ders\"} 1\n"
            + "# HELP tollgate_function_errors_total Invocations that failed (function error, malformed answer, Invoke API error), by function.\n"
            + "# TYPE tollgate_function_errors_total counter\n"
            + "tollgate_function_errors_total{function=\"hello\"} 1\n"
            + "tollgate_function_errors_total{function=\"or\\\"ders\"} 0\n"
            + "# HELP tollgate_function_throttles_total Invocations refused with 429 (concurrency and queue full, or AWS throttling), by function.\n"
            + "# TYPE tollgate_function_throttles_total counter\n"
            + "tollgate_function_throttles_total{function=\"hello\"} 1\n"
            + "tollgate_function_throttles_total{function=\"or\\\"ders\"} 0\n"
            + "# HELP tollgate_function_timeouts_total Invocations that ran past their timeout, by function.\n"
            + "# TYPE tollgate_function_timeouts_total counter\n"
            + "tollgate_function_timeouts_total{function=\"hello\"} 0\n"
            + "tollgate_function_timeouts_total{function=\"or\\\"ders\"} 1\n"
            + "# HELP tollgate_function_duration_seconds Invocation duration as the gateway saw it (Invoke request sent to answer read), by function.\n"
            + "# TYPE tollgate_function_duration_seconds histogram\n"
            // 80 µs ≤ 0.0001 s; 300 µs ≤ 0.0005 s; 20 ms ≤ 0.025 s
            + &buckets("hello", [1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 3, "0.02038")
            + &buckets("or\\\"ders", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1], 1, "4")
            + "# HELP tollgate_function_cold_starts_total Processes started for an invocation (cold starts), by local function.\n"
            + "# TYPE tollgate_function_cold_starts_total counter\n"
            + "tollgate_function_cold_starts_total{function=\"hello\"} 2\n"
            + "# HELP tollgate_function_concurrent_executions Invocations running in a process now, by local function.\n"
            + "# TYPE tollgate_function_concurrent_executions gauge\n"
            + "tollgate_function_concurrent_executions{function=\"hello\"} 1\n"
            + "# HELP tollgate_function_queue_depth Invocations waiting for a free process now, by local function.\n"
            + "# TYPE tollgate_function_queue_depth gauge\n"
            + "tollgate_function_queue_depth{function=\"hello\"} 3\n"
            + "# HELP tollgate_function_processes Processes alive now (starting, idle or busy), by local function.\n"
            + "# TYPE tollgate_function_processes gauge\n"
            + "tollgate_function_processes{function=\"hello\"} 2\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn nothing_without_functions() {
        let mut out = String::new();
        function_families(&mut out, &[], &[], &[]);
        assert_eq!(out, "");
    }

    #[test]
    fn stats_json_lists_each_function() {
        let (functions, live, merged) = sample();
        let mut out = String::new();
        functions_json(&mut out, &functions, &live, &merged);
        let v: serde_json::Value =
            serde_json::from_str(&out[1..].replacen("\"functions\":", "", 1))
                .unwrap_or_else(|e| panic!("{e}: {out}"));
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        let h = &a[0];
        assert_eq!(h["name"], "hello");
        assert_eq!(h["kind"], "local");
        assert_eq!(
            (
                &h["invocations"],
                &h["errors"],
                &h["throttles"],
                &h["timeouts"]
            ),
            (&3.into(), &1.into(), &1.into(), &0.into())
        );
        assert_eq!(
            (
                &h["cold_starts"],
                &h["concurrent"],
                &h["queue_depth"],
                &h["processes"]
            ),
            (&2.into(), &1.into(), &3.into(), &2.into())
        );
        let p50 = h["p50_ms"].as_f64().unwrap();
        assert!((0.29..=0.31).contains(&p50), "{p50}");
        let o = &a[1];
        assert_eq!(o["name"], "or\"ders");
        assert_eq!(o["kind"], "remote");
        assert_eq!(o["timeouts"], 1);
        assert_eq!(o["cold_starts"], 0);
    }
}
