//! `GET /_caje/`: the dashboard, one self-contained page (inline CSS and JS, no external
//! assets) that drives the JSON API with the token it keeps in the tab's `sessionStorage`.
//!
//! The page holds no data, so it is served without the token; a Content-Security-Policy
//! allows exactly its own inline script and style and requests to this node.

use std::sync::LazyLock;

use http::StatusCode;
use http::header::{self, HeaderValue};
use sha2::{Digest, Sha256};

use super::reply::{self, Reply};
use crate::body::Body;

const TEMPLATE: &str = include_str!("dashboard.html");
const STYLE: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// The assembled page and its Content-Security-Policy.
static PAGE: LazyLock<(String, HeaderValue)> = LazyLock::new(|| {
    let page = TEMPLATE
        .replace("{{style}}", STYLE)
        .replace("{{script}}", SCRIPT);
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        base64(&Sha256::digest(SCRIPT)),
        base64(&Sha256::digest(STYLE)),
    );
    let csp = HeaderValue::from_str(&csp).expect("the policy is ASCII");
    (page, csp)
});

pub(super) fn page() -> Reply {
    let (page, csp) = &*PAGE;
    let mut answer = reply::with_type(
        StatusCode::OK,
        "text/html; charset=utf-8",
        Body::full(page.clone()),
    );
    let headers = answer.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    answer
}

/// `/_caje` → `/_caje/`, where the page's relative position is unambiguous.
pub(super) fn redirect() -> Reply {
    let mut answer = reply::with_type(
        StatusCode::PERMANENT_REDIRECT,
        "text/plain; charset=utf-8",
        Body::full("the dashboard is at /_caje/\n"),
    );
    answer
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/_caje/"));
    answer
}

/// Standard base64 with padding (what CSP hash sources use).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        let (page, csp) = &*PAGE;
        assert!(!page.contains("{{"), "every placeholder is filled");
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
        assert!(csp.to_str().unwrap().contains("script-src 'sha256-"));
    }
}
