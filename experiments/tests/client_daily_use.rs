//! What a daily user of the client relies on, end to end through the in-process testbed:
//! guards and the consensus survive restarts (even with the authorities down), a dead primary
//! guard hands over to the next primary, circuits are ready before the first request, and the
//! HTTP CONNECT port and SOCKS RESOLVE reach the exit like SOCKS CONNECT does.

use onionlab_client::socks_codec::{Address, Command, Reply, Request, decode_reply, encode_request};
use onionlab_client::{Client, ClientConfig, ClientHandle};
use onionlab_experiments::socks_client::{connect, http_get};
use onionlab_experiments::testbed::{DEMO_HOSTNAME, Testbed, TestbedConfig};
use onionlab_link::config::AuthorityEntry;
use onionlab_proto::keys::fingerprint;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(60);

fn client_config(tb: &Testbed, dir: &Path, authority: SocketAddr) -> ClientConfig {
    let entry = AuthorityEntry {
        address: authority,
        identity: fingerprint(&tb.authority().identity),
    };
    let mut c = ClientConfig::new(dir.to_owned(), vec![entry]);
    c.socks_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.enforce_distinct_subnets = false;
    c
}

async fn fetch_demo(tb: &Testbed, client: &ClientHandle) {
    let s = connect(client.socks_addr, DEMO_HOSTNAME, tb.demo.addr.port(), None)
        .await
        .expect("SOCKS connect to the demo site");
    let r = http_get(s, DEMO_HOSTNAME, "/", 1 << 20, LIMIT)
        .await
        .expect("demo page through SOCKS");
    assert_eq!(r.status, 200);
}

/// The guards of the circuits that carried streams.
async fn guards_used(client: &ClientHandle) -> Vec<String> {
    let mut g: Vec<String> = client
        .circuits()
        .await
        .into_iter()
        .filter(|c| c.streams > 0)
        .map(|c| c.path[0].clone())
        .collect();
    g.dedup();
    g
}

/// An address where nothing listens.
async fn dead_address() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("bound address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_and_consensus_survive_restarts() {
    let mut cfg = TestbedConfig::ephemeral();
    cfg.large_file = 1024;
    let mut tb = Testbed::start(cfg, Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let authority = tb.authority().http_addr;

    // First run: guards are sampled and the consensus cached.
    let first = Client::start(client_config(&tb, dir.path(), authority)).await.unwrap();
    assert!(first.ready(Duration::from_secs(10)).await);
    fetch_demo(&tb, &first).await;
    let consensus = first.pool.consensus(Duration::from_secs(1)).await.unwrap();
    let primaries = first.pool.guards.primaries(&consensus);
    let sampled = first.pool.guards.sampled();
    assert_eq!(primaries.len(), 3);
    assert_eq!(guards_used(&first).await, vec![fingerprint(&primaries[0])]);
    assert!(dir.path().join("state.json").exists() && dir.path().join("cached-consensus").exists());
    drop(first);

    // Restart with every authority unreachable: ready from the cached consensus, same guard.
    let offline = Client::start(client_config(&tb, dir.path(), dead_address().await))
        .await
        .unwrap();
    assert!(
        offline.ready(Duration::from_secs(2)).await,
        "the cached consensus makes the client ready without authorities"
    );
    fetch_demo(&tb, &offline).await;
    assert_eq!(guards_used(&offline).await, vec![fingerprint(&primaries[0])]);
    drop(offline);

    // The first primary guard goes down (the consensus still lists it): the next primary guard
    // carries the circuits, and no new guard is sampled.
    let dead = tb
        .relays
        .iter()
        .position(|r| r.identity() == primaries[0])
        .expect("the guard is a testbed relay");
    drop(tb.relays.remove(dead));
    let third = Client::start(client_config(&tb, dir.path(), authority)).await.unwrap();
    assert!(third.ready(Duration::from_secs(10)).await);
    fetch_demo(&tb, &third).await;
    fetch_demo(&tb, &third).await;
    assert_eq!(guards_used(&third).await, vec![fingerprint(&primaries[1])]);
    assert_eq!(third.pool.guards.sampled(), sampled);
    assert!(third.pool.stats.circuit_build_failures.load(Ordering::Relaxed) >= 1);
}

/// Reads an HTTP response head (to the blank line) byte by byte, so nothing after it is lost.
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.expect("reading the response head") == 0 {
            break;
        }
        head.push(b[0]);
        assert!(head.len() < 4096);
    }
    String::from_utf8(head).expect("ASCII response head")
}

async fn http_connect(proxy: SocketAddr, request: &str) -> (String, TcpStream) {
    let mut s = TcpStream::connect(proxy)
        .await
        .expect("connect to the HTTP CONNECT port");
    s.write_all(request.as_bytes()).await.expect("send the request");
    let head = tokio::time::timeout(LIMIT, read_head(&mut s))
        .await
        .expect("response head in time");
    (head, s)
}

/// Sends a SOCKS RESOLVE for `name` and returns the reply.
async fn socks_resolve(proxy: SocketAddr, name: &[u8], command: Option<u8>) -> (Reply, SocketAddr) {
    let mut s = TcpStream::connect(proxy).await.expect("connect to the SOCKS port");
    s.write_all(&[5, 1, 0]).await.expect("greeting");
    let mut method = [0u8; 2];
    s.read_exact(&mut method).await.expect("method choice");
    assert_eq!(method, [5, 0]);
    let mut req = encode_request(&Request {
        command: Command::Resolve,
        address: Address::Name(name.to_vec()),
        port: 0,
    })
    .expect("a name of 1 to 255 bytes");
    if let Some(c) = command {
        req[1] = c;
    }
    s.write_all(&req).await.expect("request");
    // Every reply here carries an IPv4 address: 10 bytes.
    let mut reply = [0u8; 10];
    tokio::time::timeout(LIMIT, s.read_exact(&mut reply))
        .await
        .expect("reply in time")
        .expect("reply");
    let (code, bound, _) = decode_reply(&reply).expect("a SOCKS5 reply");
    (code, bound)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_ports_resolve_and_ready_circuits() {
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = 4;
    cfg.large_file = 1024;
    let tb = Testbed::start(cfg, Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = client_config(&tb, dir.path(), tb.authority().http_addr);
    c.http_connect_listen = Some("127.0.0.1:0".parse().unwrap());
    let client = Client::start(c).await.unwrap();
    assert!(client.ready(Duration::from_secs(10)).await);
    let port = tb.demo.addr.port();

    // Before any request, a clean circuit waits for ports 80 and 443 (every testbed exit
    // allows both, so one circuit does).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let clean: Vec<_> = client.circuits().await.into_iter().filter(|c| c.streams == 0).collect();
        if !clean.is_empty() || tokio::time::Instant::now() > deadline {
            break clean;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!ready.is_empty(), "no circuit built ahead of demand");
    let built = client.pool.stats.circuits_built.load(Ordering::Relaxed);

    // The first request takes it; a replacement is built in the background.
    fetch_demo(&tb, &client).await;
    let used: Vec<_> = client.circuits().await.into_iter().filter(|c| c.streams > 0).collect();
    assert_eq!(used.len(), 1);
    assert!(
        ready.iter().any(|c| c.id == used[0].id),
        "the request used the ready circuit"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.circuits().await.iter().all(|c| c.streams > 0) {
        assert!(tokio::time::Instant::now() < deadline, "no replacement circuit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(client.pool.stats.circuits_built.load(Ordering::Relaxed) > built);

    // HTTP CONNECT: the hostname goes to the exit; early data after the head is not lost.
    let proxy = client.http_connect_addr.unwrap();
    let (head, mut s) = http_connect(
        proxy,
        &format!(
            "CONNECT {DEMO_HOSTNAME}:{port} HTTP/1.1\r\nHost: {DEMO_HOSTNAME}:{port}\r\n\r\n\
             GET /ip HTTP/1.0\r\nHost: {DEMO_HOSTNAME}\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    let mut page = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut page))
        .await
        .unwrap()
        .unwrap();
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
        "{page}"
    );
    assert!(page.contains("127.0."), "the site saw an exit: {page}");
    // A tunnel works as one for any protocol: here plain HTTP again, sent after the 200.
    let (head, s) = http_connect(proxy, &format!("CONNECT {DEMO_HOSTNAME}:{port} HTTP/1.1\r\n\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let r = http_get(s, DEMO_HOSTNAME, "/", 1 << 20, LIMIT).await.unwrap();
    assert_eq!(r.status, 200);
    // Errors get statuses.
    for (request, status) in [
        ("CONNECT no-such-host.invalid:80 HTTP/1.1\r\n\r\n".to_string(), "404"),
        ("CONNECT 10.0.0.1:80 HTTP/1.1\r\n\r\n".to_string(), "403"),
        ("CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n".to_string(), "502"),
        ("GET http://example.org/ HTTP/1.1\r\n\r\n".to_string(), "405"),
        ("CONNECT nonsense HTTP/1.1\r\n\r\n".to_string(), "400"),
        (
            format!("CONNECT a:1 HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(9000)),
            "431",
        ),
    ] {
        let (head, _) = http_connect(proxy, &request).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:.40}: {head}"
        );
    }

    // SOCKS RESOLVE: the exit resolves the demo name (nothing here can).
    let (code, bound) = socks_resolve(client.socks_addr, DEMO_HOSTNAME.as_bytes(), None).await;
    assert_eq!(code, Reply::Succeeded);
    assert_eq!(bound.ip(), tb.demo.addr.ip());
    let (code, _) = socks_resolve(client.socks_addr, b"no-such-host.invalid", None).await;
    assert_eq!(code, Reply::HostUnreachable);
    // RESOLVE_PTR: exits do no reverse lookups.
    let (code, _) = socks_resolve(client.socks_addr, b"1.0.0.127.in-addr.arpa", Some(0xF1)).await;
    assert_eq!(code, Reply::CommandNotSupported);
    assert_eq!(client.pool.stats.resolves.load(Ordering::Relaxed), 2);
}
