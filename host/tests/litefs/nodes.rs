//! caje on a real LiteFS cluster: one caje node on each LiteFS node, each with its own cache
//! directory and the manifest on its node's mount, in front of one real origin. The replica's
//! caje records through HALT; everything is read back through each node's own manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use caje::key::Key;
use caje::litefs::{Database, LitefsConfig, Role};
use caje::manifest::{
    ListOrder, ListQuery, Manifest, ManifestConfig, ManifestError, ManifestRecord, ManifestRow,
    NoGate, OpenOptions, SchemaMode,
};
use caje_testkit::litefs::{Cluster, Node as LitefsNode, mount_points};
use caje_testkit::{TestNode, TestOrigin, get_with};

use super::{SETTLE, eventually};

const DB: &str = "manifest.db";
/// Every request names this host, so one path is one cache key on both caje nodes.
const HOST: &str = "cdn.test";
const PRIMARY: &str = "node-a";

/// The `[manifest]` and `[litefs]` tables of the caje node named `name` on `node`; `manifest`
/// adds keys to `[manifest]`. Background warming is off: these tests look at who wrote each row.
fn node_config(node: &LitefsNode, name: &str, manifest: &str) -> String {
    fleet_config(node, name, manifest, "enabled = false")
}

/// [`node_config`] with `populate` as the `[populate]` table.
pub(super) fn fleet_config(
    node: &LitefsNode,
    name: &str,
    manifest: &str,
    populate: &str,
) -> String {
    format!(
        "[manifest]\nnode = \"{name}\"\nbatch_max_delay = \"20ms\"\nretry_min = \"50ms\"\n\
         retry_max = \"500ms\"\n{manifest}\n\n[litefs]\nrequire = true\nhttp_addr = \"{}\"\n\n\
         [populate]\n{populate}\n",
        node.http_addr()
    )
}

/// A caje node on `node` named `name`, its manifest at `manifest.db` on that node's mount.
async fn caje_on(node: &LitefsNode, origin: &TestOrigin, name: &str) -> TestNode {
    TestNode::start_with_database(
        &origin.url(),
        &node.db_path(DB),
        &node_config(node, name, ""),
    )
    .await
}

/// The cache key of the page `/<name>`.
fn key(name: &str) -> Key {
    Key::for_url(&url(&format!("/{name}")), &[])
}

/// A manifest record of the page `/<name>`, stored now.
fn record(name: &str) -> ManifestRecord {
    ManifestRecord {
        key: key(name),
        method: http::Method::GET,
        url: url(&format!("/{name}")),
        origin: "origin".into(),
        status: 200,
        size: 1,
        stored_at: SystemTime::now(),
        expires_at: SystemTime::now() + Duration::from_secs(60),
        tags: Vec::new(),
    }
}

/// caje on the primary (named "a"), then on the replica ("b"), in front of `origin`.
async fn caje_pair(cluster: &Cluster, origin: &TestOrigin) -> (TestNode, TestNode) {
    let a = caje_on(cluster.primary(), origin, "a").await;
    let b = caje_on(cluster.replica(), origin, "b").await;
    (a, b)
}

/// Stops both caje nodes gracefully (their manifests flushed and closed), replica first.
async fn stop_pair(mut a: TestNode, mut b: TestNode) {
    b.stop().await;
    a.stop().await;
}

fn manifest(node: &TestNode) -> &Manifest {
    node.node()
        .context
        .manifest
        .as_ref()
        .expect("the manifest is enabled")
}

async fn role(node: &TestNode) -> Role {
    let litefs = node
        .node()
        .litefs
        .as_ref()
        .expect("the manifest is on LiteFS");
    litefs.status().await.expect("read the LiteFS status").role
}

fn url(path: &str) -> String {
    format!("http://{HOST}{path}")
}

/// GETs `path` from `node` as `HOST`; the answer must be a cached 200.
async fn fetch(node: &TestNode, path: &str) -> String {
    let reply = get_with(&node.url(path), &[("host", HOST)]).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    reply.x_cache().to_owned()
}

/// Every row of `HOST` in `node`'s manifest, read through that node's own read pool.
async fn rows(node: &TestNode) -> Vec<ManifestRow> {
    let mut query = ListQuery {
        prefix: Some(url("/")),
        order: ListOrder::Url,
        limit: Some(1000),
        ..ListQuery::default()
    };
    let mut rows = Vec::new();
    loop {
        let page = manifest(node)
            .list(&query)
            .await
            .expect("list the manifest");
        rows.extend(page.rows);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return rows,
        }
    }
}

/// Waits until `node`'s manifest holds exactly `expected` rows of `HOST` (URL → writing
/// node); returns them. Fails on a URL listed twice.
async fn wait_for_rows(node: &TestNode, expected: usize) -> BTreeMap<String, String> {
    eventually(&format!("{expected} manifest rows"), || async move {
        let rows = rows(node).await;
        let by_url: BTreeMap<String, String> = rows
            .iter()
            .map(|row| (row.record.url.clone(), row.node.clone()))
            .collect();
        assert_eq!(by_url.len(), rows.len(), "one row per URL: {rows:#?}");
        (rows.len() == expected).then_some(by_url)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_through_the_replica_is_recorded_on_the_primary_and_the_replica() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let origin = TestOrigin::cacheable().await;
    let (a, b) = caje_pair(&cluster, &origin).await;
    assert_eq!(role(&a).await, Role::Primary);
    assert_eq!(
        role(&b).await,
        Role::Replica {
            primary: PRIMARY.into()
        }
    );

    assert_eq!(fetch(&b, "/through/b").await, "MISS");
    for node in [&a, &b] {
        let rows = wait_for_rows(node, 1).await;
        assert_eq!(rows.get(&url("/through/b")).map(String::as_str), Some("b"));
    }
    let stats = manifest(&b).stats();
    assert!(stats.batches >= 1, "{stats:?}");
    assert_eq!((stats.failures, stats.dropped), (0, 0), "{stats:?}");
    assert_eq!(fetch(&b, "/through/b").await, "HIT");
    assert_eq!(origin.hits("/through/b"), 1);
    stop_pair(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_both_nodes_give_one_row_per_url_and_no_errors() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let origin = TestOrigin::cacheable().await;
    let (a, b) = caje_pair(&cluster, &origin).await;
    let (a, b) = (Arc::new(a), Arc::new(b));

    let mut requests = tokio::task::JoinSet::new();
    for i in 0..60 {
        for (node, name) in [(&a, "a"), (&b, "b")] {
            let node = Arc::clone(node);
            requests.spawn(async move { fetch(&node, &format!("/only-{name}/{i}")).await });
        }
    }
    // The same URLs on both nodes at once, twice each: one key, written by either node.
    for i in 0..20 {
        for node in [&a, &b, &a, &b] {
            let node = Arc::clone(node);
            requests.spawn(async move { fetch(&node, &format!("/shared/{i}")).await });
        }
    }
    let verdicts = requests.join_all().await;
    assert_eq!(verdicts.len(), 200);

    let expected = 60 + 60 + 20;
    let on_a = wait_for_rows(&a, expected).await;
    let on_b = wait_for_rows(&b, expected).await;
    assert_eq!(on_a, on_b, "both nodes see the same rows");
    for (url, writer) in &on_a {
        let path = url.strip_prefix(&format!("http://{HOST}")).unwrap();
        match path.split('/').nth(1) {
            Some("only-a") => assert_eq!(writer, "a", "{url}"),
            Some("only-b") => assert_eq!(writer, "b", "{url}"),
            Some("shared") => assert!(writer == "a" || writer == "b", "{url}: {writer}"),
            _ => panic!("unexpected row {url}"),
        }
    }
    for node in [&a, &b] {
        let stats = manifest(node).stats();
        assert_eq!(
            (stats.failures, stats.dropped, stats.queued),
            (0, 0, 0),
            "{stats:?}"
        );
    }
    let done = |node| Arc::into_inner(node).expect("the requests are done");
    stop_pair(done(a), done(b)).await;
}

#[tokio::test]
async fn the_replica_manifest_cannot_write_without_halt_and_can_with_it() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let on_a = cluster.primary().db_path(DB);
    let on_b = cluster.replica().db_path(DB);
    let config = ManifestConfig {
        node: Some("b".into()),
        batch_max_delay: Duration::from_millis(20),
        ..ManifestConfig::default()
    };
    let primary = Manifest::open(&on_a, &config).await.unwrap();
    let litefs = Database::detect(&on_b, &LitefsConfig::default())
        .unwrap()
        .expect("the replica's mount is LiteFS");
    let replica_role = litefs.role().await.unwrap();

    let ungated = OpenOptions {
        gate: Arc::new(NoGate),
        schema: SchemaMode::Await { timeout: SETTLE },
    };
    let err = Manifest::open_with(&on_b, &config, ungated)
        .await
        .err()
        .expect("a replica's manifest refuses writes without HALT");
    assert!(matches!(err, ManifestError::Open { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("attempt to write a readonly database"),
        "{err}"
    );

    let gated = OpenOptions::for_litefs(litefs, replica_role, SETTLE);
    let replica = Manifest::open_with(&on_b, &config, gated).await.unwrap();
    replica.record(record("halted"));
    replica.flush().await.unwrap();
    let primary = &primary;
    let row = eventually("the replica's row on the primary", || async move {
        primary.get(&key("halted")).await.unwrap()
    })
    .await;
    assert_eq!(row.node, "b");
    replica.close().await.unwrap();
    primary.close().await.unwrap();
}

/// With its role unknown (LiteFS's API unreachable), a node still writes: it takes HALT, which
/// is right on any role (here the primary, where HALT is a no-op), instead of failing the batch.
#[tokio::test]
async fn a_node_whose_role_cannot_be_read_still_writes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let on_a = cluster.primary().db_path(DB);
    // HALT needs the database to exist on the node (its `-lock` file comes with it).
    Manifest::open(&on_a, &ManifestConfig::default())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = LitefsConfig {
        http_addr: Some(closed.local_addr().unwrap().to_string()),
        ..LitefsConfig::default()
    };
    drop(closed);
    let litefs = Database::detect(&on_a, &unreachable).unwrap().unwrap();
    let err = litefs.role().await.unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");

    let options = OpenOptions::for_litefs(litefs, Role::Primary, SETTLE);
    let manifest = Manifest::open_with(&on_a, &ManifestConfig::default(), options)
        .await
        .unwrap();
    manifest.record(record("unknown-role"));
    tokio::time::timeout(SETTLE, manifest.flush())
        .await
        .expect("written without knowing the role")
        .unwrap();
    assert!(manifest.get(&key("unknown-role")).await.unwrap().is_some());
    assert_eq!(manifest.stats().failures, 0);
    manifest.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_keeps_its_records_while_the_primary_restarts() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let origin = TestOrigin::cacheable().await;
    let (mut a, b) = caje_pair(&cluster, &origin).await;
    fetch(&b, "/before").await;
    wait_for_rows(&a, 1).await;

    // As on Fly: LiteFS stops its application (caje) before it goes down itself.
    a.stop().await;
    tokio::task::block_in_place(|| cluster.stop_primary());
    assert_eq!(role(&b).await, Role::Disconnected);
    for i in 0..20 {
        assert_eq!(fetch(&b, &format!("/during/{i}")).await, "MISS");
    }
    let failing = manifest(&b);
    eventually(
        "the replica's writer to fail and keep its records",
        || async {
            let stats = failing.stats();
            (stats.failures >= 2 && stats.queued == 20).then_some(())
        },
    )
    .await;
    let error = failing.stats().last_error.unwrap_or_default();
    assert!(error.contains("HALT"), "{error}");

    tokio::task::block_in_place(|| cluster.start_primary());
    let a = caje_on(cluster.primary(), &origin, "a").await;
    for node in [&a, &b] {
        let rows = wait_for_rows(node, 21).await;
        assert!(rows.values().all(|writer| writer == "b"), "{rows:?}");
    }
    let stats = manifest(&b).stats();
    assert!(stats.retries >= 1, "{stats:?}");
    assert_eq!((stats.dropped, stats.queued), (0, 0), "{stats:?}");
    assert_eq!(stats.last_error, None, "{stats:?}");
    stop_pair(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_first_waits_for_the_primary_to_create_the_schema() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let origin = TestOrigin::cacheable().await;
    let on_b = cluster.replica().db_path(DB);
    let impatient = node_config(cluster.replica(), "b", "schema_wait = \"500ms\"");
    let err = TestNode::try_start_with_database(&origin.url(), &on_b, &impatient)
        .await
        .err()
        .expect("no schema, no start");
    assert!(
        err.contains("did not appear") && err.contains("manifest.schema_wait"),
        "{err}"
    );
    assert!(!on_b.exists(), "a replica never creates the manifest");

    let waiting = tokio::spawn({
        let url = origin.url();
        let config = node_config(cluster.replica(), "b", "");
        async move { TestNode::start_with_database(&url, &on_b, &config).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "nothing to open before the primary");

    let a = caje_on(cluster.primary(), &origin, "a").await;
    let b = tokio::time::timeout(SETTLE, waiting)
        .await
        .expect("the replica starts once the schema arrived")
        .unwrap();
    fetch(&b, "/after-wait").await;
    let rows = wait_for_rows(&a, 1).await;
    assert_eq!(rows.get(&url("/after-wait")).map(String::as_str), Some("b"));
    stop_pair(a, b).await;
}

/// A test that fails while caje has the manifest open on both mounts still leaves no mount and
/// no LiteFS process behind.
#[test]
fn a_failing_test_leaves_no_mount_behind() {
    let (mounted_tx, mounted_rx) = mpsc::channel::<Vec<PathBuf>>();
    let outcome = std::thread::spawn(move || {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        let runtime = tokio::runtime::Runtime::new().expect("start tokio");
        runtime.block_on(async {
            let origin = TestOrigin::cacheable().await;
            let (_a, b) = caje_pair(&cluster, &origin).await;
            fetch(&b, "/open").await;
            let dirs = [cluster.primary(), cluster.replica()].map(|n| n.fuse_dir().to_owned());
            let mounts = mount_points();
            assert!(dirs.iter().all(|dir| mounts.contains(dir)), "{mounts:?}");
            mounted_tx.send(dirs.to_vec()).unwrap();
            panic!("a failing assertion while caje holds files on both mounts");
        });
    })
    .join();
    let Ok(dirs) = mounted_rx.try_recv() else {
        assert!(outcome.is_ok(), "the cluster was skipped, not failed");
        return;
    };
    assert!(outcome.is_err(), "the test body failed");
    let mounts = mount_points();
    for dir in &dirs {
        assert!(!mounts.contains(dir), "{} is still mounted", dir.display());
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}
