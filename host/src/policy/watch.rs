//! The live, hot-reloading chain of one policies directory: the notify watcher, the reload
//! thread that loads changes off the hot path, and the atomic swap readers see.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;

use anyhow::{Context as _, ensure};
use arc_swap::ArcSwap;
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use super::chain::Chain;
use super::config::PolicyConfig;
use super::loader::{Loader, Snapshot, check_dir};
use super::status::ModuleStatus;

/// The policy chain of one directory, reloaded when its files change.
pub struct Policies {
    snapshot: Arc<ArcSwap<Snapshot>>,
    config: PolicyConfig,
    // Dropping the debouncer stops the watcher, which ends the reload thread.
    _watcher: Debouncer<RecommendedWatcher>,
}

impl Policies {
    /// Loads every `*.wasm` in `dir` (file-name order) and starts watching it. Modules that
    /// fail to load are refused (logged, listed in [`Policies::status`]) and do not stop the
    /// others. `origins` are the configured origin names: a decision naming another origin is
    /// an invalid decision. Blocks while compiling; needs no async runtime.
    pub fn start(
        dir: &Path,
        config: &PolicyConfig,
        origins: Vec<String>,
    ) -> anyhow::Result<Policies> {
        ensure!(
            !origins.is_empty(),
            "policies need at least one configured origin"
        );
        check_dir(dir)?;
        let mut loader = Loader::new(dir, config, origins)?;
        // Watch before the first scan, so a change made during it is not missed.
        let (events, receiver) = mpsc::channel();
        let mut watcher = new_debouncer(config.reload_debounce, events)
            .context("cannot watch the policies directory")?;
        watcher
            .watcher()
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch the policies directory {}", dir.display()))?;
        loader.scan_until_settled();
        loader.warn_unknown_module_settings();
        let snapshot = Arc::new(ArcSwap::from_pointee(loader.snapshot()));
        let published = Arc::clone(&snapshot);
        thread::Builder::new()
            .name("caje-policy-reload".to_owned())
            .spawn(move || reload(loader, &receiver, &published))
            .context("cannot start the policy reload thread")?;
        Ok(Policies {
            snapshot,
            config: config.clone(),
            _watcher: watcher,
        })
    }

    /// The current chain; cheap. A caller keeps the chain it loaded for the whole request.
    pub fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.snapshot.load().chain)
    }

    /// Every `*.wasm` file of the directory in chain order, refused ones included: digest,
    /// load time, state, last error and counters.
    pub fn status(&self) -> Vec<ModuleStatus> {
        self.snapshot.load().status(&self.config)
    }
}

/// Rescans after every debounced batch of events, and again once a file still being written
/// has settled; publishes a new snapshot when anything changed.
fn reload(
    mut loader: Loader,
    events: &Receiver<DebounceEventResult>,
    published: &ArcSwap<Snapshot>,
) {
    let mut retry_in = None;
    loop {
        let event = if let Some(wait) = retry_in {
            events.recv_timeout(wait)
        } else {
            events.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match event {
            Err(RecvTimeoutError::Disconnected) => return,
            Ok(Err(err)) => tracing::warn!("watching the policies directory failed: {err}"),
            Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
        }
        while events.try_recv().is_ok() {}
        let scan = loader.scan();
        retry_in = scan.retry_in;
        if scan.changed {
            published.store(Arc::new(loader.snapshot()));
        }
    }
}

// The proxy shares both across tokio tasks; this fails to compile if either stops being
// shareable.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Policies>();
    shareable::<Chain>();
};
