//! What the proxy shows a hook: borrowed views of the canonical request and of the origin
//! response head. Guests read them through host calls; nothing is copied up front.

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
}
