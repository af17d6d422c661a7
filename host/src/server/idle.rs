//! Idle detection for one client connection: when bytes last moved either way, whether a write
//! waits on the client, and how many of its requests are still being answered.
//!
//! A connection is closed when nothing moved for `idle_timeout` and either no request is in
//! progress (idle keep-alive, idle h2) or the client stopped reading its response; and when no
//! request head arrived within `header_read_timeout` of the connect. hyper's own timers do not
//! cover these: the auto builder's protocol sniffing waits forever for the first bytes, and
//! idle h2 connections have no limit at all.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Shared by a connection's IO wrapper, its responses and its watchdog.
pub struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` when bytes last moved.
    last_ms: AtomicU64,
    requests: AtomicUsize,
    /// A request head has arrived.
    started: AtomicBool,
    /// The last write found the client's receive window full.
    write_blocked: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        self.write_blocked
            .store(result.is_pending(), Ordering::Relaxed);
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.touch();
        }
    }

    /// Marks a request in progress until the returned guard (held by its response body) drops.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.started.store(true, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Resolves when the connection should be closed, saying why: no request head within
    /// `first_head` (`no_request`), or idle for `idle` (`idle`, or `stalled_reader` when a
    /// response waits on a client that stopped reading).
    pub async fn expired(&self, first_head: Duration, idle: Duration) -> &'static str {
        tokio::select! {
            () = self.no_request_within(first_head) => "no_request",
            reason = self.idle_for(idle) => reason,
        }
    }

    async fn no_request_within(&self, limit: Duration) {
        tokio::time::sleep(limit).await;
        if self.started.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    }

    async fn idle_for(&self, limit: Duration) -> &'static str {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                if self.requests.load(Ordering::Relaxed) == 0 {
                    return "idle";
                }
                if self.write_blocked.load(Ordering::Relaxed) {
                    return "stalled_reader";
                }
                // A response waits on its origin, not on the client: look again later.
                tokio::time::sleep(limit).await;
            } else {
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's socket, noting when bytes move.
pub struct IdleIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> IdleIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> IdleIo<T> {
        IdleIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.activity.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.activity.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A response body that keeps its request counted as in progress until it is sent or dropped.
pub struct Tracked<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, guard: RequestGuard) -> Tracked<B> {
        Tracked {
            inner,
            _guard: guard,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
