//! One loaded policy module: load-time checks (format, world version, linking, the hooks it
//! implements, smoke call), a pool of ready instances, and hook calls under the
//! fuel/epoch/memory limits. A failed call discards its instance, since a trap leaves a store
//! unusable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, Uri};
use wasmtime::{Engine, Store, Trap};

use super::bindings::v2::caje::policy::types as wit;
use super::bindings::{WIT_PACKAGE, World};
use super::config::FailureMode;
use super::decision::{CacheVerdict, RequestDecision, SyntheticResponse};
use super::edits::HeaderEdit;
use super::engine::Runtime;
use super::failure::{Failure, FailureKind, ModuleStats};
use super::host::{Lend, StoreState};
use super::instance::{Exports, HookSet, Pre};
use super::memo::{DeliverInputs, DeliverMemo, RequestMemo, Trace};
use super::precompiled::{CompiledFrom, PrecompiledCache};
use super::view::{
    CacheOutcome, ClientResponseView, ErrorView, OriginFailure, RequestView, ResponseView,
};
use crate::sync::lock;

/// The request of the load-time smoke call (a reserved `.invalid` host, RFC 2606).
const SMOKE_URL: &str = "https://caje.invalid/";

/// What identifies a module file and how the chain treats it.
pub(crate) struct ModuleSpec<'a> {
    pub name: &'a str,
    /// Hex sha256 of the file.
    pub digest: &'a str,
    pub failure_mode: FailureMode,
    /// The configured origin names a decision may use.
    pub origins: Arc<[String]>,
    /// Decisions the module may have memoized, per hook; 0 turns the memo off.
    pub memo_entries: usize,
}

pub(crate) struct Module {
    pub name: String,
    pub digest: String,
    pub failure_mode: FailureMode,
    pub loaded_at: SystemTime,
    pub compiled_from: CompiledFrom,
    /// The contract version the module was built against.
    pub world: World,
    /// The hooks it implements; the chain never calls the others.
    pub hooks: HookSet,
    /// The component's imports; those outside `caje:policy` trap when called.
    pub imports: Vec<String>,
    pub stats: ModuleStats,
    origins: Arc<[String]>,
    runtime: Arc<Runtime>,
    pre: Pre,
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
    request_memo: Option<RequestMemo>,
    deliver_memo: Option<DeliverMemo>,
}

struct Instance {
    store: Store<StoreState>,
    exports: Exports,
}

/// A hook's result and the fuel it used.
pub(crate) struct Outcome<T> {
    pub value: T,
    pub fuel_used: u64,
}

impl<T> Outcome<T> {
    fn map<U>(self, convert: impl FnOnce(T) -> Result<U, String>) -> Result<Outcome<U>, Failure> {
        let value =
            convert(self.value).map_err(|message| Failure::new(FailureKind::Invalid, message))?;
        Ok(Outcome {
            value,
            fuel_used: self.fuel_used,
        })
    }
}

impl Module {
    /// Compiles (or loads from `cache`) and validates `wasm`, asks which hooks it implements,
    /// then runs each of them once on a made-up request: a module that traps or times out
    /// there is refused. The error is the reason, for the log and `status()`.
    pub fn load(
        runtime: &Arc<Runtime>,
        cache: &PrecompiledCache,
        spec: ModuleSpec<'_>,
        wasm: &[u8],
    ) -> Result<Module, String> {
        check_format(wasm)?;
        let engine = runtime.engine();
        let (component, compiled_from) = cache
            .load(engine, spec.digest, wasm)
            .map_err(|err| format!("failed to compile: {err:#}"))?;
        let (world, imports) = check_world(engine, &component)?;
        let pre = runtime.link(&component, world).map_err(|err| {
            format!(
                "does not match the {WIT_PACKAGE}@{} world: {err:#}",
                world.version()
            )
        })?;
        let mut module = Module {
            name: spec.name.to_owned(),
            digest: spec.digest.to_owned(),
            failure_mode: spec.failure_mode,
            loaded_at: SystemTime::now(),
            compiled_from,
            world,
            hooks: HookSet::V1,
            imports,
            stats: ModuleStats::new(spec.name),
            origins: spec.origins,
            runtime: Arc::clone(runtime),
            pre,
            idle: Mutex::new(Vec::new()),
            max_idle: std::thread::available_parallelism().map_or(4, usize::from),
            request_memo: None,
            deliver_memo: None,
        };
        module.hooks = module.ask_hooks()?;
        module.smoke_test()?;
        // Memos only for the memoized hooks the module implements.
        let entries = spec.memo_entries;
        if entries > 0 {
            module.request_memo = module.hooks.on_request.then(|| RequestMemo::new(entries));
            module.deliver_memo = module.hooks.on_deliver.then(|| DeliverMemo::new(entries));
        }
        Ok(module)
    }

    fn ask_hooks(&self) -> Result<HookSet, String> {
        let (method, uri, headers) = (Method::GET, Uri::from_static(SMOKE_URL), HeaderMap::new());
        let request = RequestView::from_uri(&method, &uri, &headers);
        self.call(&request, Lend::Nothing, false, |exports, store| {
            exports.implemented_hooks(store)
        })
        .map(|(outcome, _)| outcome.value)
        .map_err(|failure| {
            // The SDK answers by calling each hook once on a made-up request of its own.
            format!("failed its smoke call (implemented-hooks, for GET {SMOKE_URL}): {failure}")
        })
    }

    fn smoke_test(&self) -> Result<(), String> {
        let (method, uri, headers) = (Method::GET, Uri::from_static(SMOKE_URL), HeaderMap::new());
        let request = RequestView::from_uri(&method, &uri, &headers);
        let origin = self.origins.first().cloned().unwrap_or_default();
        // Only traps and timeouts refuse a module here: whether its decisions are valid can
        // depend on the request, so they are checked on every real call instead.
        let failed = |hook: &str, failure: Failure| {
            format!("failed its smoke call ({hook} for GET {SMOKE_URL}): {failure}")
        };
        if self.hooks.on_request {
            let decision = RequestDecision::default_for(&method, origin.clone());
            self.call_on_request(&request, &decision, false)
                .map_err(|failure| failed("on-request", failure))?;
        }
        if self.hooks.on_response {
            let response = ResponseView {
                status: StatusCode::OK,
                headers: &headers,
                origin: &origin,
            };
            let verdict = CacheVerdict::new(true, Duration::from_secs(60));
            self.call_on_response(&request, &response, &verdict)
                .map_err(|failure| failed("on-response", failure))?;
        }
        if self.hooks.on_deliver {
            let response = ClientResponseView {
                status: StatusCode::OK,
                outcome: CacheOutcome::Miss,
                origin: Some(&origin),
                headers: &headers,
            };
            self.call_on_deliver(&request, &response, false)
                .map_err(|failure| failed("on-deliver", failure))?;
        }
        if self.hooks.on_error {
            let error = ErrorView {
                origin: &origin,
                failure: OriginFailure::Unreachable,
            };
            self.call_on_error(&request, &error, None)
                .map_err(|failure| failed("on-error", failure))?;
        }
        Ok(())
    }

    /// Whether the chain may reuse decisions this module took part in: its `on-request`
    /// decisions may be memoized, or it has no `on-request`.
    pub fn memoizes(&self) -> bool {
        !self.hooks.on_request || self.request_memo.is_some()
    }

    /// Runs `on-request`, or reuses a memoized decision; also returns the reads the decision
    /// rests on when it may be memoized (by this module, or by the chain).
    pub fn on_request(
        &self,
        request: &RequestView<'_>,
        current: &RequestDecision,
    ) -> Result<(Outcome<RequestDecision>, Option<Trace>), Failure> {
        if let Some(memo) = &self.request_memo
            && let Some((value, shape)) = memo.lookup(request, current)
        {
            self.stats.record_memo_hit();
            let outcome = Outcome {
                value,
                fuel_used: 0,
            };
            return Ok((outcome, Some(Trace::of_shape(&shape))));
        }
        let traced = self.request_memo.is_some();
        let (outcome, trace) = self.call_on_request(request, current, traced)?;
        let outcome = outcome.map(|decided| RequestDecision::from_wit(decided, &self.origins))?;
        if let (Some(memo), Some(trace)) = (&self.request_memo, &trace) {
            memo.insert(trace.clone(), request, current, &outcome.value);
        }
        Ok((outcome, trace))
    }

    pub fn on_response(
        &self,
        request: &RequestView<'_>,
        response: &ResponseView<'_>,
        current: &CacheVerdict,
    ) -> Result<Outcome<CacheVerdict>, Failure> {
        self.call_on_response(request, response, current)?
            .map(CacheVerdict::from_wit)
    }

    /// Runs `on-deliver`, or reuses the edits of a call that read the same: the edits of the
    /// client's headers, validated.
    pub fn on_deliver(
        &self,
        request: &RequestView<'_>,
        response: &ClientResponseView<'_>,
    ) -> Result<Outcome<Vec<HeaderEdit>>, Failure> {
        let inputs = DeliverInputs { request, response };
        if let Some(memo) = &self.deliver_memo
            && let Some((value, _)) = memo.lookup(&inputs, &())
        {
            self.stats.record_memo_hit();
            return Ok(Outcome {
                value,
                fuel_used: 0,
            });
        }
        let traced = self.deliver_memo.is_some();
        let (outcome, trace) = self.call_on_deliver(request, response, traced)?;
        let outcome = outcome.map(|edits| HeaderEdit::from_wit_list("header-edits", edits))?;
        if let (Some(memo), Some(trace)) = (&self.deliver_memo, trace) {
            memo.insert(trace, &inputs, &(), &outcome.value);
        }
        Ok(outcome)
    }

    pub fn on_error(
        &self,
        request: &RequestView<'_>,
        error: &ErrorView<'_>,
        current: Option<&SyntheticResponse>,
    ) -> Result<Outcome<Option<SyntheticResponse>>, Failure> {
        self.call_on_error(request, error, current)?
            .map(|response| response.map(SyntheticResponse::from_wit).transpose())
    }

    fn call_on_request(
        &self,
        request: &RequestView<'_>,
        current: &RequestDecision,
        traced: bool,
    ) -> Result<(Outcome<wit::RequestDecision>, Option<Trace>), Failure> {
        let current = wit::RequestDecision::from(current);
        self.call(request, Lend::Nothing, traced, |exports, store| {
            exports.on_request(store, &current)
        })
    }

    fn call_on_response(
        &self,
        request: &RequestView<'_>,
        response: &ResponseView<'_>,
        current: &CacheVerdict,
    ) -> Result<Outcome<wit::CacheVerdict>, Failure> {
        let current = wit::CacheVerdict::from(current);
        self.call(
            request,
            Lend::Response(response),
            false,
            |exports, store| exports.on_response(store, &current),
        )
        .map(|(outcome, _)| outcome)
    }

    fn call_on_deliver(
        &self,
        request: &RequestView<'_>,
        response: &ClientResponseView<'_>,
        traced: bool,
    ) -> Result<(Outcome<Vec<wit::HeaderEdit>>, Option<Trace>), Failure> {
        self.call(
            request,
            Lend::ClientResponse(response),
            traced,
            |exports, store| exports.on_deliver(store),
        )
    }

    fn call_on_error(
        &self,
        request: &RequestView<'_>,
        error: &ErrorView<'_>,
        current: Option<&SyntheticResponse>,
    ) -> Result<Outcome<Option<wit::SyntheticResponse>>, Failure> {
        let error = wit::OriginError::from(error);
        let current = current.map(wit::SyntheticResponse::from);
        self.call(request, Lend::Nothing, false, |exports, store| {
            exports.on_error(store, &error, current.as_ref())
        })
        .map(|(outcome, _)| outcome)
    }

    /// Runs `hook` on an idle instance (or a new one) with fresh limits; the instance goes back
    /// to the pool only if the call succeeded. With `traced`, also returns the reads it made.
    fn call<R>(
        &self,
        request: &RequestView<'_>,
        lend: Lend<'_>,
        traced: bool,
        hook: impl FnOnce(&Exports, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<(Outcome<R>, Option<Trace>), Failure> {
        let idle = lock(&self.idle).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.instantiate()?,
        };
        let limits = self.runtime.limits;
        let Instance { store, exports } = &mut instance;
        store
            .set_fuel(limits.fuel)
            .expect("fuel metering is enabled on the policy engine");
        store.set_epoch_deadline(limits.epoch_ticks);
        store.data_mut().trace = traced.then(Trace::new);
        let result = StoreState::lend(store, request, lend, |store| hook(exports, store));
        let trace = store.data_mut().trace.take();
        let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
        match result {
            Ok(value) => {
                let mut idle = lock(&self.idle);
                if idle.len() < self.max_idle {
                    idle.push(instance);
                }
                Ok((Outcome { value, fuel_used }, trace))
            }
            Err(err) => Err(self.classify(&err, instance.store.data())),
        }
    }

    fn instantiate(&self) -> Result<Instance, Failure> {
        let mut store = self.runtime.new_store();
        store
            .set_fuel(self.runtime.limits.fuel)
            .expect("fuel metering is enabled on the policy engine");
        store.set_epoch_deadline(self.runtime.limits.epoch_ticks);
        match self.pre.instantiate(&mut store) {
            Ok(exports) => Ok(Instance { store, exports }),
            Err(err) => {
                let failure = self.classify(&err, store.data());
                Err(Failure::new(
                    failure.kind,
                    format!("could not be instantiated: {}", failure.message),
                ))
            }
        }
    }

    fn classify(&self, err: &wasmtime::Error, state: &StoreState) -> Failure {
        let limits = self.runtime.limits;
        if let Some(size) = state.memory_refused {
            return Failure::new(
                FailureKind::Trap,
                format!(
                    "tried to grow its memory to {} MiB, over policies.memory_limit ({} MiB)",
                    size >> 20,
                    limits.memory_limit >> 20
                ),
            );
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::new(
                FailureKind::Timeout,
                format!(
                    "used up its fuel ({} units; raise policies.fuel if it needs more)",
                    limits.fuel
                ),
            ),
            Some(Trap::Interrupt) => Failure::new(
                FailureKind::Timeout,
                format!(
                    "ran longer than policies.hook_timeout ({:?})",
                    limits.hook_timeout
                ),
            ),
            trap => {
                let message = match (&state.panic_message, trap) {
                    // The SDK reports std's "panicked at <file:line>:\n<message>".
                    (Some(panic), _) if panic.starts_with("panicked") => panic.replace('\n', " "),
                    (Some(panic), _) => format!("panicked: {panic}"),
                    (None, Some(trap)) => trap.to_string(),
                    (None, None) => err.root_cause().to_string(),
                };
                Failure::new(FailureKind::Trap, message)
            }
        }
    }
}

/// Tells garbage and core modules apart from components before compiling, for a clearer error.
fn check_format(wasm: &[u8]) -> Result<(), String> {
    match wasm.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(
            "is a core WebAssembly module, not a component: build it for wasm32-wasip2 with the caje-policy SDK \
             (or wrap it with `wasm-tools component new`)"
                .to_owned(),
        ),
        _ => Err("is not a WebAssembly component (it does not start with the \\0asm header)".to_owned()),
    }
}

/// Checks that the component was built against one caje:policy version this host implements,
/// and returns that version and the component's imports.
fn check_world(
    engine: &Engine,
    component: &wasmtime::component::Component,
) -> Result<(World, Vec<String>), String> {
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let prefix = format!("{WIT_PACKAGE}/");
    let mut found: Option<(World, &str)> = None;
    for name in imports.iter().chain(&exports) {
        let Some((_, version)) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('@'))
        else {
            continue;
        };
        let Some(world) = World::by_version(version) else {
            let known: Vec<&str> = World::ALL.iter().map(|world| world.version()).collect();
            return Err(format!(
                "was built against {WIT_PACKAGE}@{version} ({name}), but this caje implements \
                 {WIT_PACKAGE}@{}: rebuild it with the caje-policy SDK that matches this caje",
                known.join(" and ")
            ));
        };
        match found {
            Some((other, other_name)) if other != world => {
                return Err(format!(
                    "mixes {WIT_PACKAGE} versions ({other_name} and {name}): build it with one caje-policy SDK"
                ));
            }
            _ => found = Some((world, name)),
        }
    }
    let world = found.map_or(World::ALL[0], |(world, _)| world);
    let hooks = world.hooks_export();
    if !exports.iter().any(|name| name == hooks) {
        return Err(format!(
            "does not export {hooks} (its exports: {}): build it with caje_policy::export!",
            if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            }
        ));
    }
    Ok((world, imports))
}
