//! BEP 10 extension handshake and BEP 9 `ut_metadata` payloads (bencoded, lenient in, canonical out).

use std::collections::BTreeMap;

use thiserror::Error;

use crate::bencode::{self, Deviation, DeviationKind, Node, Value};

/// The BEP 10 handshake dictionary, sent as extended message 0. Absent keys are `None` (an absent
/// `m` is an empty map); unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ExtHandshake {
    /// `m`: extension name to the id the sender wants to receive it as (0 means disabled).
    pub m: BTreeMap<Vec<u8>, u8>,
    /// `v`: client name and version, as bytes.
    pub v: Option<Vec<u8>>,
    /// `yourip`: the receiver's address as the sender sees it, raw (4 or 16 bytes normally).
    pub yourip: Option<Vec<u8>>,
    /// `reqq`: how many outstanding requests the sender accepts.
    pub reqq: Option<i64>,
    /// `metadata_size` (BEP 9): the info dictionary's size in bytes.
    pub metadata_size: Option<i64>,
    /// `p`: the sender's listen port.
    pub p: Option<u16>,
}

/// A decoded bencoded payload and the bencode deviations accepted on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtDecoded<T> {
    /// The value.
    pub value: T,
    /// Non-canonical bencode forms accepted, with offsets into the payload.
    pub deviations: Vec<Deviation>,
}

/// Why an extension payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExtError {
    /// Not bencode.
    #[error("not bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    /// The top level is not a dictionary.
    #[error("the payload is not a dictionary")]
    NotADict,
    /// A required key is absent.
    #[error("missing {field}")]
    Missing {
        /// The key.
        field: &'static str,
    },
    /// A field has the wrong bencode type.
    #[error("{field} is not {expected}")]
    WrongType {
        /// The key.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// An integer outside its range.
    #[error("{field} = {value} is out of range")]
    OutOfRange {
        /// The key.
        field: &'static str,
        /// The value.
        value: i64,
    },
    /// A `ut_metadata` `msg_type` other than 0, 1, 2.
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownMsgType(i64),
    /// A compact address list (`ut_pex` `added`, `dropped`...) that is not a whole number of entries.
    #[error("{field} is {len} bytes long, not a multiple of {unit}")]
    BadLength {
        /// The key.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The entry size (6 for IPv4, 18 for IPv6).
        unit: usize,
    },
    /// A list with more entries than the codec accepts.
    #[error("{field} holds {count} entries, over the limit of {max}")]
    TooMany {
        /// The key.
        field: &'static str,
        /// Entries present.
        count: usize,
        /// The limit.
        max: usize,
    },
}

pub(super) const LIMITS: bencode::Limits = bencode::Limits {
    max_depth: 16,
    max_input: (1 << 20) + 13,
    max_nodes: 1 << 16,
};

pub(super) fn bytes<'a>(d: &Node<'a>, key: &[u8], field: &'static str) -> Result<Option<&'a [u8]>, ExtError> {
    d.get(key).map_or(Ok(None), |n| {
        n.as_bytes().map(Some).ok_or(ExtError::WrongType {
            field,
            expected: "a byte string",
        })
    })
}

fn int(d: &Node<'_>, key: &[u8], field: &'static str) -> Result<Option<i64>, ExtError> {
    d.get(key).map_or(Ok(None), |n| {
        n.as_int().map(Some).ok_or(ExtError::WrongType {
            field,
            expected: "an integer",
        })
    })
}

fn ranged<T: TryFrom<i64>>(v: Option<i64>, field: &'static str) -> Result<Option<T>, ExtError> {
    v.map(|value| T::try_from(value).map_err(|_| ExtError::OutOfRange { field, value }))
        .transpose()
}

fn non_negative(v: Option<i64>, field: &'static str) -> Result<Option<i64>, ExtError> {
    match v {
        Some(value) if value < 0 => Err(ExtError::OutOfRange { field, value }),
        other => Ok(other),
    }
}

impl ExtHandshake {
    /// Decodes the payload of extended message 0 (after the id byte).
    pub fn decode(payload: &[u8]) -> Result<ExtDecoded<Self>, ExtError> {
        let tree = bencode::decode_with(payload, LIMITS)?;
        let root = &tree.root;
        if root.as_dict().is_none() {
            return Err(ExtError::NotADict);
        }
        let mut m = BTreeMap::new();
        if let Some(node) = root.get(b"m") {
            let entries = node.as_dict().ok_or(ExtError::WrongType {
                field: "m",
                expected: "a dictionary",
            })?;
            for (name, id) in entries {
                let id = id.as_int().ok_or(ExtError::WrongType {
                    field: "m.*",
                    expected: "an integer",
                })?;
                let id = ranged::<u8>(Some(id), "m.*")?.unwrap_or_default();
                // A duplicate name: the first occurrence wins, as in `Node::get`.
                m.entry(name.to_vec()).or_insert(id);
            }
        }
        let value = ExtHandshake {
            m,
            v: bytes(root, b"v", "v")?.map(<[u8]>::to_vec),
            yourip: bytes(root, b"yourip", "yourip")?.map(<[u8]>::to_vec),
            reqq: int(root, b"reqq", "reqq")?,
            metadata_size: non_negative(int(root, b"metadata_size", "metadata_size")?, "metadata_size")?,
            p: ranged(int(root, b"p", "p")?, "p")?,
        };
        Ok(ExtDecoded {
            value,
            deviations: tree.deviations,
        })
    }

    /// The canonical bencoding (`m` always present).
    pub fn to_value(&self) -> Value {
        let mut d = BTreeMap::new();
        let m = self.m.iter().map(|(k, &id)| (k.clone(), Value::Int(id.into())));
        d.insert(b"m".to_vec(), Value::Dict(m.collect()));
        if let Some(v) = &self.v {
            d.insert(b"v".to_vec(), Value::bytes(v.clone()));
        }
        if let Some(ip) = &self.yourip {
            d.insert(b"yourip".to_vec(), Value::bytes(ip.clone()));
        }
        if let Some(r) = self.reqq {
            d.insert(b"reqq".to_vec(), Value::Int(r));
        }
        if let Some(s) = self.metadata_size {
            d.insert(b"metadata_size".to_vec(), Value::Int(s));
        }
        if let Some(p) = self.p {
            d.insert(b"p".to_vec(), Value::Int(p.into()));
        }
        Value::Dict(d)
    }

    /// The canonical payload bytes (without the extended id byte).
    pub fn encode(&self) -> Vec<u8> {
        self.to_value().encode()
    }
}

/// A BEP 9 `ut_metadata` message (the payload of the extended id the peer chose for it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for a 16 KiB piece of the info dictionary.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// `msg_type` 1: a piece, the raw bytes following the dictionary.
    Data {
        /// Piece index.
        piece: u32,
        /// `total_size`: the info dictionary's size.
        total_size: i64,
        /// The piece bytes.
        data: Vec<u8>,
    },
    /// `msg_type` 2: the sender will not give this piece.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

impl MetadataMessage {
    /// Decodes a `ut_metadata` payload. The dictionary is found with prefix decoding; bytes after
    /// it are the data of a `Data` message, and are recorded as a
    /// [`DeviationKind::TrailingBytes`] deviation (and dropped) after a request or a reject.
    pub fn decode(payload: &[u8]) -> Result<ExtDecoded<Self>, ExtError> {
        let tree = bencode::decode_prefix_with(payload, LIMITS)?;
        let root = &tree.root;
        if root.as_dict().is_none() {
            return Err(ExtError::NotADict);
        }
        let mut deviations = tree.deviations.clone();
        let msg_type = int(root, b"msg_type", "msg_type")?.ok_or(ExtError::Missing { field: "msg_type" })?;
        let piece = int(root, b"piece", "piece")?.ok_or(ExtError::Missing { field: "piece" })?;
        let piece = ranged::<u32>(Some(piece), "piece")?.unwrap_or_default();
        let rest = &payload[tree.used..];
        let value = match msg_type {
            0 | 2 => {
                if !rest.is_empty() {
                    deviations.push(Deviation {
                        offset: tree.used,
                        kind: DeviationKind::TrailingBytes { len: rest.len() },
                    });
                }
                if msg_type == 0 {
                    MetadataMessage::Request { piece }
                } else {
                    MetadataMessage::Reject { piece }
                }
            }
            1 => {
                let total = int(root, b"total_size", "total_size")?.ok_or(ExtError::Missing { field: "total_size" })?;
                MetadataMessage::Data {
                    piece,
                    total_size: non_negative(Some(total), "total_size")?.unwrap_or_default(),
                    data: rest.to_vec(),
                }
            }
            other => return Err(ExtError::UnknownMsgType(other)),
        };
        Ok(ExtDecoded { value, deviations })
    }

    /// The canonical payload: the dictionary, then the data for a `Data` message.
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, piece),
            MetadataMessage::Data { piece, .. } => (1, piece),
            MetadataMessage::Reject { piece } => (2, piece),
        };
        let mut d = BTreeMap::new();
        d.insert(b"msg_type".to_vec(), Value::Int(msg_type));
        d.insert(b"piece".to_vec(), Value::Int((*piece).into()));
        if let MetadataMessage::Data { total_size, .. } = self {
            d.insert(b"total_size".to_vec(), Value::Int(*total_size));
        }
        let mut out = Value::Dict(d).encode();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }
}
