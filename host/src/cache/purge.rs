//! Dropping pages from this node's store by URL or by key: removed (hard) or rewritten as
//! expired in place (soft). The admin API's purge and the replay of other nodes' purges use it.

use std::collections::BTreeSet;
use std::io;
use std::time::SystemTime;

use super::Cache;
use crate::key::Key;
use crate::purge_mode::PurgeMode;
use crate::sync::blocking;

/// The files a purge reaches on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeTargets {
    /// Every file of each canonical URL (variants and vary record included): a URL or prefix
    /// purge takes whole URLs.
    Urls(BTreeSet<String>),
    /// Exactly these keys, as a tag marks single variants.
    Keys(BTreeSet<Key>),
}

/// What a purge did to this node's files; it carries on past failures and counts them.
#[derive(Debug, Default)]
pub struct PurgeTally {
    /// Files removed (hard) or responses expired (soft).
    pub files: usize,
    pub failed: usize,
    pub first_error: Option<io::Error>,
}

impl PurgeTally {
    /// The tally of work that failed as a whole.
    fn of_error(err: io::Error) -> PurgeTally {
        let mut tally = PurgeTally::default();
        tally.add(Err(err));
        tally
    }

    fn add(&mut self, result: io::Result<usize>) {
        match result {
            Ok(n) => self.files += n,
            Err(err) => {
                self.failed += 1;
                self.first_error.get_or_insert(err);
            }
        }
    }
}

impl Cache {
    /// Removes the targets' files (hard), or expires their responses (soft) so that the next
    /// request revalidates them.
    pub async fn purge(&self, targets: PurgeTargets, mode: PurgeMode) -> PurgeTally {
        let cache = self.clone();
        if mode.is_soft() {
            let keys = blocking(move || Ok(cache.keys_of(targets))).await;
            let (keys, mut tally) =
                keys.unwrap_or_else(|err| (Vec::new(), PurgeTally::of_error(err)));
            for key in keys {
                tally.add(self.expire(&key, SystemTime::now()).await.map(usize::from));
            }
            return tally;
        }
        blocking(move || Ok(cache.remove_all(targets)))
            .await
            .unwrap_or_else(PurgeTally::of_error)
    }

    fn remove_all(&self, targets: PurgeTargets) -> PurgeTally {
        let mut tally = PurgeTally::default();
        match targets {
            PurgeTargets::Urls(urls) => {
                for url in urls {
                    tally.add(self.remove_url(&url));
                }
            }
            PurgeTargets::Keys(keys) => {
                for key in &keys {
                    tally.add(self.remove(key).map(usize::from));
                }
            }
        }
        tally
    }

    /// The keys the targets stand for on this node; a directory that cannot be read counts as
    /// a failure.
    fn keys_of(&self, targets: PurgeTargets) -> (Vec<Key>, PurgeTally) {
        let mut tally = PurgeTally::default();
        let keys = match targets {
            PurgeTargets::Keys(keys) => keys.into_iter().collect(),
            PurgeTargets::Urls(urls) => urls
                .iter()
                .filter_map(|url| match self.keys_of_url(url) {
                    Ok(keys) => Some(keys),
                    Err(err) => {
                        tally.add(Err(err));
                        None
                    }
                })
                .flatten()
                .collect(),
        };
        (keys, tally)
    }
}
