//! A minimal HTTP client for tests: whole responses, HTTP/1.1 or h2c (prior knowledge).

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `X-Cache` verdict (`HIT`, `MISS`, `STALE`, `BYPASS`, `REVALIDATED`), or "" when absent.
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request over HTTP/1.1 and reads the whole response.
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    try_send(request)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Like [`send`], but a failed connection, request or body is returned rather than a panic
/// (for load loops that count failures).
pub async fn try_send(request: Request<Full<Bytes>>) -> Result<Reply, String> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .map_err(|err| format!("request failed: {err}"))?;
    receive(response).await
}

pub async fn get(url: &str) -> Reply {
    get_with(url, &[]).await
}

pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(get_request(url, headers)).await
}

/// Like [`get`], returning failures (see [`try_send`]).
/// GETs `url` with `Host: host`, asserts a 200 and returns its `X-Cache` verdict.
pub async fn x_cache_as(url: &str, host: &str) -> String {
    let reply = get_with(url, &[("host", host)]).await;
    assert_eq!(
        reply.status,
        http::StatusCode::OK,
        "{url}: {}",
        reply.text()
    );
    reply.x_cache().to_owned()
}

pub async fn try_get(url: &str) -> Result<Reply, String> {
    try_send(get_request(url, &[])).await
}

fn get_request(url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::get(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::default()).expect("valid request")
}

/// GET over HTTP/2 without TLS (h2c with prior knowledge).
pub async fn get_h2(url: &str) -> Reply {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::get(url)
        .body(Full::<Bytes>::default())
        .expect("valid request");
    let response = client.request(request).await.expect("h2 request failed");
    receive(response)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

async fn receive(response: http::Response<hyper::body::Incoming>) -> Result<Reply, String> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|err| format!("response body failed: {err}"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A GET whose body the caller streams (or abandons) itself.
pub async fn open(url: &str) -> http::Response<hyper::body::Incoming> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(url)
        .body(Full::<Bytes>::default())
        .expect("valid request");
    client.request(request).await.expect("request failed")
}
