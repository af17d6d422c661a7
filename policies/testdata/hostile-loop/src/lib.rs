//! Spins forever in on-request for paths under `/loop`: the host must stop it (fuel or epoch
//! deadline) and keep serving.

use caje_policy::{Policy, Request, RequestDecision};

pub struct HostileLoop;

impl Policy for HostileLoop {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        if req.path_is_under("/loop") {
            let mut spins = 0u64;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        current
    }
}

caje_policy::export!(HostileLoop);
