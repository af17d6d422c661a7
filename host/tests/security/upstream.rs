//! Toward the origin: caje sends one framing (never Content-Length with Transfer-Encoding, never
//! a length its body does not have), no hop-by-hop or `Connection`-nominated headers, and only
//! well-formed header lines; an origin's doubly framed response reaches the client whole.

use caje_testkit::{get, get_with};

use crate::support::{Received, RecordingOrigin, raw_exchange};

const OK: &str = "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ncontent-length: 2\r\n\r\nok";

/// Header lines are `token ":" value` with a value free of control bytes but HTAB.
fn assert_well_formed(request: &Received) {
    let head = request.head_text();
    assert!(
        head.starts_with("GET ") || head.starts_with("POST "),
        "{head:?}"
    );
    for (name, value) in request.fields() {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "invalid header name {name:?} in {head:?}"
        );
        assert!(
            value
                .iter()
                .all(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)),
            "control byte in {name}: {value:?}"
        );
    }
    let framings = ["content-length", "transfer-encoding"]
        .iter()
        .filter(|name| request.has(name))
        .count();
    assert!(framings <= 1, "two framings in {head:?}");
    let lengths = request
        .fields()
        .iter()
        .filter(|(name, _)| name == "content-length")
        .count();
    assert!(lengths <= 1, "two Content-Lengths in {head:?}");
}

#[tokio::test]
async fn the_origin_gets_one_framing_and_no_hop_by_hop_headers() {
    let origin = RecordingOrigin::start(OK).await;
    let node = caje_testkit::TestNode::start(&origin.url()).await;
    let addr = node.node().addr;
    // A GET that claims a body: caje's cache fetch sends none, so it must not send the length.
    let lookup = "GET /lookup HTTP/1.1\r\nHost: site.test\r\nContent-Length: 5\r\n\
                  Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
                  TE: trailers\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\n\
                  Upgrade: websocket\r\nTrailer: X-After\r\nConnection: close\r\n\r\nhello";
    // Pass-through bodies keep their framing: a length, or chunks.
    let sized = "POST /sized HTTP/1.1\r\nHost: site.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let chunked = "POST /chunked HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\
                   Content-Length: 3\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    for request in [lookup, sized, chunked] {
        let reply = raw_exchange(addr, request.as_bytes()).await;
        assert_eq!(reply.status(), "200", "{request:?} got {:?}", reply.text);
    }
    // The pooled connection to the origin carries the next request intact.
    assert_eq!(get(&node.url("/after")).await.text(), "ok");
    let received = origin.received();
    let paths: Vec<String> = received
        .iter()
        .map(|r| r.head_text().lines().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "GET /lookup HTTP/1.1",
            "POST /sized HTTP/1.1",
            "POST /chunked HTTP/1.1",
            "GET /after HTTP/1.1"
        ]
    );
    for request in &received {
        assert_well_formed(request);
        for hop in [
            "connection",
            "x-secret",
            "keep-alive",
            "te",
            "trailer",
            "proxy-authorization",
            "proxy-connection",
            "upgrade",
        ] {
            assert!(
                !request.has(hop),
                "{hop} reached the origin: {:?}",
                request.head_text()
            );
        }
    }
    assert!(
        !received[0].has("content-length"),
        "{:?}",
        received[0].head_text()
    );
    assert!(received[0].body.is_empty());
    assert_eq!(received[1].value("content-length").as_deref(), Some("5"));
    assert_eq!(received[1].body, b"hello");
    assert_eq!(
        received[2].value("transfer-encoding").as_deref(),
        Some("chunked")
    );
}

#[tokio::test]
async fn a_response_framed_by_both_length_and_chunks_reaches_the_client_whole() {
    // The chunked coding wins (RFC 9112 §6.3): ten bytes, whatever Content-Length claims.
    let origin = RecordingOrigin::start(
        "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\nContent-Length: 3\r\n\
         Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
    )
    .await;
    let node = caje_testkit::TestNode::start(&origin.url()).await;
    let first = get(&node.url("/doubly-framed")).await;
    assert_eq!(first.text(), "0123456789");
    assert_ne!(first.header("content-length"), Some("3"));
    let again = get_with(&node.url("/doubly-framed"), &[]).await;
    assert_eq!(again.text(), "0123456789");
    assert_eq!(again.x_cache(), "HIT", "the whole body was stored");
    assert_eq!(origin.received().len(), 1);
}
