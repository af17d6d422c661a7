//! The write transactions: a batch of upserts, a purge, a clear. Each runs on the writer's
//! connection as one `BEGIN IMMEDIATE … COMMIT` and bumps the change counter once.

use std::time::SystemTime;

use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::query::push_selector;
use super::queue::Pending;
use super::record::{to_millis, to_sql_int};
use super::{ManifestRecord, PurgedRow, Selector};

/// Upsert keyed on `key`. A record older than the stored row (a replay, or another node's
/// slower write) leaves it alone, and so does one stored before a soft purge of the row.
const UPSERT: &str = "\
    INSERT INTO entries (key, method, url, origin, status, size, stored_at, expires_at, node, \
                         stale_at, change_seq) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10) \
    ON CONFLICT (key) DO UPDATE SET \
        method = excluded.method, url = excluded.url, origin = excluded.origin, \
        status = excluded.status, size = excluded.size, stored_at = excluded.stored_at, \
        expires_at = excluded.expires_at, node = excluded.node, stale_at = NULL, \
        change_seq = excluded.change_seq \
    WHERE excluded.stored_at >= entries.stored_at \
      AND (entries.stale_at IS NULL OR excluded.stored_at > entries.stale_at) \
    RETURNING id";

/// Writes a batch as one transaction.
pub(crate) async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[Pending],
    node: &str,
) -> Result<(), sqlx::Error> {
    let (mut tx, seq) = begin(conn).await?;
    for pending in batch {
        upsert(&mut tx, &pending.record, node, seq).await?;
    }
    tx.commit().await
}

/// Deletes (or, when `soft`, marks stale) the selected rows and logs the purge.
pub(crate) async fn purge(
    conn: &mut SqliteConnection,
    selector: &Selector,
    soft: bool,
    node: &str,
    now: SystemTime,
) -> Result<Vec<PurgedRow>, sqlx::Error> {
    let (mut tx, seq) = begin(conn).await?;
    let mut sql = if soft {
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
        .map(|(key, method, url, node)| PurgedRow {
            key,
            method,
            url,
            node,
        })
        .collect();
    log_purge(
        &mut tx,
        seq,
        now,
        node,
        Some(selector),
        soft,
        purged.len() as u64,
    )
    .await?;
    tx.commit().await?;
    Ok(purged)
}

/// Deletes every row, logs it as a purge of everything, returns how many rows went.
pub(crate) async fn clear(
    conn: &mut SqliteConnection,
    node: &str,
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
    log_purge(&mut tx, seq, now, node, None, false, rows).await?;
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

async fn upsert(
    conn: &mut SqliteConnection,
    record: &ManifestRecord,
    node: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(UPSERT)
        .bind(&record.key)
        .bind(&record.method)
        .bind(&record.url)
        .bind(&record.origin)
        .bind(i64::from(record.status))
        .bind(to_sql_int(record.size))
        .bind(to_millis(record.stored_at))
        .bind(to_millis(record.expires_at))
        .bind(node)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(id) = id else {
        return Ok(());
    };
    sqlx::query("DELETE FROM entry_tags WHERE entry_id = ?1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for tag in &record.tags {
        sqlx::query("INSERT OR IGNORE INTO entry_tags (tag, entry_id) VALUES (?1, ?2)")
            .bind(tag)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn log_purge(
    conn: &mut SqliteConnection,
    seq: i64,
    now: SystemTime,
    node: &str,
    selector: Option<&Selector>,
    soft: bool,
    rows: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO purges (change_seq, at, node, selector, value, soft, rows) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(seq)
    .bind(to_millis(now))
    .bind(node)
    .bind(selector.map_or("all", Selector::kind))
    .bind(selector.map_or("", Selector::value))
    .bind(soft)
    .bind(to_sql_int(rows))
    .execute(conn)
    .await?;
    Ok(())
}
