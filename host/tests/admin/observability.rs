//! `/_caje/metrics` speaks the Prometheus text format and its counters move with traffic;
//! `/_caje/health` reports the node, the manifest writer and the hit ratio.

use std::collections::HashMap;

use caje_testkit::litefs::Cluster;
use caje_testkit::{TestNode, get};
use http::StatusCode;

use crate::support::{self, TOKEN, base, call, flush};

/// Checks every line against the text exposition format (version 0.0.4) and returns the
/// samples by `name{labels}`. Panics naming the first line that does not parse.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name, rest) = (words.next(), words.next(), words.next());
            let name = name.unwrap_or_else(|| panic!("comment without a name: {line:?}"));
            assert!(is_metric_name(name), "bad metric name in {line:?}");
            match kind {
                Some("HELP") => assert!(rest.is_some(), "HELP without text: {line:?}"),
                Some("TYPE") => {
                    let kind = rest.unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "unknown TYPE in {line:?}"
                    );
                    assert!(types.insert(name, kind).is_none(), "second TYPE for {name}");
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (
                name,
                Some(
                    labels
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels: {line:?}")),
                ),
            ),
            None => (series, None),
        };
        assert!(is_metric_name(name), "bad metric name in {line:?}");
        if let Some(labels) = labels {
            check_labels(labels, line);
        }
        // Histograms and summaries add suffixes to their family's name.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| matches!(types.get(f), Some(&"histogram" | &"summary")))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        if name.ends_with("_bucket") {
            assert!(
                labels.is_some_and(|l| l.contains("le=\"")),
                "bucket without le: {line:?}"
            );
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name="value"` pairs separated by commas, values with `\\`, `\"` and `\n` escapes only.
fn check_labels(labels: &str, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line:?}"));
        assert!(
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {name:?} in {line:?}"
        );
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape in {line:?}"
                    );
                }
                Some((i, '"')) => break i,
                Some(_) => {}
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

async fn scrape(node: &TestNode) -> HashMap<String, f64> {
    let reply = call(&base(node), "GET", "/_caje/metrics", "", Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&reply.text())
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_follow_the_exposition_format_and_count_traffic() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    // The recorder is shared by every node of the test process: compare before and after, and
    // expect at least this node's share (other tests only add to it).
    let before = scrape(&node).await;
    assert_eq!(get(&node.url("/m")).await.x_cache(), "MISS");
    for _ in 0..3 {
        assert_eq!(get(&node.url("/m")).await.x_cache(), "HIT");
    }
    let posted = caje_testkit::send(
        http::Request::post(node.url("/m"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(posted.x_cache(), "BYPASS");
    let unstored = caje_testkit::get_with(&node.url("/n"), &[("cache-control", "no-store")]).await;
    assert_eq!(unstored.x_cache(), "MISS");
    flush(&node).await;
    let after = scrape(&node).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert!(moved("caje_requests_total{cache=\"hit\"}") >= 3.0);
    assert!(moved("caje_requests_total{cache=\"miss\"}") >= 1.0);
    assert!(moved("caje_requests_total{cache=\"bypass\"}") >= 1.0);
    assert!(moved("caje_cache_fills_total") >= 1.0);
    assert!(moved("caje_responses_not_stored_total{reason=\"no-store\"}") >= 1.0);
    assert!(moved("caje_origin_seconds_count{origin=\"origin\"}") >= 2.0);
    assert!(
        value(
            &after,
            "caje_origin_seconds_bucket{origin=\"origin\",le=\"30\"}"
        ) >= 2.0
    );
    assert!(moved("caje_manifest_rows_total") >= 1.0);
    assert!(after.contains_key("caje_manifest_batch_rows_bucket{le=\"500\"}"));
}

#[tokio::test]
async fn health_reports_the_node_the_writer_and_the_hit_ratio() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "node = \"health-node\"\n").await;
    get(&node.url("/h")).await;
    get(&node.url("/h")).await;
    flush(&node).await;
    let health = support::get(&node, "/_caje/health").await;
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["problems"], serde_json::json!([]));
    assert_eq!(health["node"], "health-node");
    assert!(health["uptime_seconds"].is_u64());
    assert_eq!(health["manifest"]["enabled"], true);
    assert!(
        health["manifest"]["writer"]["written"].as_u64() >= Some(1),
        "{health}"
    );
    let requests = &health["cache"]["requests"];
    assert!(requests["hit"].as_u64() >= Some(1), "{health}");
    let ratio = requests["hit_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{health}");
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "metrics = false", "").await;
    support::get_error(&node, "/_caje/metrics", StatusCode::SERVICE_UNAVAILABLE).await;
    let health = support::get(&node, "/_caje/health").await;
    assert!(health["cache"]["requests"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_litefs_role_of_each_node() {
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::start).await.unwrap() else {
        return;
    };
    let origin = support::origin().await;
    let mut nodes = Vec::new();
    // The primary's node creates the schema the replica's node waits for.
    for litefs in [cluster.primary(), cluster.replica()] {
        let litefs_table = format!(
            "[litefs]\nrequire = true\nhttp_addr = \"{}\"\n",
            litefs.http_addr()
        );
        let database = litefs.db_path("manifest.db");
        nodes.push(support::start_on(&origin.url(), Some(&database), "", "", &litefs_table).await);
    }
    let primary = support::get(&nodes[0], "/_caje/health").await;
    assert_eq!(
        primary["litefs"],
        serde_json::json!({ "role": "primary", "lag_ms": 0 }),
        "{primary}"
    );
    assert_eq!(primary["ok"], true, "{primary}");
    let replica = support::get(&nodes[1], "/_caje/health").await;
    assert_eq!(replica["litefs"]["role"], "replica of node-a", "{replica}");
    assert!(replica["litefs"]["lag_ms"].is_u64(), "{replica}");
    assert_eq!(replica["ok"], true, "{replica}");
    // Without LiteFS there is nothing to report.
    let plain = support::start(&origin.url(), "", "").await;
    assert!(support::get(&plain, "/_caje/health").await["litefs"].is_null());
    for mut node in nodes {
        node.stop().await;
    }
}
