//! Named origins and their pooled HTTP clients (HTTP/1.1, HTTP/2 over TLS with rustls).
//! Failures become [`OriginError`]s that name the origin, so a 502/504 tells the operator where to look.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::OriginConfig;
use crate::body::Body;

pub struct Origin {
    pub name: String,
    /// Lower-cased `hosts` patterns from the config.
    hosts: Vec<String>,
    base: Uri,
    host: HeaderValue,
    pub read_timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OriginError {
    #[error("origin {origin} is unreachable: {detail}")]
    Unreachable { origin: String, detail: String },
    #[error("origin {origin} did not answer within {}", humantime::format_duration(*after))]
    Timeout { origin: String, after: Duration },
    #[error("origin {origin} broke off the response: {detail}")]
    Broken { origin: String, detail: String },
}

impl OriginError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            OriginError::Timeout { .. } => http::StatusCode::GATEWAY_TIMEOUT,
            _ => http::StatusCode::BAD_GATEWAY,
        }
    }
}

impl Origin {
    fn new(name: &str, config: &OriginConfig) -> Result<Origin, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(https);
        let base = config.url.0.clone();
        let host = match &config.host {
            Some(host) => HeaderValue::from_str(host),
            None => HeaderValue::from_str(base.authority().map_or("", |a| a.as_str())),
        }
        .map_err(|_| format!("origins.{name}.host is not a valid Host header value"))?;
        let hosts = config
            .hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        Ok(Origin {
            name: name.to_owned(),
            hosts,
            base,
            host,
            read_timeout: config.read_timeout,
            client,
        })
    }

    /// The origin's URL for a client path: the base URL's path prefix joined with it.
    pub fn uri_for(&self, path_and_query: &str) -> Uri {
        let prefix = self.base.path().trim_end_matches('/');
        let joined = format!("{prefix}{path_and_query}");
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = PathAndQuery::try_from(joined).ok();
        Uri::from_parts(parts).unwrap_or_else(|_| self.base.clone())
    }

    /// Sends a request (its Host is replaced by the origin's) and waits for the response head.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<Incoming>, OriginError> {
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.read_timeout, self.client.request(request)).await;
        metrics::histogram!("caje_origin_seconds", "origin" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        match result {
            Err(_) => Err(OriginError::Timeout {
                origin: self.name.clone(),
                after: self.read_timeout,
            }),
            Ok(Err(err)) if err.is_connect() => Err(OriginError::Unreachable {
                origin: self.name.clone(),
                detail: error_chain(&err),
            }),
            Ok(Err(err)) => Err(OriginError::Broken {
                origin: self.name.clone(),
                detail: error_chain(&err),
            }),
            Ok(Ok(mut response)) => {
                // Travels with the response (pass-through keeps its extensions) to the access log.
                response
                    .extensions_mut()
                    .insert(UpstreamTime(started.elapsed()));
                Ok(response)
            }
        }
    }

    /// Whether this origin serves a client `Host` (port ignored; `*.example.com` matches subdomains).
    fn serves(&self, host: &str) -> bool {
        let name = host_name(host);
        self.hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    name.len() > suffix.len() + 1
                        && name.ends_with(suffix)
                        && name[..name.len() - suffix.len()].ends_with('.')
                }
                None => name == pattern,
            })
    }

    /// Error for a body that stalled longer than the read timeout.
    pub fn body_timeout(&self) -> OriginError {
        OriginError::Timeout {
            origin: self.name.clone(),
            after: self.read_timeout,
        }
    }
}

/// Web PKI roots, plus the operator's own CA for private origins.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = ca_file {
        let unusable = |err: &dyn std::fmt::Display| {
            format!(
                "ca_file {}: {err}; it must hold PEM certificates (-----BEGIN CERTIFICATE-----)",
                file.display()
            )
        };
        let certificates = CertificateDer::pem_file_iter(file).map_err(|err| unusable(&err))?;
        let mut added = 0;
        for certificate in certificates {
            roots
                .add(certificate.map_err(|err| unusable(&err))?)
                .map_err(|err| unusable(&err))?;
            added += 1;
        }
        if added == 0 {
            return Err(unusable(&"no certificate found"));
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|err| format!("cannot set up TLS: {err}"))
}

/// A Host value without its port (IPv6 literals keep their brackets).
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !name.ends_with(':') =>
        {
            name
        }
        _ => host,
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How long the origin took to send the response head.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTime(pub Duration);

/// Every configured origin by name.
pub struct Origins(HashMap<String, Arc<Origin>>);

impl Origins {
    /// Builds every origin's client; an unusable `ca_file` or `host` is an error naming the origin.
    pub fn new<'a>(
        configs: impl IntoIterator<Item = (&'a String, &'a OriginConfig)>,
    ) -> Result<Origins, String> {
        let mut origins = HashMap::new();
        for (name, config) in configs {
            origins.insert(name.clone(), Arc::new(Origin::new(name, config)?));
        }
        Ok(Origins(origins))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Origin>> {
        self.0.get(name)
    }

    /// The origin a client `Host` belongs to: the one listing it in `hosts`, else `default` when no
    /// origin lists hosts at all. `None`: caje does not serve this host.
    pub fn for_host(&self, host: &str, default: &str) -> Option<&Arc<Origin>> {
        if let Some(origin) = self.0.values().find(|origin| origin.serves(host)) {
            return Some(origin);
        }
        if self.0.values().all(|origin| origin.hosts.is_empty()) {
            return self.0.get(default);
        }
        None
    }

    /// Whether every request host is accepted (no origin lists `hosts`).
    pub fn accepts_any_host(&self) -> bool {
        self.0.values().all(|origin| origin.hosts.is_empty())
    }
}
