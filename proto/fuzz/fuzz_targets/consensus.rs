//! Fuzzes consensus parsing: `SignedConsensus::decode` must never panic, and whatever it
//! accepts must re-encode (`SignedConsensus::encode`) to the same bytes, which decode to the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::consensus::SignedConsensus;

fuzz_target!(|data: &[u8]| {
    let Ok(sc) = SignedConsensus::decode(data) else { return };
    let wire = sc.encode();
    assert_eq!(wire, data, "encode(decode(b)) != b");
    match SignedConsensus::decode(&wire) {
        Ok(again) => assert_eq!(again, sc, "decode(encode(x)) != x"),
        Err(e) => panic!("re-encoded consensus does not decode: {e}"),
    }
});
