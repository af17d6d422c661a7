//! A small origin for the demo config, the tests and the benchmarks: slow and fast pages, validators,
//! Vary, stale-while-revalidate/stale-if-error, large bodies, and a switch to make it fail.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::body::Body;
use crate::sync::lock;

const CHUNK: usize = 64 << 10;

/// Shared state: request counters and the failure switch.
#[derive(Default)]
pub struct DemoState {
    counts: Mutex<HashMap<String, u64>>,
    failing: AtomicBool,
    /// Bumped by `POST /_demo/version` to change validators and bodies.
    version: AtomicU64,
    slow_delay: Mutex<Duration>,
}

impl DemoState {
    /// Requests the origin has answered for a path (query strings included).
    pub fn requests(&self, path: &str) -> u64 {
        lock(&self.counts).get(path).copied().unwrap_or(0)
    }

    /// All requests answered, outside `/_demo/`.
    pub fn total_requests(&self) -> u64 {
        lock(&self.counts).values().sum()
    }

    /// While failing, every page answers 503.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Changes ETags, Last-Modified and bodies, as a deploy of the site would.
    pub fn bump_version(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }
}

/// A running demo origin.
pub struct DemoOrigin {
    pub addr: SocketAddr,
    pub state: Arc<DemoState>,
}

impl DemoOrigin {
    /// Starts serving on `listen` in the background; `/slow` sleeps `slow_delay` before answering.
    pub async fn start(listen: SocketAddr, slow_delay: Duration) -> std::io::Result<DemoOrigin> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(DemoState {
            slow_delay: Mutex::new(slow_delay),
            ..DemoState::default()
        });
        let serving = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(DemoOrigin { addr, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn answer(state: &DemoState, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    if let Some(control) = path.strip_prefix("/_demo/") {
        return control_page(state, control, request.method());
    }
    *lock(&state.counts).entry(path_and_query).or_default() += 1;
    if state.failing.load(Ordering::SeqCst) {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-store",
            "the demo origin is failing on purpose\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return page(
            StatusCode::OK,
            "no-store",
            &format!("{} {path} done\n", request.method()),
        );
    }
    let version = state.version.load(Ordering::SeqCst);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => page(
            StatusCode::OK,
            "no-store",
            "caje demo origin: try /slow, /fast, /etag, /vary, /bytes/1048576\n",
        ),
        ["slow"] | ["slow", ..] => {
            let delay = *lock(&state.slow_delay);
            tokio::time::sleep(delay).await;
            page(
                StatusCode::OK,
                "max-age=60",
                &format!("slow page, generated after {}ms\n", delay.as_millis()),
            )
        }
        ["fast"] | ["fast", ..] => page(StatusCode::OK, "max-age=60", "fast page\n"),
        ["etag"] => validated(&request, version, true),
        ["last-modified"] => validated(&request, version, false),
        ["vary"] => {
            let coding = request
                .headers()
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            let mut response = page(
                StatusCode::OK,
                "max-age=60",
                &format!("variant for accept-encoding={coding}\n"),
            );
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            response
        }
        ["swr"] => page(
            StatusCode::OK,
            "max-age=1, stale-while-revalidate=60",
            &format!("swr version {version}\n"),
        ),
        ["sie"] => page(
            StatusCode::OK,
            "max-age=1, stale-if-error=300",
            &format!("sie version {version}\n"),
        ),
        ["private"] => page(StatusCode::OK, "private, max-age=60", "private page\n"),
        ["cookie"] => {
            let mut response = page(StatusCode::OK, "max-age=60", "page that sets a cookie\n");
            response
                .headers_mut()
                .insert(header::SET_COOKIE, HeaderValue::from_static("session=abc"));
            response
        }
        ["bytes", size] => match size.parse::<usize>() {
            Ok(size) => bytes(size, version),
            Err(_) => page(
                StatusCode::BAD_REQUEST,
                "no-store",
                "size must be a number\n",
            ),
        },
        ["status", code] => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => page(status, "max-age=60", &format!("status {status}\n")),
            None => page(StatusCode::BAD_REQUEST, "no-store", "unknown status\n"),
        },
        _ => page(StatusCode::NOT_FOUND, "max-age=10", "not found\n"),
    }
}

fn control_page(state: &DemoState, control: &str, method: &Method) -> Response<Body> {
    match (method, control) {
        (&Method::GET, "stats") => {
            let counts = lock(&state.counts).clone();
            let mut response = page(
                StatusCode::OK,
                "no-store",
                &serde_json::to_string(&counts).unwrap_or_default(),
            );
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        (&Method::POST, "fail") => {
            state.set_failing(true);
            page(StatusCode::OK, "no-store", "failing\n")
        }
        (&Method::POST, "recover") => {
            state.set_failing(false);
            page(StatusCode::OK, "no-store", "recovered\n")
        }
        (&Method::POST, "version") => {
            state.bump_version();
            page(StatusCode::OK, "no-store", "version bumped\n")
        }
        _ => page(StatusCode::NOT_FOUND, "no-store", "unknown demo control\n"),
    }
}

fn page(status: StatusCode, cache_control: &'static str, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    describe(&mut response, "text/plain; charset=utf-8", cache_control);
    response
}

fn describe(
    response: &mut Response<Body>,
    content_type: &'static str,
    cache_control: &'static str,
) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
}

/// A page with an ETag or a Last-Modified date that answers conditional requests with 304.
fn validated(request: &Request<Incoming>, version: u64, use_etag: bool) -> Response<Body> {
    let etag = format!("\"v{version}\"");
    let modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + version * 60),
    );
    let matches = if use_etag {
        request
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.to_str().is_ok_and(|v| v.contains(&etag)))
    } else {
        request
            .headers()
            .get(header::IF_MODIFIED_SINCE)
            .is_some_and(|v| v.as_bytes() == modified.as_bytes())
    };
    let mut response = if matches {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=1"));
        response
    } else {
        page(
            StatusCode::OK,
            "max-age=1",
            &format!("validated page version {version}\n"),
        )
    };
    let headers = response.headers_mut();
    headers.insert("x-demo-version", HeaderValue::from(version));
    if use_etag {
        headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("ASCII"));
    } else {
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_str(&modified).expect("ASCII"),
        );
    }
    response
}

/// `size` deterministic bytes, streamed in chunks so the origin itself never holds a large body.
fn bytes(size: usize, version: u64) -> Response<Body> {
    let chunks = futures_util::stream::unfold(0usize, move |sent| async move {
        (sent < size).then(|| {
            let len = CHUNK.min(size - sent);
            let chunk: Vec<u8> = (sent..sent + len)
                .map(|i| pattern_byte(i, version))
                .collect();
            (Ok::<_, Infallible>(Bytes::from(chunk)), sent + len)
        })
    });
    let mut response = Response::new(Body::stream(chunks));
    describe(&mut response, "application/octet-stream", "max-age=3600");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    response
}

/// Byte `i` of every `/bytes/N` body (tests recompute it to check what they received).
pub fn pattern_byte(i: usize, version: u64) -> u8 {
    (i.wrapping_mul(31)
        .wrapping_add(i >> 8)
        .wrapping_add(version as usize)
        % 251) as u8
}
