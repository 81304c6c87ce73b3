//! Fuzzes link-cell decoding: `Cell::decode` on the raw input, then the CREATE2 and CREATED2
//! body readers on the decoded payload (and on the raw input, which reaches short bodies).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::cell::{Cell, Create2, Created2};
use onionlab_proto::codec::Reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(cell) = Cell::decode(data) {
        assert_eq!(cell.encode().as_slice(), data, "a decoded cell re-encodes to its input");
        let _ = Create2::read(&mut Reader::new(&cell.payload));
        let _ = Created2::read(&mut Reader::new(&cell.payload));
    }
    let _ = Create2::read(&mut Reader::new(data));
    let _ = Created2::read(&mut Reader::new(data));
});
