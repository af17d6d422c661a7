//! The real `caje` binary in a child process: what an operator runs, so it can be killed with
//! SIGKILL, its log read and its file descriptors counted. The config must log in JSON (the
//! address is read from the "caje is serving" line). Killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{eventually, get};

pub struct CajeProcess {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl CajeProcess {
    /// Runs `binary serve --config <config>` with `env` added (and `RUST_LOG` removed);
    /// returns once it serves.
    pub async fn spawn(binary: &str, config: &Path, env: &[(&str, &str)]) -> CajeProcess {
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start caje");
        let log = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let collected = log.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = collected.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let serving = || {
            log.lock()
                .expect("log")
                .lines()
                .find(|l| l.contains("caje is serving"))
                .map(str::to_owned)
        };
        eventually("caje to start serving", Duration::from_secs(30), || {
            serving().is_some()
        })
        .await;
        let serving: serde_json::Value =
            serde_json::from_str(&serving().expect("serving line")).expect("JSON log line");
        let addr = serving["fields"]["listen"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("the listen address in the log");
        CajeProcess {
            child,
            addr,
            log,
            reader: Some(reader),
        }
    }

    /// `http://<addr><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flushing, files as they were. The log is complete afterwards.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Everything caje logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Log lines containing `text`.
    pub fn log_lines(&self, text: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }

    /// The sum of a metric's samples in `/_caje/metrics` (all label sets, or the one written
    /// out in `name`); 0 when absent. Needs admin access from loopback (no token configured).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = get(&self.url("/_caje/metrics")).await.text();
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `/_caje/health` (admin access as for [`metric`](Self::metric)).
    pub async fn health(&self) -> serde_json::Value {
        serde_json::from_slice(&get(&self.url("/_caje/health")).await.body).expect("health JSON")
    }

    /// File descriptors the process holds open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }
}

/// Sets this process's soft limit of open files to `soft` (at most the hard limit), before a
/// test opens thousands of connections; children spawned afterwards inherit it. Returns the
/// limits now in force (soft, hard).
pub fn set_fd_limit(soft: u64) -> (u64, u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let soft = soft.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("setrlimit");
    (soft, hard)
}

impl Drop for CajeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
