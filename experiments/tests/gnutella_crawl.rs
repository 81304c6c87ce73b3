//! The crawler against the overlay: onionlab-crawl's Gnutella crawler (handshake with
//! `Crawler: 0.1`, breadth-first over ultrapeers) maps a 500-node overlay (50 ultrapeers) and the
//! snapshot must equal the overlay's true topology; its signals must find the planted Sybils and
//! poisoners; repeated snapshots of a churning overlay must give back the configured session
//! distribution. Every test is bounded in time.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use onionlab_crawler::analysis::Score;
use onionlab_crawler::analysis::pollution::{PollutionConfig, pollution_report};
use onionlab_crawler::analysis::sessions::weibull_fit_censored;
use onionlab_crawler::analysis::topology::{top_k_share, ultrapeer_subnets};
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::gnutella::churn::churn;
use onionlab_crawler::gnutella::crawl::{TopologyConfig, crawl_snapshots, crawl_topology};
use onionlab_crawler::gnutella::leaf::{DownloadConfig, QueryConfig, query, verify_hit};
use onionlab_experiments::gnutella::{
    AddrTopology, Behaviour, ChurnConfig, Overlay, OverlayConfig, PoisonConfig, SybilConfig, WeibullParams,
};

const READY: Duration = Duration::from_secs(90);

/// Runs `fut`, failing the test after `secs` seconds.
async fn bounded<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("the test finished in time")
}

/// No politeness towards our own testbed; short timeouts.
fn engine() -> Engine {
    Engine::new(
        EngineConfig {
            concurrency: 128,
            per_ip_interval: Duration::ZERO,
            timeout: Duration::from_secs(3),
            attempts: 2,
            backoff: Duration::from_millis(50),
        },
        Recorder::discard(),
    )
}

fn topology_config() -> TopologyConfig {
    TopologyConfig {
        recrawl_interval: Duration::ZERO,
        max_duration: Duration::from_secs(60),
        ..TopologyConfig::default()
    }
}

/// 50 ultrapeers and 450 leaves (5 of them poisoners, 10 free riders), plus 10 Sybil
/// ultrapeers: one snapshot equals the truth, the per-/24 signal finds exactly the Sybils, and
/// the pollution signals find exactly the poisoners from what their downloads serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_node_overlay_is_mapped_exactly_and_its_adversaries_found() {
    bounded(240, async {
        let overlay = Overlay::start(
            OverlayConfig {
                seed: 3,
                base_ip: Ipv4Addr::new(127, 94, 0, 0),
                sybils: SybilConfig {
                    count: 10,
                    ..SybilConfig::default()
                },
                poisoners: PoisonConfig {
                    count: 5,
                    ..PoisonConfig::default()
                },
                free_riders: 10,
                ..OverlayConfig::default()
            },
            READY,
        )
        .await
        .unwrap();
        let truth = overlay.truth();
        let AddrTopology {
            ultrapeers: ups,
            leaves,
            edges,
        } = truth.online_topology();
        assert_eq!((ups.len(), leaves.len()), (60, 450));

        let engine = engine();
        let snapshot = crawl_topology(&engine, &[truth.nodes[0].addr], &topology_config()).await;
        assert_eq!(snapshot.ultrapeers(), ups, "ultrapeers");
        assert_eq!(snapshot.leaves(), leaves, "leaves");
        assert_eq!(snapshot.edges, edges, "edges");
        assert!(snapshot.unreachable.is_empty(), "{:?}", snapshot.unreachable);

        // Sybils: many ultrapeer identities in one /24.
        let flagged: BTreeSet<SocketAddr> = ultrapeer_subnets(&snapshot.ultrapeers(), 3)
            .flagged
            .into_values()
            .flatten()
            .collect();
        let sybils = truth.addrs_of(Behaviour::Sybil);
        let score = Score::of(&flagged, &sybils);
        println!(
            "Sybil ultrapeers: {} flagged, {} planted, precision {:?}, recall {:?}",
            flagged.len(),
            sybils.len(),
            score.precision(),
            score.recall()
        );
        assert_eq!(flagged, sybils);

        let leaves_held = snapshot.leaves_per_ultrapeer();
        let share = top_k_share(&leaves_held, 5);
        println!("top-5 ultrapeers hold {} of {} leaf connections", share.held, share.total);
        assert!(share.total >= 450 && share.held < share.total);

        // Poisoners: query the most popular titles from an honest ultrapeer, download every hit.
        let titles: Vec<String> = overlay.plan().catalogue.files().iter().take(3).map(|f| f.name.clone()).collect();
        let mut hits = Vec::new();
        let mut served = Vec::new();
        for title in &titles {
            let words = title.trim_end_matches(".mp3").to_owned();
            let cfg = QueryConfig {
                ttl: 4,
                wait: Duration::from_secs(2),
                ..QueryConfig::new(words)
            };
            let got = query(&engine, truth.nodes[1].addr, &cfg).await.unwrap();
            hits.extend(got.analysis_hits());
            for received in &got.hits {
                for result in &received.hit.results {
                    let check = verify_hit(&engine, received.responder(), result, &DownloadConfig::default()).await;
                    if let Ok(check) = check {
                        served.push(check.served_file());
                    }
                }
            }
        }
        assert!(!hits.is_empty() && !served.is_empty());
        let report = pollution_report(
            &hits,
            &served,
            &PollutionConfig { max_hits_per_subnet: 3 },
        );
        let mismatched: BTreeSet<SocketAddr> = report.mismatched.iter().map(|f| f.responder).collect();
        let poisoners = truth.addrs_of(Behaviour::Poisoner);
        let score = Score::of(&mismatched, &poisoners);
        println!(
            "poisoners: {} flagged by their downloads, {} planted, precision {:?}, recall {:?}; crowded (query, /24): {}",
            mismatched.len(),
            poisoners.len(),
            score.precision(),
            score.recall(),
            report.crowded.len()
        );
        assert_eq!(mismatched, poisoners);
        overlay.stop().await;
    })
    .await;
}

/// Leaves with Weibull(1.5, 4 s) sessions and Weibull(1.5, 2 s) downtimes, snapshotted every
/// 250 ms for 24 s: the create-based lifetimes of the crawl, fitted with censoring, give back the
/// configured shape and scale within 25 % (the probe interval is 6 % of the scale; about 300
/// sessions start in the first half of the window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_measured_by_snapshots_matches_the_configured_sessions() {
    bounded(120, async {
        let (shape, scale) = (1.5, 4.0);
        let overlay = Overlay::start(
            OverlayConfig {
                seed: 5,
                ultrapeers: 10,
                leaves: 150,
                ultrapeer_links: 2,
                base_ip: Ipv4Addr::new(127, 96, 0, 0),
                churn: Some(ChurnConfig {
                    leaf_fraction: 1.0,
                    ultrapeer_fraction: 0.0,
                    session: WeibullParams { shape, scale },
                    downtime: WeibullParams { shape, scale: 2.0 },
                    horizon_secs: 120.0,
                }),
                ..OverlayConfig::default()
            },
            READY,
        )
        .await
        .unwrap();
        let bootstrap = overlay.truth().nodes[0].addr;
        let snapshots = crawl_snapshots(&engine(), &[bootstrap], &topology_config(), 96, Duration::from_millis(250)).await;
        overlay.stop().await;
        let measured = churn(&snapshots).unwrap();
        let fit = weibull_fit_censored(&measured.lifetimes).unwrap();
        println!(
            "create-based sample: {} lifetimes; fitted shape {:.3} (configured {shape}), scale {:.2} s (configured {scale})",
            measured.lifetimes.len(),
            fit.shape(),
            fit.scale()
        );
        assert!(measured.lifetimes.len() >= 150, "{}", measured.lifetimes.len());
        assert!((fit.shape() / shape - 1.0).abs() < 0.25, "shape {}", fit.shape());
        assert!((fit.scale() / scale - 1.0).abs() < 0.25, "scale {}", fit.scale());
    })
    .await;
}
