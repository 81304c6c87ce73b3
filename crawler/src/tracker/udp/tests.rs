//! UDP tracker tests: byte-exact packets, refusals, the timing rules, and properties.

use proptest::prelude::*;

use super::*;

fn hash(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

#[test]
fn connect_request_bytes() {
    let bytes = Request::Connect(ConnectRequest {
        transaction_id: 0xdead_beef,
    })
    .encode();
    assert_eq!(
        bytes,
        [
            0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef
        ]
    );
    assert_eq!(
        Request::decode(&bytes),
        Ok(Request::Connect(ConnectRequest {
            transaction_id: 0xdead_beef
        }))
    );
}

#[test]
fn connect_request_wrong_magic() {
    let mut bytes = Request::Connect(ConnectRequest { transaction_id: 1 }).encode();
    bytes[0] = 1;
    assert!(matches!(Request::decode(&bytes), Err(UdpError::BadProtocolId(_))));
}

#[test]
fn connect_response_bytes() {
    let bytes = [0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8];
    let r = Response::decode(&bytes).unwrap();
    assert_eq!(
        r,
        Response::Connect {
            transaction_id: 7,
            connection_id: 0x0102_0304_0506_0708
        }
    );
    assert_eq!(r.encode(), bytes);
    assert!(r.answers(&Request::Connect(ConnectRequest { transaction_id: 7 })));
    assert!(!r.answers(&Request::Connect(ConnectRequest { transaction_id: 8 })));
    assert_eq!(
        Response::decode(&bytes[..15]),
        Err(UdpError::Truncated {
            what: "connect response",
            need: 16,
            got: 15
        })
    );
}

fn announce() -> AnnounceRequest {
    AnnounceRequest {
        connection_id: 0x1122_3344_5566_7788,
        transaction_id: 9,
        info_hash: hash(0xaa),
        peer_id: *b"-OL0001-abcdefghijkl",
        downloaded: 1,
        left: 2,
        uploaded: 3,
        event: Event::Started,
        ip: Ipv4Addr::UNSPECIFIED,
        key: 0x0102_0304,
        num_want: -1,
        port: 6881,
    }
}

#[test]
fn announce_request_layout() {
    let bytes = Request::Announce(announce()).encode();
    assert_eq!(bytes.len(), 98);
    assert_eq!(&bytes[..8], &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(&bytes[8..16], &[0, 0, 0, 1, 0, 0, 0, 9]);
    assert_eq!(&bytes[16..36], &[0xaa; 20]);
    assert_eq!(&bytes[36..56], b"-OL0001-abcdefghijkl");
    assert_eq!(&bytes[56..64], &1u64.to_be_bytes());
    assert_eq!(&bytes[64..72], &2u64.to_be_bytes());
    assert_eq!(&bytes[72..80], &3u64.to_be_bytes());
    assert_eq!(&bytes[80..84], &[0, 0, 0, 2]);
    assert_eq!(&bytes[84..88], &[0, 0, 0, 0]);
    assert_eq!(&bytes[88..92], &[1, 2, 3, 4]);
    assert_eq!(&bytes[92..96], &[0xff; 4]);
    assert_eq!(&bytes[96..98], &[0x1a, 0xe1]);
    assert_eq!(Request::decode(&bytes), Ok(Request::Announce(announce())));
    assert!(matches!(
        Request::decode(&bytes[..97]),
        Err(UdpError::Truncated { need: 98, got: 97, .. })
    ));
    let mut bad = bytes.clone();
    bad[83] = 4;
    assert_eq!(Request::decode(&bad), Err(UdpError::UnknownEvent(4)));
    // BEP 41 options after the fixed part are ignored.
    let mut ext = bytes;
    ext.extend_from_slice(&[2, 1, b'/']);
    assert_eq!(Request::decode(&ext), Ok(Request::Announce(announce())));
}

#[test]
fn announce_response_peers() {
    let mut bytes = vec![0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 7, 8, 0, 0, 0, 5, 0, 0, 0, 6];
    bytes.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80]);
    let r = Response::decode(&bytes).unwrap();
    let Response::Announce(a) = &r else { panic!("{r:?}") };
    assert_eq!((a.transaction_id, a.interval, a.leechers, a.seeders), (9, 1800, 5, 6));
    assert_eq!(
        a.peers,
        ["10.0.0.1:6881".parse().unwrap(), "192.168.1.2:80".parse().unwrap()]
    );
    assert_eq!(r.encode(), bytes);
    assert!(r.answers(&Request::Announce(announce())));
    assert!(!r.answers(&Request::Connect(ConnectRequest { transaction_id: 9 })));
    bytes.push(0);
    assert_eq!(Response::decode(&bytes), Err(UdpError::PeerSection(13)));
    assert!(matches!(
        Response::decode(&bytes[..19]),
        Err(UdpError::Truncated { need: 20, .. })
    ));
}

#[test]
fn scrape_request_limits() {
    assert_eq!(ScrapeRequest::new(1, 2, vec![]), Err(UdpError::NoInfoHashes));
    assert_eq!(
        ScrapeRequest::new(1, 2, vec![hash(1); 75]),
        Err(UdpError::TooManyInfoHashes(75))
    );
    let req = ScrapeRequest::new(1, 2, vec![hash(1); 74]).unwrap();
    let bytes = Request::Scrape(req.clone()).encode();
    assert_eq!(bytes.len(), 16 + 74 * 20);
    assert_eq!(&bytes[8..12], &[0, 0, 0, 2]);
    assert_eq!(Request::decode(&bytes), Ok(Request::Scrape(req)));
    let mut more = bytes.clone();
    more.extend_from_slice(&[1; 20]);
    assert_eq!(Request::decode(&more), Err(UdpError::TooManyInfoHashes(75)));
    assert_eq!(Request::decode(&bytes[..16]), Err(UdpError::NoInfoHashes));
    assert_eq!(Request::decode(&bytes[..35]), Err(UdpError::ScrapeHashes(19)));
}

#[test]
fn scrape_response_and_error() {
    let bytes = [0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    let r = Response::decode(&bytes).unwrap();
    assert_eq!(
        r,
        Response::Scrape {
            transaction_id: 4,
            stats: vec![ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3
            }]
        }
    );
    assert_eq!(r.encode(), bytes);
    let one = Request::Scrape(ScrapeRequest::new(0, 4, vec![hash(1)]).unwrap());
    let two = Request::Scrape(ScrapeRequest::new(0, 4, vec![hash(1), hash(2)]).unwrap());
    assert!(r.answers(&one));
    assert!(!r.answers(&two));
    assert_eq!(Response::decode(&bytes[..19]), Err(UdpError::ScrapeSection(11)));

    let err = [0, 0, 0, 3, 0, 0, 0, 4, b'n', b'o', b'p', b'e'];
    let r = Response::decode(&err).unwrap();
    assert_eq!(
        r,
        Response::Error {
            transaction_id: 4,
            message: b"nope".to_vec()
        }
    );
    assert!(r.answers(&two));
    assert_eq!(r.encode(), err);
    assert_eq!(
        Response::decode(&[0, 0, 0, 9, 0, 0, 0, 0]),
        Err(UdpError::UnknownAction(9))
    );
    assert!(matches!(Response::decode(&[0, 0, 0]), Err(UdpError::Truncated { .. })));
}

#[test]
fn connection_id_lifetime() {
    let t0 = Instant::now();
    let c = ConnectionId { id: 5, obtained_at: t0 };
    assert!(c.is_valid(t0));
    assert!(c.is_valid(t0 + Duration::from_millis(59_999)));
    assert!(!c.is_valid(t0 + Duration::from_secs(60)));
    assert!(!c.is_valid(t0 + Duration::from_secs(3600)));
    assert_eq!(c.expires_at(), t0 + Duration::from_secs(60));
}

#[test]
fn retransmission_schedule() {
    let secs: Vec<u64> = (0..=9).filter_map(retransmit_timeout).map(|d| d.as_secs()).collect();
    assert_eq!(secs, [15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
    assert_eq!(retransmit_timeout(9), None);
    assert_eq!(retransmit_timeout(u32::MAX), None);
    let base = Duration::from_millis(10);
    assert_eq!(retransmit_timeout_from(base, 0), Some(base));
    assert_eq!(retransmit_timeout_from(base, 3), Some(Duration::from_millis(80)));
    assert_eq!(retransmit_timeout_from(base, 9), None);
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::None),
        Just(Event::Completed),
        Just(Event::Started),
        Just(Event::Stopped)
    ]
}

fn any_request() -> impl Strategy<Value = Request> {
    let connect = any::<u32>().prop_map(|transaction_id| Request::Connect(ConnectRequest { transaction_id }));
    let ann = (
        (any::<u64>(), any::<u32>(), any::<[u8; 20]>(), any::<[u8; 20]>()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any_event()),
        (any::<[u8; 4]>(), any::<u32>(), any::<i32>(), any::<u16>()),
    )
        .prop_map(|((c, t, h, p), (d, l, u, e), (ip, k, n, port))| {
            Request::Announce(AnnounceRequest {
                connection_id: c,
                transaction_id: t,
                info_hash: InfoHash(h),
                peer_id: p,
                downloaded: d,
                left: l,
                uploaded: u,
                event: e,
                ip: Ipv4Addr::from(ip),
                key: k,
                num_want: n,
                port,
            })
        });
    let scrape = (
        any::<u64>(),
        any::<u32>(),
        prop::collection::vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE_HASHES),
    )
        .prop_map(|(c, t, hs)| {
            Request::Scrape(ScrapeRequest::new(c, t, hs.into_iter().map(InfoHash).collect()).unwrap())
        });
    prop_oneof![connect, ann, scrape]
}

fn any_response() -> impl Strategy<Value = Response> {
    let connect = (any::<u32>(), any::<u64>()).prop_map(|(transaction_id, connection_id)| Response::Connect {
        transaction_id,
        connection_id,
    });
    let ann = (
        any::<[u32; 4]>(),
        prop::collection::vec((any::<[u8; 4]>(), any::<u16>()), 0..50),
    )
        .prop_map(|([t, i, l, s], peers)| {
            Response::Announce(AnnounceResponse {
                transaction_id: t,
                interval: i,
                leechers: l,
                seeders: s,
                peers: peers
                    .into_iter()
                    .map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
                    .collect(),
            })
        });
    let scrape = (any::<u32>(), prop::collection::vec(any::<[u32; 3]>(), 0..80)).prop_map(|(t, s)| Response::Scrape {
        transaction_id: t,
        stats: s
            .into_iter()
            .map(|[seeders, completed, leechers]| ScrapeStats {
                seeders,
                completed,
                leechers,
            })
            .collect(),
    });
    let error = (any::<u32>(), prop::collection::vec(any::<u8>(), 0..100)).prop_map(|(t, m)| Response::Error {
        transaction_id: t,
        message: m,
    });
    prop_oneof![connect, ann, scrape, error]
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
    }

    #[test]
    fn request_round_trip(req in any_request()) {
        prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
    }

    #[test]
    fn response_round_trip(resp in any_response()) {
        prop_assert_eq!(Response::decode(&resp.encode()), Ok(resp));
    }

    #[test]
    fn re_encoding_is_exact(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(r) = Response::decode(&bytes) {
            // Connect responses ignore trailing bytes; everything else is exact.
            prop_assert!(bytes.starts_with(&r.encode()));
        }
    }
}
