//! Starting a node from its config: logging, cache, proxy, admin API, listeners and
//! signal-driven shutdown. `caje serve` is this module; tests start nodes through it too.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use http::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin, AdminParts};
use crate::cache::Cache;
use crate::config::Config;
use crate::litefs;
use crate::manifest::{self, Manifest, OpenOptions};
use crate::node::NodeContext;
use crate::policy::cli::{Environment, PolicyCommand};
use crate::policy::{self, Policies};
use crate::populate::Populator;
use crate::proxy::{Flights, Origins, Proxy, ProxyConfig};
use crate::server::{self, ServerConfig};
use crate::sync::blocking;

const MANIFEST_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running node.
pub struct Node {
    /// The proxy listener's address.
    pub addr: SocketAddr,
    /// The admin API's own listener, when `[admin] listen` is set.
    pub admin_addr: Option<SocketAddr>,
    /// The cache, manifest and policies the node's parts share.
    pub context: Arc<NodeContext>,
    /// The manifest's database on LiteFS, `None` when it is not on a LiteFS mount:
    /// [`litefs::Database::status`] gives this node's role and replication lag now.
    pub litefs: Option<litefs::Database>,
    flights: Flights,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The listeners a node serves on.
struct Listeners {
    proxy: TcpListener,
    /// The admin API's own, when it has one.
    admin: Option<TcpListener>,
}

impl Node {
    /// Opens the node's parts, binds its listeners and starts serving in the background.
    pub async fn start(config: &Config) -> anyhow::Result<Node> {
        if config.admin.enabled && config.admin.metrics {
            // Before anything takes metric handles: the policy modules keep theirs, and a handle
            // taken before the recorder exists records nowhere.
            admin::install_metrics();
        }
        let (context, litefs) = open_context(config).await?;
        let proxy_config = ProxyConfig {
            origins: &config.origins,
            default_origin: &config.default_origin,
            access_log: config.log.access,
        };
        let proxy =
            Arc::new(Proxy::new(&proxy_config, context.clone()).map_err(anyhow::Error::msg)?);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        // Before the listener: purges made while this node was down are applied first.
        let populate = start_populate(config, &context, &proxy, &stopped, &mut tasks).await;
        let admin = if config.admin.enabled {
            let admin = build_admin(config, &context, &proxy, populate, litefs.clone())?;
            Some(Arc::new(admin))
        } else {
            tracing::info!("[admin] enabled = false: /_caje paths answer 404");
            None
        };
        let listeners = Listeners::bind(config, admin.is_some()).await?;
        let addr = listeners.proxy.local_addr()?;
        let admin_addr = listeners
            .admin
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        tasks.extend(listeners.serve(&proxy, admin.as_ref(), config, &stopped));
        log_started(config, &proxy, admin.as_deref(), addr, admin_addr);
        Ok(Node {
            addr,
            admin_addr,
            context,
            litefs,
            flights: proxy.flights(),
            stop,
            tasks,
        })
    }

    /// Origin fetches in flight now (one per key however many requests wait for it).
    pub fn fetches_in_flight(&self) -> usize {
        self.flights.in_flight()
    }

    /// Stops accepting, waits for in-flight requests (bounded by the shutdown grace period),
    /// then writes what the manifest still holds (bounded too: an unwritable manifest must not
    /// keep the process alive).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(manifest) = &self.context.manifest {
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

/// Opens what the node's parts share: the cache, the manifest (on LiteFS when its database
/// is on a LiteFS mount, whose view is returned beside it for health) and the policy chain.
async fn open_context(
    config: &Config,
) -> anyhow::Result<(Arc<NodeContext>, Option<litefs::Database>)> {
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
        tracing::info!("[manifest] enabled = false: stored pages are not recorded for other nodes");
        (None, None)
    };
    let policies = start_policies(config).await?;
    let context = NodeContext {
        cache,
        manifest,
        policies,
    };
    Ok((Arc::new(context), litefs))
}

/// Starts populate for a node with a manifest, its background job among the node's tasks.
async fn start_populate(
    config: &Config,
    context: &NodeContext,
    proxy: &Arc<Proxy>,
    stopped: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Option<Populator> {
    let manifest = context.manifest.clone()?;
    let (populator, job) = Populator::start(
        &config.populate,
        &config.cache_dir,
        context.cache.clone(),
        manifest,
        proxy.clone(),
        stopped.clone(),
    )
    .await;
    tasks.push(job);
    Some(populator)
}

/// The admin API, with what it reports on and acts on.
fn build_admin(
    config: &Config,
    context: &Arc<NodeContext>,
    proxy: &Proxy,
    populate: Option<Populator>,
    litefs: Option<litefs::Database>,
) -> anyhow::Result<Admin> {
    let name = match &context.manifest {
        Some(manifest) => manifest.node().to_owned(),
        None => manifest::node_name(config.manifest.node.as_deref()),
    };
    let parts = AdminParts {
        context: context.clone(),
        name,
        flights: proxy.flights(),
        populate,
        litefs,
    };
    Ok(Admin::new(&config.admin, parts)?)
}

impl Listeners {
    async fn bind(config: &Config, admin: bool) -> anyhow::Result<Listeners> {
        let proxy = bind(config.listen, "listen").await?;
        let admin = match (admin, config.admin.listen) {
            (true, Some(admin_addr)) => Some(bind(admin_addr, "admin.listen").await?),
            _ => None,
        };
        Ok(Listeners { proxy, admin })
    }

    /// Serves the proxy listener (with `/_caje` paths routed to the admin API, unless it has
    /// a listener of its own: then they answer 404 there, and never reach the cache or the
    /// origin) and the admin listener, until `stopped` says stop.
    fn serve(
        self,
        proxy: &Arc<Proxy>,
        admin: Option<&Arc<Admin>>,
        config: &Config,
        stopped: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let admin_here = admin.filter(|_| self.admin.is_none()).cloned();
        let proxy = proxy.clone();
        let front = move |request: Request<Incoming>, client: SocketAddr| {
            let proxy = proxy.clone();
            let admin = admin_here.clone();
            async move {
                if !admin::owns(request.uri().path()) {
                    proxy.handle(request, client).await
                } else if let Some(admin) = admin {
                    admin.handle(request, client).await
                } else {
                    admin::not_served_here()
                }
            }
        };
        let mut tasks = vec![spawn_server(self.proxy, front, config, stopped)];
        if let (Some(listener), Some(admin)) = (self.admin, admin) {
            let admin = admin.clone();
            let handler = move |request: Request<Incoming>, client: SocketAddr| {
                let admin = admin.clone();
                async move { admin.handle(request, client).await }
            };
            tasks.push(spawn_server(listener, handler, config, stopped));
        }
        tasks
    }
}

fn log_started(
    config: &Config,
    proxy: &Proxy,
    admin: Option<&Admin>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
) {
    if let Some(admin) = admin {
        let served_on = admin_addr.map_or_else(
            || format!("the proxy listener {addr}"),
            |admin_addr| format!("its own listener {admin_addr}"),
        );
        admin.log_start(&served_on);
    }
    tracing::info!(listen = %addr, origin = %config.default_origin, cache_dir = %config.cache_dir.display(), "caje is serving");
    if proxy.accepts_any_host() {
        tracing::warn!(
            "no origin lists `hosts`: caje answers for any Host header (set [origins.<name>] hosts in production)"
        );
    }
}

/// Loads the policy chain (compiling modules blocks, so off the async workers) and starts its watcher.
async fn start_policies(config: &Config) -> anyhow::Result<Policies> {
    let dir = config.policies_dir.clone();
    let policy_config = config.policies.clone();
    let origins: Vec<String> = config.origins.keys().cloned().collect();
    let policies = blocking(move || Policies::start(&dir, &policy_config, origins)).await?;
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

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({key}; is another process using it?)"))
}

/// Serves `handler` on `listener` until `stopped` says stop.
fn spawn_server<H, F>(
    listener: TcpListener,
    handler: H,
    config: &Config,
    stopped: &watch::Receiver<bool>,
) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = admin::Reply> + Send + 'static,
{
    let server_config = config.server.clone();
    let mut stopped = stopped.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        server::serve(listener, handler, &server_config, shutdown).await;
    })
}

/// `caje policy …`; with `--config`, the cases run under that node config's `[policies]`
/// settings, origins (routed by Host as the proxy routes them) and `max_object_size`.
pub fn policy_command(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    policy::cli::run(command, |path| {
        let config = Config::load(path).map_err(|err| anyhow::anyhow!("{err}"))?;
        let routing = Origins::new(&config.origins).map_err(anyhow::Error::msg)?;
        let default = config.default_origin.clone();
        Ok(Environment {
            policies: config.policies.clone(),
            origins: config.origins.keys().cloned().collect(),
            route: Box::new(move |host| {
                routing
                    .for_host(host, &default)
                    .map(|origin| origin.name.clone())
            }),
            max_object_size: config.cache.max_object_size.0,
        })
    })
}

/// `caje serve`: runs until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    raise_fd_limit(&config.server);
    let node = Node::start(&config).await?;
    wait_for_signal().await?;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    node.shutdown().await;
    Ok(())
}

/// File descriptors kept for origin connections, cache files and the manifest besides the
/// client connections.
const FD_RESERVE: u64 = 256;

/// Every client connection holds a file descriptor. A service manager's usual soft limit
/// (1024) would make `accept` fail long before `max_connections`: raise the soft limit to the
/// hard one, and say so when even that is too low.
fn raise_fd_limit(server: &ServerConfig) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let limit = if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let wanted = server.max_connections as u64 + FD_RESERVE;
    if limit < wanted {
        tracing::warn!(
            limit,
            max_connections = server.max_connections,
            "the open-files limit is below [server] max_connections plus {FD_RESERVE} for \
             origins and cache files: raise it (ulimit -n, LimitNOFILE= in systemd) or lower \
             max_connections, or connections will fail to be accepted before the limit"
        );
    }
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
