//! The modules of one generation, in file-name order: runs a hook through each, handing every
//! module the previous module's decision, and applies each module's failure mode.

use std::sync::Arc;

use super::config::FailureMode;
use super::decision::{CacheVerdict, RequestDecision};
use super::failure::{Failure, Hook};
use super::memo::{DecisionMemo, Trace};
use super::module::Module;
use super::view::{RequestView, ResponseView};

/// An immutable chain of loaded modules. Hot reload swaps in a new chain; a request keeps the
/// chain it started with.
pub struct Chain {
    modules: Vec<Arc<Module>>,
    /// Whole-chain decisions, when every module may be memoized: one lookup instead of one per
    /// module.
    memo: Option<DecisionMemo>,
}

/// A module with `failure = "closed"` failed: the proxy refuses the request (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy module {module} refused the request: {reason}")]
pub struct PolicyRefusal {
    /// The module's file name.
    pub module: String,
    pub reason: String,
}

impl Chain {
    pub(crate) fn new(modules: Vec<Arc<Module>>, memo_entries: usize) -> Self {
        let memoizes = memo_entries > 0 && modules.iter().all(|module| module.memoizes());
        Chain {
            modules,
            memo: memoizes.then(|| DecisionMemo::new(memo_entries)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The file names of the modules, in the order they run.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(|module| module.name.as_str())
    }

    /// Runs `on-request` of every module in order; each gets the previous decision (the first
    /// gets `current`). A module that traps, times out or returns an invalid decision is
    /// counted and logged, then skipped (`open`) or refuses the request (`closed`).
    pub fn on_request(
        &self,
        req: &RequestView<'_>,
        current: RequestDecision,
    ) -> Result<RequestDecision, PolicyRefusal> {
        if self.modules.is_empty() {
            return Ok(current);
        }
        if let Some(memo) = &self.memo
            && let Some((decision, _)) = memo.lookup(req, &current)
        {
            for module in &self.modules {
                module.stats.record_call(Hook::OnRequest);
                module.stats.record_memo_hit();
            }
            return Ok(decision);
        }
        // The chain's decision rests on every module's reads; a failure is never memoized.
        let mut chain_trace = self.memo.as_ref().map(|_| (current.clone(), Trace::new()));
        let mut decision = current;
        for module in &self.modules {
            module.stats.record_call(Hook::OnRequest);
            match module.on_request(req, &decision) {
                Ok((outcome, trace)) => {
                    decision = outcome.value;
                    match (&mut chain_trace, trace) {
                        (Some((_, chain)), Some(trace)) => chain.extend(trace),
                        _ => chain_trace = None,
                    }
                }
                Err(failure) => {
                    chain_trace = None;
                    handle(module, Hook::OnRequest, &failure)?;
                }
            }
        }
        if let (Some(memo), Some((initial, trace))) = (&self.memo, chain_trace) {
            memo.insert(trace, req, &initial, &decision);
        }
        Ok(decision)
    }

    /// Runs `on-response` of every module in order, like [`Chain::on_request`]; `current` is
    /// the host's verdict from the HTTP caching rules.
    pub fn on_response(
        &self,
        req: &RequestView<'_>,
        resp: &ResponseView<'_>,
        current: CacheVerdict,
    ) -> Result<CacheVerdict, PolicyRefusal> {
        if self.modules.is_empty() {
            return Ok(current);
        }
        let mut verdict = current;
        for module in &self.modules {
            module.stats.record_call(Hook::OnResponse);
            match module.on_response(req, resp, &verdict) {
                Ok(outcome) => verdict = outcome.value,
                Err(failure) => handle(module, Hook::OnResponse, &failure)?,
            }
        }
        Ok(verdict)
    }
}

fn handle(module: &Module, hook: Hook, failure: &Failure) -> Result<(), PolicyRefusal> {
    module.stats.record_failure(hook, failure);
    match module.failure_mode {
        FailureMode::Open => Ok(()),
        FailureMode::Closed => Err(PolicyRefusal {
            module: module.name.clone(),
            reason: format!("{failure} in {}", hook.as_str()),
        }),
    }
}
