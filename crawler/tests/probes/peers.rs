//! Peer wire sessions against loopback peers, honest and not.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::observe::{Outcome, ProbeKind, SourceKind};
use onionlab_crawler::probe::Error;
use onionlab_crawler::probe::peer::{PeerConfig, PeerSession, PiecesHeld};

use crate::support::*;

fn config() -> PeerConfig {
    PeerConfig {
        settle: Duration::from_millis(300),
        ..PeerConfig::default()
    }
}

/// The handshake probe: the peer's id, its BEP 10 `v`, `m`, `reqq`, `metadata_size` and
/// `yourip`, and its full bitfield are read; the visit carries the peer id, the client and the
/// raw extension handshake; a peer state row says how many pieces it holds.
#[tokio::test]
async fn handshake_reads_what_the_peer_says() {
    bounded(async {
        let t = torrent(100_000, 16384, 1);
        let peer = spawn_peer(ip(2, 0, 1), PeerSpec::honest(&t)).await;
        let (engine, mut rx) = engine(2000, 1);
        let s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, Some(7))
            .await
            .unwrap();
        let hello = s.hello();
        assert_eq!(&hello.handshake.peer_id[..8], b"-TS0001-");
        assert_eq!(hello.client(), Some(&b"loopback-seeder/1.0"[..]));
        assert!(hello.extension_id(b"ut_metadata").is_some() && hello.extension_id(b"ut_pex").is_some());
        let ext = hello.ext.as_ref().unwrap();
        assert_eq!(ext.reqq, Some(64));
        assert_eq!(ext.metadata_size, Some(t.info_bytes.len() as i64));
        assert_eq!(hello.yourip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(s.held().count(Some(7)), Some(7));
        assert!(s.offers_metadata());

        let rows = rows(&mut rx);
        assert_eq!(rows.visits.len(), 1);
        let v = &rows.visits[0];
        assert_eq!((v.probe, v.outcome), (ProbeKind::PeerHandshake, Outcome::Ok));
        assert_eq!(v.remote_id, Some(hello.handshake.peer_id));
        assert_eq!(v.client.as_deref(), Some(&b"loopback-seeder/1.0"[..]));
        assert_eq!(v.raw, hello.ext_raw);
        assert_eq!(rows.states.len(), 1);
        assert_eq!(
            (rows.states[0].pieces_have, rows.states[0].pieces_total),
            (Some(7), Some(7))
        );
    })
    .await;
}

/// A peer without the extension protocol that says BEP 6 `have_all` (id 14): no extension
/// handshake is waited for, and it holds every piece.
#[tokio::test]
async fn have_all_without_extensions() {
    bounded(async {
        let t = torrent(50_000, 16384, 2);
        let spec = PeerSpec {
            client: None,
            holding: Holding::HaveAll,
            ..PeerSpec::honest(&t)
        };
        let peer = spawn_peer(ip(2, 0, 2), spec).await;
        let (engine, _rx) = engine(2000, 1);
        let s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, Some(4))
            .await
            .unwrap();
        assert!(!s.hello().handshake.supports_extensions());
        assert_eq!(s.hello().ext, None);
        assert_eq!(*s.held(), PiecesHeld::All);
        assert_eq!(s.state().pieces_have, Some(4));
    })
    .await;
}

/// A peer that says nothing of its pieces leaves them unknown once the settle time is over.
#[tokio::test]
async fn silence_about_pieces_is_unknown() {
    bounded(async {
        let t = torrent(50_000, 16384, 3);
        let spec = PeerSpec {
            holding: Holding::Silent,
            ..PeerSpec::honest(&t)
        };
        let peer = spawn_peer(ip(2, 0, 3), spec).await;
        let (engine, mut rx) = engine(2000, 1);
        let s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, None)
            .await
            .unwrap();
        assert_eq!(*s.held(), PiecesHeld::Unknown);
        assert_eq!(rows(&mut rx).states[0].pieces_have, None);
    })
    .await;
}

/// `ut_pex` peers become PEX sightings whose source is the peer, each address once.
#[tokio::test]
async fn pex_peers_become_sightings() {
    bounded(async {
        let t = torrent(20_000, 16384, 4);
        let others: Vec<SocketAddr> = vec!["127.9.2.1:6881".parse().unwrap(), "[::1]:6882".parse().unwrap()];
        let spec = PeerSpec {
            pex: others.clone(),
            ..PeerSpec::honest(&t)
        };
        let peer = spawn_peer(ip(2, 0, 4), spec).await;
        let (engine, mut rx) = engine(2000, 1);
        let mut s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, None)
            .await
            .unwrap();
        s.linger(Duration::from_millis(200), engine.recorder()).await;
        let mut learned = s.take_pex_peers();
        learned.sort();
        let mut want = others.clone();
        want.sort();
        assert_eq!(learned, want);
        assert!(s.take_pex_peers().is_empty());
        let sightings = rows(&mut rx).sightings;
        assert_eq!(sightings.len(), 2);
        for sg in &sightings {
            assert_eq!(sg.source_kind, SourceKind::Pex);
            assert_eq!(sg.source, peer.addr.to_string());
            assert_eq!(sg.info_hash, Some(t.metainfo.info_hash));
        }
    })
    .await;
}

/// BEP 9: metadata of more than one 16 KiB piece is fetched, hashes to the info-hash, and
/// parses to the same torrent.
#[tokio::test]
async fn metadata_fetch_verifies_the_info_hash() {
    bounded(async {
        // 1,500 pieces of 1 KiB: 30,000 bytes of hashes, two metadata pieces.
        let t = torrent(1_500 * 1024, 1024, 5);
        assert!(t.info_bytes.len() > 16384);
        let peer = spawn_peer(ip(2, 0, 5), PeerSpec::honest(&t)).await;
        let (engine, mut rx) = engine(3000, 1);
        let mut s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, None)
            .await
            .unwrap();
        let m = s.fetch_metadata(&engine).await.unwrap();
        assert_eq!(m.info, t.info_bytes);
        let parsed = m.metainfo().unwrap();
        assert_eq!(parsed.info_hash, t.metainfo.info_hash);
        assert_eq!(parsed.info, t.metainfo.info);
        let visits = rows(&mut rx).visits;
        assert_eq!(
            visits.iter().map(|v| (v.probe, v.outcome)).collect::<Vec<_>>(),
            [
                (ProbeKind::PeerHandshake, Outcome::Ok),
                (ProbeKind::PeerMetadata, Outcome::Ok)
            ]
        );
    })
    .await;
}

/// Metadata that does not hash to the info-hash is a protocol error.
#[tokio::test]
async fn metadata_that_does_not_hash_is_refused() {
    bounded(async {
        let t = torrent(40_000, 1024, 6);
        let peer = spawn_peer(ip(2, 0, 6), PeerSpec::honest(&t).behaving(Behaviour::BadMetadata)).await;
        let (engine, mut rx) = engine(2000, 1);
        let mut s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, None)
            .await
            .unwrap();
        let err = s.fetch_metadata(&engine).await.unwrap_err();
        assert_eq!(err.outcome(), Some(Outcome::ProtocolError), "{err}");
        assert!(err.to_string().contains("do not hash"), "{err}");
        let last = rows(&mut rx).visits.pop().unwrap();
        assert_eq!(
            (last.probe, last.outcome),
            (ProbeKind::PeerMetadata, Outcome::ProtocolError)
        );
    })
    .await;
}

/// A piece of 16 full blocks and a short one: requests are pipelined (several pending at the
/// peer at once), the blocks reassemble to the payload and a good piece check is recorded. The
/// last, short piece works too, on the same connection.
#[tokio::test]
async fn piece_download_pipelines_and_verifies() {
    bounded(async {
        let piece_length = 16 * 16384 + 1000;
        let t = torrent(piece_length * 2 + 5000, piece_length, 7);
        let peer = spawn_peer(ip(2, 0, 7), PeerSpec::honest(&t)).await;
        let (engine, mut rx) = engine(3000, 1);
        let info = &t.metainfo.info;
        let mut s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, Some(3))
            .await
            .unwrap();
        let p = s.download_piece(&engine, info, 1).await.unwrap();
        assert_eq!(p.data, t.payload[piece_length..2 * piece_length]);
        assert!(peer.max_pending.load(Ordering::Relaxed) >= 2, "requests were pipelined");
        let last = s.download_piece(&engine, info, 2).await.unwrap();
        assert_eq!(last.data, t.payload[2 * piece_length..]);
        assert_eq!(
            peer.connections.load(Ordering::Relaxed),
            1,
            "one connection for both pieces"
        );
        let rows = rows(&mut rx);
        assert_eq!(
            rows.checks.iter().map(|c| (c.piece, c.ok)).collect::<Vec<_>>(),
            [(1, true), (2, true)]
        );
        assert!(matches!(
            s.download_piece(&engine, info, 3).await,
            Err(Error::Unusable(_))
        ));
    })
    .await;
}

/// A peer serving a corrupt piece: the piece fails its hash, the call says so, the visit is a
/// protocol error and the piece check says not ok; the peer's good pieces still check.
#[tokio::test]
async fn corrupt_piece_is_flagged() {
    bounded(async {
        let t = torrent(4 * 32768, 32768, 8);
        let peer = spawn_peer(ip(2, 0, 8), PeerSpec::honest(&t).behaving(Behaviour::CorruptPiece(2))).await;
        let (engine, mut rx) = engine(3000, 2);
        let info = &t.metainfo.info;
        let mut s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, Some(4))
            .await
            .unwrap();
        let err = s.download_piece(&engine, info, 2).await.unwrap_err();
        assert_eq!(err, Error::BadPiece { piece: 2 });
        s.download_piece(&engine, info, 0).await.unwrap();
        let rows = rows(&mut rx);
        assert_eq!(
            rows.checks.iter().map(|c| (c.piece, c.ok)).collect::<Vec<_>>(),
            [(2, false), (0, true)]
        );
        let pieces: Vec<_> = rows
            .visits
            .iter()
            .filter(|v| v.probe == ProbeKind::PeerPiece)
            .map(|v| v.outcome)
            .collect();
        assert_eq!(
            pieces,
            [Outcome::ProtocolError, Outcome::Ok],
            "a bad piece is not retried"
        );
    })
    .await;
}

/// A choke in the middle of a download drops the outstanding requests; they are asked again
/// after the unchoke and the piece completes.
#[tokio::test]
async fn choke_mid_download_re_requests() {
    bounded(async {
        let t = torrent(8 * 16384, 8 * 16384, 9);
        let peer = spawn_peer(ip(2, 0, 9), PeerSpec::honest(&t).behaving(Behaviour::ChokeFirst)).await;
        let (engine, _rx) = engine(3000, 1);
        let mut s = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, Some(1))
            .await
            .unwrap();
        let p = s.download_piece(&engine, &t.metainfo.info, 0).await.unwrap();
        assert_eq!(p.data, t.payload);
    })
    .await;
}

/// Peers that misbehave end the handshake probe with the right outcome, within the timeout,
/// without a panic: garbage, another info-hash, a 4 GiB length prefix, silence, a closed port.
#[tokio::test]
async fn misbehaving_peers_are_classified() {
    bounded(async {
        let t = torrent(20_000, 16384, 10);
        let cases = [
            (Behaviour::Garbage, Outcome::ProtocolError),
            (Behaviour::WrongInfoHash, Outcome::ProtocolError),
            (Behaviour::HugeLength, Outcome::ProtocolError),
            (Behaviour::Silent, Outcome::Timeout),
        ];
        for (i, (behaviour, want)) in cases.into_iter().enumerate() {
            let peer = spawn_peer(ip(2, 1, i as u8 + 1), PeerSpec::honest(&t).behaving(behaviour)).await;
            let (engine, mut rx) = engine(400, 2);
            let err = PeerSession::open(&engine, &config(), peer.addr, t.metainfo.info_hash, None)
                .await
                .unwrap_err();
            assert_eq!(err.outcome(), Some(want), "{behaviour:?}: {err}");
            let visits = rows(&mut rx).visits;
            let retried = if want.is_retryable() { 2 } else { 1 };
            assert_eq!(visits.len(), retried, "{behaviour:?}");
            assert!(visits.iter().all(|v| v.outcome == want && v.error.is_some()));
        }
        let (engine, _rx) = engine(400, 1);
        let closed: SocketAddr = "127.2.2.1:1".parse().unwrap();
        let err = PeerSession::open(&engine, &config(), closed, InfoHash([1; 20]), None)
            .await
            .unwrap_err();
        assert_eq!(err.outcome(), Some(Outcome::Unreachable));
    })
    .await;
}
