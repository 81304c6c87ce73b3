//! The swarm monitor against loopback trackers and peers.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use onionlab_crawler::magnet::{Magnet, PeerAddr as MagnetPeer};
use onionlab_crawler::observe::{Outcome, ProbeKind, SourceKind};
use onionlab_crawler::probe::peer::PeerConfig;
use onionlab_crawler::swarm::{RoundSummary, SwarmConfig, SwarmMonitor, SwarmTarget};
use onionlab_crawler::tracker::http::{AnnounceResponse, Peer, PeerAddr};

use crate::support::*;

fn config(rounds: u32, interval_ms: u64) -> SwarmConfig {
    SwarmConfig {
        rounds: Some(rounds),
        interval: Duration::from_millis(interval_ms),
        linger: Duration::from_millis(150),
        sample_pieces: 2,
        peer: PeerConfig {
            settle: Duration::from_millis(200),
            ..PeerConfig::default()
        },
        ..SwarmConfig::default()
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// Two rounds over a swarm found through an HTTP and a UDP tracker: an honest seeder, a seeder
/// serving corrupt pieces and a peer that never answers. Round 1 reaches the two seeders, checks
/// two pieces of each (good from one, bad from the other) and times out on the third. Between
/// the rounds the corrupt seeder leaves and a new seeder arrives through the peer feed (where the
/// DHT plugs in): round 2 reports one departure and one arrival, and checks only the newcomer.
/// The rows hold tracker sightings, visits and a peer state per reached peer per round.
#[tokio::test]
async fn rounds_track_arrivals_departures_and_bad_pieces() {
    bounded(async {
        let t = torrent(8 * 16384, 16384, 20);
        let good = spawn_peer(ip(3, 0, 1), PeerSpec::honest(&t)).await;
        let bad = spawn_peer(ip(3, 0, 2), PeerSpec::honest(&t).behaving(Behaviour::CorruptAll)).await;
        let silent = spawn_peer(ip(3, 0, 3), PeerSpec::honest(&t).behaving(Behaviour::Silent)).await;
        let late = spawn_peer(ip(3, 0, 4), PeerSpec::honest(&t)).await;
        let http = spawn_http_tracker(
            ip(3, 1, 1),
            HttpTrackerSpec {
                status: 200,
                announce: AnnounceResponse {
                    interval: 1800,
                    complete: Some(2),
                    incomplete: Some(1),
                    peers: [good.addr, bad.addr]
                        .map(|a| Peer {
                            addr: PeerAddr::Ip(a),
                            peer_id: None,
                        })
                        .to_vec(),
                    ..AnnounceResponse::default()
                }
                .encode(),
                scrape: Vec::new(),
                chunked: false,
            },
        )
        .await;
        let udp = spawn_udp_tracker(
            ip(3, 1, 2),
            UdpTrackerSpec {
                seeders: 2,
                leechers: 1,
                peers: vec![v4(bad.addr), v4(silent.addr)],
                ..UdpTrackerSpec::default()
            },
        )
        .await;
        let mut target = SwarmTarget::from_metainfo(&t.metainfo);
        target.trackers = vec![http.url.clone(), udp.url.clone()];
        let (engine, mut rx) = engine(1000, 1);
        let monitor = SwarmMonitor::new(engine, config(2, 1500), target);
        let feed = monitor.feed();
        let mut rounds: Vec<RoundSummary> = Vec::new();
        let report = monitor
            .run(|r| {
                rounds.push(r.clone());
                if r.round == 1 {
                    bad.shut_down();
                    let (feed, late) = (feed.clone(), late.addr);
                    tokio::spawn(async move { feed.send(late).await });
                }
            })
            .await;
        assert_eq!(report.rounds, 2);
        assert_eq!(report.metadata, None, "the torrent was given");

        let r1 = &rounds[0];
        assert_eq!(r1.trackers.len(), 2);
        assert!(r1.trackers.iter().all(|t| t.result.is_ok()), "{:?}", r1.trackers);
        assert_eq!(r1.known, 3);
        assert_eq!(r1.reached(), 2);
        assert_eq!(r1.arrivals, [good.addr, bad.addr]);
        let by_addr = |r: &RoundSummary, a: SocketAddr| r.peers.iter().find(|p| p.addr == a).cloned().unwrap();
        let g = by_addr(r1, good.addr);
        assert_eq!((g.pieces_ok, g.pieces_bad), (2, 0));
        let seen = g.answer.unwrap();
        assert_eq!(seen.client.as_deref(), Some(&b"loopback-seeder/1.0"[..]));
        assert_eq!((seen.pieces_have, seen.pieces_total), (Some(8), Some(8)));
        let b = by_addr(r1, bad.addr);
        assert_eq!((b.pieces_ok, b.pieces_bad), (0, 2));
        assert_eq!(by_addr(r1, silent.addr).answer.unwrap_err().0, Outcome::Timeout);

        let r2 = &rounds[1];
        assert!(r2.trackers.is_empty(), "the trackers' 1800 s interval has not passed");
        assert_eq!(r2.known, 4);
        assert_eq!(r2.arrivals, [late.addr]);
        assert_eq!(r2.departures, [bad.addr]);
        assert_eq!(by_addr(r2, bad.addr).answer.unwrap_err().0, Outcome::Unreachable);
        let g2 = by_addr(r2, good.addr);
        assert_eq!((g2.pieces_ok, g2.pieces_bad), (0, 0), "checked once per peer");
        assert_eq!(by_addr(r2, late.addr).pieces_ok, 2);
        assert!(r2.at - r1.at >= 1_500_000, "rounds start an interval apart");

        let rows = rows(&mut rx);
        let tracker_sources: Vec<_> = rows
            .sightings
            .iter()
            .filter(|s| s.source_kind == SourceKind::Tracker)
            .map(|s| (s.source.clone(), s.addr))
            .collect();
        assert!(tracker_sources.contains(&(http.url.clone(), good.addr)));
        assert!(tracker_sources.contains(&(udp.url.clone(), silent.addr)));
        let states_of = |a: SocketAddr| rows.states.iter().filter(|s| s.addr == a).count();
        assert_eq!(
            (states_of(good.addr), states_of(bad.addr), states_of(late.addr)),
            (2, 1, 1)
        );
        let bad_checks: Vec<_> = rows.checks.iter().filter(|c| !c.ok).map(|c| c.addr).collect();
        assert_eq!(bad_checks, [bad.addr, bad.addr]);
        let handshakes = rows
            .visits
            .iter()
            .filter(|v| v.probe == ProbeKind::PeerHandshake)
            .count();
        assert_eq!(handshakes, 3 + 4);
        // At the end the monitor leaves both trackers' peer lists.
        let stopped = http
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains("event=stopped"))
            .count();
        assert_eq!(stopped, 1);
    })
    .await;
}

/// With only a magnet link (its `x.pe` peer), the monitor fetches the metadata from that peer,
/// verifies it, and then checks pieces; the peer's PEX peer is visited in the next round.
#[tokio::test]
async fn magnet_fetches_metadata_then_checks_pieces_and_follows_pex() {
    bounded(async {
        let t = torrent(600 * 1024, 1024, 21);
        let other = spawn_peer(ip(3, 2, 2), PeerSpec::honest(&t)).await;
        let first = spawn_peer(
            ip(3, 2, 1),
            PeerSpec {
                pex: vec![other.addr],
                ..PeerSpec::honest(&t)
            },
        )
        .await;
        let mut magnet = Magnet::new(t.metainfo.info_hash);
        magnet.peers.push(MagnetPeer::Ip(first.addr));
        let (engine, mut rx) = engine(2000, 1);
        let mut rounds = Vec::new();
        let report = SwarmMonitor::new(engine, config(2, 200), SwarmTarget::from_magnet(&magnet))
            .run(|r| rounds.push(r.clone()))
            .await;
        let metadata = report.metadata.expect("metadata fetched");
        assert_eq!(metadata.info, t.info_bytes);
        assert!(rounds[0].metadata_known);
        assert_eq!(rounds[0].peers.len(), 1);
        let p = &rounds[0].peers[0];
        assert_eq!((p.pieces_ok, p.pex_peers), (2, 1));
        assert_eq!(rounds[1].arrivals, [other.addr]);
        assert_eq!(rounds[1].peers.iter().map(|p| p.pieces_ok).sum::<u32>(), 2);
        let rows = rows(&mut rx);
        assert!(
            rows.visits
                .iter()
                .any(|v| v.probe == ProbeKind::PeerMetadata && v.outcome == Outcome::Ok)
        );
        assert!(
            rows.sightings
                .iter()
                .any(|s| s.source_kind == SourceKind::Pex && s.addr == other.addr)
        );
    })
    .await;
}

/// A peer that fails `forget_after` rounds in a row is no longer visited.
#[tokio::test]
async fn failing_peers_are_forgotten() {
    bounded(async {
        let t = torrent(4 * 16384, 16384, 22);
        let good = spawn_peer(ip(3, 3, 1), PeerSpec::honest(&t)).await;
        let silent = spawn_peer(ip(3, 3, 2), PeerSpec::honest(&t).behaving(Behaviour::Silent)).await;
        let mut target = SwarmTarget::from_metainfo(&t.metainfo);
        target.trackers.clear();
        target.peers = vec![good.addr, silent.addr];
        let cfg = SwarmConfig {
            forget_after: 1,
            sample_pieces: 0,
            ..config(2, 100)
        };
        let (engine, _rx) = engine(300, 1);
        let mut rounds = Vec::new();
        let report = SwarmMonitor::new(engine, cfg, target)
            .run(|r| rounds.push(r.clone()))
            .await;
        assert_eq!(rounds[0].peers.len(), 2);
        assert_eq!(rounds[1].peers.iter().map(|p| p.addr).collect::<Vec<_>>(), [good.addr]);
        assert_eq!(report.peers_known, 1);
    })
    .await;
}
