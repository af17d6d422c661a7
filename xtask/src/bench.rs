//! `cargo xtask bench`: a release caje beside nginx proxy_cache and Varnish, measured by
//! `bench/bench.sh` (wrk, interleaved rounds, ratios against the first target, which is caje).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::run::{available, cmd};

const LISTEN: &str = "127.0.0.1:19004";
const STATE: &str = "/tmp/caje-bench/caje";

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    for tool in [
        "wrk", "nginx", "varnishd", "curl", "ss", "taskset", "setsid",
    ] {
        if !available(tool) {
            bail!(
                "the benchmark needs {tool}: apt-get install -y nginx varnish wrk curl python3 iproute2 util-linux"
            );
        }
    }
    cmd(root, "cargo", &["build", "--release", "-p", "caje"])?;
    let config = write_config()?;
    // setsid: its own scheduler autogroup, so caje does not share wrk's CPU share (see bench/README.md).
    let caje = Running(
        Command::new("setsid")
            .arg(root.join("target/release/caje"))
            .args(["serve", "--config"])
            .arg(&config)
            .spawn()
            .context("cannot start caje")?,
    );
    wait_for(LISTEN)?;
    let mut bench_args: Vec<String> = Vec::new();
    let targets_given = args.iter().any(|a| {
        !a.starts_with('-')
            && (a.contains('=') || ["nginx", "varnish", "static"].contains(&a.as_str()))
    });
    bench_args.extend(args.iter().cloned());
    if !targets_given {
        bench_args.extend([
            format!("caje=http://{LISTEN}"),
            "nginx".into(),
            "varnish".into(),
            "static".into(),
        ]);
    }
    let bench_args: Vec<&str> = bench_args.iter().map(String::as_str).collect();
    let result = cmd(root, "bench/bench.sh", &bench_args);
    drop(caje);
    result
}

fn write_config() -> anyhow::Result<std::path::PathBuf> {
    let dir = Path::new(STATE);
    let _ = std::fs::remove_dir_all(dir.join("cache"));
    std::fs::create_dir_all(dir.join("policies"))?;
    let config = dir.join("caje.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{LISTEN}\"\ncache_dir = \"cache\"\ndatabase = \"manifest.db\"\npolicies_dir = \"policies\"\n\
             default_origin = \"bench\"\n\n[origins.bench]\nurl = \"http://127.0.0.1:19000\"\n\n[log]\nlevel = \"warn\"\naccess = false\n"
        ),
    )?;
    Ok(config)
}

fn wait_for(addr: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("caje did not start listening on {addr} within 10 s")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
