//! Unit and property tests for the Gnutella codecs. Expected bytes are written by hand from the
//! RFC draft's layouts, never produced by the encoder under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;

const SHA1_ABC: [u8; 20] = [
    0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8,
    0x9d,
];
const URN_ABC: &[u8] = b"urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn decode_all(wire: &[u8]) -> DecodedHandshake {
    let (d, used) = decode_handshake(wire).unwrap().unwrap();
    assert_eq!(used, wire.len());
    d
}

// ---------------------------------------------------------------- handshake

#[test]
fn crawler_connect_wire_format() {
    let h = Handshake::crawler_connect("onionlab/0.1");
    let wire = b"GNUTELLA CONNECT/0.6\r\nUser-Agent: onionlab/0.1\r\nCrawler: 0.1\r\n\r\n";
    assert_eq!(h.encode().unwrap(), wire);
    let d = decode_all(wire);
    assert!(d.deviations.is_empty());
    assert_eq!(d.handshake, h);
    assert_eq!(d.handshake.status(), None);
    assert_eq!(d.handshake.headers.crawler(), Some("0.1"));
    assert_eq!(d.handshake.headers.user_agent(), Some("onionlab/0.1"));
}

#[test]
fn crawler_reply_from_an_ultrapeer_and_from_a_leaf() {
    let up = CrawlerReply {
        user_agent: "gtk-gnutella/1.2.2".into(),
        ultrapeer: true,
        peers: vec![addr("1.2.3.4:6346"), addr("[2001:db8::1]:6347")],
        leaves: vec![addr("10.0.0.1:6346")],
    };
    let wire: &[u8] = b"GNUTELLA/0.6 200 OK\r\n\
        User-Agent: gtk-gnutella/1.2.2\r\n\
        X-Ultrapeer: True\r\n\
        Peers: 1.2.3.4:6346, [2001:db8::1]:6347\r\n\
        Leaves: 10.0.0.1:6346\r\n\
        \r\n";
    let h = Handshake::crawler_reply(&up);
    assert_eq!(h.encode().unwrap(), wire);
    let d = decode_all(wire);
    assert!(d.deviations.is_empty());
    assert_eq!(d.handshake, h);
    let headers = &d.handshake.headers;
    assert_eq!(d.handshake.status(), Some(200));
    assert_eq!(headers.ultrapeer(), Some(true));
    assert_eq!(headers.peers().unwrap().addrs(), up.peers);
    assert_eq!(headers.leaves().unwrap().addrs(), up.leaves);

    let leaf = CrawlerReply {
        user_agent: "LimeWire/4.18.8".into(),
        ultrapeer: false,
        peers: vec![addr("1.2.3.4:6346")],
        leaves: vec![addr("10.0.0.1:6346")],
    };
    let wire: &[u8] = b"GNUTELLA/0.6 200 OK\r\n\
        User-Agent: LimeWire/4.18.8\r\n\
        X-Ultrapeer: False\r\n\
        Peers: 1.2.3.4:6346\r\n\
        \r\n";
    assert_eq!(Handshake::crawler_reply(&leaf).encode().unwrap(), wire);
    let headers = decode_all(wire).handshake.headers;
    assert_eq!(headers.ultrapeer(), Some(false));
    assert_eq!(headers.leaves(), None, "a leaf sends no Leaves header");

    // An ultrapeer without leaves still says so.
    let lonely = CrawlerReply { leaves: vec![], ..up };
    let headers = decode_all(&Handshake::crawler_reply(&lonely).encode().unwrap())
        .handshake
        .headers;
    assert_eq!(headers.get("Leaves"), Some(""));
    assert_eq!(headers.leaves(), Some(PeerList::default()));
}

#[test]
fn limewire_style_handshake_accessors() {
    let wire: &[u8] = b"GNUTELLA/0.6 200 OK\r\n\
        X-Try-Ultrapeers: 171.195.105.218:3988,24.166.9.141:6346\r\n\
        User-Agent: LimeWire/4.10.9\r\n\
        Listen-IP: 68.37.233.44:9376\r\n\
        Remote-IP: 217.254.98.153\r\n\
        Accept-Encoding: deflate\r\n\
        Content-Encoding: deflate\r\n\
        X-Ultrapeer: True\r\n\
        X-Ultrapeer-Needed: false\r\n\
        X-Query-Routing: 0.1\r\n\
        \r\n";
    let d = decode_all(wire);
    assert!(d.deviations.is_empty());
    let h = &d.handshake.headers;
    assert_eq!(h.len(), 9);
    assert_eq!(h.user_agent(), Some("LimeWire/4.10.9"));
    assert_eq!(h.ultrapeer(), Some(true));
    assert_eq!(h.ultrapeer_needed(), Some(false));
    assert_eq!(
        h.try_ultrapeers().unwrap().addrs(),
        vec![addr("171.195.105.218:3988"), addr("24.166.9.141:6346")]
    );
    assert_eq!(h.try_hosts(), None);
    assert_eq!(h.listen_addr(), Some(addr("68.37.233.44:9376")));
    assert_eq!(h.remote_ip(), Some(IpAddr::V4(Ipv4Addr::new(217, 254, 98, 153))));
    assert_eq!(h.query_routing(), Some("0.1"));
    assert!(h.accepts_deflate() && h.content_deflate());
    assert_eq!(h.crawler(), None);
    assert_eq!(h.peers(), None);
    assert_eq!(
        d.handshake.start,
        StartLine::Response {
            version: "0.6".into(),
            code: 200,
            reason: "OK".into()
        }
    );
}

#[test]
fn folded_repeated_and_case_insensitive_headers() {
    let wire: &[u8] = b"GNUTELLA/0.6 200 OK\r\n\
        user-agent:gtk-gnutella/1.2\r\n\
        Peers: 1.2.3.4:6346,\r\n \
        5.6.7.8:6346\r\n\
        \t, 9.9.9.9:1  \r\n\
        X-Try: 1.1.1.1:1\r\n\
        x-try: 2.2.2.2:2\r\n\
        X-My-Address:  3.3.3.3\r\n\
        Leaves:\r\n\
        Accept-Encoding: gzip , DEFLATE\r\n\
        \r\n";
    let d = decode_all(wire);
    assert!(d.deviations.is_empty(), "{:?}", d.deviations);
    let h = &d.handshake.headers;
    assert_eq!(h.get("USER-AGENT"), Some("gtk-gnutella/1.2"));
    assert_eq!(h.iter().next(), Some(("user-agent", "gtk-gnutella/1.2")));
    assert_eq!(h.get("Peers"), Some("1.2.3.4:6346, 5.6.7.8:6346 , 9.9.9.9:1"));
    assert_eq!(
        h.peers().unwrap().addrs(),
        vec![addr("1.2.3.4:6346"), addr("5.6.7.8:6346"), addr("9.9.9.9:1")]
    );
    assert_eq!(h.get("X-Try"), Some("1.1.1.1:1,2.2.2.2:2"));
    assert_eq!(h.try_hosts().unwrap().addrs().len(), 2);
    assert_eq!(h.listen_addr(), Some(addr("3.3.3.3:6346")));
    assert_eq!(h.leaves(), Some(PeerList::default()));
    assert!(h.accepts_deflate());
    assert!(!h.content_deflate());
    assert_eq!(h.len(), 6);
}

#[test]
fn peer_lists_are_parsed_leniently() {
    let list = parse_peer_list(
        "24.98.97.155:6348 2004-12-18T23:47Z, 192.0.2.40,bogus, 1.2.3.4:99999 ,[2001:db8::2]:6346, [2001:db8::3],,",
    );
    assert_eq!(
        list.entries,
        vec![
            PeerEntry {
                addr: addr("24.98.97.155:6348"),
                seen: Some("2004-12-18T23:47Z".into())
            },
            PeerEntry {
                addr: addr("192.0.2.40:6346"),
                seen: None
            },
            PeerEntry {
                addr: addr("[2001:db8::2]:6346"),
                seen: None
            },
            PeerEntry {
                addr: SocketAddr::from(("2001:db8::3".parse::<Ipv6Addr>().unwrap(), DEFAULT_PORT)),
                seen: None
            },
        ]
    );
    assert_eq!(list.bad, vec!["bogus".to_owned(), "1.2.3.4:99999".to_owned()]);
    assert_eq!(parse_peer_list(""), PeerList::default());
    assert_eq!(
        format_peer_list(&[addr("1.2.3.4:1"), addr("[::1]:2")]),
        "1.2.3.4:1, [::1]:2"
    );
}

#[test]
fn refusal_with_try_ultrapeers() {
    let wire: &[u8] = b"GNUTELLA/0.6 503 Too many connections\r\n\
        X-Try-Ultrapeers: 192.0.2.77:9000, 192.0.2.40\r\n\
        \r\n";
    let h = decode_all(wire).handshake;
    assert_eq!(h.status(), Some(503));
    assert_eq!(
        h.start,
        StartLine::Response {
            version: "0.6".into(),
            code: 503,
            reason: "Too many connections".into()
        }
    );
    assert_eq!(
        h.headers.try_ultrapeers().unwrap().addrs(),
        vec![addr("192.0.2.77:9000"), addr("192.0.2.40:6346")]
    );
    // A status line without a reason phrase, and the bytes of our own encoding of it.
    let h = decode_all(b"GNUTELLA/0.6 200\r\n\r\n").handshake;
    assert_eq!(h, Handshake::response(200, ""));
    assert_eq!(h.encode().unwrap(), b"GNUTELLA/0.6 200\r\n\r\n");
}

#[test]
fn bare_lf_is_recorded() {
    let d = decode_all(b"GNUTELLA CONNECT/0.6\nUser-Agent: x\r\nCrawler: 0.1\n\n");
    assert_eq!(
        d.deviations,
        vec![
            HandshakeDeviation::BareLf { line: 1 },
            HandshakeDeviation::BareLf { line: 3 },
            HandshakeDeviation::BareLf { line: 4 },
        ]
    );
    assert_eq!(d.handshake.headers.crawler(), Some("0.1"));
    assert_eq!(d.handshake.headers.user_agent(), Some("x"));
    // A mixed blank line ends the block too.
    assert!(decode_handshake(b"GNUTELLA/0.6 200 OK\r\n\n").unwrap().is_some());
}

#[test]
fn malformed_lines_are_recorded_and_skipped() {
    let d = decode_all(
        b"GNUTELLA/0.6 503 Busy\r\n continued\r\nNo colon here\r\nBad Name: x\r\n\tmore\r\n\
          User-Agent: caf\xe9\r\nX-Ultrapeer: maybe\r\n\r\n",
    );
    assert_eq!(
        d.deviations,
        vec![
            HandshakeDeviation::MalformedHeader { line: 2 },
            HandshakeDeviation::MalformedHeader { line: 3 },
            HandshakeDeviation::MalformedHeader { line: 4 },
            HandshakeDeviation::MalformedHeader { line: 5 },
            HandshakeDeviation::NonUtf8 { line: 6 },
        ]
    );
    let h = &d.handshake.headers;
    assert_eq!(h.len(), 2);
    assert_eq!(h.user_agent(), Some("caf\u{fffd}"));
    assert_eq!(h.ultrapeer(), None);
    assert_eq!(h.get("X-Ultrapeer"), Some("maybe"));
}

#[test]
fn need_more_until_the_blank_line() {
    let wire = Handshake::crawler_connect("onionlab/0.1").encode().unwrap();
    for cut in 0..wire.len() {
        assert_eq!(decode_handshake(&wire[..cut]), Ok(None), "cut at {cut}");
    }
    let mut more = wire.clone();
    more.extend_from_slice(b"\x01\x02binary");
    let (_, used) = decode_handshake(&more).unwrap().unwrap();
    assert_eq!(used, wire.len());
}

#[test]
fn decoder_reads_consecutive_blocks_and_keeps_the_rest() {
    let first = Handshake::crawler_connect("c").encode().unwrap();
    let third = Handshake::response(200, "OK").encode().unwrap();
    let tail = b"\xaa\xbb descriptors follow";
    let stream: Vec<u8> = [&first[..], &third[..], &tail[..]].concat();
    let mut dec = HandshakeDecoder::new();
    let mut blocks = Vec::new();
    for b in &stream {
        dec.feed(&[*b]);
        while let Some(d) = dec.next_handshake().unwrap() {
            blocks.push(d.handshake);
        }
    }
    assert_eq!(
        blocks,
        vec![Handshake::crawler_connect("c"), Handshake::response(200, "OK")]
    );
    assert_eq!(dec.buffered(), tail.len());
    assert_eq!(dec.take_buffered(), tail);
    assert_eq!(dec.buffered(), 0);
    assert_eq!(dec.next_handshake(), Ok(None));
}

#[test]
fn endless_headers_are_refused() {
    let mut wire = b"GNUTELLA CONNECT/0.6\r\n".to_vec();
    for _ in 0..128 {
        wire.extend_from_slice(b"X-Junk: y\r\n");
    }
    assert_eq!(decode_handshake(&wire), Ok(None));
    wire.extend_from_slice(b"X-Junk: y\r");
    assert_eq!(decode_handshake(&wire), Ok(None));
    wire.push(b'\n');
    assert_eq!(
        decode_handshake(&wire),
        Err(HandshakeError::TooManyHeaders { max: 128 })
    );

    // Continuation lines do not count as headers, but the block size does.
    let limits = HandshakeLimits {
        max_block: 100,
        ..HandshakeLimits::default()
    };
    let mut wire = b"GNUTELLA CONNECT/0.6\r\nX: y\r\n".to_vec();
    while wire.len() < 100 {
        wire.extend_from_slice(b" z\r\n");
    }
    wire.truncate(100);
    assert_eq!(decode_handshake_with(&wire, limits), Ok(None));
    wire.push(b'z');
    assert_eq!(
        decode_handshake_with(&wire, limits),
        Err(HandshakeError::BlockTooLarge { max: 100 })
    );
}

#[test]
fn a_line_without_crlf_over_the_limit_is_refused() {
    let limits = HandshakeLimits {
        max_line: 64,
        ..HandshakeLimits::default()
    };
    let mut wire = b"GNUTELLA CONNECT/0.6\r\nX: ".to_vec();
    let line_start = 22;
    wire.resize(line_start + 64, b'a');
    assert_eq!(decode_handshake_with(&wire, limits), Ok(None));
    wire.push(b'a');
    assert_eq!(
        decode_handshake_with(&wire, limits),
        Err(HandshakeError::LineTooLong { line: 2, max: 64 })
    );
    // The line end counts: 63 bytes and CRLF is 65.
    let mut wire = b"GNUTELLA CONNECT/0.6\r\nX: ".to_vec();
    wire.resize(line_start + 63, b'a');
    wire.extend_from_slice(b"\r\n");
    assert_eq!(
        decode_handshake_with(&wire, limits),
        Err(HandshakeError::LineTooLong { line: 2, max: 64 })
    );
    // A start line that never ends.
    assert_eq!(
        decode_handshake_with(&[b'G'; 65], limits),
        Err(HandshakeError::LineTooLong { line: 1, max: 64 })
    );
}

#[test]
fn a_flood_is_refused_with_bounded_buffering() {
    let mut dec = HandshakeDecoder::new();
    let chunk = [b'a'; 4096];
    let mut fed = 0;
    let err = loop {
        dec.feed(&chunk);
        fed += chunk.len();
        match dec.next_handshake() {
            Ok(None) => assert!(fed < 1 << 20, "no error after {fed} bytes"),
            Ok(Some(_)) => panic!("junk accepted"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, HandshakeError::LineTooLong { line: 1, max: 8 << 10 });
    assert!(dec.buffered() <= (8 << 10) + chunk.len());
    // The error sticks.
    assert_eq!(dec.next_handshake(), Err(err));
}

#[test]
fn bad_start_lines_fail_at_their_line_end() {
    for line in [
        &b"HTTP/1.1 200 OK\r\n"[..],
        b"GNUTELLA OK\n",
        b"gnutella connect/0.6\r\n",
        b"GNUTELLA CONNECT/\r\n",
        b"GNUTELLA CONNECT/0.6 \r\n",
        b"GNUTELLA/0.6 20 OK\r\n",
        b"GNUTELLA/0.6 2000 OK\r\n",
        b"GNUTELLA/0.6 2x0 OK\r\n",
        b"GNUTELLA/0.6\r\n",
        b"GNUTELLA/a.b 200 OK\r\n",
        b"\r\n",
        b"\x00\x01\x02\xff\n",
    ] {
        let got = decode_handshake(line);
        assert!(matches!(got, Err(HandshakeError::BadStartLine(_))), "{line:?}: {got:?}");
    }
    assert_eq!(
        decode_handshake(b"HTTP/1.1 200 OK\r\n"),
        Err(HandshakeError::BadStartLine("HTTP/1.1 200 OK".into()))
    );
    // The 0.4 request has a well-formed connect line: it decodes, and its version is recorded.
    let d = decode_all(b"GNUTELLA CONNECT/0.4\n\n");
    assert_eq!(d.handshake.start, StartLine::Connect { version: "0.4".into() });
    assert_eq!(d.deviations.len(), 2);
}

#[test]
fn invalid_handshakes_are_not_encoded() {
    let mut h = Handshake::connect();
    h.headers.set("Bad Name", "x");
    assert_eq!(h.encode(), Err(EncodeError::HeaderName("Bad Name".into())));
    for value in ["a\nb", " lead", "trail\t"] {
        let mut h = Handshake::connect();
        h.headers.set("X", value);
        assert_eq!(h.encode(), Err(EncodeError::HeaderValue("X".into())), "{value:?}");
    }
    let bad_starts = [
        StartLine::Connect { version: "x".into() },
        StartLine::Response {
            version: "0.6".into(),
            code: 1000,
            reason: "OK".into(),
        },
        StartLine::Response {
            version: "0.6".into(),
            code: 200,
            reason: "O\nK".into(),
        },
    ];
    for start in bad_starts {
        let h = Handshake {
            start,
            headers: Headers::new(),
        };
        assert!(matches!(h.encode(), Err(EncodeError::StartLine(_))));
    }
}

#[test]
fn headers_set_and_append() {
    let mut h = Headers::new();
    assert!(h.is_empty());
    h.set("Peers", "1.2.3.4:1");
    h.append("peers", "5.6.7.8:2");
    h.set("X-Ultrapeer", "False");
    h.set("x-ultrapeer", "True");
    assert_eq!(
        h.iter().collect::<Vec<_>>(),
        vec![("Peers", "1.2.3.4:1,5.6.7.8:2"), ("X-Ultrapeer", "True")]
    );
}

// ---------------------------------------------------------------- descriptors

/// Byte 8 is 0xff and byte 15 is 0x00: a modern servent's GUID.
const G: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0xff, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x00,
];
const S: [u8; 16] = [
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
];

fn msg(ttl: u8, hops: u8, payload: Payload) -> Message {
    Message {
        guid: Guid(G),
        ttl,
        hops,
        payload,
    }
}

fn query_hit() -> QueryHit {
    QueryHit {
        port: 6346,
        ip: Ipv4Addr::new(198, 51, 100, 7),
        speed: 350,
        results: vec![
            HitResult {
                file_index: 1,
                file_size: 1 << 20,
                name: b"song.mp3".to_vec(),
                extensions: URN_ABC.to_vec(),
            },
            HitResult {
                file_index: 2,
                file_size: 42,
                name: b"readme.txt".to_vec(),
                extensions: vec![],
            },
        ],
        trailer: b"GTKG\x02\x1c\x11priv".to_vec(),
        servent_id: Guid(S),
    }
}

#[test]
fn guid_convention() {
    let g = Guid::modern([0xaa; 16]);
    assert_eq!(g.0[8], 0xff);
    assert_eq!(g.0[15], 0x00);
    assert_eq!(g.0[0], 0xaa);
    assert!(g.is_modern());
    assert!(Guid(G).is_modern());
    assert!(!Guid(S).is_modern());
}

#[test]
fn descriptors_wire_format() {
    let cases: Vec<(Message, Vec<u8>)> = vec![
        (
            msg(7, 0, Payload::Ping { extensions: vec![] }),
            [&G[..], b"\x00\x07\x00\x00\x00\x00\x00"].concat(),
        ),
        (
            // A GGEP block, kept raw.
            msg(
                1,
                0,
                Payload::Ping {
                    extensions: b"\xc3\x82SCP\x41\x01".to_vec(),
                },
            ),
            [&G[..], b"\x00\x01\x00\x07\x00\x00\x00", b"\xc3\x82SCP\x41\x01"].concat(),
        ),
        (
            msg(
                1,
                6,
                Payload::Pong(Pong {
                    port: 6346,
                    ip: Ipv4Addr::new(208, 17, 50, 4),
                    files: 3,
                    kbytes: 1000,
                    extensions: vec![],
                }),
            ),
            [
                &G[..],
                b"\x01\x01\x06\x0e\x00\x00\x00",
                b"\xca\x18",
                b"\xd0\x11\x32\x04",
                b"\x03\x00\x00\x00",
                b"\xe8\x03\x00\x00",
            ]
            .concat(),
        ),
        (
            msg(
                1,
                0,
                Payload::Bye(Bye {
                    code: 200,
                    message: b"Shutdown".to_vec(),
                }),
            ),
            [&G[..], b"\x02\x01\x00\x0b\x00\x00\x00", b"\xc8\x00", b"Shutdown\x00"].concat(),
        ),
        (
            msg(
                3,
                2,
                Payload::Push(Push {
                    servent_id: Guid(S),
                    file_index: 5,
                    ip: Ipv4Addr::new(192, 0, 2, 1),
                    port: 6347,
                    extensions: vec![],
                }),
            ),
            [
                &G[..],
                b"\x40\x03\x02\x1a\x00\x00\x00",
                &S[..],
                b"\x05\x00\x00\x00",
                b"\xc0\x00\x02\x01",
                b"\xcb\x18",
            ]
            .concat(),
        ),
        (
            msg(
                4,
                0,
                Payload::Query(Query {
                    min_speed: 0x00c0,
                    criteria: b"free music".to_vec(),
                    extensions: URN_ABC.to_vec(),
                }),
            ),
            // 2 + 10 + 1 + 41 = 54 bytes.
            [
                &G[..],
                b"\x80\x04\x00\x36\x00\x00\x00",
                b"\xc0\x00",
                b"free music\x00",
                URN_ABC,
            ]
            .concat(),
        ),
        (
            msg(5, 2, Payload::QueryHit(query_hit())),
            // 11 + (8 + 9 + 42) + (8 + 11 + 1) + 11 + 16 = 117 bytes.
            [
                &G[..],
                b"\x81\x05\x02\x75\x00\x00\x00",
                b"\x02",
                b"\xca\x18",
                b"\xc6\x33\x64\x07",
                b"\x5e\x01\x00\x00",
                b"\x01\x00\x00\x00",
                b"\x00\x00\x10\x00",
                b"song.mp3\x00",
                URN_ABC,
                b"\x00",
                b"\x02\x00\x00\x00",
                b"\x2a\x00\x00\x00",
                b"readme.txt\x00\x00",
                b"GTKG\x02\x1c\x11priv",
                &S[..],
            ]
            .concat(),
        ),
        (
            // A vendor message (0x31), unknown here: recorded and re-encoded as it came.
            msg(
                1,
                0,
                Payload::Unknown {
                    kind: 0x31,
                    payload: b"LIME\x0b\x00\x01\x00".to_vec(),
                },
            ),
            [&G[..], b"\x31\x01\x00\x08\x00\x00\x00", b"LIME\x0b\x00\x01\x00"].concat(),
        ),
    ];
    for (message, wire) in cases {
        assert_eq!(message.encode().unwrap(), wire, "{message:?}");
        let (d, used) = decode_message(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(d.message, message);
        assert!(d.deviations.is_empty(), "{:?}", d.deviations);
        for cut in 0..wire.len() {
            assert_eq!(decode_message(&wire[..cut]), Ok(None), "{message:?} cut at {cut}");
        }
        let header = DescriptorHeader::decode(wire.first_chunk().unwrap());
        assert_eq!(header.kind, message.payload.kind());
        assert_eq!(header.length as usize, wire.len() - HEADER_LEN);
        assert_eq!(&header.encode()[..], &wire[..HEADER_LEN]);
    }
}

#[test]
fn payload_accessors() {
    let hit = query_hit();
    assert_eq!(hit.results[0].sha1(), Some(SHA1_ABC));
    assert_eq!(hit.results[1].sha1(), None);
    assert_eq!(
        hit.qhd(),
        Some(Qhd {
            vendor: *b"GTKG",
            open_data: b"\x1c\x11",
            private_data: b"priv",
        })
    );
    let no_qhd = QueryHit {
        trailer: b"GTKG\x09\x1c".to_vec(),
        ..hit
    };
    assert_eq!(no_qhd.qhd(), None);

    // HUGE among other extensions: separated by 0x1c, any case, a NUL at the end.
    let query = Query {
        min_speed: 0x00c0,
        criteria: vec![],
        extensions: [
            &b"\xc3\x82SCP\x41\x01\x1c"[..],
            b"URN:SHA1:vgmt4nsha2awvor6evyxqugcnsonbwe5\x00",
        ]
        .concat(),
    };
    assert_eq!(query.sha1(), Some(SHA1_ABC));
    assert_eq!(query.flags(), Some(0xc000));
    assert!(query.firewalled());
    let plain = Query {
        min_speed: 0x0040,
        criteria: vec![],
        extensions: b"urn:sha1:".to_vec(),
    };
    assert_eq!(plain.flags(), None);
    assert!(!plain.firewalled());
    assert_eq!(plain.sha1(), None);
}

#[test]
fn deviations_are_recorded_and_canonical_forms_written() {
    // TTL + hops over 7: recorded, re-encoded as it came.
    let wire = [&G[..], b"\x00\x07\x01\x00\x00\x00\x00"].concat();
    let (d, _) = decode_message(&wire).unwrap().unwrap();
    assert_eq!(d.deviations, vec![MessageDeviation::TtlHops { ttl: 7, hops: 1 }]);
    assert_eq!(d.message.encode().unwrap(), wire);

    let cases: Vec<(&[u8], Payload, Vec<MessageDeviation>)> = vec![
        (
            b"\x02\x01\x00\x05\x00\x00\x00\xc8\x00abc",
            Payload::Bye(Bye {
                code: 200,
                message: b"abc".to_vec(),
            }),
            vec![MessageDeviation::Unterminated { field: "bye message" }],
        ),
        (
            b"\x02\x01\x00\x09\x00\x00\x00\xc8\x00abc\x00xyz",
            Payload::Bye(Bye {
                code: 200,
                message: b"abc".to_vec(),
            }),
            vec![MessageDeviation::TrailingBytes { len: 3 }],
        ),
        (
            b"\x80\x01\x00\x05\x00\x00\x00\x00\x00abc",
            Payload::Query(Query {
                min_speed: 0,
                criteria: b"abc".to_vec(),
                extensions: vec![],
            }),
            vec![MessageDeviation::Unterminated {
                field: "query criteria",
            }],
        ),
    ];
    for (tail, payload, deviations) in cases {
        let wire = [&G[..], tail].concat();
        let (d, used) = decode_message(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(d.message, msg(1, 0, payload));
        assert_eq!(d.deviations, deviations);
        let canonical = d.message.encode().unwrap();
        let (again, _) = decode_message(&canonical).unwrap().unwrap();
        assert_eq!(again.message, d.message);
        assert!(again.deviations.is_empty());
    }
}

#[test]
fn short_and_broken_payloads_are_refused() {
    let cases: Vec<(u8, Vec<u8>)> = vec![
        (0x01, vec![0; 13]),
        (0x02, vec![0; 1]),
        (0x40, vec![0; 25]),
        (0x80, vec![0; 1]),
        (0x81, vec![0; 26]),
        // Count 3, two results.
        (
            0x81,
            [
                &b"\x03\xca\x18\x01\x02\x03\x04\x00\x00\x00\x00"[..],
                b"\x01\x00\x00\x00\x01\x00\x00\x00a\x00\x00",
                b"\x02\x00\x00\x00\x01\x00\x00\x00b\x00\x00",
                &S[..],
            ]
            .concat(),
        ),
        // A file name whose only NUL is inside the servent id.
        (
            0x81,
            [
                &b"\x01\xca\x18\x01\x02\x03\x04\x00\x00\x00\x00"[..],
                b"\x01\x00\x00\x00\x01\x00\x00\x00name",
                &G[..],
            ]
            .concat(),
        ),
        // An extension block without its NUL.
        (
            0x81,
            [
                &b"\x01\xca\x18\x01\x02\x03\x04\x00\x00\x00\x00"[..],
                b"\x01\x00\x00\x00\x01\x00\x00\x00a\x00ext",
                &S[..],
            ]
            .concat(),
        ),
    ];
    for (kind, payload) in cases {
        let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
        let wire = [&G[..], &[kind, 1, 0], &len[..], &payload].concat();
        assert!(
            matches!(decode_message(&wire), Err(MessageError::BadPayload { .. })),
            "{kind:#x} {payload:?}"
        );
    }
    // A QueryHit with zero results and no trailer is the smallest one.
    let wire = [
        &G[..],
        b"\x81\x01\x00\x1b\x00\x00\x00",
        b"\x00\xca\x18\x01\x02\x03\x04\x00\x00\x00\x00",
        &S[..],
    ]
    .concat();
    let (d, _) = decode_message(&wire).unwrap().unwrap();
    let Payload::QueryHit(hit) = d.message.payload else {
        panic!("not a query hit");
    };
    assert!(hit.results.is_empty() && hit.trailer.is_empty());
}

#[test]
fn payload_length_is_checked_before_the_payload_arrives() {
    let wire = [&G[..], b"\x80\x01\x00\xff\xff\xff\xff"].concat();
    assert_eq!(
        decode_message(&wire),
        Err(MessageError::TooLong {
            len: u32::MAX,
            max: 64 << 10
        })
    );
    let limits = MessageLimits { max_payload: 16 };
    let at = |len: u8| [&G[..], &[0x80, 1, 0, len, 0, 0, 0]].concat();
    assert_eq!(decode_message_with(&at(16), limits), Ok(None));
    assert_eq!(
        decode_message_with(&at(17), limits),
        Err(MessageError::TooLong { len: 17, max: 16 })
    );
    // The streaming decoder refuses it with 23 bytes buffered, and keeps refusing.
    let mut dec = MessageDecoder::new();
    dec.feed(&wire);
    assert!(dec.next_message().is_err());
    assert_eq!(dec.buffered(), HEADER_LEN);
    assert!(dec.next_message().is_err());
}

#[test]
fn invalid_messages_are_not_encoded() {
    let nul_name = QueryHit {
        results: vec![HitResult {
            file_index: 0,
            file_size: 0,
            name: b"a\0b".to_vec(),
            extensions: vec![],
        }],
        ..query_hit()
    };
    let too_many = QueryHit {
        results: vec![query_hit().results[1].clone(); 256],
        ..query_hit()
    };
    let cases = [
        (
            Payload::Bye(Bye {
                code: 200,
                message: b"a\0".to_vec(),
            }),
            EncodeError::InteriorNul { field: "bye message" },
        ),
        (
            Payload::Query(Query {
                min_speed: 0,
                criteria: b"\0".to_vec(),
                extensions: vec![],
            }),
            EncodeError::InteriorNul {
                field: "query criteria",
            },
        ),
        (
            Payload::QueryHit(nul_name),
            EncodeError::InteriorNul { field: "file name" },
        ),
        (Payload::QueryHit(too_many), EncodeError::TooManyResults(256)),
        (
            Payload::Unknown {
                kind: 0x80,
                payload: vec![],
            },
            EncodeError::KnownKindAsUnknown(0x80),
        ),
    ];
    for (payload, err) in cases {
        let mut out = b"kept".to_vec();
        assert_eq!(msg(1, 0, payload).encode_into(&mut out), Err(err));
        assert_eq!(out, b"kept");
    }
}

#[test]
fn streaming_decoder_byte_by_byte() {
    let msgs = vec![
        msg(1, 0, Payload::Ping { extensions: vec![] }),
        msg(5, 2, Payload::QueryHit(query_hit())),
        msg(
            1,
            0,
            Payload::Bye(Bye {
                code: 502,
                message: b"Send queue full".to_vec(),
            }),
        ),
    ];
    let wire: Vec<u8> = msgs.iter().flat_map(|m| m.encode().unwrap()).collect();
    let mut dec = MessageDecoder::new();
    let mut got = Vec::new();
    for b in wire {
        dec.feed(&[b]);
        while let Some(d) = dec.next_message().unwrap() {
            got.push(d.message);
        }
    }
    assert_eq!(got, msgs);
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn streaming_decoder_takes_a_burst_in_one_feed() {
    let ping = msg(1, 0, Payload::Ping { extensions: vec![] }).encode().unwrap();
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 10_000 + 5).collect();
    let mut dec = MessageDecoder::new();
    dec.feed(&burst);
    let mut n = 0;
    while let Some(d) = dec.next_message().unwrap() {
        assert_eq!(d.message.payload, Payload::Ping { extensions: vec![] });
        n += 1;
    }
    assert_eq!(n, 10_000);
    assert_eq!(dec.buffered(), 5);
    dec.feed(&ping[5..]);
    assert!(dec.next_message().unwrap().is_some());
    assert_eq!(dec.buffered(), 0);
}

// ---------------------------------------------------------------- properties

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn arb_text(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..max)
}

fn arb_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    let result = (any::<u32>(), any::<u32>(), arb_text(16), arb_text(16)).prop_map(
        |(file_index, file_size, name, extensions)| HitResult {
            file_index,
            file_size,
            name,
            extensions,
        },
    );
    prop_oneof![
        arb_bytes(16).prop_map(|extensions| Payload::Ping { extensions }),
        (any::<u16>(), arb_ipv4(), any::<u32>(), any::<u32>(), arb_bytes(16)).prop_map(
            |(port, ip, files, kbytes, extensions)| Payload::Pong(Pong {
                port,
                ip,
                files,
                kbytes,
                extensions
            })
        ),
        (any::<u16>(), arb_text(32)).prop_map(|(code, message)| Payload::Bye(Bye { code, message })),
        (any::<[u8; 16]>(), any::<u32>(), arb_ipv4(), any::<u16>(), arb_bytes(16)).prop_map(
            |(id, file_index, ip, port, extensions)| Payload::Push(Push {
                servent_id: Guid(id),
                file_index,
                ip,
                port,
                extensions
            })
        ),
        (any::<u16>(), arb_text(32), arb_bytes(32)).prop_map(|(min_speed, criteria, extensions)| {
            Payload::Query(Query {
                min_speed,
                criteria,
                extensions,
            })
        }),
        (
            any::<u16>(),
            arb_ipv4(),
            any::<u32>(),
            proptest::collection::vec(result, 0..4),
            arb_bytes(16),
            any::<[u8; 16]>()
        )
            .prop_map(|(port, ip, speed, results, trailer, id)| Payload::QueryHit(QueryHit {
                port,
                ip,
                speed,
                results,
                trailer,
                servent_id: Guid(id),
            })),
        (any::<u8>(), arb_bytes(32))
            .prop_filter("a known type", |(kind, _)| {
                ![0x00, 0x01, 0x02, 0x40, 0x80, 0x81].contains(kind)
            })
            .prop_map(|(kind, payload)| Payload::Unknown { kind, payload }),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    (any::<[u8; 16]>(), any::<u8>(), any::<u8>(), arb_payload()).prop_map(|(g, ttl, hops, payload)| Message {
        guid: Guid(g),
        ttl,
        hops,
        payload,
    })
}

/// What the one-shot decoder makes of a whole stream: the messages, then `None` (incomplete
/// tail) or the error that stopped it.
type StreamOutcome = (Vec<DecodedMessage>, Option<MessageError>);

fn one_shot_stream(wire: &[u8], limits: MessageLimits) -> StreamOutcome {
    let mut rest = wire;
    let mut out = Vec::new();
    loop {
        match decode_message_with(rest, limits) {
            Ok(Some((d, used))) => {
                out.push(d);
                rest = &rest[used..];
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn chunked_stream(wire: &[u8], cuts: &[usize], limits: MessageLimits) -> StreamOutcome {
    let mut dec = MessageDecoder::with_limits(limits);
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.push(wire.len());
    cuts.sort_unstable();
    let mut from = 0;
    for to in cuts {
        dec.feed(&wire[from..to]);
        from = to;
        loop {
            match dec.next_message() {
                Ok(Some(d)) => out.push(d),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// Deviations other than the TTL one change the bytes on re-encoding.
fn only_ttl(deviations: &[MessageDeviation]) -> bool {
    deviations.iter().all(|d| matches!(d, MessageDeviation::TtlHops { .. }))
}

fn arb_token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}".prop_map(|s| s.trim_matches([' ', '\t']).to_owned()),
        "\\PC{0,12}".prop_map(|s| s.trim_matches([' ', '\t']).to_owned()),
        Just("v\r".to_owned()),
        Just(String::new()),
    ]
}

fn arb_handshake() -> impl Strategy<Value = Handshake> {
    let start = prop_oneof![
        "[0-9.]{1,4}".prop_map(|version| StartLine::Connect { version }),
        ("[0-9.]{1,4}", 0u16..1000, "[ -~]{0,16}").prop_map(|(version, code, reason)| StartLine::Response {
            version,
            code,
            reason
        }),
    ];
    (start, proptest::collection::vec((arb_token(), arb_value()), 0..8)).prop_map(|(start, fields)| {
        let mut headers = Headers::new();
        for (name, value) in fields {
            headers.set(&name, &value);
        }
        Handshake { start, headers }
    })
}

/// Bytes shaped like a header block (a start line, header-like lines with either line end,
/// maybe the blank line, maybe more), with noise, so that every outcome is reached.
fn arb_handshake_bytes() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        4 => Just(b"GNUTELLA CONNECT/0.6".to_vec()),
        4 => Just(b"GNUTELLA/0.6 200 OK".to_vec()),
        1 => Just(b"GNUTELLA/0.6 503".to_vec()),
        1 => arb_bytes(8),
    ];
    let content = prop_oneof![
        Just(b"Peers: 1.2.3.4:6346, [::1]:1".to_vec()),
        Just(b"User-Agent: x".to_vec()),
        Just(b"x-try:1.1.1.1:1 2004-12-18T23:47Z".to_vec()),
        Just(b" folded".to_vec()),
        Just(b"\tmore\r".to_vec()),
        Just(b"no colon".to_vec()),
        Just(b"Caf\xe9: \xff".to_vec()),
        Just([&b"Leaves: "[..], &[b'9'; 40]].concat()),
        arb_bytes(12),
    ];
    let end = prop_oneof![4 => Just(&b"\r\n"[..]), 1 => Just(&b"\n"[..])];
    let line = (content, end.clone()).prop_map(|(c, e)| [&c[..], e].concat());
    (
        start,
        end.clone(),
        proptest::collection::vec(line, 0..7),
        proptest::option::of(end),
        arb_bytes(8),
    )
        .prop_map(|(start, start_end, lines, blank, tail)| {
            let mut out = [&start[..], start_end].concat();
            out.extend(lines.concat());
            if let Some(blank) = blank {
                out.extend_from_slice(blank);
            }
            out.extend(tail);
            out
        })
}

/// Bytes shaped like a descriptor: a header whose length matches (or nearly) a payload of a
/// known type most of the time.
fn arb_descriptor_bytes() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just(0x00u8),
        Just(0x01),
        Just(0x02),
        Just(0x40),
        Just(0x80),
        Just(0x81),
        any::<u8>()
    ];
    (
        any::<[u8; 16]>(),
        kind,
        any::<u8>(),
        any::<u8>(),
        arb_bytes(80),
        -2i32..=2,
        arb_bytes(30),
    )
        .prop_map(|(guid, kind, ttl, hops, payload, skew, tail)| {
            let len = u32::try_from(payload.len()).unwrap().saturating_add_signed(skew);
            [&guid[..], &[kind, ttl, hops], &len.to_le_bytes(), &payload, &tail].concat()
        })
}

fn small_handshake_limits() -> HandshakeLimits {
    HandshakeLimits {
        max_block: 160,
        max_line: 40,
        max_headers: 4,
    }
}

fn arb_sockaddr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (arb_ipv4(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in arb_message()) {
        let wire = m.encode().unwrap();
        let (d, used) = decode_message(&wire).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(&d.message, &m);
        let expected = if u16::from(m.ttl) + u16::from(m.hops) > 7 {
            vec![MessageDeviation::TtlHops { ttl: m.ttl, hops: m.hops }]
        } else {
            vec![]
        };
        prop_assert_eq!(d.deviations, expected);
    }

    #[test]
    fn any_split_of_a_stream_gives_the_same_messages(
        msgs in proptest::collection::vec(arb_message(), 0..6),
        tail in prop_oneof![arb_descriptor_bytes(), arb_bytes(40)],
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut wire: Vec<u8> = msgs.iter().flat_map(|m| m.encode().unwrap()).collect();
        wire.extend_from_slice(&tail);
        let limits = MessageLimits { max_payload: 512 };
        let whole = one_shot_stream(&wire, limits);
        prop_assert!(whole.0.len() >= msgs.len());
        prop_assert_eq!(chunked_stream(&wire, &cuts, limits), whole);
    }

    #[test]
    fn message_decoder_never_panics(input in prop_oneof![arb_descriptor_bytes(), arb_bytes(300)]) {
        let limits = MessageLimits { max_payload: 256 };
        if let Ok(Some((d, used))) = decode_message_with(&input, limits) {
            prop_assert!(used <= input.len());
            let wire = d.message.encode().unwrap();
            if only_ttl(&d.deviations) {
                prop_assert_eq!(&wire[..], &input[..used]);
            }
            // The canonical form of an unterminated field is one byte longer.
            let any_length = MessageLimits { max_payload: u32::MAX };
            let (again, _) = decode_message_with(&wire, any_length).unwrap().unwrap();
            prop_assert!(only_ttl(&again.deviations));
            prop_assert_eq!(again.message, d.message);
        }
    }

    #[test]
    fn handshakes_round_trip(h in arb_handshake()) {
        let wire = h.encode().unwrap();
        let (d, used) = decode_handshake(&wire).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert!(d.deviations.is_empty(), "{:?}", d.deviations);
        prop_assert_eq!(d.handshake, h);
    }

    #[test]
    fn any_split_of_a_handshake_gives_the_same_result(
        input in arb_handshake_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let limits = small_handshake_limits();
        let whole = decode_handshake_with(&input, limits);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut dec = HandshakeDecoder::with_limits(limits);
        let mut from = 0;
        let mut got = Ok(None);
        for to in cuts {
            dec.feed(&input[from..to]);
            from = to;
            got = dec.next_handshake();
            if !matches!(got, Ok(None)) {
                break;
            }
        }
        match (whole, got) {
            (Ok(Some((a, used))), Ok(Some(b))) => {
                prop_assert_eq!(a, b);
                dec.feed(&input[from..]);
                prop_assert_eq!(dec.take_buffered(), &input[used..]);
            }
            (Ok(None), Ok(None)) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "one-shot {:?}, incremental {:?}", a, b),
        }
    }

    #[test]
    fn handshake_decoder_never_panics(input in prop_oneof![arb_handshake_bytes(), arb_bytes(200)]) {
        for limits in [small_handshake_limits(), HandshakeLimits::default()] {
            if let Ok(Some((d, used))) = decode_handshake_with(&input, limits) {
                prop_assert!(used <= input.len() && used <= limits.max_block);
                // The canonical form joins repeated and folded headers onto one line, which may
                // be longer than the limits the original passed.
                let wire = d.handshake.encode().unwrap();
                let unlimited = HandshakeLimits { max_block: usize::MAX, max_line: usize::MAX, max_headers: usize::MAX };
                let (again, _) = decode_handshake_with(&wire, unlimited).unwrap().unwrap();
                prop_assert!(again.deviations.is_empty());
                prop_assert_eq!(&again.handshake, &d.handshake);
                prop_assert_eq!(again.handshake.encode().unwrap(), wire);
            }
        }
    }

    #[test]
    fn crawler_replies_round_trip(
        user_agent in "[!-~]([ -~]{0,16}[!-~])?",
        ultrapeer in any::<bool>(),
        peers in proptest::collection::vec(arb_sockaddr(), 0..6),
        leaves in proptest::collection::vec(arb_sockaddr(), 0..6),
    ) {
        let reply = CrawlerReply { user_agent, ultrapeer, peers, leaves };
        let wire = Handshake::crawler_reply(&reply).encode().unwrap();
        let (d, _) = decode_handshake(&wire).unwrap().unwrap();
        let h = &d.handshake.headers;
        prop_assert_eq!(d.handshake.status(), Some(200));
        prop_assert_eq!(h.user_agent(), Some(reply.user_agent.as_str()));
        prop_assert_eq!(h.ultrapeer(), Some(reply.ultrapeer));
        let got_peers = h.peers().unwrap();
        prop_assert!(got_peers.bad.is_empty());
        prop_assert_eq!(got_peers.addrs(), reply.peers);
        if reply.ultrapeer {
            prop_assert_eq!(h.leaves().unwrap().addrs(), reply.leaves);
        } else {
            prop_assert_eq!(h.leaves(), None);
        }
    }
}
