//! Gnutella 0.6, sans I/O: the connection handshake (with LimeWire's crawler extension) and the
//! binary descriptors that follow it, bytes in, values out, and back. This is what an ultrapeer
//! crawler in the manner of Cruiser (Stutzbach and Rejaie) needs: connect, send `Crawler: 0.1`,
//! read the `Peers:` and `Leaves:` headers, close. Our own overlay answers the same handshake
//! with [`Handshake::crawler_reply`], so both directions are encoded and decoded here.
//!
//! Sources: the Gnutella 0.6 RFC draft (Klingberg and Manfredi, June 2002), section 2.1
//! (initiating a connection), 2.2 (messages), 2.2.9 (Bye) and 3.2.1 (ultrapeers); the
//! "Ultrapeers: Another Step Towards Gnutella Scalability" proposal (`X-Ultrapeer`,
//! `X-Ultrapeer-Needed`, `X-Try-Ultrapeers`); the GDF list of connection headers (`Listen-IP`,
//! `Remote-IP`, `X-Try`); LimeWire's crawler note ("respond with the headers `Leaves:` and
//! `Peers:`"), with gtk-gnutella's answer as the reference servent (`Peers:` always, `Leaves:`
//! only from an ultrapeer, entries separated by `", "`); HUGE 0.93 for `urn:sha1:`.
//!
//! - [`Handshake`], [`decode_handshake`] and [`HandshakeDecoder`]: one header block (start line,
//!   headers, blank line). The decoder is incremental: it returns `Ok(None)` until the blank
//!   line, checks [`HandshakeLimits`] on every byte as it arrives, fails fast on a start line
//!   that is not Gnutella, and keeps the bytes after the block (the first descriptors, or a
//!   deflate stream) for the caller. [`Headers`] has the typed accessors.
//! - [`Message`], [`decode_message`] and [`MessageDecoder`]: the 23-byte descriptor header and
//!   the Ping, Pong, Bye, Push, Query and QueryHit payloads. The payload length is checked
//!   against [`MessageLimits::max_payload`] as soon as the header is there, before the payload
//!   is buffered.
//!
//! # Accepted and recorded vs refused
//!
//! Handshake, recorded as a [`HandshakeDeviation`] (the block still decodes): a line ended by a
//! bare `\n` instead of `\r\n` (the 0.4 habit); a header line that is not UTF-8 (decoded with
//! U+FFFD replacements); a header line without a colon or with a name that is not an HTTP
//! token, and a continuation line with no header before it (both skipped). Normal HTTP forms
//! are not deviations: names in any case, optional whitespace around values, continuation lines
//! (unfolded into one space), a header repeated (values joined with `,`). Refused with a
//! [`HandshakeError`]: a first line that is neither `GNUTELLA CONNECT/<version>` nor
//! `GNUTELLA/<version> <3 digits> <reason>` (so the 0.4 `GNUTELLA OK` too), and anything over
//! the limits: a line longer than [`HandshakeLimits::max_line`], a block longer than
//! [`HandshakeLimits::max_block`], more than [`HandshakeLimits::max_headers`] headers. Header
//! values are parsed only when asked for: the address lists keep their bad entries
//! ([`PeerList::bad`]) next to the good ones.
//!
//! Descriptors, recorded as a [`MessageDeviation`]: TTL + hops above 7 (the draft's "usually 7"
//! in TTL(0) = TTL(i) + Hops(i); nothing is refused for it); a Bye message or a Query's search
//! criteria without its NUL (the text runs to the payload end); bytes after a Bye's NUL
//! (dropped). Payload types this codec does not know (vendor messages `0x31`/`0x32`, QRP
//! `0x30`, ...) decode to [`Payload::Unknown`] and re-encode byte for byte, as do GGEP blocks,
//! HUGE extensions and QueryHit trailers (QHD, vendor data), which are kept raw. A message
//! decoded without deviations (other than the TTL one) re-encodes to exactly the bytes it came
//! from. Refused with a [`MessageError`]: a payload length over the limit; a payload too short
//! for its fixed fields (Pong 14 bytes, Push 26, Bye 2, Query 2, QueryHit 27); a QueryHit whose
//! result set runs out before its count, or whose file name or extension block has no NUL
//! before the servent id.
//!
//! # The drivers
//!
//! Around the codecs, the crawler's Gnutella measurements: [`snapshot`] assembles one topology
//! snapshot from crawler replies without I/O; [`crawl`] runs it over tokio through the engine
//! (the crawler handshake probe, breadth-first snapshots, the recrawl interval); [`churn`] turns
//! successive snapshots into sessions and lifetimes; [`leaf`] joins an ultrapeer as a leaf to
//! query and checks the hits' downloads.
//!
//! The GUIDs of modern servents have byte 8 = `0xff` and byte 15 = `0x00` ([`Guid::modern`]
//! makes such ids from caller-supplied random bytes); the decoder does not require it.
//!
//! Encoding is fallible ([`EncodeError`]) where a value could not survive the trip: a NUL inside
//! a NUL-terminated field, more than 255 QueryHit results, an invalid header name or value.

pub mod churn;
pub mod crawl;
mod handshake;
pub mod leaf;
mod message;
pub mod qrp;
pub mod snapshot;
#[cfg(test)]
mod tests;

pub use handshake::{
    CRAWLER_VERSION, CrawlerReply, DEFAULT_PORT, DecodedHandshake, Handshake, HandshakeDecoder, HandshakeDeviation,
    HandshakeError, HandshakeLimits, Headers, PROTOCOL_VERSION, PeerEntry, PeerList, StartLine, decode_handshake,
    decode_handshake_with, format_peer_list, parse_peer_list,
};
pub use message::{
    Bye, DecodedMessage, DescriptorHeader, Guid, HEADER_LEN, HitResult, Message, MessageDecoder, MessageDeviation,
    MessageError, MessageLimits, Payload, Pong, Push, Qhd, Query, QueryHit, decode_message, decode_message_with,
};

use thiserror::Error;

/// Why a value could not be encoded so that it decodes back to itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A NUL-terminated field (file name, extension block, search criteria, Bye message)
    /// contains a NUL byte.
    #[error("{field} contains a NUL byte")]
    InteriorNul {
        /// Which field.
        field: &'static str,
    },
    /// A QueryHit counts its results in one byte.
    #[error("a query hit carries at most 255 results, not {0}")]
    TooManyResults(usize),
    /// The payload does not fit the 32-bit length field.
    #[error("a {0}-byte payload does not fit the 32-bit length field")]
    PayloadTooLong(usize),
    /// [`Payload::Unknown`] with the type byte of a payload this codec decodes itself: the bytes
    /// would come back as that payload.
    #[error("payload type {0:#04x} is known; use its own variant")]
    KnownKindAsUnknown(u8),
    /// A header name that is empty or not an HTTP token.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// A header value with a line feed or with leading or trailing spaces or tabs.
    #[error("invalid value for header {0:?}")]
    HeaderValue(String),
    /// A start line whose version is not digits and dots, whose status code is over 999, or
    /// whose reason phrase contains a line feed.
    #[error("invalid start line: {0}")]
    StartLine(&'static str),
}
