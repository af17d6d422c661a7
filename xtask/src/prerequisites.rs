//! What a fresh machine lacks for the tests: FUSE, Chromium (the dashboard test drives it over
//! the DevTools protocol pipe: nothing else to install) and chattr from Debian. (The wasm target
//! is added by the policies build, LiteFS is built by the tests that need it.)
//! Installs each only when missing; apt needs root (CI and this project's machines run as root).

use std::path::Path;

use crate::run::{available, cmd};

/// Debian packages the tests use, with the command that shows each is installed.
const APT_PACKAGES: [(&str, &str); 3] = [
    ("fuse3", "fusermount3"),
    ("chromium", "chromium"),
    ("e2fsprogs", "chattr"),
];

pub fn install(root: &Path) -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(_, probe)| !available(probe))
        .map(|(package, _)| *package)
        .collect();
    if !missing.is_empty() {
        if !is_root() {
            anyhow::bail!(
                "the tests need the Debian packages {}; install them with apt-get (as root)",
                missing.join(" ")
            );
        }
        cmd(root, "apt-get", &["update", "-qq"])?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        cmd(root, "apt-get", &args)?;
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
