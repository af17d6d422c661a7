//! Routes every request to `nowhere`, an origin no caje configuration defines.

use caje_policy::{Policy, Request, RequestDecision};

pub struct HostileUnknownOrigin;

impl Policy for HostileUnknownOrigin {
    fn on_request(_req: &Request, current: RequestDecision) -> RequestDecision {
        current.with_origin("nowhere")
    }
}

caje_policy::export!(HostileUnknownOrigin);
