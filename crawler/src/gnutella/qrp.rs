//! The Query Routing Protocol (Rohrs, "Query Routing for the Gnutella Network" 1.0; descriptor
//! type 0x30, carried as the codec's [`Payload::Unknown`]): the spec's keyword hash, a leaf's
//! route table, the RESET and PATCH messages that send it, and the ultrapeer's side that
//! rebuilds it and tests queries against it. Pure code; it never touches a socket.
//!
//! ```text
//! RESET  variant=0 table_length[4 LE] infinity[1]
//! PATCH  variant=1 seq_no[1] seq_size[1] compressor[1] entry_bits[1] data...
//! ```
//!
//! Slots hold a distance; `infinity` (7 here) means "no keyword hashes here", and a leaf's own
//! keywords are at distance 1. A PATCH carries signed deltas against the current table, 4 bits
//! each (high nibble first), split over `seq_size` messages. We send patches uncompressed
//! (compressor 0, allowed by the spec) and refuse zlib ones (nobody here sends them). A query
//! is forwarded to a leaf only when every keyword of it (or its `urn:sha1`) hits a present slot.

use super::{Guid, Message, Payload};
use thiserror::Error;

/// The QRP descriptor type.
pub const QRP_KIND: u8 = 0x30;

/// The "no keyword" distance we send in RESET.
pub const INFINITY: u8 = 7;

/// Data bytes per PATCH message (32 KiB of 4-bit entries for a 16-bit table: 8 messages).
const PATCH_CHUNK: usize = 4096;

/// The largest table an ultrapeer accepts (2²⁰ slots, 1 MiB of slot values).
pub const MAX_TABLE_SLOTS: u32 = 1 << 20;

const A_INT: u32 = 0x4F1B_BCDC;

/// The QRP hash of `word` into a table of 2^`bits` slots: bytes lowercased and xored into a
/// 32-bit word four at a time, then multiplied by 0x4F1BBCDC and the top `bits` of the low 32
/// bits kept (LimeWire's `HashFunction`, gtk-gnutella's `qrp_hash`).
pub fn qrp_hash(word: &str, bits: u8) -> u32 {
    let mut xor = 0u32;
    for (j, b) in word.bytes().enumerate() {
        xor ^= u32::from(b.to_ascii_lowercase()) << ((j % 4) * 8);
    }
    if bits == 0 {
        return 0;
    }
    xor.wrapping_mul(A_INT) >> (32 - u32::from(bits.min(32)))
}

/// A route table: one distance per slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    slots: Vec<u8>,
    infinity: u8,
}

impl RouteTable {
    /// An empty table of 2^`bits` slots.
    pub fn empty(bits: u8) -> RouteTable {
        RouteTable {
            slots: vec![INFINITY; 1 << bits],
            infinity: INFINITY,
        }
    }

    /// The table of a leaf sharing files with these keywords (and these `urn:sha1:` strings).
    pub fn of_words<'a>(bits: u8, words: impl IntoIterator<Item = &'a str>) -> RouteTable {
        let mut t = RouteTable::empty(bits);
        for w in words {
            let slot = qrp_hash(w, bits) as usize;
            t.slots[slot] = 1;
        }
        t
    }

    /// log2 of the slot count (the slot count is always a power of two).
    fn bits(&self) -> u8 {
        self.slots.len().trailing_zeros() as u8
    }

    /// Whether `word` hashes to a present slot.
    pub fn contains(&self, word: &str) -> bool {
        self.slots
            .get(qrp_hash(word, self.bits()) as usize)
            .is_some_and(|&d| d < self.infinity)
    }

    /// Whether a query with these keywords (or this URN, which then decides alone) may match.
    pub fn matches(&self, keywords: &[String], urn: Option<&str>) -> bool {
        match urn {
            Some(urn) => self.contains(urn),
            None => !keywords.is_empty() && keywords.iter().all(|k| self.contains(k)),
        }
    }

    /// How many slots are present.
    pub fn present(&self) -> usize {
        self.slots.iter().filter(|&&d| d < self.infinity).count()
    }

    /// The RESET and PATCH descriptors that install this table at an ultrapeer (TTL 1); the
    /// GUIDs come from `guid`.
    pub fn messages(&self, mut guid: impl FnMut() -> Guid) -> Vec<Message> {
        let mut out = Vec::new();
        let mut reset = vec![0u8];
        reset.extend_from_slice(&(self.slots.len() as u32).to_le_bytes());
        reset.push(self.infinity);
        out.push(qrp_message(guid(), reset));
        // Deltas against the all-infinity table RESET leaves, two 4-bit entries per byte.
        let deltas: Vec<u8> = self
            .slots
            .chunks(2)
            .map(|pair| {
                let d = |v: u8| (v.wrapping_sub(self.infinity)) & 0x0f;
                d(pair[0]) << 4 | pair.get(1).map_or(0, |&v| d(v))
            })
            .collect();
        let chunks: Vec<&[u8]> = deltas.chunks(PATCH_CHUNK).collect();
        let seq_size = chunks.len() as u8;
        for (i, chunk) in chunks.iter().enumerate() {
            let mut patch = vec![1u8, i as u8 + 1, seq_size, 0, 4];
            patch.extend_from_slice(chunk);
            out.push(qrp_message(guid(), patch));
        }
        out
    }
}

fn qrp_message(guid: Guid, payload: Vec<u8>) -> Message {
    Message {
        guid,
        ttl: 1,
        hops: 0,
        payload: Payload::Unknown {
            kind: QRP_KIND,
            payload,
        },
    }
}

/// Why a QRP message was refused (the connection is then dropped).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QrpError {
    /// An empty payload, or a variant that is neither RESET (0) nor PATCH (1).
    #[error("not a RESET or PATCH")]
    Variant,
    /// A RESET shorter than 6 bytes, or a PATCH shorter than its 5-byte header.
    #[error("QRP message too short")]
    Short,
    /// A RESET table length that is 0, not a power of two, or over [`MAX_TABLE_SLOTS`].
    #[error("QRP table length {0} refused")]
    TableLength(u32),
    /// A PATCH before any RESET, or out of sequence.
    #[error("QRP patch out of sequence")]
    Sequence,
    /// A compressor other than none, or entry bits other than 4 or 8.
    #[error("QRP patch encoding not supported (compressor {compressor}, {entry_bits} bits)")]
    Encoding {
        /// The compressor byte.
        compressor: u8,
        /// The entry bits.
        entry_bits: u8,
    },
    /// Patch data beyond the table's end.
    #[error("QRP patch runs past the table")]
    Overflow,
}

/// The ultrapeer's copy of one leaf's table, rebuilt from RESET and PATCH messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTableReceiver {
    table: Option<RouteTable>,
    /// The next slot a PATCH of the current sequence writes, and the sequence state.
    next_slot: usize,
    next_seq: u8,
    seq_size: u8,
    /// Whether a whole PATCH sequence has been applied since the last RESET.
    complete: bool,
}

impl RouteTableReceiver {
    /// No table yet: queries are not forwarded to this leaf.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table, once a RESET and a whole PATCH sequence after it arrived.
    pub fn table(&self) -> Option<&RouteTable> {
        self.table.as_ref().filter(|_| self.complete)
    }

    /// Applies one QRP payload.
    pub fn apply(&mut self, payload: &[u8]) -> Result<(), QrpError> {
        match payload.first() {
            Some(0) => {
                let b = payload.get(1..6).ok_or(QrpError::Short)?;
                let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if len == 0 || !len.is_power_of_two() || len > MAX_TABLE_SLOTS {
                    return Err(QrpError::TableLength(len));
                }
                let infinity = b[4];
                self.table = Some(RouteTable {
                    slots: vec![infinity; len as usize],
                    infinity,
                });
                (self.next_slot, self.next_seq, self.seq_size) = (0, 1, 0);
                self.complete = false;
                Ok(())
            }
            Some(1) => {
                let h = payload.get(1..5).ok_or(QrpError::Short)?;
                let (seq_no, seq_size, compressor, entry_bits) = (h[0], h[1], h[2], h[3]);
                let table = self.table.as_mut().ok_or(QrpError::Sequence)?;
                if compressor != 0 || !matches!(entry_bits, 4 | 8) {
                    return Err(QrpError::Encoding { compressor, entry_bits });
                }
                if seq_no == 1 {
                    (self.next_slot, self.next_seq, self.seq_size) = (0, 1, seq_size);
                }
                if seq_no != self.next_seq || seq_size != self.seq_size || seq_size == 0 {
                    return Err(QrpError::Sequence);
                }
                let data = &payload[5..];
                let entries: Vec<i8> = if entry_bits == 8 {
                    data.iter().map(|&b| b as i8).collect()
                } else {
                    data.iter()
                        .flat_map(|&b| [(b as i8) >> 4, ((b << 4) as i8) >> 4])
                        .collect()
                };
                let end = self.next_slot + entries.len();
                // The last 4-bit byte may carry one padding entry past an odd table's end.
                if end > table.slots.len() + usize::from(entry_bits == 4) {
                    return Err(QrpError::Overflow);
                }
                for (slot, delta) in table.slots[self.next_slot..].iter_mut().zip(entries) {
                    *slot = slot.wrapping_add_signed(delta);
                }
                self.next_slot = end.min(table.slots.len());
                self.next_seq = if seq_no == seq_size { 1 } else { seq_no + 1 };
                if seq_no == seq_size {
                    self.seq_size = 0;
                    self.complete = true;
                }
                Ok(())
            }
            _ => Err(QrpError::Variant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_spec_vectors() {
        // LimeWire's HashFunctionTest and gtk-gnutella's qrp_init asserts.
        let vectors: [(&str, u8, u32); 20] = [
            ("", 13, 0),
            ("eb", 13, 6791),
            ("ebc", 13, 7082),
            ("ebck", 13, 6698),
            ("ebckl", 13, 3179),
            ("ebcklm", 13, 3235),
            ("ebcklme", 13, 6438),
            ("ebcklmen", 13, 1062),
            ("ebcklmenq", 13, 3527),
            ("n", 16, 65003),
            ("nd", 16, 54193),
            ("ndf", 16, 4953),
            ("ndfl", 16, 58201),
            ("ndfla", 16, 34830),
            ("ndflal", 16, 36910),
            ("ndflale", 16, 34586),
            ("ndflalem", 16, 37658),
            ("NDFLalem", 16, 37658),
            ("ndflaleme", 16, 45559),
            ("7777a88a8a8a8", 10, 342),
        ];
        for (word, bits, want) in vectors {
            assert_eq!(qrp_hash(word, bits), want, "{word} {bits}");
        }
    }

    fn nth_guid() -> impl FnMut() -> Guid {
        let mut n = 0u8;
        move || {
            n += 1;
            Guid([n; 16])
        }
    }

    #[test]
    fn reset_and_patch_rebuild_the_table_through_the_codec() {
        for bits in [16, 13, 3] {
            let words = ["amber", "river", "dance", "mp3", "urn:sha1:AAAA"];
            let table = RouteTable::of_words(bits, words);
            let mut rx = RouteTableReceiver::new();
            for m in table.messages(nth_guid()) {
                let bytes = m.encode().unwrap();
                let (decoded, _) = crate::gnutella::decode_message(&bytes).unwrap().unwrap();
                let Payload::Unknown {
                    kind: QRP_KIND,
                    payload,
                } = decoded.message.payload
                else {
                    panic!("not QRP");
                };
                rx.apply(&payload).unwrap();
            }
            assert_eq!(rx.table(), Some(&table));
            let t = rx.table().unwrap();
            assert!(t.matches(&["amber".into(), "RIVER".to_lowercase()], None));
            assert!(t.matches(&[], Some("urn:sha1:AAAA")));
            assert!(!t.matches(&[], None));
            if bits == 16 {
                assert!(!t.matches(&["amber".into(), "zephyrless".into()], None));
                assert_eq!(t.present(), 5);
            }
        }
    }

    #[test]
    fn bad_qrp_messages_are_refused() {
        let mut rx = RouteTableReceiver::new();
        assert_eq!(rx.apply(&[]), Err(QrpError::Variant));
        assert_eq!(rx.apply(&[9]), Err(QrpError::Variant));
        assert_eq!(rx.apply(&[1, 1, 1, 0, 4, 0]), Err(QrpError::Sequence));
        assert_eq!(rx.apply(&[0, 1, 2]), Err(QrpError::Short));
        assert_eq!(rx.apply(&[0, 0, 0, 0, 0x10, 7]), Err(QrpError::TableLength(1 << 28)));
        assert_eq!(rx.apply(&[0, 3, 0, 0, 0, 7]), Err(QrpError::TableLength(3)));
        rx.apply(&[0, 4, 0, 0, 0, 7]).unwrap();
        assert!(matches!(rx.apply(&[1, 1, 1, 1, 4, 0]), Err(QrpError::Encoding { .. })));
        assert_eq!(rx.apply(&[1, 2, 2, 0, 4, 0]), Err(QrpError::Sequence));
        assert_eq!(rx.apply(&[1, 1, 1, 0, 4, 0, 0, 0]), Err(QrpError::Overflow));
        rx.apply(&[1, 1, 1, 0, 8, 0xfa, 0, 0, 0]).unwrap();
        assert_eq!(rx.table().unwrap().present(), 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn payload(m: &Message) -> Vec<u8> {
            match &m.payload {
                Payload::Unknown { payload, .. } => payload.clone(),
                other => panic!("not a QRP payload: {other:?}"),
            }
        }

        proptest! {
            /// Whatever bytes arrive, applying them is an error or a table, never a panic, and
            /// a RESET never allocates more than MAX_TABLE_SLOTS.
            #[test]
            fn apply_never_panics(messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
                let mut rx = RouteTableReceiver::new();
                for m in &messages {
                    let _ = rx.apply(m);
                }
                if let Some(t) = rx.table() {
                    prop_assert!(t.slots.len() as u32 <= MAX_TABLE_SLOTS);
                }
            }

            /// The RESET and PATCH messages of a table rebuild exactly that table.
            #[test]
            fn messages_rebuild_the_table(bits in 8u8..=14, words in proptest::collection::vec("[a-z]{1,8}", 0..40)) {
                let table = RouteTable::of_words(bits, words.iter().map(String::as_str));
                let mut rx = RouteTableReceiver::new();
                for m in table.messages(|| Guid([7; 16])) {
                    prop_assert!(rx.apply(&payload(&m)).is_ok());
                }
                prop_assert_eq!(rx.table(), Some(&table));
                for w in &words {
                    prop_assert!(rx.table().is_some_and(|t| t.contains(w)));
                }
            }
        }
    }
}
