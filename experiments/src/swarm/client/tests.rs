//! Two clients driven in memory: every message goes through the peer wire codec, time is
//! made up, no sockets.

use super::*;
use crate::swarm::torrent::make_torrent;
use onionlab_crawler::metainfo::Metainfo;

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

fn torrent(len: usize, piece_length: u32) -> (Metainfo, Vec<u8>) {
    let data = content(len);
    let t = make_torrent("t.bin", &data, piece_length, "http://127.0.0.1:1/announce").unwrap();
    (t.metainfo, data)
}

fn client(meta: &Metainfo, data: Option<&[u8]>, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut cfg = ClientConfig::default();
    tweak(&mut cfg);
    let store = match data {
        Some(d) => PieceStore::with_content(&meta.info, d, |_| true).unwrap(),
        None => PieceStore::empty(&meta.info).unwrap(),
    };
    Client::new(cfg, meta.info_hash, store)
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 9, n], 6881))
}

/// Connects `a` (opening, to address 2) and `b` (accepting from address 1), as connection 1
/// on both sides.
fn connect(a: &mut Client, b: &mut Client, now: Instant) {
    a.connected(1, addr(2), true, &b.handshake(), now).unwrap();
    b.connected(1, addr(1), false, &a.handshake(), now).unwrap();
}

/// Moves messages both ways until neither has anything to say (or `rounds` passes); the
/// first drop on each side is returned.
fn pump(a: &mut Client, b: &mut Client, now: Instant, rounds: usize) -> (Option<DropReason>, Option<DropReason>) {
    let mut dropped = (None, None);
    for _ in 0..rounds {
        let moved = relay(a, b, now, &mut dropped.1) + relay(b, a, now, &mut dropped.0);
        if moved == 0 {
            break;
        }
    }
    dropped
}

/// Delivers everything `from` has for connection 1 to `to`, through the codec; the first
/// drop `to` decides goes in `dropped`. Returns the messages moved.
fn relay(from: &mut Client, to: &mut Client, now: Instant, dropped: &mut Option<DropReason>) -> usize {
    let mut moved = 0;
    while let Some(msg) = from.poll_transmit(1, now) {
        moved += 1;
        let bytes = msg.encode();
        let (back, used) = onionlab_crawler::peerwire::decode_message_with(&bytes, to.limits())
            .unwrap()
            .unwrap();
        assert_eq!(used, bytes.len());
        if let Err(e) = to.receive(1, back, now) {
            dropped.get_or_insert(e);
        }
    }
    moved
}

#[test]
fn a_leecher_gets_the_whole_torrent_from_a_seed() {
    let (meta, data) = torrent(300_000, 32 << 10);
    let now = Instant::now();
    let mut seed = client(&meta, Some(&data), |_| {});
    let mut leech = client(&meta, None, |_| {});
    connect(&mut leech, &mut seed, now);
    let (l, s) = pump(&mut leech, &mut seed, now, 1000);
    assert!(leech.is_complete(), "{:?} {:?}", l, s);
    assert_eq!(leech.content(), Some(&data[..]));
    assert_eq!(leech.completed_at(), Some(now));
    assert_eq!(seed.stats().uploaded, 300_000);
    assert_eq!(leech.stats().downloaded, 300_000);
    assert_eq!((leech.stats().wasted, leech.stats().hash_failures), (0, 0));
    // Both ends now seeds: the leecher closes, peacefully.
    let closing = leech.take_closing();
    assert_eq!(closing, vec![(1, DropReason::BothSeeds)]);
    assert!(leech.stats().dropped.is_empty() && leech.left() == 0);
}

#[test]
fn a_peer_serving_a_corrupt_piece_is_dropped_and_the_piece_fetched_again() {
    let (meta, data) = torrent(100_000, 32 << 10);
    let now = Instant::now();
    let mut liar = client(&meta, Some(&data), |c| c.corrupt_uploads = true);
    let mut leech = client(&meta, None, |_| {});
    connect(&mut leech, &mut liar, now);
    let (l, _) = pump(&mut leech, &mut liar, now, 1000);
    assert!(matches!(l, Some(DropReason::BadData(_))), "{l:?}");
    assert_eq!(leech.stats().hash_failures, 1);
    assert_eq!(leech.stats().dropped.len(), 1);
    assert_eq!(leech.stats().dropped[0].addr, addr(2));
    assert!(!leech.may_accept(addr(2)), "banned");
    assert_eq!(leech.have().count(), 0);
    // An honest seed then delivers everything, including the piece that failed.
    let mut seed = client(&meta, Some(&data), |_| {});
    leech.connected(2, addr(3), true, &seed.handshake(), now).unwrap();
    seed.connected(1, addr(1), false, &leech.handshake(), now).unwrap();
    for _ in 0..100 {
        while let Some(m) = leech.poll_transmit(2, now) {
            seed.receive(1, m, now).unwrap();
        }
        while let Some(m) = seed.poll_transmit(1, now) {
            if let Err(e) = leech.receive(2, m, now) {
                assert_eq!(e, DropReason::BothSeeds);
            }
        }
    }
    assert_eq!(leech.content(), Some(&data[..]));
    assert_eq!(leech.stats().hash_failures, 1);
}

#[test]
fn protocol_violations_drop_the_peer() {
    let (meta, data) = torrent(100_000, 32 << 10);
    let now = Instant::now();
    let cases: Vec<(Vec<Message>, &str)> = vec![
        (vec![Message::Bitfield(vec![0xf0, 0])], "bitfield of 2 bytes"),
        (vec![Message::Bitfield(vec![0xf8])], "spare bits"),
        (vec![Message::Have { piece: 4 }], "have for piece 4"),
        (
            vec![Message::Request {
                piece: 0,
                begin: 32 << 10,
                length: 1,
            }],
            "outside the torrent",
        ),
        (
            vec![Message::Request {
                piece: 0,
                begin: 0,
                length: MAX_REQUEST + 1,
            }],
            "outside",
        ),
    ];
    for (msgs, want) in cases {
        let mut seed = client(&meta, Some(&data), |_| {});
        let other = client(&meta, None, |_| {});
        seed.connected(1, addr(2), false, &other.handshake(), now).unwrap();
        let err = msgs
            .into_iter()
            .find_map(|m| seed.receive(1, m, now).err())
            .expect("dropped");
        assert!(matches!(err, DropReason::Protocol(_)), "{err}");
        assert!(err.to_string().contains(want), "{err} vs {want}");
        assert_eq!(seed.take_closing(), vec![(1, err)]);
        assert_eq!(seed.connections(), 0);
    }
    // A leecher asked for a piece it does not hold; a peer flooding unasked blocks.
    let mut leech = client(&meta, None, |c| c.max_unrequested = 3);
    let other = client(&meta, None, |_| {});
    leech.connected(1, addr(2), false, &other.handshake(), now).unwrap();
    let e = leech.receive(
        1,
        Message::Request {
            piece: 1,
            begin: 0,
            length: 16,
        },
        now,
    );
    assert!(matches!(e, Err(DropReason::Protocol(_))), "{e:?}");
    leech
        .connected(2, addr(3), false, &client(&meta, None, |_| {}).handshake(), now)
        .unwrap();
    let block = || Message::Piece {
        piece: 0,
        begin: 0,
        block: vec![0; 16 << 10],
    };
    for _ in 0..3 {
        leech.receive(2, block(), now).unwrap();
    }
    assert!(matches!(leech.receive(2, block(), now), Err(DropReason::Limit(_))));
    assert_eq!(leech.stats().wasted, 4 * (16 << 10));
}

#[test]
fn late_and_repeated_bitfields_are_merged() {
    let (meta, _) = torrent(100_000, 32 << 10);
    let now = Instant::now();
    let mut leech = client(&meta, None, |_| {});
    let other = client(&meta, None, |_| {});
    leech.connected(1, addr(2), false, &other.handshake(), now).unwrap();
    // As aria2 does: a have, then its bitfield, then a larger one.
    leech.receive(1, Message::Have { piece: 3 }, now).unwrap();
    leech.receive(1, Message::Bitfield(vec![0x10]), now).unwrap();
    leech.receive(1, Message::Bitfield(vec![0x90]), now).unwrap();
    assert_eq!((leech.picker.availability(0), leech.picker.availability(3)), (1, 1));
    let sent: Vec<Message> = std::iter::from_fn(|| leech.poll_transmit(1, now)).collect();
    assert_eq!(sent, vec![Message::Interested]);
}

#[test]
fn requests_while_choked_are_ignored_and_a_free_rider_never_uploads() {
    let (meta, data) = torrent(100_000, 32 << 10);
    let now = Instant::now();
    let mut thief_seed = client(&meta, Some(&data), |c| c.strategy = Strategy::BitThief);
    let mut leech = client(&meta, None, |_| {});
    connect(&mut leech, &mut thief_seed, now);
    pump(&mut leech, &mut thief_seed, now, 100);
    // The leecher said it is interested; the free rider never unchoked it.
    thief_seed
        .receive(
            1,
            Message::Request {
                piece: 0,
                begin: 0,
                length: 16 << 10,
            },
            now,
        )
        .unwrap();
    for s in 0..100 {
        thief_seed.tick(now + Duration::from_secs(s));
        assert!(!matches!(
            thief_seed.poll_transmit(1, now),
            Some(Message::Piece { .. }) | Some(Message::Unchoke)
        ));
    }
    assert_eq!(thief_seed.stats().uploaded, 0);
    assert_eq!(leech.have().count(), 0);
}

#[test]
fn unanswered_requests_time_out_and_go_back_to_the_picker() {
    let (meta, data) = torrent(32 << 10, 32 << 10);
    let now = Instant::now();
    let mut seed = client(&meta, Some(&data), |_| {});
    let mut leech = client(&meta, None, |c| c.request_timeout = Duration::from_secs(5));
    connect(&mut leech, &mut seed, now);
    // Bitfield, interested, unchoke, requests, but the seed's blocks are never delivered.
    for _ in 0..4 {
        while let Some(m) = seed.poll_transmit(1, now) {
            if !matches!(m, Message::Piece { .. }) {
                leech.receive(1, m, now).unwrap();
            }
        }
        while let Some(m) = leech.poll_transmit(1, now) {
            seed.receive(1, m, now).unwrap();
        }
    }
    let later = now + Duration::from_secs(6);
    leech.tick(later);
    let sent: Vec<Message> = std::iter::from_fn(|| leech.poll_transmit(1, later)).collect();
    let cancels = sent.iter().filter(|m| matches!(m, Message::Cancel { .. })).count();
    let requests = sent.iter().filter(|m| matches!(m, Message::Request { .. })).count();
    assert_eq!((cancels, requests), (2, 2), "{sent:?}");
}

#[test]
fn of_two_connections_between_two_peers_both_keep_the_same_one() {
    let (meta, _) = torrent(100_000, 32 << 10);
    let now = Instant::now();
    let mut a = client(&meta, None, |c| c.peer_id = [1; 20]);
    let mut b = client(&meta, None, |c| c.peer_id = [2; 20]);
    // a→b is connection 1 on both sides, b→a is connection 2.
    a.connected(1, addr(2), true, &b.handshake(), now).unwrap();
    b.connected(2, addr(1), true, &a.handshake(), now).unwrap();
    b.connected(1, addr(1), false, &a.handshake(), now).unwrap();
    assert_eq!(b.take_closing(), vec![(2, DropReason::Duplicate)]);
    assert_eq!(
        a.connected(2, addr(2), false, &b.handshake(), now),
        Err(DropReason::Duplicate)
    );
    assert_eq!((a.connections(), b.connections()), (1, 1));
    assert_eq!(
        a.connected(3, addr(1), false, &a.handshake(), now),
        Err(DropReason::ItsUs)
    );
}

#[test]
fn a_seed_dials_the_peers_its_tracker_names_and_leaves_other_seeds_alone() {
    let (meta, data) = torrent(100_000, 32 << 10);
    let now = Instant::now();
    let mut seed = client(&meta, Some(&data), |_| {});
    let mut leech = client(&meta, None, |_| {});
    let mut other_seed = client(&meta, Some(&data), |_| {});
    seed.add_peers([addr(2), addr(3)], now);
    assert_eq!(seed.connect_candidates(now), vec![addr(2), addr(3)]);
    // The leecher downloads over the connection the seed opened.
    connect(&mut seed, &mut leech, now);
    pump(&mut seed, &mut leech, now, 1000);
    assert_eq!(leech.content(), Some(&data[..]));
    // Two seeds part at their bitfields, and the seed does not dial that one again.
    seed.connected(2, addr(3), true, &other_seed.handshake(), now).unwrap();
    other_seed.connected(2, addr(1), false, &seed.handshake(), now).unwrap();
    let bitfield = other_seed.poll_transmit(2, now).expect("its bitfield");
    assert_eq!(seed.receive(2, bitfield, now), Err(DropReason::BothSeeds));
    assert!(seed.connect_candidates(now + Duration::from_secs(3600)).is_empty());
}
