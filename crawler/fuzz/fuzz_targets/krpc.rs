//! Fuzzes the KRPC decoder: `krpc::decode` must never panic; an accepted message's canonical
//! encoding decodes to the same message with no deviations and re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::krpc::decode;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = decode(data) else { return };
    let wire = d.message.encode();
    let again = decode(&wire).expect("a canonical encoding decodes");
    assert!(again.deviations.is_empty(), "canonical encoding has deviations: {:?}", again.deviations);
    assert_eq!(again.message, d.message);
    assert_eq!(again.message.encode(), wire);
});
