//! Fuzzes the Gnutella crawler's answer decoder (`gnutella::snapshot::CrawlerAnswer::decode`,
//! what a crawled servent's response block is read into, with its `Peers`, `Leaves` and
//! `X-Try-Ultrapeers` lists): no panic, and the role it derives is the one its headers claim.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::gnutella::HandshakeLimits;
use onionlab_crawler::gnutella::snapshot::{CrawlerAnswer, Role};

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = CrawlerAnswer::decode(data, HandshakeLimits::default()) else { return };
    let role = answer.role();
    match answer.ultrapeer {
        Some(true) => assert_eq!(role, Role::Ultrapeer),
        Some(false) => assert_eq!(role, Role::Leaf),
        None => assert_eq!(role == Role::Ultrapeer, answer.leaves.is_some()),
    }
});
