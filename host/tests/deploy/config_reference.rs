//! The README's configuration reference names every key caje's config loader accepts, and no
//! other. The keys come from the loader itself: a probe key in a table makes serde list the
//! table's fields (`unknown field ..., expected one of ...`).

use std::collections::BTreeSet;
use std::path::Path;

use caje::config::Config;

use crate::readme_section;

/// The smallest config that loads; probes are added to it.
const MINIMAL: &str = r#"
listen = "127.0.0.1:8080"
cache_dir = "cache"
database = "manifest.db"
policies_dir = "policies"
default_origin = "o"

[origins.o]
url = "http://127.0.0.1:9"
"#;

const PROBE: &str = "zz_probe";
/// A map's key in a key path (`origins.*.url`); README writes it `<name>`.
const ANY: &str = "*";

/// What a table path holds, as the loader sees it.
enum Shape {
    Struct(Vec<String>),
    MapOfStructs,
    Leaf,
}

fn shape(table: &[String]) -> Shape {
    let text = if table.is_empty() {
        format!("{PROBE} = 1\n{MINIMAL}")
    } else {
        let header: Vec<&str> = table
            .iter()
            .map(|s| if s == ANY { "x" } else { s.as_str() })
            .collect();
        format!("{MINIMAL}\n[{}]\n{PROBE} = 1\n", header.join("."))
    };
    let message = match Config::parse(&text, Path::new("probe.toml")) {
        Ok(_) => return Shape::Leaf,
        Err(err) => err.message,
    };
    if message.starts_with(&format!("unknown field `{PROBE}`")) {
        let expected = message.split_once("expected").map_or("", |(_, rest)| rest);
        let fields = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        Shape::Struct(fields)
    } else if message.contains("expected struct") {
        Shape::MapOfStructs
    } else {
        Shape::Leaf
    }
}

/// Every leaf key under `table`, as dotted paths.
fn keys_under(table: Vec<String>, keys: &mut BTreeSet<String>) {
    match shape(&table) {
        Shape::Struct(fields) => {
            for field in fields {
                let mut path = table.clone();
                path.push(field);
                keys_under(path, keys);
            }
        }
        Shape::MapOfStructs => {
            let mut path = table;
            path.push(ANY.into());
            keys_under(path, keys);
        }
        Shape::Leaf => {
            keys.insert(table.join("."));
        }
    }
}

/// The keys the README's configuration table documents, in its order: the backticked names in
/// each row's first cell, `[table] key` or a bare `key` (a top-level key, or another key of the
/// table named earlier in the cell, as in `` `[manifest] retry_min` / `retry_max` ``).
fn readme_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for row in readme_section("Configuration")
        .iter()
        .filter(|line| line.starts_with("| `"))
    {
        let first_cell = row.split('|').nth(1).unwrap_or("");
        let mut table = String::new();
        for name in first_cell.split('`').skip(1).step_by(2) {
            let key = match name.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
                Some((header, key)) => {
                    table = header
                        .split('.')
                        .map(|segment| {
                            let segment = segment.trim_matches('"');
                            if segment.starts_with('<') {
                                ANY
                            } else {
                                segment
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(".");
                    key.trim()
                }
                None => name.trim(),
            };
            keys.push(if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    keys
}

#[test]
fn the_readme_documents_every_config_key_and_only_those() {
    let mut code = BTreeSet::new();
    keys_under(Vec::new(), &mut code);
    // The probe must see the tables, or this test would pass on nothing.
    for known in ["listen", "origins.*.url", "cache.fsync", "admin.token_file"] {
        assert!(code.contains(known), "the probe missed {known}: {code:?}");
    }
    let rows = readme_keys();
    let readme: BTreeSet<String> = rows.iter().cloned().collect();
    let undocumented: Vec<&String> = code.difference(&readme).collect();
    let unknown: Vec<&String> = readme.difference(&code).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "README.md's configuration table lacks {undocumented:?} and names keys caje does not \
         read: {unknown:?}"
    );
}

/// The top-level table a key belongs to (`policies` for `policies.modules.*.failure`; top-level
/// keys belong to none).
fn top_table(key: &str) -> Option<&str> {
    key.split_once('.').map(|(table, _)| table)
}

#[test]
fn the_readme_documents_each_config_key_once_with_each_table_in_one_block() {
    let rows = readme_keys();
    let mut seen = BTreeSet::new();
    let twice: Vec<&String> = rows.iter().filter(|key| !seen.insert(*key)).collect();
    assert!(
        twice.is_empty(),
        "README.md's configuration table documents these keys more than once: {twice:?}"
    );
    let mut finished: BTreeSet<Option<&str>> = BTreeSet::new();
    for pair in rows.windows(2) {
        let (this, next) = (top_table(&pair[0]), top_table(&pair[1]));
        if this != next {
            finished.insert(this);
            assert!(
                !finished.contains(&next),
                "README.md's configuration table: the rows of [{}] are split ({} comes after \
                 other tables); keep each table's rows together",
                next.unwrap_or("top level"),
                pair[1]
            );
        }
    }
}
