//! Our BitTorrent peer on loopback: a seed and leechers trading a small torrent through the
//! in-process tracker, each on its own 127.x.y.z; every download is compared byte for byte
//! with the original, and a leecher serving corrupt blocks is dropped by the honest ones.
//! Bounded: each swarm has a deadline, and every node stops at the end.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use onionlab_experiments::swarm::runner::{PeerSpec, SwarmSpec, run_swarm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_and_three_leechers_share_a_torrent() {
    let mut spec = SwarmSpec::new(
        1 << 20,
        32 << 10,
        PeerSpec::seed(Some(2.0 * f64::from(1 << 20))),
        vec![PeerSpec::leecher(Some(f64::from(1 << 20))); 3],
        Duration::from_secs(1),
    );
    spec.subnet = 71;
    spec.deadline = Duration::from_secs(60);
    let report = run_swarm(&spec).await.unwrap();
    assert!(report.finished, "{report:#?}");
    for l in &report.leechers {
        assert!(l.verified, "{:?}", l.node);
        assert!(l.node.completed_after.is_some());
        assert_eq!(l.node.stats.hash_failures, 0);
        assert!(l.node.stats.dropped.is_empty(), "{:?}", l.node.stats.dropped);
    }
    assert!(report.distribution_time().is_some());
    // Everyone got the file; the seed sent at least one copy.
    let down: u64 = report
        .leechers
        .iter()
        .map(|l| l.node.stats.downloaded - l.node.stats.wasted)
        .sum();
    assert_eq!(down, 3 << 20);
    assert!(report.seed.stats.uploaded >= 1 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_serving_corrupt_pieces_is_dropped() {
    // The liar starts with half the pieces and serves them fast; the seed is slow, so the
    // honest leechers ask the liar for blocks and find its pieces fail their hash.
    let liar = PeerSpec {
        corrupt: true,
        holds: 0.5,
        ..PeerSpec::leecher(None)
    };
    let mut leechers = vec![PeerSpec::leecher(None); 3];
    leechers.push(liar);
    let mut spec = SwarmSpec::new(
        512 << 10,
        32 << 10,
        PeerSpec::seed(Some(f64::from(256 << 10))),
        leechers,
        Duration::from_secs(1),
    );
    spec.subnet = 72;
    spec.deadline = Duration::from_secs(60);
    let report = run_swarm(&spec).await.unwrap();
    assert!(report.finished, "{report:#?}");
    let liar_addr = report.leechers[3].node.addr;
    let mut failures = 0;
    for l in report.leechers.iter().filter(|l| l.honest) {
        assert!(l.verified, "{:?}", l.node);
        failures += l.node.stats.hash_failures;
        for d in &l.node.stats.dropped {
            assert_eq!(d.addr.ip(), liar_addr.ip(), "only the liar is dropped: {d:?}");
            assert!(d.reason.contains("hash check"), "{}", d.reason);
        }
    }
    assert!(failures >= 1, "{report:#?}");
    let dropped_by = report
        .leechers
        .iter()
        .filter(|l| l.honest && !l.node.stats.dropped.is_empty())
        .count();
    assert!(dropped_by >= 1, "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_trades_and_the_free_rider_never_uploads() {
    use onionlab_experiments::swarm::choker::Strategy;
    let peer = |strategy| PeerSpec {
        strategy,
        ..PeerSpec::leecher(Some(f64::from(512 << 10)))
    };
    let leechers = vec![
        peer(Strategy::Standard),
        peer(Strategy::Standard),
        peer(Strategy::BitTyrant),
        peer(Strategy::PropShare),
        peer(Strategy::BitThief),
    ];
    let mut spec = SwarmSpec::new(
        1 << 20,
        32 << 10,
        PeerSpec::seed(Some(f64::from(1 << 20))),
        leechers,
        Duration::from_secs(1),
    );
    spec.subnet = 73;
    spec.deadline = Duration::from_secs(60);
    let report = run_swarm(&spec).await.unwrap();
    assert!(report.finished, "{report:#?}");
    for l in report.leechers.iter().filter(|l| l.honest) {
        assert!(l.verified, "{:?}", l.node);
    }
    let thief = &report.leechers[4];
    assert!(!thief.honest);
    assert_eq!(thief.node.strategy, Strategy::BitThief);
    assert_eq!(thief.node.stats.uploaded, 0, "{:?}", thief.node);
    // The traders did trade (with each other and with the free rider).
    let traders_up: Vec<u64> = report.leechers[..4].iter().map(|l| l.node.stats.uploaded).collect();
    assert!(traders_up.iter().filter(|&&u| u > 0).count() >= 2, "{traders_up:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_holding_random_parts_trade_and_leave_when_complete() {
    // Each leecher starts with its own random half; the seed is slow, so most of what each
    // lacks comes from the others. A leecher leaves the moment it completes, and its
    // download is still checked.
    let leecher = PeerSpec {
        holds: 0.5,
        ..PeerSpec::leecher(Some(f64::from(1 << 20)))
    };
    let mut spec = SwarmSpec::new(
        1 << 20,
        32 << 10,
        PeerSpec::seed(Some(f64::from(64 << 10))),
        vec![leecher; 3],
        Duration::from_secs(1),
    );
    spec.subnet = 74;
    spec.deadline = Duration::from_secs(60);
    spec.leave_when_complete = true;
    let report = run_swarm(&spec).await.unwrap();
    assert!(report.finished, "{report:#?}");
    for l in &report.leechers {
        assert!(l.verified, "{:?}", l.node);
        assert!(l.node.completed_after.is_some());
        // It came with half the pieces and fetched only the rest.
        assert!(
            l.node.stats.downloaded - l.node.stats.wasted <= 1 << 19,
            "{:?}",
            l.node.stats
        );
        assert!(l.node.stats.uploaded > 0, "{:?}", l.node.stats);
    }
    let leechers_up: u64 = report.leechers.iter().map(|l| l.node.stats.uploaded).sum();
    assert!(
        leechers_up > report.seed.stats.uploaded,
        "the leechers traded most of it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_that_leaves_complete_and_rejoins_keeps_its_first_completion() {
    use onionlab_experiments::swarm::runner::Swarm;
    use std::time::Instant;
    let mut spec = SwarmSpec::new(
        512 << 10,
        32 << 10,
        PeerSpec::seed(Some(f64::from(1 << 20))),
        vec![PeerSpec::leecher(None); 2],
        Duration::from_secs(1),
    );
    spec.subnet = 75;
    let before = Instant::now();
    let mut swarm = Swarm::start(spec).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), swarm.honest_complete())
        .await
        .unwrap();
    // Both completed; leecher 0 leaves, comes back holding everything, and the swarm stops
    // while its second session (which never completes anything) runs.
    swarm.leave(0).await;
    let left = before.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    swarm.rejoin(0).await.unwrap();
    assert!(swarm.is_online(0));
    let rejoined = before.elapsed();
    let report = swarm.stop(true).await;
    let churned = &report.leechers[0];
    assert!(churned.verified, "{churned:?}");
    let first = churned.completed_after.unwrap();
    assert!(
        first <= left,
        "completed at {first:?}, from the swarm's start, before leaving at {left:?}"
    );
    assert!(first < rejoined);
    assert_eq!(churned.verified_completion(), Some(first));
    // The second session started complete: nothing to report of its own.
    assert_eq!(churned.node.completed_after, None);
    assert!(report.distribution_time().is_some(), "{report:#?}");
}
