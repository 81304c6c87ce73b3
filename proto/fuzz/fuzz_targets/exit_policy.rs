//! Fuzzes exit-policy rule parsing: `str::parse::<PolicyRule>` must never panic on UTF-8
//! input, and a rule it accepts must print (`Display`) as text that parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_proto::exit_policy::PolicyRule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rule) = text.parse::<PolicyRule>() else { return };
    let shown = rule.to_string();
    match shown.parse::<PolicyRule>() {
        Ok(again) => assert_eq!(again, rule, "{text:?} -> {shown:?} parses differently"),
        Err(e) => panic!("{text:?} -> {shown:?} does not parse: {e}"),
    }
});
