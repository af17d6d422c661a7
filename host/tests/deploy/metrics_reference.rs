//! The README's metrics table names every metric caje registers, and no other. The names come
//! from the source: the name argument of every `metrics` macro, a string literal or a `const`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use super::{read, readme_section, repo};

/// The `metrics` macros whose first argument is a metric's name.
const MACROS: [&str; 6] = [
    "counter",
    "gauge",
    "histogram",
    "describe_counter",
    "describe_gauge",
    "describe_histogram",
];
/// Workspace members that never run inside a caje node.
const TOOLS: [&str; 2] = ["testkit", "xtask"];

/// What the source registers: names read off the macros, and the macro calls whose name this
/// test cannot read (a computed name would escape the check, so it fails instead).
#[derive(Default)]
struct Registered {
    names: BTreeMap<String, PathBuf>,
    unreadable: Vec<String>,
}

/// A macro's name argument before constants are resolved.
enum NameArg {
    Literal(String),
    Constant(String),
    Unreadable(String),
}

/// Every `.rs` file of the crates a node is built from.
fn node_sources() -> Vec<PathBuf> {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml parses");
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members is a list");
    let mut files = Vec::new();
    for member in members {
        let member = member.as_str().expect("a member is a path");
        assert!(!member.contains('*'), "expand the glob {member:?} here");
        if !TOOLS.contains(&member) {
            rust_files(&repo().join(member).join("src"), &mut files);
        }
    }
    files
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

fn string_literal(token: &TokenTree) -> Option<String> {
    let TokenTree::Literal(literal) = token else {
        return None;
    };
    let text = literal.to_string();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then(|| inner.to_owned())
}

fn is_punct(token: Option<&TokenTree>, ch: char) -> bool {
    matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == ch)
}

fn is_ident(token: Option<&TokenTree>, name: &str) -> bool {
    matches!(token, Some(TokenTree::Ident(i)) if i == name)
}

/// The name argument of a macro call's arguments: what comes before the first top-level comma,
/// after the optional `target:`/`level:`/`parent:` arguments of `metrics` 0.24.
fn name_argument(arguments: TokenStream) -> NameArg {
    let tokens: Vec<TokenTree> = arguments.into_iter().collect();
    let mut parts = tokens.split(|token| is_punct(Some(token), ','));
    let mut first = parts.next().unwrap_or(&[]);
    while ["target", "level", "parent"]
        .iter()
        .any(|name| is_ident(first.first(), name))
        && is_punct(first.get(1), ':')
    {
        first = parts.next().unwrap_or(&[]);
    }
    if let [literal] = first
        && let Some(name) = string_literal(literal)
    {
        return NameArg::Literal(name);
    }
    let is_path = first
        .iter()
        .all(|token| matches!(token, TokenTree::Ident(_)) || is_punct(Some(token), ':'));
    match first.last() {
        Some(TokenTree::Ident(last)) if is_path => NameArg::Constant(last.to_string()),
        _ => NameArg::Unreadable(first.iter().map(ToString::to_string).collect()),
    }
}

/// Walks one file's tokens: the metrics macros' name arguments, and every `const`/`static`
/// holding a string literal (a name may be one). Inline `#[cfg(test)]` modules are skipped.
fn scan(
    tokens: TokenStream,
    file: &Path,
    calls: &mut Vec<(NameArg, PathBuf)>,
    constants: &mut BTreeMap<String, BTreeSet<String>>,
) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        if is_punct(Some(token), '#')
            && matches!(tokens.get(i + 1), Some(TokenTree::Group(g))
                if g.delimiter() == Delimiter::Bracket
                    && g.stream().to_string().replace(' ', "") == "cfg(test)")
            && is_ident(tokens.get(i + 2), "mod")
            && matches!(tokens.get(i + 4), Some(TokenTree::Group(_)))
        {
            i += 5;
            continue;
        }
        if let TokenTree::Ident(ident) = token {
            let is_macro = MACROS.iter().any(|name| ident == name);
            if is_macro
                && is_punct(tokens.get(i + 1), '!')
                && let Some(TokenTree::Group(arguments)) = tokens.get(i + 2)
            {
                calls.push((name_argument(arguments.stream()), file.to_owned()));
            }
            // `'static` in a type is a lifetime, not an item.
            let lifetime = i > 0 && is_punct(tokens.get(i - 1), '\'');
            if (ident == "const" || ident == "static")
                && !lifetime
                && let Some(TokenTree::Ident(name)) = tokens.get(i + 1)
                && let Some(end) = tokens[i..]
                    .iter()
                    .position(|t| is_punct(Some(t), '=') || is_punct(Some(t), ';'))
                && is_punct(tokens.get(i + end), '=')
                && let Some(value) = tokens.get(i + end + 1).and_then(string_literal)
                && is_punct(tokens.get(i + end + 2), ';')
            {
                constants.entry(name.to_string()).or_default().insert(value);
            }
        }
        if let TokenTree::Group(group) = token {
            scan(group.stream(), file, calls, constants);
        }
        i += 1;
    }
}

fn registered() -> Registered {
    let mut calls = Vec::new();
    let mut constants = BTreeMap::new();
    for file in node_sources() {
        let text = std::fs::read_to_string(&file).expect("a source file reads");
        let tokens = TokenStream::from_str(&text)
            .unwrap_or_else(|err| panic!("{} does not tokenize: {err}", file.display()));
        scan(tokens, &file, &mut calls, &mut constants);
    }
    let mut found = Registered::default();
    for (name, file) in calls {
        let source = file.strip_prefix(repo()).unwrap_or(&file).to_owned();
        let name = match name {
            NameArg::Literal(name) => name,
            NameArg::Constant(constant) => match constants.get(&constant) {
                Some(values) if values.len() == 1 => {
                    values.iter().next().cloned().unwrap_or_default()
                }
                _ => {
                    found.unreadable.push(format!(
                        "{}: `{constant}` is not one const holding a string literal",
                        source.display()
                    ));
                    continue;
                }
            },
            NameArg::Unreadable(expression) => {
                found
                    .unreadable
                    .push(format!("{}: `{expression}`", source.display()));
                continue;
            }
        };
        found.names.entry(name).or_insert(source);
    }
    found
}

/// The metric names the README's metrics table documents: the backticked names in each row's
/// first cell, without their labels (`caje_requests_total{cache}` documents `caje_requests_total`).
fn readme_metrics() -> Vec<String> {
    readme_section("Metrics")
        .iter()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|row| {
            let first_cell = row.split('|').nth(1).unwrap_or("").to_owned();
            first_cell
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|name| name.split('{').next().unwrap_or(name).trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_readme_documents_every_metric_and_only_those() {
    let code = registered();
    assert!(
        code.unreadable.is_empty(),
        "metric names this test cannot read (write the name as a string literal or a const \
         holding one): {:#?}",
        code.unreadable
    );
    // The scan must see the macros, or this test would pass on nothing.
    for known in [
        "caje_requests_total",
        "caje_origin_seconds",
        "caje_manifest_queue_rows",
    ] {
        assert!(
            code.names.contains_key(known),
            "the scan missed {known}: {:?}",
            code.names
        );
    }
    let documented = readme_metrics();
    let mut seen = BTreeSet::new();
    let twice: Vec<&String> = documented
        .iter()
        .filter(|name| !seen.insert(name.as_str()))
        .collect();
    assert!(
        twice.is_empty(),
        "README.md's metrics table lists these more than once: {twice:?}"
    );
    let undocumented: Vec<String> = code
        .names
        .iter()
        .filter(|(name, _)| !seen.contains(name.as_str()))
        .map(|(name, file)| format!("{name} ({})", file.display()))
        .collect();
    let unknown: Vec<&&str> = seen
        .iter()
        .filter(|name| !code.names.contains_key(**name))
        .collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "README.md's metrics table lacks {undocumented:?} and names metrics caje does not \
         register: {unknown:?}"
    );
}
