//! Warming: fetching a page the manifest lists into this node's cache through exactly the
//! path a client's miss takes (route and policies → lookup → coalesced origin fetch → fill →
//! manifest record).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use http::Request;
use http_body_util::BodyExt;

use super::Proxy;
use super::canonical::CanonicalRequest;
use super::route::{Action, Routed};
use crate::manifest::ManifestRow;

/// The client address of warming requests: their origin requests carry
/// `X-Forwarded-For: 127.0.0.1`.
const WARMER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

/// What warming one manifest row did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warmed {
    /// Fetched from the origin and stored.
    Stored,
    /// A stale copy on this node was revalidated with the origin.
    Revalidated,
    /// This node already held a usable copy; nothing was fetched.
    Present,
    /// Not stored, and why: the origin's response was not storable, a policy passes the URL
    /// through, or the request was answered without the origin.
    NotStored(String),
    /// The fetch failed.
    Failed(String),
}

impl Proxy {
    /// Fetches the page of a manifest row as a client's GET of its URL would (same routing and
    /// policies, lookup, coalescing, http-cache-semantics verdict and store), and waits until
    /// the body is stored. The request carries no client headers, so a row of a `Vary` variant
    /// warms the variant of a request without them.
    pub async fn warm(self: &Arc<Self>, row: &ManifestRow) -> Warmed {
        let record = &row.record;
        if record.method != "GET" {
            return Warmed::NotStored(format!("only GET pages are warmed, not {}", record.method));
        }
        let mut parts = match Request::get(record.url.as_str()).body(()) {
            Ok(request) => request.into_parts().0,
            Err(err) => return Warmed::Failed(format!("invalid URL {:?}: {err}", record.url)),
        };
        let mut request = match CanonicalRequest::new(&mut parts, WARMER, &self.scheme) {
            Ok(request) => request,
            Err(err) => return Warmed::Failed(format!("invalid URL {:?}: {err}", record.url)),
        };
        let route = match self.route(&mut request) {
            Routed::Go(route, Action::Lookup) => route,
            Routed::Go(_, Action::Pass) => {
                return Warmed::NotStored("a policy passes it to the origin uncached".into());
            }
            Routed::Answer(answer) if answer.status().is_server_error() => {
                return Warmed::Failed(format!("refused with {}", answer.status()));
            }
            Routed::Answer(answer) => {
                return Warmed::NotStored(format!(
                    "answered without the origin ({}): an unknown host or a policy's own response",
                    answer.status()
                ));
            }
        };
        let response = self.lookup(&request, &route).await;
        let (parts, mut body) = response.into_parts();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let x_cache = header("x-cache").unwrap_or("").to_owned();
        let stored = header("cache-status").is_some_and(|v| v.contains("; stored"));
        let status = parts.status;
        // The fill is committed when its body ends: drain it without keeping it.
        while let Some(frame) = body.frame().await {
            if let Err(err) = frame {
                return Warmed::Failed(format!("the body broke off: {err}"));
            }
        }
        match x_cache.as_str() {
            "HIT" | "STALE" => Warmed::Present,
            "REVALIDATED" => Warmed::Revalidated,
            _ if stored => Warmed::Stored,
            _ if status.is_server_error() => {
                Warmed::Failed(format!("the origin fetch answered {status}"))
            }
            _ => Warmed::NotStored(format!("the origin answered {status}, not storable")),
        }
    }
}
