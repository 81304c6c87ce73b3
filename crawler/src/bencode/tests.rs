//! Unit and property tests for the bencode decoder and encoder.

use proptest::prelude::*;

use super::*;

fn kinds(input: &[u8]) -> Vec<(usize, DeviationKind)> {
    decode(input)
        .unwrap()
        .deviations
        .iter()
        .map(|d| (d.offset, d.kind))
        .collect()
}

#[test]
fn canonical_values_decode_without_deviations() {
    let d = decode(b"d3:bar4:spam3:fooi42e4:listli-7e0:ee").unwrap();
    assert!(d.deviations.is_empty());
    assert_eq!(d.root.get(b"foo").and_then(Node::as_int), Some(42));
    assert_eq!(d.root.get(b"bar").and_then(Node::as_bytes), Some(&b"spam"[..]));
    let list = d.root.get(b"list").and_then(Node::as_list).unwrap();
    assert_eq!(list[0].as_int(), Some(-7));
    assert_eq!(list[1].as_bytes(), Some(&b""[..]));
    assert_eq!(d.root.to_value().encode(), b"d3:bar4:spam3:fooi42e4:listli-7e0:ee");
}

#[test]
fn raw_span_of_a_dict_value_is_exact_even_when_non_canonical() {
    let input = b"d4:infod1:zi1e1:ai03ee1:xi1ee";
    let d = decode(input).unwrap();
    let info = d.root.get(b"info").unwrap();
    assert_eq!(info.raw(), b"d1:zi1e1:ai03ee");
    assert_eq!(info.span(), 7..22);
    assert_eq!(&input[info.span()], info.raw());
    // The canonical re-encoding differs: hashing it instead of the raw bytes would be wrong.
    assert_ne!(info.to_value().encode(), info.raw());
}

#[test]
fn unsorted_keys_are_recorded() {
    assert_eq!(kinds(b"d1:bi1e1:ai2ee"), vec![(7, DeviationKind::UnsortedKey)]);
    // Relative to the largest key so far, not just the previous one.
    assert_eq!(
        kinds(b"d1:ci1e1:ai2e1:bi3ee"),
        vec![(7, DeviationKind::UnsortedKey), (13, DeviationKind::UnsortedKey)]
    );
}

#[test]
fn duplicate_keys_are_recorded_and_the_first_wins() {
    let d = decode(b"d1:ai1e1:ai2ee").unwrap();
    assert_eq!(
        d.deviations,
        vec![Deviation {
            offset: 7,
            kind: DeviationKind::DuplicateKey { first: 1 }
        }]
    );
    assert_eq!(d.root.get(b"a").and_then(Node::as_int), Some(1));
    assert_eq!(d.root.to_value(), Value::dict([("a", Value::Int(1))]));
    assert_eq!(d.root.as_dict().unwrap().len(), 2, "the wire entries are all kept");
    // A duplicate after the keys went out of order, with a length written with a leading zero.
    assert_eq!(
        kinds(b"d1:bi1e1:ai2e01:bi3ee"),
        vec![
            (7, DeviationKind::UnsortedKey),
            (13, DeviationKind::LengthLeadingZero),
            (13, DeviationKind::DuplicateKey { first: 1 })
        ]
    );
}

#[test]
fn numeric_deviations_are_recorded() {
    assert_eq!(kinds(b"i03e"), vec![(0, DeviationKind::IntLeadingZero)]);
    assert_eq!(kinds(b"i-0e"), vec![(0, DeviationKind::NegativeZero)]);
    assert_eq!(kinds(b"i-00e"), vec![(0, DeviationKind::NegativeZero)]);
    assert_eq!(kinds(b"i-012e"), vec![(0, DeviationKind::IntLeadingZero)]);
    assert_eq!(kinds(b"03:abc"), vec![(0, DeviationKind::LengthLeadingZero)]);
    assert_eq!(decode(b"i-012e").unwrap().root.as_int(), Some(-12));
    assert_eq!(kinds(b"i0e"), vec![]);
    assert_eq!(kinds(b"0:"), vec![]);
}

#[test]
fn trailing_bytes_are_recorded_by_decode_and_measured_by_decode_prefix() {
    assert_eq!(kinds(b"i1e\n"), vec![(3, DeviationKind::TrailingBytes { len: 1 })]);
    let d = decode_prefix(b"d1:ai1eeRAWDATA").unwrap();
    assert_eq!(d.used, 8);
    assert!(d.deviations.is_empty());
}

#[test]
fn extreme_integers() {
    assert_eq!(decode(b"i9223372036854775807e").unwrap().root.as_int(), Some(i64::MAX));
    assert_eq!(decode(b"i-9223372036854775808e").unwrap().root.as_int(), Some(i64::MIN));
    assert!(matches!(
        decode(b"i9223372036854775808e"),
        Err(DecodeError::InvalidNumber { offset: 0, .. })
    ));
    assert!(matches!(
        decode(b"i-9223372036854775809e"),
        Err(DecodeError::InvalidNumber { .. })
    ));
}

#[test]
fn malformed_input_is_refused_with_offsets() {
    use DecodeError::*;
    let cases: &[(&[u8], DecodeError)] = &[
        (
            b"",
            Truncated {
                offset: 0,
                what: "a value",
            },
        ),
        (
            b"ie",
            InvalidNumber {
                offset: 0,
                reason: "no digits",
            },
        ),
        (
            b"i-e",
            InvalidNumber {
                offset: 0,
                reason: "no digits",
            },
        ),
        (
            b"i+1e",
            InvalidNumber {
                offset: 0,
                reason: "not a decimal integer",
            },
        ),
        (
            b"i1",
            Truncated {
                offset: 2,
                what: "an integer",
            },
        ),
        (
            b"5:abc",
            Truncated {
                offset: 5,
                what: "a byte string",
            },
        ),
        (b"-1:a", UnexpectedByte { offset: 0, byte: b'-' }),
        (
            b"1a:x",
            InvalidNumber {
                offset: 0,
                reason: "string length is not a decimal number",
            },
        ),
        (
            b"99999999999999999999999:x",
            InvalidNumber {
                offset: 0,
                reason: "string length out of range",
            },
        ),
        (
            b"l",
            Truncated {
                offset: 1,
                what: "a list",
            },
        ),
        (
            b"d1:a",
            Truncated {
                offset: 4,
                what: "a value",
            },
        ),
        (b"di1ei2ee", NonStringKey { offset: 1 }),
        (b"x", UnexpectedByte { offset: 0, byte: b'x' }),
    ];
    for (input, want) in cases {
        assert_eq!(
            decode(input).unwrap_err(),
            *want,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn limits_are_enforced() {
    let deep = [vec![b'l'; 65], vec![b'e'; 65]].concat();
    assert_eq!(decode(&deep).unwrap_err(), DecodeError::TooDeep { offset: 64, max: 64 });
    let ok = [vec![b'l'; 64], vec![b'e'; 64]].concat();
    assert!(decode(&ok).is_ok());
    let small = Limits {
        max_depth: 2,
        max_input: 8,
        max_nodes: 3,
    };
    assert_eq!(
        decode_with(b"llli1eee", small).unwrap_err(),
        DecodeError::TooDeep { offset: 2, max: 2 }
    );
    assert_eq!(
        decode_with(b"li1ei2ei3ee", small).unwrap_err(),
        DecodeError::TooLarge { len: 11, max: 8 }
    );
    assert_eq!(decode_with(b"li1ei2ee", small).map(|d| d.used), Ok(8));
    assert_eq!(
        decode_with(b"l0:0:0:e", small).unwrap_err(),
        DecodeError::TooManyNodes { offset: 5, max: 3 }
    );
    // A hostile length is checked against the input before anything is allocated.
    assert!(matches!(
        decode(b"18446744073709551615:"),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn many_unsorted_keys_decode_in_reasonable_time() {
    let mut input = b"d".to_vec();
    for i in (0..100_000u32).rev() {
        let key = format!("{i:08}");
        input.extend_from_slice(format!("8:{key}i0e").as_bytes());
    }
    input.push(b'e');
    let d = decode(&input).unwrap();
    assert_eq!(d.deviations.len(), 99_999);
}

#[test]
fn deviation_display_names_the_offset() {
    let d = Deviation {
        offset: 9,
        kind: DeviationKind::DuplicateKey { first: 1 },
    };
    assert_eq!(d.to_string(), "duplicate dictionary key at byte 9 (first at byte 1)");
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..6), inner, 0..6)
                .prop_map(Value::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn decode_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&input);
    }

    #[test]
    fn decode_never_panics_on_bencode_like_bytes(
        input in proptest::collection::vec(prop_oneof![Just(b'd'), Just(b'l'), Just(b'i'), Just(b'e'),
            Just(b':'), Just(b'-'), Just(b'0'), Just(b'1'), Just(b'2'), Just(b'9')], 0..128)
    ) {
        if let Ok(d) = decode(&input) {
            prop_assert_eq!(d.root.raw(), &input[..d.used]);
        }
    }

    #[test]
    fn canonical_encoding_round_trips_without_deviations(v in arb_value()) {
        let wire = v.encode();
        let d = decode(&wire).unwrap();
        prop_assert!(d.deviations.is_empty(), "deviations {:?}", d.deviations);
        prop_assert_eq!(d.used, wire.len());
        prop_assert_eq!(d.root.raw(), &wire[..]);
        prop_assert_eq!(d.root.to_value(), v);
    }

    #[test]
    fn reversed_dictionaries_report_unsorted_keys(
        map in proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..6), any::<i64>(), 2..8)
    ) {
        let mut wire = b"d".to_vec();
        for (k, v) in map.iter().rev() {
            Value::Bytes(k.clone()).encode_into(&mut wire);
            Value::Int(*v).encode_into(&mut wire);
        }
        wire.push(b'e');
        let d = decode(&wire).unwrap();
        prop_assert_eq!(d.deviations.len(), map.len() - 1);
        prop_assert!(d.deviations.iter().all(|x| x.kind == DeviationKind::UnsortedKey));
        let want = Value::Dict(map.into_iter().map(|(k, v)| (k, Value::Int(v))).collect());
        prop_assert_eq!(d.root.to_value(), want);
    }

    #[test]
    fn repeated_keys_report_duplicates(
        key in proptest::collection::vec(any::<u8>(), 0..6), a in any::<i64>(), b in any::<i64>()
    ) {
        let k = Value::Bytes(key.clone()).encode();
        let wire = [b"d".as_slice(), &k, &Value::Int(a).encode(), &k, &Value::Int(b).encode(), b"e"].concat();
        let d = decode(&wire).unwrap();
        let second = 1 + k.len() + Value::Int(a).encode().len();
        prop_assert_eq!(d.deviations, vec![Deviation { offset: second, kind: DeviationKind::DuplicateKey { first: 1 } }]);
        prop_assert_eq!(d.root.get(&key).and_then(Node::as_int), Some(a));
    }
}
