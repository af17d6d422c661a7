//! A caje node for one test: its own temp directory (cache, manifest, policies) and an ephemeral port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use caje::app::Node;
use caje::config::Config;
use tempfile::TempDir;

pub struct TestNode {
    node: Option<Node>,
    /// The proxy listener's address, kept across [`TestNode::stop`] for [`TestNode::restart`].
    addr: std::net::SocketAddr,
    dir: Arc<TempDir>,
    config_text: String,
    pub config: Config,
}

impl TestNode {
    /// A node in front of `origin_url` with the default settings.
    pub async fn start(origin_url: &str) -> TestNode {
        TestNode::start_with(origin_url, "").await
    }

    /// A node in front of `origin_url`; `extra` is appended to the config (e.g. a `[cache]` table).
    pub async fn start_with(origin_url: &str, extra: &str) -> TestNode {
        TestNode::start_with_origin(origin_url, "read_timeout = \"5s\"", extra).await
    }

    /// Like [`TestNode::start_with`], with `origin_keys` inside the `[origins.origin]` table.
    pub async fn start_with_origin(origin_url: &str, origin_keys: &str, extra: &str) -> TestNode {
        let config_text = config_text(origin_url, origin_keys, "\"manifest.db\"", extra);
        TestNode::boot(Arc::new(temp_dir()), config_text).await
    }

    /// Like [`TestNode::start_with`], with the manifest at `database` (e.g. on a LiteFS mount)
    /// instead of in the node's own directory. The cache stays in the node's directory.
    pub async fn start_with_database(origin_url: &str, database: &Path, extra: &str) -> TestNode {
        TestNode::try_start_with_database(origin_url, database, extra)
            .await
            .unwrap_or_else(|err| panic!("node does not start: {err}"))
    }

    /// [`TestNode::start_with_database`] that hands back why the node did not start.
    pub async fn try_start_with_database(
        origin_url: &str,
        database: &Path,
        extra: &str,
    ) -> Result<TestNode, String> {
        let database = database.to_str().expect("test paths are UTF-8");
        assert!(
            !database.contains('\''),
            "{database} cannot be a TOML literal string"
        );
        let config_text = config_text(
            origin_url,
            "read_timeout = \"5s\"",
            &format!("'{database}'"),
            extra,
        );
        TestNode::try_boot(Arc::new(temp_dir()), config_text).await
    }

    async fn boot(dir: Arc<TempDir>, config_text: String) -> TestNode {
        TestNode::try_boot(dir, config_text)
            .await
            .unwrap_or_else(|err| panic!("node does not start: {err}"))
    }

    async fn try_boot(dir: Arc<TempDir>, config_text: String) -> Result<TestNode, String> {
        // caje's logs land in the failing test's captured output (RUST_LOG overrides the level).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("caje=debug,caje::access=info")
                }),
            )
            .with_test_writer()
            .try_init();
        std::fs::create_dir_all(dir.path().join("policies")).expect("policies dir");
        let path = dir.path().join("caje.toml");
        std::fs::write(&path, &config_text).expect("write config");
        let config =
            Config::load(&path).unwrap_or_else(|err| panic!("test config is invalid: {err}"));
        let node = Node::start(&config)
            .await
            .map_err(|err| format!("{err:#}"))?;
        Ok(TestNode {
            addr: node.addr,
            node: Some(node),
            dir,
            config_text,
            config,
        })
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node is running")
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.node().addr)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.config.cache_dir.clone()
    }

    /// The directory the node loads `*.wasm` policies from (empty at start); install modules
    /// with [`crate::policies::install`].
    pub fn policies_dir(&self) -> PathBuf {
        self.config.policies_dir.clone()
    }

    /// Stops the node gracefully, keeping its directory.
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }

    /// Stops the node (unless [`TestNode::stop`] did) and starts a new one on the same directory
    /// and port: nothing in memory survives. (The port is part of the Host, hence of every cache key.)
    pub async fn restart(mut self) -> TestNode {
        let addr = self.addr;
        self.stop().await;
        let config_text = self
            .config_text
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""));
        TestNode::boot(self.dir.clone(), config_text).await
    }

    /// Every regular file in the cache directory's shard directories (entries and temp files;
    /// not the node's own state files at the top of the directory).
    /// Whether this node's disk holds a file of `url` (any policy key or variant).
    pub fn holds(&self, url: &str) -> bool {
        let keys = self.node().context.cache.keys_of_url(url);
        !keys.expect("read the cache directory").is_empty()
    }

    pub fn cache_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            let Ok(items) = std::fs::read_dir(dir) else {
                return;
            };
            for item in items.flatten() {
                let path = item.path();
                if path.is_dir() {
                    walk(&path, found);
                } else {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        for shard in std::fs::read_dir(self.cache_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            walk(&shard.path(), &mut found);
        }
        found.sort();
        found
    }
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A node's config: listening on an ephemeral port, everything but `database` in the node's
/// directory. `database` is a TOML value (quoted).
fn config_text(origin_url: &str, origin_keys: &str, database: &str, extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\ncache_dir = \"cache\"\ndatabase = {database}\npolicies_dir = \"policies\"\n\
         default_origin = \"origin\"\n\n[origins.origin]\nurl = \"{origin_url}\"\n{origin_keys}\n\n{extra}\n"
    )
}
