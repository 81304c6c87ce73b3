//! Fuzzes our BitTorrent peer's `bitfield` reader: the first two bytes give the torrent's
//! piece count, the rest is the payload a remote peer sent. No panic; an accepted bitfield
//! gives back the same payload and never claims a piece past the count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_experiments::swarm::bitfield::Bitfield;

fuzz_target!(|data: &[u8]| {
    let [a, b, payload @ ..] = data else { return };
    let pieces = u32::from(u16::from_be_bytes([*a, *b]));
    let Ok(bitfield) = Bitfield::from_wire(payload, pieces) else { return };
    assert_eq!(bitfield.to_wire(), payload);
    assert!(bitfield.ones().all(|i| i < pieces));
    assert_eq!(bitfield.ones().count() as u32, bitfield.count());
});
