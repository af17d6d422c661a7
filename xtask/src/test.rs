//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use std::path::Path;

use std::path::PathBuf;

use anyhow::ensure;

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
    let built = xtask::policies::build_policies(root)?;
    // The example policies' own unit tests, natively, then their cases files through caje.
    cmd(root, "cargo", &["test", "--manifest-path", POLICIES])?;
    run_example_cases(root, &built)?;
    // Under CI=true, tests that need FUSE, Go or Chromium fail instead of skipping.
    // Benchmarks are compiled by clippy above and run by `cargo bench`.
    cmd_env(root, "cargo", &["test", "--workspace"], &[("CI", "true")])?;
    Ok(())
}

/// `caje policy test <example>.wasm --cases policies/<example>/cases.toml` for every example.
fn run_example_cases(root: &Path, built: &[PathBuf]) -> anyhow::Result<()> {
    for (package, _) in xtask::policies::EXAMPLES {
        let cases = xtask::policies::cases_file(root, package);
        ensure!(
            cases.is_file(),
            "the example {package} ships no cases file: write {} (see README, \"Writing a policy\")",
            cases.display()
        );
        let component = xtask::policies::component(built, package)?;
        let (component, cases) = (component.display().to_string(), cases.display().to_string());
        cmd(
            root,
            "cargo",
            &[
                "run", "--quiet", "-p", "caje", "--", "policy", "test", &component, "--cases",
                &cases,
            ],
        )?;
    }
    Ok(())
}
