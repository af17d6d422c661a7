//! A config error that points at the file, line and key, with a hint on how to fix it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::toml_location::locate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the error can be placed.
    pub line: Option<usize>,
    /// Dotted key path (`origins.api.url`), when known.
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub(super) fn unreadable(file: &Path, err: &std::io::Error) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the config file: {err}"),
            hint: Some(
                "pass an existing file with --config (caje.toml in the repository is the default)"
                    .into(),
            ),
        }
    }

    pub(super) fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
        let located = err.span().map(|span| locate(text, span.start));
        let message = err.message().trim().to_owned();
        let hint = hint_for(&message);
        ConfigError {
            file: file.to_owned(),
            line: located.as_ref().map(|(line, _)| *line),
            key: located.and_then(|(_, key)| key),
            message,
            hint,
        }
    }

    pub(super) fn at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        key: &str,
        message: &str,
        hint: &str,
    ) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: Some(locate(text, span.start).0),
            key: Some(key.to_owned()),
            message: message.to_owned(),
            hint: Some(hint.to_owned()),
        }
    }

    pub(super) fn keyed(file: &Path, key: &str, message: &str, hint: &str) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: None,
            key: Some(key.to_owned()),
            message: message.to_owned(),
            hint: Some(hint.to_owned()),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

fn hint_for(message: &str) -> Option<String> {
    if message.starts_with("missing field") {
        Some("every config needs listen, cache_dir, database, policies_dir, default_origin and [origins.<name>]; see caje.toml".into())
    } else if message.starts_with("unknown field") {
        Some("check the spelling against the configuration reference in README.md".into())
    } else {
        None
    }
}
