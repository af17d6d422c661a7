//! Warming: a page the manifest lists fetched into this node's cache through exactly the
//! path a client's miss takes (route → lookup → coalesced fetch → store → manifest record).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use http::{Method, Request};
use http_body_util::BodyExt;

use super::Proxy;
use super::canonicalize::CanonicalRequest;
use super::context::Action;
use super::outcome::CacheOutcome;
use super::route;
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
    /// policies, lookup, coalescing, store decision and store), and waits until the body is
    /// stored. The request carries no client headers, so a row of a `Vary` variant warms the
    /// variant of a request without them.
    pub async fn warm(self: &Arc<Self>, row: &ManifestRow) -> Warmed {
        let record = &row.record;
        if record.method != Method::GET {
            return Warmed::NotStored(format!("only GET pages are warmed, not {}", record.method));
        }
        let mut parts = match Request::get(record.url.as_str()).body(()) {
            Ok(request) => request.into_parts().0,
            Err(err) => return Warmed::Failed(format!("invalid URL {:?}: {err}", record.url)),
        };
        let request = match CanonicalRequest::new(&mut parts, WARMER, &self.scheme) {
            Ok(request) => request,
            Err(err) => return Warmed::Failed(format!("invalid URL {:?}: {err}", record.url)),
        };
        let chain = self.node.policies.chain();
        let ctx = match route::route(&self.origins, &self.default_origin, chain, request) {
            Ok(ctx) if ctx.action == Action::Lookup => ctx,
            Ok(_) => {
                return Warmed::NotStored("a policy passes it to the origin uncached".into());
            }
            Err(answer) if answer.response.status().is_server_error() => {
                return Warmed::Failed(format!("refused with {}", answer.response.status()));
            }
            Err(answer) => {
                return Warmed::NotStored(format!(
                    "answered without the origin ({}): an unknown host or a policy's own response",
                    answer.response.status()
                ));
            }
        };
        let answer = self.serve(&ctx).await;
        if let Some(outcome) = answer.outcome {
            outcome.count();
        }
        let status = answer.response.status();
        let mut body = answer.response.into_body();
        // The fill is committed when its body ends: drain it without keeping it.
        while let Some(frame) = body.frame().await {
            if let Err(err) = frame {
                return Warmed::Failed(format!("the body broke off: {err}"));
            }
        }
        match answer.outcome {
            Some(
                CacheOutcome::Hit { .. }
                | CacheOutcome::StaleWhileRevalidate { .. }
                | CacheOutcome::StaleIfError { .. },
            ) => Warmed::Present,
            Some(CacheOutcome::Revalidated { .. }) => Warmed::Revalidated,
            Some(CacheOutcome::Stored { .. }) => Warmed::Stored,
            _ if status.is_server_error() => {
                Warmed::Failed(format!("the origin fetch answered {status}"))
            }
            Some(CacheOutcome::NotStored {
                reason: Some(reason),
                ..
            }) => Warmed::NotStored(format!(
                "the origin answered {status}, not storable ({})",
                reason.describe()
            )),
            _ => Warmed::NotStored(format!("the origin answered {status}, not storable")),
        }
    }
}
