//! `cargo xtask bench`: a release caje beside nginx proxy_cache and Varnish, measured by
//! `bench/bench.sh` (wrk, interleaved rounds, ratios against the first target, which is caje).
//!
//! `--variant NAME=TOML` (repeatable) starts one more caje whose config is the default one plus
//! `TOML` (write newlines as `\n`), and measures it beside the default caje in the same run:
//! `--variant nomanifest='[manifest]\nenabled = false'` gives the manifest's cost as a ratio.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::run::{available, cmd};

const PORT: u16 = 19004;
/// bench.sh leaves 19004..19009 to the targets it does not start itself.
const MAX_VARIANTS: usize = 5;
const STATE: &str = "/tmp/caje-bench";

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
    let (variants, mut bench_args) = split_variants(args)?;
    cmd(root, "cargo", &["build", "--release", "-p", "caje"])?;
    let binary = root.join("target/release/caje");
    let mut running = Vec::new();
    let mut targets = Vec::new();
    let default = Variant {
        name: "caje".into(),
        snippet: String::new(),
    };
    for (i, Variant { name, snippet }) in [default].into_iter().chain(variants).enumerate() {
        let listen = format!("127.0.0.1:{}", PORT + i as u16);
        let config = write_config(&name, &listen, &snippet)?;
        // setsid: its own scheduler autogroup, so caje does not share wrk's CPU share (see bench/README.md).
        running.push(Running(
            Command::new("setsid")
                .arg(&binary)
                .args(["serve", "--config"])
                .arg(&config)
                .spawn()
                .with_context(|| format!("cannot start caje ({name})"))?,
        ));
        wait_for(&listen)?;
        targets.push(format!("{name}=http://{listen}"));
    }
    let targets_given = bench_args.iter().any(|a| {
        !a.starts_with('-')
            && (a.contains('=') || ["nginx", "varnish", "static"].contains(&a.as_str()))
    });
    if !targets_given {
        let compare_peers = targets.len() == 1;
        bench_args.extend(targets);
        if compare_peers {
            bench_args.extend(["nginx".into(), "varnish".into(), "static".into()]);
        }
    }
    let bench_args: Vec<&str> = bench_args.iter().map(String::as_str).collect();
    let result = cmd(root, "bench/bench.sh", &bench_args);
    drop(running);
    result
}

/// One caje to measure: its target name and what is appended to its config.
struct Variant {
    name: String,
    snippet: String,
}

/// Takes the `--variant NAME=TOML` options out of the arguments for bench.sh.
fn split_variants(args: &[String]) -> anyhow::Result<(Vec<Variant>, Vec<String>)> {
    let mut variants = Vec::new();
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg != "--variant" {
            rest.push(arg.clone());
            continue;
        }
        let Some((name, snippet)) = args.next().and_then(|v| v.split_once('=')) else {
            bail!(
                "--variant takes NAME=TOML, e.g. --variant 'nomanifest=[manifest]\\nenabled = false'"
            );
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!("variant name {name:?}: use letters, digits and '-'");
        }
        variants.push(Variant {
            name: name.to_owned(),
            snippet: snippet.replace("\\n", "\n"),
        });
    }
    if variants.len() > MAX_VARIANTS {
        bail!("at most {MAX_VARIANTS} variants (ports 19005..19009)");
    }
    Ok((variants, rest))
}

/// A fresh state directory (empty cache, empty manifest) and config for one caje.
fn write_config(name: &str, listen: &str, snippet: &str) -> anyhow::Result<PathBuf> {
    let dir = Path::new(STATE).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies"))?;
    let config = dir.join("caje.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{listen}\"\ncache_dir = \"cache\"\ndatabase = \"manifest.db\"\npolicies_dir = \"policies\"\n\
             default_origin = \"bench\"\n\n[origins.bench]\nurl = \"http://127.0.0.1:19000\"\n\n[log]\nlevel = \"warn\"\naccess = false\n\n{snippet}\n"
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
