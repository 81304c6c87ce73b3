//! Gnutella descriptors (RFC draft section 2.2; Bye from section 2.2.9 and the GDF Bye proposal;
//! HUGE 0.93 for `urn:sha1:`): the 23-byte header, the payloads, and the streaming decoder.
//!
//! ```text
//! header   guid[16] type[1] ttl[1] hops[1] length[4 LE]
//! Ping     0x00  (empty, or GGEP)
//! Pong     0x01  port[2 LE] ip[4] files[4 LE] kbytes[4 LE] (GGEP)
//! Bye      0x02  code[2 LE] message NUL
//! Push     0x40  servent-id[16] file-index[4 LE] ip[4] port[2 LE] (GGEP)
//! Query    0x80  min-speed[2 LE] criteria NUL (HUGE / GGEP / XML extensions)
//! QueryHit 0x81  hits[1] port[2 LE] ip[4] speed[4 LE]
//!                hits × (index[4 LE] size[4 LE] name NUL extensions NUL)
//!                (QHD: vendor[4] open-size[1] open-data private-data) servent-id[16]
//! ```
//!
//! IPv4 addresses are in network order (`d0 11 32 04` is 208.17.50.4), every other integer is
//! little-endian. This module owns the framing and the fixed fields; GGEP blocks, extensions and
//! QHD trailers stay raw bytes, so relaying or re-encoding never loses what it did not parse.

use std::fmt;
use std::net::Ipv4Addr;

use thiserror::Error;

use super::EncodeError;
use crate::infohash::InfoHash;

/// The descriptor header length: 16 + 1 + 1 + 1 + 4.
pub const HEADER_LEN: usize = 23;

/// TTL + hops above this is recorded: the draft's invariant is TTL(0) = TTL(i) + Hops(i) with an
/// initial TTL of "usually 7", and today's servents start lower.
const MAX_TTL_HOPS: u16 = 7;

/// A 16-byte message or servent id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// A GUID as modern servents make them: `random` with byte 8 set to `0xff` and byte 15 to
    /// `0x00` (RFC draft section 2.2.1). The caller supplies the randomness.
    pub fn modern(random: [u8; 16]) -> Self {
        let mut bytes = random;
        bytes[8] = 0xff;
        bytes[15] = 0;
        Guid(bytes)
    }

    /// Whether byte 8 is `0xff` and byte 15 is `0x00`.
    pub fn is_modern(&self) -> bool {
        self.0[8] == 0xff && self.0[15] == 0
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The 23-byte header in front of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DescriptorHeader {
    /// The message id.
    pub guid: Guid,
    /// The payload type byte.
    pub kind: u8,
    /// Hops left.
    pub ttl: u8,
    /// Hops taken.
    pub hops: u8,
    /// The payload length.
    pub length: u32,
}

impl DescriptorHeader {
    /// Reads the 23 header bytes.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Self {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&bytes[..16]);
        DescriptorHeader {
            guid: Guid(guid),
            kind: bytes[16],
            ttl: bytes[17],
            hops: bytes[18],
            length: u32::from_le_bytes([bytes[19], bytes[20], bytes[21], bytes[22]]),
        }
    }

    /// The 23 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..16].copy_from_slice(&self.guid.0);
        out[16] = self.kind;
        out[17] = self.ttl;
        out[18] = self.hops;
        out[19..].copy_from_slice(&self.length.to_le_bytes());
        out
    }
}

/// One descriptor: the header fields that are not derived from the payload, and the payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The message id.
    pub guid: Guid,
    /// Hops left.
    pub ttl: u8,
    /// Hops taken.
    pub hops: u8,
    /// The payload.
    pub payload: Payload,
}

/// A descriptor payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// 0x00: a Ping; a 0.6 Ping may carry a GGEP block, kept raw.
    Ping {
        /// The payload bytes (usually none).
        extensions: Vec<u8>,
    },
    /// 0x01.
    Pong(Pong),
    /// 0x02.
    Bye(Bye),
    /// 0x40.
    Push(Push),
    /// 0x80.
    Query(Query),
    /// 0x81.
    QueryHit(QueryHit),
    /// Any other type (vendor messages, QRP, ...), with its raw payload.
    Unknown {
        /// The payload type byte.
        kind: u8,
        /// The payload.
        payload: Vec<u8>,
    },
}

impl Payload {
    /// Ping.
    pub const PING: u8 = 0x00;
    /// Pong.
    pub const PONG: u8 = 0x01;
    /// Bye.
    pub const BYE: u8 = 0x02;
    /// Push.
    pub const PUSH: u8 = 0x40;
    /// Query.
    pub const QUERY: u8 = 0x80;
    /// QueryHit.
    pub const QUERY_HIT: u8 = 0x81;

    /// The payload type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Payload::Ping { .. } => Self::PING,
            Payload::Pong(_) => Self::PONG,
            Payload::Bye(_) => Self::BYE,
            Payload::Push(_) => Self::PUSH,
            Payload::Query(_) => Self::QUERY,
            Payload::QueryHit(_) => Self::QUERY_HIT,
            Payload::Unknown { kind, .. } => *kind,
        }
    }
}

/// A Pong: an address that answers Gnutella connections and what it shares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pong {
    /// Listening port.
    pub port: u16,
    /// Address.
    pub ip: Ipv4Addr,
    /// Number of files shared.
    pub files: u32,
    /// Kilobytes shared.
    pub kbytes: u32,
    /// What follows the 14 fixed bytes (GGEP), raw.
    pub extensions: Vec<u8>,
}

/// A Bye: the sender is closing the connection, with an SMTP-like code and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bye {
    /// The code (200 normal close, 4xx our fault, 5xx theirs).
    pub code: u16,
    /// The reason text, without its NUL, as bytes.
    pub message: Vec<u8>,
}

/// A Push: asks the firewalled servent `servent_id` to connect out and upload a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Push {
    /// The servent asked to push.
    pub servent_id: Guid,
    /// The file's index in that servent's QueryHit.
    pub file_index: u32,
    /// Where to connect.
    pub ip: Ipv4Addr,
    /// Where to connect.
    pub port: u16,
    /// What follows the 26 fixed bytes (GGEP), raw.
    pub extensions: Vec<u8>,
}

/// A Query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// The two "minimum speed" bytes, read little-endian like every 0.4 field; see
    /// [`Query::flags`] for their 0.6 meaning.
    pub min_speed: u16,
    /// The search criteria, without its NUL, as bytes.
    pub criteria: Vec<u8>,
    /// Everything after the criteria's NUL up to the payload end (HUGE `urn:` requests, GGEP,
    /// XML), raw.
    pub extensions: Vec<u8>,
}

/// A QueryHit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryHit {
    /// The responder's port.
    pub port: u16,
    /// The responder's address.
    pub ip: Ipv4Addr,
    /// The responder's speed in kb/s.
    pub speed: u32,
    /// The result set (at most 255).
    pub results: Vec<HitResult>,
    /// The bytes between the result set and the servent id (the optional QHD: vendor code,
    /// open data, private data), raw; see [`QueryHit::qhd`].
    pub trailer: Vec<u8>,
    /// The responder, the last 16 bytes of the payload.
    pub servent_id: Guid,
}

/// One QueryHit result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HitResult {
    /// The file's index on the responder.
    pub file_index: u32,
    /// The file size (GGEP `LF` in `extensions` carries sizes over 4 GiB).
    pub file_size: u32,
    /// The file name, without its NUL, as bytes.
    pub name: Vec<u8>,
    /// The extension block between the name's NUL and its own (HUGE URNs, GGEP, separated by
    /// 0x1c), raw; see [`HitResult::sha1`].
    pub extensions: Vec<u8>,
}

/// The QueryHit trailer read as a QHD (RFC draft section 2.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qhd<'a> {
    /// The four-letter vendor code, like `GTKG` or `LIME`.
    pub vendor: [u8; 4],
    /// The open data (flags), as many bytes as its size byte says.
    pub open_data: &'a [u8],
    /// The rest (vendor data, often GGEP).
    pub private_data: &'a [u8],
}

impl Query {
    /// The 0.6 interpretation of the min-speed bytes (the GDF "new interpretation of the
    /// MinSpeed field"): a 16-bit word whose bit 15 says the other bits are flags, with bit 15
    /// the high bit of the first byte on the wire. That proposal reads the two bytes big-endian,
    /// so this is [`Query::min_speed`] with its bytes swapped; `None` when bit 15 is clear (a
    /// plain speed).
    pub fn flags(&self) -> Option<u16> {
        let word = self.min_speed.swap_bytes();
        (word & 0x8000 != 0).then_some(word)
    }

    /// Flag bit 14: the querying servent is firewalled.
    pub fn firewalled(&self) -> bool {
        self.flags().is_some_and(|f| f & 0x4000 != 0)
    }

    /// The SHA-1 of the first `urn:sha1:` the query asks for (HUGE), if any.
    pub fn sha1(&self) -> Option<[u8; 20]> {
        first_sha1_urn(&self.extensions)
    }
}

impl HitResult {
    /// The SHA-1 from the first `urn:sha1:<32 base32 characters>` in the extension block.
    pub fn sha1(&self) -> Option<[u8; 20]> {
        first_sha1_urn(&self.extensions)
    }
}

impl QueryHit {
    /// The trailer as a QHD, when it is long enough to be one.
    pub fn qhd(&self) -> Option<Qhd<'_>> {
        let vendor = self.trailer.get(..4)?;
        let open_size = usize::from(*self.trailer.get(4)?);
        let open_data = self.trailer.get(5..5 + open_size)?;
        Some(Qhd {
            vendor: [vendor[0], vendor[1], vendor[2], vendor[3]],
            open_data,
            private_data: &self.trailer[5 + open_size..],
        })
    }
}

/// HUGE extensions are separated by 0x1c (a Query's block may also end with a NUL); a GGEP block
/// may sit among them, and its binary content is simply not a `urn:sha1:`.
fn first_sha1_urn(extensions: &[u8]) -> Option<[u8; 20]> {
    const PREFIX: &[u8] = b"urn:sha1:";
    extensions.split(|&b| b == 0x1c || b == 0).find_map(|ext| {
        let (prefix, base32) = (ext.get(..PREFIX.len())?, ext.get(PREFIX.len()..)?);
        if !prefix.eq_ignore_ascii_case(PREFIX) || base32.len() != 32 {
            return None;
        }
        InfoHash::parse(std::str::from_utf8(base32).ok()?).ok().map(|h| h.0)
    })
}

/// Bounds for [`decode_message_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// The largest payload length accepted.
    pub max_payload: u32,
}

impl Default for MessageLimits {
    /// 64 KiB, what servents commonly accept (gtk-gnutella and LimeWire drop larger messages).
    fn default() -> Self {
        MessageLimits { max_payload: 64 << 10 }
    }
}

/// A decoded descriptor and the deviations accepted on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage {
    /// The descriptor.
    pub message: Message,
    /// What was accepted although the protocol does not allow it.
    pub deviations: Vec<MessageDeviation>,
}

/// A form accepted and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageDeviation {
    /// TTL + hops is above 7.
    TtlHops {
        /// The TTL.
        ttl: u8,
        /// The hops.
        hops: u8,
    },
    /// A NUL-terminated field ran to the end of the payload without its NUL.
    Unterminated {
        /// `"bye message"` or `"query criteria"`.
        field: &'static str,
    },
    /// Bytes after a Bye's NUL, which the Bye has no room for; dropped.
    TrailingBytes {
        /// How many.
        len: usize,
    },
}

/// Why bytes are not a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The header's payload length is over [`MessageLimits::max_payload`].
    #[error("payload length {len} is over the limit of {max}")]
    TooLong {
        /// The payload length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A known payload that cannot be read.
    #[error("{kind} payload of {len} bytes: {reason}")]
    BadPayload {
        /// The payload name.
        kind: &'static str,
        /// The payload length.
        len: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Decodes one descriptor from the start of `buf` with [`MessageLimits::default`].
pub fn decode_message(buf: &[u8]) -> Result<Option<(DecodedMessage, usize)>, MessageError> {
    decode_message_with(buf, MessageLimits::default())
}

/// Decodes one descriptor from the start of `buf`: `Ok(None)` while it is incomplete, otherwise
/// the descriptor and the bytes it used (header included). The payload length is checked as soon
/// as the header is there, before the payload is needed.
pub fn decode_message_with(buf: &[u8], limits: MessageLimits) -> Result<Option<(DecodedMessage, usize)>, MessageError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = DescriptorHeader::decode(head);
    if header.length > limits.max_payload {
        return Err(MessageError::TooLong {
            len: header.length,
            max: limits.max_payload,
        });
    }
    // Saturating for 32-bit targets; the limit check above keeps real lengths far below.
    let total = HEADER_LEN.saturating_add(header.length as usize);
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    let mut deviations = Vec::new();
    if u16::from(header.ttl) + u16::from(header.hops) > MAX_TTL_HOPS {
        deviations.push(MessageDeviation::TtlHops {
            ttl: header.ttl,
            hops: header.hops,
        });
    }
    let payload = decode_payload(header.kind, payload, &mut deviations)?;
    let message = Message {
        guid: header.guid,
        ttl: header.ttl,
        hops: header.hops,
        payload,
    };
    Ok(Some((DecodedMessage { message, deviations }, total)))
}

fn decode_payload(kind: u8, p: &[u8], deviations: &mut Vec<MessageDeviation>) -> Result<Payload, MessageError> {
    let short = |name: &'static str, reason: &'static str| MessageError::BadPayload {
        kind: name,
        len: p.len(),
        reason,
    };
    Ok(match kind {
        Payload::PING => Payload::Ping { extensions: p.to_vec() },
        Payload::PONG => {
            let fixed = p
                .first_chunk::<14>()
                .ok_or_else(|| short("pong", "shorter than 14 bytes"))?;
            Payload::Pong(Pong {
                port: le16(fixed, 0),
                ip: ipv4(fixed, 2),
                files: le32(fixed, 6),
                kbytes: le32(fixed, 10),
                extensions: p[14..].to_vec(),
            })
        }
        Payload::BYE => {
            let fixed = p
                .first_chunk::<2>()
                .ok_or_else(|| short("bye", "shorter than 2 bytes"))?;
            let (message, rest) = nul_terminated(&p[2..], "bye message", deviations);
            if !rest.is_empty() {
                deviations.push(MessageDeviation::TrailingBytes { len: rest.len() });
            }
            Payload::Bye(Bye {
                code: le16(fixed, 0),
                message: message.to_vec(),
            })
        }
        Payload::PUSH => {
            let fixed = p
                .first_chunk::<26>()
                .ok_or_else(|| short("push", "shorter than 26 bytes"))?;
            Payload::Push(Push {
                servent_id: guid(fixed, 0),
                file_index: le32(fixed, 16),
                ip: ipv4(fixed, 20),
                port: le16(fixed, 24),
                extensions: p[26..].to_vec(),
            })
        }
        Payload::QUERY => {
            let fixed = p
                .first_chunk::<2>()
                .ok_or_else(|| short("query", "shorter than 2 bytes"))?;
            let (criteria, extensions) = nul_terminated(&p[2..], "query criteria", deviations);
            Payload::Query(Query {
                min_speed: le16(fixed, 0),
                criteria: criteria.to_vec(),
                extensions: extensions.to_vec(),
            })
        }
        Payload::QUERY_HIT => Payload::QueryHit(decode_query_hit(p)?),
        other => Payload::Unknown {
            kind: other,
            payload: p.to_vec(),
        },
    })
}

/// Splits at the first NUL: the text before it and the bytes after it. Without a NUL the text
/// runs to the end, which is recorded.
fn nul_terminated<'a>(
    bytes: &'a [u8],
    field: &'static str,
    deviations: &mut Vec<MessageDeviation>,
) -> (&'a [u8], &'a [u8]) {
    match bytes.iter().position(|&b| b == 0) {
        Some(nul) => (&bytes[..nul], &bytes[nul + 1..]),
        None => {
            deviations.push(MessageDeviation::Unterminated { field });
            (bytes, &[])
        }
    }
}

fn decode_query_hit(p: &[u8]) -> Result<QueryHit, MessageError> {
    let bad = |reason: &'static str| MessageError::BadPayload {
        kind: "query hit",
        len: p.len(),
        reason,
    };
    if p.len() < 11 + 16 {
        return Err(bad("shorter than 27 bytes"));
    }
    let (body, id) = p.split_at(p.len() - 16);
    let count = body[0];
    let mut rest = &body[11..];
    let mut results = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let fixed = rest
            .first_chunk::<8>()
            .ok_or_else(|| bad("result set shorter than its count"))?;
        let (file_index, file_size) = (le32(fixed, 0), le32(fixed, 4));
        let after = &rest[8..];
        let name_end = after
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("file name without its NUL"))?;
        let ext = &after[name_end + 1..];
        let ext_end = ext
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("extension block without its NUL"))?;
        results.push(HitResult {
            file_index,
            file_size,
            name: after[..name_end].to_vec(),
            extensions: ext[..ext_end].to_vec(),
        });
        rest = &ext[ext_end + 1..];
    }
    Ok(QueryHit {
        port: le16(body, 1),
        ip: ipv4(body, 3),
        speed: le32(body, 7),
        results,
        trailer: rest.to_vec(),
        servent_id: guid(id, 0),
    })
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ipv4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn guid(b: &[u8], at: usize) -> Guid {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[at..at + 16]);
    Guid(out)
}

impl Message {
    /// The wire bytes, header included.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the wire bytes to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.check()?;
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        match &self.payload {
            Payload::Ping { extensions } => out.extend_from_slice(extensions),
            Payload::Pong(p) => {
                out.extend_from_slice(&p.port.to_le_bytes());
                out.extend_from_slice(&p.ip.octets());
                out.extend_from_slice(&p.files.to_le_bytes());
                out.extend_from_slice(&p.kbytes.to_le_bytes());
                out.extend_from_slice(&p.extensions);
            }
            Payload::Bye(b) => {
                out.extend_from_slice(&b.code.to_le_bytes());
                out.extend_from_slice(&b.message);
                out.push(0);
            }
            Payload::Push(p) => {
                out.extend_from_slice(&p.servent_id.0);
                out.extend_from_slice(&p.file_index.to_le_bytes());
                out.extend_from_slice(&p.ip.octets());
                out.extend_from_slice(&p.port.to_le_bytes());
                out.extend_from_slice(&p.extensions);
            }
            Payload::Query(q) => {
                out.extend_from_slice(&q.min_speed.to_le_bytes());
                out.extend_from_slice(&q.criteria);
                out.push(0);
                out.extend_from_slice(&q.extensions);
            }
            Payload::QueryHit(h) => {
                // `check` made sure the count fits.
                out.push(h.results.len() as u8);
                out.extend_from_slice(&h.port.to_le_bytes());
                out.extend_from_slice(&h.ip.octets());
                out.extend_from_slice(&h.speed.to_le_bytes());
                for r in &h.results {
                    out.extend_from_slice(&r.file_index.to_le_bytes());
                    out.extend_from_slice(&r.file_size.to_le_bytes());
                    out.extend_from_slice(&r.name);
                    out.push(0);
                    out.extend_from_slice(&r.extensions);
                    out.push(0);
                }
                out.extend_from_slice(&h.trailer);
                out.extend_from_slice(&h.servent_id.0);
            }
            Payload::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
        let len = out.len() - start - HEADER_LEN;
        let Ok(length) = u32::try_from(len) else {
            out.truncate(start);
            return Err(EncodeError::PayloadTooLong(len));
        };
        let header = DescriptorHeader {
            guid: self.guid,
            kind: self.payload.kind(),
            ttl: self.ttl,
            hops: self.hops,
            length,
        };
        out[start..start + HEADER_LEN].copy_from_slice(&header.encode());
        Ok(())
    }

    /// The conditions under which the bytes decode back to `self`.
    fn check(&self) -> Result<(), EncodeError> {
        let no_nul = |bytes: &[u8], field: &'static str| {
            if bytes.contains(&0) {
                Err(EncodeError::InteriorNul { field })
            } else {
                Ok(())
            }
        };
        match &self.payload {
            Payload::Bye(b) => no_nul(&b.message, "bye message"),
            Payload::Query(q) => no_nul(&q.criteria, "query criteria"),
            Payload::QueryHit(h) => {
                if h.results.len() > usize::from(u8::MAX) {
                    return Err(EncodeError::TooManyResults(h.results.len()));
                }
                h.results.iter().try_for_each(|r| {
                    no_nul(&r.name, "file name")?;
                    no_nul(&r.extensions, "result extension block")
                })
            }
            Payload::Unknown { kind, .. } => match *kind {
                Payload::PING | Payload::PONG | Payload::BYE | Payload::PUSH | Payload::QUERY | Payload::QUERY_HIT => {
                    Err(EncodeError::KnownKindAsUnknown(*kind))
                }
                _ => Ok(()),
            },
            Payload::Ping { .. } | Payload::Pong(_) | Payload::Push(_) => Ok(()),
        }
    }
}

/// A buffer for a byte stream (after the handshake, and after inflating if the stream is
/// deflated): feed it what the socket gave, then take whole descriptors. Taking a descriptor
/// moves a read offset; consumed bytes are dropped on the next [`MessageDecoder::feed`], so a
/// burst of small descriptors costs linear time.
#[derive(Debug, Clone, Default)]
pub struct MessageDecoder {
    buf: Vec<u8>,
    start: usize,
    limits: MessageLimits,
}

impl MessageDecoder {
    /// A decoder with [`MessageLimits::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with explicit limits.
    pub fn with_limits(limits: MessageLimits) -> Self {
        MessageDecoder {
            buf: Vec::new(),
            start: 0,
            limits,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the next whole descriptor, or `Ok(None)` if more bytes are needed. After an error
    /// the stream cannot be resynchronised; the same error comes back on every call.
    pub fn next_message(&mut self) -> Result<Option<DecodedMessage>, MessageError> {
        match decode_message_with(&self.buf[self.start..], self.limits)? {
            None => Ok(None),
            Some((decoded, used)) => {
                self.start += used;
                Ok(Some(decoded))
            }
        }
    }
}
