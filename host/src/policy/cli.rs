//! `caje policy check|test`: lets policy authors validate a module and see its decisions
//! without running a proxy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, request, response};
use sha2::{Digest, Sha256};

use super::bindings::HOOKS_EXPORT;
use super::config::PolicyConfig;
use super::decision::{CacheVerdict, HeaderEdit, RequestAction, RequestDecision};
use super::engine::Runtime;
use super::failure::Failure;
use super::module::{Module, ModuleSpec, Outcome};
use super::precompiled::PrecompiledCache;
use super::view::{RequestView, ResponseView};
use crate::cache::{self, CacheConfig, NotStored};

/// Tools for policy authors.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check that a module is a caje policy this caje can run, and show what it exports.
    Check {
        /// The policy module (a .wasm component).
        file: PathBuf,
    },
    /// Run a module's hooks on a made-up request and response, and print its decisions.
    Test {
        /// The policy module (a .wasm component).
        file: PathBuf,
        #[arg(
            long,
            value_name = "METHOD URL",
            help = "The request, e.g. 'GET https://example.com/api/users?id=1'"
        )]
        request: String,
        /// A request header (repeatable).
        #[arg(long = "header", value_name = "NAME: VALUE")]
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

/// Runs a `caje policy` command; a refused module or a failed hook exits with 1.
pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Test {
            file,
            request,
            headers,
            origins,
            response_status,
            response_headers,
        } => {
            let request = parse_request(&request, &headers)?;
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

/// Loads `file` the way the proxy would (minus the precompiled cache).
fn load(file: &Path, origins: Vec<String>) -> anyhow::Result<Result<Module, String>> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let config = PolicyConfig::default();
    let runtime = Runtime::new(&config)?;
    let cache = PrecompiledCache::new(None, runtime.engine());
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let digest = hex::encode(Sha256::digest(&wasm));
    let spec = ModuleSpec {
        name: &name,
        digest: &digest,
        failure_mode: config.failure,
        origins: origins.into(),
        // The CLI shows what each call decides: never answer from a memo.
        memo_entries: 0,
    };
    Ok(Module::load(&runtime, &cache, spec, &wasm).map_err(|reason| format!("{name} {reason}")))
}

fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let module = match load(file, vec!["default".to_owned()])? {
        Ok(module) => module,
        Err(reason) => {
            eprintln!("error: {reason}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("ok: {} is a caje policy ({HOOKS_EXPORT})", module.name);
    println!("  sha256:     {}", module.digest);
    println!("  exports:    {HOOKS_EXPORT} (on-request, on-response)");
    for (index, import) in module.imports.iter().enumerate() {
        let label = if index == 0 { "imports:" } else { "" };
        let note = if import.starts_with("caje:policy/") {
            ""
        } else {
            " (traps if called: policies get no WASI)"
        };
        println!("  {label:<11} {import}{note}");
    }
    println!("  smoke call: passed (on-request and on-response for GET https://caje.invalid/)");
    Ok(ExitCode::SUCCESS)
}

fn test(
    file: &Path,
    origins: Vec<String>,
    request: &request::Parts,
    response: &response::Parts,
) -> anyhow::Result<ExitCode> {
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
    let given = RequestDecision::default_for(&request.method, default_origin);
    println!(
        "on-request (given origin {}, {})",
        given.origin,
        action_name(&given.action)
    );
    let requested = module
        .on_request(&view(request), &given)
        .map(|(outcome, _)| outcome);
    print_outcome(requested.as_ref(), describe_decision);

    // As in the proxy, the rest of the request's life sees the request as edited.
    let mut request = request.clone();
    for edit in requested
        .iter()
        .flat_map(|outcome| &outcome.value.origin_header_edits)
    {
        edit.apply(&mut request.headers);
    }
    let (given_verdict, not_stored) = host_verdict(&request, response);
    let response_view = ResponseView {
        status: response.status,
        headers: &response.headers,
    };

    println!(
        "on-response (status {}; given store {}{}, ttl {})",
        response.status.as_u16(),
        yes_no(given_verdict.store),
        not_stored.map_or(String::new(), |why| format!(" ({})", why.describe())),
        humantime::format_duration(whole_millis(given_verdict.ttl))
    );
    let verdict = module.on_response(&view(&request), &response_view, &given_verdict);
    print_outcome(verdict.as_ref(), describe_verdict);

    let ok = requested.is_ok() && verdict.is_ok();
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn view(request: &request::Parts) -> RequestView<'_> {
    RequestView::from_uri(&request.method, &request.uri, &request.headers)
}

/// A label and a value of a decision, as printed.
type Row = (&'static str, String);

fn print_outcome<T>(result: Result<&Outcome<T>, &Failure>, describe: fn(&T) -> Vec<Row>) {
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

fn action_name(action: &RequestAction) -> String {
    match action {
        RequestAction::Lookup => "lookup".to_owned(),
        RequestAction::Pass => "pass".to_owned(),
        RequestAction::Respond(response) => {
            format!(
                "respond {} ({} headers, {} body bytes)",
                response.status,
                response.headers.len(),
                response.body.len()
            )
        }
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

fn describe_decision(decision: &RequestDecision) -> Vec<Row> {
    let edits = decision.origin_header_edits.iter().map(|edit| match edit {
        HeaderEdit::Set(name, value) => {
            format!("set {name}: {}", String::from_utf8_lossy(value.as_bytes()))
        }
        HeaderEdit::Append(name, value) => format!(
            "append {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        ),
        HeaderEdit::Remove(name) => format!("remove {name}"),
    });
    vec![
        ("origin", decision.origin.clone()),
        ("action", action_name(&decision.action)),
        ("cache-key", list(decision.cache_key.iter().cloned())),
        ("origin-header-edits", list(edits)),
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
    ]
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

fn parse_request(line: &str, headers: &[String]) -> anyhow::Result<request::Parts> {
    let Some((method, url)) = line.trim().split_once(char::is_whitespace) else {
        bail!(
            "invalid --request {line:?}: write it as 'METHOD URL', e.g. 'GET https://example.com/'"
        );
    };
    let method = Method::from_bytes(method.as_bytes())
        .with_context(|| format!("invalid method {method:?}"))?;
    let uri: Uri = url
        .trim()
        .parse()
        .with_context(|| format!("invalid URL {url:?}"))?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        bail!("invalid URL {url:?}: it must be absolute, e.g. https://example.com/path");
    }
    let mut headers = parse_headers("--header", headers)?;
    if let Some(authority) = uri.authority() {
        headers.insert(
            http::header::HOST,
            HeaderValue::from_str(authority.as_str())?,
        );
    }
    let mut request = http::Request::new(()).into_parts().0;
    request.method = method;
    request.uri = uri;
    request.headers = headers;
    Ok(request)
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
        let request = parse_request(
            "POST https://example.com:8443/a?b=1",
            &["X-A: 1".to_owned(), "x-a: 2".to_owned()],
        )
        .unwrap();
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.uri.path(), "/a");
        assert_eq!(request.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(request.headers["host"], "example.com:8443");
        let relative = parse_request("GET /a", &[]).unwrap_err().to_string();
        assert!(relative.contains("must be absolute"), "{relative}");
        let bare = parse_request("https://example.com/", &[])
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
        let request = parse_request("GET https://example.com/", &[]).unwrap();
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
        let cookie = parse_request("GET https://example.com/", &["cookie: a=b".to_owned()]);
        let (verdict, why) = host_verdict(&cookie.unwrap(), &response("max-age=60"));
        assert!(!verdict.store);
        assert_eq!(why, Some(NotStored::Cookie));
        let strict = "max-age=60, must-revalidate, stale-if-error=600";
        let (verdict, _) = host_verdict(&request, &response(strict));
        assert_eq!(verdict.stale_if_error, Duration::ZERO);
    }
}
