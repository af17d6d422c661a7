//! WebAssembly cache policies: the components in the policies directory form a chain that
//! routes requests, decides what to cache and edits what clients get, run under CPU and memory
//! limits and hot-reloaded.
//!
//! The contract is `guest-sdk/wit/policy.wit` (modules built against the frozen
//! `guest-sdk/wit-0.1.0` keep working). [`Policies`] owns a directory (watcher, reload thread,
//! status); [`Chain`] is one immutable generation of modules, which the proxy calls inline: for
//! every request ([`Chain::on_request`]), every origin response ([`Chain::on_response`]), every
//! response it sends ([`Chain::on_deliver`]) and every origin failure it has no stale copy for
//! ([`Chain::on_error`]).

mod bindings;
mod cases;
mod chain;
pub mod cli;
mod config;
mod decision;
mod edits;
mod engine;
mod failure;
#[cfg(test)]
mod fuzz;
mod host;
mod instance;
mod legacy;
mod loader;
mod memo;
mod module;
mod offline;
mod precompiled;
mod status;
mod view;
mod watch;

pub use chain::{Chain, PolicyRefusal};
pub use config::{FailureMode, ModuleConfig, PolicyConfig};
pub use decision::{CacheVerdict, RequestAction, RequestDecision, SyntheticResponse};
pub use edits::HeaderEdit;
pub use precompiled::CompiledFrom;
pub use status::{ModuleState, ModuleStatus};
pub use view::{CacheOutcome, Delivery, ErrorView, OriginFailure, RequestView, ResponseView};
pub use watch::Policies;
