//! Several voting authorities, and the directory's Sybil defences, on the testbed.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use onionlab_experiments::socks_client::{connect, http_get};
use onionlab_experiments::testbed::{DEMO_HOSTNAME, SYBIL_IP, Testbed, TestbedConfig};
use onionlab_proto::consensus::{ConsensusError, SignedConsensus};
use std::net::IpAddr;
use std::time::Duration;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Waits (bounded) until `f` returns Some.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn small(relays: usize) -> TestbedConfig {
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = relays;
    cfg.large_file = 1024;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_authorities_agree_and_survive_one_down() {
    let mut tb = Testbed::start(small(4), Duration::from_secs(30)).await.unwrap();
    let trusted: Vec<_> = tb.authorities.iter().map(|a| a.identity).collect();

    // The same period's consensus is byte-identical at all three, signed by all three.
    let (bodies, sigs) = eventually("all three publish the same period", || {
        let p: Vec<_> = tb
            .authorities
            .iter()
            .map(|a| a.authority.published())
            .collect::<Option<_>>()?;
        let same_period = p
            .iter()
            .all(|x| x.signed.consensus.valid_after == p[0].signed.consensus.valid_after);
        same_period.then(|| {
            (
                p.iter().map(|x| x.signed.body.clone()).collect::<Vec<_>>(),
                p[0].signed.signatures.len(),
            )
        })
    })
    .await;
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "consensus bodies differ between authorities"
    );
    assert_eq!(sigs, 3);

    // Signed by only one of three trusted authorities: refused.
    let mut lonely = tb.authority().authority.published().unwrap().signed.clone();
    lonely.signatures.truncate(1);
    let refused = SignedConsensus::decode(&lonely.encode())
        .unwrap()
        .verify(&trusted, now())
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ConsensusError::NotEnoughSignatures {
                valid: 1,
                needed: 2,
                ..
            }
        ),
        "{refused}"
    );

    // One authority down: the other two still make (and sign) consensuses clients accept.
    let gone = tb.authorities.pop().unwrap();
    let down_since = now();
    drop(gone);
    let fresh = eventually("a consensus made after the third authority went down", || {
        let p = tb.authority().authority.published()?;
        (p.signed.consensus.valid_after > down_since + 1).then_some(p)
    })
    .await;
    assert_eq!(fresh.signed.signatures.len(), 2);
    assert!(fresh.signed.verify(&trusted, now()).is_ok(), "2 of 3 is a majority");
    assert_eq!(fresh.signed.consensus.relays.len(), 4);
    // And browsing goes on.
    let s = connect(tb.client.socks_addr, DEMO_HOSTNAME, tb.demo.addr.port(), None)
        .await
        .unwrap();
    assert_eq!(
        http_get(s, DEMO_HOSTNAME, "/", 1 << 20, Duration::from_secs(30))
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sybils_on_one_address_are_capped_and_liars_get_their_measured_bandwidth() {
    let mut cfg = small(4);
    cfg.sybil_relays = 6;
    cfg.sybil_bandwidth = 1 << 40; // one terabyte per second, claimed
    let tb = Testbed::start(cfg, Duration::from_secs(30)).await.unwrap();
    let sybil_ip = IpAddr::V4(SYBIL_IP);
    let published = tb.authority().authority.published().unwrap();
    let sybils: Vec<_> = published
        .signed
        .consensus
        .relays
        .iter()
        .filter(|r| r.info.or_addr.ip() == sybil_ip)
        .collect();
    assert_eq!(sybils.len(), 2, "at most 2 relays per address");
    // Unmeasured: capped; measured: what was measured. Never the claim.
    assert!(
        sybils.iter().all(|r| r.info.bandwidth < 1 << 36),
        "weights must not follow the claimed bandwidth"
    );
    let json: serde_json::Value = serde_json::from_slice(&published.json).unwrap();
    let left_out = json["excluded"].as_array().unwrap();
    assert_eq!(
        left_out
            .iter()
            .filter(|r| r["reason"].as_str().unwrap_or("").contains("more than 2 relays"))
            .count(),
        4
    );
    assert!(
        json["suspicious_clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["prefix"] == "127.0.200.0/24"),
        "six relays from one /24 at once are flagged: {}",
        json["suspicious_clusters"]
    );

    // Once the scanners have measured them, the weight is what was measured, not what was claimed.
    let weights = eventually("measured weights for the listed Sybils", || {
        let p = tb.authority().authority.published()?;
        let w: Vec<u64> = p
            .signed
            .consensus
            .relays
            .iter()
            .filter(|r| r.info.or_addr.ip() == sybil_ip)
            .map(|r| r.info.bandwidth)
            .collect();
        (w.len() == 2 && w.iter().all(|b| *b > 20 * 1024)).then_some(w)
    })
    .await;
    assert!(
        weights.iter().all(|b| *b < 1 << 36),
        "weights {weights:?} must be measured, not the claimed 1 TB/s"
    );
}
