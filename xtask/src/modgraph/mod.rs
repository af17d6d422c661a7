//! `cargo xtask modgraph`: the host's module graph, read from its source, as layers; fails when
//! the modules of `host/src` import each other in a cycle.
//!
//! An edge is a path that names another part of the crate: a `use crate::…`, `use super::…` or
//! `use self::…` item, a `use child::…` of a module declared in the file, and a `crate::…` or
//! `super::…` path anywhere else in code (string literals included, so that
//! `#[serde(with = "crate::units::…")]` counts; comments do not). A `pub use` is a module's
//! surface, not a dependency: paths through it are followed to the file that defines the item.
//!
//! Granularity, both checked: the top-level modules (`host/src/<name>.rs` or `<name>/mod.rs`,
//! with everything below them) must form a DAG, and so must the files (one node per `.rs` file,
//! inline `mod tests { … }` included in its file). A `mod.rs` that only declares and re-exports
//! its children does not depend on them; a child's `impl` of a type its `mod.rs` defines does
//! depend on that `mod.rs`.

mod dag;
mod source;
mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};

pub use dag::cycles;
use dag::layers;
use source::SourceFile;

/// The source tree of one crate: its files by module path.
pub struct Crate {
    files: BTreeMap<Vec<String>, SourceFile>,
}

/// The graphs read from a crate.
pub struct Graph {
    /// Top-level module → the top-level modules it uses.
    pub modules: BTreeMap<String, BTreeSet<String>>,
    /// File (module path joined with `::`) → the files it uses.
    pub files: BTreeMap<String, BTreeSet<String>>,
}

/// `cargo xtask modgraph`: prints the host's graph; an error when its top-level modules cycle.
pub fn run(root: &Path) -> anyhow::Result<()> {
    check(&root.join("host/src"))
}

/// [`run`] on the crate whose `lib.rs` is in `source` (`cargo xtask modgraph SRC`).
pub fn check(source: &Path) -> anyhow::Result<()> {
    let graph = Crate::read(source)?.graph();
    print!("{}", graph.report());
    for (level, graph) in [
        ("top-level modules", &graph.modules),
        ("files", &graph.files),
    ] {
        let cycles = cycles(graph);
        if !cycles.is_empty() {
            let listed: Vec<String> = cycles.iter().map(|c| c.join(" ⇄ ")).collect();
            bail!(
                "the {level} of {} import each other in a cycle: {}\n  hint: move the shared \
                 item into a module (or file) both can import, such as a leaf like `units` or \
                 `body`, or pass it in from the caller",
                source.display(),
                listed.join("; ")
            );
        }
    }
    Ok(())
}

impl Crate {
    /// Reads every `.rs` file under `src` (the library's tree; `main.rs` is a separate crate).
    pub fn read(src: &Path) -> anyhow::Result<Crate> {
        let mut files = BTreeMap::new();
        let mut pending = vec![src.to_owned()];
        while let Some(dir) = pending.pop() {
            let entries = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let module = module_path(src, &path);
                    if module.first().is_some_and(|m| m == "main") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    files.insert(module.clone(), SourceFile::parse(&module, &text));
                }
            }
        }
        Ok(Crate { files })
    }

    /// Builds both graphs, following re-exports to the files that define what they name.
    pub fn graph(&self) -> Graph {
        let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, file) in &self.files {
            let from = module.join("::");
            let top = top_level(module);
            if let Some(top) = &top {
                modules.entry(top.clone()).or_default();
            }
            let targets = files.entry(from.clone()).or_default();
            for used in &file.uses {
                let Some(target) = self.resolve(used) else {
                    continue;
                };
                if target != *module {
                    targets.insert(target.join("::"));
                }
                if let (Some(top), Some(other)) = (&top, top_level(&target))
                    && *top != other
                {
                    modules.entry(top.clone()).or_default().insert(other);
                }
            }
        }
        Graph { modules, files }
    }

    /// The file that defines what `path` names (a module, or an item of one), through
    /// re-exports; `None` when it is not in this crate.
    fn resolve(&self, path: &[String]) -> Option<Vec<String>> {
        let mut path = path.to_vec();
        // Each step follows one re-export; a chain longer than the crate's files is a loop.
        for _ in 0..=self.files.len() {
            let mut file = Vec::new();
            let mut consumed = 0;
            for segment in &path {
                let mut deeper = file.clone();
                deeper.push(segment.clone());
                if !self.files.contains_key(&deeper) {
                    break;
                }
                file = deeper;
                consumed += 1;
            }
            let source = self.files.get(&file)?;
            let Some(next) = path.get(consumed) else {
                return Some(file);
            };
            match source.exports.get(next) {
                Some(target) if target != &path[..=consumed] => {
                    let mut followed = target.clone();
                    followed.extend_from_slice(&path[consumed + 1..]);
                    path = followed;
                }
                _ => return Some(file),
            }
        }
        None
    }
}

impl Graph {
    /// The top-level modules as layers (each uses only modules of lower layers), then the
    /// file graph's size and cycles.
    pub fn report(&self) -> String {
        let mut text = String::from(
            "top-level modules, by layer (a module uses only modules of lower layers):\n",
        );
        let layers = layers(&self.modules);
        for (layer, names) in layers.iter().enumerate() {
            let _ = writeln!(text, "  {layer}:");
            for name in names {
                let uses: Vec<&str> = self.modules[name].iter().map(String::as_str).collect();
                if uses.is_empty() {
                    let _ = writeln!(text, "      {name}");
                } else {
                    let _ = writeln!(text, "      {name} → {}", uses.join(", "));
                }
            }
        }
        let module_cycles = cycles(&self.modules);
        for cycle in &module_cycles {
            let _ = writeln!(text, "  in a cycle: {}", cycle.join(", "));
        }
        let above: Vec<&str> = self
            .modules
            .keys()
            .filter(|name| !layers.iter().flatten().any(|placed| placed == *name))
            .filter(|name| !module_cycles.iter().flatten().any(|cyclic| cyclic == *name))
            .map(String::as_str)
            .collect();
        if !above.is_empty() {
            let _ = writeln!(text, "  above a cycle: {}", above.join(", "));
        }
        let edges: usize = self.files.values().map(BTreeSet::len).sum();
        let file_cycles = cycles(&self.files);
        let _ = writeln!(
            text,
            "files: {} files, {edges} edges, {} cycle(s)",
            self.files.len(),
            file_cycles.len()
        );
        for cycle in &file_cycles {
            let _ = writeln!(text, "  {} files: {}", cycle.len(), cycle.join(", "));
        }
        text
    }
}

/// The module path of a file under `src`: `cache/store.rs` → `[cache, store]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let mut segments: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = segments.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            segments.push(stem.to_owned());
        }
    }
    segments
}

fn top_level(module: &[String]) -> Option<String> {
    module.first().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("modgraph-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn paths_through_re_exports_reach_the_defining_file() {
        let dir = scratch("reexport");
        write(
            &dir,
            &[
                ("lib.rs", "pub mod cache;\npub mod units;\npub mod proxy;\n"),
                ("units.rs", "pub struct ByteSize(pub u64);\n"),
                (
                    "cache/mod.rs",
                    "mod key;\nmod store;\npub use key::Key;\nuse store::Disk;\n\
                     pub struct Cache(Disk);\n",
                ),
                ("cache/key.rs", "pub struct Key;\n"),
                (
                    "cache/store.rs",
                    "use super::Key; // crate::proxy in a comment is no edge\n\
                     #[serde(with = \"crate::units::size\")]\npub struct Disk(Key);\n\
                     mod tests { use super::*; fn f() { let c = '\"'; } }\n",
                ),
                (
                    "proxy.rs",
                    "use crate::cache::{self, Key};\nfn f() -> crate::units::ByteSize { todo!() }\n",
                ),
            ],
        );
        let graph = Crate::read(&dir).unwrap().graph();
        assert_eq!(
            graph.files["cache::store"],
            BTreeSet::from(["cache::key".to_owned(), "units".to_owned()])
        );
        assert_eq!(
            graph.files["proxy"],
            BTreeSet::from([
                "cache".to_owned(),
                "cache::key".to_owned(),
                "units".to_owned()
            ])
        );
        assert_eq!(
            graph.files["cache"],
            BTreeSet::from(["cache::store".to_owned()])
        );
        assert!(cycles(&graph.modules).is_empty());
        let report = graph.report();
        assert!(report.contains("  0:\n      units\n"), "{report}");
        assert!(report.contains("proxy → cache, units"), "{report}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cycle_between_files_of_one_module_fails_the_check() {
        let dir = scratch("file-cycle");
        write(
            &dir,
            &[
                ("host/src/lib.rs", "pub mod proxy;\n"),
                (
                    "host/src/proxy/mod.rs",
                    "mod fetch;\nuse fetch::Fetched;\npub struct Proxy(Fetched);\n",
                ),
                (
                    "host/src/proxy/fetch.rs",
                    "pub struct Fetched;\nimpl super::Proxy { fn f(&self) {} }\n",
                ),
            ],
        );
        let graph = Crate::read(&dir.join("host/src")).unwrap().graph();
        assert!(cycles(&graph.modules).is_empty());
        assert_eq!(
            cycles(&graph.files),
            vec![vec!["proxy".to_owned(), "proxy::fetch".to_owned()]]
        );
        let err = run(&dir).unwrap_err().to_string();
        assert!(err.contains("the files of"), "{err}");
        assert!(err.contains("proxy ⇄ proxy::fetch"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cycle_between_top_level_modules_is_found_and_fails_the_check() {
        let dir = scratch("cycle");
        write(
            &dir,
            &[
                (
                    "host/src/lib.rs",
                    "pub mod config;\npub mod cache;\npub mod admin;\n",
                ),
                ("host/src/config.rs", "use crate::admin::AdminConfig;\n"),
                (
                    "host/src/admin.rs",
                    "pub struct AdminConfig;\nuse crate::cache::Cache;\n",
                ),
                (
                    "host/src/cache.rs",
                    "pub struct Cache;\nfn size() -> crate::config::Size { todo!() }\n",
                ),
            ],
        );
        let graph = Crate::read(&dir.join("host/src")).unwrap().graph();
        assert_eq!(
            cycles(&graph.modules),
            vec![vec![
                "admin".to_owned(),
                "cache".to_owned(),
                "config".to_owned()
            ]]
        );
        assert!(
            graph
                .report()
                .contains("  in a cycle: admin, cache, config\n")
        );
        let err = run(&dir).unwrap_err().to_string();
        assert!(err.contains("admin ⇄ cache ⇄ config"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
