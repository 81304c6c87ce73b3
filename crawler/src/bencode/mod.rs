//! Bencode (BEP 3), the way real clients send it.
//!
//! [`decode`] parses a borrowed [`Node`] tree: every node knows its exact byte span in the
//! input ([`Node::raw`], [`Node::span`]), so a caller can hash the `info` dictionary exactly as
//! received. [`Node::to_value`] gives an owned [`Value`], whose [`Value::encode`] is the
//! canonical encoding (keys sorted, unique, no leading zeros).
//!
//! # Accepted and recorded vs refused
//!
//! BEP 3 fixes one encoding per value. Real trackers, DHT nodes and peers break that rule in
//! harmless ways; a crawler must record such replies, not drop them. These forms decode and
//! each occurrence is returned as a [`Deviation`] with its byte offset:
//!
//! | form | example | [`DeviationKind`] | meaning taken |
//! |---|---|---|---|
//! | dictionary keys out of order | `d1:bi1e1:ai2ee` | `UnsortedKey` | wire order kept |
//! | the same key twice in a dictionary | `d1:ai1e1:ai2ee` | `DuplicateKey` | **first** occurrence wins ([`Node::get`], [`Node::to_value`]) |
//! | integer with leading zeros | `i03e` | `IntLeadingZero` | 3 |
//! | negative zero | `i-0e` | `NegativeZero` | 0 |
//! | string length with leading zeros | `03:abc` | `LengthLeadingZero` | `abc` |
//! | bytes after the top-level value | `i1e\n` | `TrailingBytes` | ignored (only by [`decode`]; [`decode_prefix`] returns the used length instead) |
//!
//! These are refused with a [`DecodeError`], because no single meaning can be given to them or
//! because they are outside the grammar: empty or sign-only integers (`ie`, `i-e`), a `+` sign or
//! any non-digit in an integer or length, integers outside `i64`, negative or oversized string
//! lengths, dictionary keys that are not byte strings, truncated input, unknown type bytes, and
//! anything beyond the [`Limits`] (nesting depth, input size, node count).
//!
//! Byte strings stay bytes ([`Value::Bytes`]); nothing is assumed to be UTF-8.

mod decode;
mod value;

pub use decode::{Decoded, Node, NodeKind, decode, decode_prefix, decode_prefix_with, decode_with};
pub use value::Value;

use thiserror::Error;

/// Bounds that keep hostile input from exhausting the stack or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries (the top-level value is depth 1).
    pub max_depth: usize,
    /// Largest input accepted, in bytes.
    pub max_input: usize,
    /// Most nodes (integers, strings, lists, dictionaries; keys not counted) in one value.
    pub max_nodes: usize,
}

impl Default for Limits {
    /// 64 levels, 16 MiB, one million nodes: far above any real metainfo, KRPC or tracker reply.
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_input: 16 << 20,
            max_nodes: 1_000_000,
        }
    }
}

/// A non-canonical form that was accepted (see the module docs for the full table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deviation {
    /// Byte offset of the offending item in the input.
    pub offset: usize,
    /// What was non-canonical.
    pub kind: DeviationKind,
}

/// The kinds of [`Deviation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviationKind {
    /// A dictionary key sorted before the key preceding it (offset: the key).
    UnsortedKey,
    /// A dictionary key equal to an earlier key of the same dictionary (offset: the repeat).
    DuplicateKey {
        /// Offset of the first occurrence, which is the one that counts.
        first: usize,
    },
    /// An integer written with leading zeros, like `i03e` (offset: the `i`).
    IntLeadingZero,
    /// `i-0e` (offset: the `i`).
    NegativeZero,
    /// A string length written with leading zeros, like `03:abc` (offset: the first digit).
    LengthLeadingZero,
    /// Bytes after the complete top-level value (offset: the first of them).
    TrailingBytes {
        /// How many bytes followed.
        len: usize,
    },
}

impl std::fmt::Display for Deviation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            DeviationKind::UnsortedKey => write!(f, "unsorted dictionary key at byte {}", self.offset),
            DeviationKind::DuplicateKey { first } => {
                write!(
                    f,
                    "duplicate dictionary key at byte {} (first at byte {first})",
                    self.offset
                )
            }
            DeviationKind::IntLeadingZero => write!(f, "integer with leading zeros at byte {}", self.offset),
            DeviationKind::NegativeZero => write!(f, "negative zero at byte {}", self.offset),
            DeviationKind::LengthLeadingZero => write!(f, "string length with leading zeros at byte {}", self.offset),
            DeviationKind::TrailingBytes { len } => write!(f, "{len} trailing bytes at byte {}", self.offset),
        }
    }
}

/// Why input could not be decoded at all. Every variant names the byte offset where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("input ends inside {what} at byte {offset}")]
    Truncated {
        /// Where the input ended.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A byte that cannot start a value.
    #[error("unexpected byte 0x{byte:02x} at byte {offset}")]
    UnexpectedByte {
        /// Where.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// An integer or length that is not a valid number.
    #[error("invalid number at byte {offset}: {reason}")]
    InvalidNumber {
        /// Where the number starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A dictionary key that is not a byte string.
    #[error("dictionary key at byte {offset} is not a byte string")]
    NonStringKey {
        /// Where the key starts.
        offset: usize,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {max} at byte {offset}")]
    TooDeep {
        /// Where the limit was crossed.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// Input longer than [`Limits::max_input`].
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More nodes than [`Limits::max_nodes`].
    #[error("more than {max} nodes (at byte {offset})")]
    TooManyNodes {
        /// Where the limit was crossed.
        offset: usize,
        /// The limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests;
