//! The look-ups: get, list with keyset paging, keys by selector, the change counter and the
//! purge log. They run on the read pool and never wait for the writer's queue.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use http::Method;

use super::query::{Cursor, RowPosition, push_prefix, push_selector};
use super::record::{from_millis, from_sql_int, to_sql_int};
use super::{
    ListOrder, ListQuery, ManifestError, ManifestRecord, ManifestRow, Page, PurgeLogEntry,
    PurgedPage, PurgedRow, Selector,
};
use crate::key::Key;
use crate::purge_mode::PurgeMode;

const ROWS: &str = "\
    SELECT key, method, url, origin, status, size, stored_at, expires_at, node, stale_at, \
           change_seq, session, \
           (SELECT json_group_array(tag) FROM entry_tags WHERE entry_id = entries.id) AS tags \
    FROM entries";

#[derive(sqlx::FromRow)]
struct StoredRow {
    key: String,
    method: String,
    url: String,
    origin: String,
    status: i64,
    size: i64,
    stored_at: i64,
    expires_at: i64,
    node: String,
    stale_at: Option<i64>,
    change_seq: i64,
    session: String,
    /// A JSON array, from `json_group_array`.
    tags: String,
}

impl StoredRow {
    fn position(&self) -> RowPosition<'_> {
        RowPosition {
            key: &self.key,
            url: &self.url,
            stored_at: self.stored_at,
            change_seq: self.change_seq,
        }
    }

    /// The row; `None` when its key or method is not one caje writes (a row written by hand:
    /// it names no file, and is left out).
    fn into_row(self) -> Option<ManifestRow> {
        let mut tags: Vec<String> = serde_json::from_str(&self.tags).unwrap_or_default();
        tags.sort();
        Some(ManifestRow {
            record: ManifestRecord {
                key: Key::parse(&self.key)?,
                method: Method::from_bytes(self.method.as_bytes()).ok()?,
                url: self.url,
                origin: self.origin,
                status: u16::try_from(self.status).unwrap_or(0),
                size: from_sql_int(self.size),
                stored_at: from_millis(self.stored_at),
                expires_at: from_millis(self.expires_at),
                tags,
            },
            node: self.node,
            stale_since: self.stale_at.map(from_millis),
            change_seq: from_sql_int(self.change_seq),
            session: self.session,
        })
    }
}

pub(crate) async fn get(
    pool: &SqlitePool,
    key: &Key,
) -> Result<Option<ManifestRow>, ManifestError> {
    let mut sql = QueryBuilder::<Sqlite>::new(ROWS);
    sql.push(" WHERE key = ").push_bind(key.as_str().to_owned());
    let row: Option<StoredRow> = sql
        .build_query_as()
        .fetch_optional(pool)
        .await
        .map_err(ManifestError::sql("get"))?;
    Ok(row.and_then(StoredRow::into_row))
}

pub(crate) async fn list(pool: &SqlitePool, query: &ListQuery) -> Result<Page, ManifestError> {
    let limit = query.page_size() as usize;
    let cursor = query
        .cursor
        .as_deref()
        .map(|text| Cursor::decode(text, query.order))
        .transpose()?;

    let mut sql = QueryBuilder::<Sqlite>::new(ROWS);
    sql.push(" WHERE 1 = 1");
    if !query.include_stale {
        sql.push(" AND stale_at IS NULL");
    }
    if let Some(prefix) = &query.prefix {
        sql.push(" AND ");
        push_prefix(&mut sql, prefix);
    }
    if let Some(after) = query.changed_after {
        sql.push(" AND change_seq > ").push_bind(to_sql_int(after));
    }
    match cursor {
        None => {}
        Some(Cursor::Newest { stored_at, key }) => {
            sql.push(" AND (stored_at, key) < (").push_bind(stored_at);
            sql.push(", ").push_bind(key).push(")");
        }
        Some(Cursor::Url { url, key }) => {
            sql.push(" AND (url, key) > (").push_bind(url);
            sql.push(", ").push_bind(key).push(")");
        }
        Some(Cursor::Changed { change_seq, key }) => {
            sql.push(" AND (change_seq, key) > (").push_bind(change_seq);
            sql.push(", ").push_bind(key).push(")");
        }
    }
    sql.push(match query.order {
        ListOrder::Newest => " ORDER BY stored_at DESC, key DESC",
        ListOrder::Url => " ORDER BY url, key",
        ListOrder::Changed => " ORDER BY change_seq, key",
    });
    // One row more than the page tells whether another page follows.
    sql.push(" LIMIT ").push_bind(limit as i64 + 1);

    let mut stored: Vec<StoredRow> = sql
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(ManifestError::sql("list"))?;
    let next = (stored.len() > limit).then(|| {
        stored.truncate(limit);
        stored
            .last()
            .map(|last| Cursor::after(query.order, &last.position()).encode())
    });
    Ok(Page {
        rows: stored.into_iter().filter_map(StoredRow::into_row).collect(),
        next: next.flatten(),
    })
}

pub(crate) async fn keys(
    pool: &SqlitePool,
    selector: &Selector,
) -> Result<Vec<Key>, ManifestError> {
    let mut sql = QueryBuilder::<Sqlite>::new("SELECT key FROM entries WHERE ");
    push_selector(&mut sql, selector);
    sql.push(" ORDER BY key");
    let keys: Vec<String> = sql
        .build_query_scalar()
        .fetch_all(pool)
        .await
        .map_err(ManifestError::sql("key look-up"))?;
    Ok(keys.iter().filter_map(|key| Key::parse(key)).collect())
}

pub(crate) async fn existing_keys(
    pool: &SqlitePool,
    keys: &[Key],
) -> Result<HashSet<Key>, ManifestError> {
    let keys: Vec<&str> = keys.iter().map(Key::as_str).collect();
    let keys = serde_json::to_string(&keys).unwrap_or_else(|_| "[]".to_owned());
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?1))",
    )
    .bind(keys)
    .fetch_all(pool)
    .await
    .map_err(ManifestError::sql("key look-up"))?;
    Ok(found.iter().filter_map(|key| Key::parse(key)).collect())
}

pub(crate) async fn change_seq(pool: &SqlitePool) -> Result<u64, ManifestError> {
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM changes WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(ManifestError::sql("change counter read"))?;
    Ok(from_sql_int(seq))
}

pub(crate) async fn purges_since(
    pool: &SqlitePool,
    change_seq: u64,
    limit: u32,
) -> Result<Vec<PurgeLogEntry>, ManifestError> {
    let rows: Vec<PurgeLine> = sqlx::query_as(
        "SELECT change_seq, at, node, selector, value, soft, rows, session FROM purges \
         WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2",
    )
    .bind(to_sql_int(change_seq))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(ManifestError::sql("purge log read"))?;
    Ok(rows
        .into_iter()
        .map(|line| PurgeLogEntry {
            change_seq: from_sql_int(line.change_seq),
            at: from_millis(line.at),
            node: line.node,
            selector: Selector::from_parts(&line.selector, line.value),
            mode: PurgeMode::soft_if(line.soft),
            rows: from_sql_int(line.rows),
            session: line.session,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct PurgeLine {
    change_seq: i64,
    at: i64,
    node: String,
    selector: String,
    value: String,
    soft: bool,
    rows: i64,
    session: String,
}

pub(crate) async fn purged_pages(
    pool: &SqlitePool,
    change_seq: u64,
    after: Option<u64>,
    limit: u32,
) -> Result<PurgedPage, ManifestError> {
    let limit = limit.clamp(1, ListQuery::MAX_LIMIT);
    let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT id, key, method, url, node FROM purged_pages \
         WHERE change_seq = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )
    .bind(to_sql_int(change_seq))
    .bind(after.map_or(0, to_sql_int))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(ManifestError::sql("purged pages read"))?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|(id, ..)| from_sql_int(*id)))
        .flatten();
    Ok(PurgedPage {
        rows: rows
            .into_iter()
            .filter_map(|(_, key, method, url, node)| PurgedRow::from_sql(&key, &method, url, node))
            .collect(),
        next,
    })
}

pub(crate) async fn instance(pool: &SqlitePool) -> Result<String, ManifestError> {
    sqlx::query_scalar("SELECT instance FROM manifest_identity WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(ManifestError::sql("manifest identity read"))
}
