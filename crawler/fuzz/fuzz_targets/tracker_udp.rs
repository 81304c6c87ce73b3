//! Fuzzes BEP 15 packet decoding in both directions: `Request::decode` and `Response::decode`
//! must never panic, and whatever they accept encodes to a packet that decodes to the same value
//! (and is a prefix of the input: only fixed-size packets may carry ignored trailing bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::tracker::udp::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let bytes = req.encode();
        assert!(data.starts_with(&bytes));
        assert_eq!(Request::decode(&bytes), Ok(req));
    }
    if let Ok(resp) = Response::decode(data) {
        let bytes = resp.encode();
        assert!(data.starts_with(&bytes));
        assert_eq!(Response::decode(&bytes), Ok(resp));
    }
});
