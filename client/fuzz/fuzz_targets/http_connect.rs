//! Fuzzes the HTTP CONNECT request-head parser: `parse_connect` must never panic, and a target
//! it accepts must survive `encode_connect` and a second parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_client::http_connect::{encode_connect, parse_connect};

fuzz_target!(|data: &[u8]| {
    if let Ok(target) = parse_connect(data) {
        assert_eq!(
            parse_connect(&encode_connect(&target)),
            Ok(target),
            "parse(encode(x)) != x"
        );
    }
});
