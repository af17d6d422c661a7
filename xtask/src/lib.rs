//! Project automation behind `cargo xtask`, as a library so tests can reuse it.

pub mod modgraph;
pub mod policies;
