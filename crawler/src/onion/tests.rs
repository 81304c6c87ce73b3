//! Tests of the consensus view reader: what an authority serves, fingerprints, refusals and
//! limits, and the property that any view it reads re-encodes to itself.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

/// A view in exactly the shape `onionlab-dirauth` serves (`directory/src/http.rs`, `json_view`).
const SERVED: &str = r#"{
  "valid_after": 1764700000,
  "fresh_until": 1764700001,
  "valid_until": 1764700003,
  "signed_by": [
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222222222222222222222222222"
  ],
  "served_by": "1111111111111111111111111111111111111111111111111111111111111111",
  "votes_from": ["1111111111111111111111111111111111111111111111111111111111111111"],
  "suspicious_clusters": [{"prefix": "127.0.200.0/24", "new_relays": 6}],
  "relays": [
    {
      "nickname": "relay1",
      "fingerprint": "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",
      "or_address": "127.0.1.1:9001",
      "bandwidth": 1048576,
      "exit_policy": ["accept 127.0.0.0/8:*", "reject private:*", "accept *:*"],
      "family": [],
      "flags": ["Running", "Valid", "Fast", "Guard", "Exit"]
    }
  ],
  "excluded": [
    {
      "nickname": "sybil3",
      "fingerprint": "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
      "or_address": "127.0.200.1:9004",
      "bandwidth": 10485760,
      "exit_policy": ["reject *:*"],
      "family": [],
      "reason": "more than 2 relays on 127.0.200.1",
      "some_future_field": {"ignored": true}
    }
  ]
}"#;

#[test]
fn reads_what_an_authority_serves() {
    let v = ConsensusView::parse(SERVED.as_bytes()).unwrap();
    assert_eq!(
        (v.valid_after, v.fresh_until, v.valid_until),
        (1764700000, 1764700001, 1764700003)
    );
    assert_eq!(v.signed_by.len(), 2);
    assert_eq!(v.served_by, Fingerprint([0x11; 32]));
    assert_eq!(v.relays.len(), 1);
    let r = &v.relays[0];
    assert_eq!(r.nickname, "relay1");
    assert_eq!(r.or_address, "127.0.1.1:9001".parse().unwrap());
    assert_eq!(r.fingerprint.0[0], 0x0a);
    assert_eq!(r.fingerprint.short_id()[19], 0x1d);
    assert_eq!(r.flags, ["Running", "Valid", "Fast", "Guard", "Exit"]);
    assert_eq!(r.reason, None);
    let left = &v.excluded[0];
    assert_eq!(left.fingerprint, Fingerprint([0xff; 32]));
    assert_eq!(left.reason.as_deref(), Some("more than 2 relays on 127.0.200.1"));
    assert_eq!(v.suspicious_clusters[0].new_relays, 6);
    assert_eq!(ConsensusView::parse(&v.encode()).unwrap(), v);
}

#[test]
fn fingerprints_are_64_hex_digits() {
    assert_eq!(Fingerprint::parse(&"aB".repeat(32)), Some(Fingerprint([0xab; 32])));
    assert_eq!(Fingerprint([0xab; 32]).to_string(), "ab".repeat(32));
    for bad in [
        "",
        &"a".repeat(63),
        &"a".repeat(65),
        &format!("{}g", "a".repeat(63)),
        &format!("{}é", "a".repeat(62)),
    ] {
        assert_eq!(Fingerprint::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn refuses_what_is_not_a_view() {
    let malformed = |text: &str| matches!(ConsensusView::parse(text.as_bytes()), Err(ViewError::Malformed(_)));
    assert!(malformed(""));
    assert!(malformed("[]"));
    assert!(malformed(&SERVED.replace("0a0b0c", "zz0b0c")));
    assert!(malformed(&SERVED.replace("127.0.1.1:9001", "127.0.1.1")));
    assert!(malformed(&SERVED.replace("1048576", "-1")));
    assert!(malformed(&SERVED.replace("\"relays\"", "\"relayz\"")));
    assert!(malformed(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))));
    let e = ConsensusView::parse(b"{\n  \"valid_after\": x").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");

    let late = SERVED.replace("1764700003", "1764699999");
    assert!(matches!(
        ConsensusView::parse(late.as_bytes()),
        Err(ViewError::TimesOutOfOrder { .. })
    ));

    let mut v = ConsensusView::parse(SERVED.as_bytes()).unwrap();
    v.relays.push(v.relays[0].clone());
    assert_eq!(
        ConsensusView::parse(&v.encode()),
        Err(ViewError::Duplicate(v.relays[0].fingerprint))
    );
    v.relays.truncate(1);
    v.excluded = vec![v.excluded[0].clone(); MAX_RELAYS];
    assert_eq!(
        ConsensusView::parse(&v.encode()),
        Err(ViewError::TooManyRelays(MAX_RELAYS + 1))
    );
    assert_eq!(
        ConsensusView::parse(&vec![b' '; MAX_VIEW_LEN + 1]),
        Err(ViewError::TooLong(MAX_VIEW_LEN + 1))
    );
}

fn arb_fingerprint() -> impl Strategy<Value = Fingerprint> {
    any::<[u8; 32]>().prop_map(Fingerprint)
}

fn arb_relay() -> impl Strategy<Value = Relay> {
    (
        ".{0,12}",
        arb_fingerprint(),
        // An address's text form has no IPv6 flow label or scope id, so none are generated.
        any::<(IpAddr, u16)>().prop_map(SocketAddr::from),
        any::<u64>(),
        prop::collection::vec(".{0,16}", 0..3),
        prop::collection::vec(arb_fingerprint(), 0..2),
        prop::collection::vec("[A-Za-z]{1,8}", 0..4),
        prop::option::of(".{0,20}"),
    )
        .prop_map(
            |(nickname, fingerprint, or_address, bandwidth, exit_policy, family, flags, reason)| Relay {
                nickname,
                fingerprint,
                or_address,
                bandwidth,
                exit_policy,
                family,
                flags,
                reason,
            },
        )
}

fn arb_view() -> impl Strategy<Value = ConsensusView> {
    (
        any::<[u32; 3]>(),
        prop::collection::vec(arb_fingerprint(), 0..3),
        arb_fingerprint(),
        prop::collection::vec((".{0,10}", any::<u64>()), 0..2),
        prop::collection::vec(arb_relay(), 0..6),
        prop::collection::vec(arb_relay(), 0..3),
    )
        .prop_map(|(mut times, signed_by, served_by, clusters, mut relays, excluded)| {
            times.sort_unstable();
            let mut seen = BTreeSet::new();
            relays.retain(|r| seen.insert(r.fingerprint));
            ConsensusView {
                valid_after: times[0].into(),
                fresh_until: times[1].into(),
                valid_until: times[2].into(),
                votes_from: signed_by.clone(),
                signed_by,
                served_by,
                suspicious_clusters: clusters
                    .into_iter()
                    .map(|(prefix, new_relays)| ClusterAlert { prefix, new_relays })
                    .collect(),
                relays,
                excluded,
            }
        })
}

proptest! {
    #[test]
    fn views_round_trip(v in arb_view()) {
        prop_assert_eq!(ConsensusView::parse(&v.encode()), Ok(v));
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ConsensusView::parse(&bytes);
    }

    #[test]
    fn mangled_views_never_panic(v in arb_view(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut wire = v.encode();
        let i = at.index(wire.len());
        wire[i] = byte;
        let _ = ConsensusView::parse(&wire);
    }
}
