//! What `GET /_caje/policies` shows: every `*.wasm` file of the policies directory in chain
//! order, whether it serves, why it was refused, and its counters.

use std::time::SystemTime;

use serde::Serialize;

use super::bindings::WIT_PACKAGE;
use super::config::FailureMode;
use super::module::Module;
use super::precompiled::CompiledFrom;

/// The state of one file of the policies directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleStatus {
    /// The file name, e.g. `10-route.wasm`.
    pub file: String,
    pub state: ModuleState,
    /// `sha256:<hex>` of the version serving (when active) or of the refused file (unless it
    /// could not be read).
    pub digest: Option<String>,
    /// When the serving version was loaded (RFC 3339, UTC).
    pub loaded_at: Option<String>,
    /// Whether the serving version was compiled or loaded from the precompiled cache.
    pub compiled_from: Option<CompiledFrom>,
    /// The contract the serving version was built against, e.g. `caje:policy@0.2.0`.
    pub world: Option<String>,
    /// The hooks the serving version implements (caje calls no others), e.g. `["on-deliver"]`.
    pub hooks: Vec<&'static str>,
    pub failure_mode: FailureMode,
    /// Why the file's current content was refused. With `state = active`, an earlier version
    /// keeps serving.
    pub error: Option<String>,
    /// `sha256:<hex>` of the refused content, when `error` is set.
    pub refused_digest: Option<String>,
    /// Hook calls and failures of the serving version.
    pub calls: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub invalid_decisions: u64,
    /// `on-request` and `on-deliver` calls answered from the decision memo (counted in `calls`
    /// too).
    pub memo_hits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleState {
    /// In the chain.
    Active,
    /// Not in the chain: no version of this file loaded.
    Refused,
}

/// A file's content that failed to load.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// Hex sha256 of the content, if it could be read.
    pub digest: Option<String>,
    pub reason: String,
}

fn sha256(hex: &str) -> String {
    format!("sha256:{hex}")
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

impl ModuleStatus {
    pub(crate) fn new(
        file: &str,
        failure_mode: FailureMode,
        active: Option<&Module>,
        refused: Option<&Refusal>,
    ) -> Self {
        let counts = active
            .map(|module| module.stats.counts())
            .unwrap_or_default();
        let refused_digest = refused
            .and_then(|refusal| refusal.digest.as_deref())
            .map(sha256);
        let digest = active
            .map(|module| sha256(&module.digest))
            .or_else(|| refused_digest.clone());
        ModuleStatus {
            file: file.to_owned(),
            state: if active.is_some() {
                ModuleState::Active
            } else {
                ModuleState::Refused
            },
            digest,
            loaded_at: active.map(|module| rfc3339(module.loaded_at)),
            compiled_from: active.map(|module| module.compiled_from),
            world: active.map(|module| format!("{WIT_PACKAGE}@{}", module.world.version())),
            hooks: active.map_or_else(Vec::new, |module| module.hooks.names()),
            failure_mode,
            error: refused.map(|refusal| refusal.reason.clone()),
            refused_digest,
            calls: counts.calls,
            traps: counts.traps,
            timeouts: counts.timeouts,
            invalid_decisions: counts.invalid_decisions,
            memo_hits: counts.memo_hits,
        }
    }
}
