//! The BitTorrent peer wire protocol (BEP 3), with the DHT `port` message (BEP 5), the extension
//! protocol (BEP 10), `ut_metadata` (BEP 9) and `ut_pex` (BEP 11), sans I/O: bytes in, values
//! out, and back.
//!
//! - [`Handshake`]: the fixed 68-byte opening (`\x13BitTorrent protocol`, 8 reserved bytes,
//!   info-hash, peer id), with the BEP 10 and DHT reserved bits.
//! - [`Message`] and [`MessageDecoder`]: length-prefixed messages. [`decode_message`] looks at the
//!   start of a buffer and returns `Ok(None)` while the message is incomplete, or the message and
//!   the number of bytes it used. The length prefix is checked against [`Limits::max_message`] as
//!   soon as its 4 bytes are there, so an oversized message is refused before it is buffered.
//! - [`ExtHandshake`]: the BEP 10 handshake dictionary (extended message id 0).
//! - [`MetadataMessage`]: BEP 9 `ut_metadata` request, data and reject.
//! - [`PexMessage`]: BEP 11 `ut_pex` added and dropped peers (IPv4 and IPv6, with flags).
//!
//! # Accepted and recorded vs refused
//!
//! Message ids this codec does not know (for example the BEP 6 fast-extension ids 13 to 17) are
//! **recorded**, not refused: they decode to [`Message::Unknown`] with their id and raw payload,
//! and re-encode to the same bytes. A crawler wants to see what peers send; the length prefix
//! frames every message, so an unknown one never desynchronises the stream.
//!
//! Refused with a [`MessageError`]: a length over the limit; a known message whose payload has
//! the wrong size (`have` 4, `request`/`cancel` 12, `port` 2, `piece` at least 8, `extended` at
//! least 1, the state messages 0).
//!
//! The bencoded payloads ([`ExtHandshake`], [`MetadataMessage`], [`PexMessage`]) go through the lenient
//! [`crate::bencode`] decoder: its deviations are kept in the result, unknown keys are ignored
//! (and dropped on re-encoding), and the encoders write the canonical form.

mod extension;
mod handshake;
mod message;
mod pex;
#[cfg(test)]
mod tests;

pub use extension::{ExtDecoded, ExtError, ExtHandshake, MetadataMessage};
pub use handshake::{HANDSHAKE_LEN, Handshake, HandshakeError, PROTOCOL};
pub use message::{Limits, Message, MessageDecoder, MessageError, decode_message, decode_message_with};
pub use pex::{MAX_PEX_ENTRIES, PexMessage, PexPeer};
