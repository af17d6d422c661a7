//! Reads the policies directory into modules: which `*.wasm` files changed, whether a changed
//! file is complete (settled), loading it, and keeping the previous version when it fails.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::chain::Chain;
use super::config::PolicyConfig;
use super::engine::Runtime;
use super::module::{Module, ModuleSpec};
use super::precompiled::PrecompiledCache;
use super::status::{ModuleStatus, Refusal};

/// How many settle periods a first scan waits for files still being written before it goes on
/// without them (the watcher loads them once they settle).
const START_SETTLE_PERIODS: u32 = 10;

/// The loaded state of the directory, published to readers as one unit.
pub(crate) struct Snapshot {
    pub chain: Arc<Chain>,
    pub files: Vec<ModuleStatusSource>,
}

/// What `status()` needs of one file; counters are read live from the module.
pub(crate) struct ModuleStatusSource {
    file: String,
    active: Option<Arc<Module>>,
    refused: Option<Refusal>,
}

impl Snapshot {
    pub fn status(&self, config: &PolicyConfig) -> Vec<ModuleStatus> {
        self.files
            .iter()
            .map(|file| {
                let failure_mode = config.failure_mode(&file.file);
                ModuleStatus::new(
                    &file.file,
                    failure_mode,
                    file.active.as_deref(),
                    file.refused.as_ref(),
                )
            })
            .collect()
    }
}

/// Identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Fingerprint {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        }
    }
}

#[derive(Default)]
struct FileEntry {
    /// The version last read (loaded or refused); unchanged fingerprints are not re-read.
    seen: Option<Fingerprint>,
    active: Option<Arc<Module>>,
    refused: Option<Refusal>,
}

impl FileEntry {
    fn refuse_unreadable(&mut self, name: &str, path: &Path, err: &io::Error) {
        tracing::warn!(
            module = name,
            "cannot read policy module {}: {err}",
            path.display()
        );
        self.refused = Some(Refusal {
            digest: None,
            reason: format!("{name} cannot be read: {err}"),
        });
    }

    /// What re-reading content with `digest` changes, when it is content already known: the
    /// serving version again (e.g. touched, or a broken version replaced by the good one), or
    /// the content already refused.
    fn known_content(&mut self, digest: &str) -> Option<Refresh> {
        if self
            .active
            .as_ref()
            .is_some_and(|module| module.digest == digest)
        {
            return Some(if self.refused.take().is_some() {
                Refresh::Changed
            } else {
                Refresh::Unchanged
            });
        }
        let refused = self
            .refused
            .as_ref()
            .is_some_and(|refusal| refusal.digest.as_deref() == Some(digest));
        refused.then_some(Refresh::Unchanged)
    }

    /// Serves the loaded module, or keeps the previous version serving and records why the new
    /// content was refused.
    fn record_load(&mut self, name: &str, digest: String, loaded: Result<Module, String>) {
        match loaded {
            Ok(module) => {
                tracing::info!(
                    module = name,
                    digest = %digest,
                    compiled_from = ?module.compiled_from,
                    "loaded policy module {name}"
                );
                self.active = Some(Arc::new(module));
                self.refused = None;
            }
            Err(reason) => {
                let previous = if self.active.is_some() {
                    "; its previous version keeps serving"
                } else {
                    ""
                };
                tracing::warn!(module = name, digest = %digest, "refused policy module {name}: it {reason}{previous}");
                self.refused = Some(Refusal {
                    digest: Some(digest),
                    reason: format!("{name} {reason}"),
                });
            }
        }
    }
}

/// The result of one scan of the directory.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Scan {
    /// The chain or a file's status changed.
    pub changed: bool,
    /// A file is still being written (or changed while read): scan again after this long,
    /// when the first such file will have been left alone for the settle time.
    pub retry_in: Option<Duration>,
}

enum Refresh {
    Unchanged,
    Changed,
    /// Not settled yet; worth reading again after this long.
    Unsettled(Duration),
}

/// A module file's content, or how long until it may be read.
enum Contents {
    Settled(Vec<u8>),
    Unsettled(Duration),
}

pub(crate) struct Loader {
    dir: PathBuf,
    config: PolicyConfig,
    origins: Arc<[String]>,
    runtime: Arc<Runtime>,
    cache: PrecompiledCache,
    files: BTreeMap<String, FileEntry>,
}

impl Loader {
    pub fn new(dir: &Path, config: &PolicyConfig, origins: Vec<String>) -> anyhow::Result<Loader> {
        let runtime = Runtime::new(config)?;
        let cache_dir = config
            .precompiled_dir
            .clone()
            .or_else(|| default_cache_dir(dir));
        let cache = PrecompiledCache::new(cache_dir, runtime.engine());
        Ok(Loader {
            dir: dir.to_path_buf(),
            config: config.clone(),
            origins: origins.into(),
            runtime,
            cache,
            files: BTreeMap::new(),
        })
    }

    /// How long a file must stay unmodified before it is read.
    pub fn settle_time(&self) -> Duration {
        self.config.reload_debounce
    }

    /// Brings the loaded modules in line with the directory.
    pub fn scan(&mut self) -> Scan {
        let listing = match list_modules(&self.dir) {
            Ok(listing) => listing,
            Err(err) => {
                tracing::warn!(
                    "cannot read the policies directory {}: {err}",
                    self.dir.display()
                );
                return Scan::default();
            }
        };
        let before = self.files.len();
        self.files.retain(|name, _| listing.contains_key(name));
        let mut scan = Scan {
            changed: self.files.len() != before,
            retry_in: None,
        };
        for (name, path) in listing {
            match self.refresh(&name, &path) {
                Refresh::Unchanged => {}
                Refresh::Changed => scan.changed = true,
                Refresh::Unsettled(wait) => {
                    scan.retry_in = Some(scan.retry_in.map_or(wait, |other| other.min(wait)));
                }
            }
        }
        if scan.changed {
            let active: HashSet<&str> = self
                .files
                .values()
                .filter_map(|file| file.active.as_ref())
                .map(|m| m.digest.as_str())
                .collect();
            self.cache.prune(&active);
        }
        scan
    }

    /// Brings one file's entry in line with the file: unchanged, re-read, loaded or refused.
    fn refresh(&mut self, name: &str, path: &Path) -> Refresh {
        let Ok(meta) = fs::metadata(path) else {
            // Removed since it was listed: the removal's own event triggers the next scan.
            return Refresh::Unchanged;
        };
        let fingerprint = Fingerprint::of(&meta);
        let settle = self.config.reload_debounce;
        let entry = self.files.entry(name.to_owned()).or_default();
        if entry.seen == Some(fingerprint) {
            return Refresh::Unchanged;
        }
        let wasm = match read_settled(path, &meta, settle) {
            Ok(Contents::Settled(wasm)) => wasm,
            Ok(Contents::Unsettled(wait)) => return Refresh::Unsettled(wait),
            Err(err) => {
                entry.seen = Some(fingerprint);
                entry.refuse_unreadable(name, path, &err);
                return Refresh::Changed;
            }
        };
        entry.seen = Some(fingerprint);
        let digest = hex::encode(Sha256::digest(&wasm));
        if let Some(known) = entry.known_content(&digest) {
            return known;
        }
        let spec = ModuleSpec {
            name,
            digest: &digest,
            failure_mode: self.config.failure_mode(name),
            origins: Arc::clone(&self.origins),
            memo_entries: self.config.memo_entries(name),
        };
        let loaded = Module::load(&self.runtime, &self.cache, spec, &wasm);
        self.files
            .get_mut(name)
            .expect("the entry was made above")
            .record_load(name, digest, loaded);
        Refresh::Changed
    }

    /// Scans until no file is still being written, for at most `START_SETTLE_PERIODS` settle
    /// times; files still unsettled then are left to the next scans.
    pub fn scan_until_settled(&mut self) {
        let give_up = Instant::now() + self.settle_time() * START_SETTLE_PERIODS;
        while let Some(wait) = self.scan().retry_in {
            if Instant::now() + wait > give_up {
                break;
            }
            thread::sleep(wait);
        }
    }

    /// The chain and file states as they are now.
    pub fn snapshot(&self) -> Snapshot {
        let modules = self
            .files
            .values()
            .filter_map(|file| file.active.clone())
            .collect();
        let memo_entries = if self.config.memoize {
            self.config.memo_entries
        } else {
            0
        };
        let chain = Chain::new(modules, memo_entries);
        let files = self
            .files
            .iter()
            // A file still being written has neither: it is not shown until it is read.
            .filter(|(_, file)| file.active.is_some() || file.refused.is_some())
            .map(|(name, file)| ModuleStatusSource {
                file: name.clone(),
                active: file.active.clone(),
                refused: file.refused.clone(),
            })
            .collect();
        Snapshot {
            chain: Arc::new(chain),
            files,
        }
    }

    /// Logs configured modules that are not in the directory (likely a typo in a file name).
    pub fn warn_unknown_module_settings(&self) {
        for name in self
            .config
            .modules
            .keys()
            .filter(|name| !self.files.contains_key(*name))
        {
            tracing::warn!(
                "policies.modules names {name:?}, which is not a *.wasm file in {}; its settings apply to nothing",
                self.dir.display()
            );
        }
    }
}

/// `<parent>/<dir name>.precompiled`, next to the policies directory rather than inside it, so
/// writing the cache never triggers the directory watcher.
fn default_cache_dir(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    Some(dir.with_file_name(format!("{name}.precompiled")))
}

/// The `*.wasm` files of `dir` by name (hidden files, e.g. editors' and `cp`'s temporaries, and
/// non-UTF-8 names are skipped).
fn list_modules(dir: &Path) -> io::Result<BTreeMap<String, PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        if name.ends_with(".wasm") && !name.starts_with('.') && path.is_file() {
            modules.insert(name, path);
        }
    }
    Ok(modules)
}

/// Reads `path` if it has not been modified for `settle` and does not change while read, so a
/// file still being written is never loaded half-way; otherwise says how long to wait.
fn read_settled(path: &Path, meta: &fs::Metadata, settle: Duration) -> io::Result<Contents> {
    let age = meta
        .modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok());
    // An mtime in the future (clock skew) cannot be reasoned about: treat it as settled.
    if let Some(age) = age.filter(|age| *age < settle) {
        return Ok(Contents::Unsettled(settle - age));
    }
    let wasm = fs::read(path)?;
    let after = fs::metadata(path)?;
    let unchanged =
        Fingerprint::of(&after) == Fingerprint::of(meta) && wasm.len() as u64 == meta.len();
    Ok(if unchanged {
        Contents::Settled(wasm)
    } else {
        Contents::Unsettled(settle)
    })
}

/// Checks that `dir` can be watched and scanned.
pub(crate) fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = fs::metadata(dir).with_context(|| {
        format!("cannot open the policies directory {}: create it (it may stay empty) or fix policies_dir", dir.display())
    })?;
    anyhow::ensure!(
        meta.is_dir(),
        "the policies directory {} is not a directory: fix policies_dir",
        dir.display()
    );
    Ok(())
}
