//! What the security tests share: raw connections that show exactly what went over the wire,
//! an origin that records the exact bytes caje sends it, and a reflecting origin.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use caje_testkit::{TestNode, TestOrigin, eventually, policies, respond};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest a raw exchange waits for the peer to answer or hang up.
const RAW_LIMIT: Duration = Duration::from_secs(10);

/// What came back on one raw connection.
pub struct RawReply {
    pub text: String,
    /// The peer closed the connection (rather than `RAW_LIMIT` running out).
    pub closed: bool,
}

impl RawReply {
    /// The status line's code, e.g. `"400"`.
    pub fn status(&self) -> &str {
        self.text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .unwrap_or("")
    }

    /// How many responses came back (status lines).
    pub fn responses(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count()
    }
}

/// Writes `bytes` on a fresh connection to `addr` and reads until the peer closes it (or
/// [`RAW_LIMIT`] passes, which a test that expects a close reports as a failure).
pub async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.expect("connect to caje");
    stream.write_all(bytes).await.expect("write the request");
    let mut received = Vec::new();
    let read = tokio::time::timeout(RAW_LIMIT, stream.read_to_end(&mut received)).await;
    RawReply {
        text: String::from_utf8_lossy(&received).into_owned(),
        closed: matches!(read, Ok(Ok(_))),
    }
}

/// A node that serves only `site.test` in front of `origin`.
pub async fn site_node(origin: &str) -> TestNode {
    TestNode::start_with_origin(origin, "read_timeout = \"5s\"\nhosts = [\"site.test\"]", "").await
}

/// The file name policies are installed under.
pub const POLICY_FILE: &str = "10-policy.wasm";

/// A node in front of `origin` with the `policies/` crate `crate_name` installed as
/// [`POLICY_FILE`], once caje has loaded (or refused) it.
pub async fn node_with_policy(origin: &str, crate_name: &str) -> TestNode {
    let node = TestNode::start_with(origin, "[policies]\nreload_debounce = \"50ms\"\n").await;
    policies::install(&node.policies_dir(), POLICY_FILE, crate_name);
    eventually("the module to load", Duration::from_secs(60), || {
        node.node()
            .context
            .policies
            .status()
            .iter()
            .any(|module| module.file == POLICY_FILE)
    })
    .await;
    node
}

/// One request as an origin received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line and header lines, exactly as sent (CRLF-terminated lines).
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn head_text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    /// Lower-cased header names and raw values, in order.
    pub fn fields(&self) -> Vec<(String, Vec<u8>)> {
        split_lines(&self.head)
            .skip(1)
            .filter(|line| !line.is_empty())
            .map(|line| {
                let colon = line.iter().position(|b| *b == b':').unwrap_or(line.len());
                let value = line.get(colon + 1..).unwrap_or_default();
                (
                    String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase(),
                    value.trim_ascii().to_vec(),
                )
            })
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields().iter().any(|(field, _)| field == name)
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| String::from_utf8_lossy(&value).into_owned())
    }
}

/// Lines of a head split at CRLF (a bare CR or LF stays inside its line, to be caught).
fn split_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = head;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.windows(2).position(|w| w == b"\r\n");
        let (line, next) = match end {
            Some(end) => (&rest[..end], &rest[end + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(line)
    })
}

/// A raw HTTP/1.1 origin that records every request's exact bytes and answers each with
/// `response`. It reads a body only as long as the request's own `Content-Length` says, like a
/// real server: a length that does not match the body caje sends shows as a stalled request.
pub struct RecordingOrigin {
    pub addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl RecordingOrigin {
    pub async fn start(response: &'static str) -> RecordingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let recording = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_recorded(stream, response, recording.clone()));
            }
        });
        RecordingOrigin { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("recording").clone()
    }
}

async fn serve_recorded(
    stream: TcpStream,
    response: &'static str,
    received: Arc<Mutex<Vec<Received>>>,
) {
    let mut reader = Reader {
        stream,
        buffer: Vec::new(),
    };
    while let Some(head) = reader.until(b"\r\n\r\n").await {
        let mut request = Received {
            head,
            body: Vec::new(),
        };
        let chunked = request
            .value("transfer-encoding")
            .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            reader.chunked().await
        } else {
            let length = request
                .value("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            reader.exactly(length).await
        };
        let Some(body) = body else { return };
        request.body = body;
        received.lock().expect("recording").push(request);
        if reader.stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Buffered reads off a raw connection; `None` once the peer hangs up.
struct Reader {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Reader {
    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// The bytes up to and including `delimiter`.
    async fn until(&mut self, delimiter: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self
                .buffer
                .windows(delimiter.len())
                .position(|w| w == delimiter)
            {
                return Some(self.buffer.drain(..at + delimiter.len()).collect());
            }
            self.fill().await?;
        }
    }

    async fn exactly(&mut self, length: usize) -> Option<Vec<u8>> {
        while self.buffer.len() < length {
            self.fill().await?;
        }
        Some(self.buffer.drain(..length).collect())
    }

    /// A chunked body, decoded (no trailer fields expected).
    async fn chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.until(b"\r\n").await?;
            let size = std::str::from_utf8(&line).ok()?.trim();
            let size = usize::from_str_radix(size, 16).ok()?;
            let data = self.exactly(size + 2).await?;
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(&data[..size]);
        }
    }
}

/// An origin that answers every path with the request headers it received, one `name: value`
/// line each (so a header that reaches it shows in the cached body), cacheable for a minute.
pub async fn reflecting_origin() -> TestOrigin {
    TestOrigin::start(|request: http::Request<hyper::body::Incoming>| async move {
        let mut body = String::new();
        for (name, value) in request.headers() {
            body.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        respond(200, &[("cache-control", "max-age=60")], &body)
    })
    .await
}
