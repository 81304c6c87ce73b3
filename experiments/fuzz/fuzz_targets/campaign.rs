//! Fuzzes the campaign schema: `Campaign::parse` (serde-saphyr with its budget, then the
//! schema's own validation) must refuse or read any text without panicking, and a campaign it
//! reads parses again from its own text to the same campaign.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_experiments::campaign::Campaign;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(campaign) = Campaign::parse(text, "fuzz.yaml") else { return };
    let again = Campaign::parse(&campaign.source, "fuzz.yaml").expect("an accepted campaign parses again");
    assert_eq!(again, campaign);
});
