//! Poisoning signals per peer source: which trackers, DHT nodes or PEX neighbours hand out peers
//! that are not real members of the swarm.
//!
//! Three signals, each computed over (info-hash, peer) pairs, peers compared as IP:port with
//! IPv4-mapped IPv6 addresses folded to IPv4:
//!
//! - **Unreachable peers**: the share of a source's probed peers that never completed a
//!   handshake. Honest swarms have many peers behind NATs that refuse inbound connections, so
//!   only a share near 1 is a signal; fake peers (index poisoning, or the addresses of
//!   uninvolved hosts) never answer.
//! - **Bad pieces**: peers that served a piece failing its SHA-1 (content poisoning), and the
//!   share of a source's checked peers that did.
//! - **Disjoint peer sets**: a source whose peers for an info-hash are none of the peers any
//!   other source gave for it. With only two sources for an info-hash both look disjoint, and
//!   for a swarm far larger than the samples, honest sources can be disjoint by chance.
//!
//! For the attacks these signals look for, measured in the wild, see Liang, Kumar, Xi and Ross,
//! "Pollution in P2P file sharing systems" (INFOCOM 2005), on content poisoning, and Liang,
//! Naoumov and Ross, "The index poisoning attack in P2P file sharing systems" (INFOCOM 2006).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use thiserror::Error;

use super::Score;
use crate::infohash::InfoHash;

/// A source said `peer` is in the swarm of `info_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Who said so: `"tracker:http://…"`, `"dht:1.2.3.4:6881"`, `"pex:…"` (opaque here).
    pub source: String,
    /// The swarm.
    pub info_hash: InfoHash,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// A handshake attempt with `peer` for `info_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// The peer.
    pub peer: SocketAddr,
    /// The swarm the handshake named.
    pub info_hash: InfoHash,
    /// The peer completed the BitTorrent handshake for that info-hash.
    pub handshake_ok: bool,
}

/// A piece downloaded whole from `peer` and checked against the metainfo's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceCheck {
    /// The peer that served it.
    pub peer: SocketAddr,
    /// The swarm.
    pub info_hash: InfoHash,
    /// The piece index.
    pub piece: u32,
    /// Its SHA-1 matched.
    pub ok: bool,
}

/// Thresholds for [`poisoning_report`]; a source is flagged when a share *exceeds* its maximum.
#[derive(Debug, Clone, PartialEq)]
pub struct PoisoningConfig {
    /// Default 0.9: honest swarms often have half their peers unreachable behind NATs.
    pub max_unreachable_fraction: f64,
    /// Probed peers a source needs before its unreachable share counts. Default 20.
    pub min_probed: usize,
    /// Default 0.2: honest peers essentially never serve a piece that fails its hash, so a
    /// fifth of a source's checked peers doing so is far beyond bad luck.
    pub max_bad_fraction: f64,
    /// Piece-checked peers a source needs before its bad share counts. Default 5.
    pub min_checked: usize,
    /// Peers a source, and the other sources together, need for an info-hash before a disjoint
    /// peer set counts. Default 5.
    pub min_disjoint_peers: usize,
}

impl Default for PoisoningConfig {
    fn default() -> Self {
        PoisoningConfig {
            max_unreachable_fraction: 0.9,
            min_probed: 20,
            max_bad_fraction: 0.2,
            min_checked: 5,
            min_disjoint_peers: 5,
        }
    }
}

/// Why [`poisoning_report`] refused its configuration.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PoisoningError {
    /// A maximum share that is NaN or outside [0, 1].
    #[error("{name} must be in [0, 1], got {value}")]
    Fraction {
        /// The configuration field.
        name: &'static str,
        /// Its value.
        value: f64,
    },
}

/// Reachability of a set of (info-hash, peer) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reachability {
    /// Distinct pairs.
    pub peers: usize,
    /// Pairs with at least one handshake attempt.
    pub probed: usize,
    /// Probed pairs that never completed a handshake.
    pub unreachable: usize,
}

impl Reachability {
    /// unreachable / probed; `None` when nothing was probed.
    pub fn unreachable_fraction(&self) -> Option<f64> {
        (self.probed > 0).then(|| self.unreachable as f64 / self.probed as f64)
    }
}

/// What one source's peers turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceStats {
    /// Reachability of its peers.
    pub reach: Reachability,
    /// Its peers with at least one piece check.
    pub checked: usize,
    /// Its checked peers that served at least one bad piece.
    pub bad: usize,
    /// Info-hashes for which its peer set is disjoint from every other source's.
    pub disjoint: Vec<InfoHash>,
}

impl SourceStats {
    /// bad / checked; `None` when nothing was checked.
    pub fn bad_fraction(&self) -> Option<f64> {
        (self.checked > 0).then(|| self.bad as f64 / self.checked as f64)
    }
}

/// A peer that served at least one piece failing its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BadPeer {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The peer.
    pub peer: SocketAddr,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that passed.
    pub passed: usize,
}

/// Why a source was flagged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoisoningReason {
    /// Too many of its probed peers never answered a handshake.
    Unreachable {
        /// Its probed peers.
        probed: usize,
        /// Those that never answered.
        unreachable: usize,
    },
    /// Too many of its checked peers served bad pieces.
    BadPieces {
        /// Its checked peers.
        checked: usize,
        /// Those that served a bad piece.
        bad: usize,
    },
    /// Its peer sets for these info-hashes share no peer with any other source's.
    Disjoint {
        /// The info-hashes.
        info_hashes: Vec<InfoHash>,
    },
}

/// Everything [`poisoning_report`] computed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoisoningReport {
    /// Per source.
    pub sources: BTreeMap<String, SourceStats>,
    /// Per info-hash, over the peers of all sources.
    pub info_hashes: BTreeMap<InfoHash, Reachability>,
    /// Peers that served bad pieces, sorted by info-hash then peer.
    pub bad_peers: Vec<BadPeer>,
    /// Flagged sources and their reasons.
    pub flagged: BTreeMap<String, Vec<PoisoningReason>>,
}

impl PoisoningReport {
    /// The flagged sources.
    pub fn flagged_sources(&self) -> BTreeSet<String> {
        self.flagged.keys().cloned().collect()
    }

    /// Precision and recall against planted poisoning sources.
    pub fn score(&self, truth: &BTreeSet<String>) -> Score {
        Score::of(&self.flagged_sources(), truth)
    }
}

type Pair = (InfoHash, SocketAddr);

fn pair(info_hash: InfoHash, peer: SocketAddr) -> Pair {
    (info_hash, SocketAddr::new(peer.ip().to_canonical(), peer.port()))
}

/// Computes the signals and flags sources by `config`.
pub fn poisoning_report(
    reports: &[PeerReport],
    reach: &[Reach],
    pieces: &[PieceCheck],
    config: &PoisoningConfig,
) -> Result<PoisoningReport, PoisoningError> {
    for (name, value) in [
        ("max_unreachable_fraction", config.max_unreachable_fraction),
        ("max_bad_fraction", config.max_bad_fraction),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(PoisoningError::Fraction { name, value });
        }
    }

    // Per pair: reachable at least once?
    let mut answered: BTreeMap<Pair, bool> = BTreeMap::new();
    for r in reach {
        *answered.entry(pair(r.info_hash, r.peer)).or_default() |= r.handshake_ok;
    }
    // Per pair: (failed, passed) piece checks.
    let mut checks: BTreeMap<Pair, (usize, usize)> = BTreeMap::new();
    for p in pieces {
        let entry = checks.entry(pair(p.info_hash, p.peer)).or_default();
        if p.ok {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
    // Per source: its pairs. Per pair: how many sources gave it.
    let mut by_source: BTreeMap<&str, BTreeSet<Pair>> = BTreeMap::new();
    for r in reports {
        by_source
            .entry(&r.source)
            .or_default()
            .insert(pair(r.info_hash, r.peer));
    }
    let mut givers: BTreeMap<Pair, usize> = BTreeMap::new();
    for p in by_source.values().flatten() {
        *givers.entry(*p).or_default() += 1;
    }

    let mut report = PoisoningReport::default();
    for p in givers.keys() {
        report.info_hashes.entry(p.0).or_default().add(answered.get(p));
    }
    for (&source, pairs) in &by_source {
        let mut stats = SourceStats::default();
        // Per info-hash: (this source's peers, all of them given by this source alone).
        let mut per_hash: BTreeMap<InfoHash, (usize, bool)> = BTreeMap::new();
        for p in pairs {
            stats.reach.add(answered.get(p));
            if let Some(&(failed, _)) = checks.get(p) {
                stats.checked += 1;
                stats.bad += usize::from(failed > 0);
            }
            let own = per_hash.entry(p.0).or_insert((0, true));
            own.0 += 1;
            own.1 &= givers.get(p) == Some(&1);
        }
        for (info_hash, (own, alone)) in per_hash {
            let all = report.info_hashes.get(&info_hash).map_or(0, |r| r.peers);
            if alone && own >= config.min_disjoint_peers && all.saturating_sub(own) >= config.min_disjoint_peers {
                stats.disjoint.push(info_hash);
            }
        }
        let reasons = reasons(&stats, config);
        if !reasons.is_empty() {
            report.flagged.insert(source.to_owned(), reasons);
        }
        report.sources.insert(source.to_owned(), stats);
    }
    report.bad_peers = checks
        .into_iter()
        .filter(|(_, (failed, _))| *failed > 0)
        .map(|((info_hash, peer), (failed, passed))| BadPeer {
            info_hash,
            peer,
            failed,
            passed,
        })
        .collect();
    Ok(report)
}

impl Reachability {
    fn add(&mut self, answered: Option<&bool>) {
        self.peers += 1;
        if let Some(&ok) = answered {
            self.probed += 1;
            self.unreachable += usize::from(!ok);
        }
    }
}

fn reasons(stats: &SourceStats, config: &PoisoningConfig) -> Vec<PoisoningReason> {
    let mut out = Vec::new();
    let reach = stats.reach;
    if reach.probed >= config.min_probed
        && reach
            .unreachable_fraction()
            .is_some_and(|f| f > config.max_unreachable_fraction)
    {
        out.push(PoisoningReason::Unreachable {
            probed: reach.probed,
            unreachable: reach.unreachable,
        });
    }
    if stats.checked >= config.min_checked && stats.bad_fraction().is_some_and(|f| f > config.max_bad_fraction) {
        out.push(PoisoningReason::BadPieces {
            checked: stats.checked,
            bad: stats.bad,
        });
    }
    if !stats.disjoint.is_empty() {
        out.push(PoisoningReason::Disjoint {
            info_hashes: stats.disjoint.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::analysis::testutil::Rng;

    const GOOD_TRACKER: &str = "tracker:http://good.example/announce";
    const GOOD_DHT: &str = "dht:192.0.2.1:6881";
    const GOOD_PEX: &str = "pex:192.0.2.2:51413";
    const FAKE_TRACKER: &str = "tracker:http://fake.example/announce";
    const BAD_DHT: &str = "dht:192.0.2.66:6881";

    fn random_peer(rng: &mut Rng) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(rng.public_v4()), 1024 + rng.below(60_000) as u16)
    }

    struct World {
        hashes: Vec<InfoHash>,
        reports: Vec<PeerReport>,
        reach: Vec<Reach>,
        pieces: Vec<PieceCheck>,
    }

    impl World {
        fn report(&mut self, source: &str, info_hash: InfoHash, peer: SocketAddr) {
            self.reports.push(PeerReport {
                source: source.to_owned(),
                info_hash,
                peer,
            });
        }
    }

    /// Three swarms of 40 honest peers, of which peers i with i mod 10 ≥ 7 are unreachable (30%,
    /// behind NATs). Three honest sources give overlapping slices (peers 0..25, 15..40, 10..30);
    /// a fake tracker gives 30 made-up, unreachable peers per swarm; a bad DHT node gives 10
    /// reachable peers serving corrupt pieces plus honest peers 0 and 1. Some reachable peers
    /// fail a first handshake and succeed on the second.
    fn world(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let mut w = World {
            hashes: Vec::new(),
            reports: Vec::new(),
            reach: Vec::new(),
            pieces: Vec::new(),
        };
        for _ in 0..3 {
            let info_hash = InfoHash(rng.bytes20());
            w.hashes.push(info_hash);
            let honest: Vec<SocketAddr> = (0..40).map(|_| random_peer(&mut rng)).collect();
            for (source, range) in [(GOOD_TRACKER, 0..25), (GOOD_DHT, 15..40), (GOOD_PEX, 10..30)] {
                for &peer in &honest[range] {
                    w.report(source, info_hash, peer);
                }
            }
            for (i, &peer) in honest.iter().enumerate() {
                let reachable = i % 10 < 7;
                if i % 5 == 0 {
                    w.reach.push(Reach {
                        peer,
                        info_hash,
                        handshake_ok: false,
                    });
                }
                w.reach.push(Reach {
                    peer,
                    info_hash,
                    handshake_ok: reachable,
                });
                if reachable {
                    for piece in 0..2 {
                        w.pieces.push(PieceCheck {
                            peer,
                            info_hash,
                            piece,
                            ok: true,
                        });
                    }
                }
            }
            for _ in 0..30 {
                let peer = random_peer(&mut rng);
                w.report(FAKE_TRACKER, info_hash, peer);
                w.reach.push(Reach {
                    peer,
                    info_hash,
                    handshake_ok: false,
                });
            }
            for &peer in &honest[..2] {
                w.report(BAD_DHT, info_hash, peer);
            }
            for _ in 0..10 {
                let peer = random_peer(&mut rng);
                w.report(BAD_DHT, info_hash, peer);
                w.reach.push(Reach {
                    peer,
                    info_hash,
                    handshake_ok: true,
                });
                for (piece, ok) in [(0, false), (1, false), (2, true)] {
                    w.pieces.push(PieceCheck {
                        peer,
                        info_hash,
                        piece,
                        ok,
                    });
                }
            }
        }
        w
    }

    #[test]
    fn planted_poisoners_are_flagged_exactly() {
        let w = world(1);
        let report = poisoning_report(&w.reports, &w.reach, &w.pieces, &PoisoningConfig::default()).unwrap();

        let mut hashes = w.hashes.clone();
        hashes.sort();
        let expected: BTreeMap<String, Vec<PoisoningReason>> = [
            (
                FAKE_TRACKER.to_owned(),
                vec![
                    PoisoningReason::Unreachable {
                        probed: 90,
                        unreachable: 90,
                    },
                    PoisoningReason::Disjoint {
                        info_hashes: hashes.clone(),
                    },
                ],
            ),
            (
                BAD_DHT.to_owned(),
                vec![PoisoningReason::BadPieces { checked: 36, bad: 30 }],
            ),
        ]
        .into();
        assert_eq!(report.flagged, expected);
        let truth: BTreeSet<String> = [FAKE_TRACKER.to_owned(), BAD_DHT.to_owned()].into();
        let score = report.score(&truth);
        assert_eq!((score.precision(), score.recall()), (Some(1.0), Some(1.0)));

        // Honest sources: 30% of peers unreachable, no bad pieces, never disjoint.
        let tracker = &report.sources[GOOD_TRACKER];
        assert_eq!(
            tracker.reach,
            Reachability {
                peers: 75,
                probed: 75,
                unreachable: 18
            }
        );
        assert_eq!((tracker.checked, tracker.bad, tracker.disjoint.len()), (57, 0, 0));
        assert_eq!(report.sources[GOOD_DHT].reach.unreachable_fraction(), Some(27.0 / 75.0));
        assert_eq!(report.sources[GOOD_PEX].reach.unreachable, 18);
        assert_eq!(report.sources[FAKE_TRACKER].bad_fraction(), None);

        // Per swarm: 40 honest + 30 fake + 10 bad peers, of which 12 + 30 unreachable.
        for h in &w.hashes {
            assert_eq!(
                report.info_hashes[h],
                Reachability {
                    peers: 80,
                    probed: 80,
                    unreachable: 42
                }
            );
        }
        assert_eq!(report.bad_peers.len(), 30);
        assert!(report.bad_peers.iter().all(|b| (b.failed, b.passed) == (2, 1)));
        assert!(report.bad_peers.windows(2).all(|p| p[0] < p[1]));
    }

    /// The minimum counts hold flags back: a source of 4 peers, all unreachable and all serving
    /// bad pieces, and a source of 15 unreachable peers, are flagged for that only once the
    /// minimums drop to 4. Also the caveat of disjointness: with every other source fake, the
    /// honest tracker is disjoint too.
    #[test]
    fn minimum_counts_hold_back_flags() {
        let mut rng = Rng::new(2);
        let info_hash = InfoHash(rng.bytes20());
        let mut w = World {
            hashes: vec![info_hash],
            reports: Vec::new(),
            reach: Vec::new(),
            pieces: Vec::new(),
        };
        for _ in 0..10 {
            let peer = random_peer(&mut rng);
            w.report(GOOD_TRACKER, info_hash, peer);
        }
        for i in 0..19 {
            let peer = random_peer(&mut rng);
            w.report(if i < 4 { BAD_DHT } else { FAKE_TRACKER }, info_hash, peer);
            w.reach.push(Reach {
                peer,
                info_hash,
                handshake_ok: false,
            });
            w.pieces.push(PieceCheck {
                peer,
                info_hash,
                piece: 0,
                ok: i >= 4,
            });
        }
        let disjoint = || PoisoningReason::Disjoint {
            info_hashes: vec![info_hash],
        };

        let report = poisoning_report(&w.reports, &w.reach, &w.pieces, &PoisoningConfig::default()).unwrap();
        let expected: BTreeMap<String, Vec<PoisoningReason>> = [
            (GOOD_TRACKER.to_owned(), vec![disjoint()]),
            (FAKE_TRACKER.to_owned(), vec![disjoint()]),
        ]
        .into();
        assert_eq!(report.flagged, expected);

        let low = PoisoningConfig {
            min_probed: 4,
            min_checked: 4,
            min_disjoint_peers: 4,
            ..PoisoningConfig::default()
        };
        let report = poisoning_report(&w.reports, &w.reach, &w.pieces, &low).unwrap();
        let expected: BTreeMap<String, Vec<PoisoningReason>> = [
            (GOOD_TRACKER.to_owned(), vec![disjoint()]),
            (
                FAKE_TRACKER.to_owned(),
                vec![
                    PoisoningReason::Unreachable {
                        probed: 15,
                        unreachable: 15,
                    },
                    disjoint(),
                ],
            ),
            (
                BAD_DHT.to_owned(),
                vec![
                    PoisoningReason::Unreachable {
                        probed: 4,
                        unreachable: 4,
                    },
                    PoisoningReason::BadPieces { checked: 4, bad: 4 },
                    disjoint(),
                ],
            ),
        ]
        .into();
        assert_eq!(report.flagged, expected);
    }

    /// A peer reported as an IPv4-mapped IPv6 address is the same peer as its IPv4 form.
    #[test]
    fn mapped_addresses_match_their_ipv4_form() {
        let info_hash = InfoHash([7; 20]);
        let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 6881);
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(203, 0, 113, 9).to_ipv6_mapped()), 6881);
        let reports = [
            PeerReport {
                source: GOOD_TRACKER.to_owned(),
                info_hash,
                peer: mapped,
            },
            PeerReport {
                source: GOOD_DHT.to_owned(),
                info_hash,
                peer: v4,
            },
        ];
        let reach = [Reach {
            peer: v4,
            info_hash,
            handshake_ok: true,
        }];
        let report = poisoning_report(&reports, &reach, &[], &PoisoningConfig::default()).unwrap();
        assert_eq!(
            report.info_hashes[&info_hash],
            Reachability {
                peers: 1,
                probed: 1,
                unreachable: 0
            }
        );
        assert_eq!(report.sources[GOOD_TRACKER].reach.probed, 1);
    }

    #[test]
    fn empty_input_and_bad_config() {
        let report = poisoning_report(&[], &[], &[], &PoisoningConfig::default()).unwrap();
        assert_eq!(report, PoisoningReport::default());
        assert_eq!(Reachability::default().unreachable_fraction(), None);
        for value in [f64::NAN, -0.1, 1.5] {
            let cfg = PoisoningConfig {
                max_bad_fraction: value,
                ..PoisoningConfig::default()
            };
            assert!(matches!(
                poisoning_report(&[], &[], &[], &cfg),
                Err(PoisoningError::Fraction {
                    name: "max_bad_fraction",
                    ..
                })
            ));
        }
        let cfg = PoisoningConfig {
            max_unreachable_fraction: 2.0,
            ..PoisoningConfig::default()
        };
        assert!(poisoning_report(&[], &[], &[], &cfg).is_err());
    }
}
