//! `POST /_caje/purge`: drops pages by URL, URL prefix or tag from the shared manifest and this
//! node's files (hard), or marks them stale so the next request revalidates (soft).
//!
//! The answer says what each side did; a side that failed is named, never hidden.
//!
//! The manifest goes first: its purge returns exactly the rows it touched, which name the files
//! to remove for a prefix or tag. A URL names its files itself, so a URL purge still reaches
//! this node's files when the manifest fails. A prefix or tag purge with the manifest disabled
//! reads the head of every file on this node to find its pages. Status: 200 when every side
//! did its part (also when nothing matched: the counts are zero), 207 when one side failed and
//! the other did its part, 500 when nothing could be done.

use http::StatusCode;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::Admin;
use super::reply::{self, Reply};
use super::target;
use crate::cache::{Cache, PurgeTargets};
use crate::manifest::Selector;
use crate::populate;
use crate::purge_mode::PurgeMode;
use crate::sync::blocking;

const EXAMPLE: &str = r#"{"url": "http://example.com/page"}, {"prefix": "http://example.com/blog/", "soft": true} or {"tag": "product-42"}"#;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    url: Option<String>,
    prefix: Option<String>,
    tag: Option<String>,
    #[serde(default)]
    soft: bool,
}

#[derive(Debug, Serialize)]
struct PurgeAnswer {
    /// What was purged, in the canonical form the cache keys it by.
    selector: SelectorJson,
    soft: bool,
    manifest: ManifestSide,
    files: FilesSide,
}

#[derive(Debug, Serialize)]
struct SelectorJson {
    kind: &'static str,
    value: String,
}

/// The shared manifest's part.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ManifestSide {
    /// `rows` deleted (or marked stale).
    Done {
        rows: usize,
    },
    Failed {
        error: String,
        hint: &'static str,
    },
    /// `[manifest] enabled = false` on this node.
    Disabled,
}

/// This node's part: files removed (or made stale).
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum FilesSide {
    Done {
        files: usize,
    },
    /// Some files could not be handled; `files` were.
    Failed {
        files: usize,
        failed: usize,
        error: String,
    },
    NotAttempted {
        reason: String,
    },
}

pub(super) async fn purge(admin: &Admin, body: Incoming) -> Reply {
    let request: PurgeRequest = match reply::read_json(body, EXAMPLE).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let mode = PurgeMode::soft_if(request.soft);
    let selector = match request.selector() {
        Ok(selector) => selector,
        Err(err) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                &err,
                &format!("send exactly one of url, prefix or tag, e.g. {EXAMPLE}"),
            );
        }
    };
    let manifest_result = match admin.parts.context.manifest.as_ref() {
        Some(manifest) => Some(manifest.purge(&selector, mode).await),
        None => None,
    };
    let cache = &admin.parts.context.cache;
    let files = match (&selector, &manifest_result) {
        // A URL names its files itself: they go also when the manifest failed.
        (Selector::Url(_), _) => purge_files(cache, populate::files_of(&selector, &[]), mode).await,
        (_, Some(Ok(rows))) => purge_files(cache, populate::files_of(&selector, rows), mode).await,
        (_, Some(Err(_))) => FilesSide::NotAttempted {
            reason: "the pages to purge come from the manifest, which failed; nothing was \
                     removed from this node, retry once the manifest is writable"
                .into(),
        },
        (_, None) => match disk_targets(cache, &selector).await {
            Ok(targets) => purge_files(cache, targets, mode).await,
            Err(err) => FilesSide::Failed {
                files: 0,
                failed: 0,
                error: format!("cannot read the cache directory: {err}"),
            },
        },
    };
    let manifest = match manifest_result {
        Some(Ok(rows)) => ManifestSide::Done { rows: rows.len() },
        Some(Err(err)) => ManifestSide::Failed {
            error: err.to_string(),
            hint: "the manifest is not writable now (see GET /_caje/health); retry the purge \
                   once it is",
        },
        None => ManifestSide::Disabled,
    };
    let manifest_ok = !matches!(manifest, ManifestSide::Failed { .. });
    let did_something = matches!(manifest, ManifestSide::Done { .. })
        || matches!(
            files,
            FilesSide::Done { .. } | FilesSide::Failed { files: 1.., .. }
        );
    let status = match (manifest_ok, &files) {
        (true, FilesSide::Done { .. }) => StatusCode::OK,
        _ if did_something => StatusCode::MULTI_STATUS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply::json(
        status,
        &PurgeAnswer {
            selector: SelectorJson {
                kind: selector.kind(),
                value: selector.value().to_owned(),
            },
            soft: mode.is_soft(),
            manifest,
            files,
        },
    )
}

impl PurgeRequest {
    fn selector(&self) -> Result<Selector, String> {
        let given = [&self.url, &self.prefix, &self.tag]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if given != 1 {
            return Err(format!(
                "a purge names exactly one of url, prefix or tag; this one names {given}"
            ));
        }
        if let Some(url) = &self.url {
            return target::canonical_url(url).map(Selector::Url);
        }
        if let Some(prefix) = &self.prefix {
            return target::canonical_prefix(prefix).map(Selector::Prefix);
        }
        match self.tag.as_deref().map(str::trim) {
            Some(tag) if !tag.is_empty() => Ok(Selector::Tag(tag.to_owned())),
            _ => Err("the tag is empty".into()),
        }
    }
}

/// Without a manifest, the pages of a prefix or tag are found by reading every head on disk.
async fn disk_targets(cache: &Cache, selector: &Selector) -> std::io::Result<PurgeTargets> {
    let cache = cache.clone();
    let selector = selector.clone();
    let entries = blocking(move || cache.scan(None, usize::MAX))
        .await?
        .entries;
    Ok(match &selector {
        Selector::Prefix(prefix) => PurgeTargets::Urls(
            entries
                .into_iter()
                .filter(|e| e.url.starts_with(prefix.as_str()))
                .map(|e| e.url)
                .collect(),
        ),
        Selector::Tag(tag) => PurgeTargets::Keys(
            entries
                .into_iter()
                .filter(|e| e.tags.contains(tag))
                .map(|e| e.key)
                .collect(),
        ),
        Selector::Url(_) | Selector::Key(_) => populate::files_of(&selector, &[]),
    })
}

/// Removes (or, soft, expires) the targets' files, carrying on past failures and counting them.
async fn purge_files(cache: &Cache, targets: PurgeTargets, mode: PurgeMode) -> FilesSide {
    let tally = cache.purge(targets, mode).await;
    match tally.first_error {
        None => FilesSide::Done { files: tally.files },
        Some(err) => FilesSide::Failed {
            files: tally.files,
            failed: tally.failed,
            error: format!(
                "{err} (check the permissions of cache_dir; the files that failed are still served)"
            ),
        },
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests of the purge body's parsing: arbitrary bytes and JSON never panic, every
    //! refusal says what to send, and valid selectors come back in the cache keys' form, stably.

    use proptest::prelude::*;

    use super::*;

    /// The body as the endpoint parses it: JSON, then exactly one valid selector.
    fn parse(body: &[u8]) -> Result<(Selector, bool), String> {
        let request: PurgeRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        Ok((request.selector()?, request.soft))
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,24}".prop_map(serde_json::Value::from),
            "(http|https|ftp)://[A-Za-z0-9.:\\[\\]@ -]{0,16}(/[\\PC]{0,8})?"
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop::collection::btree_map(
                prop_oneof![
                    Just("url".to_owned()),
                    Just("prefix".to_owned()),
                    Just("tag".to_owned()),
                    Just("soft".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4,
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect()))
        })
    }

    fn host() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?(\\.[a-zA-Z]{2,6})?(:[0-9]{1,5})?"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse(&body);
        }

        #[test]
        fn arbitrary_json_is_one_selector_or_a_reason(value in json_value()) {
            let body = serde_json::to_vec(&value).expect("JSON");
            match parse(&body) {
                Ok((selector, _)) => {
                    let given = ["url", "prefix", "tag"]
                        .iter()
                        .filter(|k| value.get(**k).is_some_and(|v| !v.is_null()))
                        .count();
                    prop_assert_eq!(given, 1, "{:?} from {}", selector, value);
                }
                Err(reason) => prop_assert!(!reason.is_empty()),
            }
        }

        #[test]
        fn valid_urls_and_prefixes_round_trip(
            scheme in prop::sample::select(vec!["http", "https"]),
            host in host(),
            path in "(/[a-zA-Z0-9._~%-]{0,8}){0,3}(\\?[a-z0-9=&]{0,8})?",
            soft in any::<bool>(),
        ) {
            let url = format!("{scheme}://{host}{path}");
            let body = serde_json::json!({ "url": url, "soft": soft }).to_string();
            let parsed = parse(body.as_bytes());
            if let Ok((Selector::Url(canonical), parsed_soft)) = &parsed {
                prop_assert_eq!(*parsed_soft, soft);
                prop_assert_eq!(canonical, &expected_url(scheme, &host, &path));
                // The canonical form is a fixed point: purging by it names the same pages.
                let again = target::canonical_url(canonical);
                prop_assert_eq!(again.as_ref(), Ok(canonical));
            } else {
                // Ports above 65535 are the only invalid URLs this strategy makes.
                prop_assert!(host.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_err()), "{:?}: {:?}", url, parsed);
            }
            let prefix = format!("{scheme}://{host}/{}", path.trim_start_matches('/'));
            let body = serde_json::json!({ "prefix": prefix }).to_string();
            if let Ok((Selector::Prefix(canonical), _)) = parse(body.as_bytes()) {
                let again = target::canonical_prefix(&canonical);
                prop_assert_eq!(again.as_ref(), Ok(&canonical));
            }
        }

        #[test]
        fn tags_are_trimmed_and_kept(tag in "[ \t]{0,2}[a-zA-Z0-9:_-]{1,16}[ \t]{0,2}") {
            let body = serde_json::json!({ "tag": tag }).to_string();
            let parsed = parse(body.as_bytes());
            prop_assert!(matches!(&parsed, Ok((Selector::Tag(t), false)) if t == tag.trim()), "{:?}", parsed);
        }
    }

    /// What canonicalization should make of a generated URL: lower-case host, the port as a
    /// number and none when it is the scheme's default, `/` for an empty path.
    fn expected_url(scheme: &str, host: &str, path: &str) -> String {
        let default = if scheme == "https" { 443 } else { 80 };
        let host = host.to_ascii_lowercase();
        let host = match host.rsplit_once(':') {
            Some((name, port)) => match port.parse::<u16>() {
                Ok(port) if port == default => name.to_owned(),
                Ok(port) => format!("{name}:{port}"),
                Err(_) => host.clone(),
            },
            None => host,
        };
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        format!("{scheme}://{host}{path}")
    }
}
