//! Fuzzes the onion consensus view parser: `ConsensusView::parse` must never panic, and an
//! accepted view re-encodes to JSON that parses back to the same view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::onion::ConsensusView;

fuzz_target!(|data: &[u8]| {
    let Ok(view) = ConsensusView::parse(data) else { return };
    let again = ConsensusView::parse(&view.encode()).expect("an encoded view parses");
    assert_eq!(again, view);
});
