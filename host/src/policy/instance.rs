//! A module's instances, whichever contract version it was built against: instantiating them,
//! and calling each hook with 0.2.0's types (a 0.1.0 module's answers are converted).

use wasmtime::Store;
use wasmtime::component::{InstancePre, Resource};

use super::bindings::v2::caje::policy::types as wit;
use super::bindings::{World, v1, v2};
use super::host::StoreState;
use super::legacy;

/// A module linked and ready to instantiate.
pub(crate) enum Pre {
    V1(v1::PolicyPre<StoreState>),
    V2(v2::PolicyPre<StoreState>),
}

/// The exports of one instance.
pub(crate) enum Exports {
    V1(v1::Policy),
    V2(v2::Policy),
}

/// The hooks a module implements. A 0.1.0 module implements the two it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HookSet {
    pub on_request: bool,
    pub on_response: bool,
    pub on_deliver: bool,
    pub on_error: bool,
}

impl HookSet {
    pub const V1: HookSet = HookSet {
        on_request: true,
        on_response: true,
        on_deliver: false,
        on_error: false,
    };

    /// The names of the hooks in the set, as the WIT names them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.on_request, "on-request"),
            (self.on_response, "on-response"),
            (self.on_deliver, "on-deliver"),
            (self.on_error, "on-error"),
        ]
        .into_iter()
        .filter_map(|(implemented, name)| implemented.then_some(name))
        .collect()
    }
}

impl Pre {
    pub fn new(world: World, pre: InstancePre<StoreState>) -> wasmtime::Result<Pre> {
        Ok(match world {
            World::V1 => Pre::V1(v1::PolicyPre::new(pre)?),
            World::V2 => Pre::V2(v2::PolicyPre::new(pre)?),
        })
    }

    pub fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Pre::V1(pre) => Exports::V1(pre.instantiate(store)?),
            Pre::V2(pre) => Exports::V2(pre.instantiate(store)?),
        })
    }
}

/// Every hook is called with borrows of the resources the host lent the store for the call
/// (see `StoreState::lend`); the handle's index is never looked at.
fn lent<T: 'static>() -> Resource<T> {
    Resource::new_borrow(0)
}

impl Exports {
    pub fn implemented_hooks(&self, store: &mut Store<StoreState>) -> wasmtime::Result<HookSet> {
        match self {
            Exports::V1(_) => Ok(HookSet::V1),
            Exports::V2(policy) => {
                let set = policy.caje_policy_hooks().call_implemented_hooks(store)?;
                Ok(HookSet {
                    on_request: set.on_request,
                    on_response: set.on_response,
                    on_deliver: set.on_deliver,
                    on_error: set.on_error,
                })
            }
        }
    }

    pub fn on_request(
        &self,
        store: &mut Store<StoreState>,
        current: &wit::RequestDecision,
    ) -> wasmtime::Result<wit::RequestDecision> {
        match self {
            Exports::V1(policy) => {
                let given = legacy::decision_to_v1(current);
                let decided = policy
                    .caje_policy_hooks()
                    .call_on_request(store, lent(), &given)?;
                Ok(legacy::decision_from_v1(decided, current))
            }
            Exports::V2(policy) => {
                policy
                    .caje_policy_hooks()
                    .call_on_request(store, lent(), current)
            }
        }
    }

    pub fn on_response(
        &self,
        store: &mut Store<StoreState>,
        current: &wit::CacheVerdict,
    ) -> wasmtime::Result<wit::CacheVerdict> {
        match self {
            Exports::V1(policy) => {
                let given = legacy::verdict_to_v1(current);
                let decided =
                    policy
                        .caje_policy_hooks()
                        .call_on_response(store, lent(), lent(), &given)?;
                Ok(legacy::verdict_from_v1(decided, current))
            }
            Exports::V2(policy) => {
                policy
                    .caje_policy_hooks()
                    .call_on_response(store, lent(), lent(), current)
            }
        }
    }

    /// A 0.1.0 module has no `on-deliver` (the chain never asks it): no edits.
    pub fn on_deliver(
        &self,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<Vec<wit::HeaderEdit>> {
        match self {
            Exports::V1(_) => Ok(Vec::new()),
            Exports::V2(policy) => {
                policy
                    .caje_policy_hooks()
                    .call_on_deliver(store, lent(), lent())
            }
        }
    }

    /// A 0.1.0 module has no `on-error` (the chain never asks it): `current` stands.
    pub fn on_error(
        &self,
        store: &mut Store<StoreState>,
        error: &wit::OriginError,
        current: Option<&wit::SyntheticResponse>,
    ) -> wasmtime::Result<Option<wit::SyntheticResponse>> {
        match self {
            Exports::V1(_) => Ok(current.cloned()),
            Exports::V2(policy) => {
                policy
                    .caje_policy_hooks()
                    .call_on_error(store, lent(), error, current)
            }
        }
    }
}
