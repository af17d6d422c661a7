//! The decisions a policy returns: what to do with a request, and whether and how long to
//! cache a response. Builders take and return `self`, so a hook reads as one expression.

use std::time::Duration;

/// The decision of [`Policy::on_request`](crate::Policy::on_request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDecision {
    /// The configured origin to fetch from, by name (an unknown name is an invalid decision).
    pub origin: String,
    /// Lookup, pass or respond.
    pub action: Action,
    /// Extra cache-key components, in order (at most 16, each at most 1024 bytes).
    pub cache_key: Vec<String>,
    /// Edits of the request sent to the origin, applied in order.
    pub origin_header_edits: Vec<HeaderEdit>,
}

/// What happens to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Serve from the cache when fresh, else fetch from the origin (and maybe store).
    Lookup,
    /// Bypass the cache: always fetch from the origin, never store.
    Pass,
    /// Answer directly, without cache or origin.
    Respond(SyntheticResponse),
}

/// A response made by the policy. Status 200..=599, body at most 64 KiB; the host sets
/// `content-length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticResponse {
    /// The status code.
    pub status: u16,
    /// Header fields (lower-case names; no hop-by-hop or framing headers).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

/// An edit of a header of the origin request: `(name, value)` pairs, as they cross to the host.
/// Hop-by-hop and framing headers (`connection`, `te`, `transfer-encoding`, `content-length`,
/// `host`, ...) and values with control bytes are invalid decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Replace every value of the header with this one.
    Set((String, Vec<u8>)),
    /// Add a value after the existing ones.
    Append((String, Vec<u8>)),
    /// Remove every value of the header.
    Remove(String),
}

impl RequestDecision {
    /// A decision to look the request up in the cache, fetching from `origin` on a miss.
    pub fn new(origin: impl Into<String>) -> Self {
        RequestDecision {
            origin: origin.into(),
            action: Action::Lookup,
            cache_key: Vec::new(),
            origin_header_edits: Vec::new(),
        }
    }

    /// Fetch from the named origin instead.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// Serve from the cache when possible.
    pub fn lookup(mut self) -> Self {
        self.action = Action::Lookup;
        self
    }

    /// Bypass the cache.
    pub fn pass(mut self) -> Self {
        self.action = Action::Pass;
        self
    }

    /// Answer with `response` instead of the cache or the origin.
    pub fn respond(mut self, response: SyntheticResponse) -> Self {
        self.action = Action::Respond(response);
        self
    }

    /// Adds a component to the cache key (e.g. a device class), so variants are cached apart.
    pub fn with_cache_key(mut self, component: impl Into<String>) -> Self {
        self.cache_key.push(component.into());
        self
    }

    /// Sets header `name` of the origin request to `value`, replacing existing values.
    pub fn set_origin_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let edit = HeaderEdit::Set((name.to_owned(), value.as_ref().to_vec()));
        self.origin_header_edits.push(edit);
        self
    }

    /// Appends `value` to header `name` of the origin request.
    pub fn append_origin_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let edit = HeaderEdit::Append((name.to_owned(), value.as_ref().to_vec()));
        self.origin_header_edits.push(edit);
        self
    }

    /// Removes header `name` from the origin request.
    pub fn remove_origin_header(mut self, name: &str) -> Self {
        self.origin_header_edits
            .push(HeaderEdit::Remove(name.to_owned()));
        self
    }

    /// Whether the action is [`Action::Pass`].
    pub fn is_pass(&self) -> bool {
        self.action == Action::Pass
    }
}

impl SyntheticResponse {
    /// A response with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        SyntheticResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
}

/// The decision of [`Policy::on_response`](crate::Policy::on_response). The host passes its
/// RFC 9111 defaults; override only what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheVerdict {
    /// Whether to store the response.
    pub store: bool,
    /// How long the stored response is fresh.
    pub ttl: Duration,
    /// How long after expiry a stale copy may be served while revalidating in the background.
    pub stale_while_revalidate: Duration,
    /// How long after expiry a stale copy may be served when the origin fails.
    pub stale_if_error: Duration,
    /// Tags for purging by tag (at most 64, each 1..=128 printable ASCII bytes without spaces
    /// or commas).
    pub tags: Vec<String>,
    /// Keep `Set-Cookie` in the stored response (never stored by default).
    pub keep_set_cookie: bool,
}

impl CacheVerdict {
    /// A verdict to store (or not) for `ttl`, without stale windows, tags or cookies.
    pub fn new(store: bool, ttl: Duration) -> Self {
        CacheVerdict {
            store,
            ttl,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            tags: Vec::new(),
            keep_set_cookie: false,
        }
    }

    /// Store the response, fresh for `ttl`.
    pub fn store_for(mut self, ttl: Duration) -> Self {
        self.store = true;
        self.ttl = ttl;
        self
    }

    /// Do not store the response.
    pub fn no_store(mut self) -> Self {
        self.store = false;
        self
    }

    /// Limits the freshness lifetime to at most `max`.
    pub fn cap_ttl(mut self, max: Duration) -> Self {
        self.ttl = self.ttl.min(max);
        self
    }

    /// Sets the stale-while-revalidate window.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = window;
        self
    }

    /// Sets the stale-if-error window.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = window;
        self
    }

    /// Adds a purge tag (ignored if already present).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// Keeps `Set-Cookie` in the stored response.
    pub fn keep_set_cookie(mut self) -> Self {
        self.keep_set_cookie = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_decision_builders() {
        let decision = RequestDecision::new("default")
            .with_origin("api")
            .pass()
            .with_cache_key("mobile")
            .set_origin_header("x-env", "prod")
            .append_origin_header("x-trace", [0x61, 0x62])
            .remove_origin_header("cookie");
        assert_eq!(decision.origin, "api");
        assert!(decision.is_pass());
        assert_eq!(decision.cache_key, ["mobile"]);
        assert_eq!(
            decision.origin_header_edits,
            [
                HeaderEdit::Set(("x-env".into(), b"prod".to_vec())),
                HeaderEdit::Append(("x-trace".into(), b"ab".to_vec())),
                HeaderEdit::Remove("cookie".into()),
            ]
        );
        assert_eq!(decision.lookup().action, Action::Lookup);
    }

    #[test]
    fn synthetic_responses() {
        let decision = RequestDecision::new("default")
            .respond(SyntheticResponse::new(403, "no").with_header("content-type", "text/plain"));
        let Action::Respond(response) = decision.action else {
            panic!("expected a synthetic response, got {:?}", decision.action);
        };
        assert_eq!(response.status, 403);
        assert_eq!(response.body, b"no");
        assert_eq!(
            response.headers,
            [("content-type".to_owned(), b"text/plain".to_vec())]
        );
    }

    #[test]
    fn cache_verdict_builders() {
        let minute = Duration::from_secs(60);
        let verdict = CacheVerdict::new(false, Duration::ZERO)
            .store_for(10 * minute)
            .cap_ttl(minute)
            .stale_while_revalidate(2 * minute)
            .stale_if_error(3 * minute)
            .with_tag("a")
            .with_tag("a")
            .with_tag("b")
            .keep_set_cookie();
        assert!(verdict.store);
        assert_eq!(verdict.ttl, minute);
        assert_eq!(verdict.stale_while_revalidate, 2 * minute);
        assert_eq!(verdict.stale_if_error, 3 * minute);
        assert_eq!(verdict.tags, ["a", "b"]);
        assert!(verdict.keep_set_cookie);
        assert!(!verdict.no_store().store);
        assert_eq!(
            CacheVerdict::new(true, minute).cap_ttl(10 * minute).ttl,
            minute
        );
    }
}
