//! The decisions a policy returns: what to do with a request, whether and how long to cache a
//! response, and edits of headers. Builders take and return `self`, so a hook reads as one
//! expression.

use std::time::Duration;

use crate::{PathAndQuery, Request};

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
    /// The path and query caje keys the request on and asks the origin for, when a policy
    /// normalised them (see [`RequestDecision::normalize_url`]); `None` keeps the request's.
    pub url: Option<PathAndQuery>,
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

/// An edit of a header: `(name, value)` pairs, as they cross to the host. Hop-by-hop and
/// framing headers (`connection`, `te`, `transfer-encoding`, `content-length`, `host`, ...),
/// values with control bytes or over 16 KiB, and more than 64 edits in one list are invalid
/// decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Replace every value of the header with this one.
    Set((String, Vec<u8>)),
    /// Add a value after the existing ones.
    Append((String, Vec<u8>)),
    /// Remove every value of the header.
    Remove(String),
}

impl HeaderEdit {
    /// Replace every value of header `name` with `value`.
    pub fn set(name: &str, value: impl AsRef<[u8]>) -> Self {
        HeaderEdit::Set((name.to_owned(), value.as_ref().to_vec()))
    }

    /// Add `value` after the existing values of header `name`.
    pub fn append(name: &str, value: impl AsRef<[u8]>) -> Self {
        HeaderEdit::Append((name.to_owned(), value.as_ref().to_vec()))
    }

    /// Remove every value of header `name`.
    pub fn remove(name: &str) -> Self {
        HeaderEdit::Remove(name.to_owned())
    }
}

/// Edits of the headers a client gets, returned by [`Policy::on_deliver`](crate::Policy::on_deliver)
/// and applied in order.
///
/// ```
/// use caje_policy::HeaderEdits;
///
/// let edits = HeaderEdits::new()
///     .set("x-content-type-options", "nosniff")
///     .remove("server");
/// assert_eq!(edits.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits(Vec<HeaderEdit>);

impl HeaderEdits {
    /// No edits: the client gets the headers as they are.
    pub fn new() -> Self {
        HeaderEdits(Vec::new())
    }

    /// Sets header `name` to `value`, replacing its values.
    pub fn set(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.0.push(HeaderEdit::set(name, value));
        self
    }

    /// Appends `value` to header `name`.
    pub fn append(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.0.push(HeaderEdit::append(name, value));
        self
    }

    /// Removes header `name`.
    pub fn remove(mut self, name: &str) -> Self {
        self.0.push(HeaderEdit::remove(name));
        self
    }

    /// The edits, in order.
    pub fn as_slice(&self) -> &[HeaderEdit] {
        &self.0
    }

    /// How many edits there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies the edits to `headers` as the host does (names compared without case), so a
    /// unit test can check what the client gets.
    pub fn apply_to(&self, headers: &mut Vec<(String, Vec<u8>)>) {
        for edit in &self.0 {
            match edit {
                HeaderEdit::Set((name, value)) => {
                    headers.retain(|(field, _)| !field.eq_ignore_ascii_case(name));
                    headers.push((name.to_ascii_lowercase(), value.clone()));
                }
                HeaderEdit::Append((name, value)) => {
                    headers.push((name.to_ascii_lowercase(), value.clone()));
                }
                HeaderEdit::Remove(name) => {
                    headers.retain(|(field, _)| !field.eq_ignore_ascii_case(name));
                }
            }
        }
    }
}

impl From<HeaderEdits> for Vec<HeaderEdit> {
    fn from(edits: HeaderEdits) -> Self {
        edits.0
    }
}

impl RequestDecision {
    /// A decision to look the request up in the cache, fetching from `origin` on a miss.
    pub fn new(origin: impl Into<String>) -> Self {
        RequestDecision {
            origin: origin.into(),
            action: Action::Lookup,
            cache_key: Vec::new(),
            origin_header_edits: Vec::new(),
            url: None,
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
        self.origin_header_edits.push(HeaderEdit::set(name, value));
        self
    }

    /// Appends `value` to header `name` of the origin request.
    pub fn append_origin_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.origin_header_edits
            .push(HeaderEdit::append(name, value));
        self
    }

    /// Removes header `name` from the origin request.
    pub fn remove_origin_header(mut self, name: &str) -> Self {
        self.origin_header_edits.push(HeaderEdit::remove(name));
        self
    }

    /// Keys the request on `url` and asks the origin for it, instead of the request's path and
    /// query. The modules after this one see the request with this path and query.
    pub fn with_url(mut self, url: PathAndQuery) -> Self {
        self.url = Some(url);
        self
    }

    /// Normalises the URL caje keys on and fetches: `normalize` gets the request's path and
    /// query and returns the ones to use; the URL is replaced only if they differ.
    ///
    /// ```
    /// use caje_policy::{Request, RequestDecision};
    ///
    /// let req = Request::new("GET", "https://example.com/Shop?utm_source=mail&b=2&a=1");
    /// let decision = RequestDecision::new("default")
    ///     .normalize_url(&req, |url| url.without_params_prefixed("utm_").sorted_params().lowercase_path());
    /// assert_eq!(decision.url.unwrap().to_string(), "/shop?a=1&b=2");
    /// ```
    pub fn normalize_url(
        self,
        req: &Request<'_>,
        normalize: impl FnOnce(PathAndQuery) -> PathAndQuery,
    ) -> Self {
        let given = PathAndQuery::of(req);
        let normalized = normalize(given.clone());
        if normalized == given {
            self
        } else {
            self.with_url(normalized)
        }
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
    /// Edits of the origin response's headers, applied before it is stored and sent: the
    /// client of this fetch and every later hit get the edited headers.
    pub stored_header_edits: Vec<HeaderEdit>,
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
            stored_header_edits: Vec::new(),
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

    /// Sets header `name` of the stored (and sent) response to `value`, e.g. to fix a wrong
    /// `content-type`.
    pub fn set_stored_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.stored_header_edits.push(HeaderEdit::set(name, value));
        self
    }

    /// Appends `value` to header `name` of the stored (and sent) response.
    pub fn append_stored_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.stored_header_edits
            .push(HeaderEdit::append(name, value));
        self
    }

    /// Removes header `name` from the stored (and sent) response, e.g. a `set-cookie`.
    pub fn remove_stored_header(mut self, name: &str) -> Self {
        self.stored_header_edits.push(HeaderEdit::remove(name));
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

    #[test]
    fn stored_header_edits_keep_their_order() {
        let verdict = CacheVerdict::new(true, Duration::from_secs(1))
            .remove_stored_header("set-cookie")
            .set_stored_header("content-type", "text/css")
            .append_stored_header("x-note", [0xff]);
        assert_eq!(
            verdict.stored_header_edits,
            [
                HeaderEdit::remove("set-cookie"),
                HeaderEdit::set("content-type", "text/css"),
                HeaderEdit::Append(("x-note".into(), vec![0xff])),
            ]
        );
    }

    #[test]
    fn header_edits_apply_like_the_host() {
        let mut headers = vec![
            ("Server".to_owned(), b"nginx".to_vec()),
            ("x-a".to_owned(), b"1".to_vec()),
            ("X-A".to_owned(), b"2".to_vec()),
        ];
        HeaderEdits::new()
            .remove("SERVER")
            .set("x-a", "3")
            .append("X-B", "4")
            .apply_to(&mut headers);
        assert_eq!(
            headers,
            [
                ("x-a".to_owned(), b"3".to_vec()),
                ("x-b".to_owned(), b"4".to_vec())
            ]
        );
        let edits: Vec<HeaderEdit> = HeaderEdits::new().remove("server").into();
        assert_eq!(edits, [HeaderEdit::remove("server")]);
        assert!(HeaderEdits::new().is_empty());
    }

    #[test]
    fn the_url_is_replaced_only_when_normalising_changes_it() {
        let clean = Request::new("GET", "https://h/a?x=1");
        let kept = RequestDecision::new("default").normalize_url(&clean, |url| url.sorted_params());
        assert_eq!(kept.url, None);
        let tracked = Request::new("GET", "https://h/a?gclid=7&x=1");
        let cleaned = RequestDecision::new("default")
            .normalize_url(&tracked, |url| url.without_params(&["gclid"]));
        assert_eq!(cleaned.url, Some(PathAndQuery::new("/a", Some("x=1"))));
    }
}
