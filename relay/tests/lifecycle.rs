//! What an operator does to a running relay: graceful shutdown (SIGTERM) and reload (SIGHUP),
//! driven through `RelayHandle` as `main.rs` does on those signals.

mod support;

use onionlab_link::channel::ChannelConnector;
use onionlab_proto::cell::{CellCommand, DestroyReason};
use onionlab_proto::keys::fingerprint;
use onionlab_proto::relay_msg::{EndReason, RelayMsg};
use onionlab_relay::stats::RelayStats;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A destination that sends `chunks` small chunks, one every `pause`, then closes.
async fn slow_source(chunks: usize, pause: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                for _ in 0..chunks {
                    if s.write_all(&[7u8; 100]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_open_streams_finish_and_refuses_new_work() {
    let dir = tempfile::tempdir().unwrap();
    let handle = start(exit_config(dir.path())).await;
    let relay = handle.relay.clone();
    let (or_addr, identity, onion) = (handle.or_addr, handle.identity(), relay.onion_public());
    let source = slow_source(10, Duration::from_millis(200)).await;
    let mut client = RawClient::connect(&handle, "127.0.0.1").await;
    let mut circ = client.create(0x8000_0001, &onion).await.unwrap();
    assert!(matches!(
        client.begin(&mut circ, 1, source).await,
        RelayMsg::Connected(_)
    ));

    let started = Instant::now();
    let shutdown = tokio::spawn(handle.shutdown(Duration::from_secs(20)));
    eventually("draining", || relay.refusing_new_work()).await;

    // No new links, circuits or streams ...
    let connector = ChannelConnector::new(onionlab_link::tls::client_config().unwrap());
    let mut refused = false;
    for _ in 0..50 {
        if connector.connect(or_addr, &identity).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the OR port stops accepting links");
    // ... (cells for the stream may arrive before the answers, so look past them)
    client.send_create(0x8000_0002, &onion).await;
    let begin = RelayMsg::Begin {
        target: target(source),
        flags: 0,
    };
    client.send_msg(&mut circ, 2, begin).await;
    let (mut create_refused, mut begin_refused, mut received, mut done) = (None, None, 0, false);
    while !done {
        let cell = client.next().await.expect("the link stays up while draining");
        match (cell.circ_id, cell.command) {
            (0x8000_0002, CellCommand::Destroy) => create_refused = Some(DestroyReason::from_u8(cell.payload[0])),
            (0x8000_0001, CellCommand::Relay) => {
                let msg = circ.open(cell);
                match (msg.stream_id, msg.msg) {
                    (1, RelayMsg::Data(d)) => received += d.len(),
                    (1, RelayMsg::End(EndReason::Done)) => done = true,
                    (2, RelayMsg::End(reason)) => begin_refused = Some(reason),
                    (id, other) => panic!("unexpected {other:?} on stream {id}"),
                }
            }
            other => panic!("unexpected cell {other:?}"),
        }
    }
    assert_eq!(create_refused, Some(DestroyReason::Hibernating));
    assert_eq!(begin_refused, Some(EndReason::Hibernating));
    assert_eq!(received, 1000, "the open stream finished");

    // Once streams are done and cells stop moving, the relay stops well before the grace ends.
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(RelayStats::get(&relay.stats.circuits_open), 0);
    assert_link_closes(&mut client).await;
}

/// The relay closed the link (after DESTROYs, if any).
async fn assert_link_closes(client: &mut RawClient) {
    while let Some(cell) = client.next().await {
        assert_eq!(
            cell.command,
            CellCommand::Destroy,
            "only DESTROYs before the link closes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let handle = start(exit_config(dir.path())).await;
    let relay = handle.relay.clone();
    let echo = echo_server().await;
    let mut client = RawClient::connect(&handle, "127.0.0.1").await;
    let mut circ = client.create(0x8000_0001, &relay.onion_public()).await.unwrap();
    assert!(matches!(client.begin(&mut circ, 1, echo).await, RelayMsg::Connected(_)));
    assert_eq!(RelayStats::get(&relay.stats.streams_open), 1);

    // An idle stream that never ends holds the drain open until the grace period is over.
    let started = Instant::now();
    handle.shutdown(Duration::from_secs(1)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert_eq!(RelayStats::get(&relay.stats.circuits_open), 0);
    assert_eq!(RelayStats::get(&relay.stats.streams_open), 0);
    assert_link_closes(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_what_is_safe_and_republishes() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, mut uploads) = fake_authority().await;
    let mut config = exit_config(dir.path());
    config.authorities = vec![authority];
    config.contact = "old@example.org".into();
    let handle = start(config.clone()).await;
    descriptor_where(&mut uploads, "the first upload", |d| d.contact == "old@example.org").await;
    let echo = echo_server().await;

    let sibling = fingerprint(&[3u8; 32]);
    let mut new = config.clone();
    new.contact = "new@example.org".into();
    new.family = vec![sibling.clone()];
    new.exit_policy = vec![
        format!("reject 127.0.0.1:{}", echo.port()),
        "accept 127.0.0.0/8:*".into(),
    ];
    new.bandwidth_rate = Some(1_000_000);
    new.or_listen = "127.0.0.1:1".parse().unwrap();
    new.data_dir = dir.path().join("elsewhere");
    let reloaded = handle.reload(new).unwrap();
    assert_eq!(reloaded.restart_needed, vec!["or_listen", "data_dir"]);

    let desc = descriptor_where(&mut uploads, "the reloaded contact", |d| d.contact == "new@example.org").await;
    assert_eq!(desc.info.family, vec![[3u8; 32]]);
    assert_eq!(desc.info.bandwidth, 1_000_000, "the rate caps the advertised bandwidth");
    assert!(desc.info.exit_policy.to_lines()[0].starts_with("reject 127.0.0.1/32:"));
    assert_eq!(handle.relay.traffic.rate_limit(), Some((1_000_000, 1_000_000)));
    assert_eq!(
        handle.relay.settings().config.or_listen,
        config.or_listen,
        "kept until a restart"
    );

    // The new policy applies to the next BEGIN.
    let mut client = RawClient::connect(&handle, "127.0.0.1").await;
    let mut circ = client.create(0x8000_0001, &handle.relay.onion_public()).await.unwrap();
    assert_eq!(
        client.begin(&mut circ, 1, echo).await,
        RelayMsg::End(EndReason::ExitPolicy)
    );

    // A configuration that does not check out changes nothing.
    let mut bad = config.clone();
    bad.exit_policy = vec!["accept everything".into()];
    bad.contact = "never@example.org".into();
    assert!(handle.reload(bad).is_err());
    assert_eq!(handle.relay.settings().config.contact, "new@example.org");
}
