//! Fault injection with real parts: the real `caje` binary killed mid-fill, its cache on a
//! real tmpfs that fills up or goes read-only, origins that fail in every way, hostile and
//! idle clients, and a manifest that is locked, deleted or overwritten under it.

mod clients;
mod disk;
mod kill;
mod manifest;
mod origin;
mod support;
