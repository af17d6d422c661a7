//! The `Policy` trait authors implement, and the glue the `export!` macro uses to turn it
//! into the `caje:policy/hooks` exports (converting between WIT and SDK types, and telling the
//! host which hooks the policy implements).

use std::any::type_name;
use std::cell::Cell;
use std::sync::Once;
use std::time::Duration;

use crate::bindings::caje::policy::types as wit;
use crate::{
    CacheOutcome, CacheVerdict, ClientResponse, HeaderEdits, OriginError, OriginFailure, Request,
    RequestDecision, Response, SyntheticResponse,
};

/// A cache policy. Every method has an identity default, so implement only the hooks you need,
/// then export the type with [`export!`](crate::export). caje never calls a hook you leave to
/// its default, so it costs nothing.
///
/// The methods are associated functions (no `self`): the host may call them on a reused
/// instance, so statics persist between calls, and on a fresh one after a trap.
pub trait Policy {
    /// Called for every client request before the cache lookup, with the previous decision
    /// (the host's default or the previous module's): route it, bypass the cache, answer it,
    /// add cache-key components, edit the origin request's headers or normalise its URL.
    fn on_request(req: &Request<'_>, current: RequestDecision) -> RequestDecision {
        let _ = req;
        default_ran::<Self>(Hook::Request);
        current
    }

    /// Called for every response fetched from the origin, before it is stored, with the
    /// previous verdict (the host's RFC 9111 defaults or the previous module's): whether and
    /// how long to store it, and edits of the headers stored.
    fn on_response(req: &Request<'_>, resp: &Response<'_>, current: CacheVerdict) -> CacheVerdict {
        let _ = (req, resp);
        default_ran::<Self>(Hook::Response);
        current
    }

    /// Called for every response caje sends a client, hits included, with its headers as the
    /// modules before this one left them: returns edits of the headers the client gets
    /// (security headers, a browser `cache-control`, removing `server`).
    ///
    /// ```
    /// use caje_policy::{CacheOutcome, ClientResponse, HeaderEdits, Policy, Request};
    ///
    /// struct NoServer;
    /// impl Policy for NoServer {
    ///     fn on_deliver(_req: &Request, _resp: &ClientResponse) -> HeaderEdits {
    ///         HeaderEdits::new().remove("server").set("x-frame-options", "DENY")
    ///     }
    /// }
    ///
    /// let resp = ClientResponse::new(200, CacheOutcome::Hit).with_header("server", "nginx");
    /// let mut headers = vec![("server".to_owned(), b"nginx".to_vec())];
    /// NoServer::on_deliver(&Request::new("GET", "https://h/"), &resp).apply_to(&mut headers);
    /// assert_eq!(headers, [("x-frame-options".to_owned(), b"DENY".to_vec())]);
    /// ```
    fn on_deliver(req: &Request<'_>, resp: &ClientResponse<'_>) -> HeaderEdits {
        let _ = (req, resp);
        default_ran::<Self>(Hook::Deliver);
        HeaderEdits::new()
    }

    /// Called when the origin fails and caje has no stale copy to serve, with the previous
    /// module's response (`None` at first): returns the response to send instead (an error
    /// page), or `None` to leave caje's own answer (502, 504, or the origin's 5xx).
    ///
    /// ```
    /// use caje_policy::{OriginError, OriginFailure, Policy, Request, SyntheticResponse};
    ///
    /// struct SorryPage;
    /// impl Policy for SorryPage {
    ///     fn on_error(_req: &Request, error: &OriginError, _current: Option<SyntheticResponse>) -> Option<SyntheticResponse> {
    ///         Some(SyntheticResponse::new(error.status(), "<h1>Back soon</h1>")
    ///             .with_header("content-type", "text/html"))
    ///     }
    /// }
    ///
    /// let page = SorryPage::on_error(
    ///     &Request::new("GET", "https://h/"),
    ///     &OriginError::new("default", OriginFailure::Timeout),
    ///     None,
    /// );
    /// assert_eq!(page.unwrap().status, 504);
    /// ```
    fn on_error(
        req: &Request<'_>,
        error: &OriginError,
        current: Option<SyntheticResponse>,
    ) -> Option<SyntheticResponse> {
        let _ = (req, error);
        default_ran::<Self>(Hook::Error);
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
            fn implemented_hooks() -> $crate::__private::WitHookSet {
                $crate::__private::implemented_hooks::<$policy>()
            }

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

            fn on_deliver(
                req: &$crate::__private::HostRequest,
                resp: &$crate::__private::HostClientResponse,
            ) -> ::std::vec::Vec<$crate::HeaderEdit> {
                $crate::__private::on_deliver::<$policy>(req, resp)
            }

            fn on_error(
                req: &$crate::__private::HostRequest,
                error: $crate::OriginError,
                current: ::std::option::Option<$crate::SyntheticResponse>,
            ) -> ::std::option::Option<$crate::SyntheticResponse> {
                $crate::__private::on_error::<$policy>(req, error, current)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_policy!($policy with_types_in $crate::bindings);
    };
}

/// A hook, as the identity defaults report themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Request,
    Response,
    Deliver,
    Error,
}

thread_local! {
    /// The last identity default that ran: the policy type whose default it was, and the hook.
    static DEFAULT_RAN: Cell<Option<(&'static str, Hook)>> = const { Cell::new(None) };
}

fn default_ran<P: ?Sized>(hook: Hook) {
    DEFAULT_RAN.set(Some((type_name::<P>(), hook)));
}

/// Which hooks `P` implements: each hook is called once on a made-up request, and one that
/// runs `P`'s own identity default is not implemented. (A hook that delegates to another
/// type's default runs that type's default, so it still counts as implemented.)
#[doc(hidden)]
pub fn implemented_hooks<P: Policy>() -> wit::HookSet {
    report_panics_to_host();
    let req = Request::new("GET", "https://caje.invalid/");
    let implements = |hook: Hook, call: &dyn Fn()| {
        DEFAULT_RAN.set(None);
        call();
        DEFAULT_RAN.get() != Some((type_name::<P>(), hook))
    };
    wit::HookSet {
        on_request: implements(Hook::Request, &|| {
            P::on_request(&req, RequestDecision::new("default"));
        }),
        on_response: implements(Hook::Response, &|| {
            P::on_response(
                &req,
                &Response::new(200),
                CacheVerdict::new(true, Duration::ZERO),
            );
        }),
        on_deliver: implements(Hook::Deliver, &|| {
            P::on_deliver(&req, &ClientResponse::new(200, CacheOutcome::Miss));
        }),
        on_error: implements(Hook::Error, &|| {
            let error = OriginError::new("default", OriginFailure::Unreachable);
            P::on_error(&req, &error, None);
        }),
    }
}

/// Panics abort the instance (a trap) without printing (there is no stderr): hand the message
/// to the host first so its log says why.
fn report_panics_to_host() {
    // Natively (unit tests) there is no host to tell, and the test harness prints panics.
    if !cfg!(target_arch = "wasm32") {
        return;
    }
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

#[doc(hidden)]
pub fn on_deliver<P: Policy>(
    req: &wit::Request,
    resp: &wit::ClientResponse,
) -> Vec<crate::HeaderEdit> {
    report_panics_to_host();
    P::on_deliver(&Request::from_host(req), &ClientResponse::from_host(resp)).into()
}

#[doc(hidden)]
pub fn on_error<P: Policy>(
    req: &wit::Request,
    error: OriginError,
    current: Option<SyntheticResponse>,
) -> Option<SyntheticResponse> {
    report_panics_to_host();
    P::on_error(&Request::from_host(req), &error, current)
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
            stored_header_edits: verdict.stored_header_edits,
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
            stored_header_edits: verdict.stored_header_edits,
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

    #[test]
    fn default_deliver_and_error_hooks_change_nothing() {
        let req = Request::new("GET", "https://h/x");
        let resp = ClientResponse::new(200, CacheOutcome::Hit);
        assert!(Defaults::on_deliver(&req, &resp).is_empty());
        let error = OriginError::new("default", OriginFailure::Timeout);
        let page = SyntheticResponse::new(503, "later");
        assert_eq!(
            Defaults::on_error(&req, &error, Some(page.clone())),
            Some(page)
        );
        assert_eq!(Defaults::on_error(&req, &error, None), None);
    }

    struct DeliverOnly;
    impl Policy for DeliverOnly {
        fn on_deliver(_req: &Request, _resp: &ClientResponse) -> HeaderEdits {
            HeaderEdits::new().remove("server")
        }
    }

    /// Implements on-error by handing it to another policy's default on some requests.
    struct Delegating;
    impl Policy for Delegating {
        fn on_error(
            req: &Request,
            error: &OriginError,
            current: Option<SyntheticResponse>,
        ) -> Option<SyntheticResponse> {
            if req.path() == "/" {
                Defaults::on_error(req, error, current)
            } else {
                Some(SyntheticResponse::new(503, ""))
            }
        }
    }

    fn hooks(set: wit::HookSet) -> [bool; 4] {
        [
            set.on_request,
            set.on_response,
            set.on_deliver,
            set.on_error,
        ]
    }

    #[test]
    fn only_hooks_that_are_not_the_default_are_implemented() {
        assert_eq!(hooks(implemented_hooks::<Defaults>()), [false; 4]);
        assert_eq!(
            hooks(implemented_hooks::<DeliverOnly>()),
            [false, false, true, false]
        );
        assert_eq!(
            hooks(implemented_hooks::<Delegating>()),
            [false, false, false, true],
            "another type's default run from an implementation is not this type's default"
        );
    }
}
