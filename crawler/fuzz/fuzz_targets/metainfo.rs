//! Fuzzes `.torrent` parsing: `Metainfo::parse` must never panic, and an accepted file's pieces
//! agree with its total length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::metainfo::Metainfo;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metainfo::parse(data) else { return };
    let pieces = m.info.total_length().div_ceil(m.info.piece_length);
    assert_eq!(pieces, m.info.pieces.len() as u64);
});
