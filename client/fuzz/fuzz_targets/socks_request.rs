//! Fuzzes the SOCKS5 request decoder: `decode_request` must never panic, must ask for more
//! bytes only beyond what it has, and whatever it accepts must re-encode (`encode_request`)
//! to the bytes it used (the reserved byte aside). `decode_reply` must never panic, and what
//! it accepts must survive `encode_reply`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_client::socks_codec::{Decoded, decode_reply, decode_request, encode_reply, encode_request};

fuzz_target!(|data: &[u8]| {
    match decode_request(data) {
        Ok(Decoded::Request(req, used)) => {
            assert!(used <= data.len());
            let again = encode_request(&req).expect("a decoded request re-encodes");
            // Equal but for the reserved byte, which is ignored on input and 0 on output.
            assert_eq!(again.len(), used);
            assert_eq!(
                (&again[..2], &again[3..]),
                (&data[..2], &data[3..used]),
                "encode(decode(x)) != x"
            );
        }
        Ok(Decoded::NeedMore(n)) => assert!(n > data.len(), "asked for {n} bytes with {} in hand", data.len()),
        Err(_) => {}
    }
    if let Some((reply, bound, used)) = decode_reply(data) {
        assert!(used <= data.len());
        assert_eq!(decode_reply(&encode_reply(reply, bound)), Some((reply, bound, used)));
    }
});
