//! KRPC, the Mainline DHT wire protocol (BEP 5, with BEP 51 `sample_infohashes`, BEP 42 node-id
//! checks and BEP 43 read-only nodes), sans I/O: bytes in, [`Message`] out, and back.
//!
//! [`decode`] runs the lenient [`crate::bencode`] decoder and then checks the KRPC structure;
//! [`Message::encode`] writes the canonical form (keys sorted), so `encode(decode(x)) == x` for
//! every canonical message whose fields are all understood.
//!
//! # Accepted and recorded vs refused
//!
//! Recorded as a [`Deviation`] (the message still decodes):
//!
//! - every bencode deviation (unsorted or duplicate keys, leading zeros, trailing bytes), with its
//!   byte offset, as [`Deviation::Bencode`];
//! - a concatenated compact blob (`nodes` 26-byte, `nodes6` 38-byte, `samples` 20-byte entries)
//!   whose length is not a multiple of the entry size: the whole entries are kept and the partial
//!   tail is dropped and recorded as [`Deviation::PartialEntry`]. This is what libtorrent does
//!   (it reads whole entries only); a crawler wants the entries plus the evidence of the odd node.
//!
//! Ignored: unknown keys anywhere (`want`, `noseed`, `scrape`, `seed`, vendor keys), which are
//! dropped on re-encoding. `ro` set to 0 decodes as "not read-only" and is not re-encoded.
//!
//! Refused with a [`DecodeError`]: input that is not bencode or longer than [`Limits::max_message`];
//! a top level that is not a dictionary; a missing `t`, `y`, `q`, `a`, `r`, `e` or `id` (or a
//! missing required argument such as `target`, `info_hash`, `token`, `port`); a field of the wrong
//! bencode type; a fixed-size field of the wrong length (`id`, `target`, `info_hash` must be 20
//! bytes, `ip` 6 or 18, each `values` item 6 or 18); `port` outside 0..=65535; an unknown `y` or
//! query method; more `values` items than [`Limits::max_values`].
//!
//! Byte strings such as `t`, `v`, `token` and error messages stay bytes.

mod bep42;
mod codec;
#[cfg(test)]
mod tests;

pub use bep42::{Bep42, bep42_check, bep42_exempt, bep42_prefix, crc32c};
pub use codec::{decode, decode_with};

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use thiserror::Error;

use crate::infohash::InfoHash;

/// A 160-bit DHT node id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub [u8; 20]);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// One KRPC message: the envelope fields shared by queries, responses and errors, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `t`: the transaction id, opaque bytes chosen by the querier and echoed back.
    pub transaction_id: Vec<u8>,
    /// `v`: the client version (BEP 20 style, e.g. `LT\x02\x08` for libtorrent 2.8), if sent.
    pub version: Option<Vec<u8>>,
    /// `ip` (BEP 42): the address the responder sees the querier at, compact IPv4 or IPv6 + port.
    pub ip: Option<SocketAddr>,
    /// `ro` (BEP 43): the sender is a read-only node (`ro=1`; any non-zero counts).
    pub read_only: bool,
    /// `y` and what goes with it.
    pub body: Body,
}

/// The three kinds of KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y=q`.
    Query(Query),
    /// `y=r`.
    Response(Response),
    /// `y=e`.
    Error(RemoteError),
}

/// A query (`q` plus its `a` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querier's id.
        id: NodeId,
    },
    /// `find_node`.
    FindNode {
        /// The querier's id.
        id: NodeId,
        /// The id looked for.
        target: NodeId,
    },
    /// `get_peers`.
    GetPeers {
        /// The querier's id.
        id: NodeId,
        /// The torrent looked for.
        info_hash: InfoHash,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The querier's id.
        id: NodeId,
        /// The torrent announced.
        info_hash: InfoHash,
        /// `port`: the announced peer port.
        port: u16,
        /// The token from an earlier `get_peers` response.
        token: Vec<u8>,
        /// `implied_port`: `Some(true)` means "use the UDP source port"; `None` if absent.
        implied_port: Option<bool>,
    },
    /// `sample_infohashes` (BEP 51).
    SampleInfohashes {
        /// The querier's id.
        id: NodeId,
        /// Where in the key space to sample.
        target: NodeId,
    },
}

impl Query {
    /// The querier's node id.
    pub fn id(&self) -> NodeId {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. }
            | Query::SampleInfohashes { id, .. } => *id,
        }
    }

    /// The method name (`q`).
    pub fn method(&self) -> &'static str {
        match self {
            Query::Ping { .. } => "ping",
            Query::FindNode { .. } => "find_node",
            Query::GetPeers { .. } => "get_peers",
            Query::AnnouncePeer { .. } => "announce_peer",
            Query::SampleInfohashes { .. } => "sample_infohashes",
        }
    }
}

/// A response (`r`). Responses do not name the query they answer, so this is the union of the
/// BEP 5 and BEP 51 return values; a field is `None` when the key was absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The responder's id.
    pub id: NodeId,
    /// `nodes`: compact IPv4 node entries (20-byte id, 4-byte address, 2-byte port).
    pub nodes: Option<Vec<(NodeId, SocketAddrV4)>>,
    /// `nodes6` (BEP 32): compact IPv6 node entries (20-byte id, 16-byte address, 2-byte port).
    pub nodes6: Option<Vec<(NodeId, SocketAddrV6)>>,
    /// `values`: compact peers, 6 bytes (IPv4) or 18 bytes (IPv6) each.
    pub values: Option<Vec<SocketAddr>>,
    /// `token` (from `get_peers`).
    pub token: Option<Vec<u8>>,
    /// `interval` (BEP 51): seconds before the responder wants to be sampled again.
    pub interval: Option<i64>,
    /// `num` (BEP 51): how many info-hashes the responder holds.
    pub num: Option<i64>,
    /// `samples` (BEP 51): every 20-byte info-hash of the concatenated blob.
    pub samples: Option<Vec<InfoHash>>,
}

impl Response {
    /// A response carrying only the responder's id (a `ping` or `announce_peer` answer).
    pub fn new(id: NodeId) -> Self {
        Response {
            id,
            nodes: None,
            nodes6: None,
            values: None,
            token: None,
            interval: None,
            num: None,
            samples: None,
        }
    }
}

/// An error message (`e`): a code and a text, e.g. `201 Generic Error`, `203 Protocol Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The error code.
    pub code: i64,
    /// The error text, as bytes.
    pub message: Vec<u8>,
}

/// Bounds for [`decode_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message accepted, in bytes.
    pub max_message: usize,
    /// The most `values` items accepted.
    pub max_values: usize,
}

impl Default for Limits {
    /// 65 536 bytes (one UDP datagram at most) and 4 096 values.
    fn default() -> Self {
        Limits {
            max_message: 65_536,
            max_values: 4_096,
        }
    }
}

/// A decoded message and the non-canonical forms accepted on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// What was accepted although not canonical, in detection order.
    pub deviations: Vec<Deviation>,
}

/// A non-canonical form that was accepted (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deviation {
    /// A bencode-level deviation.
    Bencode(crate::bencode::Deviation),
    /// A concatenated compact blob with a partial entry at its end, which was dropped.
    PartialEntry {
        /// The field, like `r.nodes`.
        field: &'static str,
        /// Byte offset of the blob's string node in the input.
        offset: usize,
        /// Length of the dropped tail.
        len: usize,
    },
}

/// Why a datagram is not a KRPC message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than [`Limits::max_message`].
    #[error("message of {len} bytes is longer than the limit of {max}")]
    TooLarge {
        /// The length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not bencode.
    #[error("not bencode: {0}")]
    Bencode(#[from] crate::bencode::DecodeError),
    /// The top level is not a dictionary.
    #[error("a KRPC message is a dictionary")]
    NotADict,
    /// A required key is absent.
    #[error("missing {field}")]
    Missing {
        /// The field, like `a.info_hash`.
        field: &'static str,
    },
    /// A field has the wrong bencode type.
    #[error("{field} is not {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should be, like `a byte string`.
        expected: &'static str,
    },
    /// A fixed-size byte string has the wrong length.
    #[error("{field} has {len} bytes, expected {expected}")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The allowed lengths, like `20`.
        expected: &'static str,
    },
    /// An integer outside its range.
    #[error("{field} = {value} is out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: i64,
    },
    /// `y` is not `q`, `r` or `e`.
    #[error("unknown message type y={0:?}")]
    UnknownType(Vec<u8>),
    /// A query method this codec does not know.
    #[error("unknown query method q={0:?}")]
    UnknownMethod(Vec<u8>),
    /// More items than the limit.
    #[error("{field} has more than {max} items")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
}
