//! The accounting limit: hibernation refuses new circuits and streams, lets existing ones
//! finish, and survives a restart within the period.

mod support;

use onionlab_proto::cell::{CELL_LEN, DestroyReason};
use onionlab_proto::relay_msg::{EndReason, RelayMsg};
use onionlab_relay::stats::RelayStats;
use onionlab_relay::traffic::ACCOUNTING_FILE;
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_accounting_limit_hibernates_until_the_next_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = exit_config(dir.path());
    config.accounting_max_bytes = Some(20 * CELL_LEN as u64);
    let relay = start(config.clone()).await;
    let onion = relay.relay.onion_public();
    let echo = echo_server().await;

    let mut client = RawClient::connect(&relay, "127.0.0.1").await;
    let mut circ = client
        .create(0x8000_0001, &onion)
        .await
        .expect("awake: circuit created");
    assert!(matches!(client.begin(&mut circ, 1, echo).await, RelayMsg::Connected(_)));
    // Echo until the relay has counted its 20 cells.
    let mut echoed = 0;
    while !relay.relay.refusing_new_work() {
        client.send_msg(&mut circ, 1, RelayMsg::Data(b"ping".to_vec())).await;
        let reply = client.recv_msg(&mut circ).await.expect("circuit open");
        assert_eq!(reply.msg, RelayMsg::Data(b"ping".to_vec()));
        echoed += 1;
        assert!(echoed < 20, "the limit should have been reached");
    }

    // Hibernating: no new circuits, no new streams ...
    assert_eq!(
        client.create(0x8000_0002, &onion).await.err(),
        Some(DestroyReason::Hibernating)
    );
    assert_eq!(
        client.begin(&mut circ, 2, echo).await,
        RelayMsg::End(EndReason::Hibernating)
    );
    // ... but the open stream still carries data.
    client
        .send_msg(&mut circ, 1, RelayMsg::Data(b"still here".to_vec()))
        .await;
    assert_eq!(
        client.recv_msg(&mut circ).await.expect("circuit open").msg,
        RelayMsg::Data(b"still here".to_vec())
    );
    let stats = &relay.relay.stats;
    assert_eq!(RelayStats::get(&stats.creates_refused_hibernating), 1);
    assert_eq!(RelayStats::get(&stats.begins_refused_hibernating), 1);
    eventually("the hibernation gauge", || RelayStats::get(&stats.hibernating) == 1).await;
    let desc = onionlab_relay::publish::descriptor(&relay.relay).unwrap();
    assert_eq!(desc.descriptor.info.bandwidth, 0, "clients are told to leave it alone");

    // The counter is saved, so a restart within the period stays asleep.
    relay.shutdown(Duration::ZERO).await;
    let saved = std::fs::read_to_string(dir.path().join(ACCOUNTING_FILE)).unwrap();
    assert!(saved.starts_with("onionlab accounting v1\n"), "{saved}");
    let relay = start(config).await;
    assert!(relay.relay.traffic.hibernating());
    let mut client = RawClient::connect(&relay, "127.0.0.1").await;
    assert_eq!(
        client.create(0x8000_0001, &onion).await.err(),
        Some(DestroyReason::Hibernating)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_accounting_the_relay_never_hibernates() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(exit_config(dir.path())).await;
    let onion = relay.relay.onion_public();
    let mut client = RawClient::connect(&relay, "127.0.0.1").await;
    for i in 1..=50 {
        client.create(0x8000_0000 + i, &onion).await.expect("circuit created");
    }
    assert!(!relay.relay.refusing_new_work());
    assert!(!dir.path().join(ACCOUNTING_FILE).exists());
}
