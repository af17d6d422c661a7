//! Request smuggling from clients: every ambiguous or malformed request is refused (or framed
//! the one way RFC 9112 allows), its connection is closed, and a request hidden behind it never
//! reaches the origin.

use caje_testkit::{TestOrigin, get_with};

use crate::support::{raw_exchange, site_node};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: site.test\r\n\r\n";

/// Sends each of `fronts` with [`SMUGGLED`] behind it on one connection (to a fresh node and
/// origin); asserts the status caje answers, that it closes the connection after that one
/// answer, that the hidden request never reaches the origin, and that the front request itself
/// reached it `front_hits` times.
async fn refused_and_closed(fronts: &[&str], status: &str, front_hits: u64) {
    for front in fronts {
        one_refused_and_closed(front, status, front_hits).await;
    }
}

async fn one_refused_and_closed(front: &str, status: &str, front_hits: u64) {
    let origin = TestOrigin::cacheable().await;
    let node = site_node(&origin.url()).await;
    let bytes = format!("{front}{SMUGGLED}");
    let reply = raw_exchange(node.node().addr, bytes.as_bytes()).await;
    assert_eq!(reply.status(), status, "{front:?} got {:?}", reply.text);
    assert!(reply.closed, "{front:?}: the connection stays open");
    assert_eq!(reply.responses(), 1, "{front:?} got {:?}", reply.text);
    assert_eq!(origin.hits("/smuggled"), 0, "{front:?} smuggled a request");
    assert_eq!(origin.hits("/front"), front_hits, "{front:?}");
    // The node keeps serving well-formed requests.
    let fine = get_with(&node.url("/fine"), &[("host", "site.test")]).await;
    assert_eq!(fine.status, 200);
}

#[tokio::test]
async fn malformed_or_misdirected_requests_are_refused_and_close_the_connection() {
    let cases: [&str; 11] = [
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
    refused_and_closed(&cases, "400", 0).await;
    // A host no origin serves (by absolute-form target or by Host header) is misdirected;
    // CONNECT would open a tunnel through the origin, TRACE would echo what caje forwarded.
    let misdirected_or_not_relayed = [
        (
            "421",
            "GET http://other.test/front HTTP/1.1\r\nHost: other.test\r\n\r\n",
        ),
        ("421", "GET /front HTTP/1.1\r\nHost: other.test\r\n\r\n"),
        (
            "501",
            "CONNECT site.test:443 HTTP/1.1\r\nHost: site.test:443\r\n\r\n",
        ),
        ("501", "TRACE /front HTTP/1.1\r\nHost: site.test\r\n\r\n"),
    ];
    for (status, front) in misdirected_or_not_relayed {
        refused_and_closed(&[front], status, 0).await;
    }
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_framed_by_the_coding_and_closes() {
    // RFC 9112 §6.3: the transfer coding overrides the length and the server must close the
    // connection after answering. hyper resolves this before caje sees the request (it drops
    // the Content-Length), so caje cannot answer 400; what matters is that the body ends where
    // the chunked coding says and nothing after it on the connection is read as a request.
    refused_and_closed(
        &[
            "POST /front HTTP/1.1\r\nHost: site.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /front HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n",
        ],
        "200",
        1,
    )
    .await;
}

#[tokio::test]
async fn over_http2_a_refusal_is_a_well_formed_response() {
    // HTTP/2 frames every message itself: the `Connection: close` of a refusal must not reach
    // the wire there (it is a protocol error in HTTP/2), the status must.
    let origin = TestOrigin::cacheable().await;
    let node = site_node(&origin.url()).await;
    let refused = caje_testkit::get_h2(&node.url("/front")).await;
    assert_eq!(refused.status, 421);
    assert_eq!(refused.header("connection"), None);
    assert_eq!(origin.hits("/front"), 0);
}
