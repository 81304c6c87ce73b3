//! The simulator's layout, routing tables and answers, checked through a real [`KrpcSocket`].

use std::time::Duration;

use super::*;
use crate::dht::socket::{KrpcSocket, QueryError, SocketConfig};
use crate::dht::space::{bep42_matches, prefix_len};

const TARGET: InfoHash = InfoHash([0x5a; 20]);

fn config(nodes: usize, base: [u8; 4]) -> SimConfig {
    SimConfig {
        nodes,
        seed: 11,
        base_ip: Ipv4Addr::from(base),
        ..SimConfig::default()
    }
}

async fn client() -> KrpcSocket {
    KrpcSocket::bind(SocketConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        timeout: Duration::from_millis(300),
        ..SocketConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn same_seed_same_network() {
    let a = SimNetwork::start(config(300, [127, 10, 0, 0])).await.unwrap();
    let b = SimNetwork::start(config(300, [127, 10, 0, 0])).await.unwrap();
    let ids = |n: &SimNetwork| {
        n.nodes()
            .iter()
            .map(|n| (n.id, n.addr.ip(), n.role))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    for i in [0, 17, 299] {
        let t = |n: &SimNetwork| n.routing_table(i).map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(t(&a), t(&b));
    }
    let c = SimNetwork::start(SimConfig {
        seed: 12,
        ..config(300, [127, 10, 0, 0])
    })
    .await
    .unwrap();
    assert_ne!(ids(&a), ids(&c));
}

#[tokio::test]
async fn routing_tables_are_k_buckets_complete_where_not_full() {
    let net = SimNetwork::start(config(500, [127, 11, 0, 0])).await.unwrap();
    let nodes = net.nodes();
    for (i, me) in nodes.iter().enumerate().step_by(7) {
        let mut per_bucket: HashMap<u32, usize> = HashMap::new();
        for e in net.routing_table(i) {
            assert_ne!(e.id, me.id);
            *per_bucket.entry(prefix_len(&me.id, &e.id)).or_default() += 1;
        }
        for (depth, n) in &per_bucket {
            assert!(*n <= 8, "bucket {depth} of node {i} holds {n}");
        }
        // A bucket holding fewer than k holds every node of its range.
        for depth in 0..160 {
            let all = nodes.iter().filter(|o| prefix_len(&me.id, &o.id) == depth).count();
            let held = per_bucket.get(&depth).copied().unwrap_or(0);
            assert_eq!(held, all.min(8), "node {i} bucket {depth}");
        }
    }
    // Honest ids are BEP 42 ids for their addresses.
    assert!(nodes.iter().all(|n| bep42_matches(n.addr.ip(), &n.id)));
}

#[tokio::test]
async fn answers_every_query_type() {
    let peer: SocketAddr = "127.9.9.9:6881".parse().unwrap();
    let ih = InfoHash([0x33; 20]);
    let net = SimNetwork::start(SimConfig {
        torrents: vec![SimTorrent {
            info_hash: ih,
            peers: vec![peer],
        }],
        ..config(200, [127, 12, 0, 0])
    })
    .await
    .unwrap();
    let s = client().await;
    let boot = net.bootstrap();
    let me = net.nodes()[0];

    let pong = s.ping(boot).await.unwrap();
    assert_eq!(pong.response.id, me.id);
    assert_eq!(pong.version.as_deref(), Some(SIM_VERSION));
    assert_eq!(pong.ip, Some(s.local_addrs()[0]));

    let target = NodeId([0x77; 20]);
    let found = s.find_node(boot, target).await.unwrap().response.nodes.unwrap();
    let mut expected: Vec<NodeId> = net.routing_table(0).map(|e| e.id).collect();
    expected.sort_by(|a, b| cmp_distance(&target, a, b));
    expected.truncate(8);
    assert_eq!(found.iter().map(|(id, _)| *id).collect::<Vec<_>>(), expected);

    // The torrent sits at the 8 nodes closest to it.
    let mut holders: Vec<&SimNode> = net.nodes().iter().collect();
    holders.sort_by(|a, b| cmp_distance(&NodeId(ih.0), &a.id, &b.id));
    let holder = holders[0].addr;
    let r = s.get_peers(holder, ih).await.unwrap().response;
    assert_eq!(r.values, Some(vec![peer]));
    let token = r.token.unwrap();
    assert_eq!(s.get_peers(holders[20].addr, ih).await.unwrap().response.values, None);

    // Announce, then get_peers shows us; a wrong token is refused.
    s.announce_peer(holder, ih, 4242, token).await.unwrap();
    let values = s.get_peers(holder, ih).await.unwrap().response.values.unwrap();
    assert!(values.contains(&SocketAddr::new(s.local_addrs()[0].ip(), 4242)));
    let err = s.announce_peer(holder, ih, 1, b"nope".to_vec()).await.unwrap_err();
    assert!(matches!(err, QueryError::Remote(ref e) if e.code == 203), "{err}");
    assert_eq!((net.stats().announces(), net.stats().rejected()), (1, 1));

    let sample = s.sample_infohashes(holder, target).await.unwrap().response;
    assert_eq!(sample.samples, Some(vec![ih]));
    assert_eq!(sample.num, Some(1));
    assert_eq!(sample.nodes.map(|n| n.len()), Some(8));
}

#[tokio::test]
async fn planted_adversaries_behave_as_configured() {
    let net = SimNetwork::start(SimConfig {
        silent: 5,
        restarted: 5,
        sybils: Some(SybilConfig {
            count: 12,
            placement: SybilPlacement::OneIp,
            target: TARGET,
            shared_bits: 24,
        }),
        poisoners: Some(PoisonConfig {
            count: 3,
            target: TARGET,
            fake_peers: 40,
            shared_bits: 20,
        }),
        ..config(300, [127, 13, 0, 0])
    })
    .await
    .unwrap();
    let s = client().await;
    let by_role = |r: Role| net.nodes().iter().filter(move |n| n.role == r);
    assert_eq!(by_role(Role::Silent).count(), 5);
    assert_eq!(by_role(Role::Sybil).count(), 12);
    for n in by_role(Role::Silent) {
        assert!(matches!(s.ping(n.addr).await, Err(QueryError::Timeout(_))));
    }
    for n in by_role(Role::Restarted) {
        let id = s.ping(n.addr).await.unwrap().response.id;
        assert_eq!(id, n.answers_with);
        assert_ne!(id, n.id);
    }
    let sybil_ip = by_role(Role::Sybil).next().unwrap().addr.ip();
    for n in by_role(Role::Sybil) {
        assert_eq!(n.addr.ip(), sybil_ip);
        assert!(prefix_len(&n.id, &NodeId(TARGET.0)) >= 24);
        assert!(!bep42_matches(n.addr.ip(), &n.id));
        assert_eq!(s.ping(n.addr).await.unwrap().response.id, n.id);
    }
    for n in by_role(Role::Poisoner) {
        let r = s.get_peers(n.addr, TARGET).await.unwrap().response;
        let values = r.values.unwrap();
        assert_eq!(values.len(), 40);
        assert_eq!(values, net.fake_peers());
        assert!(
            s.get_peers(n.addr, InfoHash([1; 20]))
                .await
                .unwrap()
                .response
                .values
                .is_none()
        );
    }
    // Sybils and poisoners are in the tables of honest nodes near the target.
    let near_target = net
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| n.role == Role::Honest)
        .max_by_key(|(_, n)| prefix_len(&n.id, &NodeId(TARGET.0)))
        .unwrap()
        .0;
    assert!(net.routing_table(near_target).any(|e| e.role == Role::Sybil));
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    for bad in [
        SimConfig {
            nodes: 0,
            ..SimConfig::default()
        },
        SimConfig {
            base_ip: Ipv4Addr::new(10, 0, 0, 0),
            ..SimConfig::default()
        },
        SimConfig {
            base_ip: Ipv4Addr::new(127, 254, 0, 0),
            ..SimConfig::default()
        },
        SimConfig {
            nodes: 10,
            silent: 10,
            ..SimConfig::default()
        },
    ] {
        assert!(matches!(SimNetwork::start(bad).await, Err(SimError::Config(_))));
    }
}
