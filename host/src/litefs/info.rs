//! `GET /info` on LiteFS's HTTP API: the node's own view of its role.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;

use super::error::Error;

/// `/info` answers with a few hundred bytes; anything much larger is not LiteFS.
const MAX_BODY: usize = 64 * 1024;

/// LiteFS's `NodeInfo` (`litefs.go`), as served by `/info`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// The cluster's ID; empty until the node joined a cluster.
    #[serde(default, rename = "clusterID")]
    pub cluster_id: String,
    /// Whether this node holds the primary lease.
    pub is_primary: bool,
    /// Whether this node may become primary.
    pub candidate: bool,
    /// LiteFS's data directory on this node.
    #[serde(default)]
    pub path: String,
    /// The current primary, as far as this node knows.
    #[serde(default)]
    pub primary: PrimaryInfo,
}

/// The `primary` object of `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PrimaryInfo {
    /// The primary's `lease.hostname`; empty when no primary is known.
    #[serde(default)]
    pub hostname: String,
}

/// Asks the LiteFS node at `addr` (`host:port`) for its `/info`, within `timeout`.
pub async fn fetch_info(addr: &str, timeout: Duration) -> Result<NodeInfo, Error> {
    let fail = |reason: String| Error::Info {
        addr: addr.to_owned(),
        reason,
    };
    let body = tokio::time::timeout(timeout, get_info(addr))
        .await
        .map_err(|_| {
            fail(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        })?
        .map_err(fail)?;
    serde_json::from_slice(&body).map_err(|e| fail(format!("the answer is not LiteFS's JSON: {e}")))
}

async fn get_info(addr: &str) -> Result<Bytes, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection future drives the socket; it ends when the request below is answered.
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get("/info")
        .header(hyper::header::HOST, addr)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(format!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_litefs_answers() {
        let primary: NodeInfo = serde_json::from_str(
            r#"{"clusterID":"LFSC0FD8B265D90CC620","isPrimary":true,"candidate":true,
                "path":"/data/litefs","primary":{"hostname":"node-a"}}"#,
        )
        .unwrap();
        assert!(primary.is_primary);
        assert_eq!(primary.primary.hostname, "node-a");
        let fresh: NodeInfo = serde_json::from_str(
            r#"{"isPrimary":false,"candidate":false,"path":"/d","primary":{}}"#,
        )
        .unwrap();
        assert_eq!(fresh.cluster_id, "");
        assert_eq!(fresh.primary.hostname, "");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = fetch_info(&addr, Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&addr) && err.contains("cannot connect"),
            "{err}"
        );
        assert!(err.contains("http_addr"), "{err}");
    }
}
