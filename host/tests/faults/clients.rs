//! Hostile and idle clients: slowloris, silent and idle keep-alive connections by the
//! thousand, connections beyond `max_connections`, a reader that stalls and one that vanishes.
//! Other clients are served meanwhile, and caje's file descriptors stay bounded.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use caje::body::Body;
use caje_testkit::{TestOrigin, eventually, eventually_async, get, open};
use http::Response;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, Caje, closed_within, pattern, raw_get, until_hit};

/// Slack for descriptors caje opens on its own (origin connections, cache files, SQLite).
const FD_SLACK: usize = 40;
const LARGE: usize = 32 << 20;

fn large() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| Bytes::from(pattern(9, LARGE))).clone()
}

/// `/large/...`: 32 MiB (more than loopback socket buffers hold); anything else a small page.
async fn origin() -> TestOrigin {
    TestOrigin::start(|request| async move {
        let cacheable = Response::builder().header("cache-control", "max-age=3600");
        if request.uri().path().starts_with("/large/") {
            cacheable.body(Body::full(large())).unwrap()
        } else {
            let page = format!("page {}", request.uri().path());
            cacheable.body(Body::full(page)).unwrap()
        }
    })
    .await
}

async fn start(origin: &TestOrigin, server: &str) -> (tempfile::TempDir, Caje) {
    let dir = tempfile::tempdir().unwrap();
    let config = support::config(&origin.url(), "127.0.0.1:0", &format!("[server]\n{server}"));
    let caje = Caje::start(dir.path(), &config).await;
    (dir, caje)
}

/// caje with `server` settings, warmed up; its descriptor count once warm.
async fn start_warm(origin: &TestOrigin, server: &str) -> (tempfile::TempDir, Caje, usize) {
    let (dir, caje) = start(origin, server).await;
    assert_served(&caje, "/warm").await;
    let baseline = caje.open_fds();
    (dir, caje, baseline)
}

async fn assert_served(caje: &Caje, path: &str) {
    let reply = get(&caje.url(path)).await;
    assert_eq!(reply.status, 200, "{path}");
    assert_eq!(reply.text(), format!("page {path}"));
}

/// A process's open-files limit (soft, hard) from `/proc/<pid>/limits`.
fn open_files_limit(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut values = line["Max open files".len()..].split_whitespace();
    let mut next = || values.next().unwrap().parse().unwrap();
    (next(), next())
}

/// Waits until caje holds no more descriptors than `baseline` plus slack.
async fn fds_back_to(caje: &Caje, baseline: usize) {
    eventually(
        &format!("caje's descriptors back near {baseline}"),
        Duration::from_secs(30),
        || caje.open_fds() <= baseline + FD_SLACK,
    )
    .await;
}

/// Sends `head` one byte per 200 ms; returns how many bytes went out before caje closed the
/// connection (`None`: it never did).
async fn slowloris(caje: &Caje, head: &'static [u8]) -> Option<usize> {
    let mut stream = TcpStream::connect(caje.addr).await.unwrap();
    let mut buffer = [0u8; 1024];
    for (sent, byte) in head.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(sent);
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            Err(_) | Ok(Ok(1..)) => {}
            Ok(Ok(0) | Err(_)) => return Some(sent + 1),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_silent_connections_are_closed_after_header_read_timeout() {
    let origin = origin().await;
    let (_dir, caje) = start(&origin, "header_read_timeout = \"1s\"").await;
    const HEAD: &[u8] = b"GET /slow HTTP/1.1\r\nHost: slow.test\r\nX-Padding: 0123456789\r\n\r\n";
    let dribblers: Vec<_> = (0..50)
        .map(|_| {
            let caje = &caje;
            async move { slowloris(caje, HEAD).await }
        })
        .collect();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(caje.addr).await.unwrap());
    }
    let (dribbled, ()) = tokio::join!(futures_util::future::join_all(dribblers), async {
        for n in 0..5 {
            assert_served(&caje, &format!("/meanwhile/{n}")).await;
        }
    });
    for sent in dribbled {
        let sent = sent.expect("a slowloris connection must be closed");
        assert!(sent < HEAD.len(), "closed before its head was complete");
    }
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "a connection that never sends a request is closed"
        );
    }
    assert_eq!(origin.hits("/slow"), 0);
}

/// A raw HTTP/2 client preface and an empty SETTINGS frame: an h2c connection, then nothing.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_are_closed_after_idle_timeout_and_fds_return() {
    let origin = origin().await;
    // Both ends of 2,500 connections live in this process and in caje, which inherits this
    // soft limit and raises it to the hard one.
    let (soft, hard) = caje_testkit::process::set_fd_limit(6000);
    assert!(
        soft >= 6000,
        "this test needs `ulimit -Hn` of 6000 or more, not {soft}"
    );
    let server = "idle_timeout = \"3s\"\nmax_connections = 5000";
    let (_dir, caje, baseline) = start_warm(&origin, server).await;
    let limits = open_files_limit(caje.pid());
    assert_eq!(
        limits,
        (hard, hard),
        "caje raised its soft open-files limit from {soft}"
    );

    let mut idle = Vec::new();
    for n in 0..1000 {
        let mut stream = TcpStream::connect(caje.addr).await.unwrap();
        let (status, _) = raw_get(&mut stream, &format!("/keep/{}", n % 10))
            .await
            .unwrap();
        assert!(status.starts_with("http/1.1 200"), "{status}");
        idle.push(stream);
    }
    for _ in 0..500 {
        let mut stream = TcpStream::connect(caje.addr).await.unwrap();
        stream.write_all(H2_PREFACE).await.unwrap();
        idle.push(stream);
    }
    for _ in 0..1000 {
        idle.push(TcpStream::connect(caje.addr).await.unwrap());
    }
    assert_served(&caje, "/other-client").await;

    fds_back_to(&caje, baseline).await;
    for stream in &mut idle {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "caje closed every idle connection"
        );
    }
    assert_served(&caje, "/after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_while_admitted_ones_work() {
    let origin = origin().await;
    let (_dir, caje) = start(
        &origin,
        "max_connections = 100\nheader_read_timeout = \"60s\"",
    )
    .await;
    let mut admitted = TcpStream::connect(caje.addr).await.unwrap();
    assert!(raw_get(&mut admitted, "/a").await.is_some());
    let baseline = caje.open_fds();

    let (mut held, mut refused) = (Vec::new(), 0);
    for n in 0..150 {
        let mut stream = TcpStream::connect(caje.addr).await.unwrap();
        match raw_get(&mut stream, &format!("/more/{n}")).await {
            Some((status, _)) if status.starts_with("http/1.1 200") => held.push(stream),
            Some((status, body)) => {
                assert!(status.starts_with("http/1.1 503"), "{status}");
                assert!(String::from_utf8_lossy(&body).contains("too many connections"));
                refused += 1;
            }
            // Refused, and the request crossed the close: a reset.
            None => refused += 1,
        }
    }
    assert_eq!(refused, 51, "the 100 admitted: 1 + 99");
    assert!(caje.open_fds() <= baseline + 99 + FD_SLACK);
    let (status, body) = raw_get(&mut admitted, "/a").await.expect("still served");
    assert!(status.starts_with("http/1.1 200"));
    assert_eq!(body, b"page /a");
    // The log is read from caje's stderr by a thread of its own: wait for the line to arrive.
    eventually("the refusal's warning", Duration::from_secs(10), || {
        !caje.log_lines("refusing a connection").is_empty()
    })
    .await;
    let warnings = caje.log_lines("refusing a connection");
    assert_eq!(warnings.len(), 1, "warned once, not per connection");
    assert!(warnings[0].contains("max_connections"));

    drop(held);
    eventually(
        "slots freed by closed connections",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(caje.addr).is_ok(),
    )
    .await;
    // Closing is noticed as the connections' EOFs are read: allow for that with a retry.
    eventually_async(
        "a new client to be served",
        Duration::from_secs(10),
        || async {
            let mut stream = TcpStream::connect(caje.addr).await.unwrap();
            let reply = raw_get(&mut stream, "/again").await;
            reply.is_some_and(|(status, _)| status.starts_with("http/1.1 200"))
        },
    )
    .await;
    assert!(caje.metric("caje_connections_refused_total").await >= 51.0);
}

/// A GET on a connection with a small receive buffer (no autotuning), so a client that stops
/// reading soon leaves caje's writes waiting. Returns the stream and the bytes read so far.
async fn stalling_client(caje: &Caje, path: &str) -> (TcpStream, usize) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 << 10).unwrap();
    let mut stream = socket.connect(caje.addr).await.unwrap();
    // The same Host as the other clients: the same cache entry.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", caje.addr);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 4096];
    let read = stream.read(&mut first).await.unwrap();
    assert!(read > 0);
    (stream, read)
}

/// Reads what is left; the byte count when the connection ends (EOF or reset).
async fn drain(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buffer = vec![0u8; 1 << 20];
    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
        total += n;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_and_a_vanished_one_neither_stop_the_fill_nor_leak() {
    let origin = origin().await;
    let (_dir, caje, baseline) = start_warm(&origin, "idle_timeout = \"2s\"").await;

    // One client reads the first bytes of a large body, then stops reading; another vanishes.
    let (mut stalled, read) = stalling_client(&caje, "/large/1").await;
    let mut vanished = open(&caje.url("/large/2")).await.into_body();
    assert!(vanished.frame().await.unwrap().is_ok());
    drop(vanished);

    assert_served(&caje, "/meanwhile").await;
    for path in ["/large/1", "/large/2"] {
        until_hit(&caje, path, &large()).await; // the fill completed
    }
    assert_eq!(origin.hits("/large/1"), 1);
    assert_eq!(origin.hits("/large/2"), 1);

    // caje gives up on the stalled reader after idle_timeout: its connection ends short of
    // the body (never presented as complete), and nothing is left open.
    eventually_async(
        "the stalled reader's connection to be closed",
        Duration::from_secs(15),
        || async {
            let metric = "caje_connections_closed_total{reason=\"stalled_reader\"}";
            caje.metric(metric).await >= 1.0
        },
    )
    .await;
    // Head and body would be more than LARGE bytes.
    assert!(
        read + drain(&mut stalled).await < LARGE,
        "the body ended short"
    );
    fds_back_to(&caje, baseline).await;
}
