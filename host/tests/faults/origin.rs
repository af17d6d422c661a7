//! Origins that fail mid-body (reset, stall) and in storms: the client gets a clean error or
//! the stale copy, never a truncated body presented as complete, and nothing broken is stored.
//! (Refused connections, a slow head, and a short Content-Length body with a clean hang-up are
//! covered in `tests/proxy/errors.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use caje_testkit::{TestOrigin, get, open, respond, try_get};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{self, Caje, pattern, temp_files, until_hit};

const LEN: usize = 200_000;

/// How the first response of the raw origin breaks off after part of its body.
#[derive(Clone, Copy)]
enum Breaks {
    /// TCP reset (SO_LINGER 0), Content-Length framing.
    ResetLength,
    /// TCP reset in the middle of a chunked body.
    ResetChunked,
    /// Stops sending and keeps the connection open, past caje's read timeout (5 s here).
    Stalls,
}

/// A byte-exact origin: the first response breaks off as told, later ones are whole.
/// Returns its URL and how many requests it has answered.
async fn raw_origin(breaks: Breaks) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU32::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
            tokio::spawn(answer(stream, first.then_some(breaks)));
        }
    });
    (url, served)
}

async fn answer(mut stream: TcpStream, breaks: Option<Breaks>) {
    let mut request = [0u8; 4096];
    let _ = stream.read(&mut request).await;
    let body = pattern(1, LEN);
    let part = &body[..LEN / 4];
    let cache = "cache-control: max-age=600\r\n";
    match breaks {
        None => {
            let head = format!("HTTP/1.1 200 OK\r\n{cache}content-length: {LEN}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            return;
        }
        Some(Breaks::ResetChunked) => {
            let head = format!("HTTP/1.1 200 OK\r\n{cache}transfer-encoding: chunked\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream
                .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .await;
            let _ = stream.write_all(part).await;
            let _ = stream.write_all(b"\r\n").await;
        }
        Some(Breaks::ResetLength | Breaks::Stalls) => {
            let head = format!("HTTP/1.1 200 OK\r\n{cache}content-length: {LEN}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(part).await;
        }
    }
    let _ = stream.flush().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    if matches!(breaks, Some(Breaks::Stalls)) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    } else {
        let _ = stream.set_zero_linger();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_by_reset_or_stall_aborts_the_client_and_is_never_stored() {
    for breaks in [Breaks::ResetLength, Breaks::ResetChunked, Breaks::Stalls] {
        let (url, served) = raw_origin(breaks).await;
        let dir = tempfile::tempdir().unwrap();
        let caje = Caje::start(dir.path(), &support::config(&url, "127.0.0.1:0", "")).await;
        let response = open(&caje.url("/cut")).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.into_body().collect().await.is_err(),
            "a body the origin broke off must end the client's response in an error"
        );
        let reply = get(&caje.url("/cut")).await;
        assert_eq!(reply.x_cache(), "MISS", "the broken body was not stored");
        assert!(reply.body[..] == pattern(1, LEN)[..]);
        assert_eq!(served.load(Ordering::SeqCst), 2);
        until_hit(&caje, "/cut", &pattern(1, LEN)).await;
        assert!(caje.metric("caje_fills_abandoned_total").await >= 1.0);
        assert!(temp_files(&caje.cache_dir()).is_empty());
    }
}

/// An origin that answers 500 while `failing`, else a page cacheable for a second with an
/// hour of stale-if-error.
async fn switchable(failing: Arc<AtomicBool>) -> TestOrigin {
    TestOrigin::start(move |request| {
        let failing = failing.load(Ordering::SeqCst);
        async move {
            if failing {
                return respond(500, &[], "origin down");
            }
            let cache = [("cache-control", "max-age=1, stale-if-error=3600")];
            respond(200, &cache, &format!("page {}", request.uri().path()))
        }
    })
    .await
}

/// `count` concurrent GETs spread over `paths`; every reply (a failed request panics).
async fn storm(caje: &Caje, paths: &[String], count: usize) -> Vec<(String, caje_testkit::Reply)> {
    let requests = (0..count).map(|i| {
        let path = paths[i % paths.len()].clone();
        let url = caje.url(&path);
        async move {
            let reply = try_get(&url).await.unwrap_or_else(|err| panic!("{err}"));
            (path, reply)
        }
    });
    futures_util::future::join_all(requests).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_of_5xx_and_refused_connections_get_clean_errors_or_the_stale_copy() {
    let failing = Arc::new(AtomicBool::new(false));
    let origin = switchable(failing.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let caje = Caje::start(
        dir.path(),
        &support::config(&origin.url(), "127.0.0.1:0", ""),
    )
    .await;
    let stored: Vec<String> = (0..5).map(|n| format!("/stored/{n}")).collect();
    for path in &stored {
        assert_eq!(get(&caje.url(path)).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    failing.store(true, Ordering::SeqCst);

    let fresh: Vec<String> = (0..5).map(|n| format!("/never/{n}")).collect();
    for (path, reply) in storm(&caje, &fresh, 200).await {
        assert_eq!(reply.status, 500, "{path}");
        assert_eq!(
            reply.text(),
            "origin down",
            "{path}: the origin's own error"
        );
    }
    for (path, reply) in storm(&caje, &stored, 200).await {
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.x_cache(), "STALE", "{path}");
        assert_eq!(reply.text(), format!("page {path}"));
    }
    assert!(
        caje.health().await["ok"] == true,
        "an origin storm is not a node problem"
    );

    failing.store(false, Ordering::SeqCst);
    for path in fresh.iter().chain(&stored) {
        let reply = get(&caje.url(path)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.text()),
            (200, format!("page {path}"))
        );
        assert_ne!(reply.x_cache(), "STALE", "{path}: the origin is back");
    }

    // Then it refuses connections altogether: a storm of 502s, or the stale copy.
    origin.stop().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gone: Vec<String> = (0..5).map(|n| format!("/gone/{n}")).collect();
    for (path, reply) in storm(&caje, &gone, 200).await {
        assert_eq!(reply.status, 502, "{path}");
        assert!(
            reply.text().contains("unreachable"),
            "{path}: {}",
            reply.text()
        );
    }
    for (path, reply) in storm(&caje, &stored, 200).await {
        assert_eq!(
            (reply.status.as_u16(), reply.x_cache()),
            (200, "STALE"),
            "{path}"
        );
        assert_eq!(reply.text(), format!("page {path}"));
    }
}
