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
    let status = Command::new(program)
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
