//! Fuzzes the Gnutella codecs with the input read as a connection stream: a header block, then
//! descriptors. No decoder may panic. The incremental handshake decoder fed in two parts agrees
//! with the one-shot decoder (block, error, or need-more) and keeps exactly the bytes after the
//! block; an accepted block re-encodes canonically to bytes that decode (without limits: joining
//! repeated and folded headers lengthens lines) to the same block with no deviations, and encode
//! to the same bytes again. Descriptors (after the block, or from the start if there is none): an
//! accepted one re-encodes to exactly the bytes it used unless a deviation other than TTL + hops
//! was recorded, and then its canonical bytes decode to the same message without one; the
//! streaming decoder fed in two parts yields the same messages and stops at the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::gnutella::{
    DecodedHandshake, DecodedMessage, HandshakeDecoder, HandshakeLimits, MessageDecoder, MessageDeviation,
    MessageError, MessageLimits, decode_handshake_with, decode_message_with,
};

const HANDSHAKE_LIMITS: HandshakeLimits = HandshakeLimits {
    max_block: 4096,
    max_line: 512,
    max_headers: 32,
};
const UNLIMITED: HandshakeLimits = HandshakeLimits {
    max_block: usize::MAX,
    max_line: usize::MAX,
    max_headers: usize::MAX,
};
const MESSAGE_LIMITS: MessageLimits = MessageLimits { max_payload: 4096 };
/// The canonical form of an unterminated field is one byte longer than what was accepted.
const ANY_LENGTH: MessageLimits = MessageLimits { max_payload: u32::MAX };

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let descriptors = match handshake(data, split) {
        Some(used) => &data[used..],
        None => data,
    };
    let split = descriptors
        .get(1)
        .map_or(0, |&b| usize::from(b) % (descriptors.len() + 1));
    messages(descriptors, split);
});

/// Checks the handshake decoders on `data`; the length of the accepted block, if any.
fn handshake(data: &[u8], split: usize) -> Option<usize> {
    let one_shot = decode_handshake_with(data, HANDSHAKE_LIMITS);
    let mut dec = HandshakeDecoder::with_limits(HANDSHAKE_LIMITS);
    dec.feed(&data[..split]);
    let mut incremental = dec.next_handshake();
    let mut fed = split;
    if matches!(incremental, Ok(None)) {
        dec.feed(&data[split..]);
        fed = data.len();
        incremental = dec.next_handshake();
    }
    match (one_shot, incremental) {
        (Ok(Some((a, used))), Ok(Some(b))) => {
            assert_eq!(a, b);
            dec.feed(&data[fed..]);
            assert_eq!(dec.take_buffered(), &data[used..]);
            check_block(&a);
            Some(used)
        }
        (Ok(None), Ok(None)) => None,
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            None
        }
        (a, b) => panic!("one-shot {a:?}, incremental {b:?}"),
    }
}

fn check_block(d: &DecodedHandshake) {
    let h = &d.handshake.headers;
    // The typed accessors parse values on demand: none may panic.
    let _ = (
        h.user_agent(),
        h.ultrapeer(),
        h.ultrapeer_needed(),
        h.listen_addr(),
        h.remote_ip(),
    );
    let _ = (h.try_ultrapeers(), h.try_hosts(), h.peers(), h.leaves(), h.crawler());
    let _ = (h.query_routing(), h.accepts_deflate(), h.content_deflate());
    let wire = d.handshake.encode().expect("a decoded block encodes");
    let (again, used) = decode_handshake_with(&wire, UNLIMITED)
        .expect("a canonical block decodes")
        .expect("a canonical block is complete");
    assert_eq!(used, wire.len());
    assert!(again.deviations.is_empty(), "{:?}", again.deviations);
    assert_eq!(again.handshake, d.handshake);
    assert_eq!(again.handshake.encode(), Ok(wire));
}

fn messages(data: &[u8], split: usize) {
    let mut rest = data;
    let mut one_shot = Vec::new();
    let one_shot_end = loop {
        match decode_message_with(rest, MESSAGE_LIMITS) {
            Ok(Some((d, used))) => {
                check_message(&d, &rest[..used]);
                one_shot.push(d);
                rest = &rest[used..];
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let mut dec = MessageDecoder::with_limits(MESSAGE_LIMITS);
    let mut streamed = Vec::new();
    let streamed_end = feed_all(&mut dec, &mut streamed, [&data[..split], &data[split..]]);
    assert_eq!(streamed, one_shot);
    assert_eq!(streamed_end, one_shot_end);
}

fn feed_all(dec: &mut MessageDecoder, out: &mut Vec<DecodedMessage>, parts: [&[u8]; 2]) -> Option<MessageError> {
    for part in parts {
        dec.feed(part);
        loop {
            match dec.next_message() {
                Ok(Some(d)) => out.push(d),
                Ok(None) => break,
                Err(e) => return Some(e),
            }
        }
    }
    None
}

fn check_message(d: &DecodedMessage, used: &[u8]) {
    let only_ttl = |devs: &[MessageDeviation]| devs.iter().all(|d| matches!(d, MessageDeviation::TtlHops { .. }));
    let wire = d.message.encode().expect("a decoded message encodes");
    if only_ttl(&d.deviations) {
        assert_eq!(wire, used);
    }
    let (again, n) = decode_message_with(&wire, ANY_LENGTH)
        .expect("a canonical message decodes")
        .expect("a canonical message is complete");
    assert_eq!(n, wire.len());
    assert!(only_ttl(&again.deviations), "{:?}", again.deviations);
    assert_eq!(again.message, d.message);
}
