//! The policy module against real components compiled from `policies/`: the examples'
//! decisions, the chain and each hook, hostile modules, a module built with the first SDK, hot
//! reload, the precompiled cache, the CLI and cases files.

mod cases;
mod chain;
mod cli;
mod deliver;
mod errors;
mod examples;
mod hostile;
mod legacy;
mod memo;
mod normalize;
mod reload;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use caje::policy::{
    CacheOutcome, CacheVerdict, Chain, Delivery, ErrorView, ModuleStatus, OriginFailure, Policies,
    PolicyConfig, PolicyRefusal, RequestDecision, RequestView, ResponseView, SyntheticResponse,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use tempfile::TempDir;

use caje_testkit::policies::{self as built, component};

/// The origins every test configures.
pub const ORIGINS: [&str; 2] = ["default", "api"];

/// Test settings: a short debounce, and one precompiled cache for all tests (compiling a module
/// takes seconds in a debug build; the cache prunes only entries unused for a week).
pub fn config() -> PolicyConfig {
    PolicyConfig {
        reload_debounce: Duration::from_millis(100),
        precompiled_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-precompiled")),
        ..PolicyConfig::default()
    }
}

/// A temporary policies directory (`<temp>/policies`, so its default precompiled cache
/// `<temp>/policies.precompiled` is temporary too).
pub struct PolicyDir {
    temp: TempDir,
}

impl PolicyDir {
    /// A directory holding `(file name, policies/ crate)` modules.
    pub fn with(modules: &[(&str, &str)]) -> PolicyDir {
        let dir = PolicyDir {
            temp: TempDir::new().unwrap(),
        };
        fs::create_dir(dir.path()).unwrap();
        for (file, crate_name) in modules {
            dir.install(file, crate_name);
        }
        dir
    }

    pub fn path(&self) -> PathBuf {
        self.temp.path().join("policies")
    }

    pub fn file(&self, file: &str) -> PathBuf {
        self.path().join(file)
    }

    /// Installs a built component as `file` the way authors should: copy beside, then rename.
    pub fn install(&self, file: &str, crate_name: &str) {
        built::install(&self.path(), file, crate_name);
    }

    pub fn install_bytes(&self, file: &str, bytes: &[u8]) {
        built::install_bytes(&self.path(), file, bytes);
    }

    pub fn start(&self) -> Policies {
        self.start_with(&config())
    }

    pub fn start_with(&self, config: &PolicyConfig) -> Policies {
        Policies::start(&self.path(), config, ORIGINS.map(str::to_owned).to_vec()).unwrap()
    }
}

/// A canonical request to show the chain.
pub struct TestRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl TestRequest {
    pub fn get(url: &str) -> TestRequest {
        TestRequest {
            method: Method::GET,
            uri: url.parse().unwrap(),
            headers: HeaderMap::new(),
        }
    }

    pub fn method(mut self, method: Method) -> TestRequest {
        self.method = method;
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> TestRequest {
        self.headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView::from_uri(&self.method, &self.uri, &self.headers)
    }

    /// What the proxy passes the first module.
    pub fn default_decision(&self) -> RequestDecision {
        RequestDecision::default_for(&self.method, "default")
    }

    pub fn decide(&self, chain: &Chain) -> Result<RequestDecision, PolicyRefusal> {
        chain.on_request(&self.view(), self.default_decision())
    }

    /// Runs `on-response` for a response with `status` and `headers`.
    pub fn verdict(
        &self,
        chain: &Chain,
        status: u16,
        headers: &[(&'static str, &str)],
        current: CacheVerdict,
    ) -> Result<CacheVerdict, PolicyRefusal> {
        let response_headers = header_map(headers);
        let response = ResponseView {
            status: StatusCode::from_u16(status).unwrap(),
            headers: &response_headers,
            origin: "default",
        };
        chain.on_response(&self.view(), &response, current)
    }
}

/// Header fields, for building responses.
pub fn header_map(fields: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

impl TestRequest {
    /// Runs `on-deliver` on a 200 with `outcome` and `headers`; returns the headers the client
    /// gets.
    pub fn deliver(
        &self,
        chain: &Chain,
        outcome: CacheOutcome,
        headers: &[(&'static str, &str)],
    ) -> Result<HeaderMap, PolicyRefusal> {
        let mut headers = header_map(headers);
        let delivery = Delivery {
            status: StatusCode::OK,
            outcome,
            origin: Some("default"),
        };
        chain.on_deliver(&self.view(), &delivery, &mut headers)?;
        Ok(headers)
    }

    /// Runs `on-error` for a failure of the default origin.
    pub fn error(
        &self,
        chain: &Chain,
        failure: OriginFailure,
    ) -> Result<Option<SyntheticResponse>, PolicyRefusal> {
        let error = ErrorView {
            origin: "default",
            failure,
        };
        chain.on_error(&self.view(), &error)
    }
}

/// The status of `file`.
pub fn status(policies: &Policies, file: &str) -> ModuleStatus {
    let all = policies.status();
    all.iter()
        .find(|status| status.file == file)
        .unwrap_or_else(|| panic!("no status for {file} in {all:#?}"))
        .clone()
}

/// The sha256 of a built component, as `status()` shows it.
pub fn digest_of(crate_name: &str) -> String {
    use sha2::Digest as _;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(
            fs::read(component(crate_name)).unwrap()
        ))
    )
}

/// Runs the real `caje` binary.
pub fn caje(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_caje"))
        .args(args)
        .output()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Polls `done` until it holds; fails the test after 20 seconds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}
