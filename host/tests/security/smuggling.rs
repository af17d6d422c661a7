//! Request smuggling from clients: every ambiguous or malformed request is refused (or framed
//! the one way RFC 9112 allows), its connection is closed, and a request hidden behind it never
//! reaches the origin.

use caje_testkit::{TestOrigin, get_with};

use crate::support::{raw_exchange, site_node};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: site.test\r\n\r\n";

/// Sends `front` with [`SMUGGLED`] behind it on one connection; asserts the status caje
/// answers, that it closes the connection after that one answer, and that the hidden request
/// never reaches the origin.
async fn refused_and_closed(front: &str, status: &str) -> TestOrigin {
    let origin = TestOrigin::cacheable().await;
    let node = site_node(&origin.url()).await;
    let bytes = format!("{front}{SMUGGLED}");
    let reply = raw_exchange(node.node().addr, bytes.as_bytes()).await;
    assert_eq!(reply.status(), status, "{front:?} got {:?}", reply.text);
    assert!(reply.closed, "{front:?}: the connection stays open");
    assert_eq!(reply.responses(), 1, "{front:?} got {:?}", reply.text);
    assert_eq!(origin.hits("/smuggled"), 0, "{front:?} smuggled a request");
    // The node keeps serving well-formed requests.
    let fine = get_with(&node.url("/fine"), &[("host", "site.test")]).await;
    assert_eq!(fine.status, 200);
    origin
}

#[tokio::test]
async fn malformed_framing_and_header_bytes_are_400_and_close_the_connection() {
    let cases = [
        // Two different lengths: no way to tell where the body ends.
        "POST /front HTTP/1.1\r\nHost: site.test\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello",
        // A length that is not a plain decimal.
        "POST /front HTTP/1.1\r\nHost: site.test\r\nContent-Length: +5\r\n\r\nhello",
        // A transfer coding that does not end in chunked: the length is unknowable.
        "POST /front HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST /front HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: xchunked\r\n\r\n",
        // A chunked body in HTTP/1.0, which has no transfer codings.
        "POST /front HTTP/1.0\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // obs-fold: a continuation line some parsers join and others split.
        "GET /front HTTP/1.1\r\nHost: site.test\r\nX-Folded: a\r\n b\r\n\r\n",
        // Invalid bytes in a header value: NUL, a bare CR.
        "GET /front HTTP/1.1\r\nHost: site.test\r\nX-Nul: a\0b\r\n\r\n",
        "GET /front HTTP/1.1\r\nHost: site.test\r\nX-Cr: a\rb\r\n\r\n",
        // Whitespace between a header name and its colon.
        "GET /front HTTP/1.1\r\nHost: site.test\r\nContent-Length : 5\r\n\r\nhello",
        // An absolute-form target naming another host than the Host header.
        "GET http://other.test/front HTTP/1.1\r\nHost: site.test\r\n\r\n",
        "GET http://site.test/front HTTP/1.1\r\nHost: other.test\r\n\r\n",
    ];
    for front in cases {
        let origin = refused_and_closed(front, "400").await;
        assert_eq!(origin.hits("/front"), 0, "{front:?} reached the origin");
    }
}

#[tokio::test]
async fn a_host_no_origin_serves_is_421_and_closes_the_connection() {
    for front in [
        "GET http://other.test/front HTTP/1.1\r\nHost: other.test\r\n\r\n",
        "GET /front HTTP/1.1\r\nHost: other.test\r\n\r\n",
    ] {
        let origin = refused_and_closed(front, "421").await;
        assert_eq!(origin.hits("/front"), 0, "{front:?} reached the origin");
    }
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_framed_by_the_coding_and_closes() {
    // RFC 9112 §6.3: the transfer coding overrides the length and the server must close the
    // connection after answering. hyper resolves this before caje sees the request (it drops
    // the Content-Length), so caje cannot answer 400; what matters is that the body ends where
    // the chunked coding says and nothing after it on the connection is read as a request.
    for front in [
        "POST /front HTTP/1.1\r\nHost: site.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /front HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n",
    ] {
        let origin = refused_and_closed(front, "200").await;
        assert_eq!(origin.hits("/front"), 1, "{front:?}");
    }
}
