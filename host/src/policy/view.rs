//! What the proxy shows a hook: borrowed views of the canonical request and of the origin
//! response head. Guests read them through host calls; nothing is copied up front.

use http::{HeaderMap, Method, StatusCode, Uri};

/// The canonical client request, as the proxy hands it to [`Chain`](super::Chain).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Absolute: scheme, authority, path and query.
    pub uri: &'a Uri,
    /// The canonical request headers (hop-by-hop already removed).
    pub headers: &'a HeaderMap,
}

/// The origin response head, as the proxy hands it to [`Chain::on_response`](super::Chain::on_response).
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
}
