//! Bad input and failing origins: clear answers, no crash, nothing corrupted.

use std::io::{Read, Write};
use std::time::Duration;

use caje::demo_origin::DemoOrigin;
use caje_testkit::{TestNode, TestOrigin, get, respond};

fn raw_request(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    // Read the response head only: a 400 may keep the connection open.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_node_keeps_serving() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    let addr = node.node().addr;
    let cases: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET /fast HTTP/1.1\r\n\r\n",
        b"GET /fast HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET http://elsewhere.test/fast HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ];
    for case in cases {
        let answer = tokio::task::spawn_blocking(move || raw_request(addr, case))
            .await
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?} got {answer:?}",
            String::from_utf8_lossy(case)
        );
    }
    let huge_header = format!(
        "GET /fast HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "x".repeat(100_000)
    );
    let answer = tokio::task::spawn_blocking(move || raw_request(addr, huge_header.as_bytes()))
        .await
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "{answer:?}"
    );
    assert_eq!(get(&node.url("/fast")).await.status, 200);
    assert_eq!(
        origin.state.total_requests(),
        1,
        "no bad request reached the origin"
    );
}

#[tokio::test]
async fn an_unreachable_origin_is_a_502_that_names_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = TestNode::start(&format!("http://127.0.0.1:{port}")).await;
    let reply = get(&node.url("/anything")).await;
    assert_eq!(reply.status, 502);
    assert!(
        reply.text().contains("origin origin is unreachable"),
        "{}",
        reply.text()
    );
    assert!(node.cache_files().is_empty());
}

#[tokio::test]
async fn a_slow_origin_is_a_504() {
    let origin = TestOrigin::start(|_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        respond(200, &[("cache-control", "max-age=60")], "late")
    })
    .await;
    let short = TestNode::start_with_origin(&origin.url(), "read_timeout = \"300ms\"", "").await;
    let reply = get(&short.url("/late")).await;
    assert_eq!(reply.status, 504);
    assert!(
        reply.text().contains("did not answer within 300ms"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_never_stored() {
    // A raw origin that promises 100 bytes, sends 10 and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ncontent-length: 100\r\n\r\nonly ten b";
                let _ = stream.write_all(head.as_bytes()).await;
            });
        }
    });
    let node = TestNode::start(&format!("http://{addr}")).await;
    for _ in 0..2 {
        use http_body_util::BodyExt;
        let response = caje_testkit::open(&node.url("/short")).await;
        assert!(
            response.into_body().collect().await.is_err(),
            "a truncated body must end in an error"
        );
    }
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
    eventually_no_files(&node).await;
}

async fn eventually_no_files(node: &TestNode) {
    caje_testkit::eventually(
        "the broken fill's temp file is removed",
        Duration::from_secs(5),
        || node.cache_files().is_empty(),
    )
    .await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_leaves_no_temp_files() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::from_millis(500))
        .await
        .unwrap();
    let mut node = TestNode::start(&origin.url()).await;
    let url = node.url("/slow/in-flight");
    let request = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    node.stop().await;
    let reply = request.await.unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("slow page"));
    assert!(
        node.cache_files()
            .iter()
            .all(|f| !f.to_string_lossy().contains(".tmp."))
    );
}

#[test]
fn an_invalid_config_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("caje.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ncache_dir = \"c\"\ndatabase = \"m.db\"\npolicies_dir = \"p\"\ndefault_origin = \"web\"\n\n\
         [origins.web]\nurl = \"http://127.0.0.1:1\"\nread_timeout = \"soon\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_caje"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:9: `origins.web.read_timeout`: invalid duration",
            config.display()
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("c").exists(),
        "nothing is created by a config that does not load"
    );
}

#[tokio::test]
async fn an_unusable_origin_ca_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    std::fs::create_dir(dir.path().join("p")).unwrap();
    let text = "listen = \"127.0.0.1:0\"\ncache_dir = \"c\"\ndatabase = \"m.db\"\npolicies_dir = \"p\"\n\
                default_origin = \"web\"\n\n[origins.web]\nurl = \"https://localhost:1\"\nca_file = \"ca.pem\"\n";
    let config = caje::config::Config::parse(text, &dir.path().join("caje.toml")).unwrap();
    let err = caje::app::Node::start(&config)
        .await
        .err()
        .expect("must not start");
    let message = format!("{err:#}");
    assert!(
        message.contains("ca_file") && message.contains("ca.pem") && message.contains("PEM"),
        "{message}"
    );
}

#[tokio::test]
async fn hosts_no_origin_serves_are_refused_and_listed_hosts_pick_their_origin() {
    let web =
        TestOrigin::start(|_| async { respond(200, &[("cache-control", "max-age=60")], "web") })
            .await;
    let api =
        TestOrigin::start(|_| async { respond(200, &[("cache-control", "max-age=60")], "api") })
            .await;
    let node = TestNode::start_with_origin(
        &web.url(),
        "hosts = [\"site.test\", \"*.example.com\"]",
        &format!(
            "[origins.api]\nurl = \"{}\"\nhosts = [\"api.test\"]\n",
            api.url()
        ),
    )
    .await;
    let url = node.url("/x");
    let ask = |host: &'static str| {
        let url = url.clone();
        async move { caje_testkit::get_with(&url, &[("host", host)]).await }
    };
    assert_eq!(ask("site.test").await.text(), "web");
    assert_eq!(ask("WWW.Example.com:8080").await.text(), "web");
    assert_eq!(ask("api.test").await.text(), "api");
    for refused in ["other.test", "example.com", "evil-example.com", "127.0.0.1"] {
        let reply = ask(refused).await;
        assert_eq!(reply.status, 421, "{refused}");
        assert!(
            reply.text().contains("does not serve host"),
            "{}",
            reply.text()
        );
    }
    assert_eq!(
        web.hits("/x"),
        2,
        "one fill per host: site.test and www.example.com:8080"
    );
    assert_eq!(api.hits("/x"), 1);
}
