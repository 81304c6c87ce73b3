//! The HTTP tracker protocol, sans I/O: announce URLs (BEP 3), scrape URLs (BEP 48) and the
//! bencoded replies to both, with compact (BEP 23), IPv6 (BEP 7 `peers6`) and dictionary peers.
//!
//! `info_hash` and `peer_id` are 20 raw bytes: [`percent_encode`] writes every byte outside
//! RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) as `%XX`, byte by byte, never through UTF-8.
//!
//! Replies go through the lenient [`bencode`] decoder; the non-canonical forms it accepted
//! are kept in `deviations`. A reply with `failure reason` is [`Reply::Failure`], whatever else
//! it holds. Refused with an [`HttpError`]: anything that is not a bencoded dictionary, a
//! successful announce without `interval`, negative or out-of-range counts, a compact `peers`
//! string that is not a multiple of 6 bytes (`peers6`: 18), a dictionary peer without a usable
//! `ip` or `port` or with a `peer id` that is not 20 bytes, and scrape `files` keys that are not
//! 20 bytes. A dictionary peer's `ip` may be a host name ([`PeerAddr::Name`]).

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::{Event, PeerId};
use crate::bencode::{self, DecodeError, Deviation, Node, Value};
use crate::compact;
use crate::infohash::InfoHash;

/// Why a URL could not be built or a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The announce URL has a `#fragment`, after which parameters would be lost.
    #[error("announce URL has a fragment")]
    Fragment,
    /// The announce URL's last path segment does not start with `announce` (BEP 48).
    #[error("tracker does not support scrape: last path segment does not start with \"announce\"")]
    ScrapeUnsupported,
    /// The reply is not bencode.
    #[error("reply is not bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// The reply is not a dictionary.
    #[error("reply is not a bencoded dictionary")]
    NotADict,
    /// A required key is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A key has the wrong type or an impossible value.
    #[error("invalid {field} at byte {offset}: {reason}")]
    Invalid {
        /// Which key.
        field: &'static str,
        /// Byte offset of the value in the reply.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Everything an announce carries besides the tracker URL. `compact=1` is always sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The listening port.
    pub port: u16,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes left.
    pub left: u64,
    /// What happened; [`Event::None`] sends no `event`.
    pub event: Event,
    /// Peers wanted, if not the tracker's default.
    pub numwant: Option<u32>,
    /// The client's key, sent as 8 hex digits.
    pub key: Option<u32>,
    /// The `tracker id` from an earlier reply.
    pub tracker_id: Option<Vec<u8>>,
}

/// Percent-encodes raw bytes: unreserved bytes (`A-Z a-z 0-9 - . _ ~`) as themselves, every other
/// byte as `%XX` (upper-case hex).
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes byte by byte (and `+` as a space when `plus_is_space`, as in HTML form
/// values); `None` for a `%` not followed by two hex digits. The inverse of [`percent_encode`].
pub fn percent_decode(text: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|&c| char::from(c).to_digit(16));
                let (hi, lo) = (hex(i + 1)?, hex(i + 2)?);
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn append_params(base: &str, params: &[(&str, String)]) -> Result<String, HttpError> {
    if base.contains('#') {
        return Err(HttpError::Fragment);
    }
    let mut url = String::from(base);
    let mut sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (k, v) in params {
        url.push_str(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(v);
        sep = "&";
    }
    Ok(url)
}

/// The full announce URL: `announce` (which may already hold a query, like a passkey) plus the
/// BEP 3 parameters.
pub fn announce_url(announce: &str, req: &AnnounceRequest) -> Result<String, HttpError> {
    let mut params = vec![
        ("info_hash", percent_encode(&req.info_hash.0)),
        ("peer_id", percent_encode(&req.peer_id)),
        ("port", req.port.to_string()),
        ("uploaded", req.uploaded.to_string()),
        ("downloaded", req.downloaded.to_string()),
        ("left", req.left.to_string()),
        ("compact", "1".to_string()),
    ];
    if let Some(event) = req.event.as_http() {
        params.push(("event", event.to_string()));
    }
    if let Some(n) = req.numwant {
        params.push(("numwant", n.to_string()));
    }
    if let Some(key) = req.key {
        params.push(("key", format!("{key:08X}")));
    }
    if let Some(id) = &req.tracker_id {
        params.push(("trackerid", percent_encode(id)));
    }
    append_params(announce, &params)
}

impl AnnounceRequest {
    /// Reads an announce from the request target a tracker received (`/announce?info_hash=…`),
    /// the other half of [`announce_url`]: `info_hash`, `peer_id` (20 bytes each once decoded),
    /// `port`, `uploaded`, `downloaded` and `left` are required; `event`, `numwant`, `key` (hex)
    /// and `trackerid` are optional (a `key` that is not hex is dropped: BEP 3 leaves it
    /// opaque); other parameters (`compact`, `ip`, a passkey) are ignored.
    /// A repeated parameter is refused (two readings of one announce); offsets are into `target`.
    pub fn parse_target(target: &str) -> Result<AnnounceRequest, HttpError> {
        let bad =
            |field: &'static str, offset: usize, reason: &'static str| HttpError::Invalid { field, offset, reason };
        if target.contains('#') {
            return Err(HttpError::Fragment);
        }
        let query_at = target.find('?').map_or(target.len(), |q| q + 1);
        let query = target.get(query_at..).unwrap_or_default();
        let mut found: std::collections::BTreeMap<&str, (usize, Vec<u8>)> = std::collections::BTreeMap::new();
        let mut offset = query_at;
        for param in query.split('&') {
            let (key, raw) = param.split_once('=').unwrap_or((param, ""));
            let known = [
                "info_hash",
                "peer_id",
                "port",
                "uploaded",
                "downloaded",
                "left",
                "event",
                "numwant",
                "key",
                "trackerid",
            ];
            if let Some(&name) = known.iter().find(|&&k| k == key) {
                let value = percent_decode(raw, false).ok_or(bad(name, offset, "bad percent-encoding"))?;
                if found.insert(name, (offset, value)).is_some() {
                    return Err(bad(name, offset, "repeated"));
                }
            }
            offset += param.len() + 1;
        }
        let twenty = |name: &'static str| -> Result<[u8; 20], HttpError> {
            let (at, v) = found.get(name).ok_or(HttpError::Missing(name))?;
            <[u8; 20]>::try_from(v.as_slice()).map_err(|_| bad(name, *at, "not 20 bytes"))
        };
        let number = |name: &'static str| -> Result<Option<u64>, HttpError> {
            let Some((at, v)) = found.get(name) else {
                return Ok(None);
            };
            std::str::from_utf8(v)
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse().ok())
                .map(Some)
                .ok_or(bad(name, *at, "not a decimal number"))
        };
        let required = |name: &'static str| number(name)?.ok_or(HttpError::Missing(name));
        let port_at = found.get("port").map_or(0, |p| p.0);
        let event = match found.get("event") {
            None => Event::None,
            Some((at, v)) => match v.as_slice() {
                b"" | b"empty" => Event::None,
                b"started" => Event::Started,
                b"completed" => Event::Completed,
                b"stopped" => Event::Stopped,
                _ => return Err(bad("event", *at, "not started, completed, stopped or empty")),
            },
        };
        // BEP 3 leaves `key` opaque; clients differ (aria2 sends raw bytes). One that is not
        // up to 8 hex digits is not an error, just not a key this type can hold.
        let key = found
            .get("key")
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .and_then(|t| u32::from_str_radix(t, 16).ok());
        Ok(AnnounceRequest {
            info_hash: InfoHash(twenty("info_hash")?),
            peer_id: twenty("peer_id")?,
            port: u16::try_from(required("port")?).map_err(|_| bad("port", port_at, "out of range"))?,
            uploaded: required("uploaded")?,
            downloaded: required("downloaded")?,
            left: required("left")?,
            event,
            numwant: number("numwant")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            key,
            tracker_id: found.get("trackerid").map(|(_, v)| v.clone()),
        })
    }
}

/// The scrape URL for `announce` (BEP 48): the last `/` of the path must be followed by
/// `announce`, which becomes `scrape` (`/x/announce.php?k=v` → `/x/scrape.php?k=v`); then one
/// `info_hash` parameter per hash (none: scrape everything, if the tracker allows it).
pub fn scrape_url(announce: &str, info_hashes: &[InfoHash]) -> Result<String, HttpError> {
    if announce.contains('#') {
        return Err(HttpError::Fragment);
    }
    let path_end = announce.find('?').unwrap_or(announce.len());
    let slash = announce[..path_end].rfind('/').ok_or(HttpError::ScrapeUnsupported)?;
    let segment = &announce[slash + 1..path_end];
    if !segment.starts_with("announce") {
        return Err(HttpError::ScrapeUnsupported);
    }
    let base = format!(
        "{}scrape{}",
        &announce[..slash + 1],
        &announce[slash + 1 + "announce".len()..]
    );
    let params: Vec<_> = info_hashes
        .iter()
        .map(|h| ("info_hash", percent_encode(&h.0)))
        .collect();
    append_params(&base, &params)
}

/// Where a peer can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name from a dictionary peer's `ip`, with its port.
    Name(String, u16),
}

/// A peer from an announce reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Its address.
    pub addr: PeerAddr,
    /// Its peer id (dictionary form only).
    pub peer_id: Option<PeerId>,
}

/// A successful announce reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    /// `warning message`.
    pub warning: Option<Vec<u8>>,
    /// Seconds between regular announces.
    pub interval: u32,
    /// `min interval`: announces must not be more frequent.
    pub min_interval: Option<u32>,
    /// Seeders.
    pub complete: Option<u64>,
    /// Leechers.
    pub incomplete: Option<u64>,
    /// `tracker id`, to send back in later announces.
    pub tracker_id: Option<Vec<u8>>,
    /// Peers: `peers` (compact or dictionaries) first, then `peers6`.
    pub peers: Vec<Peer>,
    /// Non-canonical bencode accepted (not part of the encoding).
    pub deviations: Vec<Deviation>,
}

/// A `failure reason` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reason, as sent.
    pub reason: Vec<u8>,
    /// Non-canonical bencode accepted.
    pub deviations: Vec<Deviation>,
}

/// A tracker reply: the answer, or the tracker's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// The tracker answered.
    Ok(T),
    /// The tracker sent `failure reason`.
    Failure(Failure),
}

/// One torrent's counts in a scrape reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeFile {
    /// Seeders.
    pub complete: u64,
    /// Completed downloads ever reported.
    pub downloaded: u64,
    /// Leechers.
    pub incomplete: u64,
}

/// A successful scrape reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrapeResponse {
    /// Per info-hash counts, in wire order.
    pub files: Vec<(InfoHash, ScrapeFile)>,
    /// Non-canonical bencode accepted.
    pub deviations: Vec<Deviation>,
}

fn invalid(field: &'static str, node: &Node<'_>, reason: &'static str) -> HttpError {
    HttpError::Invalid {
        field,
        offset: node.offset(),
        reason,
    }
}

fn int_field<T: TryFrom<i64>>(dict: &Node<'_>, key: &'static str) -> Result<Option<T>, HttpError> {
    let Some(node) = dict.get(key.as_bytes()) else {
        return Ok(None);
    };
    let i = node.as_int().ok_or_else(|| invalid(key, node, "not an integer"))?;
    T::try_from(i).map(Some).map_err(|_| invalid(key, node, "out of range"))
}

fn bytes_field(dict: &Node<'_>, key: &'static str) -> Result<Option<Vec<u8>>, HttpError> {
    let Some(node) = dict.get(key.as_bytes()) else {
        return Ok(None);
    };
    node.as_bytes()
        .map(|b| Some(b.to_vec()))
        .ok_or_else(|| invalid(key, node, "not a byte string"))
}

/// Decodes a reply and splits off `failure reason`.
fn open(body: &[u8]) -> Result<Result<(bencode::Decoded<'_>, Vec<Deviation>), Failure>, HttpError> {
    let decoded = bencode::decode(body)?;
    if decoded.root.as_dict().is_none() {
        return Err(HttpError::NotADict);
    }
    let deviations = decoded.deviations.clone();
    if let Some(reason) = bytes_field(&decoded.root, "failure reason")? {
        return Ok(Err(Failure { reason, deviations }));
    }
    Ok(Ok((decoded, deviations)))
}

fn compact_peers(node: &Node<'_>, field: &'static str, entry: usize) -> Result<Vec<Peer>, HttpError> {
    let bytes = node
        .as_bytes()
        .ok_or_else(|| invalid(field, node, "not a byte string"))?;
    if bytes.len() % entry != 0 {
        return Err(invalid(
            field,
            node,
            if entry == 6 {
                "length is not a multiple of 6"
            } else {
                "length is not a multiple of 18"
            },
        ));
    }
    Ok(bytes
        .chunks_exact(entry)
        .filter_map(compact::decode_addr)
        .map(|addr| Peer {
            addr: PeerAddr::Ip(addr),
            peer_id: None,
        })
        .collect())
}

fn dict_peer(node: &Node<'_>) -> Result<Peer, HttpError> {
    if node.as_dict().is_none() {
        return Err(invalid("peers", node, "list entry is not a dictionary"));
    }
    let ip_node = node.get(b"ip").ok_or(HttpError::Missing("peer ip"))?;
    let ip = ip_node
        .as_bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("peer ip", ip_node, "not a non-empty UTF-8 string"))?;
    let port = int_field::<u16>(node, "port")?.ok_or(HttpError::Missing("peer port"))?;
    let addr = match ip.parse::<IpAddr>() {
        Ok(ip) => PeerAddr::Ip(SocketAddr::new(ip, port)),
        Err(_) => PeerAddr::Name(ip.to_string(), port),
    };
    let peer_id = match node.get(b"peer id") {
        None => None,
        Some(n) => Some(
            n.as_bytes()
                .and_then(|b| PeerId::try_from(b).ok())
                .ok_or_else(|| invalid("peer id", n, "not 20 bytes"))?,
        ),
    };
    Ok(Peer { addr, peer_id })
}

impl AnnounceResponse {
    /// Parses an announce reply body.
    pub fn parse(body: &[u8]) -> Result<Reply<Self>, HttpError> {
        let (decoded, deviations) = match open(body)? {
            Ok(d) => d,
            Err(failure) => return Ok(Reply::Failure(failure)),
        };
        let root = &decoded.root;
        let mut peers = Vec::new();
        if let Some(node) = root.get(b"peers") {
            match node.as_list() {
                Some(list) => {
                    for p in list {
                        peers.push(dict_peer(p)?);
                    }
                }
                None => peers = compact_peers(node, "peers", 6)?,
            }
        }
        if let Some(node) = root.get(b"peers6") {
            peers.extend(compact_peers(node, "peers6", 18)?);
        }
        Ok(Reply::Ok(AnnounceResponse {
            warning: bytes_field(root, "warning message")?,
            interval: int_field(root, "interval")?.ok_or(HttpError::Missing("interval"))?,
            min_interval: int_field(root, "min interval")?,
            complete: int_field(root, "complete")?,
            incomplete: int_field(root, "incomplete")?,
            tracker_id: bytes_field(root, "tracker id")?,
            peers,
            deviations,
        }))
    }

    /// The canonical bencoding (for a test tracker). Peers are written compactly (`peers` for
    /// IPv4, `peers6` for IPv6) when none has a peer id or host name, else as dictionaries.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: Value| d.insert(k.as_bytes().to_vec(), v);
        if let Some(w) = &self.warning {
            put("warning message", Value::bytes(w.clone()));
        }
        put("interval", Value::Int(self.interval.into()));
        if let Some(m) = self.min_interval {
            put("min interval", Value::Int(m.into()));
        }
        // Counts above i64::MAX cannot be bencoded; they saturate.
        let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        if let Some(c) = self.complete {
            put("complete", count(c));
        }
        if let Some(c) = self.incomplete {
            put("incomplete", count(c));
        }
        if let Some(t) = &self.tracker_id {
            put("tracker id", Value::bytes(t.clone()));
        }
        let compact = self
            .peers
            .iter()
            .all(|p| p.peer_id.is_none() && matches!(p.addr, PeerAddr::Ip(_)));
        if compact {
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            for p in &self.peers {
                if let PeerAddr::Ip(sa) = p.addr {
                    compact::encode_addr_into(&sa, if sa.is_ipv4() { &mut v4 } else { &mut v6 });
                }
            }
            put("peers", Value::Bytes(v4));
            if !v6.is_empty() {
                put("peers6", Value::Bytes(v6));
            }
        } else {
            let list = self
                .peers
                .iter()
                .map(|p| {
                    let (ip, port) = match &p.addr {
                        PeerAddr::Ip(sa) => (sa.ip().to_string(), sa.port()),
                        PeerAddr::Name(n, port) => (n.clone(), *port),
                    };
                    let mut e = vec![("ip", Value::bytes(ip)), ("port", Value::Int(port.into()))];
                    if let Some(id) = p.peer_id {
                        e.push(("peer id", Value::bytes(id.to_vec())));
                    }
                    Value::dict(e)
                })
                .collect();
            put("peers", Value::List(list));
        }
        Value::Dict(d).encode()
    }
}

impl ScrapeResponse {
    /// Parses a scrape reply body.
    pub fn parse(body: &[u8]) -> Result<Reply<Self>, HttpError> {
        let (decoded, deviations) = match open(body)? {
            Ok(d) => d,
            Err(failure) => return Ok(Reply::Failure(failure)),
        };
        let files_node = decoded.root.get(b"files").ok_or(HttpError::Missing("files"))?;
        let entries = files_node
            .as_dict()
            .ok_or_else(|| invalid("files", files_node, "not a dictionary"))?;
        let mut files = Vec::with_capacity(entries.len());
        for (key, node) in entries {
            let hash =
                <[u8; 20]>::try_from(*key).map_err(|_| invalid("files", node, "key is not a 20-byte info-hash"))?;
            if node.as_dict().is_none() {
                return Err(invalid("files", node, "entry is not a dictionary"));
            }
            let field = |k: &'static str| int_field::<u64>(node, k)?.ok_or(HttpError::Missing(k));
            files.push((
                InfoHash(hash),
                ScrapeFile {
                    complete: field("complete")?,
                    downloaded: field("downloaded")?,
                    incomplete: field("incomplete")?,
                },
            ));
        }
        Ok(Reply::Ok(ScrapeResponse { files, deviations }))
    }

    /// The canonical bencoding (files sorted by info-hash; of repeated hashes the first wins).
    pub fn encode(&self) -> Vec<u8> {
        let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let mut files = std::collections::BTreeMap::new();
        for (h, f) in &self.files {
            files.entry(h.0.to_vec()).or_insert_with(|| {
                Value::dict([
                    ("complete", count(f.complete)),
                    ("downloaded", count(f.downloaded)),
                    ("incomplete", count(f.incomplete)),
                ])
            });
        }
        Value::dict([("files", Value::Dict(files))]).encode()
    }
}

impl Failure {
    /// The canonical bencoding of a failure reply.
    pub fn encode(&self) -> Vec<u8> {
        Value::dict([("failure reason", Value::bytes(self.reason.clone()))]).encode()
    }
}

#[cfg(test)]
mod tests;
