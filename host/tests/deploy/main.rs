//! The deployment's files agree with each other, with caje's code and with the README: fly.toml,
//! litefs.yml, caje.fly.toml, caje.toml and the Dockerfile, whose build commands are the README's;
//! the README's configuration and metrics tables name what the code reads and registers.
//! Nothing here needs Docker or Fly; LiteFS runs this same litefs.yml in the `litefs` tests.

mod config_reference;
mod dockerfile;
mod files;
mod image;
mod metrics_reference;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the repository")
        .to_owned()
}

/// A file of the repository, by its path from the root.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

/// The lines of the README section under the heading `title` (any level), up to the next
/// heading of the same or a higher level.
pub fn readme_section(title: &str) -> Vec<String> {
    let readme = read("README.md");
    let mut lines = readme.lines();
    let level = lines
        .by_ref()
        .find_map(|line| {
            let hashes = line.len() - line.trim_start_matches('#').len();
            (hashes > 0 && line[hashes..].trim() == title).then_some(hashes)
        })
        .unwrap_or_else(|| panic!("README.md has no heading {title:?}"));
    let mut in_code = false;
    lines
        .take_while(|line| {
            in_code ^= line.starts_with("```");
            let hashes = line.len() - line.trim_start_matches('#').len();
            in_code || hashes == 0 || hashes > level || !line[hashes..].starts_with(' ')
        })
        .map(str::to_owned)
        .collect()
}
