//! Whether a response may be stored: http-cache-semantics' verdict plus caje's shared-cache rules
//! (never 206, never `Vary: *`, no Set-Cookie, no answer to a Cookie request unless explicitly shared).

use std::time::Duration;

use http::header::{self, HeaderMap};
use http::{StatusCode, request, response};
use http_cache_semantics::CachePolicy;

use super::detach;
use super::freshness::Directives;

/// Why a response is not stored (the host's default verdict; a policy may still override it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// no-store, private, an uncacheable status or method, Authorization without permission (RFC 9111 §3).
    Semantics,
    PartialContent,
    VaryStar,
    SetCookie,
    /// The request carried a Cookie and the response did not say `public` or `s-maxage`.
    CookieRequest,
    TooLarge,
    /// Neither fresh for any time nor revalidatable: storing it would never save an origin request.
    Useless,
}

impl NotStorable {
    pub fn as_str(self) -> &'static str {
        match self {
            NotStorable::Semantics => "not storable under RFC 9111",
            NotStorable::PartialContent => "partial content",
            NotStorable::VaryStar => "Vary: *",
            NotStorable::SetCookie => "Set-Cookie",
            NotStorable::CookieRequest => "request had Cookie",
            NotStorable::TooLarge => "larger than max_object_size",
            NotStorable::Useless => "no freshness and no validator",
        }
    }

    /// Whether a policy's verdict cannot override this: caje cannot store a 206, a `Vary: *`
    /// response or a body over `max_object_size` correctly, whatever a policy says.
    pub fn binds_policies(self) -> bool {
        matches!(
            self,
            NotStorable::PartialContent | NotStorable::VaryStar | NotStorable::TooLarge
        )
    }
}

/// The host's default storability for a response to `request` (the full client request).
pub fn check(
    request: &request::Parts,
    response: &response::Parts,
    policy: &CachePolicy,
    ttl: Duration,
    max_object_size: u64,
) -> Result<(), NotStorable> {
    if response.status == StatusCode::PARTIAL_CONTENT {
        return Err(NotStorable::PartialContent);
    }
    if vary_names(&response.headers).is_none() {
        return Err(NotStorable::VaryStar);
    }
    if !policy.is_storable() {
        return Err(NotStorable::Semantics);
    }
    if response.headers.contains_key(header::SET_COOKIE) {
        return Err(NotStorable::SetCookie);
    }
    if request.headers.contains_key(header::COOKIE) && !explicitly_shared(&response.headers) {
        return Err(NotStorable::CookieRequest);
    }
    let declared_len = response
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > max_object_size) {
        return Err(NotStorable::TooLarge);
    }
    let has_validator = response.headers.contains_key(header::ETAG)
        || response.headers.contains_key(header::LAST_MODIFIED);
    if ttl.is_zero() && !has_validator {
        return Err(NotStorable::Useless);
    }
    Ok(())
}

/// The lower-cased header names a response varies on; `None` for `Vary: *`.
pub fn vary_names(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for value in headers.get_all(header::VARY) {
        for name in value.to_str().unwrap_or("*").split(',') {
            let name = name.trim().to_ascii_lowercase();
            if name == "*" {
                return None;
            }
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

fn explicitly_shared(headers: &HeaderMap) -> bool {
    let directives = Directives::parse(headers);
    directives.has("public") || directives.has("s-maxage")
}

/// The response lets a shared cache answer requests that carry `Authorization` (RFC 9111 §3.5).
pub fn shared_with_authorization(headers: &HeaderMap) -> bool {
    let directives = Directives::parse(headers);
    directives.has("public") || directives.has("s-maxage") || directives.has("must-revalidate")
}

/// The request headers worth persisting with a policy: Host, Cache-Control, Pragma and the varied ones.
/// Cookie and Authorization never reach the disk.
pub fn persisted_request(request: &request::Parts, vary: &[String]) -> request::Parts {
    let mut builder = http::Request::builder()
        .method(request.method.clone())
        .uri(detach::uri(&request.uri));
    for (name, value) in &request.headers {
        let keep = name == header::HOST
            || name == header::CACHE_CONTROL
            || name == header::PRAGMA
            || vary.iter().any(|v| v == name.as_str());
        if keep && name != header::COOKIE && name != header::AUTHORIZATION {
            builder = builder.header(name, detach::value(value));
        }
    }
    builder
        .body(())
        .expect("parts of a valid request rebuild")
        .into_parts()
        .0
}
