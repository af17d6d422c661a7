//! Which rows a purge or a key look-up means: one key, one URL, a URL prefix or a tag, as the
//! admin API names them and the purge log records them.

use crate::key::Key;

/// Which rows a purge or key look-up means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The row with exactly this cache key.
    Key(Key),
    /// Every row whose URL is exactly this (all methods and variants).
    Url(String),
    /// Every row whose URL starts with this.
    Prefix(String),
    /// Every row carrying this tag.
    Tag(String),
}

impl Selector {
    /// `key`, `url`, `prefix` or `tag`.
    pub fn kind(&self) -> &'static str {
        match self {
            Selector::Key(_) => "key",
            Selector::Url(_) => "url",
            Selector::Prefix(_) => "prefix",
            Selector::Tag(_) => "tag",
        }
    }

    /// What it names: a key, a URL, a prefix or a tag, as text.
    pub fn value(&self) -> &str {
        match self {
            Selector::Key(key) => key.as_str(),
            Selector::Url(v) | Selector::Prefix(v) | Selector::Tag(v) => v,
        }
    }

    /// A selector as the purge log stores it; `None` for a kind it does not know or a key
    /// that is not one.
    pub(crate) fn from_parts(kind: &str, value: String) -> Option<Selector> {
        Some(match kind {
            "key" => Selector::Key(Key::parse(&value)?),
            "url" => Selector::Url(value),
            "prefix" => Selector::Prefix(value),
            "tag" => Selector::Tag(value),
            _ => return None,
        })
    }
}
