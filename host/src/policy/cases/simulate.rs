//! One case's request through a chain the way `caje serve` takes it: host routing, on-request,
//! the origin's answer or failure (on-response, on-error), then on-deliver; what each step
//! produced is recorded for the comparison with the expectations.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::uri::PathAndQuery;
use http::{StatusCode, request};

use super::super::chain::{Chain, PolicyRefusal};
use super::super::decision::{CacheVerdict, RequestAction, RequestDecision, SyntheticResponse};
use super::super::view::{
    CacheOutcome, Delivery, ErrorView, OriginFailure, RequestView, ResponseView,
};
use super::file::{Case, Origin, OriginErrorKind, OriginResponse, Served};
use crate::cache;

/// The origin a client host goes to (`None`: caje does not serve that host).
pub type Router = dyn Fn(&str) -> Option<String>;

/// What the proxy around the chain knows: its origins and limits.
pub(crate) struct Setting<'a> {
    pub route: &'a Router,
    pub max_object_size: u64,
}

/// Everything a case produced.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub decision: Option<RequestDecision>,
    /// The absolute URL caje keys on and fetches.
    pub url: Option<String>,
    /// The request headers as the origin gets them (the policies' edits applied).
    pub origin_headers: Option<HeaderMap>,
    /// The policies' verdict, with `store` as caje would act on it.
    pub verdict: Option<CacheVerdict>,
    /// The headers stored, when the response is stored.
    pub stored_headers: Option<HeaderMap>,
    pub outcome: Option<CacheOutcome>,
    pub status: Option<StatusCode>,
    pub delivered_headers: HeaderMap,
    pub body: Bytes,
    /// A closed-mode module that refused the request.
    pub refusal: Option<PolicyRefusal>,
    /// Why the case could not be played to the end (e.g. a hit on a response the policies do
    /// not store).
    pub impossible: Option<String>,
}

/// Why the origin's part ended without a response to deliver as planned.
enum Stop {
    Refused(PolicyRefusal),
    Impossible(String),
}

impl From<PolicyRefusal> for Stop {
    fn from(refusal: PolicyRefusal) -> Self {
        Stop::Refused(refusal)
    }
}

/// The response about to be delivered, and how it came about.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    outcome: CacheOutcome,
}

impl Answer {
    fn synthetic(response: SyntheticResponse) -> Answer {
        Answer {
            status: response.status,
            headers: response.headers,
            body: response.body,
            outcome: CacheOutcome::Synthetic,
        }
    }

    /// caje's own error response (its text is not part of what policies decide).
    fn error(status: StatusCode) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            outcome: CacheOutcome::Error,
        }
    }
}

/// Runs `case` through `chain`.
pub(crate) fn run(chain: &Chain, setting: &Setting<'_>, case: &Case) -> Observed {
    let mut observed = Observed::default();
    let request = &case.request;
    let host = request
        .uri
        .authority()
        .map_or("", |authority| authority.host());
    let Some(origin) = (setting.route)(host) else {
        deliver(
            chain,
            request,
            None,
            Answer::error(StatusCode::MISDIRECTED_REQUEST),
            &mut observed,
        );
        return observed;
    };
    let view = RequestView::from_uri(&request.method, &request.uri, &request.headers);
    let given = RequestDecision::default_for(&request.method, origin);
    let decision = match chain.on_request(&view, given) {
        Ok(decision) => decision,
        Err(refusal) => {
            observed.refusal = Some(refusal);
            let answer = Answer::error(StatusCode::SERVICE_UNAVAILABLE);
            deliver(chain, request, None, answer, &mut observed);
            return observed;
        }
    };
    // From here on, as in the proxy, the request is the one the origin gets.
    let origin = decision.origin.clone();
    let mut edited = request.clone();
    decision.apply_to(&mut edited);
    observed.url = Some(absolute(&edited));
    observed.decision = Some(decision.clone());
    let answer = match (decision.action, &case.origin) {
        (RequestAction::Respond(response), _) => Answer::synthetic(response),
        (_, None) => return observed,
        (action, Some(answer)) => {
            observed.origin_headers = Some(edited.headers.clone());
            let pass = action == RequestAction::Pass;
            match fetch(
                chain,
                setting,
                &edited,
                &origin,
                answer,
                pass,
                &mut observed,
            ) {
                Ok(answer) => answer,
                Err(Stop::Refused(refusal)) => {
                    observed.refusal = Some(refusal);
                    Answer::error(StatusCode::SERVICE_UNAVAILABLE)
                }
                Err(Stop::Impossible(why)) => {
                    observed.impossible = Some(why);
                    return observed;
                }
            }
        }
    };
    deliver(chain, &edited, Some(&origin), answer, &mut observed);
    observed
}

fn absolute(request: &request::Parts) -> String {
    let root = PathAndQuery::from_static("/");
    let path = request.uri.path_and_query().unwrap_or(&root);
    match request.uri.authority() {
        Some(authority) => format!(
            "{}://{authority}{path}",
            request.uri.scheme_str().unwrap_or("http")
        ),
        None => path.to_string(),
    }
}

/// The origin's part: its failure (on-error), or its response (on-response unless passed).
fn fetch(
    chain: &Chain,
    setting: &Setting<'_>,
    request: &request::Parts,
    origin: &str,
    answer: &Origin,
    pass: bool,
    observed: &mut Observed,
) -> Result<Answer, Stop> {
    let view = RequestView::from_uri(&request.method, &request.uri, &request.headers);
    let response = match answer {
        Origin::Fails(kind) => {
            let (failure, status) = match kind {
                OriginErrorKind::Unreachable => {
                    (OriginFailure::Unreachable, StatusCode::BAD_GATEWAY)
                }
                OriginErrorKind::Timeout => (OriginFailure::Timeout, StatusCode::GATEWAY_TIMEOUT),
            };
            let error = ErrorView { origin, failure };
            return Ok(chain
                .on_error(&view, &error)?
                .map_or_else(|| Answer::error(status), Answer::synthetic));
        }
        Origin::Responds(response) => response,
    };
    let status = response.head.status;
    // A 5xx with no stale copy to serve: a policy may answer instead.
    if status.is_server_error() && response.served == Served::Miss {
        let error = ErrorView {
            origin,
            failure: OriginFailure::ErrorStatus(status),
        };
        if let Some(synthetic) = chain.on_error(&view, &error)? {
            return Ok(Answer::synthetic(synthetic));
        }
    }
    if pass {
        return Ok(Answer {
            status,
            headers: response.head.headers.clone(),
            body: response.body.clone(),
            outcome: CacheOutcome::Pass,
        });
    }
    let verdict = verdict(chain, setting, request, origin, response)?;
    let mut headers = response.head.headers.clone();
    verdict.apply_stored_edits(&mut headers);
    let stored = verdict
        .store
        .then(|| stored_headers(&headers, verdict.keep_set_cookie));
    let outcome = match response.served {
        Served::Miss => CacheOutcome::Miss,
        Served::Hit => CacheOutcome::Hit,
        Served::Stale => CacheOutcome::Stale,
        Served::Revalidated => CacheOutcome::Revalidated,
    };
    observed.stored_headers = stored.clone();
    observed.verdict = Some(verdict);
    // A later request is answered from what was stored; the one that fetched it gets it whole.
    let delivered = match (stored, outcome) {
        (_, CacheOutcome::Miss) => headers,
        (Some(stored), _) => stored,
        (None, _) => {
            return Err(Stop::Impossible(format!(
                "the response is served as a {}, but the policies do not store it",
                outcome.as_str()
            )));
        }
    };
    Ok(Answer {
        status,
        headers: delivered,
        body: response.body.clone(),
        outcome,
    })
}

/// The policies' verdict on the origin response, from caje's own (HTTP caching rules), with
/// `store` cleared where caje cannot store the response whatever the policies say.
fn verdict(
    chain: &Chain,
    setting: &Setting<'_>,
    request: &request::Parts,
    origin: &str,
    response: &OriginResponse,
) -> Result<CacheVerdict, PolicyRefusal> {
    let assessment = cache::assess(
        request,
        &response.head,
        SystemTime::now(),
        setting.max_object_size,
    );
    let given = CacheVerdict::default_for(&assessment.windows, assessment.storable.is_ok());
    let view = RequestView::from_uri(&request.method, &request.uri, &request.headers);
    let head = ResponseView {
        status: response.head.status,
        headers: &response.head.headers,
        origin,
    };
    let mut verdict = chain.on_response(&view, &head, given)?;
    if assessment
        .storable
        .is_err_and(|reason| reason.binds_policies())
    {
        verdict.store = false;
    }
    Ok(verdict)
}

/// The headers a stored entry keeps: `Set-Cookie` only when a policy asked, never `Age`.
fn stored_headers(headers: &HeaderMap, keep_set_cookie: bool) -> HeaderMap {
    let mut stored = headers.clone();
    if !keep_set_cookie {
        stored.remove(header::SET_COOKIE);
    }
    stored.remove(header::AGE);
    stored
}

/// Runs on-deliver on `answer` and records what the client gets.
fn deliver(
    chain: &Chain,
    request: &request::Parts,
    origin: Option<&str>,
    mut answer: Answer,
    observed: &mut Observed,
) {
    let view = RequestView::from_uri(&request.method, &request.uri, &request.headers);
    let delivery = Delivery {
        status: answer.status,
        outcome: answer.outcome,
        origin,
    };
    if let Err(refusal) = chain.on_deliver(&view, &delivery, &mut answer.headers) {
        observed.refusal = Some(refusal);
        answer = Answer::error(StatusCode::SERVICE_UNAVAILABLE);
    }
    observed.outcome = Some(answer.outcome);
    observed.status = Some(answer.status);
    observed.delivered_headers = answer.headers;
    observed.body = answer.body;
}
