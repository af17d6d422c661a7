//! Phase 4, coalesce: concurrent misses for one key share one origin fetch. The first request
//! leads the flight; the others follow what it shares, each waiting a bounded time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::fetch::Failure;
use super::store::StreamingFill;
use crate::cache::Entry;
use crate::key::Key;
use crate::request_counts;
use crate::sync::lock;

/// What a flight produced that every request that waited for it may be answered with.
#[derive(Clone)]
pub enum Shared {
    /// The response is being stored; followers read the fill.
    Filling(Arc<StreamingFill>),
    /// The origin confirmed the stored entry (304).
    Revalidated(Arc<Entry>),
    Failed(Arc<Failure>),
}

/// A flight's state as its followers watch it.
#[derive(Clone)]
enum Published {
    Pending,
    Shared(Shared),
    /// The response was for the leading client alone: followers fetch for themselves.
    NotShared,
}

type Watch = watch::Receiver<Published>;

#[derive(Default)]
pub struct Coalescer {
    flights: Mutex<HashMap<Key, Watch>>,
}

pub enum Join {
    /// Nobody is fetching this key: fetch it and publish what it gives through the guard.
    Leader(FlightGuard),
    /// Somebody is: wait for what it shares.
    Follower(Follower),
}

/// A request waiting for another request's flight.
pub struct Follower(Watch);

/// Held by the fetch that leads a flight; dropping it ends the flight.
pub struct FlightGuard {
    coalescer: Arc<Coalescer>,
    key: Key,
    sender: watch::Sender<Published>,
}

impl Coalescer {
    pub fn join(self: &Arc<Self>, key: &Key) -> Join {
        let mut flights = lock(&self.flights);
        if let Some(receiver) = flights.get(key) {
            request_counts::add_coalesced();
            return Join::Follower(Follower(receiver.clone()));
        }
        let (sender, receiver) = watch::channel(Published::Pending);
        flights.insert(key.clone(), receiver);
        Join::Leader(FlightGuard {
            coalescer: self.clone(),
            key: key.clone(),
            sender,
        })
    }

    fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }
}

/// A view of the coalescer for health: how many fetches are in flight.
#[derive(Clone)]
pub struct Flights(Arc<Coalescer>);

impl Flights {
    pub(super) fn of(coalescer: &Arc<Coalescer>) -> Flights {
        Flights(coalescer.clone())
    }

    /// Origin fetches in flight now (one per key however many requests wait for it).
    pub fn in_flight(&self) -> usize {
        self.0.in_flight()
    }
}

impl FlightGuard {
    /// Wakes the followers: with what they may share, or `None` to fetch for themselves.
    pub fn publish(&self, shared: Option<Shared>) {
        self.sender
            .send_replace(shared.map_or(Published::NotShared, Published::Shared));
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        lock(&self.coalescer.flights).remove(&self.key);
    }
}

impl Follower {
    /// Waits for what the leader shares; `None` when it shares nothing, gave up, or took
    /// longer than `limit`.
    pub async fn wait(mut self, limit: Duration) -> Option<Shared> {
        let published = self
            .0
            .wait_for(|published| !matches!(published, Published::Pending));
        match tokio::time::timeout(limit, published).await {
            Ok(Ok(published)) => match &*published {
                Published::Shared(shared) => Some(shared.clone()),
                Published::Pending | Published::NotShared => None,
            },
            _ => None,
        }
    }
}
