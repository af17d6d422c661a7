//! Phase 2, route: the origin a request goes to, its cache key and whether it is looked up or
//! passed, as the policy chain's `on-request` decides. The chain runs once per request.

use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};

use super::canonicalize::CanonicalRequest;
use super::context::{Action, RequestCtx, Route};
use super::origin::Origins;
use super::outcome::{CacheOutcome, Forward};
use super::respond::{self, Answer};
use crate::body::Body;
use crate::key::Key;
use crate::policy::{Chain, HeaderEdit, PolicyRefusal, RequestAction, RequestDecision};

/// The routing phase's outcome: go on with a context, or (`Err`) answer right away.
pub type Routed = Result<RequestCtx, Box<Answer>>;

/// Picks the origin (by Host, then the policies), the key and the action; or answers now
/// (unknown host, a synthetic response, a refusing policy).
///
/// The policies' header edits are applied to `request` too: from here on the cache judges
/// the request the origin receives, so a response to a request whose credentials a policy
/// strips is stored and shared like any anonymous one (and Vary sees the edited values).
/// Credentials a policy adds are not the client's and do not count.
pub fn route(
    origins: &Origins,
    default_origin: &str,
    chain: Arc<Chain>,
    mut request: CanonicalRequest,
) -> Routed {
    let Some(host_origin) = origins.for_host(&request.host, default_origin) else {
        metrics::counter!("caje_requests_refused_total", "reason" => "host").increment(1);
        return Err(Box::new(Answer::plain(respond::error_closing(
            StatusCode::MISDIRECTED_REQUEST,
            &format!("caje does not serve host {:?}", request.host),
        ))));
    };
    let mut decision = RequestDecision::default_for(&request.method, host_origin.name.clone());
    if !chain.is_empty() {
        decision = match chain.on_request(&request.view(), decision) {
            Ok(decision) => decision,
            Err(refusal) => {
                return Err(Box::new(Answer::plain(refused(&request, &refusal))));
            }
        };
    }
    let action = match decision.action {
        RequestAction::Lookup if request.is_cacheable_method() => Action::Lookup,
        RequestAction::Lookup => Action::Pass(Forward::Method),
        RequestAction::Pass => Action::Pass(Forward::Bypass),
        RequestAction::Respond(synthetic) => {
            let mut response = http::Response::new(Body::full(synthetic.body));
            *response.status_mut() = synthetic.status;
            *response.headers_mut() = synthetic.headers;
            return Err(Box::new(Answer::new(response, CacheOutcome::PolicyAnswer)));
        }
    };
    // The chain only lets through names of configured origins.
    let origin = origins
        .get(&decision.origin)
        .cloned()
        .unwrap_or_else(|| host_origin.clone());
    let key = Key::for_url(&request.url, &decision.cache_key);
    let edits = decision.origin_header_edits;
    let unedited = (!edits.is_empty()).then(|| edit_request(&mut request, &edits));
    Ok(RequestCtx {
        request,
        route: Route {
            origin,
            edits,
            unedited,
            chain,
        },
        key,
        action,
    })
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
pub fn refused(request: &CanonicalRequest, refusal: &PolicyRefusal) -> http::Response<Body> {
    tracing::warn!(url = %request.url, module = %refusal.module, reason = %refusal.reason, "a closed-mode policy refused the request");
    respond::error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("refused by policy {}", refusal.module),
    )
}
