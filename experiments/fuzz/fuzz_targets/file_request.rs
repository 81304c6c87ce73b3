//! Fuzzes the Gnutella testbed's download-request parser (`GET /get/<i>/<name>` and
//! `GET /uri-res/N2R?urn:sha1:...`, the head a servent reads from any peer): no panic, and an
//! accepted request's own path parses back to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_experiments::gnutella::files::parse_request;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_request(data) else { return };
    let head = format!("GET {} HTTP/1.1\r\n\r\n", request.path());
    assert_eq!(parse_request(head.as_bytes()), Ok(request));
});
