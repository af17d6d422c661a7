//! Read-only views of what a hook is called with: the request, the origin response and the
//! response a client is about to get. In a module they ask the host lazily; in native tests
//! they hold plain data.

use std::cell::OnceCell;

use crate::bindings::caje::policy::types::{
    self as wit, ClientResponse as HostClientResponse, Request as HostRequest,
    ResponseHead as HostResponse,
};

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
    Client(&'a HostClientResponse),
    Local(Vec<(String, Vec<u8>)>),
}

impl HeaderSource<'_> {
    fn first(&self, name: &str) -> Option<HeaderValue> {
        match self {
            HeaderSource::Request(host) => host.header(name).map(HeaderValue),
            HeaderSource::Response(host) => host.header(name).map(HeaderValue),
            HeaderSource::Client(host) => host.header(name).map(HeaderValue),
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
            HeaderSource::Client(host) => host.header_all(name),
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
            HeaderSource::Client(host) => host.headers(),
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
            HeaderSource::Request(_) | HeaderSource::Response(_) | HeaderSource::Client(_) => {
                unreachable!("headers are only added to locally built views")
            }
        }
    }
}

/// The header lookups every view offers, answered by its `headers` source.
macro_rules! header_lookups {
    ($view:ident) => {
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

        #[doc = concat!("Every header field. Copies them all from the host (and turns caje's memo off for the call): prefer [`", stringify!($view), "::header`].")]
        pub fn headers(&self) -> Vec<(String, HeaderValue)> {
            self.headers.fields()
        }
    };
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

    header_lookups!(Request);
}

/// The origin response's status and headers (policies never see bodies). The status and the
/// origin's name are fetched from the host on first use; every header lookup asks the host.
pub struct Response<'a> {
    host: Option<&'a HostResponse>,
    status: OnceCell<u16>,
    origin: OnceCell<String>,
    headers: HeaderSource<'a>,
}

impl<'a> Response<'a> {
    pub(crate) fn from_host(host: &'a HostResponse) -> Self {
        Response {
            host: Some(host),
            status: OnceCell::new(),
            origin: OnceCell::new(),
            headers: HeaderSource::Response(host),
        }
    }
}

impl Response<'static> {
    /// A response head built from plain data, for unit tests of a policy, from the origin
    /// named `"default"`.
    pub fn new(status: u16) -> Self {
        Response {
            host: None,
            status: OnceCell::from(status),
            origin: OnceCell::from("default".to_owned()),
            headers: HeaderSource::Local(Vec::new()),
        }
    }

    /// Adds a header field (for unit tests).
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push(name, value.as_ref());
        self
    }

    /// Names the origin that answered (for unit tests).
    pub fn from_origin(self, origin: &str) -> Self {
        Response {
            origin: OnceCell::from(origin.to_owned()),
            ..self
        }
    }
}

impl Response<'_> {
    /// The host's response; only reached for parts not fetched yet, which a locally built
    /// response does not have.
    fn host_response(&self) -> &HostResponse {
        self.host
            .expect("every part of a local response is set when it is built")
    }

    /// The status code, e.g. `200`.
    pub fn status(&self) -> u16 {
        *self.status.get_or_init(|| self.host_response().status())
    }

    /// The name of the configured origin that answered, e.g. `"api"`.
    pub fn origin(&self) -> &str {
        self.origin.get_or_init(|| self.host_response().origin())
    }

    header_lookups!(Response);
}

/// How caje answered a request, as [`Policy::on_deliver`](crate::Policy::on_deliver) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// A fresh stored response.
    Hit,
    /// Fetched from the origin (and stored, if it could be).
    Miss,
    /// A stale stored response, while revalidating or because the origin failed.
    Stale,
    /// A stored response the origin confirmed unchanged (304).
    Revalidated,
    /// Fetched from the origin bypassing the cache.
    Pass,
    /// Made by a policy (`respond` in `on_request`, or an `on_error` response).
    Synthetic,
    /// caje's own error response (502, 504, a refusing policy's 503, ...).
    Error,
}

impl From<wit::CacheOutcome> for CacheOutcome {
    fn from(outcome: wit::CacheOutcome) -> Self {
        match outcome {
            wit::CacheOutcome::Hit => CacheOutcome::Hit,
            wit::CacheOutcome::Miss => CacheOutcome::Miss,
            wit::CacheOutcome::Stale => CacheOutcome::Stale,
            wit::CacheOutcome::Revalidated => CacheOutcome::Revalidated,
            wit::CacheOutcome::Pass => CacheOutcome::Pass,
            wit::CacheOutcome::Synthetic => CacheOutcome::Synthetic,
            wit::CacheOutcome::Error => CacheOutcome::Error,
        }
    }
}

impl CacheOutcome {
    /// The outcome's name, as caje's WIT spells it: `"hit"`, `"miss"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Pass => "pass",
            CacheOutcome::Synthetic => "synthetic",
            CacheOutcome::Error => "error",
        }
    }

    /// Whether the response came from the cache (`Hit`, `Stale` or `Revalidated`).
    pub fn is_from_cache(self) -> bool {
        matches!(
            self,
            CacheOutcome::Hit | CacheOutcome::Stale | CacheOutcome::Revalidated
        )
    }
}

/// The response caje is about to send to the client: its status, how caje answered, and its
/// headers as the client would get them (after the edits of the modules before this one).
/// Status, outcome and origin are fetched from the host on first use; every header lookup asks
/// the host.
pub struct ClientResponse<'a> {
    host: Option<&'a HostClientResponse>,
    status: OnceCell<u16>,
    outcome: OnceCell<CacheOutcome>,
    origin: OnceCell<Option<String>>,
    headers: HeaderSource<'a>,
}

impl<'a> ClientResponse<'a> {
    pub(crate) fn from_host(host: &'a HostClientResponse) -> Self {
        ClientResponse {
            host: Some(host),
            status: OnceCell::new(),
            outcome: OnceCell::new(),
            origin: OnceCell::new(),
            headers: HeaderSource::Client(host),
        }
    }
}

impl ClientResponse<'static> {
    /// A client response built from plain data, for unit tests of a policy, routed to the
    /// origin named `"default"`.
    pub fn new(status: u16, outcome: CacheOutcome) -> Self {
        ClientResponse {
            host: None,
            status: OnceCell::from(status),
            outcome: OnceCell::from(outcome),
            origin: OnceCell::from(Some("default".to_owned())),
            headers: HeaderSource::Local(Vec::new()),
        }
    }

    /// Adds a header field (for unit tests).
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push(name, value.as_ref());
        self
    }

    /// Names the origin the request was routed to, or none (for unit tests).
    pub fn from_origin(self, origin: Option<&str>) -> Self {
        ClientResponse {
            origin: OnceCell::from(origin.map(str::to_owned)),
            ..self
        }
    }
}

impl ClientResponse<'_> {
    fn host_response(&self) -> &HostClientResponse {
        self.host
            .expect("every part of a local client response is set when it is built")
    }

    /// The status code, e.g. `200`.
    pub fn status(&self) -> u16 {
        *self.status.get_or_init(|| self.host_response().status())
    }

    /// How caje answered: from the cache, the origin, a policy or an error.
    pub fn outcome(&self) -> CacheOutcome {
        *self
            .outcome
            .get_or_init(|| self.host_response().outcome().into())
    }

    /// The name of the origin the request was routed to; `None` when caje refused the request
    /// before choosing one.
    pub fn origin(&self) -> Option<&str> {
        self.origin
            .get_or_init(|| self.host_response().origin())
            .as_deref()
    }

    header_lookups!(ClientResponse);
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
        assert_eq!(resp.origin(), "default");
        assert_eq!(Response::new(200).from_origin("api").origin(), "api");
        assert_eq!(resp.header("cache-control").unwrap(), "no-store");
        assert_eq!(resp.header_all("cache-control").len(), 1);
        assert_eq!(resp.headers().len(), 1);
    }

    #[test]
    fn client_response_views() {
        let resp = ClientResponse::new(200, CacheOutcome::Hit)
            .with_header("Server", "nginx")
            .with_header("x-a", "1")
            .with_header("x-a", "2");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.outcome(), CacheOutcome::Hit);
        assert!(resp.outcome().is_from_cache());
        assert!(!CacheOutcome::Pass.is_from_cache());
        assert_eq!(resp.origin(), Some("default"));
        assert!(resp.has_header("server"));
        assert_eq!(resp.header_all("X-A").len(), 2);
        assert_eq!(resp.headers().len(), 3);
        let refused = ClientResponse::new(421, CacheOutcome::Error).from_origin(None);
        assert_eq!(refused.origin(), None);
    }
}
