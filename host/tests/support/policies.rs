//! The components built from `policies/` (examples and test modules), built once per test
//! process with `cargo xtask policies`' builder.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The built component of the `policies/` crate called `name` (e.g. `"route-by-path"`).
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the host crate is in the workspace");
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
