//! Fuzzes the bencode decoder: `decode` must never panic; an accepted value's root spans exactly
//! the bytes it used, its canonical re-encoding decodes to the same value with no deviations, and
//! an input without deviations is its own canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::bencode::decode;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = decode(data) else { return };
    assert_eq!(d.root.raw(), &data[..d.used]);
    let value = d.root.to_value();
    let wire = value.encode();
    let again = decode(&wire).expect("a canonical encoding decodes");
    assert!(again.deviations.is_empty(), "canonical encoding has deviations: {:?}", again.deviations);
    assert_eq!(again.root.to_value(), value);
    if d.deviations.is_empty() {
        assert_eq!(wire, data, "an input without deviations is canonical");
    }
});
