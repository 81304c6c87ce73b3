//! Unit and property tests for the peer wire codec.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;
use crate::bencode::DeviationKind;
use crate::infohash::InfoHash;

#[test]
fn handshake_round_trip_and_bits() {
    let mut h = Handshake::new(InfoHash([0xaa; 20]), *b"-OL0001-abcdefghijkl");
    assert!(!h.supports_extensions() && !h.supports_dht());
    h.set_extensions(true);
    h.set_dht(true);
    let wire = h.encode();
    assert_eq!(wire.len(), HANDSHAKE_LEN);
    assert_eq!(&wire[..20], b"\x13BitTorrent protocol");
    assert_eq!(&wire[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x01]);
    let back = Handshake::decode(&wire).unwrap();
    assert_eq!(back, h);
    assert!(back.supports_extensions() && back.supports_dht());
    h.set_dht(false);
    assert!(!h.supports_dht() && h.supports_extensions());
}

#[test]
fn handshake_errors() {
    let wire = Handshake::new(InfoHash([1; 20]), [2; 20]).encode();
    assert_eq!(
        Handshake::decode(&wire[..67]),
        Err(HandshakeError::WrongLength { len: 67 })
    );
    let mut bad = wire;
    bad[1] = b'b';
    assert!(matches!(Handshake::decode(&bad), Err(HandshakeError::WrongProtocol(_))));
    let mut bad = wire;
    bad[0] = 18;
    assert!(matches!(Handshake::decode(&bad), Err(HandshakeError::WrongProtocol(_))));
}

#[test]
fn messages_wire_format() {
    let cases: Vec<(Message, &[u8])> = vec![
        (Message::KeepAlive, b"\0\0\0\0"),
        (Message::Choke, b"\0\0\0\x01\x00"),
        (Message::Unchoke, b"\0\0\0\x01\x01"),
        (Message::Interested, b"\0\0\0\x01\x02"),
        (Message::NotInterested, b"\0\0\0\x01\x03"),
        (Message::Have { piece: 258 }, b"\0\0\0\x05\x04\0\0\x01\x02"),
        (Message::Bitfield(vec![0xff, 0x80]), b"\0\0\0\x03\x05\xff\x80"),
        (
            Message::Request {
                piece: 1,
                begin: 0x4000,
                length: 0x4000,
            },
            b"\0\0\0\x0d\x06\0\0\0\x01\0\0\x40\0\0\0\x40\0",
        ),
        (
            Message::Piece {
                piece: 2,
                begin: 0,
                block: b"xy".to_vec(),
            },
            b"\0\0\0\x0b\x07\0\0\0\x02\0\0\0\0xy",
        ),
        (
            Message::Cancel {
                piece: 1,
                begin: 2,
                length: 3,
            },
            b"\0\0\0\x0d\x08\0\0\0\x01\0\0\0\x02\0\0\0\x03",
        ),
        (Message::Port(6881), b"\0\0\0\x03\x09\x1a\xe1"),
        (
            Message::Extended {
                id: 0,
                payload: b"de".to_vec(),
            },
            b"\0\0\0\x04\x14\x00de",
        ),
        (
            Message::Unknown {
                id: 13,
                payload: vec![1, 2],
            },
            b"\0\0\0\x03\x0d\x01\x02",
        ),
    ];
    for (msg, wire) in cases {
        assert_eq!(msg.encode(), wire, "{msg:?}");
        assert_eq!(decode_message(wire), Ok(Some((msg, wire.len()))));
        for cut in 0..wire.len() {
            assert_eq!(decode_message(&wire[..cut]), Ok(None), "cut at {cut}");
        }
    }
}

#[test]
fn bad_payload_sizes() {
    for wire in [
        &b"\0\0\0\x02\x00\x00"[..],
        b"\0\0\0\x04\x04\0\0\0",
        b"\0\0\0\x05\x06\0\0\0\0",
        b"\0\0\0\x08\x07\0\0\0\0\0\0\0",
        b"\0\0\0\x02\x09\0",
        b"\0\0\0\x01\x14",
    ] {
        assert!(
            matches!(decode_message(wire), Err(MessageError::BadPayload { .. })),
            "{wire:?}"
        );
    }
}

#[test]
fn length_limit_checked_before_body() {
    let limits = Limits { max_message: 16 };
    assert_eq!(
        decode_message_with(b"\0\0\0\x11", limits),
        Err(MessageError::TooLong { len: 17, max: 16 })
    );
    assert_eq!(decode_message_with(b"\0\0\0\x10", limits), Ok(None));
    assert!(matches!(
        decode_message(&[0xff, 0xff, 0xff, 0xff]),
        Err(MessageError::TooLong { .. })
    ));
    // A 1 MiB block fits the default limit.
    let big = Message::Piece {
        piece: 0,
        begin: 0,
        block: vec![0; 1 << 20],
    };
    let wire = big.encode();
    assert_eq!(decode_message(&wire).unwrap().unwrap().1, wire.len());
}

#[test]
fn streaming_decoder_byte_by_byte() {
    let msgs = vec![
        Message::KeepAlive,
        Message::Interested,
        Message::Have { piece: 7 },
        Message::Port(1),
    ];
    let wire: Vec<u8> = msgs.iter().flat_map(Message::encode).collect();
    let mut dec = MessageDecoder::new();
    let mut got = Vec::new();
    for b in wire {
        dec.feed(&[b]);
        while let Some(m) = dec.next_message().unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn ext_handshake_bep10_example() {
    let payload = b"d1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei31235e1:pi6881e4:reqqi500e1:v14:uTorrent 1.2.56:yourip4:\x7f\0\0\x01e";
    let d = ExtHandshake::decode(payload).unwrap();
    assert!(d.deviations.is_empty());
    let h = d.value;
    assert_eq!(h.m.get(&b"ut_metadata"[..]), Some(&3));
    assert_eq!(h.m.get(&b"ut_pex"[..]), Some(&1));
    assert_eq!(h.metadata_size, Some(31235));
    assert_eq!(h.p, Some(6881));
    assert_eq!(h.reqq, Some(500));
    assert_eq!(h.v.as_deref(), Some(&b"uTorrent 1.2.5"[..]));
    assert_eq!(h.yourip.as_deref(), Some(&[127, 0, 0, 1][..]));
    assert_eq!(h.encode(), payload);
}

#[test]
fn ext_handshake_deviations_and_errors() {
    let d = ExtHandshake::decode(b"d1:pi01e1:md1:xi1eee").unwrap();
    assert_eq!(d.value.p, Some(1));
    let kinds: Vec<_> = d.deviations.iter().map(|d| d.kind).collect();
    assert!(kinds.contains(&DeviationKind::IntLeadingZero));
    assert!(kinds.contains(&DeviationKind::UnsortedKey));
    assert_eq!(d.value.encode(), b"d1:md1:xi1ee1:pi1ee");
    assert_eq!(ExtHandshake::decode(b"de").unwrap().value, ExtHandshake::default());
    assert_eq!(ExtHandshake::decode(b"le"), Err(ExtError::NotADict));
    assert!(matches!(
        ExtHandshake::decode(b"d1:pi70000ee"),
        Err(ExtError::OutOfRange { field: "p", .. })
    ));
    assert!(matches!(
        ExtHandshake::decode(b"d1:md1:xi256eee"),
        Err(ExtError::OutOfRange { .. })
    ));
    assert!(matches!(
        ExtHandshake::decode(b"d1:m1:xe"),
        Err(ExtError::WrongType { .. })
    ));
    assert!(matches!(ExtHandshake::decode(b"d1:m"), Err(ExtError::Bencode(_))));
}

#[test]
fn ut_metadata_bep9_examples() {
    let req = b"d8:msg_typei0e5:piecei0ee";
    assert_eq!(
        MetadataMessage::decode(req).unwrap().value,
        MetadataMessage::Request { piece: 0 }
    );
    let mut data = b"d8:msg_typei1e5:piecei0e10:total_sizei34256ee".to_vec();
    data.extend_from_slice(b"xxxxxxxx");
    let d = MetadataMessage::decode(&data).unwrap();
    assert!(d.deviations.is_empty());
    assert_eq!(
        d.value,
        MetadataMessage::Data {
            piece: 0,
            total_size: 34256,
            data: b"xxxxxxxx".to_vec()
        }
    );
    assert_eq!(d.value.encode(), data);
    let rej = b"d8:msg_typei2e5:piecei0ee";
    assert_eq!(
        MetadataMessage::decode(rej).unwrap().value,
        MetadataMessage::Reject { piece: 0 }
    );
    assert_eq!(MetadataMessage::Reject { piece: 0 }.encode(), rej);
}

#[test]
fn ut_metadata_deviations_and_errors() {
    let d = MetadataMessage::decode(b"d8:msg_typei0e5:piecei1eeXY").unwrap();
    assert_eq!(d.value, MetadataMessage::Request { piece: 1 });
    assert_eq!(
        d.deviations.last().map(|d| d.kind),
        Some(DeviationKind::TrailingBytes { len: 2 })
    );
    assert_eq!(
        MetadataMessage::decode(b"d8:msg_typei3e5:piecei0ee"),
        Err(ExtError::UnknownMsgType(3))
    );
    assert_eq!(
        MetadataMessage::decode(b"d8:msg_typei1e5:piecei0ee"),
        Err(ExtError::Missing { field: "total_size" })
    );
    assert_eq!(
        MetadataMessage::decode(b"d5:piecei0ee"),
        Err(ExtError::Missing { field: "msg_type" })
    );
    assert!(matches!(
        MetadataMessage::decode(b"d8:msg_typei0e5:piecei-1ee"),
        Err(ExtError::OutOfRange { .. })
    ));
}

#[test]
fn ut_pex_wire_format() {
    // Two IPv4 peers (the second a seed), one IPv6 peer, one dropped IPv4 peer.
    let mut payload = b"d5:added12:".to_vec();
    payload.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x00, 0x50]);
    payload.extend_from_slice(b"7:added.f2:\x10\x02");
    payload.extend_from_slice(b"6:added618:");
    payload.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    payload.extend_from_slice(&[0x1a, 0xe2]);
    payload.extend_from_slice(b"8:added6.f1:\x04");
    payload.extend_from_slice(b"7:dropped6:");
    payload.extend_from_slice(&[192, 168, 1, 1, 0, 1]);
    payload.extend_from_slice(b"8:dropped60:e");
    let d = PexMessage::decode(&payload).unwrap();
    assert!(d.deviations.is_empty());
    let v4 = |a: [u8; 4], port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), port));
    assert_eq!(
        d.value.added,
        vec![
            PexPeer {
                addr: v4([127, 0, 0, 1], 6881),
                flags: PexPeer::REACHABLE
            },
            PexPeer {
                addr: v4([10, 0, 0, 2], 80),
                flags: PexPeer::SEED
            },
            PexPeer {
                addr: SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6882, 0, 0)),
                flags: PexPeer::UTP
            },
        ]
    );
    assert_eq!(d.value.dropped, vec![v4([192, 168, 1, 1], 1)]);
    assert_eq!(d.value.encode(), payload);
}

#[test]
fn ut_pex_lenient_and_refused() {
    // Absent keys are empty lists; unknown keys are ignored.
    assert_eq!(PexMessage::decode(b"d1:xi1ee").unwrap().value, PexMessage::default());
    // Flags of the wrong length are ignored.
    let d = PexMessage::decode(b"d5:added6:\x7f\0\0\x01\0\x017:added.f2:\x02\x02e").unwrap();
    assert_eq!(d.value.added.len(), 1);
    assert_eq!(d.value.added[0].flags, 0);
    assert_eq!(
        PexMessage::decode(b"d5:added5:12345e"),
        Err(ExtError::BadLength {
            field: "added",
            len: 5,
            unit: 6
        })
    );
    assert!(matches!(
        PexMessage::decode(b"d8:dropped617:12345678901234567e"),
        Err(ExtError::BadLength { unit: 18, .. })
    ));
    assert!(matches!(
        PexMessage::decode(b"d5:addedi1ee"),
        Err(ExtError::WrongType { field: "added", .. })
    ));
    assert_eq!(PexMessage::decode(b"le"), Err(ExtError::NotADict));
    let too_many = MAX_PEX_ENTRIES + 1;
    let mut payload = format!("d7:dropped{}:", too_many * 6).into_bytes();
    payload.extend(std::iter::repeat_n(1u8, too_many * 6));
    payload.push(b'e');
    assert_eq!(
        PexMessage::decode(&payload),
        Err(ExtError::TooMany {
            field: "dropped",
            count: too_many,
            max: MAX_PEX_ENTRIES
        })
    );
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        any::<u32>().prop_map(|piece| Message::Have { piece }),
        arb_bytes(64).prop_map(Message::Bitfield),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(piece, begin, length)| Message::Request {
            piece,
            begin,
            length
        }),
        (any::<u32>(), any::<u32>(), arb_bytes(64)).prop_map(|(piece, begin, block)| Message::Piece {
            piece,
            begin,
            block
        }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(piece, begin, length)| Message::Cancel {
            piece,
            begin,
            length
        }),
        any::<u16>().prop_map(Message::Port),
        (any::<u8>(), arb_bytes(64)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (10u8..20, arb_bytes(64)).prop_map(|(id, payload)| Message::Unknown { id, payload }),
        (21u8..=255, arb_bytes(64)).prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

fn arb_ext_handshake() -> impl Strategy<Value = ExtHandshake> {
    (
        proptest::collection::btree_map(arb_bytes(12), any::<u8>(), 0..5),
        proptest::option::of(arb_bytes(20)),
        proptest::option::of(arb_bytes(16)),
        proptest::option::of(any::<i64>()),
        proptest::option::of(0..i64::MAX),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(m, v, yourip, reqq, metadata_size, p)| ExtHandshake {
            m,
            v,
            yourip,
            reqq,
            metadata_size,
            p,
        })
}

fn arb_metadata() -> impl Strategy<Value = MetadataMessage> {
    prop_oneof![
        any::<u32>().prop_map(|piece| MetadataMessage::Request { piece }),
        any::<u32>().prop_map(|piece| MetadataMessage::Reject { piece }),
        (any::<u32>(), 0..i64::MAX, arb_bytes(64)).prop_map(|(piece, total_size, data)| MetadataMessage::Data {
            piece,
            total_size,
            data
        }),
    ]
}

fn arb_v4() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
}

fn arb_v6() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)))
}

/// A `ut_pex` message in canonical order: IPv4 entries before IPv6 ones.
fn arb_pex() -> impl Strategy<Value = PexMessage> {
    let peers = |addr: BoxedStrategy<SocketAddr>| {
        proptest::collection::vec(
            (addr, any::<u8>()).prop_map(|(addr, flags)| PexPeer { addr, flags }),
            0..8,
        )
    };
    (
        peers(arb_v4().boxed()),
        peers(arb_v6().boxed()),
        proptest::collection::vec(arb_v4(), 0..8),
        proptest::collection::vec(arb_v6(), 0..8),
    )
        .prop_map(|(mut added, added6, mut dropped, dropped6)| {
            added.extend(added6);
            dropped.extend(dropped6);
            PexMessage { added, dropped }
        })
}

proptest! {
    #[test]
    fn messages_round_trip_through_the_stream(msgs in proptest::collection::vec(arb_message(), 0..8), chunk in 1usize..20) {
        let wire: Vec<u8> = msgs.iter().flat_map(Message::encode).collect();
        let mut dec = MessageDecoder::new();
        let mut got = Vec::new();
        for part in wire.chunks(chunk) {
            dec.feed(part);
            while let Some(m) = dec.next_message().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn handshake_round_trips(reserved in any::<[u8; 8]>(), ih in any::<[u8; 20]>(), id in any::<[u8; 20]>()) {
        let h = Handshake { reserved, info_hash: InfoHash(ih), peer_id: id };
        prop_assert_eq!(Handshake::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn ext_handshake_round_trips(h in arb_ext_handshake()) {
        let wire = h.encode();
        let d = ExtHandshake::decode(&wire).unwrap();
        prop_assert!(d.deviations.is_empty());
        prop_assert_eq!(&d.value, &h);
        prop_assert_eq!(d.value.encode(), wire);
    }

    #[test]
    fn metadata_round_trips(m in arb_metadata()) {
        let wire = m.encode();
        let d = MetadataMessage::decode(&wire).unwrap();
        prop_assert!(d.deviations.is_empty());
        prop_assert_eq!(&d.value, &m);
    }

    #[test]
    fn decoders_never_panic(input in arb_bytes(200)) {
        if let Ok(Some((m, used))) = decode_message(&input) {
            prop_assert!(used <= input.len());
            prop_assert_eq!(m.encode(), &input[..used]);
        }
        let _ = Handshake::decode(&input);
        if let Ok(d) = ExtHandshake::decode(&input) {
            prop_assert_eq!(ExtHandshake::decode(&d.value.encode()).unwrap().value, d.value);
        }
        if let Ok(d) = MetadataMessage::decode(&input) {
            prop_assert_eq!(MetadataMessage::decode(&d.value.encode()).unwrap().value, d.value);
        }
    }

    #[test]
    fn pex_round_trips(m in arb_pex()) {
        let wire = m.encode();
        let d = PexMessage::decode(&wire).unwrap();
        prop_assert!(d.deviations.is_empty());
        prop_assert_eq!(&d.value, &m);
        prop_assert_eq!(d.value.encode(), wire);
    }

    #[test]
    fn pex_decoder_never_panics(input in arb_bytes(200)) {
        if let Ok(d) = PexMessage::decode(&input) {
            prop_assert!(d.value.added.len() <= 4 * MAX_PEX_ENTRIES);
            prop_assert_eq!(PexMessage::decode(&d.value.encode()).unwrap().value, d.value);
        }
    }
}
