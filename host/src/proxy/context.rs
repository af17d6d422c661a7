//! The per-request context: what canonicalize and route decided about a request (the canonical
//! request, where it goes, its key and what to do with it), read by every later phase.

use std::sync::Arc;

use http::HeaderMap;

use super::canonicalize::CanonicalRequest;
use super::headers;
use super::origin::Origin;
use super::outcome::Forward;
use crate::key::Key;
use crate::policy::{Chain, HeaderEdit};

/// One request as it flows down the phases. Phases read it; none parses it back from headers.
#[derive(Clone)]
pub struct RequestCtx {
    /// The canonical request, with the policies' header edits applied: the request the cache
    /// judges (see [`route`](super::route::route)).
    pub request: CanonicalRequest,
    pub route: Route,
    /// The key before any Vary variant.
    pub key: Key,
    pub action: Action,
}

/// Where a request goes.
#[derive(Clone)]
pub struct Route {
    pub origin: Arc<Origin>,
    /// Header edits the policies asked for on the origin request.
    pub(super) edits: Vec<HeaderEdit>,
    /// The client's headers, kept when the edits changed the request's.
    pub(super) unedited: Option<HeaderMap>,
    /// The chain this request started with: its `on_response` sees the same modules.
    pub chain: Arc<Chain>,
}

/// What to do with a routed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer from the cache, or fetch and maybe store.
    Lookup,
    /// Relay to the origin without looking up or storing.
    Pass(Forward),
}

impl Route {
    /// The headers of the request this route sends to the origin: the client's without
    /// unkeyed overrides and framing (hyper frames the body caje sends), with forwarding
    /// headers, then the policies' edits (which may override caje's forwarding headers).
    pub fn origin_headers(&self, request: &CanonicalRequest) -> HeaderMap {
        let mut headers = self.unedited.as_ref().unwrap_or(&request.headers).clone();
        headers::remove_unkeyed_overrides(&mut headers);
        headers::remove_framing(&mut headers);
        headers::add_forwarding(
            &mut headers,
            request.client.ip(),
            &request.host,
            request.scheme.as_str(),
        );
        for edit in &self.edits {
            edit.apply(&mut headers);
        }
        headers
    }
}
