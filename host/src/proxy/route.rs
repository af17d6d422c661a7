//! Routing: the origin a request goes to, its cache key, and what the policy chain decided.
//! The chain runs once per request; its decision travels with the request to the origin.

use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};

use super::Proxy;
use crate::body::Body;
use super::canonical::CanonicalRequest;
use super::headers;
use super::origin::Origin;
use super::respond::{self, CacheStatus, XCache};
use crate::cache::Key;
use crate::policy::{Chain, HeaderEdit, PolicyRefusal, RequestAction, RequestDecision};

/// Where a request goes and how it is keyed.
#[derive(Clone)]
pub struct Route {
    pub origin: Arc<Origin>,
    /// The key before any Vary variant.
    pub key: Key,
    /// Header edits the policies asked for on the origin request.
    edits: Vec<HeaderEdit>,
    /// The client's headers, kept when the edits changed the request's.
    unedited: Option<HeaderMap>,
    /// The chain this request started with: its `on_response` sees the same modules.
    pub chain: Arc<Chain>,
}

impl Route {
    /// The headers of the request this route sends to the origin: the client's without
    /// unkeyed overrides and framing (hyper frames the body caje sends), with forwarding headers, then the policies' edits (which may
    /// override caje's forwarding headers).
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

/// What to do with a request once it is routed.
pub enum Action {
    Lookup,
    Pass,
}

/// The routing phase's outcome: go on with a route, or answer right away.
pub enum Routed {
    Go(Route, Action),
    Answer(Response),
}

impl Proxy {
    /// Picks the origin (by Host, then the policies), the key and the action; or answers now
    /// (unknown host, a synthetic response, a refusing policy).
    ///
    /// The policies' header edits are applied to `request` too: from here on the cache judges
    /// the request the origin receives, so a response to a request whose credentials a policy
    /// strips is stored and shared like any anonymous one (and Vary sees the edited values).
    /// Credentials a policy adds are not the client's and do not count.
    pub(super) fn route(&self, request: &mut CanonicalRequest) -> Routed {
        let Some(host_origin) = self.origins.for_host(&request.host, &self.default_origin) else {
            metrics::counter!("caje_requests_refused_total", "reason" => "host").increment(1);
            return Routed::Answer(respond::error_closing(
                StatusCode::MISDIRECTED_REQUEST,
                &format!("caje does not serve host {:?}", request.host),
            ));
        };
        let chain = self.policies.chain();
        let mut decision = RequestDecision::default_for(&request.method, host_origin.name.clone());
        if !chain.is_empty() {
            decision = match chain.on_request(&request.view(), decision) {
                Ok(decision) => decision,
                Err(refusal) => return Routed::Answer(refused(request, &refusal)),
            };
        }
        let action = match decision.action {
            RequestAction::Lookup => Action::Lookup,
            RequestAction::Pass => Action::Pass,
            RequestAction::Respond(synthetic) => {
                let mut response = http::Response::new(Body::full(synthetic.body));
                *response.status_mut() = synthetic.status;
                *response.headers_mut() = synthetic.headers;
                let status = CacheStatus {
                    detail: Some("policy"),
                    ..CacheStatus::forward("bypass")
                };
                respond::mark(response.headers_mut(), &status, XCache::Bypass);
                return Routed::Answer(response);
            }
        };
        // The chain only lets through names of configured origins.
        let origin = self
            .origins
            .get(&decision.origin)
            .cloned()
            .unwrap_or_else(|| host_origin.clone());
        let key = Key::for_url(&request.url, &decision.cache_key);
        let edits = decision.origin_header_edits;
        let unedited = (!edits.is_empty()).then(|| edit_request(request, &edits));
        let route = Route {
            origin,
            key,
            edits,
            unedited,
            chain,
        };
        Routed::Go(route, action)
    }
}

/// Applies the policies' edits to the request the cache judges, and returns the client's headers.
fn edit_request(request: &mut CanonicalRequest, edits: &[HeaderEdit]) -> HeaderMap {
    let unedited = request.headers.clone();
    for edit in edits {
        edit.apply(&mut request.headers);
    }
    // Credentials a policy adds (an origin's API key) are caje's own, the same for every client:
    // only the client's own credentials, if they still reach the origin, make a response personal.
    for name in [header::AUTHORIZATION, header::COOKIE] {
        if !unedited.contains_key(&name) {
            request.headers.remove(&name);
        }
    }
    unedited
}

/// The 503 a closed-mode policy's failure turns a request into.
pub fn refused(request: &CanonicalRequest, refusal: &PolicyRefusal) -> Response {
    tracing::warn!(url = %request.url, module = %refusal.module, reason = %refusal.reason, "a closed-mode policy refused the request");
    respond::error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("refused by policy {}", refusal.module),
    )
}

type Response = http::Response<Body>;
