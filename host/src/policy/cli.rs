//! `caje policy check|test`: lets policy authors validate a module, see its decisions and run
//! cases files against it (or against a whole policies directory) without running a proxy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, request, response};

use super::bindings::WIT_PACKAGE;
use super::config::PolicyConfig;
use super::decision::{CacheVerdict, RequestAction, RequestDecision, SyntheticResponse};
use super::edits::HeaderEdit;
use super::failure::Failure;
use super::module::{Module, Outcome};
use super::offline::{load_module, parse_request};
use super::view::{
    CacheOutcome, ClientResponseView, ErrorView, OriginFailure, RequestView, ResponseView,
};
use crate::cache::{self, CacheConfig, NotStored};

pub use super::cases::{Environment, Router};

/// Tools for policy authors.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check that a module is a caje policy this caje can run, and show what it exports.
    Check {
        /// The policy module (a .wasm component).
        file: PathBuf,
    },
    /// Run a module's hooks on a made-up request and print its decisions (--request), or run a
    /// cases file through a module or a policies directory (--cases).
    Test {
        /// The policy module (a .wasm component); with --cases, also a policies directory,
        /// whose modules run in file-name order as `caje serve` runs them.
        file: PathBuf,
        #[arg(
            long,
            value_name = "METHOD URL",
            required_unless_present = "cases",
            conflicts_with = "cases",
            help = "The request, e.g. 'GET https://example.com/api/users?id=1'"
        )]
        request: Option<String>,
        /// A cases file (TOML): requests, origin answers and the expected outcomes; prints a
        /// pass/fail table and exits with 1 if a case fails.
        #[arg(long, value_name = "FILE")]
        cases: Option<PathBuf>,
        /// With --cases: a caje config whose origins and [policies] settings to use.
        #[arg(long, value_name = "FILE", requires = "cases")]
        config: Option<PathBuf>,
        /// A request header (repeatable).
        #[arg(long = "header", value_name = "NAME: VALUE", conflicts_with = "cases")]
        headers: Vec<String>,
        /// A configured origin name (repeatable); the first is the default origin.
        #[arg(long = "origin", value_name = "NAME", default_value = "default")]
        origins: Vec<String>,
        /// The status of the origin response shown to on-response.
        #[arg(long, value_name = "CODE", default_value_t = 200)]
        response_status: u16,
        /// A header of the origin response (repeatable).
        #[arg(long = "response-header", value_name = "NAME: VALUE")]
        response_headers: Vec<String>,
    },
}

/// Runs a `caje policy` command; a refused module, a failed hook or a failed case exits with 1.
/// `node_config` reads the environment of `--config`'s node config file (the caller owns the
/// config: `caje::app::policy_command`).
pub fn run(
    command: PolicyCommand,
    node_config: impl FnOnce(&Path) -> anyhow::Result<Environment>,
) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Test {
            file,
            cases: Some(cases),
            config,
            ..
        } => {
            let environment = config.as_deref().map(node_config).transpose()?;
            super::cases::run(&file, &cases, environment)
        }
        PolicyCommand::Test {
            file,
            request,
            headers,
            origins,
            response_status,
            response_headers,
            ..
        } => {
            let request = request.context("give --request or --cases")?;
            let request = parse_request(&request, parse_headers("--header", &headers)?)?;
            let status = StatusCode::from_u16(response_status).with_context(|| {
                format!("invalid --response-status {response_status}: use 100..=999")
            })?;
            let mut response = http::Response::new(()).into_parts().0;
            response.status = status;
            response.headers = parse_headers("--response-header", &response_headers)?;
            test(&file, origins, &request, &response)
        }
    }
}

/// Loads `file` for `check` and `test`: default limits, and no memo, since they show what each
/// call decides.
fn load(file: &Path, origins: Vec<String>) -> anyhow::Result<Result<Module, String>> {
    let config = PolicyConfig {
        memoize: false,
        ..PolicyConfig::default()
    };
    load_module(file, &config, origins)
}

fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let module = match load(file, vec!["default".to_owned()])? {
        Ok(module) => module,
        Err(reason) => {
            eprintln!("error: {reason}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let export = module.world.hooks_export();
    let hooks = module.hooks.names();
    println!("ok: {} is a caje policy ({export})", module.name);
    println!("  sha256:     {}", module.digest);
    println!("  world:      {WIT_PACKAGE}@{}", module.world.version());
    println!(
        "  hooks:      {}",
        list(hooks.iter().map(|hook| (*hook).to_owned()))
    );
    for (index, import) in module.imports.iter().enumerate() {
        let label = if index == 0 { "imports:" } else { "" };
        let note = if import.starts_with("caje:policy/") {
            ""
        } else {
            " (traps if called: policies get no WASI)"
        };
        println!("  {label:<11} {import}{note}");
    }
    println!(
        "  smoke call: passed ({} for GET https://caje.invalid/)",
        if hooks.is_empty() {
            "no hook implemented".to_owned()
        } else {
            hooks.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn test(
    file: &Path,
    origins: Vec<String>,
    request: &request::Parts,
    response: &response::Parts,
) -> anyhow::Result<ExitCode> {
    if file.is_dir() {
        bail!(
            "{} is a directory: run a policies directory's chain with --cases",
            file.display()
        );
    }
    let default_origin = origins[0].clone();
    let module = match load(file, origins)? {
        Ok(module) => module,
        Err(reason) => {
            eprintln!("error: {reason}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("module:   {} (sha256:{})", module.name, module.digest);
    println!("request:  {} {}", request.method, request.uri);
    // As in the proxy, the rest of the request's life sees the request as on-request left it.
    let mut request = request.clone();
    let mut origin = default_origin;
    let hooks = module.hooks;
    let mut ok = true;
    ok &= !hooks.on_request || try_on_request(&module, &mut request, &mut origin);
    ok &= !hooks.on_response || try_on_response(&module, &request, response, &origin);
    ok &= !hooks.on_deliver || try_on_deliver(&module, &request, response, &origin);
    ok &= !hooks.on_error || try_on_error(&module, &request, &origin);
    let unimplemented: Vec<&str> = ["on-request", "on-response", "on-deliver", "on-error"]
        .into_iter()
        .filter(|hook| !hooks.names().contains(hook))
        .collect();
    if !unimplemented.is_empty() {
        println!(
            "not implemented (caje never calls them): {}",
            unimplemented.join(", ")
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints on-request's decision and applies it to `request`; whether the call succeeded.
fn try_on_request(module: &Module, request: &mut request::Parts, origin: &mut String) -> bool {
    let given = RequestDecision::default_for(&request.method, origin.clone());
    println!(
        "on-request (given origin {}, {})",
        given.origin,
        action_name(&given.action)
    );
    let requested = module
        .on_request(&view(request), &given)
        .map(|(outcome, _)| outcome);
    print_outcome(requested.as_ref(), describe_decision);
    let Ok(outcome) = requested else {
        return false;
    };
    outcome.value.apply_to(request);
    origin.clone_from(&outcome.value.origin);
    true
}

fn try_on_response(
    module: &Module,
    request: &request::Parts,
    response: &response::Parts,
    origin: &str,
) -> bool {
    let (given, not_stored) = host_verdict(request, response);
    let head = ResponseView {
        status: response.status,
        headers: &response.headers,
        origin,
    };
    println!(
        "on-response (status {}; given store {}{}, ttl {})",
        response.status.as_u16(),
        yes_no(given.store),
        not_stored.map_or(String::new(), |why| format!(" ({})", why.describe())),
        humantime::format_duration(whole_millis(given.ttl))
    );
    let verdict = module.on_response(&view(request), &head, &given);
    print_outcome(verdict.as_ref(), describe_verdict);
    verdict.is_ok()
}

fn try_on_deliver(
    module: &Module,
    request: &request::Parts,
    response: &response::Parts,
    origin: &str,
) -> bool {
    let delivered = ClientResponseView {
        status: response.status,
        outcome: CacheOutcome::Miss,
        origin: Some(origin),
        headers: &response.headers,
    };
    println!("on-deliver (status {}, miss)", response.status.as_u16());
    let edits = module.on_deliver(&view(request), &delivered);
    print_outcome(edits.as_ref(), |edits| {
        vec![("header-edits", describe_edits(edits))]
    });
    edits.is_ok()
}

fn try_on_error(module: &Module, request: &request::Parts, origin: &str) -> bool {
    let error = ErrorView {
        origin,
        failure: OriginFailure::Unreachable,
    };
    println!("on-error (origin {origin} unreachable)");
    let answer = module.on_error(&view(request), &error, None);
    print_outcome(answer.as_ref(), describe_error_answer);
    answer.is_ok()
}

fn view(request: &request::Parts) -> RequestView<'_> {
    RequestView::from_uri(&request.method, &request.uri, &request.headers)
}

/// A label and a value of a decision, as printed.
type Row = (&'static str, String);

fn print_outcome<T>(result: Result<&Outcome<T>, &Failure>, describe: impl Fn(&T) -> Vec<Row>) {
    match result {
        Ok(outcome) => {
            for (label, value) in describe(&outcome.value) {
                println!("  {:<24}{value}", format!("{label}:"));
            }
            println!("  {:<24}{}", "fuel used:", outcome.fuel_used);
        }
        Err(failure) => println!("  error: the module {failure}"),
    }
}

fn whole_millis(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn synthetic(response: &SyntheticResponse) -> String {
    format!(
        "respond {} ({} headers, {} body bytes)",
        response.status,
        response.headers.len(),
        response.body.len()
    )
}

fn action_name(action: &RequestAction) -> String {
    match action {
        RequestAction::Lookup => "lookup".to_owned(),
        RequestAction::Pass => "pass".to_owned(),
        RequestAction::Respond(response) => synthetic(response),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

fn describe_edits(edits: &[HeaderEdit]) -> String {
    list(edits.iter().map(|edit| match edit {
        HeaderEdit::Set(name, value) => {
            format!("set {name}: {}", String::from_utf8_lossy(value.as_bytes()))
        }
        HeaderEdit::Append(name, value) => format!(
            "append {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        ),
        HeaderEdit::Remove(name) => format!("remove {name}"),
    }))
}

fn describe_decision(decision: &RequestDecision) -> Vec<Row> {
    let url = decision
        .url
        .as_ref()
        .map_or("(unchanged)".to_owned(), ToString::to_string);
    vec![
        ("origin", decision.origin.clone()),
        ("action", action_name(&decision.action)),
        ("cache-key", list(decision.cache_key.iter().cloned())),
        (
            "origin-header-edits",
            describe_edits(&decision.origin_header_edits),
        ),
        ("url", url),
    ]
}

fn describe_verdict(verdict: &CacheVerdict) -> Vec<Row> {
    let duration = |d: Duration| humantime::format_duration(whole_millis(d)).to_string();
    vec![
        ("store", yes_no(verdict.store).to_owned()),
        ("ttl", duration(verdict.ttl)),
        (
            "stale-while-revalidate",
            duration(verdict.stale_while_revalidate),
        ),
        ("stale-if-error", duration(verdict.stale_if_error)),
        ("tags", list(verdict.tags.iter().cloned())),
        (
            "keep-set-cookie",
            yes_no(verdict.keep_set_cookie).to_owned(),
        ),
        (
            "stored-header-edits",
            describe_edits(&verdict.stored_header_edits),
        ),
    ]
}

fn describe_error_answer(answer: &Option<SyntheticResponse>) -> Vec<Row> {
    let answer = answer
        .as_ref()
        .map_or("(caje's own 502)".to_owned(), synthetic);
    vec![("response", answer)]
}

/// What the proxy would pass to the first module (caje's HTTP caching rules, with the default
/// `[cache] max_object_size`), and why it would not store the response.
fn host_verdict(
    request: &request::Parts,
    response: &response::Parts,
) -> (CacheVerdict, Option<NotStored>) {
    let max_object_size = CacheConfig::default().max_object_size.0;
    let assessment = cache::assess(request, response, SystemTime::now(), max_object_size);
    let store = assessment.storable.is_ok();
    (
        CacheVerdict::default_for(&assessment.windows, store),
        assessment.storable.err(),
    )
}

fn parse_headers(flag: &str, fields: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for field in fields {
        let parsed = field.split_once(':').and_then(|(name, value)| {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            Some((name, HeaderValue::from_str(value.trim()).ok()?))
        });
        let Some((name, value)) = parsed else {
            bail!("invalid {flag} {field:?}: write it as 'name: value'");
        };
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_headers_are_parsed() {
        let headers = parse_headers("--header", &["X-A: 1".to_owned(), "x-a: 2".to_owned()]);
        let request =
            parse_request("POST https://example.com:8443/a?b=1", headers.unwrap()).unwrap();
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(request.uri.path(), "/a");
        assert_eq!(request.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(request.headers["host"], "example.com:8443");
        let relative = parse_request("GET /a", HeaderMap::new())
            .unwrap_err()
            .to_string();
        assert!(relative.contains("must be absolute"), "{relative}");
        let bare = parse_request("https://example.com/", HeaderMap::new())
            .unwrap_err()
            .to_string();
        assert!(bare.contains("'METHOD URL'"), "{bare}");
        let header = parse_headers("--header", &["no colon".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(header.contains("'name: value'"), "{header}");
    }

    fn response(cache_control: &str) -> response::Parts {
        let mut response = http::Response::new(()).into_parts().0;
        let field = format!("cache-control: {cache_control}");
        response.headers = parse_headers("--response-header", &[field]).unwrap();
        response
    }

    #[test]
    fn host_defaults_are_the_proxys() {
        let request = parse_request("GET https://example.com/", HeaderMap::new()).unwrap();
        let directives = "max-age=60, stale-while-revalidate=30, stale-if-error=\"600\"";
        let (verdict, not_stored) = host_verdict(&request, &response(directives));
        assert!(verdict.store && not_stored.is_none());
        assert_eq!(verdict.ttl, Duration::from_secs(60));
        assert_eq!(verdict.stale_while_revalidate, Duration::from_secs(30));
        assert_eq!(verdict.stale_if_error, Duration::from_secs(600));
        let (no_store, why) = host_verdict(&request, &response("no-store"));
        assert!(!no_store.store);
        assert_eq!(why, Some(NotStored::NoStore));
        // caje's shared-cache rules, beyond RFC 9111: a Cookie request's answer is not shared,
        // and must-revalidate leaves no stale windows.
        let cookie = parse_headers("--header", &["cookie: a=b".to_owned()]).unwrap();
        let cookie = parse_request("GET https://example.com/", cookie).unwrap();
        let (verdict, why) = host_verdict(&cookie, &response("max-age=60"));
        assert!(!verdict.store);
        assert_eq!(why, Some(NotStored::Cookie));
        let strict = "max-age=60, must-revalidate, stale-if-error=600";
        let (verdict, _) = host_verdict(&request, &response(strict));
        assert_eq!(verdict.stale_if_error, Duration::ZERO);
    }
}
