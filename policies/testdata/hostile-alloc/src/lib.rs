//! Allocates (and touches) 1 GiB in on-request for paths under `/alloc`: the host's memory
//! cap must stop it and keep serving.

use caje_policy::{Policy, Request, RequestDecision};

pub struct HostileAlloc;

impl Policy for HostileAlloc {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        if req.path_is_under("/alloc") {
            let huge = vec![1u8; 1 << 30];
            std::hint::black_box(&huge);
        }
        current
    }
}

caje_policy::export!(HostileAlloc);
