//! An origin whose behaviour a test writes as a closure, counting the requests it answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use caje::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub struct TestOrigin {
    pub addr: SocketAddr,
    counts: Arc<Mutex<HashMap<String, u64>>>,
    serving: tokio::task::JoinHandle<()>,
}

impl TestOrigin {
    /// Serves `handler` on an ephemeral loopback port until the test's runtime ends.
    pub async fn start<F, Fut>(handler: F) -> TestOrigin
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        TestOrigin::serve(handler, None).await
    }

    /// Serves `handler` over TLS (h2 and http/1.1 by ALPN) with a fresh self-signed certificate
    /// for `localhost`; returns the origin and the certificate in PEM, for a client to trust.
    pub async fn start_tls<F, Fut>(handler: F) -> (TestOrigin, String)
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("self-signed certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (
            TestOrigin::serve(handler, Some(acceptor)).await,
            certified.cert.pem(),
        )
    }

    async fn serve<F, Fut>(handler: F, tls: Option<tokio_rustls::TlsAcceptor>) -> TestOrigin
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let counts: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let counting = counts.clone();
        let serving = tokio::spawn(async move {
            // Connections live in this set so that stopping the origin closes them too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let counts = counting.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let key = request
                            .uri()
                            .path_and_query()
                            .map_or("/", |pq| pq.as_str())
                            .to_owned();
                        *counts.lock().expect("counts").entry(key).or_default() += 1;
                        let answer = handler(request);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        TestOrigin {
            addr,
            counts,
            serving,
        }
    }

    /// An origin whose every page is cacheable for an hour and answers with its path.
    pub async fn cacheable() -> TestOrigin {
        TestOrigin::start(|request: Request<Incoming>| async move {
            let path = request.uri().path().to_owned();
            respond(200, &[("cache-control", "max-age=3600")], &path)
        })
        .await
    }

    /// Stops listening and closes every connection: the origin becomes unreachable.
    pub async fn stop(&self) {
        self.serving.abort();
        let mut waited = 0;
        while std::net::TcpStream::connect(self.addr).is_ok() && waited < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            waited += 1;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered for a path (with its query string).
    pub fn hits(&self, path_and_query: &str) -> u64 {
        self.counts
            .lock()
            .expect("counts")
            .get(path_and_query)
            .copied()
            .unwrap_or(0)
    }
}

/// A response with the given status, headers and text body.
pub fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(body.to_owned()));
    *response.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    for (name, value) in headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    response
}
