//! Whether a response may be stored under HTTP's rules: http-cache-semantics' verdict plus
//! caje's shared-cache rules, each refusal a [`NotStored`] reason.
//!
//! Beyond RFC 9111: never 206, never `Vary: *`, no Set-Cookie, no answer to a Cookie request
//! unless explicitly shared.

use std::time::Duration;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, request, response};
use http_cache_semantics::CachePolicy;

use super::detach;
use super::freshness::Directives;

/// Why a response is not stored: the host's HTTP caching rules (`check`), a policy's verdict,
/// or a body that outgrew `max_object_size`. `proxy::decide_store` is where they meet; the
/// reason travels to `Cache-Status: detail` and the `caje_responses_not_stored_total` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// `no-store` in the request or the response.
    NoStore,
    /// The request method is not cacheable (RFC 9111 §3).
    Method,
    /// `private`: caje is a shared cache.
    Private,
    /// The request carried `Authorization` and the response did not allow sharing it (RFC 9111 §3.5).
    Authorization,
    /// A status that is not cacheable without explicit freshness, or not understood.
    Status,
    PartialContent,
    VaryStar,
    SetCookie,
    /// The request carried a Cookie and the response did not say `public` or `s-maxage`.
    Cookie,
    TooLarge,
    /// Neither fresh for any time nor revalidatable: storing it would never save an origin request.
    NoFreshness,
    /// The policies' verdict said not to store it.
    Policy,
}

impl NotStored {
    /// The reason as a token, for `Cache-Status: detail` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::NoStore => "no-store",
            NotStored::Method => "method",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::Status => "status",
            NotStored::PartialContent => "partial-content",
            NotStored::VaryStar => "vary-star",
            NotStored::SetCookie => "set-cookie",
            NotStored::Cookie => "cookie",
            NotStored::TooLarge => "too-large",
            NotStored::NoFreshness => "no-freshness",
            NotStored::Policy => "policy",
        }
    }

    /// The reason in words, for logs and `caje policy test`.
    pub fn describe(self) -> &'static str {
        match self {
            NotStored::NoStore => "no-store",
            NotStored::Method => "method not cacheable",
            NotStored::Private => "private (caje is a shared cache)",
            NotStored::Authorization => "request had Authorization",
            NotStored::Status => "status not cacheable without explicit freshness",
            NotStored::PartialContent => "partial content",
            NotStored::VaryStar => "Vary: *",
            NotStored::SetCookie => "Set-Cookie",
            NotStored::Cookie => "request had Cookie",
            NotStored::TooLarge => "larger than max_object_size",
            NotStored::NoFreshness => "no freshness and no validator",
            NotStored::Policy => "a policy said so",
        }
    }

    /// Whether a policy's verdict cannot override this: caje cannot store a 206, a `Vary: *`
    /// response or a body over `max_object_size` correctly, whatever a policy says.
    pub fn binds_policies(self) -> bool {
        matches!(
            self,
            NotStored::PartialContent | NotStored::VaryStar | NotStored::TooLarge
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
) -> Result<(), NotStored> {
    if response.status == StatusCode::PARTIAL_CONTENT {
        return Err(NotStored::PartialContent);
    }
    if vary_names(&response.headers).is_none() {
        return Err(NotStored::VaryStar);
    }
    if !policy.is_storable() {
        return Err(semantics_reason(request, response));
    }
    if response.headers.contains_key(header::SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    if request.headers.contains_key(header::COOKIE) && !explicitly_shared(&response.headers) {
        return Err(NotStored::Cookie);
    }
    let declared_len = response
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > max_object_size) {
        return Err(NotStored::TooLarge);
    }
    let has_validator = response.headers.contains_key(header::ETAG)
        || response.headers.contains_key(header::LAST_MODIFIED);
    if ttl.is_zero() && !has_validator {
        return Err(NotStored::NoFreshness);
    }
    Ok(())
}

/// Which of RFC 9111 §3's conditions a response that http-cache-semantics will not store
/// fails, in the order an operator would look for them.
fn semantics_reason(request: &request::Parts, response: &response::Parts) -> NotStored {
    let asked = Directives::parse(&request.headers);
    let answered = Directives::parse(&response.headers);
    if asked.has("no-store") || answered.has("no-store") {
        NotStored::NoStore
    } else if request.method != Method::GET && request.method != Method::HEAD {
        NotStored::Method
    } else if answered.has("private") {
        NotStored::Private
    } else if request.headers.contains_key(header::AUTHORIZATION)
        && !shared_with_authorization(&response.headers)
    {
        NotStored::Authorization
    } else {
        NotStored::Status
    }
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
