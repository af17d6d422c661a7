//! A listener: accepts connections (HTTP/1.1 and h2c), applies the configured limits, and
//! shuts down gracefully: stop accepting, let in-flight requests finish within the grace period.
//! Limits bound what clients can hold: `max_connections` open at once (each is a file
//! descriptor) and `idle_timeout` for a connection on which nothing happens.

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
use tokio::sync::Semaphore;

use super::Body;
use super::idle::{Activity, IdleIo, Tracked};
use crate::config::ServerConfig;
use crate::warn_limit::WarnLimiter;

/// hyper refuses read buffers below 8 KiB.
const MIN_BUFFER: usize = 8192;
/// What a connection beyond `max_connections` is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
    content-length: 45\r\nconnection: close\r\n\r\ncaje: too many connections, try again later\r\n";

/// Serves `handler` (usually [`Proxy::handle`](super::Proxy::handle) behind the admin routing)
/// on `listener` until `shutdown` resolves, then drains connections.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
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
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut refusals = WarnLimiter::default();
    let mut accept_warnings = WarnLimiter::default();
    let (header_read_timeout, idle_timeout) = (config.header_read_timeout, config.idle_timeout);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Usually EMFILE: back off instead of spinning; established connections carry on.
                        if let Some(skipped) = accept_warnings.admit(Instant::now()) {
                            tracing::warn!(error = %err, skipped_warnings = skipped, "accept failed; if it says \
                                \"too many open files\", raise the file descriptor limit (ulimit -n) or lower \
                                [server] max_connections");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refuse(stream, peer, config.max_connections, &mut refusals);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let activity = Activity::new();
                let in_service = activity.clone();
                let service = service_fn(move |request| {
                    let guard = in_service.request();
                    let answer = handler(request, peer);
                    async move { Ok::<_, Infallible>(answer.await.map(|body| Tracked::new(body, guard))) }
                });
                let io = TokioIo::new(IdleIo::new(stream, activity.clone()));
                let connection = graceful.watch(builder.serve_connection(io, service).into_owned());
                tokio::spawn(async move {
                    // The slot is held until the connection's socket is closed.
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
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(grace = ?config.shutdown_grace, "connections still open after the shutdown grace period; closing them");
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
