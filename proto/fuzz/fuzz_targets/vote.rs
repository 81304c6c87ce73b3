//! Fuzzes vote parsing: `Vote::decode` must never panic, whatever the bytes (signature
//! checking included); an accepted vote re-encodes under its own key only, so the round trip
//! is checked on the body order instead.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::vote::Vote;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Vote::decode(data) {
        assert!(v.relays.windows(2).all(|w| w[0].info.identity < w[1].info.identity));
    }
});
