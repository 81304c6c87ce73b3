//! BEP 11 `ut_pex` (peer exchange): the peers a peer is connected to, as an extended message.
//!
//! The payload is a bencoded dictionary of compact address lists: `added` (IPv4, 6 bytes per
//! peer: address, port) with `added.f` (one flag byte per added peer), `added6` (IPv6, 18 bytes
//! per peer) with `added6.f`, and `dropped` / `dropped6` (peers gone since the last message).
//!
//! Refused with an [`ExtError`]: a payload that is not a bencoded dictionary, a list that is not
//! a byte string or not a whole number of entries, and more than [`MAX_PEX_ENTRIES`] entries in
//! one list (BEP 11 asks senders for at most 50 added and 50 dropped per message).
//! Accepted: a flags string whose length does not match its address list is ignored, and those
//! peers get flags 0 (as libtorrent reads it); absent keys are empty lists; unknown keys are
//! ignored. The encoder always writes all six keys, IPv4 peers before IPv6 ones, so a message
//! whose lists are in that order decodes back to itself.

use std::net::SocketAddr;

use super::extension::{ExtDecoded, ExtError, LIMITS, bytes};
use crate::bencode::{self, Value};
use crate::compact;

/// Most entries accepted in one list of one message (four times BEP 11's 50, for lenient senders).
pub const MAX_PEX_ENTRIES: usize = 200;

/// One added peer and the flags its sender gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PexPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// BEP 11 flags ([`PexPeer::SEED`] and the others), 0 if none were sent.
    pub flags: u8,
}

impl PexPeer {
    /// Flag 0x01: prefers encrypted connections.
    pub const PREFERS_ENCRYPTION: u8 = 0x01;
    /// Flag 0x02: a seed (or upload-only).
    pub const SEED: u8 = 0x02;
    /// Flag 0x04: supports uTP.
    pub const UTP: u8 = 0x04;
    /// Flag 0x08: supports `ut_holepunch`.
    pub const HOLEPUNCH: u8 = 0x08;
    /// Flag 0x10: reachable (the sender connected to it, rather than the other way round).
    pub const REACHABLE: u8 = 0x10;
}

/// A `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PexMessage {
    /// Peers added since the last message: `added` (IPv4) then `added6` (IPv6), in wire order.
    pub added: Vec<PexPeer>,
    /// Peers dropped since the last message: `dropped` then `dropped6`, in wire order.
    pub dropped: Vec<SocketAddr>,
}

/// Entry size of a compact IPv4 address and port.
const V4: usize = 6;
/// Entry size of a compact IPv6 address and port.
const V6: usize = 18;

fn compact_list(root: &bencode::Node<'_>, field: &'static str, unit: usize) -> Result<Vec<SocketAddr>, ExtError> {
    let Some(raw) = bytes(root, field.as_bytes(), field)? else {
        return Ok(Vec::new());
    };
    if raw.len() % unit != 0 {
        return Err(ExtError::BadLength {
            field,
            len: raw.len(),
            unit,
        });
    }
    let count = raw.len() / unit;
    if count > MAX_PEX_ENTRIES {
        return Err(ExtError::TooMany {
            field,
            count,
            max: MAX_PEX_ENTRIES,
        });
    }
    Ok(raw.chunks_exact(unit).filter_map(compact::decode_addr).collect())
}

fn with_flags(root: &bencode::Node<'_>, addrs: Vec<SocketAddr>, field: &'static str) -> Result<Vec<PexPeer>, ExtError> {
    let flags = bytes(root, field.as_bytes(), field)?.filter(|f| f.len() == addrs.len());
    Ok(addrs
        .into_iter()
        .enumerate()
        .map(|(i, addr)| PexPeer {
            addr,
            flags: flags.map_or(0, |f| f[i]),
        })
        .collect())
}

fn compact(addrs: impl Iterator<Item = SocketAddr>, v6: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for a in addrs.filter(|a| a.is_ipv6() == v6) {
        compact::encode_addr_into(&a, &mut out);
    }
    out
}

impl PexMessage {
    /// Decodes a `ut_pex` payload (after the extended id byte).
    pub fn decode(payload: &[u8]) -> Result<ExtDecoded<Self>, ExtError> {
        let tree = bencode::decode_with(payload, LIMITS)?;
        let root = &tree.root;
        if root.as_dict().is_none() {
            return Err(ExtError::NotADict);
        }
        let mut added = with_flags(root, compact_list(root, "added", V4)?, "added.f")?;
        added.extend(with_flags(root, compact_list(root, "added6", V6)?, "added6.f")?);
        let mut dropped = compact_list(root, "dropped", V4)?;
        dropped.extend(compact_list(root, "dropped6", V6)?);
        Ok(ExtDecoded {
            value: PexMessage { added, dropped },
            deviations: tree.deviations,
        })
    }

    /// The canonical payload: all six keys, IPv4 entries in `added`/`dropped` and IPv6 entries in
    /// `added6`/`dropped6`, each in the order of this message.
    pub fn encode(&self) -> Vec<u8> {
        let flags = |v6: bool| -> Vec<u8> {
            self.added
                .iter()
                .filter(|p| p.addr.is_ipv6() == v6)
                .map(|p| p.flags)
                .collect()
        };
        let added = || self.added.iter().map(|p| p.addr);
        Value::dict([
            ("added", Value::Bytes(compact(added(), false))),
            ("added.f", Value::Bytes(flags(false))),
            ("added6", Value::Bytes(compact(added(), true))),
            ("added6.f", Value::Bytes(flags(true))),
            ("dropped", Value::Bytes(compact(self.dropped.iter().copied(), false))),
            ("dropped6", Value::Bytes(compact(self.dropped.iter().copied(), true))),
        ])
        .encode()
    }
}
