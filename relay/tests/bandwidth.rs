//! The bandwidth rate limit slows relayed traffic in both directions: cells read from links,
//! and data packaged at the exit. Windows of real time, with generous tolerances (the token
//! bucket itself is tested exactly, with made-up time, in `token_bucket.rs`).

mod support;

use onionlab_proto::cell::CELL_LEN;
use onionlab_proto::relay_msg::{EndReason, RelayMsg};
use onionlab_relay::stats::RelayStats;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use support::*;

const CELL: u64 = CELL_LEN as u64;

/// Sends `n` DROP cells on a fresh one-hop circuit and returns the relay's forward counter.
async fn flood_drops(relay: &onionlab_relay::RelayHandle, n: usize) -> RawClient {
    let mut client = RawClient::connect(relay, "127.0.0.1").await;
    let mut circ = client
        .create(0x8000_0001, &relay.relay.onion_public())
        .await
        .expect("circuit");
    for _ in 0..n {
        client.send_msg(&mut circ, 0, RelayMsg::Drop).await;
    }
    client
}

fn count(c: &AtomicU64) -> u64 {
    RelayStats::get(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_slows_cells_read_from_links() {
    // Unlimited, 400 cells pass at once.
    let dir = tempfile::tempdir().unwrap();
    let fast = start(exit_config(dir.path())).await;
    let _client = flood_drops(&fast, 400).await;
    let started = Instant::now();
    eventually("400 cells through an unlimited relay", || {
        count(&fast.relay.stats.cells_forward) == 400
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));

    // At 100 cells/s with a 10-cell burst, they trickle.
    let dir = tempfile::tempdir().unwrap();
    let mut config = exit_config(dir.path());
    config.bandwidth_rate = Some(100 * CELL);
    config.bandwidth_burst = Some(10 * CELL);
    let slow = start(config).await;
    let stats = &slow.relay.stats;
    let _client = flood_drops(&slow, 400).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = count(&stats.cells_forward);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = count(&stats.cells_forward);
    assert!(first <= 200, "{first} cells in the first second at 100 cells/s");
    let per_second = second - first;
    assert!((50..=150).contains(&per_second), "{per_second} cells/s at 100 cells/s");
    assert!(count(&stats.bandwidth_delayed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_slows_an_exit_download() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = exit_config(dir.path());
    config.bandwidth_rate = Some(50 * 1024);
    config.bandwidth_burst = Some(10 * 1024);
    let relay = start(config).await;
    let size = 100_000;
    let source = source_of(size).await;
    let mut client = RawClient::connect(&relay, "127.0.0.1").await;
    let mut circ = client.create(0x8000_0001, &relay.relay.onion_public()).await.unwrap();
    let started = Instant::now();
    assert!(matches!(
        client.begin(&mut circ, 1, source).await,
        RelayMsg::Connected(_)
    ));
    let mut received = 0;
    loop {
        match client.recv_msg(&mut circ).await.expect("circuit open").msg {
            RelayMsg::Data(d) => received += d.len(),
            RelayMsg::End(EndReason::Done) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let took = started.elapsed();
    assert_eq!(received, size);
    // About 100 kB of cells at 50 KiB/s after a 10 KiB burst: about 1.8 s.
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(8),
        "took {took:?}"
    );
}
