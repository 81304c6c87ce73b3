//! Fuzzes the QRP receiver (an ultrapeer rebuilding a leaf's route table from RESET and PATCH
//! messages): the input is split into messages at 0xff bytes and applied in order. No call may
//! panic, and a table, once complete, never exceeds `MAX_TABLE_SLOTS`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::gnutella::qrp::{MAX_TABLE_SLOTS, RouteTableReceiver};

fuzz_target!(|data: &[u8]| {
    let mut rx = RouteTableReceiver::new();
    for message in data.split(|b| *b == 0xff) {
        let _ = rx.apply(message);
    }
    if let Some(t) = rx.table() {
        assert!(t.present() as u64 <= u64::from(MAX_TABLE_SLOTS));
    }
});
