//! HTTP tracker tests: URL building, reply parsing, refusals and properties.

use proptest::prelude::*;

use super::*;
use crate::bencode::DeviationKind;

fn request() -> AnnounceRequest {
    let mut hash = [0u8; 20];
    hash[0] = 0x12;
    hash[1] = b'A';
    hash[2] = b' ';
    hash[3] = 0xff;
    hash[4] = b'~';
    AnnounceRequest {
        info_hash: InfoHash(hash),
        peer_id: *b"-OL0001-0123456789ab",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Event::Started,
        numwant: Some(50),
        key: Some(0xabc),
        tracker_id: None,
    }
}

#[test]
fn percent_encoding_is_bytewise() {
    assert_eq!(percent_encode(b"aZ09-._~"), "aZ09-._~");
    assert_eq!(percent_encode(&[0, b' ', b'/', 0xc3, 0xa9, b'%']), "%00%20%2F%C3%A9%25");
}

#[test]
fn announce_url_parameters() {
    let url = announce_url("http://t.example:6969/announce", &request()).unwrap();
    assert_eq!(
        url,
        "http://t.example:6969/announce?info_hash=%12A%20%FF~%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00\
         &peer_id=-OL0001-0123456789ab&port=6881&uploaded=1&downloaded=2&left=3&compact=1&event=started\
         &numwant=50&key=00000ABC"
    );
    let mut req = request();
    req.event = Event::None;
    req.numwant = None;
    req.key = None;
    req.tracker_id = Some(b"x y".to_vec());
    let url = announce_url("http://t.example/a?passkey=k", &req).unwrap();
    assert!(url.starts_with("http://t.example/a?passkey=k&info_hash="), "{url}");
    assert!(url.ends_with("&left=3&compact=1&trackerid=x%20y"), "{url}");
    assert_eq!(announce_url("http://t.example/a#x", &req), Err(HttpError::Fragment));
}

#[test]
fn scrape_url_rule() {
    let h = [InfoHash([0xaa; 20]), InfoHash([b'a'; 20])];
    assert_eq!(
        scrape_url("http://t.example/announce", &h[..1]).unwrap(),
        format!("http://t.example/scrape?info_hash={}", "%AA".repeat(20))
    );
    assert_eq!(
        scrape_url("http://t.example/x/announce.php?pk=1", &h).unwrap(),
        format!(
            "http://t.example/x/scrape.php?pk=1&info_hash={}&info_hash={}",
            "%AA".repeat(20),
            "a".repeat(20)
        )
    );
    assert_eq!(
        scrape_url("http://t.example/announce", &[]).unwrap(),
        "http://t.example/scrape"
    );
    for bad in [
        "http://t.example/a",
        "http://t.example/announce/x",
        "http://t.example/x?announce",
        "announce",
    ] {
        assert_eq!(scrape_url(bad, &h), Err(HttpError::ScrapeUnsupported), "{bad}");
    }
}

#[test]
fn compact_announce_reply() {
    let body = b"d8:completei3e10:incompletei4e8:intervali1800e12:min intervali60e5:peers12:\
        \x0a\x00\x00\x01\x1a\xe1\xc0\xa8\x01\x02\x00\x506:peers618:\
        \x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50\
        10:tracker id3:abc15:warning message4:slowe";
    let Reply::Ok(r) = AnnounceResponse::parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.interval, 1800);
    assert_eq!(r.min_interval, Some(60));
    assert_eq!((r.complete, r.incomplete), (Some(3), Some(4)));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"abc"[..]));
    assert_eq!(r.warning.as_deref(), Some(&b"slow"[..]));
    let addrs: Vec<_> = r.peers.iter().map(|p| p.addr.clone()).collect();
    assert_eq!(
        addrs,
        [
            PeerAddr::Ip("10.0.0.1:6881".parse().unwrap()),
            PeerAddr::Ip("192.168.1.2:80".parse().unwrap()),
            PeerAddr::Ip("[2001:db8::1]:80".parse().unwrap()),
        ]
    );
    assert!(r.deviations.is_empty());
    assert_eq!(r.encode(), body);
}

#[test]
fn dictionary_peers_and_deviations() {
    let body = b"d8:intervali900e5:peersld2:ip8:10.0.0.27:peer id20:-XX0001-abcdefghijkl4:porti6881eed\
        2:ip12:peer.example4:porti51413eeee";
    let Reply::Ok(r) = AnnounceResponse::parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.peers,
        [
            Peer {
                addr: PeerAddr::Ip("10.0.0.2:6881".parse().unwrap()),
                peer_id: Some(*b"-XX0001-abcdefghijkl")
            },
            Peer {
                addr: PeerAddr::Name("peer.example".into(), 51413),
                peer_id: None
            },
        ]
    );
    // Unsorted keys (interval after peers) are accepted and recorded.
    let body = b"d5:peers0:8:intervali05ee";
    let Reply::Ok(r) = AnnounceResponse::parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.interval, 5);
    let kinds: Vec<_> = r.deviations.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [DeviationKind::UnsortedKey, DeviationKind::IntLeadingZero]);
}

#[test]
fn failure_and_refusals() {
    let body = b"d14:failure reason12:unregistered8:intervali5ee";
    assert_eq!(
        AnnounceResponse::parse(body),
        Ok(Reply::Failure(Failure {
            reason: b"unregistered".to_vec(),
            deviations: vec![]
        }))
    );
    assert!(matches!(
        ScrapeResponse::parse(b"d14:failure reason1:xe"),
        Ok(Reply::Failure(_))
    ));
    let f = Failure {
        reason: b"no".to_vec(),
        deviations: vec![],
    };
    assert_eq!(AnnounceResponse::parse(&f.encode()), Ok(Reply::Failure(f)));

    let cases: [(&[u8], HttpError); 8] = [
        (b"i1e", HttpError::NotADict),
        (b"de", HttpError::Missing("interval")),
        (
            b"d8:intervali-1ee",
            HttpError::Invalid {
                field: "interval",
                offset: 11,
                reason: "out of range",
            },
        ),
        (
            b"d8:intervali1e5:peers5:abcdee",
            HttpError::Invalid {
                field: "peers",
                offset: 21,
                reason: "length is not a multiple of 6",
            },
        ),
        (
            b"d8:intervali1e6:peers66:abcdefe",
            HttpError::Invalid {
                field: "peers6",
                offset: 22,
                reason: "length is not a multiple of 18",
            },
        ),
        (b"d8:intervali1e5:peersld4:porti1eeee", HttpError::Missing("peer ip")),
        (
            b"d8:intervali1e5:peersld2:ip1:x7:peer id1:a4:porti1eeee",
            HttpError::Invalid {
                field: "peer id",
                offset: 39,
                reason: "not 20 bytes",
            },
        ),
        (b"d5:filesdee", HttpError::Missing("interval")),
    ];
    for (body, err) in cases {
        assert_eq!(
            AnnounceResponse::parse(body),
            Err(err),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(matches!(AnnounceResponse::parse(b"d"), Err(HttpError::Bencode(_))));
}

#[test]
fn scrape_reply() {
    let body = b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5e10:downloadedi50e10:incompletei10eeee";
    let Reply::Ok(r) = ScrapeResponse::parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.files,
        [(
            InfoHash([b'a'; 20]),
            ScrapeFile {
                complete: 5,
                downloaded: 50,
                incomplete: 10
            }
        )]
    );
    assert_eq!(r.encode(), body);
    assert_eq!(ScrapeResponse::parse(b"de"), Err(HttpError::Missing("files")));
    assert!(matches!(
        ScrapeResponse::parse(b"d5:filesd3:abcdeee"),
        Err(HttpError::Invalid { field: "files", .. })
    ));
    assert_eq!(
        ScrapeResponse::parse(b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5eeee"),
        Err(HttpError::Missing("downloaded"))
    );
}

fn any_peer_addr() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        any::<(IpAddr, u16)>().prop_map(|(ip, port)| PeerAddr::Ip(SocketAddr::new(ip, port))),
        ("[a-z]{1,10}\\.example", any::<u16>()).prop_map(|(n, port)| PeerAddr::Name(n, port)),
    ]
}

fn any_response() -> impl Strategy<Value = AnnounceResponse> {
    (
        (
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            any::<u32>(),
            prop::option::of(any::<u32>()),
        ),
        (
            prop::option::of(0..=i64::MAX as u64),
            prop::option::of(0..=i64::MAX as u64),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
        ),
        prop::collection::vec((any_peer_addr(), prop::option::of(any::<[u8; 20]>())), 0..20),
        any::<bool>(),
    )
        .prop_map(
            |((warning, interval, min_interval), (complete, incomplete, tracker_id), peers, compact)| {
                let mut peers: Vec<Peer> = peers
                    .into_iter()
                    .filter(|(a, _)| !compact || matches!(a, PeerAddr::Ip(_)))
                    .map(|(addr, peer_id)| Peer {
                        addr,
                        peer_id: if compact { None } else { peer_id },
                    })
                    .collect();
                // The encoder writes the compact form whenever no peer has an id or a host name,
                // and the compact form lists IPv4 (`peers`) before IPv6 (`peers6`).
                if peers
                    .iter()
                    .all(|p| p.peer_id.is_none() && matches!(p.addr, PeerAddr::Ip(_)))
                {
                    peers.sort_by_key(|p| matches!(p.addr, PeerAddr::Ip(SocketAddr::V6(_))));
                }
                AnnounceResponse {
                    warning,
                    interval,
                    min_interval,
                    complete,
                    incomplete,
                    tracker_id,
                    peers,
                    deviations: vec![],
                }
            },
        )
}

#[test]
fn a_tracker_reads_back_the_announce() {
    let req = request();
    let url = announce_url("http://t.example:6969/announce", &req).unwrap();
    let target = &url["http://t.example:6969".len()..];
    assert_eq!(AnnounceRequest::parse_target(target), Ok(req.clone()));
    let mut plain = req;
    plain.event = Event::None;
    plain.numwant = None;
    plain.key = None;
    plain.tracker_id = Some(b"t 1".to_vec());
    let url = announce_url("http://t.example/announce?passkey=x", &plain).unwrap();
    assert_eq!(AnnounceRequest::parse_target(&url[16..]), Ok(plain));
}

#[test]
fn a_tracker_refuses_bad_announces() {
    let url = announce_url("http://t/announce", &request()).unwrap();
    let target = url["http://t".len()..].to_string();
    let cases = [
        (target.replace("info_hash=%12A", "info_hash=%12"), "info_hash"),
        (target.replace("peer_id=-OL0001-", "peer_id=-OL0001"), "peer_id"),
        (target.replace("port=6881", "port=65536"), "port"),
        (target.replace("left=3", "left=-3"), "left"),
        (target.replace("event=started", "event=begun"), "event"),
        (target.replace("info_hash=%12", "info_hash=%1"), "info_hash"),
        (format!("{target}&port=1"), "port"),
    ];
    for (bad, field) in cases {
        match AnnounceRequest::parse_target(&bad) {
            Err(HttpError::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(
        AnnounceRequest::parse_target(&target.replace("&uploaded=1", "")),
        Err(HttpError::Missing("uploaded"))
    );
    assert_eq!(
        AnnounceRequest::parse_target("/announce"),
        Err(HttpError::Missing("info_hash"))
    );
    // aria2's key is raw bytes: accepted, not kept.
    let aria2 = target.replace("key=00000ABC", "key=x%3F%04%EC%86%15%B6%D2");
    assert_eq!(AnnounceRequest::parse_target(&aria2).map(|r| r.key), Ok(None));
    assert_eq!(percent_decode("a%2", false), None);
    assert_eq!(percent_decode("a+b%41", true), Some(b"a bA".to_vec()));
}

proptest! {
    #[test]
    fn announce_targets_round_trip(
        hash in any::<[u8; 20]>(),
        id in any::<[u8; 20]>(),
        port in any::<u16>(),
        counts in any::<[u64; 3]>(),
        event in 0u32..4,
        numwant in any::<Option<u32>>(),
        key in any::<Option<u32>>(),
        tracker_id in any::<Option<Vec<u8>>>(),
    ) {
        let req = AnnounceRequest {
            info_hash: InfoHash(hash),
            peer_id: id,
            port,
            uploaded: counts[0],
            downloaded: counts[1],
            left: counts[2],
            event: Event::from_udp(event).unwrap(),
            numwant,
            key,
            tracker_id,
        };
        let url = announce_url("http://t/announce", &req).unwrap();
        prop_assert_eq!(AnnounceRequest::parse_target(&url[8..]), Ok(req));
    }

    #[test]
    fn announce_targets_never_panic(target in "[ -~]{0,300}") {
        let _ = AnnounceRequest::parse_target(&target);
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..500)) {
        let _ = AnnounceResponse::parse(&bytes);
        let _ = ScrapeResponse::parse(&bytes);
    }

    #[test]
    fn announce_round_trip(r in any_response()) {
        prop_assert_eq!(AnnounceResponse::parse(&r.encode()), Ok(Reply::Ok(r)));
    }

    #[test]
    fn scrape_round_trip(files in prop::collection::btree_map(any::<[u8; 20]>(), any::<[u32; 3]>(), 0..20)) {
        let r = ScrapeResponse {
            files: files
                .into_iter()
                .map(|(h, [c, d, i])| (InfoHash(h), ScrapeFile { complete: c.into(), downloaded: d.into(), incomplete: i.into() }))
                .collect(),
            deviations: vec![],
        };
        prop_assert_eq!(ScrapeResponse::parse(&r.encode()), Ok(Reply::Ok(r)));
    }

    #[test]
    fn url_encoding_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        let enc = percent_encode(&bytes);
        prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let dec = percent_decode(&enc, false).unwrap();
        prop_assert_eq!(dec, bytes);
    }
}
