//! The decisions hooks return, as host types, and their conversion from and to the WIT types.
//! Converting a module's answer validates it: a mistake becomes an invalid decision, not a crash.

use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::uri::PathAndQuery;
use http::{Method, StatusCode};

use super::bindings::v2::caje::policy::types as wit;
use super::edits::{self, HeaderEdit};
use super::view::{CacheOutcome, ErrorView, OriginFailure};
use crate::cache::Windows;

/// The largest body of a synthetic response.
const MAX_SYNTHETIC_BODY: usize = 64 << 10;
const MAX_CACHE_KEY_COMPONENTS: usize = 16;
const MAX_CACHE_KEY_COMPONENT_LEN: usize = 1024;
const MAX_TAGS: usize = 64;
const MAX_TAG_LEN: usize = 128;
/// The longest normalised URL (path and query).
const MAX_URL_LEN: usize = 8 << 10;

/// What to do with a request: the result of the `on-request` hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestDecision {
    /// A configured origin, by name.
    pub origin: String,
    pub action: RequestAction,
    /// Extra cache-key components, in order.
    pub cache_key: Vec<String>,
    /// Edits of the request sent to the origin, to apply in order (see [`HeaderEdit::apply`]).
    pub origin_header_edits: Vec<HeaderEdit>,
    /// The path and query to key on and fetch instead of the request's (URL normalisation);
    /// see [`RequestDecision::path_and_query`].
    pub url: Option<PathAndQuery>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestAction {
    /// Serve from the cache when fresh, else fetch from the origin.
    Lookup,
    /// Bypass the cache.
    Pass,
    /// Answer with this response, without cache or origin.
    Respond(SyntheticResponse),
}

/// A response made by a policy. The proxy sets `content-length` from the body.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Whether and how long to cache a response: the result of the `on-response` hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheVerdict {
    pub store: bool,
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    /// Purge tags (1..=128 printable ASCII bytes, no commas).
    pub tags: Vec<String>,
    /// Keep `Set-Cookie` in the stored response.
    pub keep_set_cookie: bool,
    /// Edits of the origin response's headers before it is stored and sent (the client of the
    /// fill and every later hit see the edited headers); see [`CacheVerdict::apply_stored_edits`].
    pub stored_header_edits: Vec<HeaderEdit>,
}

impl CacheVerdict {
    /// A verdict to store (or not) for `ttl`, without stale windows, tags, `Set-Cookie` or
    /// header edits.
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

    /// The host's verdict, which the first module is given: store or not as caje's HTTP
    /// caching rules say, with the windows they found (see [`crate::cache::assess`]).
    pub fn default_for(windows: &Windows, store: bool) -> Self {
        CacheVerdict {
            stale_while_revalidate: windows.stale_while_revalidate,
            stale_if_error: windows.stale_if_error,
            ..CacheVerdict::new(store, windows.ttl)
        }
    }

    /// The windows an entry stored under this verdict gets; `must_revalidate` is the response's.
    pub fn windows(&self, must_revalidate: bool) -> Windows {
        Windows {
            ttl: self.ttl,
            stale_while_revalidate: self.stale_while_revalidate,
            stale_if_error: self.stale_if_error,
            must_revalidate,
        }
    }

    /// Applies the policies' stored-header edits to the origin response's headers, in order:
    /// the proxy calls this before it stores the response and before it sends it.
    pub fn apply_stored_edits(&self, headers: &mut HeaderMap) {
        HeaderEdit::apply_all(&self.stored_header_edits, headers);
    }
}

impl RequestDecision {
    /// The host's default decision: `origin`, lookup for GET and HEAD and pass otherwise, no
    /// extra cache-key components, header edits or URL normalisation.
    pub fn default_for(method: &Method, origin: impl Into<String>) -> Self {
        let action = if method == Method::GET || method == Method::HEAD {
            RequestAction::Lookup
        } else {
            RequestAction::Pass
        };
        RequestDecision {
            origin: origin.into(),
            action,
            cache_key: Vec::new(),
            origin_header_edits: Vec::new(),
            url: None,
        }
    }

    /// The path and query to key on and fetch: the normalised one, else the request's.
    pub fn path_and_query<'a>(&'a self, request: &'a PathAndQuery) -> &'a PathAndQuery {
        self.url.as_ref().unwrap_or(request)
    }

    /// Applies the header edits and the normalised URL to `request` (an absolute one): the
    /// request the origin gets, which the later hooks see.
    pub(crate) fn apply_to(&self, request: &mut http::request::Parts) {
        HeaderEdit::apply_all(&self.origin_header_edits, &mut request.headers);
        if let Some(url) = &self.url {
            let mut parts = request.uri.clone().into_parts();
            parts.path_and_query = Some(url.clone());
            if let Ok(uri) = http::Uri::from_parts(parts) {
                request.uri = uri;
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<&SyntheticResponse> for wit::SyntheticResponse {
    fn from(response: &SyntheticResponse) -> Self {
        wit::SyntheticResponse {
            status: response.status.as_u16(),
            headers: edits::wit_headers(&response.headers),
            body: response.body.to_vec(),
        }
    }
}

impl From<&RequestDecision> for wit::RequestDecision {
    fn from(decision: &RequestDecision) -> Self {
        wit::RequestDecision {
            origin: decision.origin.clone(),
            action: match &decision.action {
                RequestAction::Lookup => wit::RequestAction::Lookup,
                RequestAction::Pass => wit::RequestAction::Pass,
                RequestAction::Respond(response) => wit::RequestAction::Respond(response.into()),
            },
            cache_key: decision.cache_key.clone(),
            origin_header_edits: HeaderEdit::to_wit_list(&decision.origin_header_edits),
            url: decision.url.as_ref().map(|url| wit::PathAndQuery {
                path: url.path().to_owned(),
                query: url.query().map(str::to_owned),
            }),
        }
    }
}

impl RequestDecision {
    /// Validates a module's decision; `origins` are the configured origin names.
    pub(crate) fn from_wit(
        decision: wit::RequestDecision,
        origins: &[String],
    ) -> Result<Self, String> {
        if !origins.contains(&decision.origin) {
            return Err(format!(
                "origin {:?} is not configured (configured origins: {})",
                decision.origin,
                origins.join(", ")
            ));
        }
        if decision.cache_key.len() > MAX_CACHE_KEY_COMPONENTS {
            return Err(format!(
                "cache-key has {} components (at most {MAX_CACHE_KEY_COMPONENTS})",
                decision.cache_key.len()
            ));
        }
        if let Some((index, component)) = decision
            .cache_key
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() > MAX_CACHE_KEY_COMPONENT_LEN)
        {
            return Err(format!(
                "cache-key[{index}] is {} bytes (at most {MAX_CACHE_KEY_COMPONENT_LEN})",
                component.len()
            ));
        }
        let origin_header_edits =
            HeaderEdit::from_wit_list("origin-header-edits", decision.origin_header_edits)?;
        let action = match decision.action {
            wit::RequestAction::Lookup => RequestAction::Lookup,
            wit::RequestAction::Pass => RequestAction::Pass,
            wit::RequestAction::Respond(response) => {
                RequestAction::Respond(SyntheticResponse::from_wit(response)?)
            }
        };
        let url = decision.url.map(normalised_url).transpose()?;
        Ok(RequestDecision {
            origin: decision.origin,
            action,
            cache_key: decision.cache_key,
            origin_header_edits,
            url,
        })
    }
}

/// Validates a module's normalised URL: a path starting with one `/`, an optional query, neither
/// with `#` (nor `?` in the path), at most 8 KiB, in the characters a request target allows.
fn normalised_url(url: wit::PathAndQuery) -> Result<PathAndQuery, String> {
    let invalid = |why: &str| {
        Err(format!(
            "url {:?}{} {why}",
            url.path,
            url.query
                .as_deref()
                .map_or(String::new(), |query| format!(" with query {query:?}"))
        ))
    };
    if !url.path.starts_with('/') {
        return invalid("does not start with \"/\"");
    }
    if url.path.starts_with("//") {
        return invalid("starts with \"//\", which some clients and servers read as a host");
    }
    if url.path.contains(['?', '#']) || url.query.as_deref().is_some_and(|q| q.contains('#')) {
        return invalid("contains \"#\" or a \"?\" in its path");
    }
    let text = match &url.query {
        Some(query) => format!("{}?{query}", url.path),
        None => url.path.clone(),
    };
    if text.len() > MAX_URL_LEN {
        return invalid(&format!("is {} bytes (at most {MAX_URL_LEN})", text.len()));
    }
    match PathAndQuery::try_from(text) {
        Ok(parsed) => Ok(parsed),
        Err(_) => invalid("has characters a URL may not hold (spaces, control bytes, ...)"),
    }
}

impl SyntheticResponse {
    /// Validates a synthetic response a module made.
    pub(crate) fn from_wit(response: wit::SyntheticResponse) -> Result<Self, String> {
        if !(200..=599).contains(&response.status) {
            return Err(format!(
                "synthetic response status {} is outside 200..=599",
                response.status
            ));
        }
        if response.body.len() > MAX_SYNTHETIC_BODY {
            return Err(format!(
                "synthetic response body is {} bytes (at most {MAX_SYNTHETIC_BODY})",
                response.body.len()
            ));
        }
        let headers = edits::header_map("synthetic response headers", &response.headers)?;
        let status = StatusCode::from_u16(response.status).map_err(|err| err.to_string())?;
        Ok(SyntheticResponse {
            status,
            headers,
            body: Bytes::from(response.body),
        })
    }
}

impl From<&CacheVerdict> for wit::CacheVerdict {
    fn from(verdict: &CacheVerdict) -> Self {
        wit::CacheVerdict {
            store: verdict.store,
            ttl_ms: millis(verdict.ttl),
            stale_while_revalidate_ms: millis(verdict.stale_while_revalidate),
            stale_if_error_ms: millis(verdict.stale_if_error),
            tags: verdict.tags.clone(),
            keep_set_cookie: verdict.keep_set_cookie,
            stored_header_edits: HeaderEdit::to_wit_list(&verdict.stored_header_edits),
        }
    }
}

fn valid_tag(tag: &str) -> bool {
    (1..=MAX_TAG_LEN).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

impl CacheVerdict {
    /// Validates a module's verdict.
    pub(crate) fn from_wit(verdict: wit::CacheVerdict) -> Result<Self, String> {
        if verdict.tags.len() > MAX_TAGS {
            return Err(format!(
                "tags has {} entries (at most {MAX_TAGS})",
                verdict.tags.len()
            ));
        }
        if let Some((index, tag)) = verdict
            .tags
            .iter()
            .enumerate()
            .find(|(_, tag)| !valid_tag(tag))
        {
            return Err(format!(
                "tags[{index}] {tag:?} is not 1..={MAX_TAG_LEN} printable ASCII bytes without spaces or commas"
            ));
        }
        let stored_header_edits =
            HeaderEdit::from_wit_list("stored-header-edits", verdict.stored_header_edits)?;
        Ok(CacheVerdict {
            store: verdict.store,
            ttl: Duration::from_millis(verdict.ttl_ms),
            stale_while_revalidate: Duration::from_millis(verdict.stale_while_revalidate_ms),
            stale_if_error: Duration::from_millis(verdict.stale_if_error_ms),
            tags: verdict.tags,
            keep_set_cookie: verdict.keep_set_cookie,
            stored_header_edits,
        })
    }
}

impl From<CacheOutcome> for wit::CacheOutcome {
    fn from(outcome: CacheOutcome) -> Self {
        match outcome {
            CacheOutcome::Hit => wit::CacheOutcome::Hit,
            CacheOutcome::Miss => wit::CacheOutcome::Miss,
            CacheOutcome::Stale => wit::CacheOutcome::Stale,
            CacheOutcome::Revalidated => wit::CacheOutcome::Revalidated,
            CacheOutcome::Pass => wit::CacheOutcome::Pass,
            CacheOutcome::Synthetic => wit::CacheOutcome::Synthetic,
            CacheOutcome::Error => wit::CacheOutcome::Error,
        }
    }
}

impl From<&ErrorView<'_>> for wit::OriginError {
    fn from(error: &ErrorView<'_>) -> Self {
        wit::OriginError {
            origin: error.origin.to_owned(),
            failure: match error.failure {
                OriginFailure::Unreachable => wit::OriginFailure::Unreachable,
                OriginFailure::Timeout => wit::OriginFailure::Timeout,
                OriginFailure::ErrorStatus(status) => {
                    wit::OriginFailure::ErrorStatus(status.as_u16())
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use http::header::{HeaderName, HeaderValue};

    use super::*;

    fn origins() -> Vec<String> {
        vec!["default".to_owned(), "api".to_owned()]
    }

    fn wit_decision() -> wit::RequestDecision {
        (&RequestDecision::default_for(&Method::GET, "default")).into()
    }

    fn invalid(decision: wit::RequestDecision) -> String {
        RequestDecision::from_wit(decision, &origins()).unwrap_err()
    }

    fn verdict() -> CacheVerdict {
        CacheVerdict::new(true, Duration::from_secs(60))
    }

    #[test]
    fn defaults_depend_on_the_method() {
        assert_eq!(
            RequestDecision::default_for(&Method::HEAD, "o").action,
            RequestAction::Lookup
        );
        assert_eq!(
            RequestDecision::default_for(&Method::POST, "o").action,
            RequestAction::Pass
        );
    }

    #[test]
    fn valid_decisions_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let decision = RequestDecision {
            origin: "api".to_owned(),
            action: RequestAction::Respond(SyntheticResponse {
                status: StatusCode::IM_A_TEAPOT,
                headers,
                body: Bytes::from_static(b"tea"),
            }),
            cache_key: vec!["mobile".to_owned()],
            origin_header_edits: vec![
                HeaderEdit::Set(
                    HeaderName::from_static("x-a"),
                    HeaderValue::from_static("1"),
                ),
                HeaderEdit::Remove(HeaderName::from_static("cookie")),
            ],
            url: Some(PathAndQuery::from_static("/shop?a=1&b=2")),
        };
        let back = RequestDecision::from_wit((&decision).into(), &origins()).unwrap();
        assert_eq!(back, decision);
        let verdict = CacheVerdict {
            store: true,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::from_secs(5),
            stale_if_error: Duration::from_secs(600),
            tags: vec!["path:api".to_owned()],
            keep_set_cookie: true,
            stored_header_edits: vec![HeaderEdit::Remove(HeaderName::from_static("set-cookie"))],
        };
        assert_eq!(CacheVerdict::from_wit((&verdict).into()).unwrap(), verdict);
    }

    #[test]
    fn unknown_origins_are_invalid() {
        let mut decision = wit_decision();
        decision.origin = "nowhere".to_owned();
        assert_eq!(
            invalid(decision),
            "origin \"nowhere\" is not configured (configured origins: default, api)"
        );
    }

    #[test]
    fn every_edit_list_is_validated_and_named() {
        let mut decision = wit_decision();
        decision.origin_header_edits = vec![wit::HeaderEdit::Remove("Connection".to_owned())];
        assert_eq!(
            invalid(decision),
            "origin-header-edits[0]: \"Connection\" is a hop-by-hop or framing header, which policies may not edit"
        );
        let mut stored: wit::CacheVerdict = (&verdict()).into();
        stored.stored_header_edits = vec![
            wit::HeaderEdit::Remove("set-cookie".to_owned()),
            wit::HeaderEdit::Set(("transfer-encoding".to_owned(), b"chunked".to_vec())),
        ];
        assert_eq!(
            CacheVerdict::from_wit(stored).unwrap_err(),
            "stored-header-edits[1]: \"transfer-encoding\" is a hop-by-hop or framing header, which policies may not edit"
        );
    }

    #[test]
    fn synthetic_responses_are_bounded() {
        let respond = |status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>| {
            let mut decision = wit_decision();
            decision.action = wit::RequestAction::Respond(wit::SyntheticResponse {
                status,
                headers,
                body,
            });
            invalid(decision)
        };
        assert_eq!(
            respond(99, vec![], vec![]),
            "synthetic response status 99 is outside 200..=599"
        );
        assert_eq!(
            respond(600, vec![], vec![]),
            "synthetic response status 600 is outside 200..=599"
        );
        assert_eq!(
            respond(200, vec![], vec![0; MAX_SYNTHETIC_BODY + 1]),
            "synthetic response body is 65537 bytes (at most 65536)"
        );
        let framing = vec![("content-length".to_owned(), b"3".to_vec())];
        assert!(
            respond(200, framing, vec![])
                .starts_with("synthetic response headers[0]: \"content-length\"")
        );
    }

    #[test]
    fn normalised_urls_must_be_a_path_and_query() {
        let with_url = |path: &str, query: Option<&str>| {
            let mut decision = wit_decision();
            decision.url = Some(wit::PathAndQuery {
                path: path.to_owned(),
                query: query.map(str::to_owned),
            });
            RequestDecision::from_wit(decision, &origins())
        };
        let fine = with_url("/shop/shoes", Some("a=1&b=%20")).unwrap();
        assert_eq!(fine.url.unwrap(), "/shop/shoes?a=1&b=%20");
        assert_eq!(with_url("/", None).unwrap().url.unwrap(), "/");
        for (path, query, why) in [
            ("shop", None, "does not start with \"/\""),
            ("https://evil.test/", None, "does not start with \"/\""),
            ("//evil.test/x", None, "starts with \"//\""),
            ("/a?b", None, "contains \"#\" or a \"?\" in its path"),
            ("/a", Some("b#frag"), "contains \"#\""),
            ("/a b", None, "has characters a URL may not hold"),
            ("/a", Some("x=\r\n"), "has characters a URL may not hold"),
        ] {
            let error = with_url(path, query).unwrap_err();
            assert!(
                error.starts_with("url ") && error.contains(why),
                "{path:?} {query:?}: {error}"
            );
        }
        let long = "/".to_owned() + &"a".repeat(MAX_URL_LEN);
        assert!(
            with_url(&long, None)
                .unwrap_err()
                .contains("(at most 8192)")
        );
    }

    #[test]
    fn the_url_to_key_on_is_the_normalised_one_if_any() {
        let request = PathAndQuery::from_static("/a?utm_source=x");
        let mut decision = RequestDecision::default_for(&Method::GET, "default");
        assert_eq!(decision.path_and_query(&request), "/a?utm_source=x");
        decision.url = Some(PathAndQuery::from_static("/a"));
        assert_eq!(decision.path_and_query(&request), "/a");
    }

    #[test]
    fn stored_edits_apply_to_the_response_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("set-cookie", HeaderValue::from_static("id=1"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let verdict = CacheVerdict {
            stored_header_edits: vec![
                HeaderEdit::Remove(HeaderName::from_static("set-cookie")),
                HeaderEdit::Set(
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("text/css"),
                ),
            ],
            ..verdict()
        };
        verdict.apply_stored_edits(&mut headers);
        assert!(!headers.contains_key("set-cookie"));
        assert_eq!(headers["content-type"], "text/css");
    }

    #[test]
    fn cache_keys_are_bounded() {
        let mut decision = wit_decision();
        decision.cache_key = (0..17).map(|i| i.to_string()).collect();
        assert_eq!(
            invalid(decision),
            "cache-key has 17 components (at most 16)"
        );
        let mut decision = wit_decision();
        decision.cache_key = vec!["ok".to_owned(), "x".repeat(1025)];
        assert_eq!(
            invalid(decision),
            "cache-key[1] is 1025 bytes (at most 1024)"
        );
    }

    #[test]
    fn tags_must_be_printable_without_commas() {
        let verdict = |tags: Vec<String>| {
            let mut verdict: wit::CacheVerdict = (&verdict()).into();
            verdict.tags = tags;
            CacheVerdict::from_wit(verdict)
        };
        for bad in ["", "has space", "a,b", "tab\t", "caf\u{e9}"] {
            let err = verdict(vec!["ok".to_owned(), bad.to_owned()]).unwrap_err();
            assert!(err.starts_with("tags[1]"), "{bad:?}: {err}");
        }
        assert!(verdict(vec!["x".repeat(129)]).is_err());
        assert!(verdict(vec!["x".repeat(128)]).is_ok());
        assert_eq!(
            verdict((0..65).map(|i| i.to_string()).collect()).unwrap_err(),
            "tags has 65 entries (at most 64)"
        );
    }
}
