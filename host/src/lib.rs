//! caje: a small, fast, programmable caching reverse proxy.
//!
//! The request's life is a one-way sequence of phases, run by `proxy` (see its docs):
//! canonicalize → route (`policy` `on-request`) → `cache` lookup → origin → store decision
//! (`policy` `on-response`) → `cache` store + `manifest` record → response. `admin` answers
//! `/_caje/*` before the proxy sees a request; `populate` warms a node from the manifest.
//!
//! Modules import only modules below them (`cargo xtask modgraph` prints the layers and fails
//! on a cycle): leaves (`body`, `key`, `units`, `sync`, …) at the bottom, `config` (which
//! composes each module's own config section) and `app` (which starts a node) at the top.

pub mod admin;
pub mod app;
pub mod body;
pub mod cache;
pub mod config;
pub mod demo_origin;
pub mod key;
pub mod litefs;
pub mod logging;
pub mod manifest;
pub mod node;
pub mod policy;
pub mod populate;
pub mod proxy;
pub mod purge_mode;
pub mod request_counts;
pub mod server;
mod sync;
mod toml_location;
pub mod units;
mod warn_limit;
