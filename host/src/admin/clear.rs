//! `POST /_caje/clear-fs` (every file of this node's cache) and `POST /_caje/clear-db` (every
//! row of the shared manifest). Each takes an empty body or `{}`, so a typo in a body is refused.

use http::StatusCode;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::Admin;
use super::reply::{self, Reply};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

#[derive(Serialize)]
struct FilesCleared {
    files: usize,
}

#[derive(Serialize)]
struct RowsCleared {
    rows: u64,
}

pub(super) async fn clear_fs(admin: &Admin, body: Incoming) -> Reply {
    if let Err(answer) = reply::read_json::<NoOptions>(body, "{}").await {
        return answer;
    }
    let cache = admin.parts.context.cache.clone();
    let cleared = crate::sync::blocking(move || cache.clear()).await;
    match cleared {
        Ok(files) => {
            tracing::info!(files, "admin cleared this node's cache files");
            reply::json(StatusCode::OK, &FilesCleared { files })
        }
        Err(err) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("not every cache file could be removed: {err}"),
            "check the permissions of cache_dir (the files left are still served), then retry",
        ),
    }
}

pub(super) async fn clear_db(admin: &Admin, body: Incoming) -> Reply {
    if let Err(answer) = reply::read_json::<NoOptions>(body, "{}").await {
        return answer;
    }
    let Some(manifest) = admin.parts.context.manifest.as_ref() else {
        return reply::error(
            StatusCode::CONFLICT,
            "the manifest is disabled on this node",
            "set [manifest] enabled = true, or clear it from a node that has it",
        );
    };
    match manifest.clear().await {
        Ok(rows) => {
            tracing::info!(rows, "admin cleared the manifest");
            reply::json(StatusCode::OK, &RowsCleared { rows })
        }
        Err(err) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the manifest was not cleared: {err}"),
            "nothing was deleted; check GET /_caje/health for the manifest's last error, then retry",
        ),
    }
}
