//! WebAssembly cache policies: the components in the policies directory form a chain that
//! routes requests and decides what to cache, run under CPU and memory limits and hot-reloaded.
//!
//! The contract is `guest-sdk/wit/policy.wit`. [`Policies`] owns a directory (watcher, reload
//! thread, status); [`Chain`] is one immutable generation of modules, which the proxy calls
//! inline for every request ([`Chain::on_request`]) and every origin response
//! ([`Chain::on_response`]).

mod bindings;
mod chain;
pub mod cli;
mod config;
mod decision;
mod engine;
mod failure;
#[cfg(test)]
mod fuzz;
mod host;
mod loader;
mod memo;
mod module;
mod precompiled;
mod status;
mod view;
mod watch;

pub use chain::{Chain, PolicyRefusal};
pub use config::{FailureMode, ModuleConfig, PolicyConfig};
pub use decision::{CacheVerdict, HeaderEdit, RequestAction, RequestDecision, SyntheticResponse};
pub use precompiled::CompiledFrom;
pub use status::{ModuleState, ModuleStatus};
pub use view::{RequestView, ResponseView};
pub use watch::Policies;
