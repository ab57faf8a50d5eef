//! Exposition: the Prometheus text format (`GET /metrics`) and the dashboard's JSON
//! (`GET /stats`), both built from merged worker snapshots.
//!
//! Prometheus names follow the text format rules (`# HELP`/`# TYPE` once per family, histogram
//! `_bucket`/`_sum`/`_count` with cumulative `le` buckets ending in `+Inf`, label values escaped).

use std::fmt::Write as _;

use super::{merge, RouteStats, Snapshot};

#[path = "prom_functions.rs"]
mod functions;
#[path = "prom_ws.rs"]
mod ws;
use crate::config::Config;
use crate::throttle::Throttle;

/// Histogram bucket bounds, seconds.
pub const BUCKETS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// What the renderers need besides the snapshots.
pub struct Context<'a> {
    pub config: &'a Config,
    pub throttle: &'a Throttle,
    pub uptime_s: f64,
    pub version: &'a str,
    /// Access-log lines dropped because the writer could not keep up (None: no access log).
    pub log_dropped: Option<u64>,
    /// The config generation served (0 until the first reload).
    pub generation: u64,
    /// Reloads applied and rejected since startup.
    pub reloads: [u64; 2],
    /// The local functions' live numbers (cold starts, concurrency, queue depth, processes).
    pub functions: Vec<std::sync::Arc<crate::functions::FunctionStats>>,
}

/// Escapes a label value (`\\`, `"`, newline).
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The value of the `route` label of route `i`, escaped, for a `route="{}"` in the format: a
/// route of a stage continues it with its `stage` and `canary` labels
/// (`GET /pets",stage="pets/prod",canary="false`), so every family that is by route is by
/// stage and side too.
fn route_labels(cx: &Context<'_>, i: usize) -> String {
    let Some(rc) = cx.config.routes.get(i) else {
        return "$none".to_string();
    };
    match cx.config.apis.stage_of(i) {
        Some((stage, canary)) => format!(
            "{}\",stage=\"{}\",canary=\"{canary}",
            escape(&rc.label),
            escape(&stage.id)
        ),
        None => escape(&rc.id),
    }
}

fn route_label(cx: &Context<'_>, i: usize) -> String {
    cx.config
        .routes
        .get(i)
        .map_or_else(|| "$none".to_string(), |r| r.id.clone())
}

/// A metric family's `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A histogram's `_bucket` (cumulative, ending in `+Inf`), `_sum` and `_count` lines for one
/// `label = value` (the value already escaped).
fn labelled_histogram(
    out: &mut String,
    name: &str,
    (label, value): (&str, &str),
    h: &hdrhistogram::Histogram<u64>,
    sum_us: u64,
) {
    for le in BUCKETS_S {
        let us = (le * 1e6) as u64;
        let n = if h.is_empty() {
            0
        } else {
            h.count_between(0, us)
        };
        let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}",
        h.len()
    );
    let _ = writeln!(
        out,
        "{name}_sum{{{label}=\"{value}\"}} {}",
        sum_us as f64 / 1e6
    );
    let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {}", h.len());
}

/// A route's requests by status class: 1xx, 2xx, 3xx, 4xx, 5xx (one pass over its counts).
pub fn class_counts(r: &RouteStats) -> [u64; 5] {
    let mut c = [0u64; 5];
    for ((_, status), n) in &r.counts {
        if let Some(slot) = usize::from(*status / 100)
            .checked_sub(1)
            .and_then(|i| c.get_mut(i))
        {
            *slot += n;
        }
    }
    c
}

/// A route's requests with a status in `lo..lo + 100` (`lo` a multiple of 100, 100..=500).
fn class(r: &RouteStats, lo: u16) -> u64 {
    let i = usize::from(lo / 100).saturating_sub(1);
    class_counts(r).get(i).copied().unwrap_or(0)
}

/// The Prometheus text exposition.
pub fn render(cx: &Context<'_>, snaps: &[Snapshot]) -> String {
    let routes = merge(snaps);
    let mut out = String::with_capacity(8192);
    family(
        &mut out,
        "tollgate_build_info",
        "gauge",
        "Version of the running gateway.",
    );
    let _ = writeln!(
        out,
        "tollgate_build_info{{version=\"{}\"}} 1",
        escape(cx.version)
    );
    family(
        &mut out,
        "tollgate_uptime_seconds",
        "gauge",
        "Seconds since the gateway started.",
    );
    let _ = writeln!(out, "tollgate_uptime_seconds {:.3}", cx.uptime_s);

    family(
        &mut out,
        "tollgate_requests_total",
        "counter",
        "Requests answered, by route, method and status (API Gateway Count).",
    );
    for (i, r) in routes.iter().enumerate() {
        let route = route_labels(cx, i);
        let mut keys: Vec<_> = r.counts.iter().collect();
        keys.sort();
        for ((m, s), n) in keys {
            let _ = writeln!(
                out,
                "tollgate_requests_total{{route=\"{route}\",method=\"{m}\",status=\"{s}\"}} {n}"
            );
        }
    }
    for (name, lo, help) in [
        (
            "tollgate_4xx_errors_total",
            400,
            "Requests answered with a 4xx status (API Gateway 4XXError).",
        ),
        (
            "tollgate_5xx_errors_total",
            500,
            "Requests answered with a 5xx status (API Gateway 5XXError).",
        ),
    ] {
        family(&mut out, name, "counter", help);
        for (i, r) in routes.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{route=\"{}\"}} {}",
                route_labels(cx, i),
                class(r, lo)
            );
        }
    }
    family(
        &mut out,
        "tollgate_request_duration_seconds",
        "histogram",
        "Whole-request latency, by route.",
    );
    for (i, r) in routes.iter().enumerate() {
        let route = route_labels(cx, i);
        labelled_histogram(
            &mut out,
            "tollgate_request_duration_seconds",
            ("route", &route),
            &r.latency,
            r.latency_sum_us,
        );
    }
    family(
        &mut out,
        "tollgate_integration_duration_seconds",
        "histogram",
        "Upstream time of HTTP integrations, by route.",
    );
    for (i, r) in routes.iter().enumerate() {
        let route = route_labels(cx, i);
        labelled_histogram(
            &mut out,
            "tollgate_integration_duration_seconds",
            ("route", &route),
            &r.integration,
            r.integration_sum_us,
        );
    }
    for (name, help, pick) in [
        (
            "tollgate_received_bytes_total",
            "Bytes received from clients, by route.",
            0,
        ),
        (
            "tollgate_sent_bytes_total",
            "Bytes sent to clients, by route.",
            1,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for (i, r) in routes.iter().enumerate() {
            let v = if pick == 0 { r.bytes_in } else { r.bytes_out };
            let _ = writeln!(out, "{name}{{route=\"{}\"}} {v}", route_labels(cx, i));
        }
    }
    type Pick = fn(&crate::throttle::KeyCounters) -> &std::sync::atomic::AtomicU64;
    let throttle_families: [(&str, &str, Pick); 3] = [
        (
            "tollgate_throttled_total",
            "Requests refused by a rate limit, by route.",
            |c| &c.throttled,
        ),
        (
            "tollgate_quota_rejected_total",
            "Requests refused by an exhausted quota, by route.",
            |c| &c.quota_rejected,
        ),
        (
            "tollgate_shadow_throttled_total",
            "Requests a shadow-mode limit would have refused, by route.",
            |c| &c.shadow_throttled,
        ),
    ];
    for (name, help, pick) in throttle_families {
        family(&mut out, name, "counter", help);
        for i in 0..cx.config.routes.len() {
            let n = cx.throttle.route_total(i, pick);
            let _ = writeln!(out, "{name}{{route=\"{}\"}} {n}", route_labels(cx, i));
        }
    }
    upstream_families(&mut out, cx, snaps);
    ws::websocket_families(&mut out, cx, &routes);
    let merged = super::functions::merge(snaps.iter().map(|s| &s.functions[..]));
    functions::function_families(&mut out, &cx.config.functions, &cx.functions, &merged);
    family(
        &mut out,
        "tollgate_worker_active_connections",
        "gauge",
        "Open client connections, by worker.",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "tollgate_worker_active_connections{{worker=\"{}\",driver=\"{}\"}} {}",
            s.worker, s.driver, s.active_connections
        );
    }
    family(
        &mut out,
        "tollgate_config_generation",
        "gauge",
        "The config generation served: 0 at startup, one more per applied reload.",
    );
    let _ = writeln!(out, "tollgate_config_generation {}", cx.generation);
    tls_certificates(&mut out, cx.config, unix_now());
    tls_handshakes(&mut out, cx.config, snaps);
    http2_families(&mut out, snaps);
    family(
        &mut out,
        "tollgate_reloads_total",
        "counter",
        "Reloads (SIGHUP or POST /reload), by result.",
    );
    let _ = writeln!(
        out,
        "tollgate_reloads_total{{result=\"ok\"}} {}",
        cx.reloads[0]
    );
    let _ = writeln!(
        out,
        "tollgate_reloads_total{{result=\"error\"}} {}",
        cx.reloads[1]
    );
    if let Some(d) = cx.log_dropped {
        family(
            &mut out,
            "tollgate_access_log_dropped_total",
            "counter",
            "Access-log lines dropped because the disk could not keep up.",
        );
        let _ = writeln!(out, "tollgate_access_log_dropped_total {d}");
    }
    family(
        &mut out,
        "tollgate_worker_requests_total",
        "counter",
        "Requests served, by worker.",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "tollgate_worker_requests_total{{worker=\"{}\",driver=\"{}\"}} {}",
            s.worker, s.driver, s.requests
        );
    }
    out
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `tollgate_tls_certificate_expiry_seconds{name}`: seconds from `now` until each
/// `[[tls.certificate]]` expires (negative once expired), computed from the config at scrape
/// time. Certificates sharing a name are one series, the soonest to expire (a series must be
/// unique, and the soonest is the one to act on).
pub fn tls_certificates(out: &mut String, config: &Config, now: i64) {
    let Some(tls) = &config.tls else { return };
    let mut by_name: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for c in &tls.certificates {
        let e = by_name.entry(c.name.as_str()).or_insert(c.not_after);
        *e = (*e).min(c.not_after);
    }
    family(
        out,
        "tollgate_tls_certificate_expiry_seconds",
        "gauge",
        "Seconds until a TLS certificate expires (negative: expired), by its first SAN name or subject CN.",
    );
    for (name, not_after) in by_name {
        let _ = writeln!(
            out,
            "tollgate_tls_certificate_expiry_seconds{{name=\"{}\"}} {}",
            escape(name),
            not_after.saturating_sub(now)
        );
    }
}

/// `tollgate_tls_handshakes_total{version,result}`: TLS handshakes on client connections,
/// summed over the workers, in label order. Shown when TLS is configured or any was counted
/// (a reload that removed `[tls]` keeps the counters).
fn tls_handshakes(out: &mut String, config: &Config, snaps: &[Snapshot]) {
    let mut total: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for s in snaps {
        for (&k, &n) in &s.handshakes {
            *total.entry(k).or_insert(0) += n;
        }
    }
    if config.tls.is_none() && total.is_empty() {
        return;
    }
    family(
        out,
        "tollgate_tls_handshakes_total",
        "counter",
        "TLS handshakes on client connections, by protocol version and result (ok or why it failed).",
    );
    for ((version, result), n) in total {
        let _ = writeln!(
            out,
            "tollgate_tls_handshakes_total{{version=\"{version}\",result=\"{result}\"}} {n}"
        );
    }
}

/// `tollgate_http2_goaway_total{reason}` (GOAWAYs the gateway sent: an abuse defence's name,
/// a protocol error, `idle_timeout`, `drain`, `zero_window_stall`) and
/// `tollgate_http2_streams_reset_total`, summed over the workers. Always shown (zero without HTTP/2 traffic), so alerts need no absent().
fn http2_families(out: &mut String, snaps: &[Snapshot]) {
    let mut goaway: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut resets = 0u64;
    for s in snaps {
        for (&k, &n) in &s.http2.goaway {
            *goaway.entry(k).or_insert(0) += n;
        }
        resets += s.http2.streams_reset;
    }
    family(
        out,
        "tollgate_http2_goaway_total",
        "counter",
        "HTTP/2 connections the gateway ended with GOAWAY, by reason (abuse defence, protocol error, idle_timeout, drain, zero_window_stall).",
    );
    for (reason, n) in goaway {
        let _ = writeln!(
            out,
            "tollgate_http2_goaway_total{{reason=\"{reason}\"}} {n}"
        );
    }
    family(
        out,
        "tollgate_http2_streams_reset_total",
        "counter",
        "HTTP/2 streams reset (by the client, for a stream error, or by the gateway).",
    );
    let _ = writeln!(out, "tollgate_http2_streams_reset_total {resets}");
}

fn upstream_families(out: &mut String, cx: &Context<'_>, snaps: &[Snapshot]) {
    type Pick = fn(&super::TargetSnapshot) -> u64;
    let fams: [(&str, &str, &str, Pick); 4] = [
        (
            "tollgate_upstream_pool_idle",
            "gauge",
            "Idle pooled connections, by upstream target (all workers).",
            |t| t.idle,
        ),
        (
            "tollgate_upstream_connects_total",
            "counter",
            "Connections opened, by upstream target.",
            |t| t.connects,
        ),
        (
            "tollgate_upstream_errors_total",
            "counter",
            "Connect and protocol errors, by upstream target.",
            |t| t.errors,
        ),
        (
            "tollgate_upstream_healthy",
            "gauge",
            "1 when the target is considered healthy.",
            |t| u64::from(t.healthy),
        ),
    ];
    for (name, kind, help, pick) in fams {
        family(out, name, kind, help);
        for (u, up) in cx.config.upstreams.iter().enumerate() {
            for (t, addr) in up.targets.iter().enumerate() {
                let per: Vec<u64> = snaps
                    .iter()
                    .filter_map(|s| s.upstreams.get(u).and_then(|v| v.get(t)))
                    .map(pick)
                    .collect();
                let v = if name == "tollgate_upstream_healthy" {
                    u64::from(!per.is_empty() && per.iter().all(|&h| h == 1))
                } else {
                    per.iter().sum()
                };
                let _ = writeln!(
                    out,
                    "{name}{{upstream=\"{}\",target=\"{addr}\"}} {v}",
                    escape(&up.name)
                );
            }
        }
    }
}

pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The dashboard's JSON (`GET /stats`).
pub fn stats_json(
    cx: &Context<'_>,
    snaps: &[Snapshot],
    config_hash: &str,
    last_reload: &str,
) -> String {
    let routes = merge(snaps);
    let mut out = String::with_capacity(4096);
    out.push_str("{\"version\":");
    json_str(&mut out, cx.version);
    let _ = write!(out, ",\"uptime_s\":{:.3},\"config_hash\":", cx.uptime_s);
    json_str(&mut out, config_hash);
    out.push_str(",\"last_reload\":");
    json_str(&mut out, last_reload);
    out.push_str(",\"workers\":[");
    for (i, s) in snaps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"id\":{},\"driver\":\"{}\",\"active_connections\":{},\"requests\":{}}}",
            s.worker, s.driver, s.active_connections, s.requests
        );
    }
    let total: u64 = routes.iter().flat_map(|r| r.counts.values()).sum();
    let [_, c2, c3, c4, c5] = routes.iter().map(class_counts).fold([0u64; 5], |mut t, c| {
        for (t, c) in t.iter_mut().zip(c) {
            *t += c;
        }
        t
    });
    let throttled: u64 = (0..cx.config.routes.len())
        .map(|i| cx.throttle.route_total(i, |c| &c.throttled))
        .sum();
    let _ = write!(out, "],\"totals\":{{\"requests\":{total},\"status_2xx\":{c2},\"status_3xx\":{c3},\"status_4xx\":{c4},\"status_5xx\":{c5},\"throttled\":{throttled}}},\"routes\":[");
    for (i, r) in routes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"route\":");
        json_str(&mut out, &route_label(cx, i));
        let q = |h: &hdrhistogram::Histogram<u64>, p: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(p) as f64 / 1000.0
            }
        };
        let _ = write!(
            out,
            ",\"requests\":{},\"status_2xx\":{},\"status_4xx\":{},\"status_5xx\":{},\"throttled\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
            r.counts.values().sum::<u64>(),
            class(r, 200),
            class(r, 400),
            class(r, 500),
            cx.throttle.route_total(i, |c| &c.throttled),
            q(&r.latency, 0.5),
            q(&r.latency, 0.99)
        );
    }
    out.push_str("],\"upstreams\":[");
    for (u, up) in cx.config.upstreams.iter().enumerate() {
        if u > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, &up.name);
        out.push_str(",\"targets\":[");
        let weights = up.weights();
        for (t, (addr, weight)) in up.targets.iter().zip(&weights).enumerate() {
            if t > 0 {
                out.push(',');
            }
            let per: Vec<&super::TargetSnapshot> = snaps
                .iter()
                .filter_map(|s| s.upstreams.get(u).and_then(|v| v.get(t)))
                .collect();
            let healthy = !per.is_empty() && per.iter().all(|t| t.healthy);
            let _ = write!(
                out,
                "{{\"address\":\"{addr}\",\"weight\":{weight},\"healthy\":{healthy},\"idle\":{},\"connects\":{},\"errors\":{}}}",
                per.iter().map(|t| t.idle).sum::<u64>(),
                per.iter().map(|t| t.connects).sum::<u64>(),
                per.iter().map(|t| t.errors).sum::<u64>()
            );
        }
        out.push_str("]}");
    }
    out.push(']');
    keys_json(&mut out, cx);
    let merged = super::functions::merge(snaps.iter().map(|s| &s.functions[..]));
    functions::functions_json(&mut out, &cx.config.functions, &cx.functions, &merged);
    out.push('}');
    out
}

/// `,"keys":[...]`: per API key, its requests, rate-limit refusals and quota use (the numbers
/// `tollgate usage` reports; `quota_limit` 0: the key's plan has no quota).
fn keys_json(out: &mut String, cx: &Context<'_>) {
    out.push_str(",\"keys\":[");
    let lines = crate::throttle::store::snapshot(cx.throttle);
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let enabled = cx.config.throttle.keys.get(i).is_some_and(|k| k.enabled);
        out.push_str("{\"name\":");
        json_str(out, &l.key);
        out.push_str(",\"plan\":");
        json_str(out, &l.plan);
        out.push_str(",\"period\":");
        json_str(out, &l.period);
        let _ = write!(
            out,
            ",\"enabled\":{enabled},\"requests\":{},\"throttled\":{},\"quota_rejected\":{},\"quota_used\":{},\"quota_limit\":{}}}",
            l.requests, l.throttled, l.quota_rejected, l.used, l.limit
        );
    }
    out.push(']');
}
