//! `cargo xtask <task>`: how a newcomer builds, tests, benchmarks and demos caje.
//! Plain std + anyhow; each task lives in its own module.

mod bench;
mod demo;
mod prerequisites;
mod run;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  demo            build caje and run it on caje.toml in front of the bundled demo origin
  test            install what a fresh machine lacks, then run every check and test (what CI runs)
  bench [ARGS]    release build + wrk against caje, nginx proxy_cache and Varnish (bench/bench.sh ARGS);
                  --variant NAME=TOML adds a caje with TOML appended to its config, measured alongside
  modgraph [SRC]  print host/src's (or SRC's) module graph as layers; fails when its top-level
                  modules form a cycle
  policies        build the policies/ workspace to wasm components and list them
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "demo" => demo::run(&root()),
        "test" => test::run(&root()),
        "bench" => bench::run(&root(), &rest),
        "modgraph" => match rest.first() {
            Some(source) => xtask::modgraph::check(std::path::Path::new(source)),
            None => xtask::modgraph::run(&root()),
        },
        "policies" => xtask::policies::build_policies(&root()).map(|components| {
            for component in components {
                println!("{}", component.display());
            }
        }),
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("unknown task {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {task}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask's manifest sits one level below it).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}
