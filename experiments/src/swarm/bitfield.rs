//! Which pieces a peer holds: the BEP 3 `bitfield` (high bit first, one bit per piece, spare
//! bits at the end zero), of a fixed piece count. Reading one from the wire checks its length
//! and its spare bits; setting a bit past the end is refused, never a panic.

use thiserror::Error;

/// A fixed-length set of pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
    count: u32,
}

/// Why bytes are not a bitfield for this torrent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BitfieldError {
    /// Not ⌈pieces / 8⌉ bytes.
    #[error("bitfield of {got} bytes for {pieces} pieces ({want} bytes)")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
        /// The torrent's piece count.
        pieces: u32,
    },
    /// A bit past the last piece is set.
    #[error("bitfield sets spare bits past piece {pieces}")]
    SpareBits {
        /// The torrent's piece count.
        pieces: u32,
    },
}

impl Bitfield {
    /// No piece of `len`.
    pub fn new(len: u32) -> Self {
        Bitfield {
            bits: vec![0; (len as usize).div_ceil(8)],
            len,
            count: 0,
        }
    }

    /// Every piece of `len`.
    pub fn full(len: u32) -> Self {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Reads a `bitfield` payload for a torrent of `len` pieces.
    pub fn from_wire(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let want = (len as usize).div_ceil(8);
        if bytes.len() != want {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                want,
                pieces: len,
            });
        }
        // Below 8 (and computed in u64: `want * 8` passes u32::MAX for the largest `len`).
        let spare = (want as u64 * 8 - u64::from(len)) as u32;
        if let Some(&last) = bytes.last()
            && spare > 0
            && last & ((1u8 << spare) - 1) != 0
        {
            return Err(BitfieldError::SpareBits { pieces: len });
        }
        let count = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bits: bytes.to_vec(),
            len,
            count,
        })
    }

    /// The `bitfield` payload.
    pub fn to_wire(&self) -> Vec<u8> {
        self.bits.clone()
    }

    /// The piece count.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the torrent has no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pieces held.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether every piece is held.
    pub fn is_complete(&self) -> bool {
        self.count == self.len
    }

    /// Whether piece `i` is held (`false` past the end).
    pub fn has(&self, i: u32) -> bool {
        i < self.len && self.bits[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Marks piece `i` held; `false` if it already was or is past the end.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len || self.has(i) {
            return false;
        }
        self.bits[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.count += 1;
        true
    }

    /// Marks piece `i` not held; `false` if it was not.
    pub fn clear(&mut self, i: u32) -> bool {
        if !self.has(i) {
            return false;
        }
        self.bits[(i / 8) as usize] &= !(0x80 >> (i % 8));
        self.count -= 1;
        true
    }

    /// The pieces held, in order.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.has(i))
    }

    /// Whether `other` holds a piece this one lacks.
    pub fn lacks_any_of(&self, other: &Bitfield) -> bool {
        self.bits
            .iter()
            .zip(&other.bits)
            .any(|(mine, theirs)| theirs & !mine != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_checked() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0) && b.set(9) && !b.set(9) && !b.set(10));
        assert_eq!(b.to_wire(), vec![0x80, 0x40]);
        assert_eq!(Bitfield::from_wire(&b.to_wire(), 10), Ok(b.clone()));
        assert_eq!(b.count(), 2);
        assert!(matches!(
            Bitfield::from_wire(&[0x80], 10),
            Err(BitfieldError::WrongLength { .. })
        ));
        assert_eq!(
            Bitfield::from_wire(&[0x80, 0x20], 10),
            Err(BitfieldError::SpareBits { pieces: 10 })
        );
        assert!(Bitfield::full(10).is_complete() && Bitfield::full(16).count() == 16);
        assert!(b.lacks_any_of(&Bitfield::full(10)) && !Bitfield::full(10).lacks_any_of(&b));
        assert!(b.clear(0) && !b.clear(0) && b.ones().eq([9]));
    }

    proptest::proptest! {
        #[test]
        fn any_payload_is_read_or_refused_and_an_accepted_one_round_trips(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            len in 0u32..600,
        ) {
            if let Ok(b) = Bitfield::from_wire(&bytes, len) {
                proptest::prop_assert_eq!(b.to_wire(), bytes);
                proptest::prop_assert_eq!(b.len(), len);
                proptest::prop_assert_eq!(b.ones().count() as u32, b.count());
                proptest::prop_assert!(b.ones().all(|i| i < len));
            }
        }

        #[test]
        fn a_built_bitfield_round_trips(len in 0u32..600, set in proptest::collection::vec(0u32..600, 0..80)) {
            let mut b = Bitfield::new(len);
            for i in set {
                b.set(i);
            }
            proptest::prop_assert_eq!(Bitfield::from_wire(&b.to_wire(), len), Ok(b));
        }
    }

    #[test]
    fn the_largest_piece_count_is_checked_without_overflow() {
        let len = u32::MAX;
        let bytes = vec![0u8; (len as usize).div_ceil(8)];
        assert_eq!(Bitfield::from_wire(&bytes, len).map(|b| b.count()), Ok(0));
    }
}
