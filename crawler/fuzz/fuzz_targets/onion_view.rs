//! Fuzzes the onion consensus view parser: `ConsensusView::parse` must never panic, and an
//! accepted view re-encodes to JSON that parses back to the same view. (The re-encoding is
//! pretty-printed, so a view accepted just under `MAX_VIEW_LEN` may re-encode past it: the
//! round trip is checked for inputs of up to a quarter of the limit.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::onion::{ConsensusView, MAX_VIEW_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(view) = ConsensusView::parse(data) else { return };
    if data.len() > MAX_VIEW_LEN / 4 {
        return;
    }
    let again = ConsensusView::parse(&view.encode()).expect("an encoded view parses");
    assert_eq!(again, view);
});
