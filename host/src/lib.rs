//! caje: a small, fast, programmable caching reverse proxy.
//!
//! The request's life is a one-way sequence of phases, each owned by one module:
//! `config` → `proxy` (canonicalize, route) → `cache` (lookup, store) → origin → response.

pub mod policy;
