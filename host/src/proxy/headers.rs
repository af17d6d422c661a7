//! Header hygiene at the proxy's edges: hop-by-hop removal (RFC 9110 §7.6.1), forwarding headers,
//! and normalizing `Accept-Encoding` so equivalent requests share one cache variant.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Request headers that make some origins answer for another URL, method, host, port, scheme or
/// client address while the cache key does not include them (cache-poisoning and spoofing
/// vectors): caje never forwards them.
/// Frameworks read all of these (Symfony, Rails, Express, IIS, Spring): one stripped name is not
/// enough when its sibling still reaches the origin.
const UNKEYED_OVERRIDES: [HeaderName; 18] = [
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("x-host"),
    HeaderName::from_static("x-original-host"),
    HeaderName::from_static("x-url-scheme"),
    HeaderName::from_static("front-end-https"),
    HeaderName::from_static("x-real-ip"),
    header::FORWARDED,
];

pub const VIA: &str = "1.1 caje";

/// Removes hop-by-hop headers, including any the `Connection` header names.
///
/// A message framed by `Transfer-Encoding` also loses its `Content-Length`: the transfer coding
/// overrides it (RFC 9112 §6.3), so the length describes nothing, and once the coding is gone it
/// would be taken as the framing of the body caje relays (a truncated or desynchronized message).
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass of cheap comparisons, no removal, no allocation.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Drops request headers that would let a client change the origin's answer without changing the key.
pub fn remove_unkeyed_overrides(headers: &mut HeaderMap) {
    for name in &UNKEYED_OVERRIDES {
        headers.remove(name);
    }
}

/// Removes `Content-Length` and `Transfer-Encoding` from a request on its way to an origin: the
/// body caje sends decides the framing (hyper derives it), never a header copied from the client. A cache fetch sends no
/// body, and hyper would write a client's `Content-Length: 5` as it is, leaving the origin waiting
/// for five bytes that would be taken from the next request on the pooled connection.
pub fn remove_framing(headers: &mut HeaderMap) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
}

/// Adds `Via`, `X-Forwarded-For/-Host/-Proto` to a request on its way to an origin.
/// `X-Forwarded-For` is appended to (the last address is the one caje saw); `X-Forwarded-Host`
/// and `-Proto` are replaced (the client's were removed with the unkeyed overrides).
pub fn add_forwarding(headers: &mut HeaderMap, client: IpAddr, public_host: &str, scheme: &str) {
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(previous) => format!("{previous}, {client}"),
        None => client.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    if let Ok(value) = HeaderValue::from_str(public_host) {
        headers.insert("x-forwarded-host", value);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if scheme == "https" { "https" } else { "http" }),
    );
    append_via(headers);
}

pub fn append_via(headers: &mut HeaderMap) {
    headers.append(header::VIA, HeaderValue::from_static(VIA));
}

/// Rewrites `Accept-Encoding` to the single best coding caje keys on (`br`, `gzip`) or removes it.
pub fn normalize_accept_encoding(headers: &mut HeaderMap) {
    if !headers.contains_key(header::ACCEPT_ENCODING) {
        return;
    }
    let mut accepts_br = false;
    let mut accepts_gzip = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for coding in value.split(',') {
            let mut params = coding.split(';');
            let name = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = params.any(|param| {
                let param = param.trim().to_ascii_lowercase();
                param
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if refused {
                continue;
            }
            match name.as_str() {
                "br" => accepts_br = true,
                "gzip" | "x-gzip" => accepts_gzip = true,
                "*" => {
                    accepts_br = true;
                    accepts_gzip = true;
                }
                _ => {}
            }
        }
    }
    let normalized = if accepts_br {
        Some("br")
    } else if accepts_gzip {
        Some("gzip")
    } else {
        None
    };
    match normalized {
        Some(coding) => {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(coding));
        }
        None => {
            headers.remove(header::ACCEPT_ENCODING);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn accept_encoding_collapses_to_one_coding() {
        let cases = [
            ("gzip, deflate, br", Some("br")),
            ("gzip;q=1.0, br;q=0", Some("gzip")),
            ("deflate", None),
            ("*", Some("br")),
            ("identity", None),
            ("GZIP", Some("gzip")),
        ];
        for (input, expected) in cases {
            let mut headers = map(&[("accept-encoding", input)]);
            normalize_accept_encoding(&mut headers);
            assert_eq!(
                headers.get("accept-encoding").map(|v| v.to_str().unwrap()),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("content-type"));
    }

    #[test]
    fn a_transfer_coding_overrides_a_content_length() {
        let mut headers = map(&[
            ("transfer-encoding", "chunked"),
            ("content-length", "3"),
            ("content-type", "text/plain"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert!(!headers.contains_key("content-length"));
        let mut headers = map(&[("content-length", "3"), ("connection", "close")]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.get("content-length").unwrap(), "3");
    }
}
