//! Tests for the Sybil signals: planted Sybils among seeded random honest nodes, where every
//! flag is known in advance, and the cluster statistics under the null.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;
use crate::analysis::size::estimate_size;
use crate::analysis::testutil::Rng;
use crate::krpc::bep42_prefix;

const HONEST: usize = 20_000;

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

fn honest(rng: &mut Rng, n: usize) -> Vec<NodeSighting> {
    let mut out = Vec::new();
    for _ in 0..n {
        let id = NodeId(rng.bytes20());
        let addr = SocketAddr::new(IpAddr::V4(rng.public_v4()), 1024 + rng.below(60_000) as u16);
        for _ in 0..=rng.below(3) {
            out.push(NodeSighting {
                id,
                addr,
                at: 3600.0 * rng.unit(),
            });
        }
    }
    out
}

/// An id sharing its first `bits` bits with `key` (and random after).
fn near(rng: &mut Rng, key: &[u8; 20], bits: u32) -> NodeId {
    let mut id = rng.bytes20();
    for (i, (b, k)) in id.iter_mut().zip(key).enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        if keep > 0 {
            let mask = 0xffu8 << (8 - keep);
            *b = (*b & !mask) | (k & mask);
        }
    }
    NodeId(id)
}

struct Planted {
    sightings: Vec<NodeSighting>,
    key: [u8; 20],
    one_ip: BTreeSet<NodeId>,
    one_subnet: BTreeSet<NodeId>,
    near_key: BTreeSet<NodeId>,
    rotating: BTreeSet<NodeId>,
}

/// 20 000 honest nodes plus four planted groups: 40 ids on one IP, 20 IPs of one /24 with one id
/// each, 12 ids sharing 48 bits with a key (on random IPs), and one IP:port answering with 6 ids
/// in turn.
fn planted(seed: u64) -> Planted {
    let mut rng = Rng::new(seed);
    let mut sightings = honest(&mut rng, HONEST);
    let key = rng.bytes20();
    let mut group = |rng: &mut Rng, n: usize, addr: &dyn Fn(&mut Rng, usize) -> SocketAddr, bits: u32| {
        let mut ids = BTreeSet::new();
        for i in 0..n {
            let id = if bits > 0 {
                near(rng, &key, bits)
            } else {
                NodeId(rng.bytes20())
            };
            let addr = addr(rng, i);
            sightings.push(NodeSighting {
                id,
                addr,
                at: 100.0 * i as f64,
            });
            ids.insert(id);
        }
        ids
    };
    let one_ip = group(&mut rng, 40, &|_, i| v4(203, 0, 113, 7, 6881 + i as u16), 0);
    let one_subnet = group(&mut rng, 20, &|_, i| v4(198, 51, 100, 1 + i as u8, 6881), 0);
    let near_key = group(
        &mut rng,
        12,
        &|rng, _| SocketAddr::new(IpAddr::V4(rng.public_v4()), 6881),
        48,
    );
    let rotating = group(&mut rng, 6, &|_, _| v4(45, 33, 32, 156, 6881), 0);
    Planted {
        sightings,
        key,
        one_ip,
        one_subnet,
        near_key,
        rotating,
    }
}

fn reasons_of<'a>(report: &'a SybilReport, id: &NodeId) -> &'a [SybilReason] {
    report.flagged.get(id).map(Vec::as_slice).unwrap_or_default()
}

/// Every planted id is flagged for its own reason and no honest id is: precision and recall 1.
/// Honest nodes (random ids on random IPs) stay below every threshold: a /24 holds more than 8
/// of them with probability ~1e-30, and a chance cluster is what the Bonferroni-corrected
/// tests bound by α = 1e-3.
#[test]
fn planted_sybils_are_flagged_exactly() {
    let p = planted(42);
    let n = (HONEST + 78) as f64;
    let report = sybil_report(&p.sightings, &[p.key], n, &SybilConfig::default()).unwrap();

    let truth: BTreeSet<NodeId> = p
        .one_ip
        .iter()
        .chain(&p.one_subnet)
        .chain(&p.near_key)
        .chain(&p.rotating)
        .copied()
        .collect();
    assert_eq!(report.ids(), truth);
    let score = report.score(&truth);
    assert_eq!((score.precision(), score.recall()), (Some(1.0), Some(1.0)));

    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    for id in &p.one_ip {
        assert!(reasons_of(&report, id).contains(&SybilReason::IdsPerIp { ip, ids: 40 }));
    }
    let subnet = Subnet {
        network: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)),
        prefix_len: 24,
    };
    for id in &p.one_subnet {
        assert_eq!(reasons_of(&report, id), [SybilReason::IdsPerSubnet { subnet, ids: 20 }]);
    }
    for id in &p.near_key {
        let reasons = reasons_of(&report, id);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(matches!(reasons[0], SybilReason::NearKey(s) if s.bits == 48 && s.count == 12 && s.key == p.key));
        assert!(matches!(reasons[0], SybilReason::NearKey(s) if s.expected == n / 2f64.powi(48)));
        // The scan looks from ⌊log₂ N⌋ = 14 to 14 + 32 = 46 bits deep.
        assert!(matches!(reasons[1], SybilReason::PrefixCluster(s) if s.bits == 46 && s.count == 12));
    }
    let addr = v4(45, 33, 32, 156, 6881);
    for id in &p.rotating {
        assert!(reasons_of(&report, id).contains(&SybilReason::IdChanges { addr, changes: 5 }));
    }
}

/// The same crawl without the planted groups flags nothing, also with a size estimated from the
/// crawl itself.
#[test]
fn honest_crawl_flags_nothing() {
    let mut rng = Rng::new(43);
    let sightings = honest(&mut rng, HONEST);
    let ids: Vec<NodeId> = sightings.iter().map(|s| s.id).collect();
    let keys: Vec<[u8; 20]> = (0..100).map(|_| rng.bytes20()).collect();
    let n = estimate_size(&ids, &keys, 8).unwrap().density_estimate;
    let report = sybil_report(&sightings, &keys, n, &SybilConfig::default()).unwrap();
    assert!(report.flagged.is_empty(), "{:?}", report.flagged.values().next());
}

/// Under the null (uniform ids, random keys), a Bonferroni-corrected p-value is below α for at
/// most a share α of keys (it is conservative, so far fewer): at α = 0.05 over 300 keys, at
/// most 15 (this seed gives 0; without the correction over depths, 39).
#[test]
fn densest_near_is_calibrated_under_the_null() {
    let mut rng = Rng::new(44);
    let ids: Vec<NodeId> = (0..HONEST).map(|_| NodeId(rng.bytes20())).collect();
    let mut below = 0;
    for _ in 0..300 {
        let key = rng.bytes20();
        // None: no id reaches the first depth tested, so nothing to test.
        if let Some(c) = densest_near(&ids, &key, HONEST as f64).unwrap() {
            below += usize::from(c.stats.p_value() < 0.05);
        }
    }
    assert!(below <= 15, "{below} of 300 keys below 0.05");
}

/// Eight ids within 30 bits of a key stand out; the members are exactly them.
#[test]
fn densest_near_finds_a_planted_cluster() {
    let mut rng = Rng::new(45);
    let key = rng.bytes20();
    let mut ids: Vec<NodeId> = (0..HONEST).map(|_| NodeId(rng.bytes20())).collect();
    let planted: BTreeSet<NodeId> = (0..8).map(|_| near(&mut rng, &key, 30)).collect();
    ids.extend(&planted);
    let c = densest_near(&ids, &key, HONEST as f64).unwrap().unwrap();
    assert!(c.stats.p_value() < 1e-20, "{:?}", c.stats);
    assert_eq!(c.stats.bits, 30);
    assert_eq!(c.members.iter().copied().collect::<BTreeSet<_>>(), planted);
}

/// A tight cluster (10 ids sharing 40 bits) plus 3 ids sharing only its first 16 bits: the scan
/// reports the tight cluster alone, though the 16-bit prefix is significant too.
#[test]
fn scan_reports_the_tightest_nested_cluster() {
    let mut rng = Rng::new(46);
    let mut ids: Vec<NodeId> = (0..HONEST).map(|_| NodeId(rng.bytes20())).collect();
    let prefix = rng.bytes20();
    let tight: BTreeSet<NodeId> = (0..10).map(|_| near(&mut rng, &prefix, 40)).collect();
    ids.extend(&tight);
    for _ in 0..3 {
        // Shares 16 bits with the prefix and differs at bit 17.
        let mut loose = near(&mut rng, &prefix, 16);
        loose.0[2] = (loose.0[2] & 0x7f) | (!prefix[2] & 0x80);
        ids.push(loose);
    }
    let clusters = scan_clusters(&ids, HONEST as f64, 32, 1e-3).unwrap();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0].members.iter().copied().collect::<BTreeSet<_>>(), tight);
    assert_eq!(clusters[0].stats.bits, 40);
    assert_eq!(&clusters[0].stats.key[..5], &prefix[..5]);
    assert_eq!(clusters[0].stats.key[5..], [0; 15]);
}

#[test]
fn scan_finds_nothing_in_uniform_ids() {
    let mut rng = Rng::new(47);
    let ids: Vec<NodeId> = (0..HONEST).map(|_| NodeId(rng.bytes20())).collect();
    assert!(scan_clusters(&ids, HONEST as f64, 32, 0.01).unwrap().is_empty());
}

#[test]
fn refuses_bad_parameters() {
    let cfg = SybilConfig::default();
    for n in [f64::NAN, 0.5, f64::INFINITY, -3.0] {
        assert!(matches!(
            sybil_report(&[], &[], n, &cfg),
            Err(SybilError::NetworkSize(_))
        ));
        assert!(matches!(
            densest_near(&[], &[0; 20], n),
            Err(SybilError::NetworkSize(_))
        ));
    }
    for alpha in [0.0, 1.0, f64::NAN] {
        let cfg = SybilConfig {
            cluster_alpha: alpha,
            ..SybilConfig::default()
        };
        assert!(matches!(sybil_report(&[], &[], 10.0, &cfg), Err(SybilError::Alpha(_))));
        assert!(matches!(scan_clusters(&[], 10.0, 32, alpha), Err(SybilError::Alpha(_))));
    }
    assert_eq!(sybil_report(&[], &[[0; 20]], 1.0, &cfg), Ok(SybilReport::default()));
    assert_eq!(densest_near(&[], &[0; 20], 1e6), Ok(None));
}

/// IPv4-mapped IPv6 addresses count with their IPv4 address; IPv6 addresses group by /64. (The
/// network size is large so that the made-up ids, which share leading bits, are no cluster.)
#[test]
fn addresses_are_canonical_and_v6_groups_by_64() {
    let mapped = |d: u8| SocketAddr::new(IpAddr::V6(Ipv4Addr::new(9, 9, 9, d).to_ipv6_mapped()), 1);
    let sightings = [
        NodeSighting {
            id: NodeId([1; 20]),
            addr: v4(9, 9, 9, 9, 1),
            at: 0.0,
        },
        NodeSighting {
            id: NodeId([2; 20]),
            addr: mapped(9),
            at: 1.0,
        },
        NodeSighting {
            id: NodeId([3; 20]),
            addr: mapped(9),
            at: 2.0,
        },
    ];
    let report = sybil_report(&sightings, &[], 1e6, &SybilConfig::default()).unwrap();
    let ip = IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9));
    assert_eq!(report.ids().len(), 3);
    assert!(reasons_of(&report, &NodeId([1; 20])).contains(&SybilReason::IdsPerIp { ip, ids: 3 }));
    // Same IP:port after canonicalising: the id changed twice (1 → 2 → 3).
    let addr = v4(9, 9, 9, 9, 1);
    assert!(reasons_of(&report, &NodeId([3; 20])).contains(&SybilReason::IdChanges { addr, changes: 2 }));

    let net: Ipv6Addr = "2001:db8:1:2::".parse().unwrap();
    let in_64 = |host: u16, id: u8| NodeSighting {
        id: NodeId([id; 20]),
        addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(u128::from(net) | u128::from(host))), 1),
        at: 0.0,
    };
    let sightings: Vec<NodeSighting> = (0..9).map(|i| in_64(i + 1, i as u8)).collect();
    let report = sybil_report(&sightings, &[], 1e6, &SybilConfig::default()).unwrap();
    let subnet = Subnet {
        network: IpAddr::V6(net),
        prefix_len: 64,
    };
    assert_eq!(subnet.to_string(), "2001:db8:1:2::/64");
    assert_eq!(report.ids().len(), 9);
    assert_eq!(
        reasons_of(&report, &NodeId([0; 20])),
        [SybilReason::IdsPerSubnet { subnet, ids: 9 }]
    );
}

/// With the BEP 42 check on, an id derived from its address passes, a random one is flagged, and
/// an exempt (private) address is never flagged.
#[test]
fn bep42_mismatch_is_opt_in() {
    let ip = Ipv4Addr::new(124, 31, 75, 21);
    let prefix = bep42_prefix(IpAddr::V4(ip), 1);
    let mut good = [0u8; 20];
    good[..3].copy_from_slice(&prefix);
    good[19] = 1;
    let sightings = [
        NodeSighting {
            id: NodeId(good),
            addr: SocketAddr::new(IpAddr::V4(ip), 1),
            at: 0.0,
        },
        NodeSighting {
            id: NodeId([0xab; 20]),
            addr: v4(124, 31, 75, 22, 1),
            at: 0.0,
        },
        NodeSighting {
            id: NodeId([0xcd; 20]),
            addr: v4(10, 0, 0, 1, 1),
            at: 0.0,
        },
    ];
    let off = sybil_report(&sightings, &[], 1e6, &SybilConfig::default()).unwrap();
    assert!(off.flagged.is_empty());
    let cfg = SybilConfig {
        flag_bep42_mismatch: true,
        ..SybilConfig::default()
    };
    let on = sybil_report(&sightings, &[], 1e6, &cfg).unwrap();
    let addr = v4(124, 31, 75, 22, 1);
    assert_eq!(on.ids(), [NodeId([0xab; 20])].into());
    assert_eq!(
        reasons_of(&on, &NodeId([0xab; 20])),
        [SybilReason::Bep42Mismatch { addr }]
    );
}

#[test]
fn common_prefix_lengths() {
    assert_eq!(common_prefix_len(&[0; 20], &[0; 20]), 160);
    let mut b = [0u8; 20];
    b[0] = 0x80;
    assert_eq!(common_prefix_len(&[0; 20], &b), 0);
    b[0] = 0;
    b[19] = 1;
    assert_eq!(common_prefix_len(&[0; 20], &b), 159);
    b[19] = 0;
    b[2] = 0x10;
    assert_eq!(common_prefix_len(&[0; 20], &b), 19);
}
