//! A listener: accepts connections (HTTP/1.1 and h2c) within the configured limits, and shuts
//! down gracefully (stop accepting, let in-flight requests finish within the grace period).
//!
//! Limits bound what clients can hold: `max_connections` open at once (each is a file
//! descriptor) and `idle_timeout` for a connection on which nothing happens.

mod config;
mod idle;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use config::ServerConfig;

use crate::body::Body;
use crate::warn_limit::WarnLimiter;
use idle::{Activity, IdleIo, Tracked};

/// hyper refuses read buffers below 8 KiB.
const MIN_BUFFER: usize = 8192;
/// What a connection beyond `max_connections` is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
    content-length: 45\r\nconnection: close\r\n\r\ncaje: too many connections, try again later\r\n";
/// How long accepting pauses after a failed accept (usually EMFILE) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `handler` (usually [`Proxy::handle`](crate::proxy::Proxy::handle) behind the admin
/// routing) on `listener` until `shutdown` resolves, then drains connections.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut listener = Listener::new(listener, config);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer, slot) = tokio::select! {
            accepted = listener.next() => accepted,
            () = &mut shutdown => break,
        };
        listener.spawn_connection(stream, peer, slot, handler.clone());
    }
    listener.drain().await;
}

/// One listening socket with its protocol settings, its connection slots and its watchdog limits.
struct Listener {
    socket: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    graceful: GracefulShutdown,
    /// One permit per open connection: `max_connections` in all.
    slots: Arc<Semaphore>,
    config: ServerConfig,
    refusals: WarnLimiter,
    accept_warnings: WarnLimiter,
}

impl Listener {
    fn new(socket: TcpListener, config: &ServerConfig) -> Listener {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size((config.max_header_size.0 as usize).max(MIN_BUFFER))
            .max_headers(config.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_header_size.0).unwrap_or(u32::MAX));
        Listener {
            socket,
            builder,
            graceful: GracefulShutdown::new(),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config: config.clone(),
            refusals: WarnLimiter::default(),
            accept_warnings: WarnLimiter::default(),
        }
    }

    /// The next connection that gets a slot; those beyond `max_connections` are refused here.
    /// Cancel-safe: it waits only in `accept` and in the backoff after a failed one.
    async fn next(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        loop {
            let (stream, peer) = match self.socket.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Established connections carry on; accepting pauses instead of spinning.
                    if let Some(skipped) = self.accept_warnings.admit(Instant::now()) {
                        tracing::warn!(error = %err, skipped_warnings = skipped, "accept failed; if it says \
                            \"too many open files\", raise the file descriptor limit (ulimit -n) or lower \
                            [server] max_connections");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => return (stream, peer, slot),
                Err(_) => refuse(
                    stream,
                    peer,
                    self.config.max_connections,
                    &mut self.refusals,
                ),
            }
        }
    }

    /// Serves one connection in its own task, holding `slot` until its socket is closed; the
    /// watchdog closes it when it idles or stalls past the configured limits.
    fn spawn_connection<H, F>(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        handler: H,
    ) where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let in_service = activity.clone();
        let service = service_fn(move |request| {
            let guard = in_service.request();
            let answer = handler(request, peer);
            async move { Ok::<_, Infallible>(answer.await.map(|body| Tracked::new(body, guard))) }
        });
        let io = TokioIo::new(IdleIo::new(stream, activity.clone()));
        let connection = self
            .graceful
            .watch(self.builder.serve_connection(io, service).into_owned());
        let (header_read_timeout, idle_timeout) =
            (self.config.header_read_timeout, self.config.idle_timeout);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                ended = connection => if let Err(err) = ended {
                    tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
                },
                reason = activity.expired(header_read_timeout, idle_timeout) => {
                    metrics::counter!("caje_connections_closed_total", "reason" => reason).increment(1);
                    tracing::debug!(peer = %peer, reason, "closing a connection");
                }
            }
        });
    }

    /// Stops accepting and lets open connections finish within the shutdown grace period.
    async fn drain(self) {
        drop(self.socket);
        let grace = self.config.shutdown_grace;
        tokio::select! {
            () = self.graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace = ?grace, "connections still open after the shutdown grace period; closing them");
            }
        }
    }
}

/// Answers a connection beyond `max_connections` with a 503 (best effort: never waits on the
/// client) and closes it.
fn refuse(stream: TcpStream, peer: SocketAddr, max: usize, warnings: &mut WarnLimiter) {
    metrics::counter!("caje_connections_refused_total").increment(1);
    let _ = stream.try_write(BUSY);
    if let Some(skipped) = warnings.admit(Instant::now()) {
        tracing::warn!(
            %peer,
            max_connections = max,
            skipped_warnings = skipped,
            "refusing a connection: [server] max_connections are open; raise it (and the \
             file descriptor limit, ulimit -n) if this load is legitimate"
        );
    }
}
