//! `cargo xtask demo`: caje on caje.toml in front of the bundled demo origin, until Ctrl-C.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::Context;

use xtask::policies::EXAMPLES;

use crate::run::cmd;

pub fn run(root: &Path) -> anyhow::Result<()> {
    install_example_policies(root)?;
    cmd(root, "cargo", &["build", "-p", "caje"])?;
    let caje = root.join("target/debug/caje");
    let origin = Guard(
        Command::new(&caje)
            .args(["demo-origin", "--listen", "127.0.0.1:9001"])
            .spawn()
            .context("cannot start the demo origin")?,
    );
    let mut proxy = Guard(
        Command::new(&caje)
            .args(["serve", "--config", "caje.toml"])
            .current_dir(root)
            .spawn()
            .context("cannot start caje")?,
    );
    eprintln!(
        "\ncaje: http://127.0.0.1:8080 (demo origin on 127.0.0.1:9001). Try:\n  \
         curl -i http://127.0.0.1:8080/slow   # 1 s the first time, then a HIT\n  \
         curl -i http://127.0.0.1:8080/fast\n\
         Ctrl-C stops both.\n"
    );
    let status = proxy.0.wait()?;
    drop(origin);
    anyhow::ensure!(
        status.success() || status.code().is_none(),
        "caje exited with {status}"
    );
    Ok(())
}

/// Kills the child when the demo ends, whichever way it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the example policies and renames them into caje.toml's `policies_dir` (var/policies).
fn install_example_policies(root: &Path) -> anyhow::Result<()> {
    let built = xtask::policies::build_policies(root)?;
    let dir = root.join("var/policies");
    std::fs::create_dir_all(&dir)?;
    for (package, file_name) in EXAMPLES {
        let source = xtask::policies::component(&built, package)?;
        // Copy beside, then rename: caje's watcher must never see a half-written module.
        let staged = dir.join(format!(".{file_name}.tmp"));
        std::fs::copy(source, &staged)?;
        std::fs::rename(&staged, dir.join(file_name))?;
    }
    Ok(())
}
