//! Builds the crates of `policies/` (the example policies and the modules caje's tests use) to
//! WebAssembly components.

use std::env;
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};

/// The target policies are built for: its std makes components directly.
pub const TARGET: &str = "wasm32-wasip2";

/// The example policies that ship (the demo and the Docker image install these, and only
/// these): each package of `policies/` with the file name it gets in caje's policies
/// directory, in chain order (modules run in file-name order). Each ships its cases file,
/// `policies/<package>/cases.toml`.
pub const EXAMPLES: [(&str, &str); 6] = [
    ("normalize-query", "05-normalize-query.wasm"),
    ("route-by-path", "10-route-by-path.wasm"),
    ("bypass-private", "20-bypass-private.wasm"),
    ("ttl-override", "30-ttl-override.wasm"),
    ("tag-by-path", "40-tag-by-path.wasm"),
    ("security-headers", "50-security-headers.wasm"),
];

/// The cases file an example ships: what it must do, as data for `caje policy test --cases`.
pub fn cases_file(root: &Path, package: &str) -> PathBuf {
    root.join("policies").join(package).join("cases.toml")
}

/// The built component of the `policies/` package `package` among `built`.
pub fn component<'a>(built: &'a [PathBuf], package: &str) -> anyhow::Result<&'a Path> {
    let stem = package.replace('-', "_");
    built
        .iter()
        .find(|path| path.file_stem().is_some_and(|found| *found == *stem))
        .map(PathBuf::as_path)
        .with_context(|| format!("the policies build did not produce {stem}.wasm"))
}

/// Builds every crate of the `policies/` workspace under `root` (release, wasm32-wasip2) and
/// returns the components: the examples (`policies/*`), then the test modules
/// (`policies/testdata/*`), each sorted by name. Adds the rustup target if it is missing. A file
/// lock serializes concurrent builds (e.g. parallel test binaries).
pub fn build_policies(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let workspace = root.join("policies");
    let target_dir = workspace.join("target");
    fs::create_dir_all(&target_dir)
        .with_context(|| format!("cannot create {}", target_dir.display()))?;
    let lock = File::create(target_dir.join(".caje-build.lock"))?;
    lock.lock().context("cannot lock the policies build")?;

    ensure_target()?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let manifest = workspace.join("Cargo.toml");
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .status()
        .context("cannot run cargo")?;
    ensure!(
        status.success(),
        "building the policies failed ({status}); run `cargo build --release --target {TARGET} --manifest-path {}` to see why",
        manifest.display()
    );

    let out = target_dir.join(TARGET).join("release");
    let mut components = Vec::new();
    for crates in [workspace.clone(), workspace.join("testdata")] {
        for name in crate_dirs(&crates)? {
            let wasm = out.join(format!("{}.wasm", name.replace('-', "_")));
            ensure!(
                wasm.is_file(),
                "{} was not built (is its package name its directory name?)",
                wasm.display()
            );
            components.push(wasm);
        }
    }
    Ok(components)
}

/// The names of the directories in `dir` holding a crate, sorted.
fn crate_dirs(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            names.extend(
                path.file_name()
                    .and_then(|name| name.to_str())
                    .map(str::to_owned),
            );
        }
    }
    names.sort();
    Ok(names)
}

/// Adds the wasm target with rustup when it is missing; without rustup, cargo reports it.
fn ensure_target() -> anyhow::Result<()> {
    let Ok(installed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(());
    };
    if !installed.status.success()
        || String::from_utf8_lossy(&installed.stdout)
            .lines()
            .any(|line| line.trim() == TARGET)
    {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()?;
    ensure!(
        status.success(),
        "`rustup target add {TARGET}` failed ({status})"
    );
    Ok(())
}
