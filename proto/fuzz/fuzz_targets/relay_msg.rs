//! Fuzzes relay-message decoding: `RelayCell::decode` must never panic, and whatever it
//! accepts must re-encode (`RelayCell::encode`) to a body that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::relay_msg::RelayCell;

fuzz_target!(|data: &[u8]| {
    let Ok(cell) = RelayCell::decode(data) else { return };
    let body = match cell.encode() {
        Ok(body) => body,
        Err(e) => panic!("decoded relay cell does not re-encode: {e} ({cell:?})"),
    };
    match RelayCell::decode(&body) {
        Ok(again) => assert_eq!(again, cell, "decode(encode(x)) != x"),
        Err(e) => panic!("re-encoded relay cell does not decode: {e} ({cell:?})"),
    }
});
