//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use std::path::Path;

use crate::prerequisites;
use crate::run::{cmd, cmd_env};

pub fn run(root: &Path) -> anyhow::Result<()> {
    prerequisites::install(root)?;
    cmd(root, "cargo", &["fmt", "--all", "--", "--check"])?;
    cmd(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Under CI=true, tests that need FUSE, Go or Chromium fail instead of skipping.
    // Benchmarks are compiled by clippy above and run by `cargo bench`.
    cmd_env(root, "cargo", &["test", "--workspace"], &[("CI", "true")])?;
    Ok(())
}
