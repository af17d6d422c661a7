//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use std::path::Path;

use crate::prerequisites;
use crate::run::{cmd, cmd_env};

const POLICIES: &str = "policies/Cargo.toml";

pub fn run(root: &Path) -> anyhow::Result<()> {
    prerequisites::install(root)?;
    let hadolint = prerequisites::hadolint(root)?;
    cmd(root, "cargo", &["fmt", "--all", "--", "--check"])?;
    cmd(
        root,
        "cargo",
        &["fmt", "--all", "--manifest-path", POLICIES, "--", "--check"],
    )?;
    // The image's recipe; that it agrees with fly.toml, litefs.yml and the README is tested by
    // host/tests/deploy.
    cmd(root, &hadolint, &["deploy/Dockerfile"])?;
    // The host's top-level modules form a DAG (no import cycle); the graph is printed.
    xtask::modgraph::run(root)?;
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
    cmd(
        root,
        "cargo",
        &[
            "clippy",
            "--manifest-path",
            POLICIES,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The wasm components the host tests load (also adds the wasm32-wasip2 target when missing).
    xtask::policies::build_policies(root)?;
    // The example policies' own unit tests, natively.
    cmd(root, "cargo", &["test", "--manifest-path", POLICIES])?;
    // Under CI=true, tests that need FUSE, Go or Chromium fail instead of skipping.
    // Benchmarks are compiled by clippy above and run by `cargo bench`.
    cmd_env(root, "cargo", &["test", "--workspace"], &[("CI", "true")])?;
    Ok(())
}
