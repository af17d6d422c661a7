//! Warnings about repeated trouble (a full disk, a locked manifest, refused connections),
//! logged once per interval with a count of the ones skipped.
//!
//! A failure that hits every request cannot flood the log; counters (metrics) still count
//! every occurrence.

use std::time::{Duration, Instant};

/// Warn at most this often about the same kind of trouble.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(30);

/// Decides when a repeated warning is worth logging again.
#[derive(Debug, Default)]
pub(crate) struct WarnLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    /// `Some(n)` when this occurrence should be logged, `n` being how many were skipped since
    /// the last logged one.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < WARN_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Forgets the trouble (it is over), so the next occurrence is logged at once.
    pub(crate) fn reset(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_logs_once_per_window_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut limiter = WarnLimiter::default();
        assert_eq!(limiter.admit(t0), Some(0));
        assert_eq!(limiter.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.admit(t0 + Duration::from_secs(2)), None);
        assert_eq!(
            limiter.admit(t0 + WARN_EVERY + Duration::from_secs(1)),
            Some(2)
        );
        assert_eq!(
            limiter.admit(t0 + WARN_EVERY + Duration::from_secs(2)),
            None
        );
        assert_eq!(limiter.reset(), 1);
        assert_eq!(
            limiter.admit(t0 + WARN_EVERY + Duration::from_secs(3)),
            Some(0)
        );
    }
}
