//! A real two-node LiteFS cluster on loopback, for tests and benchmarks.
//!
//! ```no_run
//! use caje_testkit::litefs::Cluster;
//!
//! let Some(cluster) = Cluster::start() else { return }; // skipped loudly (fails under CI=true)
//! let on_primary = cluster.primary().db_path("x.db");
//! let on_replica = cluster.replica().db_path("x.db");
//! // dropping `cluster` stops both nodes and unmounts, also when the test panics
//! ```
//!
//! What `start` does: builds LiteFS once per machine (`go install` into `target/tools/`, under a
//! file lock shared by all test processes), installs Debian's `fuse3` when `fusermount3` is
//! missing, clears what a crashed earlier run left behind, and starts node A (the static primary)
//! and node B (a replica of A) under a temporary directory, waiting until B is connected to A.
//!
//! Node configs are derived from the `litefs.yml` that ships at the repository root: the file is
//! parsed and only what must differ for two nodes on one machine is overridden: `fuse.dir`,
//! `data.dir`, `http.addr` (a free loopback port each), the lease (`static` instead of Consul,
//! `candidate: true` on A and `false` on B, both naming A's hostname and advertise URL) and `exec`
//! (removed: the test process is the application). Every other key is used as shipped, so the file
//! that ships is the file LiteFS was tested with.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_norway::{Mapping, Value};

/// The LiteFS release tests run against (the one DESIGN.md and the Dockerfile name).
pub const LITEFS_VERSION: &str = "v0.5.14";
const LITEFS_PACKAGE: &str = "github.com/superfly/litefs/cmd/litefs";
/// Every cluster lives in `$TMPDIR/caje-litefs-<pid of the test process>-<random>`.
const RUN_PREFIX: &str = "caje-litefs-";
const PRIMARY_HOSTNAME: &str = "node-a";
const CLUSTER_READY: Duration = Duration::from_secs(60);
const NODE_STOP: Duration = Duration::from_secs(10);
const GO_INSTALL: Duration = Duration::from_secs(15 * 60);

/// Two LiteFS nodes: A is the primary, B its replica.
pub struct Cluster {
    primary: Node,
    replica: Node,
    binary: PathBuf,
    // Dropped after the nodes are stopped (Drop of Cluster runs first).
    root: tempfile::TempDir,
}

/// One LiteFS process and its directories.
pub struct Node {
    name: &'static str,
    fuse_dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    http_addr: String,
    child: Option<Child>,
}

impl Cluster {
    /// Starts a connected two-node cluster, or returns `None` after a loud message when FUSE or
    /// Go is unavailable here. Under `CI=true` unavailability is a failure instead.
    pub fn start() -> Option<Cluster> {
        let binary = match litefs_binary() {
            Ok(binary) => binary.clone(),
            Err(reason) => return unavailable(reason),
        };
        clean_stale_runs();
        let root = tempfile::Builder::new()
            .prefix(&format!("{RUN_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("create the cluster's temporary directory");
        let shipped = fs::read_to_string(shipped_config()).expect("read the shipped litefs.yml");
        let primary = Node::new(root.path(), "a");
        let replica = Node::new(root.path(), "b");
        primary.write_config(&shipped, &primary, true);
        replica.write_config(&shipped, &primary, false);
        let mut cluster = Cluster {
            primary,
            replica,
            binary,
            root,
        };
        cluster.primary.spawn(&cluster.binary);
        cluster.replica.spawn(&cluster.binary);
        cluster.wait_until_connected();
        Some(cluster)
    }

    /// Node A, the primary (static lease, `candidate: true`).
    pub fn primary(&self) -> &Node {
        &self.primary
    }

    /// Node B, a replica of A (`candidate: false`).
    pub fn replica(&self) -> &Node {
        &self.replica
    }

    /// Stops the primary (SIGTERM, as a deploy does) and waits until the replica noticed.
    pub fn stop_primary(&mut self) {
        self.primary.stop();
        let replica = &self.replica;
        wait_until(
            "the replica to notice the primary is gone",
            CLUSTER_READY,
            || replica.primary_hostname().is_none(),
        );
    }

    /// Starts the primary again on its old data and waits until the replica reconnected.
    pub fn start_primary(&mut self) {
        self.primary.spawn(&self.binary);
        self.wait_until_connected();
    }

    /// Waits until the replica's LiteFS process exits by itself, and returns how it ended.
    pub fn wait_for_replica_exit(&mut self) -> ExitStatus {
        let replica = &mut self.replica;
        let mut status = None;
        wait_until("the replica's LiteFS to exit", CLUSTER_READY, || {
            status = replica.exit_status();
            status.is_some()
        });
        status.expect("checked by wait_until")
    }

    fn wait_until_connected(&mut self) {
        let deadline = Instant::now() + CLUSTER_READY;
        while Instant::now() < deadline {
            let connected = self.replica.primary_hostname().as_deref() == Some(PRIMARY_HOSTNAME);
            if connected && self.primary.is_mounted() {
                return;
            }
            for node in [&mut self.primary, &mut self.replica] {
                if let Some(status) = node.exit_status() {
                    panic!(
                        "LiteFS node {} exited early ({status})\n{}",
                        node.name,
                        node.log_tail()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "LiteFS cluster in {} not connected within {CLUSTER_READY:?}\n{}\n{}",
            self.root.path().display(),
            self.primary.log_tail(),
            self.replica.log_tail()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.replica.stop();
        self.primary.stop();
    }
}

impl Node {
    fn new(root: &Path, name: &'static str) -> Node {
        let dir = root.join(name);
        let fuse_dir = dir.join("fuse");
        fs::create_dir_all(&fuse_dir).expect("create the node's FUSE directory");
        Node {
            name,
            fuse_dir,
            config_path: dir.join("litefs.yml"),
            log_path: dir.join("litefs.log"),
            http_addr: free_loopback_addr(),
            child: None,
        }
    }

    /// The node's FUSE mount, where SQLite opens databases.
    pub fn fuse_dir(&self) -> &Path {
        &self.fuse_dir
    }

    /// `name` on this node's mount.
    pub fn db_path(&self, name: &str) -> PathBuf {
        self.fuse_dir.join(name)
    }

    /// LiteFS's HTTP API of this node, `127.0.0.1:<port>`.
    pub fn http_addr(&self) -> &str {
        &self.http_addr
    }

    /// The LiteFS log of this node so far (last lines), for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- LiteFS node {} log ({}):\n{tail}",
            self.name,
            self.log_path.display()
        )
    }

    fn primary_hostname(&self) -> Option<String> {
        let text = fs::read_to_string(self.fuse_dir.join(".primary")).ok()?;
        Some(text.trim_end().to_owned())
    }

    fn write_config(&self, shipped: &str, primary: &Node, candidate: bool) {
        let mut doc: Value = serde_norway::from_str(shipped).expect("litefs.yml is YAML");
        let data_dir = self.fuse_dir.with_file_name("data");
        set(&mut doc, &["fuse", "dir"], path_value(&self.fuse_dir));
        set(&mut doc, &["data", "dir"], path_value(&data_dir));
        set(&mut doc, &["http", "addr"], self.http_addr.clone().into());
        let lease = section(&mut doc, "lease");
        lease.remove("consul");
        lease.insert("type".into(), "static".into());
        lease.insert("candidate".into(), candidate.into());
        lease.insert("hostname".into(), PRIMARY_HOSTNAME.into());
        let advertise = format!("http://{}", primary.http_addr);
        lease.insert("advertise-url".into(), advertise.into());
        doc.as_mapping_mut()
            .expect("litefs.yml is a mapping")
            .remove("exec");
        let text = serde_norway::to_string(&doc).expect("serialize the node's litefs.yml");
        fs::write(&self.config_path, text).expect("write the node's litefs.yml");
    }

    fn spawn(&mut self, binary: &Path) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the node's log");
        let child = Command::new(binary)
            .arg("mount")
            .arg("-config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start litefs");
        self.child = Some(child);
    }

    /// How the process ended, once it has (it is reaped then, so its pid is never signalled).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    fn is_mounted(&self) -> bool {
        mount_points().iter().any(|m| m == &self.fuse_dir)
    }

    /// SIGTERM (LiteFS unmounts on its way out), SIGKILL after a bound, then unmount whatever is
    /// left. Never panics: it runs in Drop, possibly while a test is unwinding.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            if !wait_for_exit(&mut child, NODE_STOP) {
                eprintln!("LiteFS node {} ignored SIGTERM; killing it", self.name);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if self.is_mounted() {
            unmount(&self.fuse_dir);
        }
    }
}

/// Polls `check` every 20 ms until it holds, panicking with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unavailable(reason: &str) -> Option<Cluster> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the LiteFS cluster cannot start here and CI=true: {reason}");
    }
    let bar = "!".repeat(78);
    eprintln!(
        "\n{bar}\nSKIPPING a LiteFS cluster test: {reason}\n(under CI=true this fails)\n{bar}\n"
    );
    None
}

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../litefs.yml")
}

/// The cached LiteFS binary, built on first use; the reason when it cannot be had.
fn litefs_binary() -> Result<&'static PathBuf, &'static str> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if !Path::new("/dev/fuse").exists() {
                return Err(
                    "/dev/fuse does not exist (no FUSE in this machine or container)".into(),
                );
            }
            ensure_fusermount()?;
            build_litefs()
        })
        .as_ref()
        .map_err(String::as_str)
}

fn ensure_fusermount() -> Result<(), String> {
    if on_path("fusermount3") {
        return Ok(());
    }
    eprintln!("fusermount3 is missing: installing Debian's fuse3 with apt-get");
    let install = || {
        run(
            Command::new("apt-get").args(["install", "-y", "fuse3"]),
            GO_INSTALL,
        )
    };
    if install().is_err() {
        run(Command::new("apt-get").arg("update"), GO_INSTALL)?;
        install()?;
    }
    if on_path("fusermount3") {
        Ok(())
    } else {
        Err("fusermount3 is still missing after `apt-get install fuse3`".into())
    }
}

/// `go install` LiteFS into `target/tools/litefs-<version>/`, once per machine: a file lock
/// serializes test processes, and the build lands in a staging directory renamed into place, so
/// a crashed build is never mistaken for a finished one.
fn build_litefs() -> Result<PathBuf, String> {
    let tools = tools_dir();
    let dir = tools.join(format!("litefs-{LITEFS_VERSION}"));
    let binary = dir.join("litefs");
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(&tools).map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
    let lock = File::create(tools.join("litefs.lock")).map_err(|e| e.to_string())?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("cannot lock {}: {e}", tools.display()))?;
    if binary.is_file() {
        return Ok(binary);
    }
    if !on_path("go") {
        return Err(format!(
            "Go is not installed, and LiteFS {LITEFS_VERSION} is built from source with it"
        ));
    }
    let staging = tools.join(format!("litefs-{LITEFS_VERSION}.partial"));
    let _ = fs::remove_dir_all(&staging);
    eprintln!(
        "building LiteFS {LITEFS_VERSION} into {} (once)",
        dir.display()
    );
    run(
        Command::new("go")
            .args(["install", &format!("{LITEFS_PACKAGE}@{LITEFS_VERSION}")])
            .env("GOBIN", &staging),
        GO_INSTALL,
    )?;
    fs::rename(&staging, &dir).map_err(|e| format!("cannot move the LiteFS build: {e}"))?;
    Ok(binary)
}

/// `target/tools`: test and bench executables run from `<target>/<profile>/deps/`, and cargo
/// marks `<target>` with a `CACHEDIR.TAG`. Outside a target directory, a directory in `$TMPDIR`.
fn tools_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(|target| target.join("tools"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("caje-tools"))
}

/// Runs `command` to completion within `timeout`; its output is kept for the error.
fn run(command: &mut Command, timeout: Duration) -> Result<(), String> {
    let output = tempfile::tempfile().map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| e.to_string())?)
        .stderr(output.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !wait_for_exit(&mut child, timeout) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{command:?} did not finish within {timeout:?}"));
    }
    match child.wait() {
        Ok(status) if status.success() => Ok(()),
        status => {
            let mut text = String::new();
            let mut output = output;
            let _ = output.seek(SeekFrom::Start(0));
            let _ = output.read_to_string(&mut text);
            Err(format!("{command:?} failed ({status:?}):\n{text}"))
        }
    }
}

fn wait_for_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Stops what crashed test processes left: LiteFS processes and mounts under a run directory
/// whose owner (the pid in its name) is gone. Runs of live processes are left alone.
fn clean_stale_runs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()) {
        let owner = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(RUN_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        let Some(owner) = owner else { continue };
        if process_alive(owner) {
            continue;
        }
        eprintln!("cleaning up a crashed LiteFS test run in {}", dir.display());
        for pid in litefs_processes_under(&dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for mount in mount_points().iter().filter(|m| m.starts_with(&dir)) {
            unmount(mount);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

fn litefs_processes_under(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: i32 = p.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(p.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            let mut args = cmdline.split('\0');
            let is_litefs = args.next()?.ends_with("litefs");
            (is_litefs && args.any(|a| a.starts_with(&needle))).then_some(pid)
        })
        .collect()
}

fn unmount(mount: &Path) {
    let quiet = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(Command::new("fusermount3").arg("-u").arg(mount)) {
        quiet(Command::new("umount").arg("-l").arg(mount));
    }
}

/// Mount points of this mount namespace (our temporary paths need no unescaping).
pub fn mount_points() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

fn process_alive(pid: i32) -> bool {
    !matches!(
        kill(Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn free_loopback_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").to_string()
}

fn path_value(path: &Path) -> Value {
    path.to_str().expect("temporary paths are UTF-8").into()
}

fn section<'a>(doc: &'a mut Value, key: &str) -> &'a mut Mapping {
    let root = doc.as_mapping_mut().expect("litefs.yml is a mapping");
    let entry = root
        .entry(key.into())
        .or_insert_with(|| Mapping::new().into());
    entry
        .as_mapping_mut()
        .unwrap_or_else(|| panic!("`{key}` in litefs.yml is not a mapping"))
}

fn set(doc: &mut Value, path: &[&str; 2], value: Value) {
    section(doc, path[0]).insert(path[1].into(), value);
}
