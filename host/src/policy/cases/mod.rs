//! `caje policy test --cases`: policy tests as data. Runs every case of a cases file through one
//! module, or through a policies directory in chain order as `caje serve` loads it (with a
//! config's `[policies]` settings and origins), and prints a pass/fail table with what differed.

mod compare;
mod file;
mod simulate;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::chain::Chain;
use super::config::PolicyConfig;
use super::failure::Counts;
use super::loader::Loader;
use super::module::Module;
use crate::cache::CacheConfig;
use compare::Mismatch;
use simulate::Setting;

pub use simulate::Router;

/// The origins and settings the cases run under: a node config's (`--config`, read by the
/// caller), or the cases file's origins with caje's defaults.
pub struct Environment {
    pub policies: PolicyConfig,
    /// The configured origin names.
    pub origins: Vec<String>,
    /// The origin that serves a request's Host, as the proxy routes it.
    pub route: Box<Router>,
    pub max_object_size: u64,
}

impl Environment {
    /// The cases file's origins (the first is the default, and serves every host) under
    /// caje's default settings.
    fn defaults(origins: Option<Vec<String>>) -> anyhow::Result<Environment> {
        let origins = origins.unwrap_or_else(|| vec!["default".to_owned()]);
        anyhow::ensure!(
            !origins.is_empty(),
            "the cases file's `origins` is empty: list at least one origin name (the first is the default)"
        );
        let default = origins[0].clone();
        Ok(Environment {
            policies: PolicyConfig::default(),
            origins,
            route: Box::new(move |_| Some(default.clone())),
            max_object_size: CacheConfig::default().max_object_size.0,
        })
    }
}

/// Runs the cases at `cases` through `target` (a module file or a policies directory), under
/// `environment` or the cases file's defaults; exits with 1 when a case fails or a module is
/// refused.
pub(crate) fn run(
    target: &Path,
    cases: &Path,
    environment: Option<Environment>,
) -> anyhow::Result<ExitCode> {
    let cases = file::load(cases)?;
    let environment = match environment {
        Some(environment) => environment,
        None => Environment::defaults(cases.origins.clone())?,
    };
    let chain = match load_chain(target, &environment)? {
        Ok(chain) => chain,
        Err(refusals) => {
            for refusal in refusals {
                eprintln!("error: {refusal}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let names: Vec<&str> = chain.module_names().collect();
    println!(
        "{} cases through {}",
        cases.cases.len(),
        if names.is_empty() {
            "no modules".to_owned()
        } else {
            names.join(", ")
        }
    );
    let setting = Setting {
        route: &environment.route,
        max_object_size: environment.max_object_size,
    };
    let mut failed = 0;
    for case in &cases.cases {
        let before = failure_counts(&chain);
        let observed = simulate::run(&chain, &setting, case);
        let failures = new_failures(&chain, &before);
        let mismatches = compare::compare(&case.expect, &observed, &failures);
        if mismatches.is_empty() {
            println!("ok    {}", case.name);
        } else {
            failed += 1;
            println!("FAIL  {}", case.name);
            print_mismatches(&mismatches);
        }
    }
    let passed = cases.cases.len() - failed;
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_mismatches(mismatches: &[Mismatch]) {
    for mismatch in mismatches {
        println!("        {}", mismatch.key);
        println!("          expected: {}", mismatch.expected);
        println!("          got:      {}", mismatch.got);
    }
}

/// The chain of a policies directory (as `caje serve` loads it) or of one module file; or why
/// modules were refused.
fn load_chain(
    target: &Path,
    environment: &Environment,
) -> anyhow::Result<Result<Arc<Chain>, Vec<String>>> {
    let config = &environment.policies;
    if target.is_dir() {
        let mut loader = Loader::new(target, config, environment.origins.clone())?;
        loader.scan_until_settled();
        let snapshot = loader.snapshot();
        let refusals: Vec<String> = snapshot
            .status(config)
            .into_iter()
            .filter_map(|status| status.error)
            .collect();
        return Ok(if refusals.is_empty() {
            Ok(snapshot.chain)
        } else {
            Err(refusals)
        });
    }
    let module = super::offline::load_module(target, config, environment.origins.clone())
        .with_context(|| format!("cannot load {}", target.display()))?;
    Ok(module
        .map(|module| {
            let memo = if config.memoize {
                config.memo_entries
            } else {
                0
            };
            Arc::new(Chain::new(vec![Arc::new(module)], memo))
        })
        .map_err(|refusal| vec![refusal]))
}

fn failure_counts(chain: &Chain) -> Vec<u64> {
    chain
        .modules()
        .iter()
        .map(|module| failures_in(module.stats.counts()))
        .collect()
}

fn failures_in(counts: Counts) -> u64 {
    counts.traps + counts.timeouts + counts.invalid_decisions
}

/// The modules that failed since `before`, with their latest failure.
fn new_failures(chain: &Chain, before: &[u64]) -> Vec<(String, String)> {
    chain
        .modules()
        .iter()
        .zip(before)
        .filter(|(module, before)| failures_in(module.stats.counts()) > **before)
        .map(|(module, _): (&Arc<Module>, _)| {
            let failure = module.stats.last_failure().unwrap_or_default();
            (module.name.clone(), failure)
        })
        .collect()
}
