//! Fuzzes magnet-link parsing: `Magnet::parse` must never panic on UTF-8 input, and whatever it
//! accepts formats to a link that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::magnet::Magnet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(m) = Magnet::parse(text) else { return };
    assert_eq!(Magnet::parse(&m.to_string()), Ok(m));
});
