//! Per-function worker metrics: what the gateway saw of each Lambda invocation.
//!
//! Owns: [`FunctionCounts`] (invocations, errors, throttles, timeouts and a duration histogram
//! of one function on one worker), [`Outcome`] (how an invocation ended, as counted), their
//! carry-over across reloads by function name ([`carried`]) and merging worker copies
//! ([`merge`]). Updated by the worker that ran the invocation with no atomics (`Rc<RefCell>` in
//! the [`super::Shard`]), copied at a scrape like route metrics. Leaves out: the live numbers
//! only the functions service knows (cold starts, concurrent executions, queue depth,
//! processes: `crate::functions::FunctionStats`, read by the admin listener) and rendering
//! (`prom`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;

/// How an invocation ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The function's answer became the response.
    Success,
    /// A function error, a malformed answer, or an error of the Invoke API (not reached,
    /// refused, broken): the 502s (and a 413 from the service).
    Error,
    /// Throttled (429): concurrency and queue full, or AWS's throttling.
    Throttled,
    /// The function, or the wait for it, ran past its timeout (504).
    TimedOut,
    /// The client went away before the answer: counted as an invocation, nothing else.
    Abandoned,
}

/// One function's numbers on one worker.
#[derive(Debug, Clone)]
pub struct FunctionCounts {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub timeouts: u64,
    /// Invocation duration (Invoke request sent → answer read), µs.
    pub duration: Histogram<u64>,
    pub duration_sum_us: u64,
}

impl Default for FunctionCounts {
    fn default() -> Self {
        FunctionCounts {
            invocations: 0,
            errors: 0,
            throttles: 0,
            timeouts: 0,
            duration: super::histogram(),
            duration_sum_us: 0,
        }
    }
}

impl FunctionCounts {
    /// Counts one invocation.
    pub fn record(&mut self, outcome: Outcome, took: Duration) {
        self.invocations += 1;
        match outcome {
            Outcome::Success | Outcome::Abandoned => {}
            Outcome::Error => self.errors += 1,
            Outcome::Throttled => self.throttles += 1,
            Outcome::TimedOut => self.timeouts += 1,
        }
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        self.duration.saturating_record(us.max(1));
        self.duration_sum_us = self.duration_sum_us.saturating_add(us);
    }

    /// Adds another worker's numbers.
    pub fn add(&mut self, o: &FunctionCounts) {
        self.invocations += o.invocations;
        self.errors += o.errors;
        self.throttles += o.throttles;
        self.timeouts += o.timeouts;
        let _ = self.duration.add(&o.duration);
        self.duration_sum_us = self.duration_sum_us.saturating_add(o.duration_sum_us);
    }
}

/// One cell per function of a config (by index of `Config::functions`).
pub type Cells = Vec<Rc<RefCell<FunctionCounts>>>;

/// Cells for functions named `names`: a function whose name was in `prev_names` keeps its
/// cell from `prev` (invocations finishing on the old config and new ones add up in one place),
/// others start at zero.
pub fn carried(names: &[&str], prev_names: &[&str], prev: &Cells) -> Cells {
    names
        .iter()
        .map(|n| {
            prev_names
                .iter()
                .position(|p| p == n)
                .and_then(|j| prev.get(j))
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Per-function totals over workers' copies (index = function index).
pub fn merge<'a>(
    per_worker: impl IntoIterator<Item = &'a [FunctionCounts]>,
) -> Vec<FunctionCounts> {
    let mut out: Vec<FunctionCounts> = Vec::new();
    for fs in per_worker {
        for (i, f) in fs.iter().enumerate() {
            if out.len() <= i {
                out.resize_with(i + 1, FunctionCounts::default);
            }
            if let Some(m) = out.get_mut(i) {
                m.add(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_count_where_they_belong() {
        let mut c = FunctionCounts::default();
        for o in [
            Outcome::Success,
            Outcome::Error,
            Outcome::Error,
            Outcome::Throttled,
            Outcome::TimedOut,
            Outcome::Abandoned,
        ] {
            c.record(o, Duration::from_millis(2));
        }
        assert_eq!(
            (c.invocations, c.errors, c.throttles, c.timeouts),
            (6, 2, 1, 1)
        );
        assert_eq!(c.duration.len(), 6);
        assert_eq!(c.duration_sum_us, 12_000);
    }

    #[test]
    fn cells_carry_over_by_name_and_merge_exactly() {
        let prev: Cells = vec![Rc::default(), Rc::default()];
        prev[0]
            .borrow_mut()
            .record(Outcome::Success, Duration::from_millis(1));
        prev[1]
            .borrow_mut()
            .record(Outcome::Error, Duration::from_millis(1));
        let next = carried(&["b", "new", "a"], &["a", "b"], &prev);
        assert!(Rc::ptr_eq(&next[0], &prev[1]), "b kept its cell");
        assert!(Rc::ptr_eq(&next[2], &prev[0]), "a kept its cell");
        assert_eq!(
            next[1].borrow().invocations,
            0,
            "a new function starts at 0"
        );
        let w1 = [next[0].borrow().clone(), next[1].borrow().clone()];
        let w2 = [next[0].borrow().clone()];
        let m = merge([&w1[..], &w2[..]]);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].invocations, m[0].errors), (2, 2));
        assert_eq!(m[0].duration.len(), 2);
        assert_eq!(m[1].invocations, 0);
    }
}
