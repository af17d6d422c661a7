//! Files and directories made immutable (`chattr +i`) for outage tests: writes are refused
//! even to root and even through descriptors opened before. Undone on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// Makes every path immutable; panics (naming what the test needs) when `chattr` fails.
    pub fn set(paths: &[&Path]) -> Immutable {
        for path in paths {
            chattr("+i", path);
        }
        Immutable(paths.iter().map(|p| p.to_path_buf()).collect())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.0 {
            chattr("-i", path);
        }
    }
}

fn chattr(flag: &str, path: &Path) {
    let status = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("run chattr (Debian package e2fsprogs)");
    assert!(
        status.success(),
        "chattr {flag} {} failed: this test needs root and a file system with immutable files \
         (ext4, xfs, btrfs) under the temp dir",
        path.display()
    );
}
