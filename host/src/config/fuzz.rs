//! Property tests of the config parser: any text is an error or a config, never a panic, and a
//! value of the wrong kind is reported at its line and key, so the operator can find it.

use std::path::Path;

use proptest::prelude::*;

use super::Config;

/// Tables added to the tests' minimal valid config, so that most value kinds are mutation targets.
const MORE: &str = r#"read_timeout = "30s"
hosts = ["example.com"]

[cache]
max_object_size = "1GiB"
memory_size = "16MiB"
fsync = false
coalesce_wait = "30s"

[server]
max_headers = 100
header_read_timeout = "10s"

[policies]
fuel = 1000000
memory_limit = "16MiB"
failure = "open"

[manifest]
batch_max_rows = 500
journal_mode = "delete"

[log]
format = "text"
access = true

[admin]
metrics = true

[populate]
concurrency = 4
interval = "200ms"
"#;

/// A valid config touching most tables; each `key = value` line is a mutation target.
fn base_lines() -> Vec<String> {
    format!("{}{MORE}", super::tests::GOOD)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn parse(text: &str) -> Result<Config, super::ConfigError> {
    Config::parse(text, Path::new("/etc/caje/caje.toml"))
}

/// A well-formed TOML value, often of the wrong kind or out of range for the key it replaces.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .:/_-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("1.5".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_config_or_an_error_naming_the_file(text in "\\PC{0,200}") {
        if let Err(err) = parse(&text) {
            prop_assert!(err.to_string().starts_with("/etc/caje/caje.toml"), "{}", err);
        }
    }

    #[test]
    fn lines_spliced_into_a_valid_config_never_panic(
        at in any::<prop::sample::Index>(),
        inserted in prop::collection::vec("(\\[[a-z.\"]{0,12}\\]|[a-z_]{1,12} ?= ?[\\[\\]\"a-z0-9{}.,= ]{0,16}|\\PC{0,16})", 1..4),
    ) {
        let mut lines = base_lines();
        let at = at.index(lines.len() + 1);
        lines.splice(at..at, inserted);
        if let Err(err) = parse(&lines.join("\n")) {
            prop_assert!(err.line.is_some() || err.key.is_some(), "{}", err);
        }
    }

    #[test]
    fn a_wrong_value_is_reported_at_its_line_and_key(
        target in any::<prop::sample::Index>(),
        value in scalar(),
    ) {
        let mut lines = base_lines();
        let keyed: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains(" = ")).collect();
        let index = keyed[target.index(keyed.len())];
        let key = lines[index].split(" = ").next().unwrap_or_default().to_owned();
        lines[index] = format!("{key} = {value}");
        match parse(&lines.join("\n")) {
            Ok(_) => {}
            Err(err) => {
                let named = err.key.as_deref().is_some_and(|k| k.ends_with(&key))
                    || err.message.contains(&key);
                prop_assert!(named, "{key} = {value}: {err}");
                if let Some(line) = err.line {
                    prop_assert_eq!(line, index + 1, "{} = {}: {}", key, value, err);
                }
            }
        }
    }
}
