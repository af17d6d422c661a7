//! Per-origin manners of the warmer: fetches spaced to `origin_rate`, and a pause after a
//! failed fetch that doubles with every further failed round.
//!
//! A round is what was started since the origin's last failure: the first failure among them
//! pauses the origin (or doubles the pause), the failures of fetches started before it only
//! count. So a burst of `concurrency` fetches failing together doubles the pause once, and an
//! origin that stays down sees at most `concurrency` fetches per pause.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::PopulateConfig;

pub(crate) struct Gates {
    /// Time between two fetch starts to one origin; zero: no pacing.
    spacing: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    origins: Mutex<HashMap<String, Gate>>,
}

#[derive(Default)]
struct Gate {
    /// When the next fetch may start under `origin_rate`.
    next_start: Option<Instant>,
    /// Failed rounds in a row; 0 while the origin answers.
    rounds: u32,
    pause: Duration,
    paused_until: Option<Instant>,
    last_error: Option<String>,
}

/// A fetch's admission: the round it started in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    round: u32,
}

/// An origin that failed, as the health report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OriginBackoff {
    pub origin: String,
    /// Failed rounds in a row.
    pub failed_rounds: u32,
    /// Milliseconds until warming tries it again (0: it may be tried now).
    pub retry_in_ms: u64,
    pub last_error: Option<String>,
}

impl Gates {
    pub(crate) fn new(config: &PopulateConfig) -> Gates {
        let spacing = match config.origin_rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs(1) / rate,
        };
        Gates {
            spacing,
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            origins: Mutex::default(),
        }
    }

    /// Waits for the origin's turn under `origin_rate`; `None` when the origin is paused (the
    /// row waits for a later pass).
    pub(crate) async fn admit(&self, origin: &str) -> Option<Ticket> {
        let start = self.reserve(origin, Instant::now())?;
        tokio::time::sleep_until(start).await;
        // A failure may have paused the origin while this fetch waited for its turn.
        self.ticket(origin, Instant::now())
    }

    /// Books the origin's next start under `origin_rate`; `None` while it is paused.
    fn reserve(&self, origin: &str, now: Instant) -> Option<Instant> {
        let mut origins = self.lock();
        let gate = origins.entry(origin.to_owned()).or_default();
        if gate.is_paused(now) {
            return None;
        }
        let start = gate.next_start.map_or(now, |next| next.max(now));
        if !self.spacing.is_zero() {
            gate.next_start = Some(start + self.spacing);
        }
        Some(start)
    }

    fn ticket(&self, origin: &str, now: Instant) -> Option<Ticket> {
        let origins = self.lock();
        let gate = origins.get(origin)?;
        (!gate.is_paused(now)).then_some(Ticket { round: gate.rounds })
    }

    /// Books a finished fetch: a failure in the current round starts the next (longer) pause;
    /// a success in the current round ends the origin's failing streak.
    pub(crate) fn settle(&self, origin: &str, ticket: Ticket, failure: Option<&str>) {
        self.settle_at(origin, ticket, failure, Instant::now());
    }

    fn settle_at(&self, origin: &str, ticket: Ticket, failure: Option<&str>, now: Instant) {
        let mut origins = self.lock();
        let gate = origins.entry(origin.to_owned()).or_default();
        let current = ticket.round == gate.rounds;
        match failure {
            None if current => {
                gate.rounds = 0;
                gate.pause = Duration::ZERO;
                gate.paused_until = None;
                gate.last_error = None;
            }
            None => {}
            Some(error) => {
                if current {
                    gate.rounds += 1;
                    gate.pause = if gate.rounds == 1 {
                        self.backoff_min
                    } else {
                        (gate.pause * 2).min(self.backoff_max)
                    };
                    gate.paused_until = Some(now + gate.pause);
                    tracing::warn!(
                        origin,
                        failed_rounds = gate.rounds,
                        pause = ?gate.pause,
                        "warming fetches from this origin fail; leaving it alone: {error}"
                    );
                }
                gate.last_error = Some(error.to_owned());
            }
        }
    }

    /// Whether rows left for later should be tried again now: some failing origin's pause is
    /// over, or no origin is failing any more.
    pub(crate) fn retry_due(&self, now: Instant) -> bool {
        let origins = self.lock();
        let mut failing = origins.values().filter(|gate| gate.rounds > 0).peekable();
        failing.peek().is_none() || failing.any(|gate| !gate.is_paused(now))
    }

    /// The origins that are failing, by name.
    pub(crate) fn failing(&self, now: Instant) -> Vec<OriginBackoff> {
        let origins = self.lock();
        let mut failing: Vec<OriginBackoff> = origins
            .iter()
            .filter(|(_, gate)| gate.rounds > 0)
            .map(|(origin, gate)| OriginBackoff {
                origin: origin.clone(),
                failed_rounds: gate.rounds,
                retry_in_ms: gate.paused_until.map_or(0, |until| {
                    u64::try_from(until.saturating_duration_since(now).as_millis())
                        .unwrap_or(u64::MAX)
                }),
                last_error: gate.last_error.clone(),
            })
            .collect();
        failing.sort_by(|a, b| a.origin.cmp(&b.origin));
        failing
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Gate>> {
        crate::sync::lock(&self.origins)
    }
}

impl Gate {
    fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(origin_rate: u32) -> Gates {
        Gates::new(&PopulateConfig {
            origin_rate,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(300),
            ..PopulateConfig::default()
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Admits a fetch at `now` (no pacing in these gates).
    fn admit(gates: &Gates, origin: &str, now: Instant) -> Option<Ticket> {
        gates.reserve(origin, now)?;
        gates.ticket(origin, now)
    }

    #[test]
    fn a_failed_round_pauses_the_origin_and_the_pause_doubles_up_to_the_cap() {
        let gates = gates(0);
        let mut now = Instant::now();
        let first = admit(&gates, "o", now).unwrap();
        let second = admit(&gates, "o", now).unwrap();
        gates.settle_at("o", first, Some("503"), now);
        // A fetch of the same round failing too does not double the pause again.
        gates.settle_at("o", second, Some("503"), now);
        assert!(admit(&gates, "o", now).is_none(), "paused");
        assert!(admit(&gates, "other", now).is_some(), "other origins go on");
        assert!(!gates.retry_due(now));
        let failing = gates.failing(now);
        assert_eq!((failing[0].failed_rounds, failing[0].retry_in_ms), (1, 100));
        for expected in [200, 300, 300] {
            now += ms(301);
            assert!(gates.retry_due(now));
            let ticket = admit(&gates, "o", now).unwrap();
            gates.settle_at("o", ticket, Some("refused"), now);
            assert_eq!(gates.failing(now)[0].retry_in_ms, expected);
            assert_eq!(gates.failing(now)[0].last_error.as_deref(), Some("refused"));
        }
        now += ms(301);
        let ticket = admit(&gates, "o", now).unwrap();
        gates.settle_at("o", ticket, None, now);
        assert!(gates.failing(now).is_empty());
        assert!(gates.retry_due(now));
    }

    #[test]
    fn a_success_from_before_the_failure_does_not_end_the_pause() {
        let gates = gates(0);
        let now = Instant::now();
        let early = admit(&gates, "o", now).unwrap();
        let failed = admit(&gates, "o", now).unwrap();
        gates.settle_at("o", failed, Some("timeout"), now);
        gates.settle_at("o", early, None, now);
        assert_eq!(gates.failing(now).len(), 1);
        assert!(admit(&gates, "o", now).is_none());
    }

    #[test]
    fn fetches_to_one_origin_are_spaced_by_its_rate() {
        let gates = gates(10);
        let now = Instant::now();
        let starts: Vec<Duration> = (0..4)
            .map(|_| gates.reserve("o", now).unwrap() - now)
            .collect();
        assert_eq!(starts, [ms(0), ms(100), ms(200), ms(300)]);
        assert_eq!(
            gates.reserve("p", now),
            Some(now),
            "each origin has its own pace"
        );
        // Time that passed unused is not saved up for a burst.
        let later = now + ms(5000);
        assert_eq!(gates.reserve("o", later), Some(later));
        assert_eq!(gates.reserve("o", later), Some(later + ms(100)));
    }
}
