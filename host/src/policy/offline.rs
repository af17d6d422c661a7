//! Running policies without a proxy (`caje policy check|test`, cases files): a module loaded
//! as the proxy would load it, and a request written as `METHOD URL`.

use std::path::Path;

use anyhow::{Context as _, bail};
use http::header::{HeaderMap, HeaderValue};
use http::{Method, Uri, request};
use sha2::{Digest, Sha256};

use super::config::PolicyConfig;
use super::engine::Runtime;
use super::module::{Module, ModuleSpec};
use super::precompiled::PrecompiledCache;

/// Loads the module `file` the way the proxy would (minus the precompiled cache), under
/// `config`'s limits; `Err` inside is why it was refused.
pub(super) fn load_module(
    file: &Path,
    config: &PolicyConfig,
    origins: Vec<String>,
) -> anyhow::Result<Result<Module, String>> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(config)?;
    let cache = PrecompiledCache::new(None, runtime.engine());
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let digest = hex::encode(Sha256::digest(&wasm));
    let spec = ModuleSpec {
        name: &name,
        digest: &digest,
        failure_mode: config.failure_mode(&name),
        origins: origins.into(),
        memo_entries: config.memo_entries(&name),
    };
    Ok(Module::load(&runtime, &cache, spec, &wasm).map_err(|reason| format!("{name} {reason}")))
}

/// A request from `METHOD URL` (an absolute URL) and its headers; `host` is set from the URL.
pub(super) fn parse_request(line: &str, mut headers: HeaderMap) -> anyhow::Result<request::Parts> {
    let Some((method, url)) = line.trim().split_once(char::is_whitespace) else {
        bail!(
            "invalid request {line:?}: write it as 'METHOD URL', e.g. 'GET https://example.com/'"
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
