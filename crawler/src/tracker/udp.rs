//! The UDP tracker protocol (BEP 15), sans I/O: exact big-endian packet layouts in both
//! directions, transaction-id matching, the 60-second connection-id lifetime and the
//! `15 * 2^n` second retransmission schedule.
//!
//! | packet | layout (bytes) |
//! |---|---|
//! | connect request | protocol id `0x41727101980` (8), action 0 (4), transaction id (4) |
//! | connect response | action 0 (4), transaction id (4), connection id (8) |
//! | announce request | connection id (8), action 1 (4), transaction id (4), info-hash (20), peer id (20), downloaded (8), left (8), uploaded (8), event (4), IPv4 (4), key (4), num_want (4, signed), port (2): 98 |
//! | announce response | action 1 (4), transaction id (4), interval (4), leechers (4), seeders (4), peers 6 bytes each (IPv4, port) |
//! | scrape request | connection id (8), action 2 (4), transaction id (4), 1 to [`MAX_SCRAPE_HASHES`] info-hashes of 20 |
//! | scrape response | action 2 (4), transaction id (4), 12 bytes per info-hash (seeders, completed, leechers) |
//! | error | action 3 (4), transaction id (4), message (rest) |
//!
//! A packet shorter than its fixed part is an error. Bytes after the fixed part of a connect
//! request, connect response or announce request (BEP 41 options, padding) are ignored. The
//! variable parts must divide exactly: an announce response peer section that is not a multiple
//! of 6 bytes, a scrape response that is not a multiple of 12, or a scrape request that is not a
//! multiple of 20 is an error. Announce responses are decoded as IPv4 (the BEP 15 layout over
//! IPv4 transport).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::{Event, PeerId};
use crate::infohash::InfoHash;

/// The magic constant opening every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info-hashes one scrape request may carry (fits a 1500-byte MTU).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// How long a connection id may be used after it was received (BEP 15: one minute).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// The last retry index of the retransmission schedule (`15 * 2^8` = 3840 seconds).
pub const MAX_RETRIES: u32 = 8;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;
const ANNOUNCE_REQUEST_LEN: usize = 98;

/// Why a packet could not be decoded or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UdpError {
    /// The packet ends before the fixed part of what it announces.
    #[error("{what} truncated: {need} bytes needed, {got} present")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// An action number this side of the protocol does not know.
    #[error("unknown action {0}")]
    UnknownAction(u32),
    /// A connect request without the BEP 15 protocol id.
    #[error("connect request with protocol id {0:#x}, expected 0x41727101980")]
    BadProtocolId(u64),
    /// An announce request with an event number outside 0..=3.
    #[error("unknown announce event {0}")]
    UnknownEvent(u32),
    /// An announce response whose peer section is not a whole number of 6-byte entries.
    #[error("announce response peer section of {0} bytes is not a multiple of 6")]
    PeerSection(usize),
    /// A scrape response whose body is not a whole number of 12-byte entries.
    #[error("scrape response body of {0} bytes is not a multiple of 12")]
    ScrapeSection(usize),
    /// A scrape request whose body is not a whole number of 20-byte info-hashes.
    #[error("scrape request body of {0} bytes is not a multiple of 20")]
    ScrapeHashes(usize),
    /// A scrape request with no info-hash.
    #[error("a scrape request needs at least one info-hash")]
    NoInfoHashes,
    /// A scrape request with more than [`MAX_SCRAPE_HASHES`] info-hashes.
    #[error("{0} info-hashes in one scrape request, at most 74 allowed")]
    TooManyInfoHashes(usize),
}

/// A connect request: asks for a connection id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Chosen at random by the client.
    pub transaction_id: u32,
}

/// An announce request (action 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// From the connect response.
    pub connection_id: u64,
    /// Chosen at random by the client.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes left to download.
    pub left: u64,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// What happened.
    pub event: Event,
    /// The peer's IPv4 address, or `0.0.0.0` for the packet's source address.
    pub ip: Ipv4Addr,
    /// A random key that lets the tracker recognise the client across address changes.
    pub key: u32,
    /// How many peers are wanted; -1 for the tracker's default.
    pub num_want: i32,
    /// The peer's listening port.
    pub port: u16,
}

/// A scrape request (action 2) for 1 to [`MAX_SCRAPE_HASHES`] info-hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// From the connect response.
    pub connection_id: u64,
    /// Chosen at random by the client.
    pub transaction_id: u32,
    info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// A scrape request; refuses an empty list and more than [`MAX_SCRAPE_HASHES`] hashes.
    pub fn new(connection_id: u64, transaction_id: u32, info_hashes: Vec<InfoHash>) -> Result<Self, UdpError> {
        if info_hashes.is_empty() {
            return Err(UdpError::NoInfoHashes);
        }
        if info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(UdpError::TooManyInfoHashes(info_hashes.len()));
        }
        Ok(ScrapeRequest {
            connection_id,
            transaction_id,
            info_hashes,
        })
    }

    /// The info-hashes, in request order (the response answers in the same order).
    pub fn info_hashes(&self) -> &[InfoHash] {
        &self.info_hashes
    }
}

/// A packet from client to tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Action 0.
    Connect(ConnectRequest),
    /// Action 1.
    Announce(AnnounceRequest),
    /// Action 2.
    Scrape(ScrapeRequest),
}

/// An announce response (action 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Echoed from the request.
    pub transaction_id: u32,
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Peers, in wire order.
    pub peers: Vec<SocketAddrV4>,
}

/// One torrent's counts in a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Completed downloads ever reported.
    pub completed: u32,
    /// Peers still downloading.
    pub leechers: u32,
}

/// A packet from tracker to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Action 0.
    Connect {
        /// Echoed from the request.
        transaction_id: u32,
        /// To use in announce and scrape requests for [`CONNECTION_ID_LIFETIME`].
        connection_id: u64,
    },
    /// Action 1.
    Announce(AnnounceResponse),
    /// Action 2: one entry per requested info-hash, in request order.
    Scrape {
        /// Echoed from the request.
        transaction_id: u32,
        /// The counts.
        stats: Vec<ScrapeStats>,
    },
    /// Action 3.
    Error {
        /// Echoed from the request.
        transaction_id: u32,
        /// Human-readable, not necessarily UTF-8.
        message: Vec<u8>,
    },
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
    need: usize,
}

impl<'a> Reader<'a> {
    /// A reader that first checks `buf` holds at least `need` bytes.
    fn new(buf: &'a [u8], what: &'static str, need: usize) -> Result<Self, UdpError> {
        if buf.len() < need {
            return Err(UdpError::Truncated {
                what,
                need,
                got: buf.len(),
            });
        }
        Ok(Reader {
            buf,
            pos: 0,
            what,
            need,
        })
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], UdpError> {
        let end = self.pos + N;
        let bytes = self.buf.get(self.pos..end).ok_or(UdpError::Truncated {
            what: self.what,
            need: self.need.max(end),
            got: self.buf.len(),
        })?;
        self.pos = end;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, UdpError> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, UdpError> {
        self.take().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, UdpError> {
        self.take().map(u64::from_be_bytes)
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

fn action_of(buf: &[u8], at: usize, what: &'static str) -> Result<u32, UdpError> {
    let mut r = Reader::new(buf, what, at + 4)?;
    r.pos = at;
    r.u32()
}

impl Request {
    /// The transaction id the response must echo.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect(r) => r.transaction_id,
            Request::Announce(r) => r.transaction_id,
            Request::Scrape(r) => r.transaction_id,
        }
    }

    /// The exact bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        match self {
            Request::Connect(r) => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&r.transaction_id.to_be_bytes());
            }
            Request::Announce(r) => {
                out.extend_from_slice(&r.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&r.transaction_id.to_be_bytes());
                out.extend_from_slice(&r.info_hash.0);
                out.extend_from_slice(&r.peer_id);
                out.extend_from_slice(&r.downloaded.to_be_bytes());
                out.extend_from_slice(&r.left.to_be_bytes());
                out.extend_from_slice(&r.uploaded.to_be_bytes());
                out.extend_from_slice(&r.event.to_udp().to_be_bytes());
                out.extend_from_slice(&r.ip.octets());
                out.extend_from_slice(&r.key.to_be_bytes());
                out.extend_from_slice(&r.num_want.to_be_bytes());
                out.extend_from_slice(&r.port.to_be_bytes());
            }
            Request::Scrape(r) => {
                out.extend_from_slice(&r.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&r.transaction_id.to_be_bytes());
                for h in &r.info_hashes {
                    out.extend_from_slice(&h.0);
                }
            }
        }
        out
    }

    /// Decodes a client packet (the tracker side).
    pub fn decode(buf: &[u8]) -> Result<Self, UdpError> {
        match action_of(buf, 8, "request header")? {
            ACTION_CONNECT => {
                let mut r = Reader::new(buf, "connect request", 16)?;
                let protocol_id = r.u64()?;
                if protocol_id != PROTOCOL_ID {
                    return Err(UdpError::BadProtocolId(protocol_id));
                }
                r.u32()?;
                Ok(Request::Connect(ConnectRequest {
                    transaction_id: r.u32()?,
                }))
            }
            ACTION_ANNOUNCE => {
                let mut r = Reader::new(buf, "announce request", ANNOUNCE_REQUEST_LEN)?;
                let connection_id = r.u64()?;
                r.u32()?;
                let transaction_id = r.u32()?;
                let info_hash = InfoHash(r.take()?);
                let peer_id = r.take()?;
                let downloaded = r.u64()?;
                let left = r.u64()?;
                let uploaded = r.u64()?;
                let event_n = r.u32()?;
                let event = Event::from_udp(event_n).ok_or(UdpError::UnknownEvent(event_n))?;
                let ip = Ipv4Addr::from(r.take::<4>()?);
                let key = r.u32()?;
                let num_want = i32::from_be_bytes(r.take()?);
                let port = r.u16()?;
                Ok(Request::Announce(AnnounceRequest {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip,
                    key,
                    num_want,
                    port,
                }))
            }
            ACTION_SCRAPE => {
                let mut r = Reader::new(buf, "scrape request", 16)?;
                let connection_id = r.u64()?;
                r.u32()?;
                let transaction_id = r.u32()?;
                let body = r.rest();
                if body.len() % 20 != 0 {
                    return Err(UdpError::ScrapeHashes(body.len()));
                }
                let hashes = body
                    .chunks_exact(20)
                    .map(|c| {
                        let mut h = [0; 20];
                        h.copy_from_slice(c);
                        InfoHash(h)
                    })
                    .collect();
                ScrapeRequest::new(connection_id, transaction_id, hashes).map(Request::Scrape)
            }
            other => Err(UdpError::UnknownAction(other)),
        }
    }
}

impl Response {
    /// The transaction id echoed by the tracker.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
            Response::Announce(r) => r.transaction_id,
        }
    }

    /// Whether this packet answers `request`: the same transaction id, and either the same
    /// action or an error. A scrape response must also carry one entry per requested hash.
    pub fn answers(&self, request: &Request) -> bool {
        if self.transaction_id() != request.transaction_id() {
            return false;
        }
        match (self, request) {
            (Response::Error { .. }, _)
            | (Response::Connect { .. }, Request::Connect(_))
            | (Response::Announce(_), Request::Announce(_)) => true,
            (Response::Scrape { stats, .. }, Request::Scrape(req)) => stats.len() == req.info_hashes.len(),
            _ => false,
        }
    }

    /// The exact bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce(r) => {
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&r.transaction_id.to_be_bytes());
                out.extend_from_slice(&r.interval.to_be_bytes());
                out.extend_from_slice(&r.leechers.to_be_bytes());
                out.extend_from_slice(&r.seeders.to_be_bytes());
                for p in &r.peers {
                    out.extend_from_slice(&p.ip().octets());
                    out.extend_from_slice(&p.port().to_be_bytes());
                }
            }
            Response::Scrape { transaction_id, stats } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    out.extend_from_slice(&s.seeders.to_be_bytes());
                    out.extend_from_slice(&s.completed.to_be_bytes());
                    out.extend_from_slice(&s.leechers.to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message);
            }
        }
        out
    }

    /// Decodes a tracker packet (the client side).
    pub fn decode(buf: &[u8]) -> Result<Self, UdpError> {
        match action_of(buf, 0, "response header")? {
            ACTION_CONNECT => {
                let mut r = Reader::new(buf, "connect response", 16)?;
                r.u32()?;
                Ok(Response::Connect {
                    transaction_id: r.u32()?,
                    connection_id: r.u64()?,
                })
            }
            ACTION_ANNOUNCE => {
                let mut r = Reader::new(buf, "announce response", 20)?;
                r.u32()?;
                let transaction_id = r.u32()?;
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let body = r.rest();
                if body.len() % 6 != 0 {
                    return Err(UdpError::PeerSection(body.len()));
                }
                let peers = body
                    .chunks_exact(6)
                    .map(|c| SocketAddrV4::new(Ipv4Addr::new(c[0], c[1], c[2], c[3]), u16::from_be_bytes([c[4], c[5]])))
                    .collect();
                Ok(Response::Announce(AnnounceResponse {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                }))
            }
            ACTION_SCRAPE => {
                let mut r = Reader::new(buf, "scrape response", 8)?;
                r.u32()?;
                let transaction_id = r.u32()?;
                let body = r.rest();
                if body.len() % 12 != 0 {
                    return Err(UdpError::ScrapeSection(body.len()));
                }
                let stats = body
                    .chunks_exact(12)
                    .map(|c| ScrapeStats {
                        seeders: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        completed: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                        leechers: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                    })
                    .collect();
                Ok(Response::Scrape { transaction_id, stats })
            }
            ACTION_ERROR => {
                let mut r = Reader::new(buf, "error response", 8)?;
                r.u32()?;
                let transaction_id = r.u32()?;
                Ok(Response::Error {
                    transaction_id,
                    message: r.rest().to_vec(),
                })
            }
            other => Err(UdpError::UnknownAction(other)),
        }
    }
}

/// A connection id with the instant it was received; usable for [`CONNECTION_ID_LIFETIME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionId {
    /// The id from the connect response.
    pub id: u64,
    /// When the connect response arrived.
    pub obtained_at: Instant,
}

impl ConnectionId {
    /// Whether the id may still be used at `now` (less than 60 s after it was obtained; an
    /// instant before `obtained_at` counts as no time elapsed).
    pub fn is_valid(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.obtained_at) < CONNECTION_ID_LIFETIME
    }

    /// The first instant at which the id is no longer valid.
    pub fn expires_at(&self) -> Instant {
        self.obtained_at + CONNECTION_ID_LIFETIME
    }
}

/// How long to wait for a reply to the `n`-th transmission (0 = first send): `15 * 2^n`
/// seconds for `n` in `0..=8`; `None` after the last retry, when the client should give up.
pub fn retransmit_timeout(n: u32) -> Option<Duration> {
    retransmit_timeout_from(Duration::from_secs(15), n)
}

/// The same schedule from another base (tests use milliseconds): `base * 2^n` for `n` in `0..=8`.
pub fn retransmit_timeout_from(base: Duration, n: u32) -> Option<Duration> {
    (n <= MAX_RETRIES).then(|| base.saturating_mul(1 << n))
}

#[cfg(test)]
mod tests;
