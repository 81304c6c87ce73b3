//! HTTP and UDP tracker clients against loopback trackers.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::observe::{Outcome, ProbeKind, SourceKind};
use onionlab_crawler::probe::Error;
use onionlab_crawler::probe::http::HttpConfig;
use onionlab_crawler::probe::tracker::{TrackerClient, TrackerConfig};
use onionlab_crawler::probe::udp_tracker::UdpConfig;
use onionlab_crawler::tracker::Event;
use onionlab_crawler::tracker::http::{
    AnnounceRequest, AnnounceResponse, Failure, Peer, PeerAddr, ScrapeFile, ScrapeResponse,
};
use onionlab_crawler::tracker::udp::Request;

use crate::support::*;

fn request(info_hash: InfoHash) -> AnnounceRequest {
    AnnounceRequest {
        info_hash,
        peer_id: *b"-OL0001-testtesttest",
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 1000,
        event: Event::Started,
        numwant: Some(50),
        key: None,
        tracker_id: None,
    }
}

fn peer(s: &str) -> Peer {
    Peer {
        addr: PeerAddr::Ip(s.parse().unwrap()),
        peer_id: None,
    }
}

fn udp_config(base_ms: u64, retransmits: u32) -> TrackerConfig {
    TrackerConfig {
        udp: UdpConfig {
            base_timeout: Duration::from_millis(base_ms),
            retransmits,
        },
        ..TrackerConfig::default()
    }
}

/// An announce over HTTP: the request carries the raw info-hash percent-encoded and
/// `compact=1`; the compact reply's counts and peers come back; the visit keeps the raw body and
/// every peer becomes a tracker sighting.
#[tokio::test]
async fn http_announce_returns_peers_and_records_sightings() {
    bounded(async {
        let reply = AnnounceResponse {
            interval: 900,
            complete: Some(3),
            incomplete: Some(7),
            peers: vec![peer("127.9.0.1:6881"), peer("127.9.0.2:51413")],
            ..AnnounceResponse::default()
        };
        let spec = HttpTrackerSpec {
            status: 200,
            announce: reply.encode(),
            scrape: Vec::new(),
            chunked: false,
        };
        let tracker = spawn_http_tracker(ip(1, 0, 1), spec).await;
        let (engine, mut rx) = engine(2000, 1);
        let client = TrackerClient::new(engine, TrackerConfig::default());
        let hash = InfoHash([0x80; 20]);
        let a = client.announce(&tracker.url, &request(hash)).await.unwrap();
        assert_eq!((a.interval, a.seeders, a.leechers), (900, Some(3), Some(7)));
        assert_eq!(a.peers, reply.peers);

        let target = tracker.requests.lock().unwrap()[0].clone();
        assert!(target.starts_with("/announce?"), "{target}");
        assert_eq!(query_param(&target, "info_hash"), Some(vec![0x80; 20]));
        assert_eq!(query_param(&target, "compact"), Some(b"1".to_vec()));
        assert_eq!(query_param(&target, "event"), Some(b"started".to_vec()));

        let rows = rows(&mut rx);
        assert_eq!(rows.visits.len(), 1);
        let v = &rows.visits[0];
        assert_eq!(
            (v.probe, v.outcome, v.info_hash),
            (ProbeKind::HttpAnnounce, Outcome::Ok, Some(hash))
        );
        assert_eq!(v.target, tracker.url);
        assert_eq!(v.raw.as_deref(), Some(&reply.encode()[..]));
        let sighted: Vec<SocketAddr> = rows.sightings.iter().map(|s| s.addr).collect();
        assert_eq!(
            sighted,
            ["127.9.0.1:6881".parse().unwrap(), "127.9.0.2:51413".parse().unwrap()]
        );
        assert!(
            rows.sightings
                .iter()
                .all(|s| s.source_kind == SourceKind::Tracker && s.source == tracker.url && s.info_hash == Some(hash))
        );
    })
    .await;
}

/// A scrape over HTTP with a chunked reply: the BEP 48 scrape URL is asked, the chunks are
/// reassembled, the counts parsed.
#[tokio::test]
async fn http_scrape_reads_a_chunked_reply() {
    bounded(async {
        let hash = InfoHash([0x11; 20]);
        let file = ScrapeFile {
            complete: 4,
            downloaded: 10,
            incomplete: 2,
        };
        let reply = ScrapeResponse {
            files: vec![(hash, file)],
            deviations: Vec::new(),
        };
        let spec = HttpTrackerSpec {
            status: 200,
            announce: Vec::new(),
            scrape: reply.encode(),
            chunked: true,
        };
        let tracker = spawn_http_tracker(ip(1, 0, 2), spec).await;
        let (engine, _rx) = engine(2000, 1);
        let client = TrackerClient::new(engine, TrackerConfig::default());
        let s = client.scrape(&tracker.url, &[hash]).await.unwrap();
        assert_eq!(s.get(&hash), Some(&file));
        let target = tracker.requests.lock().unwrap()[0].clone();
        assert!(target.starts_with("/scrape?info_hash="), "{target}");
    })
    .await;
}

/// Refusals: a `failure reason` and a 404 are remote errors, a body that is not a tracker reply
/// or is over the size cap is a protocol error, a closed port is unreachable (retried), and a
/// scheme we do not speak is refused without a visit.
#[tokio::test]
async fn http_failures_are_classified() {
    bounded(async {
        let hash = InfoHash([0x22; 20]);
        let cases: Vec<(HttpTrackerSpec, Outcome)> = vec![
            (
                HttpTrackerSpec {
                    status: 200,
                    announce: Failure {
                        reason: b"not authorized".to_vec(),
                        deviations: Vec::new(),
                    }
                    .encode(),
                    scrape: Vec::new(),
                    chunked: false,
                },
                Outcome::RemoteError,
            ),
            (
                HttpTrackerSpec {
                    status: 404,
                    announce: b"nope".to_vec(),
                    scrape: Vec::new(),
                    chunked: false,
                },
                Outcome::RemoteError,
            ),
            (
                HttpTrackerSpec {
                    status: 200,
                    announce: b"<html>not bencode</html>".to_vec(),
                    scrape: Vec::new(),
                    chunked: false,
                },
                Outcome::ProtocolError,
            ),
            (
                HttpTrackerSpec {
                    status: 200,
                    announce: vec![b'x'; 5000],
                    scrape: Vec::new(),
                    chunked: true,
                },
                Outcome::ProtocolError,
            ),
        ];
        for (i, (spec, want)) in cases.into_iter().enumerate() {
            let tracker = spawn_http_tracker(ip(1, 1, i as u8 + 1), spec).await;
            let (engine, mut rx) = engine(2000, 2);
            let cfg = TrackerConfig {
                http: HttpConfig {
                    max_body: 4096,
                    ..HttpConfig::default()
                },
                ..TrackerConfig::default()
            };
            let client = TrackerClient::new(engine, cfg);
            let err = client.announce(&tracker.url, &request(hash)).await.unwrap_err();
            assert_eq!(err.outcome(), Some(want), "case {i}: {err}");
            let visits = rows(&mut rx).visits;
            assert_eq!(visits.len(), 1, "case {i}: answers are not retried");
            assert!(visits[0].raw.is_some() || want == Outcome::ProtocolError, "case {i}");
        }

        // Nothing listens on port 1 of 127.1.2.1.
        let (engine, mut rx) = engine(2000, 2);
        let client = TrackerClient::new(engine, TrackerConfig::default());
        let err = client
            .announce("http://127.1.2.1:1/announce", &request(hash))
            .await
            .unwrap_err();
        assert_eq!(err.outcome(), Some(Outcome::Unreachable));
        let visits = rows(&mut rx).visits;
        assert_eq!(visits.iter().map(|v| v.attempt).collect::<Vec<_>>(), [1, 2]);

        let err = client
            .announce("wss://tracker.example/announce", &request(hash))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unusable(_)), "{err}");
        assert!(rows(&mut rx).visits.is_empty());
    })
    .await;
}

/// BEP 15 retransmission: the tracker drops the first two packets; the client sends the same
/// connect packet (same transaction id) again after `base` and after `2 * base`, all within one
/// attempt, and the announce then succeeds. One connect and one announce visit are recorded.
#[tokio::test]
async fn udp_announce_survives_dropped_packets() {
    bounded(async {
        let peers: Vec<SocketAddrV4> = vec!["127.9.1.1:6881".parse().unwrap()];
        let spec = UdpTrackerSpec {
            drop_first: 2,
            seeders: 5,
            leechers: 6,
            peers: peers.clone(),
            ..UdpTrackerSpec::default()
        };
        let tracker = spawn_udp_tracker(ip(1, 2, 1), spec).await;
        let (engine, mut rx) = engine(3000, 1);
        let client = TrackerClient::new(engine, udp_config(100, 3));
        let hash = InfoHash([0x33; 20]);
        let started = Instant::now();
        let a = client.announce(&tracker.url, &request(hash)).await.unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300),
            "two waits of 100 and 200 ms, took {took:?}"
        );
        assert_eq!((a.seeders, a.leechers, a.interval), (Some(5), Some(6), 1800));
        assert_eq!(a.peers, vec![peer("127.9.1.1:6881")]);

        let requests = tracker.requests.lock().unwrap().clone();
        let connects: Vec<u32> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Connect(c) => Some(c.transaction_id),
                _ => None,
            })
            .collect();
        assert_eq!(connects.len(), 3);
        assert!(
            connects.iter().all(|&t| t == connects[0]),
            "retransmissions reuse the transaction id"
        );
        match &requests[3] {
            Request::Announce(r) => {
                assert_eq!((r.info_hash, r.port, r.left, r.num_want), (hash, 6881, 1000, 50));
            }
            other => panic!("expected an announce, got {other:?}"),
        }

        let rows = rows(&mut rx);
        let kinds: Vec<_> = rows.visits.iter().map(|v| (v.probe, v.outcome, v.attempt)).collect();
        assert_eq!(
            kinds,
            [
                (ProbeKind::UdpConnect, Outcome::Ok, 1),
                (ProbeKind::UdpAnnounce, Outcome::Ok, 1)
            ]
        );
        assert_eq!(rows.sightings.len(), 1);
        assert_eq!(rows.sightings[0].source, tracker.url);
    })
    .await;
}

/// The connection id is reused for a second request within its lifetime: one connect, two
/// announces.
#[tokio::test]
async fn udp_connection_id_is_cached() {
    bounded(async {
        let tracker = spawn_udp_tracker(ip(1, 2, 2), UdpTrackerSpec::default()).await;
        let (engine, _rx) = engine(2000, 1);
        let client = TrackerClient::new(engine, udp_config(200, 2));
        let req = request(InfoHash([0x44; 20]));
        client.announce(&tracker.url, &req).await.unwrap();
        client.announce(&tracker.url, &req).await.unwrap();
        let requests = tracker.requests.lock().unwrap().clone();
        let connects = requests.iter().filter(|r| matches!(r, Request::Connect(_))).count();
        let announces = requests.iter().filter(|r| matches!(r, Request::Announce(_))).count();
        assert_eq!((connects, announces), (1, 2));
    })
    .await;
}

/// A scrape of 150 hashes goes out as requests of 74, 74 and 2 hashes; the answers come back in
/// request order.
#[tokio::test]
async fn udp_scrape_is_split_at_74_hashes() {
    bounded(async {
        let tracker = spawn_udp_tracker(ip(1, 2, 3), UdpTrackerSpec::default()).await;
        let (engine, mut rx) = engine(2000, 1);
        let client = TrackerClient::new(engine, udp_config(200, 2));
        let hashes: Vec<InfoHash> = (0..150u8)
            .map(|i| InfoHash([i, i / 2, i / 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]))
            .collect();
        let s = client.scrape(&tracker.url, &hashes).await.unwrap();
        assert_eq!(s.files.len(), 150);
        for (i, (h, f)) in s.files.iter().enumerate() {
            assert_eq!(*h, hashes[i]);
            assert_eq!(
                (f.complete, f.downloaded, f.incomplete),
                (h.0[0].into(), h.0[1].into(), h.0[2].into())
            );
        }
        let sizes: Vec<usize> = tracker
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                Request::Scrape(s) => Some(s.info_hashes().len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [74, 74, 2]);
        let scrapes = rows(&mut rx)
            .visits
            .iter()
            .filter(|v| v.probe == ProbeKind::UdpScrape)
            .count();
        assert_eq!(scrapes, 3);
    })
    .await;
}

/// An error packet (action 3) is a remote error carrying the tracker's message, not retried.
#[tokio::test]
async fn udp_error_action_is_a_remote_error() {
    bounded(async {
        let spec = UdpTrackerSpec {
            error: Some("torrent not registered"),
            ..UdpTrackerSpec::default()
        };
        let tracker = spawn_udp_tracker(ip(1, 2, 4), spec).await;
        let (engine, mut rx) = engine(2000, 3);
        let client = TrackerClient::new(engine, udp_config(200, 2));
        let err = client
            .announce(&tracker.url, &request(InfoHash([5; 20])))
            .await
            .unwrap_err();
        assert_eq!(err.outcome(), Some(Outcome::RemoteError));
        assert!(err.to_string().contains("torrent not registered"), "{err}");
        let announces: Vec<_> = rows(&mut rx)
            .visits
            .into_iter()
            .filter(|v| v.probe == ProbeKind::UdpAnnounce)
            .collect();
        assert_eq!(announces.len(), 1);
    })
    .await;
}

/// A tracker that never answers: the packet goes out `1 + retransmits` times on the doubling
/// schedule, then the attempt ends as a timeout (and the engine's second attempt does the same).
#[tokio::test]
async fn udp_silent_tracker_times_out_after_the_schedule() {
    bounded(async {
        let spec = UdpTrackerSpec {
            silent: true,
            ..UdpTrackerSpec::default()
        };
        let tracker = spawn_udp_tracker(ip(1, 2, 5), spec).await;
        let (engine, mut rx) = engine(5000, 2);
        let client = TrackerClient::new(engine, udp_config(20, 2));
        let started = Instant::now();
        let err = client
            .announce(&tracker.url, &request(InfoHash([6; 20])))
            .await
            .unwrap_err();
        assert_eq!(err.outcome(), Some(Outcome::Timeout));
        assert!(
            started.elapsed() >= Duration::from_millis(2 * 140),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            tracker.requests.lock().unwrap().len(),
            6,
            "3 sends per attempt, 2 attempts"
        );
        let visits = rows(&mut rx).visits;
        assert_eq!(
            visits.iter().map(|v| (v.probe, v.outcome)).collect::<Vec<_>>(),
            [
                (ProbeKind::UdpConnect, Outcome::Timeout),
                (ProbeKind::UdpConnect, Outcome::Timeout)
            ]
        );
    })
    .await;
}
