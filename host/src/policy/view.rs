//! What the proxy shows a hook: borrowed views of the canonical request, the origin response
//! head, the response a client is about to get and an origin failure. Guests read them through
//! host calls; nothing is copied up front.

use http::uri::PathAndQuery;
use http::{HeaderMap, Method, StatusCode, Uri};

/// The canonical client request, as the proxy hands it to [`Chain`](super::Chain). Its URL
/// comes in parts, so the proxy lends what it holds without building a `Uri` per request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Host and optional port.
    pub authority: &'a str,
    pub path_and_query: &'a PathAndQuery,
    /// The canonical request headers (hop-by-hop already removed).
    pub headers: &'a HeaderMap,
}

impl<'a> RequestView<'a> {
    /// The view of a request for an absolute `uri` (a relative one has an empty authority and
    /// scheme `http`).
    pub fn from_uri(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        static ROOT: PathAndQuery = PathAndQuery::from_static("/");
        RequestView {
            method,
            scheme: uri.scheme_str().unwrap_or("http"),
            authority: uri.authority().map_or("", |authority| authority.as_str()),
            path_and_query: uri.path_and_query().unwrap_or(&ROOT),
            headers,
        }
    }
}

/// The origin response head, as the proxy hands it to [`Chain::on_response`](super::Chain::on_response).
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    /// The name of the configured origin that answered.
    pub origin: &'a str,
}

/// How caje answered a request, as `on-deliver` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    /// A fresh stored response.
    Hit,
    /// Fetched from the origin (and stored, if it could be).
    Miss,
    /// A stale stored response, while revalidating or because the origin failed.
    Stale,
    /// A stored response the origin confirmed unchanged (304).
    Revalidated,
    /// Fetched from the origin bypassing the cache (a policy's pass, an unsafe method).
    Pass,
    /// Made by a policy: `respond` in on-request, or an on-error response.
    Synthetic,
    /// caje's own error response (502, 504, a refusing policy's 503, 421 for an unknown host).
    Error,
}

impl CacheOutcome {
    /// The name the WIT and the cases files use, e.g. `"hit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Pass => "pass",
            CacheOutcome::Synthetic => "synthetic",
            CacheOutcome::Error => "error",
        }
    }
}

/// What the proxy tells [`Chain::on_deliver`](super::Chain::on_deliver) about the response it is
/// about to send, besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub status: StatusCode,
    pub outcome: CacheOutcome,
    /// The origin the request was routed to; `None` when it was refused before routing.
    pub origin: Option<&'a str>,
}

/// The client response as one module's `on-deliver` reads it: the delivery and its headers
/// as the modules before it left them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientResponseView<'a> {
    pub status: StatusCode,
    pub outcome: CacheOutcome,
    pub origin: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

impl<'a> ClientResponseView<'a> {
    pub fn new(delivery: &Delivery<'a>, headers: &'a HeaderMap) -> Self {
        ClientResponseView {
            status: delivery.status,
            outcome: delivery.outcome,
            origin: delivery.origin,
            headers,
        }
    }
}

/// How an origin failed, as the proxy tells [`Chain::on_error`](super::Chain::on_error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginFailure {
    /// Not reachable (connect, DNS, TLS, reset), or broke off before its response head.
    Unreachable,
    /// No response head within the origin's read timeout.
    Timeout,
    /// A 5xx answer, with no stale copy to serve instead.
    ErrorStatus(StatusCode),
}

/// An origin failure caje has no stale copy for.
#[derive(Debug, Clone, Copy)]
pub struct ErrorView<'a> {
    /// The name of the configured origin that failed.
    pub origin: &'a str,
    pub failure: OriginFailure,
}
