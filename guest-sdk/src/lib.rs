//! Write caje cache policies in Rust.
//!
//! A policy is a WebAssembly component that caje calls on every request (to route it, bypass
//! the cache or answer it directly) and on every origin response (to decide whether and how
//! long to cache it). Implement [`Policy`] — every hook defaults to "keep the current
//! decision" — and [`export!`] the type:
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
//! - **Instances are reused** between calls (and between requests): statics and thread-locals
//!   persist. Do not rely on them for correctness — a trap discards the instance and a new
//!   one starts from scratch, and several instances of a module run side by side.
//! - **`on_request` decisions are memoized**: caje records what a call read (method, URL
//!   parts, the headers it looked up) and answers a later request that gives the same values
//!   to those reads, with the same current decision, without calling the module. So decide
//!   only from what you read — no state carried between calls. A module that cannot is listed
//!   in caje's config with `memoize = false`. Reading all headers at once disables the memo
//!   for that call. `on_response` is always called.
//! - Each call has a deterministic CPU budget (fuel) and a wall-clock backstop; memory is
//!   capped per instance (16 MiB by default). Exceeding either is a trap.
//! - There is no WASI: clocks, randomness, files, sockets, `println!` trap if called. A panic
//!   is a trap; the SDK hands its message to the host, which logs it with the module's name.
//! - Header lookups on [`Request`] and [`Response`] ask the host each time; the method and
//!   URL parts are fetched once. Look up only what you need.
//! - An invalid decision (unknown origin, hop-by-hop or malformed header edit, status outside
//!   200..=599, synthetic body over 64 KiB, too many or malformed cache-key components or
//!   tags) is treated like a trap: depending on the module's configured failure mode the
//!   module is skipped for that request (`open`) or the request is refused with 503
//!   (`closed`).

extern crate self as caje_policy;

mod decision;
mod export;
mod request;

pub use decision::{Action, CacheVerdict, HeaderEdit, RequestDecision, SyntheticResponse};
pub use export::Policy;
pub use request::{HeaderValue, Request, Response};

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
        // The request decision crosses the boundary as the SDK's own types (same shape), so a
        // hook's decision is handed over without conversion.
        with: {
            "caje:policy/types@0.1.0/header-edit": crate::HeaderEdit,
            "caje:policy/types@0.1.0/synthetic-response": crate::SyntheticResponse,
            "caje:policy/types@0.1.0/request-action": crate::Action,
            "caje:policy/types@0.1.0/request-decision": crate::RequestDecision,
        },
    });
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::caje::policy::types::{
        CacheVerdict as WitCacheVerdict, Request as HostRequest, ResponseHead as HostResponse,
    };
    pub use crate::bindings::exports::caje::policy::hooks::Guest;
    pub use crate::export::{on_request, on_response};
    pub use wit_bindgen;
}
