//! Request coalescing: concurrent misses for one key share one origin fetch.
//! The first request leads; the others follow its outcome, each waiting a bounded time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::fetch::Outcome;
use crate::cache::Key;

#[derive(Default)]
pub struct Coalescer {
    flights: Mutex<HashMap<Key, watch::Receiver<Option<Outcome>>>>,
}

pub enum Join {
    /// Nobody is fetching this key: fetch it and publish the outcome through the guard.
    Leader(FlightGuard),
    /// Somebody is: wait for their outcome.
    Follower(watch::Receiver<Option<Outcome>>),
}

/// Held by the fetch that leads a flight; dropping it ends the flight.
pub struct FlightGuard {
    coalescer: Arc<Coalescer>,
    key: Key,
    sender: watch::Sender<Option<Outcome>>,
}

impl Coalescer {
    pub fn join(self: &Arc<Self>, key: &Key) -> Join {
        let mut flights = self.flights.lock().expect("coalescer lock poisoned");
        if let Some(receiver) = flights.get(key) {
            metrics::counter!("caje_coalesced_requests_total").increment(1);
            return Join::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        flights.insert(key.clone(), receiver);
        Join::Leader(FlightGuard {
            coalescer: self.clone(),
            key: key.clone(),
            sender,
        })
    }

    /// Number of fetches in flight (for health and tests).
    pub fn in_flight(&self) -> usize {
        self.flights.lock().expect("coalescer lock poisoned").len()
    }
}

impl FlightGuard {
    pub fn publish(&self, outcome: Outcome) {
        self.sender.send_replace(Some(outcome));
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.coalescer
            .flights
            .lock()
            .expect("coalescer lock poisoned")
            .remove(&self.key);
    }
}

/// Waits for the leader's outcome; `None` when it gave up or took longer than `limit`.
pub async fn follow(
    mut receiver: watch::Receiver<Option<Outcome>>,
    limit: Duration,
) -> Option<Outcome> {
    let waited = tokio::time::timeout(limit, receiver.wait_for(Option::is_some)).await;
    match waited {
        Ok(Ok(outcome)) => outcome.clone(),
        _ => None,
    }
}
