//! The policy components built from `policies/` (the examples and the test modules), built once
//! per process, and installing them into a policies directory the way authors should.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The built component of the `policies/` crate called `name` (e.g. `"route-by-path"`).
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the testkit crate is in the workspace");
        xtask::policies::build_policies(root)
            .unwrap_or_else(|err| panic!("cannot build the test policies: {err:#}"))
    });
    let file = format!("{}.wasm", name.replace('-', "_"));
    built
        .iter()
        .find(|path| path.file_name().is_some_and(|found| found == file.as_str()))
        .unwrap_or_else(|| panic!("policies/ has no crate {name:?}"))
        .clone()
}

/// Installs the component of the `policies/` crate `crate_name` as `dir/file`.
pub fn install(dir: &Path, file: &str, crate_name: &str) {
    let bytes = fs::read(component(crate_name))
        .unwrap_or_else(|err| panic!("cannot read the {crate_name} component: {err}"));
    install_bytes(dir, file, &bytes);
}

/// Writes `bytes` to a hidden file beside `dir/file`, then renames it into place: caje's watcher
/// ignores hidden files and sees the module appear whole, never half-written.
pub fn install_bytes(dir: &Path, file: &str, bytes: &[u8]) {
    let staged = dir.join(format!(".{file}.tmp"));
    fs::write(&staged, bytes)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", staged.display()));
    fs::rename(&staged, dir.join(file))
        .unwrap_or_else(|err| panic!("cannot rename {} into place: {err}", staged.display()));
}
