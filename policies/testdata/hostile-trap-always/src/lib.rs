//! Panics in every on-request, so the host's load-time smoke call refuses it.

use caje_policy::{Policy, Request, RequestDecision};

pub struct HostileTrapAlways;

impl Policy for HostileTrapAlways {
    fn on_request(_req: &Request, _current: RequestDecision) -> RequestDecision {
        panic!("hostile-trap-always traps on every request")
    }
}

caje_policy::export!(HostileTrapAlways);
