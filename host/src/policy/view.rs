//! What the proxy shows a hook: borrowed views of the canonical request and the origin
//! response head, and the owned snapshot of them a module instance reads during a call.

use std::sync::Arc;

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

/// An owned copy of a [`RequestView`], made once per chain call and shared by every module's
/// store (a store's data must be `'static`). Cloning a `HeaderMap` clones reference-counted
/// bytes, not the header text.
#[derive(Debug)]
pub(crate) struct RequestParts {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

/// An owned copy of a [`ResponseView`].
#[derive(Debug)]
pub(crate) struct ResponseParts {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

impl RequestParts {
    pub fn snapshot(view: &RequestView<'_>) -> Arc<RequestParts> {
        Arc::new(RequestParts {
            method: view.method.clone(),
            uri: view.uri.clone(),
            headers: view.headers.clone(),
        })
    }
}

impl ResponseParts {
    pub fn snapshot(view: &ResponseView<'_>) -> Arc<ResponseParts> {
        Arc::new(ResponseParts {
            status: view.status,
            headers: view.headers.clone(),
        })
    }
}
