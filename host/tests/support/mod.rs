//! Test support shared by integration test binaries and benchmarks (`mod support;`).
//!
//! Each binary compiles this module on its own and uses only part of it, so unused items are
//! expected here and not dead code.
#![allow(dead_code)]

pub mod litefs;
