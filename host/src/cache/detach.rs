//! Copies of parsed HTTP parts that own their bytes, for what an entry keeps.
//!
//! hyper parses header values and request targets as slices of the connection's read buffer. An
//! entry that kept such a slice would pin the whole buffer, kilobytes for a few bytes of header,
//! and the memory tier would hold many times its configured size (the soak measured ~25×).

use http::{HeaderMap, HeaderValue, Response, Uri, response};

/// `value` in an allocation of its own.
pub fn value(value: &HeaderValue) -> HeaderValue {
    let mut owned =
        HeaderValue::from_bytes(value.as_bytes()).expect("a valid header value stays valid");
    owned.set_sensitive(value.is_sensitive());
    owned
}

/// `uri` in an allocation of its own.
pub fn uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).expect("a valid URI stays valid")
}

/// `parts` with every header value in an allocation of its own (extensions are not kept).
pub fn response(parts: &response::Parts) -> response::Parts {
    let (mut owned, ()) = Response::builder()
        .status(parts.status)
        .version(parts.version)
        .body(())
        .expect("status and version of a valid response")
        .into_parts();
    owned.headers = headers(&parts.headers);
    owned
}

fn headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, v) in headers {
        owned.append(name.clone(), value(v));
    }
    owned
}
