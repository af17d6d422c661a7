//! The modules of one generation, in file-name order: runs a hook through each module that
//! implements it, handing every module the previous module's result, and applies each module's
//! failure mode.

use std::sync::Arc;

use http::HeaderMap;

use super::config::FailureMode;
use super::decision::{CacheVerdict, RequestDecision, SyntheticResponse};
use super::edits::HeaderEdit;
use super::failure::{Failure, Hook};
use super::memo::{RequestMemo, Trace};
use super::module::Module;
use super::view::{ClientResponseView, Delivery, ErrorView, RequestView, ResponseView};

/// An immutable chain of loaded modules. Hot reload swaps in a new chain; a request keeps the
/// chain it started with.
pub struct Chain {
    modules: Vec<Arc<Module>>,
    /// Whole-chain decisions, when every module may be memoized: one lookup instead of one per
    /// module.
    memo: Option<RequestMemo>,
    /// Whether any module implements `on-deliver` / `on-error`.
    delivers: bool,
    handles_errors: bool,
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
            memo: memoizes.then(|| RequestMemo::new(memo_entries)),
            delivers: modules.iter().any(|module| module.hooks.on_deliver),
            handles_errors: modules.iter().any(|module| module.hooks.on_error),
            modules,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The file names of the modules, in the order they run.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(|module| module.name.as_str())
    }

    pub(crate) fn modules(&self) -> &[Arc<Module>] {
        &self.modules
    }

    /// Whether any module implements `on-deliver`: when none does, [`Chain::on_deliver`] does
    /// nothing, and the proxy need not prepare its call.
    pub fn delivers(&self) -> bool {
        self.delivers
    }

    /// Whether any module implements `on-error`.
    pub fn handles_errors(&self) -> bool {
        self.handles_errors
    }

    fn implementing(&self, hook: Hook) -> impl Iterator<Item = &Module> {
        self.modules.iter().map(Arc::as_ref).filter(move |module| {
            let hooks = module.hooks;
            match hook {
                Hook::Request => hooks.on_request,
                Hook::Response => hooks.on_response,
                Hook::Deliver => hooks.on_deliver,
                Hook::Error => hooks.on_error,
            }
        })
    }

    /// Runs `on-request` of every module in order; each gets the previous decision (the first
    /// gets `current`) and sees the request with the path and query that decision's `url` set.
    /// A module that traps, times out or returns an invalid decision is counted and logged,
    /// then skipped (`open`) or refuses the request (`closed`).
    ///
    /// The decision's `url`, when set, is the path and query to key on and ask the origin for
    /// (see [`RequestDecision::path_and_query`]).
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
            for module in self.implementing(Hook::Request) {
                module.stats.record_call(Hook::Request);
                module.stats.record_memo_hit();
            }
            return Ok(decision);
        }
        // The chain's decision rests on every module's reads; a failure is never memoized.
        let mut chain_trace = self.memo.as_ref().map(|_| (current.clone(), Trace::new()));
        let mut decision = current;
        for module in self.implementing(Hook::Request) {
            module.stats.record_call(Hook::Request);
            let url_given = decision.url.is_some();
            let result = {
                let view = match &decision.url {
                    Some(url) => RequestView {
                        path_and_query: url,
                        ..*req
                    },
                    None => *req,
                };
                module.on_request(&view, &decision)
            };
            match result {
                Ok((outcome, trace)) => {
                    decision = outcome.value;
                    match (&mut chain_trace, trace) {
                        (Some((_, chain)), Some(trace)) => chain.extend(trace, url_given),
                        _ => chain_trace = None,
                    }
                }
                Err(failure) => {
                    chain_trace = None;
                    handle(module, Hook::Request, &failure)?;
                }
            }
        }
        if let (Some(memo), Some((initial, trace))) = (&self.memo, chain_trace) {
            memo.insert(trace, req, &initial, &decision);
        }
        Ok(decision)
    }

    /// Runs `on-response` of every module in order, like [`Chain::on_request`]; `current` is
    /// the host's verdict from the HTTP caching rules. Here and in the hooks below, `req` is the
    /// request as on-request left it: the policies' header edits applied, and the normalised
    /// URL in place of the client's. The verdict's `stored_header_edits` are
    /// for the proxy to apply to the response before it stores and sends it
    /// ([`CacheVerdict::apply_stored_edits`]).
    pub fn on_response(
        &self,
        req: &RequestView<'_>,
        resp: &ResponseView<'_>,
        current: CacheVerdict,
    ) -> Result<CacheVerdict, PolicyRefusal> {
        let mut verdict = current;
        for module in self.implementing(Hook::Response) {
            module.stats.record_call(Hook::Response);
            match module.on_response(req, resp, &verdict) {
                Ok(outcome) => verdict = outcome.value,
                Err(failure) => handle(module, Hook::Response, &failure)?,
            }
        }
        Ok(verdict)
    }

    /// Runs `on-deliver` of every module that implements it, in order, on the response the
    /// proxy is about to send: each module's edits are applied to `headers` before the next
    /// module sees them. Decisions are memoized per module, so repeated hits on one stored
    /// response usually cost a lookup per module and no call. A failing module's edits are
    /// dropped (`open`) or the request is refused (`closed`: the proxy sends its 503 instead,
    /// without calling `on-deliver` again).
    pub fn on_deliver(
        &self,
        req: &RequestView<'_>,
        delivery: &Delivery<'_>,
        headers: &mut HeaderMap,
    ) -> Result<(), PolicyRefusal> {
        if !self.delivers {
            return Ok(());
        }
        for module in self.implementing(Hook::Deliver) {
            module.stats.record_call(Hook::Deliver);
            let result = module.on_deliver(req, &ClientResponseView::new(delivery, headers));
            match result {
                Ok(outcome) => HeaderEdit::apply_all(&outcome.value, headers),
                Err(failure) => handle(module, Hook::Deliver, &failure)?,
            }
        }
        Ok(())
    }

    /// Runs `on-error` of every module that implements it, in order, when the origin failed and
    /// there is no stale copy to serve: each module gets the previous module's response (none at
    /// first). `Some` is the response to send instead of caje's own (502, 504 or the origin's
    /// 5xx).
    pub fn on_error(
        &self,
        req: &RequestView<'_>,
        error: &ErrorView<'_>,
    ) -> Result<Option<SyntheticResponse>, PolicyRefusal> {
        let mut response = None;
        for module in self.implementing(Hook::Error) {
            module.stats.record_call(Hook::Error);
            match module.on_error(req, error, response.as_ref()) {
                Ok(outcome) => response = outcome.value,
                Err(failure) => handle(module, Hook::Error, &failure)?,
            }
        }
        Ok(response)
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
