//! The canonical form of a client request: absolute URI, explicit lower-case Host, no hop-by-hop
//! headers, normalized `Accept-Encoding`. HTTP/1 and HTTP/2 requests for one resource become identical.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Uri};

use super::headers;

#[derive(Debug, Clone)]
pub struct CanonicalRequest {
    pub method: Method,
    /// `scheme://host[:port]/path?query`
    pub uri: Uri,
    /// `uri` as text: the cache key's source.
    pub url: String,
    /// Lower-case authority without a default port.
    pub host: String,
    pub headers: HeaderMap,
    pub client: SocketAddr,
}

/// Why a request cannot be served at all (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadRequest {
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

impl CanonicalRequest {
    pub fn new(
        parts: &Parts,
        client: SocketAddr,
        scheme: &Scheme,
    ) -> Result<CanonicalRequest, BadRequest> {
        if parts.headers.contains_key(header::CONTENT_LENGTH)
            && parts.headers.contains_key(header::TRANSFER_ENCODING)
        {
            return Err(BadRequest::AmbiguousLength);
        }
        let host_header = match parts
            .headers
            .get_all(header::HOST)
            .iter()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => None,
            [one] => Some(canonical_authority(
                one.to_str()
                    .map_err(|_| BadRequest::InvalidHost("non-ASCII".into()))?,
                scheme,
            )?),
            _ => return Err(BadRequest::InvalidHost("several Host headers".into())),
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
        let path = match parts.uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => pq.clone(),
            None => PathAndQuery::from_static("/"),
            Some(_) => return Err(BadRequest::UnsupportedTarget),
        };
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(host.as_str())
            .path_and_query(path)
            .build()
            .map_err(|_| BadRequest::InvalidHost(host.clone()))?;
        let mut headers = parts.headers.clone();
        headers::remove_hop_by_hop(&mut headers);
        headers::normalize_accept_encoding(&mut headers);
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&host).map_err(|_| BadRequest::InvalidHost(host.clone()))?,
        );
        Ok(CanonicalRequest {
            method: parts.method.clone(),
            url: uri.to_string(),
            uri,
            host,
            headers,
            client,
        })
    }

    pub fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", PathAndQuery::as_str)
    }

    /// GET and HEAD are answered from the cache; every other method passes through.
    pub fn is_cacheable_method(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    /// A URL on the same host as this request, resolved against it (for Location/Content-Location).
    pub fn resolve_same_host(&self, reference: &str) -> Option<String> {
        if reference.starts_with('/') && !reference.starts_with("//") {
            return Some(format!(
                "{}://{}{}",
                self.uri.scheme_str().unwrap_or("http"),
                self.host,
                reference
            ));
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

/// Lower-cases the host and drops the scheme's default port; refuses user-info and garbage.
fn canonical_authority(text: &str, scheme: &Scheme) -> Result<String, BadRequest> {
    let authority: Authority = text
        .parse()
        .map_err(|_| BadRequest::InvalidHost(text.to_owned()))?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(BadRequest::InvalidHost(text.to_owned()));
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    Ok(match authority.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host,
    })
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

    #[test]
    fn http1_and_http2_forms_share_one_url() {
        let h1 = CanonicalRequest::new(
            &parts("/a?b=1", Some("Example.COM:80"), http::Version::HTTP_11),
            client(),
            &Scheme::HTTP,
        )
        .unwrap();
        let h2 = CanonicalRequest::new(
            &parts("http://example.com/a?b=1", None, http::Version::HTTP_2),
            client(),
            &Scheme::HTTP,
        )
        .unwrap();
        assert_eq!(h1.url, "http://example.com/a?b=1");
        assert_eq!(h1.url, h2.url);
        assert_eq!(h2.headers.get("host").unwrap(), "example.com");
    }

    #[test]
    fn conflicting_or_missing_hosts_are_refused() {
        let conflict = CanonicalRequest::new(
            &parts(
                "http://evil.test/",
                Some("good.test"),
                http::Version::HTTP_11,
            ),
            client(),
            &Scheme::HTTP,
        );
        assert!(matches!(conflict, Err(BadRequest::ConflictingHost { .. })));
        let missing = CanonicalRequest::new(
            &parts("/", None, http::Version::HTTP_11),
            client(),
            &Scheme::HTTP,
        );
        assert_eq!(missing.unwrap_err(), BadRequest::MissingHost);
        let userinfo = CanonicalRequest::new(
            &parts("/", Some("user@host"), http::Version::HTTP_11),
            client(),
            &Scheme::HTTP,
        );
        assert!(matches!(userinfo, Err(BadRequest::InvalidHost(_))));
    }

    #[test]
    fn only_same_host_locations_resolve() {
        let request = CanonicalRequest::new(
            &parts("/a", Some("site.test:8080"), http::Version::HTTP_11),
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
