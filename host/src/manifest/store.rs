//! The write transactions: a batch of upserts, a purge, a clear. Each runs on the writer's
//! connection as one `BEGIN IMMEDIATE … COMMIT` and bumps the change counter once.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Serialize;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::query::push_selector;
use super::queue::Pending;
use super::record::{to_millis, to_sql_int};
use super::{ManifestRecord, PurgedRow, Selector};
use crate::purge_mode::PurgeMode;

/// The whole batch in one statement: the rows arrive as one JSON array parameter, so the
/// statement is prepared once and a batch costs a handful of round trips to SQLite whatever
/// its size. Upsert keyed on `key`; a record older than the stored row (a replay, or another
/// node's slower write) leaves it alone, and so does one stored before a soft purge of it.
/// (`WHERE true` tells the parser that `ON CONFLICT` belongs to the insert, not the join.)
const UPSERT_ROWS: &str = "\
    INSERT INTO entries (key, method, url, origin, status, size, stored_at, expires_at, node, \
                         stale_at, change_seq, session) \
    SELECT value ->> 'key', value ->> 'method', value ->> 'url', value ->> 'origin', \
           value ->> 'status', value ->> 'size', value ->> 'stored_at', value ->> 'expires_at', \
           ?2, NULL, ?3, ?4 \
    FROM json_each(?1) WHERE true \
    ON CONFLICT (key) DO UPDATE SET \
        method = excluded.method, url = excluded.url, origin = excluded.origin, \
        status = excluded.status, size = excluded.size, stored_at = excluded.stored_at, \
        expires_at = excluded.expires_at, node = excluded.node, stale_at = NULL, \
        change_seq = excluded.change_seq, session = excluded.session \
    WHERE excluded.stored_at >= entries.stored_at \
      AND (entries.stale_at IS NULL OR excluded.stored_at > entries.stale_at) \
    RETURNING key, id";

/// Who writes: the node's name and the manifest handle's session.
pub(crate) struct Author<'a> {
    pub(crate) node: &'a str,
    pub(crate) session: &'a str,
}

/// A record as the JSON object `UPSERT_ROWS` reads.
#[derive(Serialize)]
struct JsonRow<'a> {
    key: &'a str,
    method: &'a str,
    url: &'a str,
    origin: &'a str,
    status: u16,
    size: i64,
    stored_at: i64,
    expires_at: i64,
}

/// Writes a batch (of distinct keys) as one transaction; rows that were written get their
/// tags replaced.
pub(crate) async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[Pending],
    author: &Author<'_>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<JsonRow> = batch.iter().map(|p| json_row(&p.record)).collect();
    let (mut tx, seq) = begin(conn).await?;
    let written: HashMap<String, i64> = sqlx::query_as(UPSERT_ROWS)
        .bind(json(&rows))
        .bind(author.node)
        .bind(seq)
        .bind(author.session)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let ids: Vec<i64> = written.values().copied().collect();
    let tags: Vec<(&str, i64)> = batch
        .iter()
        .filter_map(|p| Some((&p.record.tags, *written.get(p.record.key.as_str())?)))
        .flat_map(|(tags, id)| tags.iter().map(move |tag| (tag.as_str(), id)))
        .collect();
    sqlx::query("DELETE FROM entry_tags WHERE entry_id IN (SELECT value FROM json_each(?1))")
        .bind(json(&ids))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT OR IGNORE INTO entry_tags (tag, entry_id) \
         SELECT value ->> 0, value ->> 1 FROM json_each(?1)",
    )
    .bind(json(&tags))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// JSON text for `json_each`. Serializing strings and integers cannot fail.
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn json_row(record: &ManifestRecord) -> JsonRow<'_> {
    JsonRow {
        key: record.key.as_str(),
        method: record.method.as_str(),
        url: &record.url,
        origin: &record.origin,
        status: record.status,
        size: to_sql_int(record.size),
        stored_at: to_millis(record.stored_at),
        expires_at: to_millis(record.expires_at),
    }
}

/// Deletes (or, soft, marks stale) the selected rows and logs the purge; a prefix or tag
/// purge also lists the rows it touched, for other nodes to find their files.
pub(crate) async fn purge(
    conn: &mut SqliteConnection,
    selector: &Selector,
    mode: PurgeMode,
    author: &Author<'_>,
    now: SystemTime,
) -> Result<Vec<PurgedRow>, sqlx::Error> {
    let (mut tx, seq) = begin(conn).await?;
    let mut sql = if mode.is_soft() {
        let mut sql =
            QueryBuilder::<Sqlite>::new("UPDATE entries SET stale_at = coalesce(stale_at, ");
        sql.push_bind(to_millis(now));
        sql.push("), change_seq = ").push_bind(seq).push(" WHERE ");
        sql
    } else {
        QueryBuilder::new("DELETE FROM entries WHERE ")
    };
    push_selector(&mut sql, selector);
    sql.push(" RETURNING key, method, url, node");
    let rows: Vec<(String, String, String, String)> =
        sql.build_query_as().fetch_all(&mut *tx).await?;
    let purged: Vec<PurgedRow> = rows
        .into_iter()
        .filter_map(|(key, method, url, node)| PurgedRow::from_sql(&key, &method, url, node))
        .collect();
    if matches!(selector, Selector::Prefix(_) | Selector::Tag(_)) {
        let pages: Vec<(&str, &str, &str, &str)> = purged
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.method.as_str(),
                    r.url.as_str(),
                    r.node.as_str(),
                )
            })
            .collect();
        sqlx::query(
            "INSERT INTO purged_pages (change_seq, key, method, url, node) \
             SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?2)",
        )
        .bind(seq)
        .bind(json(&pages))
        .execute(&mut *tx)
        .await?;
    }
    let entry = LogEntry {
        seq,
        now,
        selector: Some(selector),
        mode,
        rows: purged.len() as u64,
    };
    log_purge(&mut tx, &entry, author).await?;
    tx.commit().await?;
    Ok(purged)
}

/// Deletes every row, logs it as a purge of everything, returns how many rows went.
pub(crate) async fn clear(
    conn: &mut SqliteConnection,
    author: &Author<'_>,
    now: SystemTime,
) -> Result<u64, sqlx::Error> {
    let (mut tx, seq) = begin(conn).await?;
    sqlx::query("DELETE FROM entry_tags")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query("DELETE FROM entries")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let entry = LogEntry {
        seq,
        now,
        selector: None,
        mode: PurgeMode::Hard,
        rows,
    };
    log_purge(&mut tx, &entry, author).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Starts a write transaction, taking the write lock up front so a busy database is waited
/// for at `BEGIN` rather than failing halfway, and returns the transaction's change number.
async fn begin(conn: &mut SqliteConnection) -> Result<(Transaction<'_, Sqlite>, i64), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let seq = sqlx::query_scalar("UPDATE changes SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        .fetch_one(&mut *tx)
        .await?;
    Ok((tx, seq))
}

/// One line of the purge log.
struct LogEntry<'a> {
    seq: i64,
    now: SystemTime,
    /// `None` for a clear.
    selector: Option<&'a Selector>,
    mode: PurgeMode,
    rows: u64,
}

async fn log_purge(
    conn: &mut SqliteConnection,
    entry: &LogEntry<'_>,
    author: &Author<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO purges (change_seq, at, node, selector, value, soft, rows, session) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(entry.seq)
    .bind(to_millis(entry.now))
    .bind(author.node)
    .bind(entry.selector.map_or("all", Selector::kind))
    .bind(entry.selector.map_or("", Selector::value))
    .bind(entry.mode.is_soft())
    .bind(to_sql_int(entry.rows))
    .bind(author.session)
    .execute(conn)
    .await?;
    Ok(())
}
