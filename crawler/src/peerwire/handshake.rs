//! The BEP 3 handshake: 68 bytes, encoded and decoded as a whole.

use thiserror::Error;

use crate::infohash::InfoHash;

/// The protocol string, preceded on the wire by its length byte 19.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The handshake length: 1 + 19 + 8 + 20 + 20.
pub const HANDSHAKE_LEN: usize = 68;

/// The peer wire handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The 8 reserved bytes, kept verbatim (extension bits other than the two named ones too).
    pub reserved: [u8; 8],
    /// The torrent.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

/// Why 68 bytes are not a handshake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The input is not exactly 68 bytes long.
    #[error("a handshake is {HANDSHAKE_LEN} bytes, got {len}")]
    WrongLength {
        /// The input length.
        len: usize,
    },
    /// The first 20 bytes are not `\x13BitTorrent protocol`.
    #[error("wrong protocol string {0:?}")]
    WrongProtocol(Vec<u8>),
}

impl Handshake {
    /// Reserved byte 5, bit 0x10: the extension protocol (BEP 10).
    pub const EXTENSION_BIT: (usize, u8) = (5, 0x10);
    /// Reserved byte 7, bit 0x01: the DHT (BEP 5).
    pub const DHT_BIT: (usize, u8) = (7, 0x01);

    /// A handshake with all reserved bits clear.
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20]) -> Self {
        Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    /// Whether the sender supports the extension protocol (BEP 10).
    pub fn supports_extensions(&self) -> bool {
        self.reserved[Self::EXTENSION_BIT.0] & Self::EXTENSION_BIT.1 != 0
    }

    /// Whether the sender runs a DHT node (BEP 5).
    pub fn supports_dht(&self) -> bool {
        self.reserved[Self::DHT_BIT.0] & Self::DHT_BIT.1 != 0
    }

    /// Sets or clears the extension-protocol bit.
    pub fn set_extensions(&mut self, on: bool) {
        set_bit(&mut self.reserved, Self::EXTENSION_BIT, on);
    }

    /// Sets or clears the DHT bit.
    pub fn set_dht(&mut self, on: bool) {
        set_bit(&mut self.reserved, Self::DHT_BIT, on);
    }

    /// The 68 wire bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Decodes exactly 68 bytes.
    pub fn decode(input: &[u8]) -> Result<Self, HandshakeError> {
        if input.len() != HANDSHAKE_LEN {
            return Err(HandshakeError::WrongLength { len: input.len() });
        }
        if input[0] != 19 || &input[1..20] != PROTOCOL {
            return Err(HandshakeError::WrongProtocol(input[..20].to_vec()));
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&input[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&input[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&input[48..68]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id,
        })
    }
}

fn set_bit(reserved: &mut [u8; 8], (byte, mask): (usize, u8), on: bool) {
    if on {
        reserved[byte] |= mask;
    } else {
        reserved[byte] &= !mask;
    }
}
