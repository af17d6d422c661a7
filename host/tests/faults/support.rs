//! caje as a child process on a config of the faults tests, body patterns, and raw loopback
//! clients for byte-exact faults.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

use caje_testkit::{CajeProcess, eventually_async, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running `caje serve` on a config in `dir` (see [`config`]); killed when dropped.
pub struct Caje {
    process: CajeProcess,
    pub dir: PathBuf,
}

/// A config in `dir`: cache in `dir/cache`, manifest `dir/manifest.db`, JSON logs. `listen`
/// is `127.0.0.1:0` for a fresh port; `extra` is appended (tables such as `[server]`).
pub fn config(origin_url: &str, listen: &str, extra: &str) -> String {
    format!(
        "listen = \"{listen}\"\ncache_dir = \"cache\"\ndatabase = \"manifest.db\"\n\
         policies_dir = \"policies\"\ndefault_origin = \"origin\"\n\n[origins.origin]\n\
         url = \"{origin_url}\"\nread_timeout = \"5s\"\n\n[log]\nformat = \"json\"\n\
         level = \"caje=info\"\naccess = false\n\n{extra}\n"
    )
}

impl Caje {
    /// Writes `config_text` to `dir/caje.toml` and starts caje on it; returns once it serves.
    pub async fn start(dir: &Path, config_text: &str) -> Caje {
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        let path = dir.join("caje.toml");
        std::fs::write(&path, config_text).unwrap();
        Caje {
            process: CajeProcess::spawn(env!("CARGO_BIN_EXE_caje"), &path, &[]).await,
            dir: dir.to_owned(),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.join("cache")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("manifest.db")
    }
}

impl Deref for Caje {
    type Target = CajeProcess;

    fn deref(&self) -> &CajeProcess {
        &self.process
    }
}

impl DerefMut for Caje {
    fn deref_mut(&mut self) -> &mut CajeProcess {
        &mut self.process
    }
}

/// GETs `path` until it is a HIT (a request that follows a fill still being committed is
/// answered from that fill, as a MISS); every answer must be 200 with `body`.
pub async fn until_hit(caje: &Caje, path: &str, body: &[u8]) {
    eventually_async(
        &format!("{path} to be a HIT"),
        Duration::from_secs(15),
        || async {
            let reply = get(&caje.url(path)).await;
            assert_eq!(reply.status, 200, "{path}");
            assert!(reply.body[..] == body[..], "{path}: wrong body");
            reply.x_cache() == "HIT"
        },
    )
    .await;
}

/// Temp files (fills in progress or left by a crash) anywhere under `dir`.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for item in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = item.path();
            if path.is_dir() {
                pending.push(path);
            } else if item.file_name().to_string_lossy().starts_with(".tmp.") {
                found.push(path);
            }
        }
    }
    found
}

/// Deterministic bytes of object `n`, `len` long: every object's body is distinct.
pub fn pattern(n: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + n * 7 + i / 251) % 253) as u8)
        .collect()
}

/// One GET on an open HTTP/1.1 connection; returns the status line and the body (read by
/// Content-Length). `None` when the connection was closed or refused instead.
pub async fn raw_get(stream: &mut TcpStream, path: &str) -> Option<(String, Vec<u8>)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: faults.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    read_response(stream).await
}

/// Reads one response (head, then a Content-Length body) from `stream`.
pub async fn read_response(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let mut buffer = [0u8; 65536];
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
        }
    }
    let status = head.lines().next().unwrap_or("").to_owned();
    Some((status, body))
}

/// Whether the peer closed `stream` (EOF or reset) within `limit`; bytes it sends are skipped.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
