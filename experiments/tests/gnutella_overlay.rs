//! The Gnutella overlay end to end on loopback: real sockets, the crawler crate's codecs on the
//! test side too, and every claim checked against the overlay's ground truth. Each test has its
//! own /16 (127.70 and up) so they run side by side.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use onionlab_crawler::gnutella::{Handshake, HandshakeDecoder, Message, Payload};
use onionlab_experiments::gnutella::files::{FileRequest, keywords};
use onionlab_experiments::gnutella::{
    Behaviour, ChurnConfig, Overlay, OverlayConfig, PoisonConfig, Role, SearchHit, Truth, WeibullParams,
};
use onionlab_experiments::socks_client::http_get;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

const READY: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);

fn small(base: [u8; 4]) -> OverlayConfig {
    OverlayConfig {
        ultrapeers: 10,
        leaves: 40,
        ultrapeer_links: 2,
        base_ip: Ipv4Addr::from(base),
        seed: 11,
        ..OverlayConfig::default()
    }
}

/// Polls `f` every 20 ms until it holds, at most `limit`.
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// A crawler's visit: connect, `Crawler: 0.1`, read the reply block.
async fn crawl(addr: SocketAddr) -> Handshake {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&Handshake::crawler_connect("onionlab-test-crawler").encode().unwrap())
        .await
        .unwrap();
    read_block(&mut s).await.unwrap()
}

async fn read_block(s: &mut TcpStream) -> Option<Handshake> {
    let mut decoder = HandshakeDecoder::new();
    let mut buf = [0u8; 4096];
    timeout(WAIT, async {
        loop {
            if let Some(b) = decoder.next_handshake().unwrap() {
                return Some(b.handshake);
            }
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            decoder.feed(&buf[..n]);
        }
    })
    .await
    .unwrap()
}

/// Reads until the peer closes (or errors); false if it is still open after [`WAIT`].
async fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn addrs(truth: &Truth, indices: &BTreeSet<usize>) -> BTreeSet<SocketAddr> {
    indices.iter().map(|&i| truth.nodes[i].addr).collect()
}

async fn download(hit: &SearchHit, request: &FileRequest) -> (u16, Vec<u8>) {
    let s = TcpStream::connect(hit.responder).await.unwrap();
    let r = http_get(s, &hit.responder.to_string(), &request.path(), 1 << 24, WAIT)
        .await
        .unwrap();
    (r.status, r.body)
}

fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

/// The leaves (other than `asker`) that a query reaching `ups` should get a hit from.
fn expected_responders(
    overlay: &Overlay,
    truth: &Truth,
    asker: usize,
    ups: &BTreeSet<usize>,
    q: &str,
) -> BTreeSet<SocketAddr> {
    truth
        .leaf_edges
        .iter()
        .filter(|(leaf, up)| *leaf != asker && ups.contains(up))
        .map(|(leaf, _)| *leaf)
        .filter(|&leaf| !overlay.plan().nodes[leaf].library.search(q.as_bytes(), None).is_empty())
        .map(|leaf| truth.nodes[leaf].addr)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_reach_exactly_the_ttl_ball_and_hits_come_back() {
    let overlay = Overlay::start(small([127, 70, 0, 0]), READY).await.unwrap();
    let truth = overlay.truth();
    // The leaf farthest from the rest: the TTL then cuts the ball short.
    let asker = (10..50).min_by_key(|&l| truth.ultrapeers_within(l, 2).len()).unwrap();
    let title = &overlay.plan().catalogue.files()[0].name;
    let query = keywords(title)[..2].join(" ");
    let mut seen_ttl_cut = false;
    for ttl in 1..=4u8 {
        let before = overlay.truth();
        let reach = before.ultrapeers_within(asker, ttl);
        seen_ttl_cut |= reach.len() < 10;
        let responders = expected_responders(&overlay, &before, asker, &reach, &query);
        let guid = overlay.search(asker, &query, None, ttl).unwrap();
        let reached = || {
            let now = overlay.truth();
            (0..10)
                .filter(|&u| now.nodes[u].counters.queries_seen > before.nodes[u].counters.queries_seen)
                .collect::<BTreeSet<usize>>()
        };
        let hit_from = || {
            overlay
                .hits(asker, &guid)
                .iter()
                .map(|h| h.responder)
                .collect::<BTreeSet<SocketAddr>>()
        };
        until("the query to reach its ball", WAIT, || reached() == reach).await;
        until("the hits", WAIT, || hit_from() == responders).await;
        // And no further, however long we wait.
        sleep(Duration::from_millis(300)).await;
        assert_eq!(reached(), reach, "ttl {ttl}");
        assert_eq!(hit_from(), responders, "ttl {ttl}");
        for hit in overlay.hits(asker, &guid) {
            assert!(keywords(&hit.name).iter().any(|k| query.contains(k.as_str())));
            assert!(hit.sha1.is_some());
        }
    }
    assert!(seen_ttl_cut, "the graph is too dense for this test");
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawler_handshakes_get_the_true_neighbour_lists() {
    let overlay = Overlay::start(small([127, 72, 0, 0]), READY).await.unwrap();
    let truth = overlay.truth();
    for up in [0, 3, 9] {
        let reply = crawl(truth.nodes[up].addr).await;
        assert_eq!(reply.status(), Some(200));
        assert_eq!(reply.headers.ultrapeer(), Some(true));
        let (ups, leaves) = truth.neighbours(up);
        let peers: BTreeSet<SocketAddr> = reply.headers.peers().unwrap().addrs().into_iter().collect();
        let got_leaves: BTreeSet<SocketAddr> = reply.headers.leaves().unwrap().addrs().into_iter().collect();
        assert_eq!(peers, addrs(&truth, &ups), "ultrapeer {up}");
        assert_eq!(got_leaves, addrs(&truth, &leaves), "ultrapeer {up}");
        assert!(!leaves.is_empty());
    }
    for leaf in [10, 25, 49] {
        let reply = crawl(truth.nodes[leaf].addr).await;
        assert_eq!(reply.headers.ultrapeer(), Some(false));
        assert!(reply.headers.leaves().is_none(), "a leaf sends no Leaves:");
        let peers: BTreeSet<SocketAddr> = reply.headers.peers().unwrap().addrs().into_iter().collect();
        assert_eq!(peers, addrs(&truth, &truth.neighbours(leaf).0));
        // A leaf refuses a servent with 503 and points it at its ultrapeers.
        let mut s = TcpStream::connect(truth.nodes[leaf].addr).await.unwrap();
        let mut connect = Handshake::connect();
        connect.headers.set("X-Ultrapeer", "True");
        s.write_all(&connect.encode().unwrap()).await.unwrap();
        let refusal = read_block(&mut s).await.unwrap();
        assert_eq!(refusal.status(), Some(503));
        let try_ups: BTreeSet<SocketAddr> = refusal.headers.try_ultrapeers().unwrap().addrs().into_iter().collect();
        assert_eq!(try_ups, peers);
    }
    assert!(overlay.truth().nodes[0].counters.crawler_replies >= 1);
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_match_their_hash_and_decoys_do_not() {
    let config = OverlayConfig {
        free_riders: 4,
        poisoners: PoisonConfig {
            count: 3,
            targets: 3,
            ..PoisonConfig::default()
        },
        ..small([127, 74, 0, 0])
    };
    let overlay = Overlay::start(config, READY).await.unwrap();
    let truth = overlay.truth();
    let poisoners = truth.addrs_of(Behaviour::Poisoner);
    let free_riders: Vec<usize> = truth
        .nodes
        .iter()
        .filter(|n| n.behaviour == Behaviour::FreeRider)
        .map(|n| n.index)
        .collect();
    let asker = free_riders[0];
    let top = overlay.plan().catalogue.files()[0].clone();
    let guid = overlay.search(asker, &top.name, None, 7).unwrap();
    until("genuine and decoy hits", WAIT, || {
        let hits = overlay.hits(asker, &guid);
        hits.iter().any(|h| poisoners.contains(&h.responder)) && hits.iter().any(|h| !poisoners.contains(&h.responder))
    })
    .await;
    let hits = overlay.hits(asker, &guid);
    assert!(
        hits.iter()
            .all(|h| h.sha1 == Some(top.sha1) && h.file_size == top.size && h.name == top.name)
    );
    let mut genuine = 0;
    for hit in &hits {
        let by_urn = FileRequest::ByUrn(top.sha1);
        let by_index = FileRequest::ByIndex {
            index: hit.file_index,
            name: hit.name.clone(),
        };
        for request in [by_urn, by_index] {
            let (status, body) = download(hit, &request).await;
            assert_eq!(status, 200);
            if poisoners.contains(&hit.responder) {
                assert_ne!(sha1(&body), top.sha1, "a decoy from {}", hit.responder);
                assert_eq!(body.len() as u32, top.size, "a wrong-content decoy keeps the size");
            } else {
                assert_eq!(sha1(&body), top.sha1);
                genuine += 1;
            }
        }
    }
    assert!(genuine > 0);

    // The free rider got hits, but serves nothing and answered nothing.
    let free = overlay.truth().nodes[asker].clone();
    assert!(free.counters.hits_received > 0);
    assert_eq!(
        (free.counters.hits_sent, free.counters.queries_seen),
        (0, 0),
        "QRP keeps queries away"
    );
    let fake = SearchHit {
        responder: free.addr,
        ..hits[0].clone()
    };
    let (status, body) = download(&fake, &FileRequest::ByUrn(top.sha1)).await;
    assert_eq!((status, body.len()), (503, 0));
    let uploads: u64 = overlay
        .truth()
        .nodes
        .iter()
        .filter(|n| n.behaviour == Behaviour::FreeRider)
        .map(|n| n.counters.uploads_served)
        .sum();
    assert_eq!(uploads, 0);
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_decoys_fail_the_size_check_too() {
    let config = OverlayConfig {
        poisoners: PoisonConfig {
            count: 2,
            targets: 1,
            decoy: onionlab_experiments::gnutella::DecoyKind::WrongSize,
        },
        ..small([127, 76, 0, 0])
    };
    let overlay = Overlay::start(config, READY).await.unwrap();
    let truth = overlay.truth();
    let poisoners = truth.addrs_of(Behaviour::Poisoner);
    let asker = truth
        .nodes
        .iter()
        .find(|n| n.role == Role::Leaf && n.behaviour == Behaviour::Honest)
        .unwrap()
        .index;
    let top = overlay.plan().catalogue.files()[0].clone();
    let guid = overlay.search(asker, "", Some(top.sha1), 7).unwrap();
    until("a decoy hit", WAIT, || {
        overlay
            .hits(asker, &guid)
            .iter()
            .any(|h| poisoners.contains(&h.responder))
    })
    .await;
    for hit in overlay
        .hits(asker, &guid)
        .iter()
        .filter(|h| poisoners.contains(&h.responder))
    {
        let (status, body) = download(hit, &FileRequest::ByUrn(top.sha1)).await;
        assert_eq!(status, 200);
        assert_eq!(body.len() as u32, top.size / 2);
        assert_ne!(sha1(&body), top.sha1);
    }
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_overlay() {
    let a = Overlay::start(small([127, 78, 0, 0]), READY).await.unwrap();
    let b = Overlay::start(small([127, 80, 0, 0]), READY).await.unwrap();
    let (ta, tb) = (a.truth(), b.truth());
    assert_eq!(ta.ultrapeer_edges, tb.ultrapeer_edges);
    assert_eq!(ta.leaf_edges, tb.leaf_edges);
    let ids = |t: &Truth| {
        t.nodes
            .iter()
            .map(|n| (n.guid.clone(), n.role, n.behaviour))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&ta), ids(&tb));
    assert_eq!(a.plan().catalogue, b.plan().catalogue);
    let mut planned: Vec<(usize, usize)> = a
        .plan()
        .ultrapeer_links
        .iter()
        .map(|&(x, y)| (x.min(y), x.max(y)))
        .collect();
    planned.sort();
    assert_eq!(ta.ultrapeer_edges, planned, "the live graph is the planned one");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_drops_only_that_connection() {
    let overlay = Overlay::start(small([127, 82, 0, 0]), READY).await.unwrap();
    let before = overlay.truth();
    let up = before.nodes[0].addr;
    let mut attacks: Vec<Vec<u8>> = Vec::new();
    // Endless headers, one endless line, a start line from elsewhere, binary garbage.
    let mut endless = b"GNUTELLA CONNECT/0.6\r\n".to_vec();
    for i in 0..500 {
        endless.extend_from_slice(format!("X-Junk-{i}: a\r\n").as_bytes());
    }
    attacks.push(endless);
    attacks.push([b"GNUTELLA CONNECT/0.6\r\nUser-Agent: ".as_slice(), &[b'a'; 20_000]].concat());
    attacks.push(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec());
    attacks.push(
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    for bytes in attacks {
        let mut s = TcpStream::connect(up).await.unwrap();
        let _ = s.write_all(&bytes).await;
        assert!(closed_by_peer(&mut s).await);
    }
    // A descriptor claiming a 4 GiB payload after a proper handshake, as an ultrapeer and as a
    // leaf; and a leaf's QRP message that is not QRP.
    let huge = {
        let mut h = vec![0u8; 23];
        h[16] = 0x80;
        h[17] = 3;
        h[19..23].copy_from_slice(&u32::MAX.to_le_bytes());
        h
    };
    let bad_qrp = Message {
        guid: onionlab_crawler::gnutella::Guid([9; 16]),
        ttl: 1,
        hops: 0,
        payload: Payload::Unknown {
            kind: 0x30,
            payload: vec![7, 7, 7],
        },
    }
    .encode()
    .unwrap();
    for (ultrapeer, listen, bytes) in [
        (true, "127.82.200.1:6346", huge.clone()),
        (false, "127.82.200.2:6346", huge),
        (false, "127.82.200.3:6346", bad_qrp),
    ] {
        let mut s = TcpStream::connect(up).await.unwrap();
        let mut connect = Handshake::connect();
        connect
            .headers
            .set("X-Ultrapeer", if ultrapeer { "True" } else { "False" });
        connect.headers.set("Listen-IP", listen);
        s.write_all(&connect.encode().unwrap()).await.unwrap();
        let ok = read_block(&mut s).await.unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.headers.get("Remote-IP"), Some("127.0.0.1"));
        s.write_all(&Handshake::response(200, "OK").encode().unwrap())
            .await
            .unwrap();
        s.write_all(&bytes).await.unwrap();
        assert!(closed_by_peer(&mut s).await, "{listen}");
    }
    let after = overlay.truth();
    assert_eq!(after.ultrapeer_edges, before.ultrapeer_edges);
    assert_eq!(after.leaf_edges, before.leaf_edges);
    assert!(after.nodes[0].counters.bad_input >= 7, "{:?}", after.nodes[0].counters);
    let reply = crawl(up).await;
    assert_eq!(reply.status(), Some(200));
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_says_bye_and_rejoins_on_its_address() {
    let overlay = Overlay::start(small([127, 84, 0, 0]), READY).await.unwrap();
    let truth = overlay.truth();
    let leaf = 12;
    let (ups, _) = truth.neighbours(leaf);
    // Watch one of its ultrapeers as a peer would: a leaf connection of ours must stay up.
    overlay.leave(leaf).await.unwrap();
    let gone = overlay.truth();
    assert!(!gone.nodes[leaf].online);
    assert!(gone.neighbours(leaf).0.is_empty());
    for &up in &ups {
        let reply = crawl(gone.nodes[up].addr).await;
        let leaves = reply.headers.leaves().unwrap().addrs();
        assert!(
            !leaves.contains(&gone.nodes[leaf].addr),
            "ultrapeer {up} still lists the leaf"
        );
    }
    assert!(
        TcpStream::connect(gone.nodes[leaf].addr).await.is_err(),
        "its listener is closed"
    );
    assert!(overlay.search(leaf, "amber", None, 2).is_err());
    overlay.rejoin(leaf).await.unwrap();
    until("the leaf's links to come back", WAIT, || {
        overlay.truth().neighbours(leaf).0 == ups
    })
    .await;
    until("its QRP tables", WAIT, || overlay.truth().qrp_pending.is_empty()).await;
    let sessions: Vec<_> = overlay.sessions().into_iter().filter(|s| s.node == leaf).collect();
    assert_eq!(sessions.len(), 2);
    assert!(sessions[0].length().is_some() && sessions[1].end_secs.is_none());
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_follows_the_schedule_and_logs_true_sessions() {
    let churn = ChurnConfig {
        leaf_fraction: 0.5,
        ultrapeer_fraction: 0.0,
        session: WeibullParams { shape: 1.0, scale: 1.0 },
        downtime: WeibullParams { shape: 1.0, scale: 0.5 },
        horizon_secs: 3.0,
    };
    let config = OverlayConfig {
        churn: Some(churn),
        ..small([127, 86, 0, 0])
    };
    let overlay = Overlay::start(config, READY).await.unwrap();
    let churning: BTreeSet<usize> = overlay
        .plan()
        .nodes
        .iter()
        .filter(|n| !n.sessions.is_empty())
        .map(|n| n.index)
        .collect();
    assert!(!churning.is_empty() && churning.iter().all(|&i| overlay.plan().nodes[i].role == Role::Leaf));
    let rejoined = || overlay.sessions().iter().filter(|s| s.start_secs > 0.0).count();
    until("nodes to leave and rejoin", WAIT, || rejoined() >= 3).await;
    let log = overlay.sessions();
    for s in &log {
        if s.start_secs > 0.0 || s.end_secs.is_some() {
            assert!(churning.contains(&s.node), "node {} never churns", s.node);
        }
    }
    // The log's lengths are the planned ones, give or take scheduling delays.
    for &node in &churning {
        let planned = &overlay.plan().nodes[node].sessions;
        let done: Vec<f64> = log
            .iter()
            .filter(|s| s.node == node)
            .filter_map(|s| s.length())
            .collect();
        for (got, want) in done.iter().zip(planned) {
            assert!(
                (got - want.length()).abs() < 1.0,
                "node {node}: {got} vs {}",
                want.length()
            );
        }
    }
    // Whoever is online now has its planned links back, eventually (those to online peers).
    let truth = overlay.truth();
    let online_leaf = (10..50)
        .find(|&l| truth.nodes[l].online && !churning.contains(&l))
        .unwrap();
    assert!(!truth.neighbours(online_leaf).0.is_empty());
    overlay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_nodes_start_and_their_truth_is_consistent() {
    let config = OverlayConfig {
        base_ip: Ipv4Addr::new(127, 88, 0, 0),
        sybils: onionlab_experiments::gnutella::SybilConfig {
            count: 20,
            ..Default::default()
        },
        ..OverlayConfig::default()
    };
    let started = Instant::now();
    let overlay = Overlay::start(config, Duration::from_secs(120)).await.unwrap();
    eprintln!("500 nodes + 20 Sybils ready in {:?}", started.elapsed());
    let truth = overlay.truth();
    assert_eq!(truth.nodes.len(), 520);
    assert!(truth.nodes.iter().all(|n| n.online));
    let mut planned: Vec<(usize, usize)> = overlay
        .plan()
        .ultrapeer_links
        .iter()
        .map(|&(x, y)| (x.min(y), x.max(y)))
        .collect();
    planned.sort();
    assert_eq!(truth.ultrapeer_edges, planned);
    let mut leaf_links = overlay.plan().leaf_links.clone();
    leaf_links.sort();
    assert_eq!(truth.leaf_edges, leaf_links);
    for leaf in 50..500 {
        assert!((1..=3).contains(&truth.neighbours(leaf).0.len()));
    }
    let sybils = truth.addrs_of(Behaviour::Sybil);
    assert_eq!(sybils.len(), 20);
    assert!(sybils.iter().all(|a| a.ip().to_string().starts_with("127.89.0.")));
    // A crawl of a few ultrapeers agrees with the truth, Sybils included.
    for up in [0, 17, 49, 510] {
        let reply = crawl(truth.nodes[up].addr).await;
        let (ups, leaves) = truth.neighbours(up);
        let peers: BTreeSet<SocketAddr> = reply.headers.peers().unwrap().addrs().into_iter().collect();
        assert_eq!(peers, addrs(&truth, &ups));
        let got: BTreeSet<SocketAddr> = reply.headers.leaves().unwrap().addrs().into_iter().collect();
        assert_eq!(got, addrs(&truth, &leaves));
    }
    overlay.stop().await;
}
