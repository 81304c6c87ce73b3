//! Fuzzes relay-descriptor parsing: `SignedDescriptor::decode` must never panic, whatever
//! the bytes (signature checking included), and keeps exactly the bytes it accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::descriptor::SignedDescriptor;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = SignedDescriptor::decode(data) {
        assert_eq!(d.raw, data, "an accepted descriptor keeps its exact bytes");
    }
});
