//! The KRPC decoder (bencode tree to [`Message`]) and the canonical encoder.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{Body, DecodeError, Decoded, Deviation, Limits, Message, NodeId, Query, RemoteError, Response};
use crate::bencode::{self, Node, Value};
use crate::compact;
use crate::infohash::InfoHash;

/// Decodes one KRPC message with [`Limits::default`].
pub fn decode(input: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with(input, Limits::default())
}

/// Decodes one KRPC message within `limits`.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Decoded, DecodeError> {
    if input.len() > limits.max_message {
        return Err(DecodeError::TooLarge {
            len: input.len(),
            max: limits.max_message,
        });
    }
    let blimits = bencode::Limits {
        max_depth: 8,
        max_input: limits.max_message,
        max_nodes: limits.max_message,
    };
    let tree = bencode::decode_with(input, blimits)?;
    let mut deviations: Vec<Deviation> = tree.deviations.iter().copied().map(Deviation::Bencode).collect();
    let root = &tree.root;
    if root.as_dict().is_none() {
        return Err(DecodeError::NotADict);
    }
    let transaction_id = required(bytes(root, b"t", "t")?, "t")?.to_vec();
    let version = bytes(root, b"v", "v")?.map(<[u8]>::to_vec);
    let ip = match bytes(root, b"ip", "ip")? {
        Some(b) => Some(compact_addr(b, "ip")?),
        None => None,
    };
    let read_only = int(root, b"ro", "ro")?.is_some_and(|v| v != 0);
    let y = required(bytes(root, b"y", "y")?, "y")?;
    let body = match y {
        b"q" => Body::Query(query(root)?),
        b"r" => Body::Response(response(root, limits, &mut deviations)?),
        b"e" => Body::Error(error(root)?),
        other => return Err(DecodeError::UnknownType(other.to_vec())),
    };
    Ok(Decoded {
        message: Message {
            transaction_id,
            version,
            ip,
            read_only,
            body,
        },
        deviations,
    })
}

fn query(root: &Node<'_>) -> Result<Query, DecodeError> {
    let method = required(bytes(root, b"q", "q")?, "q")?;
    let a = required(root.get(b"a"), "a")?;
    if a.as_dict().is_none() {
        return Err(DecodeError::WrongType {
            field: "a",
            expected: "a dictionary",
        });
    }
    let id = required(id20(a, b"id", "a.id")?, "a.id")?;
    Ok(match method {
        b"ping" => Query::Ping { id },
        b"find_node" => Query::FindNode {
            id,
            target: required(id20(a, b"target", "a.target")?, "a.target")?,
        },
        b"get_peers" => Query::GetPeers {
            id,
            info_hash: InfoHash(required(id20(a, b"info_hash", "a.info_hash")?, "a.info_hash")?.0),
        },
        b"announce_peer" => {
            let info_hash = InfoHash(required(id20(a, b"info_hash", "a.info_hash")?, "a.info_hash")?.0);
            let port = required(int(a, b"port", "a.port")?, "a.port")?;
            let port = u16::try_from(port).map_err(|_| DecodeError::OutOfRange {
                field: "a.port",
                value: port,
            })?;
            let token = required(bytes(a, b"token", "a.token")?, "a.token")?.to_vec();
            let implied_port = int(a, b"implied_port", "a.implied_port")?.map(|v| v != 0);
            Query::AnnouncePeer {
                id,
                info_hash,
                port,
                token,
                implied_port,
            }
        }
        b"sample_infohashes" => Query::SampleInfohashes {
            id,
            target: required(id20(a, b"target", "a.target")?, "a.target")?,
        },
        other => return Err(DecodeError::UnknownMethod(other.to_vec())),
    })
}

fn response(root: &Node<'_>, limits: Limits, deviations: &mut Vec<Deviation>) -> Result<Response, DecodeError> {
    let r = required(root.get(b"r"), "r")?;
    if r.as_dict().is_none() {
        return Err(DecodeError::WrongType {
            field: "r",
            expected: "a dictionary",
        });
    }
    let mut resp = Response::new(required(id20(r, b"id", "r.id")?, "r.id")?);
    resp.nodes = blob(r, b"nodes", "r.nodes", 26, deviations)?.map(|entries| {
        entries
            .map(|e| {
                let ip = Ipv4Addr::new(e[20], e[21], e[22], e[23]);
                (
                    node_id(&e[..20]),
                    SocketAddrV4::new(ip, u16::from_be_bytes([e[24], e[25]])),
                )
            })
            .collect()
    });
    resp.nodes6 = blob(r, b"nodes6", "r.nodes6", 38, deviations)?.map(|entries| {
        entries
            .map(|e| {
                let mut ip = [0; 16];
                ip.copy_from_slice(&e[20..36]);
                let ip = Ipv6Addr::from(ip);
                let port = u16::from_be_bytes([e[36], e[37]]);
                (node_id(&e[..20]), SocketAddrV6::new(ip, port, 0, 0))
            })
            .collect()
    });
    resp.samples = blob(r, b"samples", "r.samples", 20, deviations)?
        .map(|entries| entries.map(|e| InfoHash(node_id(e).0)).collect());
    if let Some(values) = r.get(b"values") {
        let items = values.as_list().ok_or(DecodeError::WrongType {
            field: "r.values",
            expected: "a list",
        })?;
        if items.len() > limits.max_values {
            return Err(DecodeError::TooMany {
                field: "r.values",
                max: limits.max_values,
            });
        }
        let mut peers = Vec::with_capacity(items.len());
        for item in items {
            let b = item.as_bytes().ok_or(DecodeError::WrongType {
                field: "r.values",
                expected: "a list of byte strings",
            })?;
            peers.push(compact_addr(b, "r.values")?);
        }
        resp.values = Some(peers);
    }
    resp.token = bytes(r, b"token", "r.token")?.map(<[u8]>::to_vec);
    resp.interval = int(r, b"interval", "r.interval")?;
    resp.num = int(r, b"num", "r.num")?;
    Ok(resp)
}

fn error(root: &Node<'_>) -> Result<RemoteError, DecodeError> {
    const LIST: DecodeError = DecodeError::WrongType {
        field: "e",
        expected: "a list [code, message]",
    };
    let e = required(root.get(b"e"), "e")?;
    match e.as_list() {
        Some([code, message]) => Ok(RemoteError {
            code: code.as_int().ok_or(LIST)?,
            message: message.as_bytes().ok_or(LIST)?.to_vec(),
        }),
        _ => Err(LIST),
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::Missing { field })
}

fn bytes<'a>(dict: &Node<'a>, key: &[u8], field: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
    match dict.get(key) {
        None => Ok(None),
        Some(n) => n.as_bytes().map(Some).ok_or(DecodeError::WrongType {
            field,
            expected: "a byte string",
        }),
    }
}

fn int(dict: &Node<'_>, key: &[u8], field: &'static str) -> Result<Option<i64>, DecodeError> {
    match dict.get(key) {
        None => Ok(None),
        Some(n) => n.as_int().map(Some).ok_or(DecodeError::WrongType {
            field,
            expected: "an integer",
        }),
    }
}

fn id20(dict: &Node<'_>, key: &[u8], field: &'static str) -> Result<Option<NodeId>, DecodeError> {
    match bytes(dict, key, field)? {
        None => Ok(None),
        Some(b) if b.len() == 20 => Ok(Some(node_id(b))),
        Some(b) => Err(DecodeError::BadLength {
            field,
            len: b.len(),
            expected: "20",
        }),
    }
}

fn node_id(b: &[u8]) -> NodeId {
    let mut id = [0; 20];
    id.copy_from_slice(&b[..20]);
    NodeId(id)
}

/// A concatenated blob of `size`-byte entries; a partial tail is dropped and recorded.
fn blob<'a>(
    dict: &Node<'a>,
    key: &[u8],
    field: &'static str,
    size: usize,
    deviations: &mut Vec<Deviation>,
) -> Result<Option<std::slice::ChunksExact<'a, u8>>, DecodeError> {
    let Some(b) = bytes(dict, key, field)? else {
        return Ok(None);
    };
    let chunks = b.chunks_exact(size);
    let tail = chunks.remainder().len();
    if tail != 0 {
        let offset = dict.get(key).map_or(0, Node::offset);
        deviations.push(Deviation::PartialEntry {
            field,
            offset,
            len: tail,
        });
    }
    Ok(Some(chunks))
}

/// A compact address ([`crate::compact`]), refused with a [`DecodeError`] if not 6 or 18 bytes.
fn compact_addr(b: &[u8], field: &'static str) -> Result<SocketAddr, DecodeError> {
    compact::decode_addr(b).ok_or(DecodeError::BadLength {
        field,
        len: b.len(),
        expected: "6 or 18",
    })
}

fn compact_addr_bytes(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact::V6_LEN);
    compact::encode_addr_into(addr, &mut out);
    out
}

impl Message {
    /// The canonical encoding: keys sorted, absent optional fields omitted, `ro` written only when
    /// set. IPv6 addresses lose their flow info and scope id, which the compact form cannot carry.
    pub fn encode(&self) -> Vec<u8> {
        self.to_value().encode()
    }

    /// The message as a bencode [`Value`].
    pub fn to_value(&self) -> Value {
        let mut top: Vec<(&[u8], Value)> = vec![(b"t", Value::bytes(self.transaction_id.clone()))];
        if let Some(v) = &self.version {
            top.push((b"v", Value::bytes(v.clone())));
        }
        if let Some(ip) = &self.ip {
            top.push((b"ip", Value::bytes(compact_addr_bytes(ip))));
        }
        if self.read_only {
            top.push((b"ro", Value::Int(1)));
        }
        match &self.body {
            Body::Query(q) => {
                top.push((b"y", Value::bytes(&b"q"[..])));
                top.push((b"q", Value::bytes(q.method().as_bytes())));
                top.push((b"a", query_args(q)));
            }
            Body::Response(r) => {
                top.push((b"y", Value::bytes(&b"r"[..])));
                top.push((b"r", response_value(r)));
            }
            Body::Error(e) => {
                top.push((b"y", Value::bytes(&b"e"[..])));
                top.push((
                    b"e",
                    Value::List(vec![Value::Int(e.code), Value::bytes(e.message.clone())]),
                ));
            }
        }
        Value::dict(top)
    }
}

fn id_value(id: &NodeId) -> Value {
    Value::bytes(id.0.to_vec())
}

fn query_args(q: &Query) -> Value {
    let mut a: Vec<(&[u8], Value)> = vec![(b"id", id_value(&q.id()))];
    match q {
        Query::Ping { .. } => {}
        Query::FindNode { target, .. } | Query::SampleInfohashes { target, .. } => {
            a.push((b"target", id_value(target)));
        }
        Query::GetPeers { info_hash, .. } => a.push((b"info_hash", Value::bytes(info_hash.0.to_vec()))),
        Query::AnnouncePeer {
            info_hash,
            port,
            token,
            implied_port,
            ..
        } => {
            a.push((b"info_hash", Value::bytes(info_hash.0.to_vec())));
            a.push((b"port", Value::Int(i64::from(*port))));
            a.push((b"token", Value::bytes(token.clone())));
            if let Some(implied) = implied_port {
                a.push((b"implied_port", Value::Int(i64::from(*implied))));
            }
        }
    }
    Value::dict(a)
}

fn response_value(r: &Response) -> Value {
    let mut d: Vec<(&[u8], Value)> = vec![(b"id", id_value(&r.id))];
    if let Some(nodes) = &r.nodes {
        let mut blob = Vec::with_capacity(nodes.len() * 26);
        for (id, addr) in nodes {
            blob.extend_from_slice(&id.0);
            blob.extend_from_slice(&addr.ip().octets());
            blob.extend_from_slice(&addr.port().to_be_bytes());
        }
        d.push((b"nodes", Value::Bytes(blob)));
    }
    if let Some(nodes6) = &r.nodes6 {
        let mut blob = Vec::with_capacity(nodes6.len() * 38);
        for (id, addr) in nodes6 {
            blob.extend_from_slice(&id.0);
            blob.extend_from_slice(&addr.ip().octets());
            blob.extend_from_slice(&addr.port().to_be_bytes());
        }
        d.push((b"nodes6", Value::Bytes(blob)));
    }
    if let Some(values) = &r.values {
        d.push((
            b"values",
            Value::List(values.iter().map(|a| Value::Bytes(compact_addr_bytes(a))).collect()),
        ));
    }
    if let Some(token) = &r.token {
        d.push((b"token", Value::bytes(token.clone())));
    }
    if let Some(interval) = r.interval {
        d.push((b"interval", Value::Int(interval)));
    }
    if let Some(num) = r.num {
        d.push((b"num", Value::Int(num)));
    }
    if let Some(samples) = &r.samples {
        d.push((b"samples", Value::Bytes(samples.iter().flat_map(|h| h.0).collect())));
    }
    Value::dict(d)
}
