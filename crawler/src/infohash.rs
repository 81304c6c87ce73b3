//! The BitTorrent v1 info-hash: 20 raw bytes (SHA-1 of the bencoded `info` dictionary), written
//! as 40 hex digits or 32 base32 characters (RFC 4648 alphabet, no padding) in magnet links.

use std::fmt;

use sha1::{Digest, Sha1};
use thiserror::Error;

/// A v1 info-hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHash(pub [u8; 20]);

/// Why a textual info-hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InfoHashError {
    /// Neither 40 (hex) nor 32 (base32) characters.
    #[error("an info-hash has 40 hex or 32 base32 characters, not {0}")]
    Length(usize),
    /// A character outside the alphabet.
    #[error("invalid character {0:?} in an info-hash")]
    Char(char),
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl InfoHash {
    /// SHA-1 of `info_bytes`, which must be the `info` dictionary exactly as received.
    pub fn of_info_bytes(info_bytes: &[u8]) -> Self {
        InfoHash(Sha1::digest(info_bytes).into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Uppercase base32, 32 characters.
    pub fn to_base32(&self) -> String {
        let mut out = String::with_capacity(32);
        // 160 bits = 4 groups of 40 bits = 4 × 8 characters.
        for chunk in self.0.chunks(5) {
            let bits = chunk.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
            for i in (0..8).rev() {
                out.push(char::from(BASE32[((bits >> (i * 5)) & 31) as usize]));
            }
        }
        out
    }

    /// Parses 40 hex digits or 32 base32 characters, either case.
    pub fn parse(text: &str) -> Result<Self, InfoHashError> {
        match text.len() {
            40 => {
                let mut out = [0u8; 20];
                let digits: Vec<u8> = text.chars().map(hex_digit).collect::<Result<_, _>>()?;
                for (o, pair) in out.iter_mut().zip(digits.chunks(2)) {
                    *o = pair[0] << 4 | pair[1];
                }
                Ok(InfoHash(out))
            }
            32 => {
                let mut out = [0u8; 20];
                let values: Vec<u8> = text.chars().map(base32_digit).collect::<Result<_, _>>()?;
                for (o, group) in out.chunks_mut(5).zip(values.chunks(8)) {
                    let bits = group.iter().fold(0u64, |acc, &v| acc << 5 | u64::from(v));
                    for (i, byte) in o.iter_mut().enumerate() {
                        *byte = (bits >> (32 - 8 * i)) as u8;
                    }
                }
                Ok(InfoHash(out))
            }
            n => Err(InfoHashError::Length(n)),
        }
    }
}

fn hex_digit(c: char) -> Result<u8, InfoHashError> {
    c.to_digit(16).map(|d| d as u8).ok_or(InfoHashError::Char(c))
}

fn base32_digit(c: char) -> Result<u8, InfoHashError> {
    match c.to_ascii_uppercase() {
        u @ 'A'..='Z' => Ok(u as u8 - b'A'),
        d @ '2'..='7' => Ok(d as u8 - b'2' + 26),
        _ => Err(InfoHashError::Char(c)),
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl std::str::FromStr for InfoHash {
    type Err = InfoHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InfoHash::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sha1_of_known_bytes() {
        // SHA-1("abc"), FIPS 180 example.
        assert_eq!(
            InfoHash::of_info_bytes(b"abc").to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn hex_and_base32_agree() {
        let h = InfoHash::parse("a9993e364706816aba3e25717850c26c9cd0d89d").unwrap();
        // RFC 4648 base32 of the same 20 bytes (python3 base64.b32encode).
        assert_eq!(h.to_base32(), "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5");
        assert_eq!(InfoHash::parse("vgmt4nsha2awvor6evyxqugcnsonbwe5").unwrap(), h);
        assert_eq!(InfoHash::parse("A9993E364706816ABA3E25717850C26C9CD0D89D").unwrap(), h);
    }

    #[test]
    fn bad_text_is_refused() {
        assert_eq!(InfoHash::parse("abc"), Err(InfoHashError::Length(3)));
        assert_eq!(InfoHash::parse(&"g".repeat(40)), Err(InfoHashError::Char('g')));
        assert_eq!(InfoHash::parse(&"1".repeat(32)), Err(InfoHashError::Char('1')));
        assert_eq!(InfoHash::parse(&"é".repeat(16)), Err(InfoHashError::Char('é')));
    }

    proptest! {
        #[test]
        fn text_forms_round_trip(bytes in any::<[u8; 20]>()) {
            let h = InfoHash(bytes);
            prop_assert_eq!(InfoHash::parse(&h.to_hex()), Ok(h));
            prop_assert_eq!(InfoHash::parse(&h.to_base32()), Ok(h));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,48}") {
            let _ = InfoHash::parse(&s);
        }
    }
}
