//! Running commands with their output shown, failing loudly with the command line.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Runs `program args…` in `dir`, inheriting stdio; an unsuccessful exit is an error.
pub fn cmd(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<()> {
    cmd_env(dir, program, args, &[])
}

/// [`cmd`] with extra environment variables for the child.
pub fn cmd_env(
    dir: &Path,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<()> {
    eprintln!("+ {program} {}", args.join(" "));
    let mut command = Command::new(program);
    // `cargo run` gave xtask its own package's variables; a nested cargo must not see them,
    // or build scripts that watch them (ring watches CARGO_MANIFEST_DIR) rebuild every time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&name.as_ref())
        {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

/// Whether `program` is on PATH.
pub fn available(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|status| status.success())
}
