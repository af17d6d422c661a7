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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};

/// The source tree of one crate: its files by module path.
pub struct Crate {
    files: BTreeMap<Vec<String>, SourceFile>,
}

struct SourceFile {
    /// Paths this file names, each as absolute module-path segments.
    uses: Vec<Vec<String>>,
    /// `pub use` items: the name they export, and the absolute path it stands for.
    exports: BTreeMap<String, Vec<String>>,
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

impl SourceFile {
    fn parse(module: &[String], text: &str) -> SourceFile {
        let tokens = tokenize(text);
        let mut file = SourceFile {
            uses: Vec::new(),
            exports: BTreeMap::new(),
        };
        let children = declared_modules(&tokens);
        // The module the scanner is in: the file's, plus any inline `mod name { … }`.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let here = |inline: &[(String, usize)]| {
                let mut current = module.to_vec();
                current.extend(inline.iter().map(|(name, _)| name.clone()));
                current
            };
            match tokens[i].as_str() {
                "{" => depth += 1,
                "}" => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, at)| *at == depth) {
                        inline.pop();
                    }
                }
                "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                    inline.push((tokens[i + 1].clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
                "use" => {
                    let public = i > 0 && is_visibility_end(&tokens, i);
                    let end = tokens[i..]
                        .iter()
                        .position(|t| t == ";")
                        .map_or(tokens.len(), |n| i + n);
                    let current = here(&inline);
                    for (tree, alias) in use_paths(&tokens[i + 1..end]) {
                        let Some(absolute) = absolute(&current, &tree, &children) else {
                            continue;
                        };
                        if public && inline.is_empty() {
                            file.exports.insert(alias, absolute);
                        } else {
                            file.uses.push(absolute);
                        }
                    }
                    i = end + 1;
                    continue;
                }
                "crate" | "super" if tokens.get(i + 1).is_some_and(|t| t == "::") => {
                    let (path, next) = code_path(&tokens, i);
                    if let Some(absolute) = absolute(&here(&inline), &path, &children) {
                        file.uses.push(absolute);
                    }
                    i = next;
                    continue;
                }
                token if token.starts_with('"') => {
                    for path in paths_in_string(token) {
                        if let Some(absolute) = absolute(&here(&inline), &path, &children) {
                            file.uses.push(absolute);
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        file
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

/// Whether the `use` at `at` follows `pub`, `pub(crate)` or `pub(super)`.
fn is_visibility_end(tokens: &[String], at: usize) -> bool {
    match tokens[at - 1].as_str() {
        "pub" => true,
        ")" => at >= 4 && tokens[at - 4] == "pub",
        _ => false,
    }
}

/// Names of child modules a file declares (`mod x;` or `mod x { … }`).
fn declared_modules(tokens: &[String]) -> BTreeSet<String> {
    tokens
        .windows(3)
        .filter(|w| w[0] == "mod" && (w[2] == ";" || w[2] == "{"))
        .map(|w| w[1].clone())
        .collect()
}

/// `crate::a::b` / `super::super::c` at `start`: its segments, and the index after it.
fn code_path(tokens: &[String], start: usize) -> (Vec<String>, usize) {
    let mut path = vec![tokens[start].clone()];
    let mut i = start + 1;
    while tokens.get(i).is_some_and(|t| t == "::")
        && tokens
            .get(i + 1)
            .is_some_and(|t| t.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        path.push(tokens[i + 1].clone());
        i += 2;
    }
    (path, i)
}

/// `crate::…` paths written inside a string literal (serde's `with = "…"`).
fn paths_in_string(literal: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = literal;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let path: Vec<String> = tail[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        paths.push(path);
        rest = &tail[end..];
    }
    paths
}

/// An absolute module path for `path` written in module `current`; `None` for another crate.
fn absolute(
    current: &[String],
    path: &[String],
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => current.to_vec(),
        "super" => {
            let mut base = current.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            return Some(base);
        }
        child if children.contains(child) => {
            let mut base = current.to_vec();
            base.push(child.to_owned());
            base.extend(path[1..].iter().cloned());
            return Some(base);
        }
        _ => return None,
    };
    base.extend(path[1..].iter().cloned());
    Some(base)
}

/// The paths of a use tree (`a::{b, c::d as e, self}`), each with the name it binds.
fn use_paths(tokens: &[String]) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    tree(tokens, &mut i, &[], &mut out);
    out
}

fn tree(tokens: &[String], i: &mut usize, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.to_vec();
    while *i < tokens.len() {
        match tokens[*i].as_str() {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while *i < tokens.len() && tokens[*i] != "}" {
                    tree(tokens, i, &path, out);
                    if tokens.get(*i).is_some_and(|t| t == ",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push((path, "*".to_owned()));
                return;
            }
            "," | "}" => break,
            "as" => {
                let alias = tokens.get(*i + 1).cloned().unwrap_or_default();
                *i += 2;
                out.push((path, alias));
                return;
            }
            segment => {
                if segment == "self" && !path.is_empty() {
                    // `a::{self}` names `a` itself.
                } else {
                    path.push(segment.to_owned());
                }
                *i += 1;
            }
        }
    }
    if !path.is_empty() {
        let name = path.last().cloned().unwrap_or_default();
        out.push((path, name));
    }
}

/// Rust source as tokens: identifiers, `::`, single punctuation, and whole string literals
/// (quotes kept); comments, char literals and lifetimes are dropped.
fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"'
            || (c == 'r' && matches!(next, Some('"' | '#')))
            || (c == 'b' && next == Some('"'))
        {
            let start = i;
            i = string_end(&chars, i);
            let literal: String = chars[start..i].iter().collect();
            let quote = literal.find('"').unwrap_or(0);
            tokens.push(literal[quote..].to_owned());
        } else if c == '\'' {
            // A char literal ('x', '\n') or a lifetime ('a): skip either.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && next == Some(':') {
            tokens.push("::".to_owned());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The index after the string literal starting at `start` (plain, byte or raw).
fn string_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    if chars[i] == 'b' {
        i += 1;
    }
    if chars[i] == 'r' {
        i += 1;
        let mut hashes = 0;
        while chars.get(i) == Some(&'#') {
            hashes += 1;
            i += 1;
        }
        i += 1;
        while i < chars.len() {
            if chars[i] == '"' && (1..=hashes).all(|n| chars.get(i + n) == Some(&'#')) {
                return i + 1 + hashes;
            }
            i += 1;
        }
        return i;
    }
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Layers of a DAG: layer 0 uses nothing, layer n uses only layers below n. Nodes in a cycle
/// get no layer.
fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut layers: Vec<Vec<String>> = Vec::new();
    loop {
        let mut added = Vec::new();
        for (name, uses) in graph {
            if placed.contains_key(name.as_str()) {
                continue;
            }
            let below: Option<Vec<usize>> = uses
                .iter()
                .filter(|used| graph.contains_key(*used))
                .map(|used| placed.get(used.as_str()).copied())
                .collect();
            if let Some(below) = below {
                added.push((name.as_str(), below.into_iter().max().map_or(0, |m| m + 1)));
            }
        }
        if added.is_empty() {
            return layers;
        }
        for (name, layer) in added {
            placed.insert(name, layer);
            if layers.len() <= layer {
                layers.resize(layer + 1, Vec::new());
            }
            layers[layer].push(name.to_owned());
        }
    }
}

/// The strongly connected components with more than one node, each sorted (Tarjan).
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for next in graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !graph.contains_key(next) {
                continue;
            }
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.low[node].min(state.index[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found.sort();
    state.found
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
