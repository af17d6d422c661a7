//! What an operator names in a purge or a listing, in the form the cache keys it by: URLs go
//! through the proxy's own canonicalization (lower-case host, no default port).

use std::net::{Ipv4Addr, SocketAddr};

use http::Request;
use http::uri::Scheme;

use crate::proxy::CanonicalRequest;

/// The canonical form of an absolute `http://` or `https://` URL, as the cache keys it.
pub fn canonical_url(text: &str) -> Result<String, String> {
    let invalid = |why: &str| {
        format!(
            "{text:?} is not an absolute URL ({why}); write it like \"http://example.com/page\""
        )
    };
    let mut parts = Request::get(text)
        .body(())
        .map_err(|err| invalid(&err.to_string()))?
        .into_parts()
        .0;
    let scheme = match parts.uri.scheme_str() {
        Some("http") => Scheme::HTTP,
        Some("https") => Scheme::HTTPS,
        _ => return Err(invalid("it must start with http:// or https://")),
    };
    let anyone = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    CanonicalRequest::new(&mut parts, anyone, &scheme)
        .map(|request| request.url)
        .map_err(|err| invalid(&err.to_string()))
}

/// A URL prefix: scheme and host canonicalized like a URL, the path part kept as written.
/// It must reach into the path (`http://example.com/` at least) so that its host is whole.
pub fn canonical_prefix(text: &str) -> Result<String, String> {
    let path_start = text
        .find("://")
        .and_then(|scheme_end| text[scheme_end + 3..].find('/').map(|i| scheme_end + 3 + i))
        .ok_or_else(|| {
            format!(
                "prefix {text:?} must be an absolute URL up to at least the slash after the host, \
                 such as \"http://example.com/blog/\""
            )
        })?;
    let (site, path) = text.split_at(path_start);
    let site = canonical_url(&format!("{site}/"))?;
    Ok(format!("{}{}", site.trim_end_matches('/'), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_prefixes_take_the_cache_keys_form() {
        assert_eq!(
            canonical_url("http://Example.COM:80/a?b=1").unwrap(),
            "http://example.com/a?b=1"
        );
        assert_eq!(
            canonical_url("https://example.com:8443").unwrap(),
            "https://example.com:8443/"
        );
        assert_eq!(
            canonical_prefix("http://EXAMPLE.com:80/Blog/").unwrap(),
            "http://example.com/Blog/"
        );
        assert_eq!(
            canonical_prefix("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/"
        );
        for bad in [
            "/page",
            "example.com/page",
            "ftp://example.com/",
            "http://",
            "http://a b/",
        ] {
            assert!(canonical_url(bad).is_err(), "{bad}");
        }
        for bad in ["http://example.com", "http://exa", "/blog/"] {
            assert!(canonical_prefix(bad).is_err(), "{bad}");
        }
    }
}
