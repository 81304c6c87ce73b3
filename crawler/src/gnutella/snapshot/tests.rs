//! Tests of the Gnutella snapshot crawl: breadth-first over ultrapeers, leaves only when asked,
//! refusals, each address once, the contact limit.

use super::*;
use crate::gnutella::{CrawlerReply, Handshake, decode_handshake};

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn reply(ultrapeer: bool, peers: &[&str], leaves: &[&str]) -> CrawlerAnswer {
    let wire = Handshake::crawler_reply(&CrawlerReply {
        user_agent: "Test/1.0".into(),
        ultrapeer,
        peers: peers.iter().map(|p| a(p)).collect(),
        leaves: leaves.iter().map(|p| a(p)).collect(),
    })
    .encode()
    .unwrap();
    CrawlerAnswer::decode(&wire, HandshakeLimits::default()).unwrap()
}

/// Drives an assembly to its end, answering from `answers` (anything else fails).
fn run(
    seeds: &[&str],
    rules: FrontierRules,
    answers: &BTreeMap<SocketAddr, CrawlerAnswer>,
) -> (Snapshot, Vec<SocketAddr>) {
    let mut s = SnapshotAssembly::new(0, seeds.iter().map(|p| a(p)), rules);
    let mut order = Vec::new();
    let mut t = 0;
    while let Some(addr) = s.next_target() {
        assert!(order.len() < 1000, "runaway frontier");
        order.push(addr);
        t += 1;
        match answers.get(&addr) {
            Some(ans) => s.answered(addr, t, Duration::from_millis(1), ans),
            None => s.failed(addr, t, Duration::from_millis(1), Outcome::Timeout, "no answer"),
        }
    }
    (s.finish(Duration::from_secs(1), StopReason::Exhausted), order)
}

#[test]
fn breadth_first_over_ultrapeers_with_roles_and_edges() {
    let mut answers = BTreeMap::new();
    answers.insert(
        a("10.0.0.1:6346"),
        reply(true, &["10.0.0.2:6346", "10.0.0.3:6346"], &["10.0.1.1:6346"]),
    );
    answers.insert(
        a("10.0.0.2:6346"),
        reply(true, &["10.0.0.1:6346"], &["10.0.1.1:6346", "10.0.1.2:6346"]),
    );
    // 10.0.0.3 never answers; it stays an ultrapeer by report.
    let (snap, order) = run(&["10.0.0.1:6346"], FrontierRules::default(), &answers);
    assert_eq!(order, vec![a("10.0.0.1:6346"), a("10.0.0.2:6346"), a("10.0.0.3:6346")]);
    assert_eq!(snap.ultrapeers().len(), 3);
    assert_eq!(snap.leaves(), [a("10.0.1.1:6346"), a("10.0.1.2:6346")].into());
    assert_eq!(snap.unreachable, [a("10.0.0.3:6346")].into());
    assert_eq!(snap.ultrapeer_edges().len(), 2);
    assert_eq!(snap.leaf_edges().len(), 3);
    assert_eq!(snap.edges.len(), 5);
    let leaf = &snap.nodes[&a("10.0.1.1:6346")];
    assert_eq!(leaf.status, NodeStatus::NotContacted);
    assert_eq!(leaf.reported_by, [a("10.0.0.1:6346"), a("10.0.0.2:6346")].into());
    assert_eq!(snap.nodes[&a("10.0.0.1:6346")].user_agent.as_deref(), Some("Test/1.0"));
    assert_eq!(snap.leaves_per_ultrapeer()[&a("10.0.0.2:6346")], 2);
    assert_eq!(snap.stop, StopReason::Exhausted);
}

#[test]
fn leaves_are_contacted_only_when_asked() {
    let mut answers = BTreeMap::new();
    answers.insert(a("10.0.0.1:1"), reply(true, &[], &["10.0.1.1:1"]));
    answers.insert(a("10.0.1.1:1"), reply(false, &["10.0.0.1:1", "10.0.0.9:1"], &[]));
    let rules = FrontierRules {
        contact_leaves: true,
        ..FrontierRules::default()
    };
    let (snap, order) = run(&["10.0.0.1:1"], rules, &answers);
    // The leaf names a second ultrapeer, which is contacted (and fails).
    assert_eq!(order, vec![a("10.0.0.1:1"), a("10.0.1.1:1"), a("10.0.0.9:1")]);
    assert_eq!(snap.role(a("10.0.1.1:1")), Role::Leaf);
    assert_eq!(snap.role(a("10.0.0.9:1")), Role::Ultrapeer);
    assert!(snap.edges.contains(&edge(a("10.0.1.1:1"), a("10.0.0.9:1"))));
}

#[test]
fn refusals_give_try_ultrapeers_but_no_edges() {
    let refusal = b"GNUTELLA/0.6 503 Busy\r\nX-Ultrapeer: True\r\nPeers: 10.0.0.7:1\r\nX-Try-Ultrapeers: 10.0.0.8:1, 10.0.0.1:1\r\n\r\n";
    let mut answers = BTreeMap::new();
    answers.insert(
        a("10.0.0.1:1"),
        CrawlerAnswer::decode(refusal, HandshakeLimits::default()).unwrap(),
    );
    answers.insert(a("10.0.0.8:1"), reply(true, &[], &[]));
    let (snap, order) = run(&["10.0.0.1:1"], FrontierRules::default(), &answers);
    assert_eq!(order, vec![a("10.0.0.1:1"), a("10.0.0.8:1")]);
    assert!(snap.edges.is_empty());
    let n = &snap.nodes[&a("10.0.0.1:1")];
    assert_eq!(
        (n.status.clone(), n.role),
        (NodeStatus::Refused { code: 503 }, Role::Ultrapeer)
    );
    assert_eq!(n.error.as_deref(), Some("503 Busy"));
    assert!(n.status.is_up());
    assert!(
        !snap.nodes.contains_key(&a("10.0.0.7:1")),
        "a refusal's Peers are not used"
    );

    let no_follow = FrontierRules {
        follow_try_ultrapeers: false,
        ..FrontierRules::default()
    };
    let (snap, order) = run(&["10.0.0.1:1"], no_follow, &answers);
    assert_eq!(order.len(), 1);
    assert_eq!(snap.nodes[&a("10.0.0.8:1")].status, NodeStatus::NotContacted);
}

#[test]
fn each_address_once_never_itself_never_unroutable() {
    let mut answers = BTreeMap::new();
    answers.insert(
        a("10.0.0.1:1"),
        reply(
            true,
            &["10.0.0.1:1", "10.0.0.2:1", "0.0.0.0:1", "10.0.0.3:0", "224.0.0.1:1"],
            &[],
        ),
    );
    answers.insert(a("10.0.0.2:1"), reply(true, &["10.0.0.1:1", "10.0.0.2:1"], &[]));
    let (snap, order) = run(&["10.0.0.1:1", "10.0.0.1:1"], FrontierRules::default(), &answers);
    assert_eq!(order, vec![a("10.0.0.1:1"), a("10.0.0.2:1")]);
    assert!(!snap.edges.contains(&(a("10.0.0.1:1"), a("10.0.0.1:1"))));
    // Unroutable entries are nodes (someone reported them) but never contacted.
    assert_eq!(snap.nodes[&a("0.0.0.0:1")].status, NodeStatus::NotContacted);
    assert_eq!(snap.contacted, 2);
}

#[test]
fn contact_limit_is_reported() {
    let mut answers = BTreeMap::new();
    answers.insert(a("10.0.0.1:1"), reply(true, &["10.0.0.2:1", "10.0.0.3:1"], &[]));
    let rules = FrontierRules {
        max_contacts: 2,
        ..FrontierRules::default()
    };
    let (snap, order) = run(&["10.0.0.1:1"], rules, &answers);
    assert_eq!(order.len(), 2);
    assert_eq!(snap.stop, StopReason::MaxContacts);
    assert_eq!(snap.nodes[&a("10.0.0.3:1")].status, NodeStatus::NotContacted);
}

#[test]
fn roles_from_reports_do_not_depend_on_their_order() {
    // 10.0.0.5 is a leaf of one ultrapeer and a peer of another: reported as an ultrapeer wins.
    for flip in [false, true] {
        let (first, second) = if flip {
            ("10.0.0.1:1", "10.0.0.2:1")
        } else {
            ("10.0.0.2:1", "10.0.0.1:1")
        };
        let mut s = SnapshotAssembly::new(0, [a(first), a(second)], FrontierRules::default());
        let one = reply(true, &["10.0.0.2:1"], &["10.0.0.5:1"]);
        let two = reply(true, &["10.0.0.1:1", "10.0.0.5:1"], &[]);
        while let Some(addr) = s.next_target() {
            let ans = if addr == a("10.0.0.1:1") {
                &one
            } else if addr == a("10.0.0.2:1") {
                &two
            } else {
                break;
            };
            s.answered(addr, 1, Duration::ZERO, ans);
        }
        let snap = s.finish(Duration::ZERO, StopReason::MaxDuration);
        assert_eq!(snap.role(a("10.0.0.5:1")), Role::Ultrapeer);
        assert_eq!(snap.stop, StopReason::MaxDuration);
    }
}

#[test]
fn answers_decode_roles() {
    let leaf = reply(false, &["10.0.0.1:1"], &[]);
    assert_eq!((leaf.role(), leaf.leaves.is_none()), (Role::Leaf, true));
    let old = CrawlerAnswer::decode(
        b"GNUTELLA/0.6 200 OK\r\nLeaves: 1.2.3.4:5\r\n\r\n",
        HandshakeLimits::default(),
    )
    .unwrap();
    assert_eq!(old.role(), Role::Ultrapeer);
    let old_leaf = CrawlerAnswer::decode(
        b"GNUTELLA/0.6 200 OK\r\nPeers: 1.2.3.4:5\r\n\r\n",
        HandshakeLimits::default(),
    )
    .unwrap();
    assert_eq!(old_leaf.role(), Role::Leaf);
    assert_eq!(
        CrawlerAnswer::decode(b"GNUTELLA CONNECT/0.6\r\n\r\n", HandshakeLimits::default()),
        Err(AnswerError::NotAResponse)
    );
    assert_eq!(
        CrawlerAnswer::decode(b"GNUTELLA/0.6 200 OK\r\n", HandshakeLimits::default()),
        Err(AnswerError::Incomplete)
    );
    assert!(matches!(
        CrawlerAnswer::decode(b"HTTP/1.1 200 OK\r\n\r\n", HandshakeLimits::default()),
        Err(AnswerError::Handshake(_))
    ));
    let (d, _) = decode_handshake(b"GNUTELLA/0.6 200 OK\nListen-IP: 1.2.3.4:9\n\n")
        .unwrap()
        .unwrap();
    let ans = CrawlerAnswer::from_handshake(&d).unwrap();
    assert_eq!((ans.deviations, ans.listen_addr), (3, Some(a("1.2.3.4:9"))));
}
