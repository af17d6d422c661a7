//! Phase 8, respond: the client's response from a stored entry (Age, conditional 304, single
//! Range), from a fill in progress, from an origin failure, or caje's own error.

use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use super::canonicalize::CanonicalRequest;
use super::fetch::Failure;
use super::outcome::CacheOutcome;
use super::store::StreamingFill;
use crate::body::Body;
use crate::cache::{BodySource, Cache, Entry};

/// A response on its way to the client, with what the cache did (rendered at the edge).
pub struct Answer {
    pub response: Response<Body>,
    /// `None` for answers the cache had no part in (refusals, caje's own errors).
    pub outcome: Option<CacheOutcome>,
}

impl Answer {
    pub fn new(response: Response<Body>, outcome: CacheOutcome) -> Answer {
        Answer {
            response,
            outcome: Some(outcome),
        }
    }

    /// An answer without a cache outcome: no `Cache-Status` or `X-Cache`.
    pub fn plain(response: Response<Body>) -> Answer {
        Answer {
            response,
            outcome: None,
        }
    }

    /// The response as the client gets it: the outcome rendered into its headers, once.
    pub fn render(self) -> Response<Body> {
        let mut response = self.response;
        if let Some(outcome) = self.outcome {
            outcome.render(response.headers_mut());
        }
        response
    }
}

/// Answers from a stored entry: full body, 304 to a matching conditional, or one byte range.
pub fn from_entry(
    cache: &Cache,
    entry: &Entry,
    request: &CanonicalRequest,
    now: SystemTime,
) -> Response<Body> {
    let mut headers = entry.head.headers.clone();
    headers.insert(
        header::AGE,
        HeaderValue::from(entry.head.policy.age(now).as_secs()),
    );
    let len = entry.head.body_len;
    let stored_status = StatusCode::from_u16(entry.head.status).unwrap_or(StatusCode::OK);
    if stored_status == StatusCode::OK && not_modified(&request.headers, &headers) {
        keep_not_modified_headers(&mut headers);
        return response(StatusCode::NOT_MODIFIED, headers, Body::Empty);
    }
    let mut range = (0, len);
    let mut status_code = stored_status;
    if stored_status == StatusCode::OK && request.method == Method::GET {
        match requested_range(&request.headers, &headers, len) {
            RangeAnswer::Full => {}
            RangeAnswer::Partial(start, end) => {
                status_code = StatusCode::PARTIAL_CONTENT;
                range = (start, end);
                let content_range = format!("bytes {}-{}/{len}", start, end - 1);
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&content_range).expect("ASCII"),
                );
            }
            RangeAnswer::Unsatisfiable => {
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{len}")).expect("ASCII"),
                );
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
                return response(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::Empty);
            }
        }
    }
    if stored_status == StatusCode::OK {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.1 - range.0));
    if request.method == Method::HEAD {
        return response(status_code, headers, Body::Empty);
    }
    let body = match cache.body(entry, range.0, range.1) {
        Ok(BodySource::Bytes(bytes)) => Body::Full(Some(bytes)),
        Ok(BodySource::Stream(stream)) => Body::stream(stream),
        Err(err) => {
            tracing::warn!(url = %entry.head.url, error = %err, "stored body vanished while serving it");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the cached body could not be read; retry the request",
            );
        }
    };
    response(status_code, headers, body)
}

/// Answers with a response whose body is still being written to the store.
pub fn from_fill(fill: &StreamingFill, request: &CanonicalRequest) -> Response<Body> {
    let headers = fill.headers.clone();
    let body = if request.method == Method::HEAD {
        Body::Empty
    } else {
        Body::stream(fill.handle.stream())
    };
    let mut response = response(fill.status, headers, body);
    if let Some(upstream) = fill.upstream {
        response.extensions_mut().insert(upstream);
    }
    response
}

/// Relays an origin failure: caje's own error for a failed fetch, else the origin's buffered
/// answer.
pub fn from_failure(failure: &Failure) -> Response<Body> {
    match failure {
        Failure::Origin(err) => error(err.status(), &err.to_string()),
        Failure::Status {
            status,
            headers,
            body,
        } => response(*status, headers.clone(), Body::full(body.clone())),
    }
}

/// A short plain-text error caje generates itself.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response(status, headers, Body::full(format!("{message}\n")))
}

/// An [`error`] after which the connection is closed: the request was malformed or misdirected,
/// so whatever follows it on the connection is not trusted to be the start of a request (a
/// request smuggled behind it, or a client that cannot frame one). HTTP/2 has no such header:
/// hyper drops it there, where framing cannot be ambiguous.
pub fn error_closing(status: StatusCode, message: &str) -> Response<Body> {
    let mut answer = error(status, message);
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// RFC 9110 §13.1.2–3: If-None-Match (weak comparison) wins over If-Modified-Since.
fn not_modified(request: &HeaderMap, response: &HeaderMap) -> bool {
    if let Some(condition) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let Some(etag) = response.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let etag = etag.trim().trim_start_matches("W/");
        return condition.trim() == "*"
            || condition
                .split(',')
                .any(|tag| tag.trim().trim_start_matches("W/") == etag);
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    let modified = response
        .get(header::LAST_MODIFIED)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

/// A 304 carries the validators and caching headers, not the body's description (RFC 9110 §15.4.5).
fn keep_not_modified_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::CONTENT_ENCODING,
        header::CONTENT_RANGE,
    ] {
        headers.remove(name);
    }
}

enum RangeAnswer {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range of a complete representation; several ranges or a failed If-Range get the whole body.
fn requested_range(request: &HeaderMap, response: &HeaderMap, len: u64) -> RangeAnswer {
    let Some(range) = request.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    if let Some(if_range) = request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let if_range = if_range.trim();
        let matches = if if_range.starts_with('"') {
            response
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|etag| etag.trim() == if_range)
        } else {
            response
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|lm| lm.trim() == if_range)
        };
        if !matches {
            return RangeAnswer::Full;
        }
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, false) => last
            .parse::<u64>()
            .ok()
            .map(|suffix| (len.saturating_sub(suffix), len, suffix == 0)),
        (false, true) => first.parse::<u64>().ok().map(|start| (start, len, false)),
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(start), Ok(end)) if end >= start => {
                Some((start, end.saturating_add(1).min(len), false))
            }
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeAnswer::Full,
        Some((start, end, empty_suffix)) if empty_suffix || start >= len || start >= end => {
            RangeAnswer::Unsatisfiable
        }
        Some((start, end, _)) => RangeAnswer::Partial(start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(header: &str, len: u64) -> Option<(u64, u64)> {
        let mut request = HeaderMap::new();
        request.insert(header::RANGE, HeaderValue::from_str(header).unwrap());
        match requested_range(&request, &HeaderMap::new(), len) {
            RangeAnswer::Partial(start, end) => Some((start, end)),
            RangeAnswer::Full => None,
            RangeAnswer::Unsatisfiable => Some((u64::MAX, u64::MAX)),
        }
    }

    #[test]
    fn single_ranges_parse() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(range("bytes=-5", 100), Some((95, 100)));
        assert_eq!(range("bytes=95-200", 100), Some((95, 100)));
        assert_eq!(range("bytes=100-", 100), Some((u64::MAX, u64::MAX)));
        assert_eq!(range("bytes=0-1,5-6", 100), None);
        assert_eq!(range("items=0-1", 100), None);
        assert_eq!(range("bytes=5-1", 100), None);
    }

    #[test]
    fn conditionals_compare_validators() {
        let mut response = HeaderMap::new();
        response.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        let mut request = HeaderMap::new();
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("W/\"v1\", \"v0\""),
        );
        assert!(not_modified(&request, &response));
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"v2\""));
        assert!(!not_modified(&request, &response));
    }
}
