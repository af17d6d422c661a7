//! Returns an invalid decision chosen by the path, for the host's validation. on-request:
//! `/crlf` a header value with CR LF, `/status` a synthetic 99, `/big-body` a synthetic body
//! over 64 KiB, `/cache-key` 17 cache-key components, `/framing` a synthetic response with its
//! own `content-length` and `transfer-encoding`, `/url` a normalised URL whose path starts with `//`,
//! `/deliver...` and `/error...` nothing (valid), any other path a hop-by-hop header edit
//! (`connection`). on-response: a stored-header edit of `transfer-encoding` on `/stored`, else a
//! tag with a space. on-deliver: a `content-length` edit (`/deliver-framing`), a value with CR LF
//! (`/deliver-crlf`), 65 edits (`/deliver-many`). on-error: a synthetic status 99.

use caje_policy::{
    CacheVerdict, ClientResponse, HeaderEdits, OriginError, PathAndQuery, Policy, Request,
    RequestDecision, Response, SyntheticResponse,
};

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
            "/url" => current.with_url(PathAndQuery::new("//evil.test/x", None)),
            path if path.starts_with("/deliver") || path.starts_with("/error") => current,
            _ => current.set_origin_header("connection", "close"),
        }
    }

    fn on_response(req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        if req.path() == "/stored" {
            current.set_stored_header("transfer-encoding", "chunked")
        } else {
            current.with_tag("has space")
        }
    }

    fn on_deliver(req: &Request, _resp: &ClientResponse) -> HeaderEdits {
        match req.path() {
            "/deliver-framing" => HeaderEdits::new().set("content-length", "0"),
            "/deliver-crlf" => HeaderEdits::new().set("x-injected", "a\r\nb: c"),
            "/deliver-many" => (0..65).fold(HeaderEdits::new(), |edits, i| {
                edits.set(&format!("x-many-{i}"), "1")
            }),
            _ => HeaderEdits::new(),
        }
    }

    fn on_error(
        _req: &Request,
        _error: &OriginError,
        _current: Option<SyntheticResponse>,
    ) -> Option<SyntheticResponse> {
        Some(SyntheticResponse::new(99, "oops"))
    }
}

caje_policy::export!(HostileInvalid);
