//! caje: a small, fast, programmable caching reverse proxy.
//!
//! The request's life is a one-way sequence of phases, each owned by one module:
//! `config` → `proxy` (canonicalize, `policy` routes) → `cache` (lookup, store) → origin →
//! `policy` (cacheability, TTL) → response, with `manifest` recording what was stored, off the
//! response path. `admin` answers `/_caje/*` before the proxy sees a request; `populate` warms a
//! node from the manifest.

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
pub mod units;
mod warn_limit;
