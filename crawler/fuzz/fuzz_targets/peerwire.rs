//! Fuzzes the peer wire codec: no decoder may panic. An accepted message re-encodes to exactly
//! the bytes it used; the streaming decoder fed in two parts yields the same messages as the
//! one-shot decoder; an accepted handshake re-encodes to the input; an accepted BEP 10 handshake
//! or BEP 9 message re-encodes canonically to a payload that decodes to the same value with no
//! deviations and gives the same bytes again; so does an accepted BEP 11 `ut_pex` message, which
//! also never holds more peers than the limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onionlab_crawler::peerwire::{
    ExtHandshake, Handshake, Limits, MAX_PEX_ENTRIES, MessageDecoder, MetadataMessage, PexMessage, decode_message_with,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_message: 4096 };
    let mut rest = data;
    let mut one_shot = Vec::new();
    while let Ok(Some((m, used))) = decode_message_with(rest, limits) {
        assert_eq!(m.encode(), &rest[..used]);
        one_shot.push(m);
        rest = &rest[used..];
    }
    let split = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut dec = MessageDecoder::with_limits(limits);
    let mut streamed = Vec::new();
    for part in [&data[..split], &data[split..]] {
        dec.feed(part);
        while let Ok(Some(m)) = dec.next_message() {
            streamed.push(m);
        }
    }
    assert_eq!(streamed, one_shot);

    if let Ok(h) = Handshake::decode(data) {
        assert_eq!(&h.encode()[..], data);
    }
    if let Ok(d) = ExtHandshake::decode(data) {
        let wire = d.value.encode();
        let again = ExtHandshake::decode(&wire).expect("a canonical handshake decodes");
        assert!(again.deviations.is_empty(), "{:?}", again.deviations);
        assert_eq!(again.value, d.value);
        assert_eq!(again.value.encode(), wire);
    }
    if let Ok(d) = MetadataMessage::decode(data) {
        let wire = d.value.encode();
        let again = MetadataMessage::decode(&wire).expect("a canonical ut_metadata message decodes");
        assert!(again.deviations.is_empty(), "{:?}", again.deviations);
        assert_eq!(again.value, d.value);
        assert_eq!(again.value.encode(), wire);
    }
    if let Ok(d) = PexMessage::decode(data) {
        assert!(d.value.added.len() <= 2 * MAX_PEX_ENTRIES);
        assert!(d.value.dropped.len() <= 2 * MAX_PEX_ENTRIES);
        let wire = d.value.encode();
        let again = PexMessage::decode(&wire).expect("a canonical ut_pex message decodes");
        assert!(again.deviations.is_empty(), "{:?}", again.deviations);
        assert_eq!(again.value, d.value);
        assert_eq!(again.value.encode(), wire);
    }
});
