//! The `Policy` trait authors implement, and the glue the `export!` macro uses to turn it
//! into the `caje:policy/hooks` exports (converting between WIT and SDK types).

use std::sync::Once;
use std::time::Duration;

use crate::bindings::caje::policy::types as wit;
use crate::{CacheVerdict, Request, RequestDecision, Response};

/// A cache policy. Every method has an identity default, so implement only the hooks you need,
/// then export the type with [`export!`](crate::export).
///
/// The methods are associated functions (no `self`): the host may call them on a reused
/// instance, so statics persist between calls, and on a fresh one after a trap.
pub trait Policy {
    /// Called for every client request before the cache lookup, with the previous decision
    /// (the host's default or the previous module's).
    fn on_request(req: &Request<'_>, current: RequestDecision) -> RequestDecision {
        let _ = req;
        current
    }

    /// Called for every response fetched from the origin, before it is stored, with the
    /// previous verdict (the host's RFC 9111 defaults or the previous module's).
    fn on_response(req: &Request<'_>, resp: &Response<'_>, current: CacheVerdict) -> CacheVerdict {
        let _ = (req, resp);
        current
    }
}

/// Exports a [`Policy`] implementation as this component's `caje:policy/hooks`.
///
/// ```
/// struct KeepDefaults;
/// impl caje_policy::Policy for KeepDefaults {}
/// caje_policy::export!(KeepDefaults);
/// ```
///
/// On native targets (unit tests) the macro only implements the glue trait; the wasm exports
/// exist only in `wasm32` builds.
#[macro_export]
macro_rules! export {
    ($policy:ident) => {
        impl $crate::__private::Guest for $policy {
            fn on_request(
                req: &$crate::__private::HostRequest,
                current: $crate::RequestDecision,
            ) -> $crate::RequestDecision {
                $crate::__private::on_request::<$policy>(req, current)
            }

            fn on_response(
                req: &$crate::__private::HostRequest,
                resp: &$crate::__private::HostResponse,
                current: $crate::__private::WitCacheVerdict,
            ) -> $crate::__private::WitCacheVerdict {
                $crate::__private::on_response::<$policy>(req, resp, current)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_policy!($policy with_types_in $crate::bindings);
    };
}

/// Panics abort the instance (a trap) without printing (there is no stderr): hand the message
/// to the host first so its log says why.
fn report_panics_to_host() {
    static INSTALL: Once = Once::new();
    INSTALL
        .call_once(|| std::panic::set_hook(Box::new(|info| wit::report_panic(&info.to_string()))));
}

#[doc(hidden)]
pub fn on_request<P: Policy>(req: &wit::Request, current: RequestDecision) -> RequestDecision {
    report_panics_to_host();
    P::on_request(&Request::from_host(req), current)
}

#[doc(hidden)]
pub fn on_response<P: Policy>(
    req: &wit::Request,
    resp: &wit::ResponseHead,
    current: wit::CacheVerdict,
) -> wit::CacheVerdict {
    report_panics_to_host();
    let verdict = P::on_response(
        &Request::from_host(req),
        &Response::from_host(resp),
        current.into(),
    );
    verdict.into()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<wit::CacheVerdict> for CacheVerdict {
    fn from(verdict: wit::CacheVerdict) -> Self {
        CacheVerdict {
            store: verdict.store,
            ttl: Duration::from_millis(verdict.ttl_ms),
            stale_while_revalidate: Duration::from_millis(verdict.stale_while_revalidate_ms),
            stale_if_error: Duration::from_millis(verdict.stale_if_error_ms),
            tags: verdict.tags,
            keep_set_cookie: verdict.keep_set_cookie,
        }
    }
}

impl From<CacheVerdict> for wit::CacheVerdict {
    fn from(verdict: CacheVerdict) -> Self {
        wit::CacheVerdict {
            store: verdict.store,
            ttl_ms: millis(verdict.ttl),
            stale_while_revalidate_ms: millis(verdict.stale_while_revalidate),
            stale_if_error_ms: millis(verdict.stale_if_error),
            tags: verdict.tags,
            keep_set_cookie: verdict.keep_set_cookie,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_cross_as_milliseconds_and_saturate() {
        let verdict = CacheVerdict::new(true, Duration::from_millis(1500))
            .stale_while_revalidate(Duration::from_secs(2))
            .stale_if_error(Duration::MAX)
            .with_tag("t")
            .keep_set_cookie();
        let wire = wit::CacheVerdict::from(verdict.clone());
        assert_eq!((wire.ttl_ms, wire.stale_while_revalidate_ms), (1500, 2000));
        assert_eq!(wire.stale_if_error_ms, u64::MAX);
        let back = CacheVerdict::from(wire);
        assert_eq!(back.ttl, verdict.ttl);
        assert_eq!(back.tags, ["t"]);
        assert!(back.keep_set_cookie);
    }

    struct Defaults;
    impl Policy for Defaults {}

    #[test]
    fn default_hooks_return_the_current_decision() {
        let req = Request::new("GET", "https://h/x");
        let decision = RequestDecision::new("default").with_cache_key("k");
        assert_eq!(Defaults::on_request(&req, decision.clone()), decision);
        let verdict = CacheVerdict::new(true, Duration::from_secs(60)).with_tag("t");
        assert_eq!(
            Defaults::on_response(&req, &Response::new(200), verdict.clone()),
            verdict
        );
    }
}
