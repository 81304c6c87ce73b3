//! End to end through the in-process testbed: real SOCKS, real TLS links, real circuits.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use onionlab_client::{Client, ClientConfig};
use onionlab_experiments::demo_site::content_sha256;
use onionlab_experiments::socks_client::{SocksClientError, connect, http_get};
use onionlab_experiments::testbed::{DEMO_HOSTNAME, Testbed, TestbedConfig};
use onionlab_proto::keys::{fingerprint, fresh_signing_key};
use onionlab_relay::stats::RelayStats;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

async fn fetch(tb: &Testbed, host: &str, path: &str, creds: Option<(&str, &str)>) -> Result<Vec<u8>, SocksClientError> {
    let port = tb.demo.addr.port();
    let s = connect(tb.client.socks_addr, host, port, creds).await?;
    let r = http_get(s, host, path, 256 << 20, LIMIT).await?;
    assert_eq!(r.status, 200, "{host}{path}");
    Ok(r.body)
}

/// Checks that the name cannot be resolved here (the lint forbids resolving in general).
#[allow(clippy::disallowed_methods)]
async fn resolves_locally(name: &str) -> std::io::Result<()> {
    tokio::net::lookup_host((name, 80)).await.map(|_| ())
}

fn sum(tb: &Testbed, f: impl Fn(&RelayStats) -> u64) -> u64 {
    tb.relays.iter().map(|r| f(&r.relay.stats)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_through_three_hops() {
    let tb = Testbed::start(TestbedConfig::ephemeral(), Duration::from_secs(30))
        .await
        .unwrap();

    // The large file arrives whole: SHA-256 against the origin's content.
    let body = fetch(&tb, DEMO_HOSTNAME, "/large.bin", None).await.unwrap();
    assert_eq!(body.len() as u64, tb.demo.large);
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&body)), content_sha256(tb.demo.large));

    // The hostname reached the exit unresolved: nothing here can resolve it, the exits did.
    assert!(
        resolves_locally(DEMO_HOSTNAME).await.is_err(),
        "{DEMO_HOSTNAME} must not resolve locally"
    );
    assert!(sum(&tb, |s| RelayStats::get(&s.begin_hostname)) >= 1);

    // The site sees an exit (127.0.i.1, i >= 1), not the client.
    let ip = String::from_utf8(fetch(&tb, DEMO_HOSTNAME, "/ip", None).await.unwrap()).unwrap();
    assert!(ip.trim().starts_with("127.0.") && ip.trim() != "127.0.0.1", "{ip}");

    // An IPv4 target works too (curl --socks5 resolves locally and sends addresses).
    let page = fetch(&tb, "127.0.0.1", "/", None).await.unwrap();
    assert!(String::from_utf8_lossy(&page).contains("onionlab demo site"));

    // 20 concurrent downloads, each checked.
    const SIZE: u64 = 1 << 20;
    let expect = content_sha256(SIZE);
    let downloads: Vec<_> = (0..20)
        .map(|_| {
            let (socks, port) = (tb.client.socks_addr, tb.demo.addr.port());
            tokio::spawn(async move {
                let s = connect(socks, DEMO_HOSTNAME, port, None).await.unwrap();
                http_get(s, DEMO_HOSTNAME, &format!("/bytes/{SIZE}"), 4 << 20, LIMIT)
                    .await
                    .unwrap()
                    .body
            })
        })
        .collect();
    for d in downloads {
        let body = d.await.unwrap();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&body)), expect);
    }

    // Streams with different SOCKS credentials never share a circuit; equal ones do.
    let before = tb.client.circuits().await;
    fetch(&tb, DEMO_HOSTNAME, "/", Some(("alice", "x"))).await.unwrap();
    fetch(&tb, DEMO_HOSTNAME, "/", Some(("bob", "x"))).await.unwrap();
    fetch(&tb, DEMO_HOSTNAME, "/", Some(("alice", "x"))).await.unwrap();
    let after = tb.client.circuits().await;
    // (Circuits kept ready in the default group may be rebuilt meanwhile; they carry no streams.)
    let new: Vec<_> = after
        .iter()
        .filter(|c| c.streams > 0 && !before.iter().any(|b| b.id == c.id))
        .collect();
    assert_eq!(new.len(), 2, "one circuit per isolation group: {new:?}");
    assert_ne!(new[0].isolation, new[1].isolation);
    let mut streams: Vec<u64> = new.iter().map(|c| c.streams).collect();
    streams.sort();
    assert_eq!(streams, vec![1, 2], "alice's second stream reused her circuit");
    assert!(new.iter().all(|c| c.open));

    // Operators' view: every relay serves Prometheus counters, without destinations.
    let metrics = tb.relays[0].metrics_addr.unwrap();
    let (status, page) = onionlab_link::dirhttp::get(metrics, "/metrics", 1 << 20).await.unwrap();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("onionlab_relay_circuits_created_total"), "{page}");
    assert!(!page.contains(DEMO_HOSTNAME) && !page.contains("127.0.0.1"));
    let (_, auth) = onionlab_link::dirhttp::get(tb.authority().http_addr, "/metrics", 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&auth).contains("onionlab_dirauth_relays_listed 6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_precise_socks_replies() {
    let mut cfg = TestbedConfig::ephemeral();
    cfg.default_exit_policy = true;
    cfg.relays = 4;
    cfg.large_file = 1024;
    let tb = Testbed::start(cfg, Duration::from_secs(30)).await.unwrap();
    let (socks, port) = (tb.client.socks_addr, tb.demo.addr.port());

    // A name that resolves to loopback at the exit: the default policy refuses it there.
    let refused = connect(socks, "localhost", port, None).await.unwrap_err();
    assert!(matches!(refused, SocksClientError::Reply(0x02)), "{refused}");
    // Refused at two exits: the first circuit's, then a fresh one's (the retry).
    assert_eq!(sum(&tb, |s| RelayStats::get(&s.exit_policy_rejects)), 2);
    assert_eq!(sum(&tb, |s| RelayStats::get(&s.streams_connected)), 0);

    // Literal loopback addresses, v4 and v6: no exit's policy allows them.
    for host in ["127.0.0.1", "::1"] {
        let e = connect(socks, host, port, None).await.unwrap_err();
        assert!(matches!(e, SocksClientError::Reply(0x02)), "{host}: {e}");
    }

    // A name nobody can resolve: host unreachable.
    let e = connect(socks, "no-such-host.invalid", 80, None).await.unwrap_err();
    assert!(matches!(e, SocksClientError::Reply(0x04)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rules_for_trust_reuse_and_retries() {
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = 4;
    cfg.large_file = 1024;
    let tb = Testbed::start(cfg, Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let entry = |identity: String| onionlab_link::config::AuthorityEntry {
        address: tb.authority().http_addr,
        identity,
    };
    let client_cfg = |name: &str, identity: String| {
        let mut c = ClientConfig::new(dir.path().join(name), vec![entry(identity)]);
        c.socks_listen = "127.0.0.1:0".parse().unwrap();
        c.enforce_distinct_subnets = false;
        c
    };

    // A consensus not signed by the key the client trusts is refused.
    let stranger = fingerprint(&fresh_signing_key().verifying_key().to_bytes());
    let fooled = Client::start(client_cfg("fooled", stranger)).await.unwrap();
    assert!(
        !fooled.ready(Duration::from_secs(2)).await,
        "a consensus from an untrusted key must be refused"
    );

    // Circuits stop taking new streams `circuit_max_dirtiness_secs` after their first one.
    let mut c = client_cfg("short", fingerprint(&tb.authority().identity));
    c.circuit_max_dirtiness_secs = 1;
    let client = Client::start(c).await.unwrap();
    assert!(client.ready(Duration::from_secs(10)).await);
    let port = tb.demo.addr.port();
    let get = |host: &'static str| async move {
        let s = connect(client.socks_addr, host, port, None).await?;
        http_get(s, host, "/", 1 << 20, LIMIT).await
    };
    get(DEMO_HOSTNAME).await.unwrap();
    get(DEMO_HOSTNAME).await.unwrap();
    let first = client.circuits().await;
    assert_eq!(
        first.iter().filter(|c| c.streams > 0).count(),
        1,
        "two quick streams share a circuit: {first:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    get(DEMO_HOSTNAME).await.unwrap();
    let later = client.circuits().await;
    let dirty: Vec<u64> = first.iter().filter(|c| c.streams > 0).map(|c| c.id).collect();
    assert!(
        later.iter().all(|c| !dirty.contains(&c.id)),
        "the dirty circuit was retired: {later:?}"
    );

    // A refused destination is answered 0x05 and not retried; a policy refusal is retried once
    // on a fresh circuit before the client answers 0x02.
    let retries = || client.pool.stats.stream_retries.load(Ordering::Relaxed);
    let before = retries();
    let refused = connect(client.socks_addr, "127.0.0.1", 1, None).await.unwrap_err();
    assert!(matches!(refused, SocksClientError::Reply(0x05)), "{refused}");
    assert_eq!(retries(), before, "connection refused is not retried");
}
