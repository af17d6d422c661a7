//! Implements every hook as the identity (so caje calls each of them): the baseline for
//! measuring what a hook call costs. A module that implements no hook (`no-hooks`) is never
//! called at all.

use caje_policy::{
    CacheVerdict, ClientResponse, HeaderEdits, OriginError, Policy, Request, RequestDecision,
    Response, SyntheticResponse,
};

pub struct Noop;

impl Policy for Noop {
    fn on_request(_req: &Request, current: RequestDecision) -> RequestDecision {
        current
    }

    fn on_response(_req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        current
    }

    fn on_deliver(_req: &Request, _resp: &ClientResponse) -> HeaderEdits {
        HeaderEdits::new()
    }

    fn on_error(
        _req: &Request,
        _error: &OriginError,
        current: Option<SyntheticResponse>,
    ) -> Option<SyntheticResponse> {
        current
    }
}

caje_policy::export!(Noop);
