//! Requests carrying credentials (`Cookie` or `Authorization`) bypass the cache, unless the
//! path is public (`/static/`, `/assets/`, `/public/`): those are cached, and the credentials
//! are stripped from the origin request so the stored copy cannot be personalized.

use caje_policy::{Policy, Request, RequestDecision};

pub const PUBLIC_PREFIXES: [&str; 3] = ["/static", "/assets", "/public"];

pub struct BypassPrivate;

impl Policy for BypassPrivate {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        let public = PUBLIC_PREFIXES
            .iter()
            .any(|prefix| req.path_is_under(prefix));
        let credentials = req.has_header("cookie") || req.has_header("authorization");
        match (credentials, public) {
            (false, _) => current,
            (true, false) => current.pass(),
            (true, true) => current
                .remove_origin_header("cookie")
                .remove_origin_header("authorization"),
        }
    }
}

caje_policy::export!(BypassPrivate);

#[cfg(test)]
mod tests {
    use caje_policy::{Action, HeaderEdit};

    use super::*;

    fn decide(req: Request<'static>) -> RequestDecision {
        BypassPrivate::on_request(&req, RequestDecision::new("default"))
    }

    #[test]
    fn credentials_bypass_the_cache() {
        let cookie = Request::new("GET", "https://h/account").with_header("Cookie", "session=1");
        assert!(decide(cookie).is_pass());
        let bearer = Request::new("GET", "https://h/feed").with_header("authorization", "Bearer x");
        assert!(decide(bearer).is_pass());
    }

    #[test]
    fn anonymous_requests_are_untouched() {
        let decision = decide(Request::new("GET", "https://h/account"));
        assert_eq!(decision, RequestDecision::new("default"));
    }

    #[test]
    fn public_paths_are_cached_without_credentials() {
        let req = Request::new("GET", "https://h/static/logo.png").with_header("cookie", "a=b");
        let decision = decide(req);
        assert_eq!(decision.action, Action::Lookup);
        assert_eq!(
            decision.origin_header_edits,
            [
                HeaderEdit::Remove("cookie".into()),
                HeaderEdit::Remove("authorization".into())
            ]
        );
        let lookalike = Request::new("GET", "https://h/statically").with_header("cookie", "a=b");
        assert!(decide(lookalike).is_pass());
    }
}
