//! Metainfo tests: hand-built torrents with hashes computed elsewhere, mktorrent fixtures, and
//! refusals.

use proptest::prelude::*;
use sha1::{Digest, Sha1};

use super::*;
use crate::bencode::Value;

/// 68 bytes of content, 32-byte pieces: three pieces.
const CONTENT: &[u8] = b"onionlabonionlabonionlabonionlabonionlabonionlabonionlabonionlabtail";

fn pieces() -> Vec<u8> {
    CONTENT.chunks(32).flat_map(|c| Sha1::digest(c).to_vec()).collect()
}

fn torrent(info: &[u8]) -> Vec<u8> {
    [b"d8:announce22:http://t.example/a/ann4:info".as_slice(), info, b"e"].concat()
}

fn info_bytes(order_name_first: bool) -> Vec<u8> {
    let (a, b): (&[u8], &[u8]) = (b"6:lengthi68e", b"4:name8:file.bin");
    let head = if order_name_first {
        [b, a].concat()
    } else {
        [a, b].concat()
    };
    [
        b"d".as_slice(),
        &head,
        b"12:piece lengthi32e6:pieces60:",
        &pieces(),
        b"e",
    ]
    .concat()
}

#[test]
fn pieces_of_the_known_content_match_python_hashlib() {
    assert_eq!(
        crate::infohash::InfoHash(pieces()[..20].try_into().unwrap()).to_hex(),
        "baf188432f96d4936bd46112c85b6df0643b9579"
    );
}

#[test]
fn single_file_info_hash_matches_an_independent_sha1() {
    let m = Metainfo::parse(&torrent(&info_bytes(false))).unwrap();
    // python3: hashlib.sha1(info_bytes).hexdigest()
    assert_eq!(m.info_hash.to_hex(), "4366acdd149fb946735df802d3f3910a49fa2254");
    assert_eq!(m.info.name, b"file.bin");
    assert_eq!(m.info.piece_length, 32);
    assert_eq!(m.info.pieces.len(), 3);
    assert_eq!(m.info.pieces[2].to_vec(), Sha1::digest(b"tail").to_vec());
    assert_eq!(m.info.layout, Layout::Single { length: 68 });
    assert_eq!(m.info.total_length(), 68);
    assert!(!m.info.private);
    assert_eq!(m.announce.as_deref(), Some("http://t.example/a/ann"));
    assert!(m.announce_list.is_empty());
    assert!(m.deviations.is_empty());
}

#[test]
fn unsorted_info_keeps_the_hash_of_its_raw_bytes() {
    let m = Metainfo::parse(&torrent(&info_bytes(true))).unwrap();
    // python3 over the unsorted bytes; the canonical re-encoding would give 4366acdd…
    assert_eq!(m.info_hash.to_hex(), "d70f797e409c9248b5310fc3a4f40e43d57004a4");
    assert_eq!(m.deviations.len(), 1);
    assert_eq!(m.deviations[0].kind, DeviationKind::UnsortedKey);
}

#[test]
fn mktorrent_fixtures_match_the_python_info_hashes() {
    let expected = include_str!("../../testdata/expected-infohashes.txt");
    let want = |name: &str| {
        expected
            .lines()
            .find_map(|l| l.strip_suffix(name).map(str::trim))
            .unwrap()
            .to_string()
    };

    let single = Metainfo::parse(include_bytes!("../../testdata/single.torrent")).unwrap();
    assert_eq!(single.info_hash.to_hex(), want("single.torrent"));
    assert_eq!(single.info.name, b"a.txt");
    assert_eq!(single.info.layout, Layout::Single { length: 40_000 });
    assert_eq!(single.info.piece_length, 1 << 15);
    assert_eq!(single.info.pieces.len(), 2);
    assert!(single.info.private);

    let multi = Metainfo::parse(include_bytes!("../../testdata/multi.torrent")).unwrap();
    assert_eq!(multi.info_hash.to_hex(), want("multi.torrent"));
    assert_eq!(multi.info.name, b"fixture");
    assert_eq!(
        multi.info.layout,
        Layout::Multi {
            files: vec![
                FileEntry {
                    length: 40_000,
                    path: vec![b"a.txt".to_vec()]
                },
                FileEntry {
                    length: 12_345,
                    path: vec![b"sub".to_vec(), b"b.bin".to_vec()]
                },
            ]
        }
    );
    assert_eq!(multi.info.total_length(), 52_345);
    assert_eq!(multi.info.pieces.len(), 2);
    assert!(!multi.info.private);
    assert_eq!(
        multi.announce_list,
        vec![
            vec!["http://127.0.0.1:6969/announce".to_string()],
            vec!["udp://127.0.0.1:6969".to_string()]
        ]
    );
    assert!(single.deviations.is_empty() && multi.deviations.is_empty());
}

fn info_value(extra: Vec<(&str, Value)>) -> Value {
    let mut entries = vec![
        ("name", Value::bytes("dir")),
        ("piece length", Value::Int(32)),
        ("pieces", Value::Bytes(pieces())),
        ("files", files(&[&["a"], &["b", "c"]], &[60, 8])),
    ];
    entries.extend(extra);
    Value::dict(entries)
}

fn files(paths: &[&[&str]], lengths: &[i64]) -> Value {
    Value::List(
        paths
            .iter()
            .zip(lengths)
            .map(|(p, l)| {
                Value::dict([
                    ("length", Value::Int(*l)),
                    ("path", Value::List(p.iter().map(|c| Value::bytes(*c)).collect())),
                ])
            })
            .collect(),
    )
}

fn parse_info_value(info: Value) -> Result<Metainfo, MetainfoError> {
    Metainfo::parse(&Value::dict([("info", info)]).encode())
}

#[test]
fn multi_file_built_by_the_encoder() {
    let m = parse_info_value(info_value(vec![("private", Value::Int(1))])).unwrap();
    assert!(m.info.private);
    assert_eq!(m.info.total_length(), 68);
    assert_eq!(m.announce, None);
    let info = info_value(vec![("private", Value::Int(1))]).encode();
    assert_eq!(m.info_hash.0.to_vec(), Sha1::digest(&info).to_vec());
}

#[test]
fn unsafe_or_empty_path_components_are_refused() {
    for bad in ["..", ".", "", "a/b", "a\\b", "a\0b"] {
        let info = info_value(vec![("files", files(&[&["ok", bad]], &[68]))]);
        assert!(
            matches!(
                parse_info_value(info),
                Err(MetainfoError::Invalid {
                    field: "info.files.path",
                    ..
                })
            ),
            "component {bad:?}"
        );
        let info = info_value(vec![("name", Value::bytes(bad))]);
        assert!(matches!(
            parse_info_value(info),
            Err(MetainfoError::Invalid { field: "info.name", .. })
        ));
    }
}

#[test]
fn missing_and_invalid_fields_are_named() {
    use MetainfoError::*;
    let without = |key: &str| {
        let Value::Dict(mut m) = info_value(vec![]) else {
            unreachable!()
        };
        m.remove(key.as_bytes());
        parse_info_value(Value::Dict(m))
    };
    assert_eq!(without("name"), Err(Missing("info.name")));
    assert_eq!(without("piece length"), Err(Missing("info.piece length")));
    assert_eq!(without("pieces"), Err(Missing("info.pieces")));
    assert_eq!(without("files"), Err(Missing("info.length or info.files")));
    assert_eq!(Metainfo::parse(b"d1:ai1ee"), Err(Missing("info")));
    assert_eq!(Metainfo::parse(b"le"), Err(invalid("metainfo", "not a dictionary")));
    assert!(matches!(Metainfo::parse(b"d4:info"), Err(Bencode(_))));
    let bad = |extra: Vec<(&str, Value)>| parse_info_value(info_value(extra));
    assert_eq!(
        bad(vec![("piece length", Value::Int(0))]),
        Err(invalid("info.piece length", "zero"))
    );
    assert_eq!(
        bad(vec![("piece length", Value::Int(-32))]),
        Err(invalid("info.piece length", "negative"))
    );
    assert!(matches!(
        bad(vec![("piece length", Value::Int(1 << 40))]),
        Err(TooMany { .. })
    ));
    assert_eq!(
        bad(vec![("pieces", Value::bytes(vec![0; 59]))]),
        Err(invalid("info.pieces", "length is not a multiple of 20"))
    );
    assert_eq!(
        bad(vec![("pieces", Value::bytes(vec![0; 40]))]),
        Err(invalid("info.pieces", "piece count does not match the total length"))
    );
    assert_eq!(
        bad(vec![("length", Value::Int(68))]),
        Err(invalid("info", "both length and files"))
    );
    assert_eq!(
        bad(vec![("files", Value::List(vec![]))]),
        Err(invalid("info.files", "empty"))
    );
    assert_eq!(
        bad(vec![(
            "files",
            files(&[&["a"], &["b"], &["c"]], &[i64::MAX, i64::MAX, i64::MAX])
        )]),
        Err(invalid("info.files", "total length overflows"))
    );
    assert_eq!(
        bad(vec![("files", files(&[&[]], &[68]))]),
        Err(invalid("info.files.path", "empty"))
    );
    assert_eq!(
        bad(vec![("private", Value::bytes("yes"))]),
        Err(invalid("info.private", "not an integer"))
    );
    let limits = MetainfoLimits {
        max_files: 1,
        ..MetainfoLimits::default()
    };
    let wire = Value::dict([("info", info_value(vec![]))]).encode();
    assert_eq!(
        Metainfo::parse_with(&wire, limits),
        Err(TooMany {
            field: "info.files",
            max: 1
        })
    );
    let wire = Value::dict([("announce", Value::bytes(vec![0xff])), ("info", info_value(vec![]))]).encode();
    assert_eq!(Metainfo::parse(&wire), Err(invalid("announce", "not UTF-8")));
}

#[test]
fn repeated_keys_inside_info_or_a_second_info_are_refused() {
    let info = info_bytes(false);
    // `name` repeated inside info.
    let dup = [&info[..info.len() - 1], b"4:name5:other", b"e"].concat();
    assert!(matches!(
        Metainfo::parse(&torrent(&dup)),
        Err(MetainfoError::AmbiguousKey { .. })
    ));
    // A second `info` at the top level.
    let two = [b"d4:info".as_slice(), &info, b"4:info", &info, b"e"].concat();
    assert_eq!(
        Metainfo::parse(&two),
        Err(MetainfoError::AmbiguousKey {
            offset: 7 + info.len() + 6
        })
    );
    // A repeated key elsewhere is only recorded.
    let other = [b"d7:comment1:a7:comment1:b4:info".as_slice(), &info, b"e"].concat();
    let m = Metainfo::parse(&other).unwrap();
    assert!(matches!(m.deviations[0].kind, DeviationKind::DuplicateKey { first: 1 }));
}

#[test]
fn announce_list_drops_empty_tiers_and_refuses_bad_shapes() {
    let with =
        |al: Value| Metainfo::parse(&Value::dict([("announce-list", al), ("info", info_value(vec![]))]).encode());
    let m = with(Value::List(vec![
        Value::List(vec![]),
        Value::List(vec![Value::bytes("udp://x:1")]),
    ]))
    .unwrap();
    assert_eq!(m.announce_list, vec![vec!["udp://x:1".to_string()]]);
    assert_eq!(with(Value::Int(1)), Err(invalid("announce-list", "not a list")));
    assert_eq!(
        with(Value::List(vec![Value::bytes("x")])),
        Err(invalid("announce-list", "tier is not a list"))
    );
}

proptest! {
    #[test]
    fn parse_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metainfo::parse(&input);
    }

    #[test]
    fn parse_never_panics_on_mutated_torrents(at in 0usize..400, byte in any::<u8>()) {
        let mut t = include_bytes!("../../testdata/multi.torrent").to_vec();
        let at = at % t.len();
        t[at] = byte;
        let _ = Metainfo::parse(&t);
    }
}
