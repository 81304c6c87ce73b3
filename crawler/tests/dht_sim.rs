//! The DHT crawl against the loopback simulator: a crawl finds (nearly) every responsive node,
//! reports the silent ones, records the neighbour graph and the planted adversaries in its rows,
//! and a crawl stopped midway and resumed from its rows ends where an uninterrupted one does.
// Test helpers outside #[test] functions unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onionlab_crawler::dht::crawl::{Crawl, CrawlConfig, CrawlOutcome, NodeState, Resume, StopReason};
use onionlab_crawler::dht::sim::{PoisonConfig, Role, SimConfig, SimNetwork, SybilConfig, SybilPlacement};
use onionlab_crawler::dht::socket::{BEP42_INVALID_EXEMPT, KrpcSocket, SocketConfig};
use onionlab_crawler::dht::space::prefix_len;
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::krpc::NodeId;
use onionlab_crawler::observe::{Observation, Outcome, SourceKind};

const TARGET: InfoHash = InfoHash([0xa7; 20]);

/// Rows recorded by a crawl, collected by a task.
#[derive(Clone, Default)]
struct Rows(Arc<Mutex<Vec<Observation>>>);

impl Rows {
    fn recorder(&self) -> Recorder {
        let (rec, mut rx) = Recorder::channel(4096);
        let rows = self.0.clone();
        tokio::spawn(async move {
            while let Some(row) = rx.recv().await {
                rows.lock().unwrap().push(row);
            }
        });
        rec
    }

    fn take(&self) -> Vec<Observation> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The engine a test crawl runs under: the default politeness (1 query/s per IP), short timeouts.
fn engine(recorder: Recorder) -> Engine {
    Engine::new(
        EngineConfig {
            timeout: Duration::from_millis(500),
            attempts: 2,
            backoff: Duration::from_millis(100),
            ..EngineConfig::default()
        },
        recorder,
    )
}

async fn run(config: CrawlConfig, rows: &Rows) -> CrawlOutcome {
    let socket = KrpcSocket::bind(SocketConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        ..SocketConfig::default()
    })
    .await
    .unwrap();
    let crawl = Crawl::new(socket, engine(rows.recorder()), config);
    let out = tokio::time::timeout(Duration::from_secs(120), crawl.run())
        .await
        .expect("crawl ends");
    // Let the collector catch up with the last rows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    out
}

fn responsive(out: &CrawlOutcome) -> BTreeSet<SocketAddr> {
    out.nodes
        .iter()
        .filter(|n| n.state == NodeState::Responsive)
        .map(|n| n.addr)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_finds_the_network_and_its_planted_adversaries() {
    let net = SimNetwork::start(SimConfig {
        nodes: 1500,
        seed: 2024,
        base_ip: Ipv4Addr::new(127, 30, 0, 0),
        silent: 15,
        restarted: 10,
        sybils: Some(SybilConfig {
            count: 40,
            placement: SybilPlacement::Range,
            target: TARGET,
            shared_bits: 22,
        }),
        poisoners: Some(PoisonConfig {
            count: 4,
            target: TARGET,
            fake_peers: 60,
            // Closer to the target than the Sybils: the lookup's closest nodes.
            shared_bits: 26,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let rows = Rows::default();
    let out = run(
        CrawlConfig {
            bootstrap: vec![net.bootstrap()],
            info_hashes: vec![TARGET],
            seed: Some(9),
            ..CrawlConfig::default()
        },
        &rows,
    )
    .await;
    let rows = rows.take();
    let r = &out.report;
    println!("{r}");
    assert_eq!(r.stop, StopReason::Exhausted);

    // Recall over responsive nodes, and the silent ones reported apart.
    let truth_responsive: BTreeSet<SocketAddr> = net
        .nodes()
        .iter()
        .filter(|n| n.role.responds())
        .map(|n| n.addr)
        .collect();
    let found = responsive(&out);
    assert!(found.is_subset(&truth_responsive));
    let recall = found.len() as f64 / truth_responsive.len() as f64;
    assert!(recall >= 0.99, "recall {recall}");
    let silent: BTreeSet<SocketAddr> = net
        .nodes()
        .iter()
        .filter(|n| n.role == Role::Silent)
        .map(|n| n.addr)
        .collect();
    let unresponsive: BTreeSet<SocketAddr> = out
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Unresponsive)
        .map(|n| n.addr)
        .collect();
    assert_eq!(unresponsive, silent);

    // Restarted nodes are the id/address mismatches.
    let mismatched: BTreeSet<SocketAddr> = out.nodes.iter().filter(|n| n.mismatched()).map(|n| n.addr).collect();
    let restarted: BTreeSet<SocketAddr> = net
        .nodes()
        .iter()
        .filter(|n| n.role == Role::Restarted)
        .map(|n| n.addr)
        .collect();
    assert_eq!(mismatched, restarted);

    let total = net.nodes().len() as f64;
    let est = r.size_estimate.unwrap();
    assert!((est / total - 1.0).abs() < 0.2, "size estimate {est} for {total}");

    // The rows: an OK visit per responsive node with the id it answered with, and the neighbour
    // graph exactly as the routing tables hold it.
    let mut ok_ids: HashMap<SocketAddr, HashSet<[u8; 20]>> = HashMap::new();
    let mut notes: HashMap<SocketAddr, Option<String>> = HashMap::new();
    let mut edges = 0u64;
    let tables: HashMap<SocketAddr, HashSet<(SocketAddr, NodeId)>> = (0..net.nodes().len())
        .map(|i| {
            (
                net.nodes()[i].addr,
                net.routing_table(i).map(|e| (e.addr, e.id)).collect(),
            )
        })
        .collect();
    let mut poisoned_rows = 0u64;
    for row in &rows {
        match row {
            Observation::Visit(v) if v.outcome == Outcome::Ok => {
                let addr = v.addr.unwrap();
                ok_ids.entry(addr).or_default().insert(v.remote_id.unwrap());
                notes.insert(addr, v.error.clone());
            }
            Observation::Sighting(s) if s.source_kind == SourceKind::Dht && s.info_hash.is_none() => {
                let source: SocketAddr = s.source.parse().unwrap();
                assert!(tables[&source].contains(&(s.addr, NodeId(s.id.unwrap()))), "{s:?}");
                edges += 1;
            }
            Observation::Sighting(s) if s.info_hash == Some(TARGET) && net.fake_peers().contains(&s.addr) => {
                poisoned_rows += 1;
            }
            _ => {}
        }
    }
    assert_eq!(edges + poisoned_rows, r.sightings);
    for n in net.nodes().iter().filter(|n| found.contains(&n.addr)) {
        assert_eq!(ok_ids[&n.addr], HashSet::from([n.answers_with.0]), "{n:?}");
    }

    // The Sybils: every one visited, under its clustered id, flagged by BEP 42, from one range.
    let sybils: Vec<_> = net.nodes().iter().filter(|n| n.role == Role::Sybil).collect();
    for s in &sybils {
        assert_eq!(ok_ids[&s.addr], HashSet::from([s.id.0]));
        assert!(prefix_len(&s.id, &NodeId(TARGET.0)) >= 22);
        assert_eq!(notes[&s.addr].as_deref(), Some(BEP42_INVALID_EXEMPT));
    }
    assert_eq!(r.bep42_failures, sybils.len() + 4, "Sybils and poisoners fail BEP 42");
    // Honest nodes comply.
    for n in net
        .nodes()
        .iter()
        .filter(|n| n.role == Role::Honest && found.contains(&n.addr))
    {
        assert_eq!(notes[&n.addr], None);
    }

    // The target's lookup met the poisoners: their fake peers are in the rows and the result.
    assert!(poisoned_rows > 0);
    let fakes: BTreeSet<SocketAddr> = net.fake_peers().iter().copied().collect();
    assert_eq!(out.peers[&TARGET], fakes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_stopped_midway_resumes_from_its_rows() {
    let net = SimNetwork::start(SimConfig {
        nodes: 800,
        seed: 77,
        base_ip: Ipv4Addr::new(127, 40, 0, 0),
        silent: 8,
        sybils: Some(SybilConfig {
            count: 5,
            placement: SybilPlacement::OneIp,
            target: TARGET,
            shared_bits: 20,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let base = CrawlConfig {
        bootstrap: vec![net.bootstrap()],
        seed: Some(4),
        ..CrawlConfig::default()
    };

    let whole = run(base.clone(), &Rows::default()).await;
    assert_eq!(whole.report.stop, StopReason::Exhausted);

    let rows = Rows::default();
    let first = run(
        CrawlConfig {
            max_duration: Duration::from_millis(1500),
            ..base.clone()
        },
        &rows,
    )
    .await;
    assert_eq!(first.report.stop, StopReason::MaxDuration);
    assert!(first.report.responsive < whole.report.responsive, "{}", first.report);
    let resume = Resume::from_rows(&rows.take(), base.queries_per_visit());
    assert!(!resume.frontier.is_empty() || !resume.unfinished.is_empty());
    assert_eq!(resume.visited.len() + resume.unfinished.len(), first.report.responsive);
    // The rows cannot tell a one-query visit of a crowded IP from a cut one: at most those differ.
    let from_outcome = first.resume();
    assert!(resume.visited.iter().all(|v| from_outcome.visited.contains(v)));

    let second = run(
        CrawlConfig {
            bootstrap: Vec::new(),
            resume,
            ..base
        },
        &Rows::default(),
    )
    .await;
    assert_eq!(second.report.stop, StopReason::Exhausted);
    assert_eq!(responsive(&second), responsive(&whole));
    let silent = |o: &CrawlOutcome| {
        o.nodes
            .iter()
            .filter(|n| n.state == NodeState::Unresponsive)
            .map(|n| n.addr)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(silent(&second), silent(&whole));
    assert_eq!(silent(&whole).len(), 8);
    // Every Sybil on the one IP was found both ways.
    let sybils: BTreeSet<SocketAddr> = net
        .nodes()
        .iter()
        .filter(|n| n.role == Role::Sybil)
        .map(|n| n.addr)
        .collect();
    assert!(sybils.is_subset(&responsive(&second)));
}
