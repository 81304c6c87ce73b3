//! Fuzzes HTTP tracker reply parsing: `AnnounceResponse::parse` and `ScrapeResponse::parse` must
//! never panic, and an accepted reply re-encodes to one that parses back to the same value
//! (deviations aside). The tracker's side too: `AnnounceRequest::parse_target` (the request
//! target an announce arrives with) and `percent_decode` must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::tracker::http::{AnnounceRequest, AnnounceResponse, Reply, ScrapeResponse, percent_decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = AnnounceRequest::parse_target(text);
        let _ = percent_decode(text, true);
    }
    match AnnounceResponse::parse(data) {
        Ok(Reply::Ok(mut r)) => {
            r.deviations.clear();
            // The compact form lists IPv4 before IPv6; dictionary peers keep their order.
            let Ok(Reply::Ok(mut again)) = AnnounceResponse::parse(&r.encode()) else {
                panic!("re-encoded announce reply refused")
            };
            assert!(again.deviations.is_empty());
            again.deviations.clear();
            let key = |p: &onionlab_crawler::tracker::http::Peer| format!("{p:?}");
            let mut a: Vec<_> = r.peers.iter().map(key).collect();
            let mut b: Vec<_> = again.peers.iter().map(key).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b);
            r.peers.clear();
            again.peers.clear();
            assert_eq!(r, again);
        }
        Ok(Reply::Failure(f)) => assert!(matches!(AnnounceResponse::parse(&f.encode()), Ok(Reply::Failure(_)))),
        Err(_) => {}
    }
    if let Ok(Reply::Ok(r)) = ScrapeResponse::parse(data) {
        let Ok(Reply::Ok(again)) = ScrapeResponse::parse(&r.encode()) else {
            panic!("re-encoded scrape reply refused")
        };
        assert!(again.deviations.is_empty());
        assert!(again.files.len() <= r.files.len());
    }
});
