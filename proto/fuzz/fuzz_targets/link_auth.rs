//! Fuzzes the link handshake's proof: the first cell a relay sends (LINK_AUTH) is parsed and
//! checked against an exporter value; arbitrary bytes must give an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::cell::Cell;
use onionlab_proto::keys::check_link_auth;

fuzz_target!(|data: &[u8]| {
    if let Ok(cell) = Cell::decode(data) {
        let _ = check_link_auth(&cell, &[7u8; 32], None);
        let _ = check_link_auth(&cell, &[7u8; 32], Some(&[1u8; 32]));
    }
});
