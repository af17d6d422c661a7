//! One source file as the module graph sees it: the paths it names (uses and code paths) and
//! the items it re-exports, each as an absolute module path.

use std::collections::{BTreeMap, BTreeSet};

use super::tokens::tokenize;

/// The paths a file names, read from its tokens.
pub(super) struct SourceFile {
    /// Paths this file names, each as absolute module-path segments.
    pub(super) uses: Vec<Vec<String>>,
    /// `pub use` items: the name they export, and the absolute path it stands for.
    pub(super) exports: BTreeMap<String, Vec<String>>,
}

impl SourceFile {
    pub(super) fn parse(module: &[String], text: &str) -> SourceFile {
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
