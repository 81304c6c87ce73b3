//! The crawl's pure parts (bucket choice, size estimate, resumption from rows) and a small crawl of
//! the simulator. The full-size scenarios are in `crawler/tests/dht_sim.rs`.

use std::net::Ipv4Addr;

use super::*;
use crate::dht::sim::{SimConfig, SimNetwork, SimTorrent};
use crate::dht::socket::SocketConfig;
use crate::dht::space::flip_bit;
use crate::engine::{EngineConfig, Recorder};
use crate::observe::Visit;

fn node(id: NodeId) -> (NodeId, SocketAddr) {
    (id, "127.0.0.1:1".parse().unwrap())
}

#[test]
fn probe_depths_cover_the_reply_edge_and_one_shallow_bucket() {
    let id = NodeId([0; 20]);
    let nearest: Vec<_> = [12, 13, 15, 20].iter().map(|b| node(flip_bit(&id, *b))).collect();
    let mut rng = SplitMix64::new(1);
    for _ in 0..50 {
        let d = probe_depths(&id, &nearest, 4, &mut rng);
        assert_eq!(d.len(), 4);
        assert!(d[0] < 10, "{d:?}");
        assert_eq!(&d[1..], &[12, 11, 10]);
    }
    // Near the top of the tree there is no room for a separate shallow bucket.
    let top: Vec<_> = [1, 3].iter().map(|b| node(flip_bit(&id, *b))).collect();
    assert_eq!(probe_depths(&id, &top, 4, &mut rng), vec![1, 0]);
    assert!(probe_depths(&id, &[], 4, &mut rng).is_empty());
    assert!(probe_depths(&id, &nearest, 0, &mut rng).is_empty());
}

#[test]
fn our_own_sockets_are_recognised() {
    let wildcard: SocketAddr = "0.0.0.0:4000".parse().unwrap();
    let bound: SocketAddr = "127.0.8.1:5000".parse().unwrap();
    let locals = [wildcard, bound];
    assert!(is_ours(&locals, "127.0.0.1:4000".parse().unwrap()));
    assert!(is_ours(&locals, "127.0.8.1:5000".parse().unwrap()));
    assert!(!is_ours(&locals, "127.0.8.2:5000".parse().unwrap()));
    assert!(!is_ours(&locals, "192.0.2.1:4000".parse().unwrap()));
    assert!(!is_ours(&locals, "127.0.0.1:4001".parse().unwrap()));
}

#[test]
fn size_estimate_from_kth_neighbour_distances() {
    assert_eq!(size_estimate(&mut []), None);
    // With N ids, the median 8th-neighbour distance is about (8 - 1/3) / (N - 1).
    let mut rng = SplitMix64::new(5);
    let n = 5000usize;
    let ids: Vec<NodeId> = (0..n).map(|_| rng.node_id()).collect();
    let mut samples = Vec::new();
    for me in ids.iter().take(400) {
        let mut d: Vec<f64> = ids
            .iter()
            .filter(|o| *o != me)
            .map(|o| distance_fraction(me, o))
            .collect();
        d.sort_by(f64::total_cmp);
        samples.push(d[K - 1]);
    }
    let est = size_estimate(&mut samples).unwrap();
    assert!((est / n as f64 - 1.0).abs() < 0.15, "estimate {est} for {n}");
}

#[test]
fn resume_from_rows() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let b: SocketAddr = "127.0.0.2:1".parse().unwrap();
    let c: SocketAddr = "127.0.0.3:1".parse().unwrap();
    let d: SocketAddr = "127.0.0.4:1".parse().unwrap();
    let e: SocketAddr = "127.0.0.5:1".parse().unwrap();
    let visit = |addr, probe, outcome, id: Option<[u8; 20]>| {
        let mut v = Visit::start(probe, "x", Some(addr));
        v.outcome = outcome;
        v.remote_id = id;
        Observation::Visit(v)
    };
    let sighting = |addr, id: [u8; 20], info_hash| {
        Observation::Sighting(Sighting {
            at: 0,
            source_kind: SourceKind::Dht,
            source: a.to_string(),
            source_id: Some([1; 20]),
            info_hash,
            addr,
            id: Some(id),
        })
    };
    let find = ProbeKind::DhtFindNode;
    let rows = [
        // a: a timeout, then two answers: a complete visit of 2 queries.
        visit(a, find, Outcome::Timeout, None),
        visit(a, find, Outcome::Ok, Some([1; 20])),
        visit(a, ProbeKind::DhtSampleInfohashes, Outcome::RemoteError, None),
        // b: sighted only; c: sighted, then silent; d: a peer, not a node.
        sighting(b, [2; 20], None),
        sighting(c, [3; 20], None),
        visit(c, find, Outcome::Timeout, None),
        sighting(d, [4; 20], Some(InfoHash([9; 20]))),
        sighting(a, [1; 20], None),
        // e: answered once, then the crawl stopped.
        sighting(e, [5; 20], None),
        visit(e, find, Outcome::Ok, Some([5; 20])),
        visit(e, ProbeKind::DhtGetPeers, Outcome::Ok, Some([5; 20])),
    ];
    let r = Resume::from_rows(&rows, 2);
    assert_eq!(r.visited, vec![(a, NodeId([1; 20]))]);
    assert_eq!(r.unfinished, vec![(e, NodeId([5; 20]))]);
    assert_eq!(r.frontier, vec![(b, Some(NodeId([2; 20]))), (c, Some(NodeId([3; 20])))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_network_is_crawled_whole_and_its_torrent_found() {
    let peer: SocketAddr = "127.9.0.1:51413".parse().unwrap();
    let ih = InfoHash([0xc4; 20]);
    let net = SimNetwork::start(SimConfig {
        nodes: 150,
        seed: 3,
        base_ip: Ipv4Addr::new(127, 20, 0, 0),
        silent: 3,
        torrents: vec![SimTorrent {
            info_hash: ih,
            peers: vec![peer],
        }],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let socket = KrpcSocket::bind(SocketConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        ..SocketConfig::default()
    })
    .await
    .unwrap();
    let (rec, mut rx) = Recorder::channel(1 << 16);
    let engine = Engine::new(
        EngineConfig {
            timeout: Duration::from_millis(400),
            attempts: 2,
            backoff: Duration::from_millis(100),
            ..EngineConfig::default()
        },
        rec,
    );
    let config = CrawlConfig {
        bootstrap: vec![net.bootstrap()],
        max_duration: Duration::from_secs(60),
        info_hashes: vec![ih],
        sample_infohashes: true,
        seed: Some(1),
        ..CrawlConfig::default()
    };
    let crawl = Crawl::new(socket, engine, config);
    let progress = crawl.progress();
    let out = crawl.run().await;
    let r = &out.report;
    assert_eq!(r.stop, StopReason::Exhausted);
    assert_eq!((r.responsive, r.unresponsive, r.unvisited), (147, 3, 0), "{r}");
    assert_eq!(progress.responsive(), 147);
    assert_eq!(progress.known(), 150);
    assert_eq!(out.peers[&ih], BTreeSet::from([peer]));
    assert_eq!(out.samples, BTreeSet::from([ih]));
    assert_eq!(r.mismatched, 0);
    assert_eq!(r.bep42_failures, 0);
    let est = r.size_estimate.unwrap();
    assert!((100.0..230.0).contains(&est), "size estimate {est}");
    for n in &out.nodes {
        let truth = net.nodes().iter().find(|t| t.addr == n.addr).unwrap();
        assert_eq!(n.state == NodeState::Responsive, truth.role.responds());
        if n.state == NodeState::Responsive {
            assert_eq!(n.id, Some(truth.id));
        }
    }
    let mut sightings = 0;
    while let Ok(row) = rx.try_recv() {
        if let Observation::Sighting(s) = row {
            sightings += 1;
            if s.info_hash == Some(ih) {
                assert_eq!(s.addr, peer);
            }
        }
    }
    assert_eq!(sightings, r.sightings);
}
