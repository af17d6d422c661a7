//! What can go wrong in a hook call, and how it is counted (for `status()` and as `metrics`
//! counters) and logged (with the module's name, at most once per interval per module).

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{Counter, counter};

use crate::sync::lock;

/// The shortest time between two failure logs of one module; the failures in between are
/// counted and reported with the next log line.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The module trapped: a panic, an out-of-bounds access, the memory cap, a WASI call...
    Trap,
    /// The module ran out of fuel or past `hook_timeout`.
    Timeout,
    /// The module returned a decision the host refused (unknown origin, bad header edit...).
    Invalid,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Invalid => "invalid_decision",
        }
    }
}

/// A failed hook call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FailureKind::Trap => write!(f, "trapped: {}", self.message),
            FailureKind::Timeout => write!(f, "timed out: {}", self.message),
            FailureKind::Invalid => write!(f, "returned an invalid decision: {}", self.message),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Request,
    Response,
    Deliver,
    Error,
}

impl Hook {
    const ALL: [Hook; 4] = [Hook::Request, Hook::Response, Hook::Deliver, Hook::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Request => "on-request",
            Hook::Response => "on-response",
            Hook::Deliver => "on-deliver",
            Hook::Error => "on-error",
        }
    }

    /// The name in metric labels.
    fn label(self) -> &'static str {
        match self {
            Hook::Request => "on_request",
            Hook::Response => "on_response",
            Hook::Deliver => "on_deliver",
            Hook::Error => "on_error",
        }
    }
}

/// Counters of one loaded module.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub calls: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub invalid_decisions: u64,
    /// `on-request` and `on-deliver` calls answered from the memo, without entering the module.
    pub memo_hits: u64,
}

/// Counts and logs the calls and failures of one loaded module.
pub(crate) struct ModuleStats {
    module: String,
    calls: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    invalid: AtomicU64,
    memo_hits: AtomicU64,
    calls_metric: [Counter; 4],
    memo_hits_metric: Counter,
    failures_metric: [Counter; 3],
    last_log: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
    /// The latest failure, as "<hook>: <failure>".
    last_failure: Mutex<Option<String>>,
}

impl ModuleStats {
    /// Registers the module's metrics with the recorder installed now (the admin module's).
    pub fn new(module: &str) -> Self {
        let calls = |hook: Hook| counter!("caje_policy_calls_total", "module" => module.to_owned(), "hook" => hook.label());
        let failures = |kind: FailureKind| counter!("caje_policy_failures_total", "module" => module.to_owned(), "kind" => kind.as_str());
        ModuleStats {
            module: module.to_owned(),
            calls: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            memo_hits: AtomicU64::new(0),
            calls_metric: Hook::ALL.map(calls),
            memo_hits_metric: counter!("caje_policy_memo_hits_total", "module" => module.to_owned()),
            failures_metric: [
                failures(FailureKind::Trap),
                failures(FailureKind::Timeout),
                failures(FailureKind::Invalid),
            ],
            last_log: Mutex::new(None),
            unlogged: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        }
    }

    pub fn record_call(&self, hook: Hook) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.calls_metric[hook as usize].increment(1);
    }

    pub fn record_memo_hit(&self) {
        self.memo_hits.fetch_add(1, Ordering::Relaxed);
        self.memo_hits_metric.increment(1);
    }

    pub fn record_failure(&self, hook: Hook, failure: &Failure) {
        let (count, metric) = match failure.kind {
            FailureKind::Trap => (&self.traps, &self.failures_metric[0]),
            FailureKind::Timeout => (&self.timeouts, &self.failures_metric[1]),
            FailureKind::Invalid => (&self.invalid, &self.failures_metric[2]),
        };
        count.fetch_add(1, Ordering::Relaxed);
        metric.increment(1);
        *lock(&self.last_failure) = Some(format!("{}: {failure}", hook.as_str()));
        self.log(hook, failure);
    }

    /// The latest failure, as "<hook>: <failure>".
    pub fn last_failure(&self) -> Option<String> {
        lock(&self.last_failure).clone()
    }

    fn log(&self, hook: Hook, failure: &Failure) {
        let now = Instant::now();
        {
            let mut last = lock(&self.last_log);
            if last.is_some_and(|at| now.duration_since(at) < LOG_INTERVAL) {
                self.unlogged.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *last = Some(now);
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(
            module = %self.module,
            hook = hook.as_str(),
            kind = failure.kind.as_str(),
            unlogged_failures = unlogged,
            "policy module {} {} in {}{}",
            self.module,
            failure,
            hook.as_str(),
            if unlogged > 0 { format!(" ({unlogged} more failures since the last report)") } else { String::new() },
        );
    }

    pub fn counts(&self) -> Counts {
        Counts {
            calls: self.calls.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            invalid_decisions: self.invalid.load(Ordering::Relaxed),
            memo_hits: self.memo_hits.load(Ordering::Relaxed),
        }
    }
}
