//! `GET /_caje/list`: the manifest's rows, each flagged with whether this node holds its file,
//! then the files on this node's disk that the manifest lacks. One paging sequence covers both.
//!
//! Cursors: `m.<manifest cursor>` pages through the manifest; after its last page the answer's
//! `next` is `d.`, which starts the disk pages. A disk page reads the heads of at most `limit`
//! files (in key order) and lists those the manifest lacks, so its cost is bounded by `limit`
//! whatever the size of the cache; a disk page may therefore hold fewer than `limit` entries,
//! or none, while `next` is not null. With the manifest disabled only disk pages exist.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::Serialize;

use super::Admin;
use super::query;
use super::reply::{self, Reply};
use super::target;
use crate::cache::{Cache, DiskPage, EntrySummary};
use crate::key::Key;
use crate::manifest::{ListOrder, ListQuery, ManifestRow};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
const PARAMETERS: &str = "prefix, limit (1-1000), order (newest or url), cursor";

/// One listed page.
#[derive(Debug, Serialize)]
struct Listing {
    /// `manifest` or `disk`: which phase this page comes from.
    source: &'static str,
    entries: Vec<Listed>,
    /// Pass as `cursor` for the next page; `null` after the last page.
    next: Option<String>,
    /// Why `in_manifest` is unknown (`null`) on this disk page: the manifest could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Listed {
    key: Key,
    url: String,
    origin: String,
    status: u16,
    /// Body bytes.
    size: u64,
    /// RFC 3339, UTC.
    stored_at: String,
    /// Seconds of freshness left; negative once stale (a soft purge makes it stale).
    ttl: i64,
    /// `null` when the manifest could not be read (see `manifest_error`).
    in_manifest: Option<bool>,
    /// This node holds a file for the key.
    on_disk: bool,
    /// The node that stored it.
    node: String,
    tags: Vec<String>,
    /// A soft purge marked the manifest row stale.
    soft_purged: bool,
}

enum Cursor {
    Manifest(Option<String>),
    Disk(Option<Key>),
}

struct Params {
    prefix: Option<String>,
    limit: usize,
    order: ListOrder,
    cursor: Cursor,
}

pub(super) async fn list(admin: &Admin, query: &str) -> Reply {
    let params = match Params::parse(query, admin.parts.context.manifest.is_some()) {
        Ok(params) => params,
        Err(err) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                &err,
                &format!(
                    "list parameters are {PARAMETERS}; pass `next` of the previous page as cursor"
                ),
            );
        }
    };
    let listing = match &params.cursor {
        Cursor::Manifest(cursor) => manifest_page(admin, &params, cursor.clone()).await,
        Cursor::Disk(after) => disk_page(admin, &params, after.clone()).await,
    };
    match listing {
        Ok(listing) => reply::json(StatusCode::OK, &listing),
        Err(answer) => answer,
    }
}

impl Params {
    fn parse(query: &str, manifest: bool) -> Result<Params, String> {
        let mut params = Params {
            prefix: None,
            limit: DEFAULT_LIMIT,
            order: ListOrder::Newest,
            cursor: if manifest {
                Cursor::Manifest(None)
            } else {
                Cursor::Disk(None)
            },
        };
        for (name, value) in query::pairs(query) {
            match name.as_str() {
                "prefix" if !value.is_empty() => {
                    params.prefix = Some(target::canonical_prefix(&value)?);
                }
                "prefix" => {}
                "limit" => {
                    params.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            format!("limit {value:?} is not a number from 1 to {MAX_LIMIT}")
                        })?;
                }
                "order" => {
                    params.order = match value.as_str() {
                        "newest" => ListOrder::Newest,
                        "url" => ListOrder::Url,
                        other => return Err(format!("unknown order {other:?}")),
                    };
                }
                "cursor" => params.cursor = Cursor::parse(&value, manifest)?,
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        Ok(params)
    }
}

impl Cursor {
    fn parse(text: &str, manifest: bool) -> Result<Cursor, String> {
        let invalid = || format!("invalid cursor {text:?}");
        match text.split_once('.') {
            Some(("m", inner)) if manifest && !inner.is_empty() => {
                Ok(Cursor::Manifest(Some(inner.to_owned())))
            }
            Some(("d", "")) => Ok(Cursor::Disk(None)),
            Some(("d", key)) => Key::parse(key)
                .map(|key| Cursor::Disk(Some(key)))
                .ok_or_else(invalid),
            _ => Err(invalid()),
        }
    }
}

async fn manifest_page(
    admin: &Admin,
    params: &Params,
    cursor: Option<String>,
) -> Result<Listing, Reply> {
    let manifest = admin
        .parts
        .context
        .manifest
        .as_ref()
        .expect("manifest cursors are only parsed with a manifest");
    let query = ListQuery {
        prefix: params.prefix.clone(),
        order: params.order,
        limit: Some(params.limit as u32),
        cursor,
        include_stale: true,
        changed_after: None,
    };
    let page = manifest.list(&query).await.map_err(|err| {
        let status = match err {
            crate::manifest::ManifestError::BadCursor(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        reply::error(
            status,
            &err.to_string(),
            "this node's own files can still be listed with cursor=d.",
        )
    })?;
    let keys: Vec<Key> = page.rows.iter().map(|r| r.record.key.clone()).collect();
    let on_disk = blocking(admin.parts.context.cache.clone(), move |cache| {
        Ok(keys
            .into_iter()
            .filter(|key| cache.has_key(key))
            .collect::<HashSet<Key>>())
    })
    .await?;
    let now = SystemTime::now();
    Ok(Listing {
        source: "manifest",
        entries: page
            .rows
            .into_iter()
            .map(|row| {
                let on_disk = on_disk.contains(&row.record.key);
                from_row(row, on_disk, now)
            })
            .collect(),
        next: Some(
            page.next
                .map_or_else(|| "d.".to_owned(), |next| format!("m.{next}")),
        ),
        manifest_error: None,
    })
}

async fn disk_page(admin: &Admin, params: &Params, after: Option<Key>) -> Result<Listing, Reply> {
    let limit = params.limit;
    let page: DiskPage = blocking(admin.parts.context.cache.clone(), move |cache| {
        cache.scan(after.as_ref(), limit)
    })
    .await?;
    let mut entries: Vec<EntrySummary> = page
        .entries
        .into_iter()
        .filter(|entry| {
            params
                .prefix
                .as_ref()
                .is_none_or(|p| entry.url.starts_with(p))
        })
        .collect();
    // Files the manifest has were listed in the manifest phase; when it cannot be read, every
    // file is listed with `in_manifest` unknown rather than none at all.
    let mut in_manifest = Some(false);
    let mut manifest_error = None;
    if let Some(manifest) = admin.parts.context.manifest.as_ref() {
        let keys: Vec<Key> = entries.iter().map(|e| e.key.clone()).collect();
        match manifest.existing_keys(&keys).await {
            Ok(known) => entries.retain(|entry| !known.contains(&entry.key)),
            Err(err) => {
                in_manifest = None;
                manifest_error = Some(err.to_string());
            }
        }
    }
    Ok(Listing {
        source: "disk",
        entries: entries
            .into_iter()
            .map(|entry| from_disk(entry, in_manifest, &admin.parts.name))
            .collect(),
        next: page.last.map(|key| format!("d.{key}")),
        manifest_error,
    })
}

/// Runs file-system work off the async threads; an I/O error is a 500 naming it.
async fn blocking<T: Send + 'static>(
    cache: Cache,
    work: impl FnOnce(&Cache) -> std::io::Result<T> + Send + 'static,
) -> Result<T, Reply> {
    crate::sync::blocking(move || work(&cache))
        .await
        .map_err(|err| {
            reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read the cache directory: {err}"),
                "check that cache_dir exists and is readable by caje",
            )
        })
}

fn from_row(row: ManifestRow, on_disk: bool, now: SystemTime) -> Listed {
    let record = row.record;
    let fresh_until = row
        .stale_since
        .map_or(record.expires_at, |stale| stale.min(record.expires_at));
    Listed {
        key: record.key,
        url: record.url,
        origin: record.origin,
        status: record.status,
        size: record.size,
        stored_at: rfc3339(record.stored_at),
        ttl: seconds_between(now, fresh_until),
        in_manifest: Some(true),
        on_disk,
        node: row.node,
        tags: record.tags,
        soft_purged: row.stale_since.is_some(),
    }
}

fn from_disk(entry: EntrySummary, in_manifest: Option<bool>, node: &str) -> Listed {
    Listed {
        key: entry.key,
        url: entry.url,
        origin: entry.origin,
        status: entry.status,
        size: entry.size,
        stored_at: rfc3339(UNIX_EPOCH + Duration::from_millis(entry.stored_at)),
        ttl: entry.ttl_left,
        in_manifest,
        on_disk: true,
        node: node.to_owned(),
        tags: entry.tags,
        soft_purged: false,
    }
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Whole seconds from `now` to `then`, rounded down (negative when `then` has passed), as
/// `Cache-Status: ttl` counts them.
fn seconds_between(now: SystemTime, then: SystemTime) -> i64 {
    let millis = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    (millis(then) - millis(now)).div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let params =
            Params::parse("prefix=http%3A%2F%2FA.test%2Fx&limit=5&order=url", true).unwrap();
        assert_eq!(params.prefix.as_deref(), Some("http://a.test/x"));
        assert_eq!((params.limit, params.order), (5, ListOrder::Url));
        assert!(matches!(params.cursor, Cursor::Manifest(None)));
        assert!(matches!(
            Params::parse("", false).unwrap().cursor,
            Cursor::Disk(None)
        ));
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "order=oldest",
            "cursor=zz",
            "cursor=d.zz",
            "cursor=m.x",
            "colour=red",
            "prefix=/x",
        ] {
            let manifest = !bad.starts_with("cursor=m");
            assert!(Params::parse(bad, manifest).is_err(), "{bad}");
        }
        assert!(matches!(
            Params::parse("cursor=d.", true).unwrap().cursor,
            Cursor::Disk(None)
        ));
    }

    #[test]
    fn ttl_rounds_down_like_cache_status() {
        let now = UNIX_EPOCH + Duration::from_millis(10_500);
        assert_eq!(
            seconds_between(now, UNIX_EPOCH + Duration::from_secs(20)),
            9
        );
        assert_eq!(
            seconds_between(now, UNIX_EPOCH + Duration::from_secs(10)),
            -1
        );
    }
}
