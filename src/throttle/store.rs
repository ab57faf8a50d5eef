//! Quota usage that survives restarts, and the usage report.
//!
//! Owns: the state file `usage.tsv` under `server.state_dir` (one line per API key: its quota
//! period and units used, and request counters since the process started), written atomically
//! (temporary file, then rename) by a background thread every `api_keys.flush_ms` (default 1 s)
//! and once more at shutdown after the workers stopped, and read back at startup. File I/O never
//! runs on a worker. On a crash, usage since the last flush is lost: at most `flush_ms` worth of
//! requests per key can be admitted again after the restart. Leaves out: the counting itself
//! (see `quota.rs`, `worker.rs`).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::spec::Period;
use super::{wall_secs, Throttle};

/// File name under `state_dir`.
pub const USAGE_FILE: &str = "usage.tsv";
const HEADER: &str = "# tollgate usage v1: key\tplan\tperiod\tperiod_id\tused\tlimit\trequests\tthrottled\tquota_rejected\tshadow_throttled";

/// One key's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLine {
    pub key: String,
    pub plan: String,
    pub period: String,
    pub period_id: u64,
    pub used: u64,
    pub limit: u64,
    pub requests: u64,
    pub throttled: u64,
    pub quota_rejected: u64,
    pub shadow_throttled: u64,
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
    }
}

/// The current usage of every key.
pub fn snapshot(t: &Throttle) -> Vec<UsageLine> {
    t.spec
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let plan = k.plan.and_then(|p| t.spec.plans.get(p));
            let quota = t.key_quota.get(i).and_then(Option::as_ref);
            let (period_id, used) = quota.map_or((0, 0), |q| q.usage());
            UsageLine {
                key: k.name.clone(),
                plan: plan.map_or_else(|| "-".to_string(), |p| p.name.clone()),
                period: quota
                    .map_or("-", |q| period_name(q.spec.period))
                    .to_string(),
                period_id,
                used,
                limit: quota.map_or(0, |q| q.limit()),
                requests: t.key_total(i, |c| &c.requests),
                throttled: t.key_total(i, |c| &c.throttled),
                quota_rejected: t.key_total(i, |c| &c.quota_rejected),
                shadow_throttled: t.key_total(i, |c| &c.shadow_throttled),
            }
        })
        .collect()
}

/// Serialises lines in the file format.
pub fn render(lines: &[UsageLine]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for l in lines {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            l.key,
            l.plan,
            l.period,
            l.period_id,
            l.used,
            l.limit,
            l.requests,
            l.throttled,
            l.quota_rejected,
            l.shadow_throttled
        );
    }
    out
}

/// Parses the file format; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<UsageLine> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            Some(UsageLine {
                key: f.first()?.to_string(),
                plan: f.get(1)?.to_string(),
                period: f.get(2)?.to_string(),
                period_id: n(3)?,
                used: n(4)?,
                limit: n(5)?,
                requests: n(6).unwrap_or(0),
                throttled: n(7).unwrap_or(0),
                quota_rejected: n(8).unwrap_or(0),
                shadow_throttled: n(9).unwrap_or(0),
            })
        })
        .collect()
}

fn file(dir: &Path) -> PathBuf {
    dir.join(USAGE_FILE)
}

/// Writes the current usage atomically.
pub fn flush(t: &Throttle, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{USAGE_FILE}.tmp"));
    std::fs::write(&tmp, render(&snapshot(t)))?;
    std::fs::rename(&tmp, file(dir))
}

/// Reads the saved usage (empty when there is none yet).
pub fn read(dir: &Path) -> io::Result<Vec<UsageLine>> {
    match std::fs::read_to_string(file(dir)) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Restores saved quota usage into `t` for keys whose quota has the same period kind.
pub fn restore(t: &Throttle, dir: &Path) -> io::Result<usize> {
    let saved = read(dir)?;
    let wall = wall_secs();
    let mut restored = 0;
    for (i, k) in t.spec.keys.iter().enumerate() {
        let Some(q) = t.key_quota.get(i).and_then(Option::as_ref) else {
            continue;
        };
        if let Some(line) = saved
            .iter()
            .find(|l| l.key == k.name && l.period == period_name(q.spec.period))
        {
            q.restore(line.period_id, line.used, wall);
            restored += 1;
        }
    }
    Ok(restored)
}

/// The report `tollgate usage` prints: per key, then per plan.
pub fn report(lines: &[UsageLine]) -> String {
    let mut out = String::from(
        "key\tplan\tperiod\tused\tlimit\tremaining\trequests\tthrottled\tquota_rejected\n",
    );
    for l in lines {
        let remaining = if l.limit > 0 {
            l.limit.saturating_sub(l.used).to_string()
        } else {
            "-".to_string()
        };
        let limit = if l.limit > 0 {
            l.limit.to_string()
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            l.key,
            l.plan,
            l.period,
            l.used,
            limit,
            remaining,
            l.requests,
            l.throttled,
            l.quota_rejected
        );
    }
    let mut plans: Vec<&str> = lines.iter().map(|l| l.plan.as_str()).collect();
    plans.sort_unstable();
    plans.dedup();
    out.push_str("\nplan\tkeys\tused\trequests\tthrottled\tquota_rejected\n");
    for p in plans {
        let of: Vec<&UsageLine> = lines.iter().filter(|l| l.plan == p).collect();
        let sum = |f: fn(&UsageLine) -> u64| of.iter().map(|l| f(l)).sum::<u64>();
        let _ = writeln!(
            out,
            "{p}\t{}\t{}\t{}\t{}\t{}",
            of.len(),
            sum(|l| l.used),
            sum(|l| l.requests),
            sum(|l| l.throttled),
            sum(|l| l.quota_rejected)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parse_round_trip() {
        let l = UsageLine {
            key: "alice".into(),
            plan: "gold".into(),
            period: "month".into(),
            period_id: 24_290,
            used: 17,
            limit: 1000,
            requests: 20,
            throttled: 2,
            quota_rejected: 1,
            shadow_throttled: 0,
        };
        assert_eq!(parse(&render(std::slice::from_ref(&l))), vec![l.clone()]);
        let r = report(&[l]);
        assert!(
            r.contains("alice\tgold\tmonth\t17\t1000\t983\t20\t2\t1"),
            "{r}"
        );
        assert!(r.contains("gold\t1\t17\t20\t2\t1"), "{r}");
    }
}
