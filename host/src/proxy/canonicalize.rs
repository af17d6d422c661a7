//! Phase 1, canonicalize: a client request in one form (absolute URL, explicit lower-case Host,
//! no hop-by-hop headers, normalized `Accept-Encoding`), so HTTP/1 and HTTP/2 share entries.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, Method, Uri};

use super::headers;
use crate::policy::RequestView;

#[derive(Debug, Clone)]
pub struct CanonicalRequest {
    pub method: Method,
    pub scheme: Scheme,
    /// Lower-case authority without a default port.
    pub host: String,
    path_and_query: PathAndQuery,
    /// `scheme://host[:port]/path?query`: the cache key's source.
    pub url: String,
    pub headers: HeaderMap,
    pub client: SocketAddr,
}

/// Why a request cannot be served at all (answered with [`BadRequest::status`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadRequest {
    /// CONNECT would make caje a tunnel to wherever the origin lets it reach (caje is a reverse
    /// proxy, not a forward one); TRACE echoes the request as caje forwarded it, forwarding
    /// headers and all, to a page that asked for it (cross-site tracing).
    #[error("caje does not relay {0} requests")]
    MethodNotRelayed(Method),
    #[error("the request has no Host header")]
    MissingHost,
    #[error("invalid Host {0:?}")]
    InvalidHost(String),
    #[error("the request target names host {target:?} but the Host header says {header:?}")]
    ConflictingHost { target: String, header: String },
    #[error("the request target must be an absolute path")]
    UnsupportedTarget,
    #[error("a request with a body must not carry both Content-Length and Transfer-Encoding")]
    AmbiguousLength,
}

impl BadRequest {
    /// 501 for a method caje does not relay, 400 for the rest.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BadRequest::MethodNotRelayed(_) => http::StatusCode::NOT_IMPLEMENTED,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl CanonicalRequest {
    /// Takes the request's headers out of `parts` (the body stays with the caller).
    pub fn new(
        parts: &mut Parts,
        client: SocketAddr,
        scheme: &Scheme,
    ) -> Result<CanonicalRequest, BadRequest> {
        if parts.method == Method::CONNECT || parts.method == Method::TRACE {
            return Err(BadRequest::MethodNotRelayed(parts.method.clone()));
        }
        let mut headers = std::mem::take(&mut parts.headers);
        if headers.contains_key(header::CONTENT_LENGTH)
            && headers.contains_key(header::TRANSFER_ENCODING)
        {
            return Err(BadRequest::AmbiguousLength);
        }
        let mut host_headers = headers.get_all(header::HOST).iter();
        let host_header = match (host_headers.next(), host_headers.next()) {
            (None, _) => None,
            (Some(one), None) => Some(canonical_authority(
                one.to_str()
                    .map_err(|_| BadRequest::InvalidHost("non-ASCII".into()))?,
                scheme,
            )?),
            (Some(_), Some(_)) => {
                return Err(BadRequest::InvalidHost("several Host headers".into()));
            }
        };
        let target = parts
            .uri
            .authority()
            .map(|a| canonical_authority(a.as_str(), scheme))
            .transpose()?;
        let host = match (target, host_header) {
            (Some(target), Some(header))
                if target != header && parts.version < http::Version::HTTP_2 =>
            {
                return Err(BadRequest::ConflictingHost { target, header });
            }
            (Some(target), _) => target,
            (None, Some(header)) => header,
            (None, None) => return Err(BadRequest::MissingHost),
        };
        let path_and_query = match parts.uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => pq.clone(),
            // `http://host?q`: an empty path is `/` (RFC 9112 §3.2.1), the query stays.
            Some(pq) if pq.as_str().starts_with('?') => {
                PathAndQuery::try_from(format!("/{}", pq.as_str()))
                    .map_err(|_| BadRequest::UnsupportedTarget)?
            }
            None => PathAndQuery::from_static("/"),
            Some(_) => return Err(BadRequest::UnsupportedTarget),
        };
        let mut url = String::with_capacity(
            scheme.as_str().len() + 3 + host.len() + path_and_query.as_str().len(),
        );
        url.push_str(scheme.as_str());
        url.push_str("://");
        url.push_str(&host);
        url.push_str(path_and_query.as_str());
        headers::remove_hop_by_hop(&mut headers);
        headers::normalize_accept_encoding(&mut headers);
        let host_value =
            HeaderValue::from_str(&host).map_err(|_| BadRequest::InvalidHost(host.clone()))?;
        headers.insert(header::HOST, host_value);
        Ok(CanonicalRequest {
            method: parts.method.clone(),
            scheme: scheme.clone(),
            host,
            path_and_query,
            url,
            headers,
            client,
        })
    }

    /// The absolute URI (built on demand: the hit path never needs it).
    pub fn uri(&self) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.host.as_str())
            .path_and_query(self.path_and_query.clone())
            .build()
            .expect("parts of a canonical request form a URI")
    }

    /// The request as policies see it.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: self.scheme.as_str(),
            authority: &self.host,
            path_and_query: &self.path_and_query,
            headers: &self.headers,
        }
    }

    pub fn path_and_query(&self) -> &str {
        self.path_and_query.as_str()
    }

    /// The request carries credentials: it is answered only from a response that allows it,
    /// and never shares an origin fetch.
    pub fn is_authorized(&self) -> bool {
        self.headers.contains_key(header::AUTHORIZATION)
    }

    /// GET and HEAD are answered from the cache; every other method passes through.
    pub fn is_cacheable_method(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    /// A URL on the same host as this request, resolved against it (for Location/Content-Location).
    pub fn resolve_same_host(&self, reference: &str) -> Option<String> {
        if reference.starts_with('/') && !reference.starts_with("//") {
            return Some(format!("{}://{}{}", self.scheme, self.host, reference));
        }
        let uri: Uri = reference.parse().ok()?;
        let scheme = uri.scheme()?;
        let host = canonical_authority(uri.authority()?.as_str(), scheme).ok()?;
        (host == self.host).then(|| {
            format!(
                "{}://{}{}",
                scheme,
                host,
                uri.path_and_query().map_or("/", PathAndQuery::as_str)
            )
        })
    }
}

/// Lower-cases the host and drops the scheme's default port; refuses user-info and anything that
/// is not a plain DNS name, IPv4 or bracketed IPv6 literal with an optional port.
fn canonical_authority(text: &str, scheme: &Scheme) -> Result<String, BadRequest> {
    let invalid = || BadRequest::InvalidHost(text.to_owned());
    let (name, port) = match text.rfind(':') {
        Some(colon) if !text[colon..].contains(']') => (&text[..colon], Some(&text[colon + 1..])),
        _ => (text, None),
    };
    let valid_name = if let Some(literal) = name.strip_prefix('[') {
        literal
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if !valid_name {
        return Err(invalid());
    }
    let port = match port {
        None => None,
        Some(digits)
            if !digits.is_empty()
                && digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(digits.parse::<u16>().map_err(|_| invalid())?)
        }
        Some(_) => return Err(invalid()),
    };
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let mut host = name.to_ascii_lowercase();
    if let Some(port) = port.filter(|port| *port != default_port) {
        host.push(':');
        host.push_str(&port.to_string());
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>, version: http::Version) -> Parts {
        let mut builder = http::Request::get(uri).version(version);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn client() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    /// A GET of `uri` (with `host`) in `version`, canonicalized.
    fn canonical(uri: &str, host: Option<&str>, version: http::Version) -> CanonicalRequest {
        CanonicalRequest::new(&mut parts(uri, host, version), client(), &Scheme::HTTP).unwrap()
    }

    #[test]
    fn http1_and_http2_forms_share_one_url() {
        let h1 = canonical("/a?b=1", Some("Example.COM:80"), http::Version::HTTP_11);
        let h2 = canonical("http://example.com/a?b=1", None, http::Version::HTTP_2);
        assert_eq!(h1.url, "http://example.com/a?b=1");
        assert_eq!(h1.url, h2.url);
        assert_eq!(h2.headers.get("host").unwrap(), "example.com");
        // Found by `admin::purge::fuzz`: an empty path before a query was refused.
        let empty_path = canonical("http://example.com?b=1", None, http::Version::HTTP_11);
        assert_eq!(empty_path.url, "http://example.com/?b=1");
    }

    #[test]
    fn conflicting_or_missing_hosts_are_refused() {
        let conflict = CanonicalRequest::new(
            &mut parts(
                "http://evil.test/",
                Some("good.test"),
                http::Version::HTTP_11,
            ),
            client(),
            &Scheme::HTTP,
        );
        assert!(matches!(conflict, Err(BadRequest::ConflictingHost { .. })));
        let missing = CanonicalRequest::new(
            &mut parts("/", None, http::Version::HTTP_11),
            client(),
            &Scheme::HTTP,
        );
        assert_eq!(missing.unwrap_err(), BadRequest::MissingHost);
        let userinfo = CanonicalRequest::new(
            &mut parts("/", Some("user@host"), http::Version::HTTP_11),
            client(),
            &Scheme::HTTP,
        );
        assert!(matches!(userinfo, Err(BadRequest::InvalidHost(_))));
    }

    #[test]
    fn authorities_are_validated_and_canonical() {
        let http = Scheme::HTTP;
        assert_eq!(
            canonical_authority("Example.COM", &http).unwrap(),
            "example.com"
        );
        assert_eq!(
            canonical_authority("example.com:80", &http).unwrap(),
            "example.com"
        );
        assert_eq!(
            canonical_authority("example.com:443", &Scheme::HTTPS).unwrap(),
            "example.com"
        );
        assert_eq!(
            canonical_authority("example.com:8080", &http).unwrap(),
            "example.com:8080"
        );
        assert_eq!(
            canonical_authority("[::1]:8080", &http).unwrap(),
            "[::1]:8080"
        );
        assert_eq!(canonical_authority("[::1]", &http).unwrap(), "[::1]");
        for bad in [
            "",
            "a b",
            "user@host",
            "host:",
            "host:99999",
            "host:x",
            "[zz]",
            "ho\\st",
            "a/b",
            ":80",
        ] {
            assert!(canonical_authority(bad, &http).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_same_host_locations_resolve() {
        let request = CanonicalRequest::new(
            &mut parts("/a", Some("site.test:8080"), http::Version::HTTP_11),
            client(),
            &Scheme::HTTP,
        )
        .unwrap();
        assert_eq!(
            request.resolve_same_host("/b?c").as_deref(),
            Some("http://site.test:8080/b?c")
        );
        assert_eq!(
            request
                .resolve_same_host("http://SITE.test:8080/d")
                .as_deref(),
            Some("http://site.test:8080/d")
        );
        assert_eq!(request.resolve_same_host("http://other.test/d"), None);
        assert_eq!(request.resolve_same_host("//other.test/d"), None);
    }
}
