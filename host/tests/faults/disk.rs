//! The cache directory on a small real tmpfs that fills up or goes read-only: clients are
//! still answered from the origin with the right bytes, the failure is counted and logged
//! once per interval, and caching resumes when the disk is usable again.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use caje::body::Body;
use caje_testkit::{TestOrigin, eventually, get};
use futures_util::StreamExt;
use http::Response;

use crate::support::{self, Caje, pattern, temp_files, until_hit};

const SMALL: usize = 8 << 10;
const BIG: usize = 1 << 20;
const STORE_FAILED: &str = "the cache store failed";

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (and a message saying why the test is skipped) when this machine cannot mount.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs on {} (needs root)",
                dir.display()
            );
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }

    /// Remounts read-only (`ro`) or read-write (`rw`); retried while a file is still open for
    /// writing (EBUSY).
    async fn remount(&self, mode: &str) {
        let options = format!("remount,{mode}");
        let dir = self.0.clone();
        eventually(&format!("remount {mode}"), Duration::from_secs(10), || {
            Command::new("mount")
                .args(["-o", &options])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success())
        })
        .await;
    }

    /// Fills the file system up with `filler`, then frees `leave` bytes of it again.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&filler)
            .unwrap();
        let block = vec![0u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(leave)).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `/s/<n>`: small with a Content-Length; `/big/<n>`: 1 MiB, chunked, streamed in pieces.
async fn origin() -> TestOrigin {
    TestOrigin::start(|request| async move {
        let path = request.uri().path().to_owned();
        let n: usize = path.rsplit('/').next().unwrap().parse().unwrap();
        let response = Response::builder().header("cache-control", "max-age=3600");
        if path.starts_with("/big/") {
            let body = Bytes::from(pattern(n, BIG));
            let chunks: Vec<Bytes> = (0..BIG)
                .step_by(64 << 10)
                .map(|at| body.slice(at..at + (64 << 10)))
                .collect();
            let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, std::io::Error>(chunk)
            });
            response.body(Body::stream(stream)).unwrap()
        } else {
            response.body(Body::full(pattern(n, SMALL))).unwrap()
        }
    })
    .await
}

/// caje with its cache on a fresh 4 MiB tmpfs, `/s/0` stored. Dropped in field order:
/// caje, then the mount, then the directory.
struct OnTmpfs {
    caje: Caje,
    tmpfs: Tmpfs,
    origin: TestOrigin,
    _dir: tempfile::TempDir,
}

/// `None` when tmpfs cannot be mounted here.
async fn on_tmpfs() -> Option<OnTmpfs> {
    let origin = origin().await;
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount(&dir.path().join("cache"), "4m")?;
    let caje = Caje::start(
        dir.path(),
        &support::config(&origin.url(), "127.0.0.1:0", ""),
    )
    .await;
    assert_eq!(fetch(&caje, "/s/0", SMALL).await, "MISS");
    until_hit(&caje, "/s/0", &pattern(0, SMALL)).await;
    Some(OnTmpfs {
        caje,
        tmpfs,
        origin,
        _dir: dir,
    })
}

/// GETs `path` and checks the bytes; returns the X-Cache verdict.
async fn fetch(caje: &Caje, path: &str, len: usize) -> String {
    let reply = get(&caje.url(path)).await;
    let n: usize = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    assert!(
        reply.body[..] == pattern(n, len)[..],
        "{path}: wrong body ({} bytes)",
        reply.body.len()
    );
    reply.x_cache().to_owned()
}

/// While the store fails, every page is a correct miss; the failures are counted, logged
/// once, and nothing half-written stays behind.
async fn assert_served_uncached(caje: &Caje, paths: std::ops::Range<usize>) {
    let failures_before = caje.metric("caje_cache_store_errors_total").await;
    for n in paths.clone() {
        for _ in 0..2 {
            assert_eq!(fetch(caje, &format!("/s/{n}"), SMALL).await, "MISS");
        }
    }
    let failures = caje.metric("caje_cache_store_errors_total").await - failures_before;
    assert!(
        failures >= 2.0 * paths.len() as f64,
        "every failed store is counted: {failures}"
    );
    let warnings = caje.log_lines(STORE_FAILED);
    assert!(
        !warnings.is_empty() && warnings.len() <= 2,
        "logged once per interval, not per request: {warnings:#?}"
    );
    assert!(warnings[0].contains("cache_dir"), "{}", warnings[0]);
    assert!(temp_files(&caje.cache_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_serves_from_the_origin_and_caching_resumes_when_space_is_freed() {
    let Some(OnTmpfs {
        caje,
        tmpfs,
        origin,
        _dir,
    }) = on_tmpfs().await
    else {
        return;
    };

    // Room for a quarter of the big body: the fill runs out of space mid-write, yet the
    // client's streamed body is whole, and nothing of it stays on disk.
    let filler = tmpfs.fill(256 << 10);
    assert_eq!(fetch(&caje, "/big/1", BIG).await, "MISS");
    assert!(caje.metric("caje_cache_store_errors_total").await >= 1.0);
    eventually(
        "the failed fill's temp file to go",
        Duration::from_secs(5),
        || temp_files(&caje.cache_dir()).is_empty(),
    )
    .await;
    assert_eq!(fetch(&caje, "/big/1", BIG).await, "MISS", "never stored");
    assert_eq!(origin.hits("/big/1"), 2);

    tmpfs.fill(0);
    assert_served_uncached(&caje, 1..11).await;
    assert_eq!(
        fetch(&caje, "/s/0", SMALL).await,
        "HIT",
        "stored pages still hit"
    );

    std::fs::remove_file(filler).unwrap();
    assert_eq!(fetch(&caje, "/s/1", SMALL).await, "MISS");
    until_hit(&caje, "/s/1", &pattern(1, SMALL)).await; // caching resumed
    assert_eq!(fetch(&caje, "/big/1", BIG).await, "MISS");
    until_hit(&caje, "/big/1", &pattern(1, BIG)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_cache_dir_serves_from_the_origin_and_recovers_when_writable() {
    let Some(OnTmpfs { caje, tmpfs, .. }) = on_tmpfs().await else {
        return;
    };

    tmpfs.remount("ro").await;
    assert_served_uncached(&caje, 1..11).await;
    assert_eq!(fetch(&caje, "/big/1", BIG).await, "MISS");
    assert_eq!(
        fetch(&caje, "/s/0", SMALL).await,
        "HIT",
        "stored pages still hit"
    );

    tmpfs.remount("rw").await;
    assert_eq!(fetch(&caje, "/s/1", SMALL).await, "MISS");
    until_hit(&caje, "/s/1", &pattern(1, SMALL)).await; // caching resumed
}
