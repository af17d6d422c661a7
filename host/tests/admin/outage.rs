//! A manifest that cannot be written keeps the node serving, and the admin API says which side
//! failed without half-deleting anything; a manifest that is not SQLite or is read-only at
//! start stops start-up with a hint.

use std::path::Path;
use std::time::Duration;

use caje::app::Node;
use caje::config::Config;
use caje_testkit::{Immutable, eventually, get};
use http::StatusCode;
use serde_json::json;

use crate::support::{self, flush, post};

#[tokio::test]
async fn an_unwritable_manifest_keeps_the_node_serving_and_admin_names_the_failed_side() {
    let origin = support::origin().await;
    let node = support::start(
        &origin.url(),
        "",
        "retry_min = \"20ms\"\nretry_max = \"200ms\"\n",
    )
    .await;
    support::fill(&node, &["/o/1", "/o/2"]).await;
    let frozen = Immutable::set(&[&node.config.database]);

    // Misses and hits go on; the writer fails and says so in health.
    assert_eq!(get(&node.url("/o/3")).await.x_cache(), "MISS");
    assert_eq!(get(&node.url("/o/1")).await.x_cache(), "HIT");
    let manifest = node.node().context.manifest.as_ref().unwrap().clone();
    eventually("the writer to fail", Duration::from_secs(10), || {
        manifest.stats().last_error.is_some()
    })
    .await;
    let health = support::get(&node, "/_caje/health").await;
    assert_eq!(health["ok"], false, "{health}");
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .contains("manifest writes are failing")
    );

    // A URL purge still removes this node's files and says the manifest failed: 207.
    let (status, answer) = post(
        &node,
        "/_caje/purge",
        &json!({ "url": node.url("/o/1") }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{answer}");
    assert_eq!(answer["manifest"]["status"], "failed");
    assert!(!answer["manifest"]["error"].as_str().unwrap().is_empty());
    assert_eq!(answer["files"], json!({ "status": "done", "files": 1 }));
    // A prefix purge needs the manifest's rows: nothing is done, nothing is half-deleted: 500.
    let (status, answer) = post(
        &node,
        "/_caje/purge",
        &json!({ "prefix": node.url("/o/") }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(answer["files"]["status"], "not_attempted");
    assert_eq!(get(&node.url("/o/2")).await.x_cache(), "HIT");
    let (status, answer) = post(&node, "/_caje/clear-db", "").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert!(
        answer["hint"]
            .as_str()
            .unwrap()
            .contains("nothing was deleted")
    );
    // The failed write left a hot journal that readers cannot roll back either: the listing
    // says so, and this node's own files are still listed (their manifest state unknown).
    let body = support::get_error(&node, "/_caje/list", StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        body["hint"].as_str().unwrap().contains("cursor=d."),
        "{body}"
    );
    let disk = support::get(&node, "/_caje/list?cursor=d.").await;
    assert!(
        !disk["manifest_error"].as_str().unwrap().is_empty(),
        "{disk}"
    );
    let files = disk["entries"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{disk}");
    assert!(files.iter().all(|e| e["in_manifest"].is_null()), "{disk}");

    drop(frozen);
    eventually("the writer to recover", Duration::from_secs(10), || {
        manifest.stats().last_error.is_none()
    })
    .await;
    flush(&node).await;
    let urls: Vec<String> = support::paths(&support::list_all(&node, "order=url").await);
    assert!(
        urls.contains(&"/o/3".to_owned()),
        "the record made during the outage: {urls:?}"
    );
    assert_eq!(support::get(&node, "/_caje/health").await["ok"], true);
}

fn config_in(dir: &Path) -> Config {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    let text = "listen = \"127.0.0.1:0\"\ncache_dir = \"cache\"\ndatabase = \"manifest.db\"\n\
                policies_dir = \"policies\"\ndefault_origin = \"o\"\n[origins.o]\n\
                url = \"http://127.0.0.1:9\"\n";
    Config::parse(text, &dir.join("caje.toml")).unwrap()
}

#[tokio::test]
async fn a_manifest_that_is_not_sqlite_stops_start_up_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"this is not a database, but somebody's notes\n".repeat(100);
    std::fs::write(dir.path().join("manifest.db"), &garbage).unwrap();
    let err = Node::start(&config_in(dir.path()))
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("not a SQLite database"), "{message}");
    assert!(message.contains("hint:"), "{message}");
    assert_eq!(
        std::fs::read(dir.path().join("manifest.db")).unwrap(),
        garbage
    );
}

#[tokio::test]
async fn a_read_only_manifest_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    Node::start(&config).await.unwrap().shutdown().await;
    let _frozen = Immutable::set(&[&config.database]);
    let err = Node::start(&config).await.err().expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("cannot open the manifest"), "{message}");
    assert!(message.contains("hint:"), "{message}");
}
