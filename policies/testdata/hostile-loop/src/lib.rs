//! Spins forever in every hook for paths under `/loop`: the host must stop it (fuel or epoch
//! deadline) and keep serving. The other hooks' loops are for paths under `/loop-<hook>`
//! (`/loop-response`, `/loop-deliver`, `/loop-error`) too, so a test can aim at one hook.

use caje_policy::{
    CacheVerdict, ClientResponse, HeaderEdits, OriginError, Policy, Request, RequestDecision,
    Response, SyntheticResponse,
};

pub struct HostileLoop;

fn spin_if(looping: bool) {
    if looping {
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

fn loops(req: &Request, hook: &str) -> bool {
    req.path_is_under("/loop") || req.path_is_under(&format!("/loop-{hook}"))
}

impl Policy for HostileLoop {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        spin_if(req.path_is_under("/loop"));
        current
    }

    fn on_response(req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        spin_if(loops(req, "response"));
        current
    }

    fn on_deliver(req: &Request, _resp: &ClientResponse) -> HeaderEdits {
        spin_if(loops(req, "deliver"));
        HeaderEdits::new().set("x-hostile-loop", "finished")
    }

    fn on_error(
        req: &Request,
        _error: &OriginError,
        current: Option<SyntheticResponse>,
    ) -> Option<SyntheticResponse> {
        spin_if(loops(req, "error"));
        current
    }
}

caje_policy::export!(HostileLoop);
