//! How callers pick rows: list queries with keyset paging, the opaque cursor that carries a
//! page's position, and the SQL a [`Selector`] stands for.

use sqlx::{QueryBuilder, Sqlite};

use super::selector::Selector;
use super::{ManifestError, ManifestRow};

/// The order of a listing; each order pages with its own keyset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListOrder {
    /// Most recently stored first (`stored_at` descending, then key descending).
    #[default]
    Newest,
    /// By URL, then key, ascending.
    Url,
    /// By change sequence number, then key, ascending: what changed since a point, oldest first.
    Changed,
}

/// A page request for [`Manifest::list`](super::Manifest::list).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only rows whose URL starts with this.
    pub prefix: Option<String>,
    pub order: ListOrder,
    /// Rows per page: default 100, at most 1000.
    pub limit: Option<u32>,
    /// [`Page::next`] of the previous page, in the same order.
    pub cursor: Option<String>,
    /// Also list rows a soft purge marked stale.
    pub include_stale: bool,
    /// Only rows written by a transaction after this change sequence number.
    pub changed_after: Option<u64>,
}

impl ListQuery {
    pub(crate) const DEFAULT_LIMIT: u32 = 100;
    pub(crate) const MAX_LIMIT: u32 = 1000;

    pub(crate) fn page_size(&self) -> u32 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<ManifestRow>,
    /// Pass as [`ListQuery::cursor`] for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The position after the last row of a page, in the terms of its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    Newest { stored_at: i64, key: String },
    Url { url: String, key: String },
    Changed { change_seq: i64, key: String },
}

/// Where a row sits in each order: what a cursor after it records. Read from the row as
/// stored, so that a page ends where its last row does even when that row cannot be returned.
pub(crate) struct RowPosition<'a> {
    pub(crate) key: &'a str,
    pub(crate) url: &'a str,
    pub(crate) stored_at: i64,
    pub(crate) change_seq: i64,
}

impl Cursor {
    pub(crate) fn after(order: ListOrder, row: &RowPosition<'_>) -> Cursor {
        let key = row.key.to_owned();
        match order {
            ListOrder::Newest => Cursor::Newest {
                stored_at: row.stored_at,
                key,
            },
            ListOrder::Url => Cursor::Url {
                url: row.url.to_owned(),
                key,
            },
            ListOrder::Changed => Cursor::Changed {
                change_seq: row.change_seq,
                key,
            },
        }
    }

    /// URL- and JSON-safe text: a letter for the order, then hex or decimal fields.
    pub(crate) fn encode(&self) -> String {
        match self {
            Cursor::Newest { stored_at, key } => format!("n.{stored_at}.{}", hex::encode(key)),
            Cursor::Url { url, key } => format!("u.{}.{}", hex::encode(url), hex::encode(key)),
            Cursor::Changed { change_seq, key } => format!("c.{change_seq}.{}", hex::encode(key)),
        }
    }

    pub(crate) fn decode(text: &str, order: ListOrder) -> Result<Cursor, ManifestError> {
        let bad = || ManifestError::BadCursor(text.to_owned());
        let hex_text = |s: &str| {
            hex::decode(s)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(bad)
        };
        let mut parts = text.splitn(3, '.');
        let (Some(tag), Some(first), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let key = hex_text(key)?;
        match (tag, order) {
            ("n", ListOrder::Newest) => Ok(Cursor::Newest {
                stored_at: first.parse().map_err(|_| bad())?,
                key,
            }),
            ("u", ListOrder::Url) => Ok(Cursor::Url {
                url: hex_text(first)?,
                key,
            }),
            ("c", ListOrder::Changed) => Ok(Cursor::Changed {
                change_seq: first.parse().map_err(|_| bad())?,
                key,
            }),
            _ => Err(bad()),
        }
    }
}

/// Appends the condition on `entries` that `selector` stands for.
pub(crate) fn push_selector(sql: &mut QueryBuilder<Sqlite>, selector: &Selector) {
    match selector {
        Selector::Key(key) => {
            sql.push("key = ").push_bind(key.as_str().to_owned());
        }
        Selector::Url(url) => {
            sql.push("url = ").push_bind(url.clone());
        }
        Selector::Prefix(prefix) => push_prefix(sql, prefix),
        Selector::Tag(tag) => {
            sql.push("id IN (SELECT entry_id FROM entry_tags WHERE tag = ")
                .push_bind(tag.clone())
                .push(")");
        }
    }
}

/// Appends `url` starts with `prefix`, as an index range.
pub(crate) fn push_prefix(sql: &mut QueryBuilder<Sqlite>, prefix: &str) {
    sql.push("url >= ").push_bind(prefix.to_owned());
    if let Some(bound) = prefix_upper_bound(prefix) {
        sql.push(" AND url < ").push_bind(bound);
    }
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when no
/// such bound exists (empty prefix). `url >= prefix AND url < bound` is then an index range.
/// SQLite compares TEXT by bytes and UTF-8 byte order is code point order, so bumping the last
/// code point is exact.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let bumped = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            next => char::from_u32(next),
        };
        if let Some(next) = bumped {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cursors_round_trip_per_order_and_refuse_other_orders() {
        let r = RowPosition {
            key: "k.e/y",
            url: "https://a.example/p?q=1.2",
            stored_at: 1_764_000_000_123,
            change_seq: 1,
        };
        for order in [ListOrder::Newest, ListOrder::Url, ListOrder::Changed] {
            let cursor = Cursor::after(order, &r);
            let text = cursor.encode();
            assert_eq!(Cursor::decode(&text, order).unwrap(), cursor);
            let other = if order == ListOrder::Url {
                ListOrder::Newest
            } else {
                ListOrder::Url
            };
            assert!(Cursor::decode(&text, other).is_err());
        }
        for junk in ["", "n", "n.1", "n.x.6b", "u.zz.6b", "c.1.6b.7"] {
            let err = Cursor::decode(junk, ListOrder::Newest).unwrap_err();
            assert!(err.to_string().contains("cursor"), "{err}");
        }
    }

    #[test]
    fn upper_bound_skips_surrogates_and_maximal_chars() {
        assert_eq!(prefix_upper_bound("https://a/"), Some("https://a0".into()));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }

    proptest! {
        #[test]
        fn bound_separates_exactly_the_strings_with_the_prefix(
            prefix in "\\PC{0,4}",
            s in "\\PC{0,6}",
        ) {
            let in_range = |s: &str| {
                s >= prefix.as_str() && prefix_upper_bound(&prefix).is_none_or(|hi| s < hi.as_str())
            };
            prop_assert_eq!(in_range(&s), s.starts_with(&prefix));
            let extended = format!("{prefix}{s}");
            prop_assert!(in_range(&extended));
        }
    }
}
