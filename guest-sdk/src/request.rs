//! Read-only views of the request and the origin response a hook is called with.
//! In a module they ask the host lazily; in native tests they hold plain data.

use std::cell::OnceCell;

use crate::bindings::caje::policy::types::{Request as HostRequest, ResponseHead as HostResponse};

/// A header value: raw bytes, usually (not necessarily) ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderValue(Vec<u8>);

impl HeaderValue {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, if it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl From<Vec<u8>> for HeaderValue {
    fn from(bytes: Vec<u8>) -> Self {
        HeaderValue(bytes)
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// Where header lookups go: the host (inside a module) or a local list (native tests).
enum HeaderSource<'a> {
    Request(&'a HostRequest),
    Response(&'a HostResponse),
    Local(Vec<(String, Vec<u8>)>),
}

impl HeaderSource<'_> {
    fn first(&self, name: &str) -> Option<HeaderValue> {
        match self {
            HeaderSource::Request(host) => host.header(name).map(HeaderValue),
            HeaderSource::Response(host) => host.header(name).map(HeaderValue),
            HeaderSource::Local(fields) => fields
                .iter()
                .find(|(field, _)| field.eq_ignore_ascii_case(name))
                .map(|(_, value)| HeaderValue(value.clone())),
        }
    }

    fn all(&self, name: &str) -> Vec<HeaderValue> {
        let values = match self {
            HeaderSource::Request(host) => host.header_all(name),
            HeaderSource::Response(host) => host.header_all(name),
            HeaderSource::Local(fields) => fields
                .iter()
                .filter(|(field, _)| field.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
                .collect(),
        };
        values.into_iter().map(HeaderValue).collect()
    }

    fn fields(&self) -> Vec<(String, HeaderValue)> {
        let fields = match self {
            HeaderSource::Request(host) => host.headers(),
            HeaderSource::Response(host) => host.headers(),
            HeaderSource::Local(fields) => fields.clone(),
        };
        fields
            .into_iter()
            .map(|(name, value)| (name, HeaderValue(value)))
            .collect()
    }

    fn push(&mut self, name: &str, value: &[u8]) {
        match self {
            HeaderSource::Local(fields) => fields.push((name.to_ascii_lowercase(), value.to_vec())),
            HeaderSource::Request(_) | HeaderSource::Response(_) => {
                unreachable!("headers are only added to locally built views")
            }
        }
    }
}

/// The client's request (canonical: absolute URL, explicit host, no hop-by-hop headers).
///
/// Method and URL parts are fetched from the host once and remembered; every header lookup
/// asks the host, so look up only the headers you need.
pub struct Request<'a> {
    host: Option<&'a HostRequest>,
    method: OnceCell<String>,
    scheme: OnceCell<String>,
    authority: OnceCell<String>,
    path: OnceCell<String>,
    query: OnceCell<Option<String>>,
    headers: HeaderSource<'a>,
}

impl<'a> Request<'a> {
    pub(crate) fn from_host(host: &'a HostRequest) -> Self {
        Request {
            host: Some(host),
            method: OnceCell::new(),
            scheme: OnceCell::new(),
            authority: OnceCell::new(),
            path: OnceCell::new(),
            query: OnceCell::new(),
            headers: HeaderSource::Request(host),
        }
    }
}

impl Request<'static> {
    /// A request built from plain data, for unit tests of a policy.
    ///
    /// # Panics
    ///
    /// If `url` is not absolute (`scheme://authority/path?query`).
    pub fn new(method: &str, url: &str) -> Self {
        let (scheme, rest) = url
            .split_once("://")
            .unwrap_or_else(|| panic!("{url:?} is not an absolute URL (scheme://host/path)"));
        let (authority, path_and_query) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path_and_query, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        Request {
            host: None,
            method: OnceCell::from(method.to_owned()),
            scheme: OnceCell::from(scheme.to_owned()),
            authority: OnceCell::from(authority.to_owned()),
            path: OnceCell::from(path.to_owned()),
            query: OnceCell::from(query),
            headers: HeaderSource::Local(Vec::new()),
        }
    }

    /// Adds a header field (for unit tests).
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push(name, value.as_ref());
        self
    }
}

impl Request<'_> {
    /// The host's request; only reached for parts not fetched yet, which a locally built
    /// request does not have.
    fn host_request(&self) -> &HostRequest {
        self.host
            .expect("every part of a local request is set when it is built")
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &str {
        self.method.get_or_init(|| self.host_request().method())
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &str {
        self.scheme.get_or_init(|| self.host_request().scheme())
    }

    /// Host and optional port, e.g. `"example.com:8443"`.
    pub fn authority(&self) -> &str {
        self.authority
            .get_or_init(|| self.host_request().authority())
    }

    /// The host name without the port, e.g. `"example.com"` (IPv6 literals keep their brackets).
    pub fn hostname(&self) -> &str {
        let authority = self.authority();
        match authority.rfind(':') {
            Some(at) if !authority[at..].contains(']') => &authority[..at],
            _ => authority,
        }
    }

    /// The path, starting with `/`, percent-encoding untouched.
    pub fn path(&self) -> &str {
        self.path.get_or_init(|| self.host_request().path())
    }

    /// The query string without the leading `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query
            .get_or_init(|| self.host_request().query())
            .as_deref()
    }

    /// The raw value of the first query parameter called `name` (`""` for a bare `name`).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The non-empty segments of the path: `/a//b/` gives `a`, `b`.
    pub fn path_segments(&self) -> impl Iterator<Item = &str> {
        self.path().split('/').filter(|segment| !segment.is_empty())
    }

    /// The first path segment, e.g. `"api"` for `/api/users`.
    pub fn first_segment(&self) -> Option<&str> {
        self.path_segments().next()
    }

    /// Whether the path is `prefix` or below it, on a segment boundary: `/static` matches
    /// `/static` and `/static/app.js` but not `/staticfile`.
    pub fn path_is_under(&self, prefix: &str) -> bool {
        let prefix = prefix.trim_end_matches('/');
        let path = self.path();
        match path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<HeaderValue> {
        self.headers.first(name)
    }

    /// Whether header `name` is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<HeaderValue> {
        self.headers.all(name)
    }

    /// Every header field. Copies them all from the host: prefer [`Request::header`].
    pub fn headers(&self) -> Vec<(String, HeaderValue)> {
        self.headers.fields()
    }
}

/// The origin response's status and headers (policies never see bodies). The status is fetched
/// from the host on first use; every header lookup asks the host.
pub struct Response<'a> {
    host: Option<&'a HostResponse>,
    status: OnceCell<u16>,
    headers: HeaderSource<'a>,
}

impl<'a> Response<'a> {
    pub(crate) fn from_host(host: &'a HostResponse) -> Self {
        Response {
            host: Some(host),
            status: OnceCell::new(),
            headers: HeaderSource::Response(host),
        }
    }
}

impl Response<'static> {
    /// A response head built from plain data, for unit tests of a policy.
    pub fn new(status: u16) -> Self {
        Response {
            host: None,
            status: OnceCell::from(status),
            headers: HeaderSource::Local(Vec::new()),
        }
    }

    /// Adds a header field (for unit tests).
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push(name, value.as_ref());
        self
    }
}

impl Response<'_> {
    /// The status code, e.g. `200`.
    pub fn status(&self) -> u16 {
        *self.status.get_or_init(|| {
            self.host
                .expect("the status of a local response is set when it is built")
                .status()
        })
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<HeaderValue> {
        self.headers.first(name)
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<HeaderValue> {
        self.headers.all(name)
    }

    /// Every header field. Copies them all from the host: prefer [`Response::header`].
    pub fn headers(&self) -> Vec<(String, HeaderValue)> {
        self.headers.fields()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_of_a_local_request() {
        let req = Request::new("GET", "https://Example.com:8443/api/v1/users?id=7&debug");
        assert_eq!(req.method(), "GET");
        assert_eq!(req.scheme(), "https");
        assert_eq!(req.authority(), "Example.com:8443");
        assert_eq!(req.hostname(), "Example.com");
        assert_eq!(req.path(), "/api/v1/users");
        assert_eq!(req.query(), Some("id=7&debug"));
        assert_eq!(req.query_param("id"), Some("7"));
        assert_eq!(req.query_param("debug"), Some(""));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.first_segment(), Some("api"));
        assert_eq!(
            req.path_segments().collect::<Vec<_>>(),
            ["api", "v1", "users"]
        );
    }

    #[test]
    fn urls_without_path_or_with_ipv6_hosts() {
        let req = Request::new("GET", "http://[::1]:8080?x=1");
        assert_eq!(req.path(), "/");
        assert_eq!(req.hostname(), "[::1]");
        assert_eq!(req.query(), Some("x=1"));
        assert_eq!(req.first_segment(), None);
        assert_eq!(Request::new("GET", "http://[::1]").hostname(), "[::1]");
    }

    #[test]
    #[should_panic(expected = "not an absolute URL")]
    fn relative_urls_are_rejected() {
        Request::new("GET", "/just/a/path");
    }

    #[test]
    fn path_is_under_respects_segment_boundaries() {
        let under = |path: &str, prefix: &str| {
            Request::new("GET", &format!("https://h{path}")).path_is_under(prefix)
        };
        assert!(under("/static", "/static"));
        assert!(under("/static/app.js", "/static/"));
        assert!(under("/static/app.js", "/static"));
        assert!(!under("/staticfile", "/static"));
        assert!(!under("/", "/static"));
        assert!(under("/anything", "/"));
    }

    #[test]
    fn header_lookups_ignore_case_and_keep_order() {
        let req = Request::new("GET", "https://h/")
            .with_header("Accept", "text/html")
            .with_header("x-tag", "a")
            .with_header("X-Tag", b"b\xff");
        assert_eq!(req.header("accept").unwrap(), "text/html");
        assert!(req.has_header("ACCEPT"));
        assert!(!req.has_header("cookie"));
        let tags = req.header_all("x-tag");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].to_str(), Some("a"));
        assert_eq!(tags[1].to_str(), None, "not UTF-8");
        assert_eq!(tags[1].as_bytes(), b"b\xff");
        assert_eq!(req.headers()[0].0, "accept");
    }

    #[test]
    fn response_views() {
        let resp = Response::new(404).with_header("Cache-Control", "no-store");
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.header("cache-control").unwrap(), "no-store");
        assert_eq!(resp.header_all("cache-control").len(), 1);
        assert_eq!(resp.headers().len(), 1);
    }
}
