//! The on-disk cache of compiled modules, keyed by the module's digest and the engine's
//! compatibility hash, so a restart with many policies skips compilation (15–75 ms each).
//!
//! Entries unused for a week are pruned, so the directory may be shared (e.g. by rollbacks,
//! several caje processes, or test runs).

use std::collections::HashSet;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::Xxh3Default;

const EXTENSION: &str = "cwasm";
/// Entries (and stray temporary files) not used for this long are removed.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a loaded module's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompiledFrom {
    /// Compiled from the `.wasm` file (and then written to the cache).
    Source,
    /// Loaded from the precompiled cache.
    PrecompiledCache,
}

pub(crate) struct PrecompiledCache {
    dir: Option<PathBuf>,
    engine_tag: String,
    write_failed: AtomicBool,
}

impl PrecompiledCache {
    /// A cache in `dir`; `None` compiles in memory every time.
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = Xxh3Default::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        PrecompiledCache {
            dir,
            engine_tag: format!("{:016x}", hasher.finish()),
            write_failed: AtomicBool::new(false),
        }
    }

    fn file_name(&self, digest: &str) -> String {
        format!("{digest}-{}.{EXTENSION}", self.engine_tag)
    }

    /// The component for `wasm` (whose hex sha256 is `digest`), from the cache when possible.
    pub fn load(
        &self,
        engine: &Engine,
        digest: &str,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, CompiledFrom)> {
        let path = self
            .dir
            .as_ref()
            .map(|dir| dir.join(self.file_name(digest)));
        if let Some(path) = path.as_deref().filter(|path| path.is_file()) {
            // Read, not mapped: a mapped file truncated by someone else would crash the process
            // (SIGBUS) when wasmtime next touches it.
            // SAFETY: the file was written by `store` below from `Engine::precompile_component`
            // output (atomically, via rename) and is named after the engine's compatibility
            // hash; wasmtime also checks its header and version before using it.
            match fs::read(path)
                .map_err(wasmtime::Error::from)
                .and_then(|bytes| unsafe { Component::deserialize(engine, bytes) })
            {
                Ok(component) => {
                    // The modification time records the last use, for pruning.
                    let _ = fs::File::options()
                        .append(true)
                        .open(path)
                        .and_then(|file| file.set_modified(SystemTime::now()));
                    return Ok((component, CompiledFrom::PrecompiledCache));
                }
                Err(err) => {
                    tracing::warn!(
                        "ignoring unusable precompiled module {}: {err}",
                        path.display()
                    );
                    let _ = fs::remove_file(path);
                }
            }
        }
        let compiled = engine.precompile_component(wasm)?;
        if let Some(path) = path {
            self.store(&path, &compiled);
        }
        // SAFETY: `compiled` was just produced by `precompile_component` of this engine.
        let component = unsafe { Component::deserialize(engine, &compiled) }?;
        Ok((component, CompiledFrom::Source))
    }

    fn store(&self, path: &Path, compiled: &[u8]) {
        // Unique per writer: two processes may compile the same module at once.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let serial = WRITES.fetch_add(1, Ordering::Relaxed);
        let mut temp = path.as_os_str().to_owned();
        temp.push(format!(".{}-{serial}.tmp", std::process::id()));
        let temp = PathBuf::from(temp);
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::File::create(&temp))
            .and_then(|mut file| file.write_all(compiled).and_then(|()| file.sync_all()))
            .and_then(|()| fs::rename(&temp, path));
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            if !self.write_failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "cannot write the precompiled policy cache {} ({err}); modules will be compiled on every start: \
                     make the directory writable or set policies.precompiled_dir",
                    path.display()
                );
            }
        }
    }

    /// Removes entries not used for a week, unless their digest is in `keep` (the modules in
    /// use). Only files named like the cache's own are touched.
    pub fn prune(&self, keep: &HashSet<&str>) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let keep: HashSet<String> = keep.iter().map(|digest| self.file_name(digest)).collect();
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let entry_name = name
                .split_once(&format!(".{EXTENSION}."))
                .map_or(name, |(stem, _)| stem);
            let stale = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified)
                        .is_ok_and(|age| age > RETENTION)
                });
            if stale && is_cache_file(entry_name) && !keep.contains(name) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether `name` looks like `<64 hex digest>-<16 hex engine tag>.cwasm` (or a temporary file
/// of one, whose name is that without the extension).
fn is_cache_file(name: &str) -> bool {
    let stem = name.strip_suffix(&format!(".{EXTENSION}")).unwrap_or(name);
    stem.split_once('-').is_some_and(|(digest, tag)| {
        digest.len() == 64
            && tag.len() == 16
            && digest
                .chars()
                .chain(tag.chars())
                .all(|c| c.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_file_names_are_pruned() {
        let digest = "ab".repeat(32);
        assert!(is_cache_file(&format!("{digest}-0123456789abcdef.cwasm")));
        assert!(!is_cache_file(&format!("{digest}-0123456789abcdef.wasm")));
        assert!(!is_cache_file("notes.cwasm"));
        assert!(!is_cache_file(&format!("{digest}-short.cwasm")));
    }
}
