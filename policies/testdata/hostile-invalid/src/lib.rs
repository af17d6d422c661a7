//! Returns an invalid decision chosen by the path, for the host's validation:
//! `/crlf` a header value with CR LF, `/status` a synthetic 99, `/big-body` a synthetic body
//! over 64 KiB, `/cache-key` 17 cache-key components, `/framing` a synthetic response with its
//! own `content-length` and `transfer-encoding`, any other path a hop-by-hop header edit
//! (`connection`); on-response adds a tag with a space.

use caje_policy::{CacheVerdict, Policy, Request, RequestDecision, Response, SyntheticResponse};

pub struct HostileInvalid;

impl Policy for HostileInvalid {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        match req.path() {
            "/crlf" => current.set_origin_header("x-injected", "a\r\nb: c"),
            "/status" => current.respond(SyntheticResponse::new(99, "")),
            "/big-body" => current.respond(SyntheticResponse::new(200, vec![b'x'; 64 * 1024 + 1])),
            "/framing" => current.respond(
                SyntheticResponse::new(200, "0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
                    .with_header("content-length", "0")
                    .with_header("transfer-encoding", "chunked"),
            ),
            "/cache-key" => (0..17).fold(current, |decision, i| {
                decision.with_cache_key(i.to_string())
            }),
            _ => current.set_origin_header("connection", "close"),
        }
    }

    fn on_response(_req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        current.with_tag("has space")
    }
}

caje_policy::export!(HostileInvalid);
