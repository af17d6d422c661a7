//! The decisions hooks return, as host types, and their conversion from and to the WIT types.
//! Converting a module's answer validates it: a mistake becomes an invalid decision, not a crash.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::bindings::caje::policy::types::{self as wit, Headers};
use crate::cache::Windows;

/// The largest body of a synthetic response.
const MAX_SYNTHETIC_BODY: usize = 64 << 10;
const MAX_CACHE_KEY_COMPONENTS: usize = 16;
const MAX_CACHE_KEY_COMPONENT_LEN: usize = 1024;
const MAX_TAGS: usize = 64;
const MAX_TAG_LEN: usize = 128;

/// Headers a policy may not set or remove: hop-by-hop and framing headers belong to the
/// connection, and `host` follows from the origin the policy names.
pub(super) const RESERVED_HEADERS: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "content-length",
    "host",
];

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

/// A validated edit of a request header (never a hop-by-hop or framing header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Set(HeaderName, HeaderValue),
    Append(HeaderName, HeaderValue),
    Remove(HeaderName),
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
}

impl CacheVerdict {
    /// A verdict to store (or not) for `ttl`, without stale windows, tags or `Set-Cookie`.
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
}

impl RequestDecision {
    /// The host's default decision: `origin`, lookup for GET and HEAD and pass otherwise, no
    /// extra cache-key components and no header edits.
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
        }
    }
}

impl HeaderEdit {
    /// Applies the edit to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        match self {
            HeaderEdit::Set(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            HeaderEdit::Append(name, value) => {
                headers.append(name.clone(), value.clone());
            }
            HeaderEdit::Remove(name) => {
                headers.remove(name);
            }
        }
    }
}

/// Header fields as WIT `headers`.
pub(crate) fn wit_headers(headers: &HeaderMap) -> Headers {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(format!(
            "{name:?} is a hop-by-hop or framing header, which policies may not edit"
        ));
    }
    Ok(parsed)
}

fn header_field(name: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), String> {
    let name = header_name(name)?;
    let value = HeaderValue::from_bytes(value).map_err(|_| {
        format!("the value of {name:?} is not a valid header value (it contains CR, LF, NUL or another control byte)")
    })?;
    Ok((name, value))
}

fn with_index<T>(
    what: &str,
    results: impl Iterator<Item = Result<T, String>>,
) -> Result<Vec<T>, String> {
    results
        .enumerate()
        .map(|(index, result)| result.map_err(|reason| format!("{what}[{index}]: {reason}")))
        .collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<&RequestDecision> for wit::RequestDecision {
    fn from(decision: &RequestDecision) -> Self {
        wit::RequestDecision {
            origin: decision.origin.clone(),
            action: match &decision.action {
                RequestAction::Lookup => wit::RequestAction::Lookup,
                RequestAction::Pass => wit::RequestAction::Pass,
                RequestAction::Respond(response) => {
                    wit::RequestAction::Respond(wit::SyntheticResponse {
                        status: response.status.as_u16(),
                        headers: wit_headers(&response.headers),
                        body: response.body.to_vec(),
                    })
                }
            },
            cache_key: decision.cache_key.clone(),
            origin_header_edits: decision
                .origin_header_edits
                .iter()
                .map(|edit| match edit {
                    HeaderEdit::Set(name, value) => {
                        wit::HeaderEdit::Set((name.as_str().to_owned(), value.as_bytes().to_vec()))
                    }
                    HeaderEdit::Append(name, value) => wit::HeaderEdit::Append((
                        name.as_str().to_owned(),
                        value.as_bytes().to_vec(),
                    )),
                    HeaderEdit::Remove(name) => wit::HeaderEdit::Remove(name.as_str().to_owned()),
                })
                .collect(),
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
        let edits = decision
            .origin_header_edits
            .into_iter()
            .map(|edit| match edit {
                wit::HeaderEdit::Set((name, value)) => {
                    header_field(&name, &value).map(|(n, v)| HeaderEdit::Set(n, v))
                }
                wit::HeaderEdit::Append((name, value)) => {
                    header_field(&name, &value).map(|(n, v)| HeaderEdit::Append(n, v))
                }
                wit::HeaderEdit::Remove(name) => header_name(&name).map(HeaderEdit::Remove),
            });
        let origin_header_edits = with_index("origin-header-edits", edits)?;
        let action = match decision.action {
            wit::RequestAction::Lookup => RequestAction::Lookup,
            wit::RequestAction::Pass => RequestAction::Pass,
            wit::RequestAction::Respond(response) => {
                RequestAction::Respond(synthetic_response(response)?)
            }
        };
        Ok(RequestDecision {
            origin: decision.origin,
            action,
            cache_key: decision.cache_key,
            origin_header_edits,
        })
    }
}

fn synthetic_response(response: wit::SyntheticResponse) -> Result<SyntheticResponse, String> {
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
    let fields = response
        .headers
        .iter()
        .map(|(name, value)| header_field(name, value));
    let headers = with_index("synthetic response headers", fields)?
        .into_iter()
        .collect::<HeaderMap>();
    let status = StatusCode::from_u16(response.status).map_err(|err| err.to_string())?;
    Ok(SyntheticResponse {
        status,
        headers,
        body: Bytes::from(response.body),
    })
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
        Ok(CacheVerdict {
            store: verdict.store,
            ttl: Duration::from_millis(verdict.ttl_ms),
            stale_while_revalidate: Duration::from_millis(verdict.stale_while_revalidate_ms),
            stale_if_error: Duration::from_millis(verdict.stale_if_error_ms),
            tags: verdict.tags,
            keep_set_cookie: verdict.keep_set_cookie,
        })
    }
}

#[cfg(test)]
mod tests {
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
                HeaderEdit::Append(
                    HeaderName::from_static("x-b"),
                    HeaderValue::from_static("2"),
                ),
                HeaderEdit::Remove(HeaderName::from_static("cookie")),
            ],
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
        };
        assert_eq!(CacheVerdict::from_wit((&verdict).into()).unwrap(), verdict);
    }

    #[test]
    fn header_names_are_normalized_to_lower_case() {
        let mut decision = wit_decision();
        decision.origin_header_edits =
            vec![wit::HeaderEdit::Set(("X-Env".to_owned(), b"prod".to_vec()))];
        let edits = RequestDecision::from_wit(decision, &origins())
            .unwrap()
            .origin_header_edits;
        assert_eq!(
            edits,
            [HeaderEdit::Set(
                HeaderName::from_static("x-env"),
                HeaderValue::from_static("prod")
            )]
        );
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
    fn reserved_and_malformed_header_edits_are_invalid() {
        for name in RESERVED_HEADERS {
            let mut decision = wit_decision();
            decision.origin_header_edits = vec![wit::HeaderEdit::Remove(name.to_uppercase())];
            assert!(
                invalid(decision).contains("hop-by-hop or framing header"),
                "{name}"
            );
        }
        let mut decision = wit_decision();
        decision.origin_header_edits = vec![
            wit::HeaderEdit::Remove("x-ok".to_owned()),
            wit::HeaderEdit::Append(("x-injected".to_owned(), b"a\r\nb: c".to_vec())),
        ];
        assert_eq!(
            invalid(decision),
            "origin-header-edits[1]: the value of \"x-injected\" is not a valid header value \
             (it contains CR, LF, NUL or another control byte)"
        );
        let mut decision = wit_decision();
        decision.origin_header_edits =
            vec![wit::HeaderEdit::Set(("bad name".to_owned(), b"v".to_vec()))];
        assert_eq!(
            invalid(decision),
            "origin-header-edits[0]: \"bad name\" is not a valid header name"
        );
    }

    #[test]
    fn synthetic_responses_are_bounded() {
        let respond = |status: u16, headers: Headers, body: Vec<u8>| {
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
            let mut verdict: wit::CacheVerdict = (&CacheVerdict {
                store: true,
                ttl: Duration::ZERO,
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::ZERO,
                tags: Vec::new(),
                keep_set_cookie: false,
            })
                .into();
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

    #[test]
    fn edits_apply_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        headers.insert("x-a", HeaderValue::from_static("old"));
        for edit in [
            HeaderEdit::Set(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("new"),
            ),
            HeaderEdit::Append(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("more"),
            ),
            HeaderEdit::Remove(HeaderName::from_static("cookie")),
        ] {
            edit.apply(&mut headers);
        }
        let values: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["new", "more"]);
        assert!(!headers.contains_key("cookie"));
    }
}
