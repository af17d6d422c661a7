//! Write caje cache policies in Rust.
//!
//! A policy is a WebAssembly component that caje calls on every request (to route it, bypass
//! the cache, answer it directly or normalise its URL), on every origin response (to decide
//! whether and how long to cache it, and edit the headers stored), on every response it sends
//! a client (to edit the headers the client gets) and when the origin fails (to answer with an
//! error page of its own). Implement [`Policy`] — every hook defaults to "keep the current
//! decision", and caje never calls a hook left to its default — and [`export!`] the type:
//!
//! ```
//! use std::time::Duration;
//! use caje_policy::{CacheVerdict, Policy, Request, RequestDecision, Response};
//!
//! /// Sends `/api/*` to the `api` origin and caches its answers for at most a minute.
//! struct ApiPolicy;
//!
//! impl Policy for ApiPolicy {
//!     fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
//!         if req.path_is_under("/api") {
//!             current.with_origin("api")
//!         } else {
//!             current
//!         }
//!     }
//!
//!     fn on_response(req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
//!         if req.path_is_under("/api") {
//!             current.cap_ttl(Duration::from_secs(60)).with_tag("api")
//!         } else {
//!             current
//!         }
//!     }
//! }
//!
//! caje_policy::export!(ApiPolicy);
//!
//! // The same code runs natively, so a plain `cargo test` checks the decisions:
//! let req = Request::new("GET", "https://example.com/api/users").with_header("accept", "*/*");
//! assert_eq!(ApiPolicy::on_request(&req, RequestDecision::new("default")).origin, "api");
//! let verdict = ApiPolicy::on_response(
//!     &req,
//!     &Response::new(200).with_header("cache-control", "max-age=3600"),
//!     CacheVerdict::new(true, Duration::from_secs(3600)),
//! );
//! assert_eq!(verdict.ttl, Duration::from_secs(60));
//! assert_eq!(verdict.tags, ["api"]);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2` and drop the `.wasm` into caje's policies
//! directory (with a rename, e.g. `mv policy.wasm.tmp 20-api.wasm`, so caje never sees a
//! half-written file):
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! caje-policy = { path = "../guest-sdk" }
//! ```
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! caje policy check target/wasm32-wasip2/release/api_policy.wasm
//! caje policy test target/wasm32-wasip2/release/api_policy.wasm --request 'GET https://example.com/api/x'
//! ```
//!
//! # How caje runs a policy
//!
//! - Modules form a chain in file-name order; each hook gets the previous module's decision.
//!   A module after one that normalised the URL sees the request with the new path and query;
//!   `on_deliver` sees the client's headers as the modules before it edited them.
//! - **Instances are reused** between calls (and between requests): statics and thread-locals
//!   persist. Do not rely on them for correctness — a trap discards the instance and a new
//!   one starts from scratch, and several instances of a module run side by side.
//! - **`on_request` and `on_deliver` decisions are memoized**: caje records what a call read
//!   (method, URL parts, the headers it looked up; for `on_deliver` also the response's
//!   status, outcome, origin and headers) and answers a later call that gives the same values
//!   to those reads, with the same current decision, without calling the module: a hit on the
//!   same stored response costs a table lookup. So decide only from what you read — no state
//!   carried between calls. A module that cannot is listed in caje's config with
//!   `memoize = false`. Reading all headers at once disables the memo for that call.
//!   `on_response` (fills only) and `on_error` are always called.
//! - Each call has a deterministic CPU budget (fuel) and a wall-clock backstop; memory is
//!   capped per instance (16 MiB by default). Exceeding either is a trap.
//! - There is no WASI: clocks, randomness, files, sockets, `println!` trap if called. A panic
//!   is a trap; the SDK hands its message to the host, which logs it with the module's name.
//! - Header lookups on [`Request`], [`Response`] and [`ClientResponse`] ask the host each time;
//!   the method, URL parts, status and outcome are fetched once. Look up only what you need.
//! - An invalid decision (unknown origin, hop-by-hop or malformed header edit, more than 64
//!   edits in a list, a URL that is not a path and query, status outside 200..=599,
//!   synthetic body over 64 KiB, too many or malformed cache-key components or tags) is
//!   treated like a trap: depending on the module's configured failure mode the
//!   module is skipped for that request (`open`) or the request is refused with 503
//!   (`closed`).

extern crate self as caje_policy;

mod decision;
mod error;
mod export;
mod request;
mod url;

pub use decision::{
    Action, CacheVerdict, HeaderEdit, HeaderEdits, RequestDecision, SyntheticResponse,
};
pub use error::{OriginError, OriginFailure};
pub use export::Policy;
pub use request::{CacheOutcome, ClientResponse, HeaderValue, Request, Response};
pub use url::PathAndQuery;

/// Bindings generated from `wit/policy.wit`; used by [`export!`], not by authors.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy",
        default_bindings_module: "caje_policy::bindings",
        runtime_path: "caje_policy::__private::wit_bindgen::rt",
        // Decisions and errors cross the boundary as the SDK's own types (same shape), so they
        // are handed over without conversion.
        with: {
            "caje:policy/types@0.2.0/header-edit": crate::HeaderEdit,
            "caje:policy/types@0.2.0/synthetic-response": crate::SyntheticResponse,
            "caje:policy/types@0.2.0/request-action": crate::Action,
            "caje:policy/types@0.2.0/path-and-query": crate::PathAndQuery,
            "caje:policy/types@0.2.0/request-decision": crate::RequestDecision,
            "caje:policy/types@0.2.0/origin-failure": crate::OriginFailure,
            "caje:policy/types@0.2.0/origin-error": crate::OriginError,
        },
    });
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::caje::policy::types::{
        CacheVerdict as WitCacheVerdict, ClientResponse as HostClientResponse,
        HookSet as WitHookSet, Request as HostRequest, ResponseHead as HostResponse,
    };
    pub use crate::bindings::exports::caje::policy::hooks::Guest;
    pub use crate::export::{implemented_hooks, on_deliver, on_error, on_request, on_response};
    pub use wit_bindgen;
}
