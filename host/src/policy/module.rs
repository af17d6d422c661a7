//! One loaded policy module: load-time checks (format, world version, linking, smoke call), a
//! pool of ready instances, and hook calls under the fuel/epoch/memory limits. A failed call
//! discards its instance, since a trap leaves a store unusable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, Uri};
use wasmtime::component::Resource;
use wasmtime::{Engine, Store, Trap};

use super::bindings::caje::policy::types as wit;
use super::bindings::{HOOKS_EXPORT, Policy, PolicyPre, WIT_PACKAGE, WIT_VERSION};
use super::config::FailureMode;
use super::decision::{CacheVerdict, RequestDecision};
use super::engine::Runtime;
use super::failure::{Failure, FailureKind, ModuleStats};
use super::host::StoreState;
use super::memo::{DecisionMemo, Trace};
use super::precompiled::{CompiledFrom, PrecompiledCache};
use super::view::{RequestView, ResponseView};
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
    /// Decisions the module may have memoized; 0 turns the memo off.
    pub memo_entries: usize,
}

pub(crate) struct Module {
    pub name: String,
    pub digest: String,
    pub failure_mode: FailureMode,
    pub loaded_at: SystemTime,
    pub compiled_from: CompiledFrom,
    /// The component's imports; those outside `caje:policy` trap when called.
    pub imports: Vec<String>,
    pub stats: ModuleStats,
    origins: Arc<[String]>,
    runtime: Arc<Runtime>,
    pre: PolicyPre<StoreState>,
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
    memo: Option<DecisionMemo>,
}

struct Instance {
    store: Store<StoreState>,
    policy: Policy,
}

/// A hook's result and the fuel it used.
pub(crate) struct Outcome<T> {
    pub value: T,
    pub fuel_used: u64,
}

impl Module {
    /// Compiles (or loads from `cache`) and validates `wasm`, then runs both hooks once on a
    /// made-up request: a module that traps or times out there is refused. The error is the
    /// reason, for the log and `status()`.
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
        let imports = check_world(engine, &component)?;
        let pre = runtime
            .link(&component)
            .map_err(|err| format!("does not match the caje:policy world: {err:#}"))?;
        let module = Module {
            name: spec.name.to_owned(),
            digest: spec.digest.to_owned(),
            failure_mode: spec.failure_mode,
            loaded_at: SystemTime::now(),
            compiled_from,
            imports,
            stats: ModuleStats::new(spec.name),
            origins: spec.origins,
            runtime: Arc::clone(runtime),
            pre,
            idle: Mutex::new(Vec::new()),
            max_idle: std::thread::available_parallelism().map_or(4, usize::from),
            memo: (spec.memo_entries > 0).then(|| DecisionMemo::new(spec.memo_entries)),
        };
        module.smoke_test()?;
        Ok(module)
    }

    fn smoke_test(&self) -> Result<(), String> {
        let (method, uri, headers) = (Method::GET, Uri::from_static(SMOKE_URL), HeaderMap::new());
        let request = RequestView::from_uri(&method, &uri, &headers);
        let response = ResponseView {
            status: StatusCode::OK,
            headers: &headers,
        };
        let origin = self.origins.first().cloned().unwrap_or_default();
        let decision = RequestDecision::default_for(&method, origin);
        let verdict = CacheVerdict::new(true, Duration::from_secs(60));
        // Only traps and timeouts refuse a module here: whether its decisions are valid can
        // depend on the request, so they are checked on every real call instead.
        let failed = |hook: &str, failure: Failure| {
            format!("failed its smoke call ({hook} for GET {SMOKE_URL}): {failure}")
        };
        self.call_on_request(&request, &decision)
            .map_err(|failure| failed("on-request", failure))?;
        self.call_on_response(&request, &response, &verdict)
            .map_err(|failure| failed("on-response", failure))?;
        Ok(())
    }

    /// Runs `on-request` and validates the decision.
    /// Runs `on-request`, or reuses a memoized decision; also returns the reads the decision
    /// rests on when it may be memoized (by this module, or by the chain).
    pub fn on_request(
        &self,
        request: &RequestView<'_>,
        current: &RequestDecision,
    ) -> Result<(Outcome<RequestDecision>, Option<Trace>), Failure> {
        if let Some(memo) = &self.memo
            && let Some((value, shape)) = memo.lookup(request, current)
        {
            self.stats.record_memo_hit();
            let outcome = Outcome {
                value,
                fuel_used: 0,
            };
            return Ok((outcome, Some(Trace::of_shape(&shape))));
        }
        let (outcome, trace) = self.traced_on_request(request, current)?;
        let value = RequestDecision::from_wit(outcome.value, &self.origins)
            .map_err(|message| Failure::new(FailureKind::Invalid, message))?;
        if let (Some(memo), Some(trace)) = (&self.memo, &trace) {
            memo.insert(trace.clone(), request, current, &value);
        }
        Ok((
            Outcome {
                value,
                fuel_used: outcome.fuel_used,
            },
            trace,
        ))
    }

    /// Whether this module's decisions may be memoized.
    pub fn memoizes(&self) -> bool {
        self.memo.is_some()
    }

    pub fn on_response(
        &self,
        request: &RequestView<'_>,
        response: &ResponseView<'_>,
        current: &CacheVerdict,
    ) -> Result<Outcome<CacheVerdict>, Failure> {
        let outcome = self.call_on_response(request, response, current)?;
        let value = CacheVerdict::from_wit(outcome.value)
            .map_err(|message| Failure::new(FailureKind::Invalid, message))?;
        Ok(Outcome {
            value,
            fuel_used: outcome.fuel_used,
        })
    }

    fn call_on_request(
        &self,
        request: &RequestView<'_>,
        current: &RequestDecision,
    ) -> Result<Outcome<wit::RequestDecision>, Failure> {
        self.traced_on_request(request, current)
            .map(|(outcome, _)| outcome)
    }

    /// `on-request`, recording the reads it makes when its decision may be memoized.
    fn traced_on_request(
        &self,
        request: &RequestView<'_>,
        current: &RequestDecision,
    ) -> Result<(Outcome<wit::RequestDecision>, Option<Trace>), Failure> {
        let current = wit::RequestDecision::from(current);
        let traced = self.memo.is_some();
        self.call(request, None, traced, |policy, store| {
            policy
                .caje_policy_hooks()
                .call_on_request(store, Resource::new_borrow(0), &current)
        })
    }

    fn call_on_response(
        &self,
        request: &RequestView<'_>,
        response: &ResponseView<'_>,
        current: &CacheVerdict,
    ) -> Result<Outcome<wit::CacheVerdict>, Failure> {
        let current = wit::CacheVerdict::from(current);
        self.call(request, Some(response), false, |policy, store| {
            let hooks = policy.caje_policy_hooks();
            hooks.call_on_response(
                store,
                Resource::new_borrow(0),
                Resource::new_borrow(0),
                &current,
            )
        })
        .map(|(outcome, _)| outcome)
    }

    /// Runs `hook` on an idle instance (or a new one) with fresh limits; the instance goes back
    /// to the pool only if the call succeeded. With `traced`, also returns the reads it made.
    fn call<R>(
        &self,
        request: &RequestView<'_>,
        response: Option<&ResponseView<'_>>,
        traced: bool,
        hook: impl FnOnce(&Policy, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<(Outcome<R>, Option<Trace>), Failure> {
        let idle = lock(&self.idle).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.instantiate()?,
        };
        let limits = self.runtime.limits;
        let Instance { store, policy } = &mut instance;
        store
            .set_fuel(limits.fuel)
            .expect("fuel metering is enabled on the policy engine");
        store.set_epoch_deadline(limits.epoch_ticks);
        store.data_mut().trace = traced.then(Trace::new);
        let result = StoreState::lend(store, request, response, |store| hook(policy, store));
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
            Ok(policy) => Ok(Instance { store, policy }),
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

/// Checks that the component was built against the caje:policy version this host implements,
/// and returns its imports.
fn check_world(
    engine: &Engine,
    component: &wasmtime::component::Component,
) -> Result<Vec<String>, String> {
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
    for name in imports.iter().chain(&exports) {
        let Some((_, version)) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('@'))
        else {
            continue;
        };
        if version != WIT_VERSION {
            return Err(format!(
                "was built against {WIT_PACKAGE}@{version} ({name}), but this caje implements \
                 {WIT_PACKAGE}@{WIT_VERSION}: rebuild it with the caje-policy SDK that matches this caje"
            ));
        }
    }
    if !exports.iter().any(|name| name == HOOKS_EXPORT) {
        return Err(format!(
            "does not export {HOOKS_EXPORT} (its exports: {}): build it with caje_policy::export!",
            if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            }
        ));
    }
    Ok(imports)
}
