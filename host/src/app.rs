//! Starting a node from its config: logging, cache, proxy, listener and signal-driven shutdown.
//! `caje serve` is this module; tests start nodes through it too.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cache::Cache;
use crate::config::{Config, LogConfig, LogFormat};
use crate::litefs;
use crate::manifest::{Manifest, OpenOptions};
use crate::policy::Policies;
use crate::proxy::{self, Proxy};

const MANIFEST_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running node.
pub struct Node {
    pub addr: SocketAddr,
    pub proxy: Arc<Proxy>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Node {
    /// Binds the listener and starts serving in the background.
    pub async fn start(config: &Config) -> anyhow::Result<Node> {
        let cache = Cache::open(&config.cache_dir, &config.cache).with_context(|| {
            format!(
                "cannot open the cache directory {}",
                config.cache_dir.display()
            )
        })?;
        let (manifest, litefs) = if config.manifest.enabled {
            let litefs = litefs::Database::detect(&config.database, &config.litefs)?;
            let manifest = open_manifest(config, litefs.clone()).await?;
            (Some(manifest), litefs)
        } else {
            tracing::info!(
                "[manifest] enabled = false: stored pages are not recorded for other nodes"
            );
            (None, None)
        };
        let policies = start_policies(config).await?;
        let proxy = Arc::new(
            Proxy::new(config, cache, manifest, policies)
                .map_err(anyhow::Error::msg)?
                .with_litefs(litefs),
        );
        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another process using it?)",
                config.listen
            )
        })?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let server_config = config.server.clone();
        let serving = proxy.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            proxy::serve(listener, serving, &server_config, shutdown).await;
        });
        tracing::info!(listen = %addr, origin = %config.default_origin, cache_dir = %config.cache_dir.display(), "caje is serving");
        if proxy.accepts_any_host() {
            tracing::warn!(
                "no origin lists `hosts`: caje answers for any Host header (set [origins.<name>] hosts in production)"
            );
        }
        Ok(Node {
            addr,
            proxy,
            stop,
            task,
        })
    }

    /// Stops accepting, waits for in-flight requests (bounded by the shutdown grace period),
    /// then writes what the manifest still holds (bounded too: an unwritable manifest must not
    /// keep the process alive).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(manifest) = self.proxy.manifest() {
            match tokio::time::timeout(MANIFEST_FLUSH_LIMIT, manifest.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "manifest records were not all written at shutdown")
                }
                Err(_) => tracing::warn!(
                    "manifest still unwritable at shutdown; its queued records are lost"
                ),
            }
            let _ = manifest.close().await;
        }
    }
}

/// Loads the policy chain (compiling modules blocks, so off the async workers) and starts its watcher.
async fn start_policies(config: &Config) -> anyhow::Result<Policies> {
    let dir = config.policies_dir.clone();
    let policy_config = config.policies.clone();
    let origins: Vec<String> = config.origins.keys().cloned().collect();
    let policies =
        tokio::task::spawn_blocking(move || Policies::start(&dir, &policy_config, origins))
            .await??;
    let chain = policies.chain();
    let modules: Vec<&str> = chain.module_names().collect();
    tracing::info!(dir = %config.policies_dir.display(), ?modules, "policy chain loaded");
    Ok(policies)
}

/// Opens the manifest. On LiteFS the node's role at start decides: the primary migrates the
/// schema, a replica waits for it; every write goes through HALT whenever the node is a replica.
async fn open_manifest(
    config: &Config,
    litefs: Option<litefs::Database>,
) -> anyhow::Result<Manifest> {
    let options = match litefs {
        None => OpenOptions::default(),
        Some(database) => {
            let role = database.role().await?;
            if role.is_primary() {
                tracing::info!(%role, "LiteFS: this node writes the manifest directly and migrates it");
            } else {
                tracing::info!(
                    %role,
                    schema_wait = ?config.manifest.schema_wait,
                    "LiteFS: this node writes the manifest through HALT; waiting for the \
                     primary's schema"
                );
            }
            OpenOptions::for_litefs(database, role, config.manifest.schema_wait)
        }
    };
    Ok(Manifest::open_with(&config.database, &config.manifest, options).await?)
}

/// `caje serve`: runs until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let node = Node::start(&config).await?;
    wait_for_signal().await?;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    node.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// Installs the global tracing subscriber; `RUST_LOG` overrides the configured level.
pub fn init_logging(config: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
