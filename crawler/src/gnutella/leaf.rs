//! The content probe: join an ultrapeer as a leaf, send one Query, collect the QueryHits for a
//! bounded time, and optionally download a hit over HTTP to check that what is served is what
//! was advertised. It owns these two exchanges over tokio; the descriptors are the codec's, the
//! HTTP client is [`crate::probe::http`]'s, and judging many hits is
//! [`crate::analysis::pollution`]'s.
//!
//! # The query ([`query`])
//!
//! One [`ProbeKind::GnutellaQuery`] probe per attempt: connect, the full three-block handshake
//! as a leaf (`X-Ultrapeer: False`, `X-Query-Routing: 0.1`, no `Accept-Encoding`, so the stream
//! is never deflated; an ultrapeer that deflates anyway is a protocol error), then one Query
//! (a modern GUID, [`QueryConfig::ttl`], hops 0, the 0.6 min-speed flags "flags in use" and
//! "firewalled", since we accept no connections, and a HUGE `urn:sha1:` request). For
//! [`QueryConfig::wait`] the probe reads descriptors: Pings are answered with a Pong (TTL one
//! more than the Ping's hops, port 0 as we do not listen), QueryHits for our GUID are kept, a Bye or a closed
//! connection ends the wait early, everything else is dropped. At most
//! [`QueryConfig::max_messages`] descriptors are read and [`QueryConfig::max_hits`] QueryHits
//! kept; every descriptor is bounded by [`MessageLimits`]. Then we send a Bye and close. The
//! visit is `ok` with the ultrapeer's `User-Agent` as client and the QueryHits as raw (their
//! wire bytes, at most [`MAX_RAW_HITS`]); a refusal is `remote_error`, a broken stream
//! `protocol_error`. The wait runs inside the engine's attempt, so it must be shorter than the
//! engine's timeout. Each responder becomes a [`SourceKind::GnutellaHit`] sighting (source: the
//! ultrapeer).
//!
//! # The download check ([`verify_hit`])
//!
//! One [`ProbeKind::GnutellaDownload`] probe per attempt: `GET /uri-res/N2R?urn:sha1:<base32>`
//! when the hit advertised a SHA-1 (HUGE), else `GET /get/<index>/<name>`, at most
//! [`DownloadConfig::max_size`] bytes, then the served size and SHA-1 against the advertised
//! ones. A mismatch is still a [`DownloadCheck`] for the caller, but the visit says
//! `protocol_error`; an HTTP status other than 200 is `remote_error`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::crawl::USER_AGENT;
use super::{
    Bye, Guid, Handshake, HandshakeDecoder, HandshakeLimits, HitResult, Message, MessageDecoder, MessageLimits,
    Payload, Pong, Query, QueryHit, StartLine,
};
use crate::analysis::pollution::{Hit, ServedFile};
use crate::engine::{Engine, ProbeError, Reply, Target};
use crate::infohash::InfoHash;
use crate::observe::{Observation, Outcome, ProbeKind, Sighting, SourceKind, Visit, now_micros};
use crate::probe::Error;
use crate::probe::http::{self, HttpConfig, HttpUrl};

/// Bytes of QueryHits kept as a query visit's raw.
pub const MAX_RAW_HITS: usize = 1 << 20;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 << 10;

/// The 0.6 min-speed word: bit 15 "flags in use", bit 14 "firewalled" (the GDF proposal).
const QUERY_FLAGS: u16 = 0x8000 | 0x4000;

/// What the query asks and how long it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryConfig {
    /// The search text.
    pub criteria: String,
    /// The Query's TTL.
    pub ttl: u8,
    /// How long to collect QueryHits after sending the Query.
    pub wait: Duration,
    /// QueryHit descriptors kept.
    pub max_hits: usize,
    /// Descriptors read in all.
    pub max_messages: usize,
    /// Our `User-Agent`.
    pub user_agent: String,
    /// Bounds on the ultrapeer's handshake block.
    pub handshake_limits: HandshakeLimits,
    /// Bounds on each descriptor.
    pub message_limits: MessageLimits,
}

impl QueryConfig {
    /// A query for `criteria`: TTL 3, 10 s, 256 QueryHits, 10,000 descriptors, default limits.
    pub fn new(criteria: impl Into<String>) -> Self {
        QueryConfig {
            criteria: criteria.into(),
            ttl: 3,
            wait: Duration::from_secs(10),
            max_hits: 256,
            max_messages: 10_000,
            user_agent: USER_AGENT.to_owned(),
            handshake_limits: HandshakeLimits::default(),
            message_limits: MessageLimits::default(),
        }
    }
}

/// One QueryHit as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedHit {
    /// Hops it took to reach us.
    pub hops: u8,
    /// The QueryHit.
    pub hit: QueryHit,
}

impl ReceivedHit {
    /// The responder's address, as the QueryHit gives it.
    pub fn responder(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.hit.ip), self.hit.port)
    }
}

/// Why the collection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryEnd {
    /// [`QueryConfig::wait`] passed.
    Waited,
    /// The ultrapeer sent a Bye with this code.
    Bye(u16),
    /// The ultrapeer closed the connection.
    Closed,
    /// [`QueryConfig::max_hits`] or [`QueryConfig::max_messages`] was reached.
    Limit,
}

/// What one query brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    /// The ultrapeer queried.
    pub ultrapeer: SocketAddr,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
    /// Our Query's GUID.
    pub guid: Guid,
    /// The search text.
    pub criteria: String,
    /// The QueryHits for our GUID, in arrival order.
    pub hits: Vec<ReceivedHit>,
    /// Pings answered.
    pub pings_answered: usize,
    /// Descriptors read.
    pub messages: usize,
    /// Deviations the descriptor decoder accepted.
    pub deviations: usize,
    /// Why the collection ended.
    pub end: QueryEnd,
    raw: Vec<u8>,
}

impl Reply for QueryOutcome {
    fn describe(&self, visit: &mut Visit) {
        visit.client = self.user_agent.as_ref().map(|ua| ua.as_bytes().to_vec());
        visit.deviations = u32::try_from(self.deviations).unwrap_or(u32::MAX);
        visit.raw = Some(self.raw.clone());
    }
}

impl QueryOutcome {
    /// The QueryHits' wire bytes as kept for the visit (at most [`MAX_RAW_HITS`]).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Every result of every hit, for [`crate::analysis::pollution`].
    pub fn analysis_hits(&self) -> Vec<Hit> {
        self.hits
            .iter()
            .flat_map(|h| {
                h.hit.results.iter().map(|r| Hit {
                    query: self.criteria.clone(),
                    responder: h.responder(),
                    servent_id: h.hit.servent_id.0,
                    file_name: String::from_utf8_lossy(&r.name).into_owned(),
                    size: u64::from(r.file_size),
                    sha1: r.sha1(),
                })
            })
            .collect()
    }
}

/// A fresh modern GUID.
fn random_guid() -> Guid {
    let (a, b) = (crate::probe::random_u64(), crate::probe::random_u64());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    Guid::modern(bytes)
}

/// The leaf's first block.
fn leaf_connect(user_agent: &str) -> Handshake {
    let mut h = Handshake::connect();
    h.headers.set("User-Agent", user_agent);
    h.headers.set("X-Ultrapeer", "False");
    h.headers.set("X-Query-Routing", "0.1");
    h
}

/// Joins `ultrapeer` as a leaf, queries and collects (see the module docs).
pub async fn query(engine: &Engine, ultrapeer: SocketAddr, cfg: &QueryConfig) -> Result<QueryOutcome, Error> {
    if cfg.wait >= engine.config().timeout {
        return Err(Error::Unusable(format!(
            "the wait ({:?}) must be shorter than the engine's timeout ({:?})",
            cfg.wait,
            engine.config().timeout
        )));
    }
    let guid = random_guid();
    let hello = leaf_connect(&cfg.user_agent)
        .encode()
        .map_err(|e| Error::Unusable(format!("cannot encode our handshake: {e}")))?;
    let ack = Handshake::response(200, "OK")
        .encode()
        .map_err(|e| Error::Unusable(e.to_string()))?;
    let q = Message {
        guid,
        ttl: cfg.ttl,
        hops: 0,
        payload: Payload::Query(Query {
            min_speed: QUERY_FLAGS.swap_bytes(),
            criteria: cfg.criteria.as_bytes().to_vec(),
            extensions: b"urn:sha1:\0".to_vec(),
        }),
    }
    .encode()
    .map_err(|e| Error::Unusable(format!("cannot encode the query: {e}")))?;
    let target = Target::addr(ProbeKind::GnutellaQuery, ultrapeer);
    let outcome = engine
        .probe(&target, || {
            let mut wire = ack.clone();
            wire.extend_from_slice(&q);
            query_attempt(ultrapeer, guid, hello.clone(), wire, cfg)
        })
        .await?;
    let at = now_micros();
    let mut seen = std::collections::BTreeSet::new();
    for h in &outcome.hits {
        if seen.insert(h.responder()) {
            let row = Sighting {
                at,
                source_kind: SourceKind::GnutellaHit,
                source: ultrapeer.to_string(),
                source_id: None,
                info_hash: None,
                addr: h.responder(),
                id: None,
            };
            engine.recorder().record(Observation::Sighting(row)).await;
        }
    }
    Ok(outcome)
}

async fn query_attempt(
    addr: SocketAddr,
    guid: Guid,
    hello: Vec<u8>,
    ack_and_query: Vec<u8>,
    cfg: &QueryConfig,
) -> Result<QueryOutcome, ProbeError> {
    let io = |e: std::io::Error| ProbeError::io(&e);
    let mut stream = TcpStream::connect(addr).await.map_err(io)?;
    stream.write_all(&hello).await.map_err(io)?;
    let mut hs = HandshakeDecoder::with_limits(cfg.handshake_limits);
    let mut chunk = vec![0u8; READ_CHUNK];
    let reply = loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ProbeError::new(
                Outcome::ProtocolError,
                "connection closed during the handshake",
            ));
        }
        hs.feed(&chunk[..n]);
        match hs.next_handshake() {
            Ok(Some(d)) => break d,
            Ok(None) => {}
            Err(e) => return Err(ProbeError::new(Outcome::ProtocolError, e.to_string())),
        }
    };
    let user_agent = reply.handshake.headers.user_agent().map(str::to_owned);
    match reply.handshake.start {
        StartLine::Response { code: 200, .. } => {}
        StartLine::Response { code, reason, .. } => {
            let message = format!("status {code} {reason}");
            return Err(ProbeError::new(Outcome::RemoteError, message.trim_end()));
        }
        StartLine::Connect { .. } => {
            return Err(ProbeError::new(
                Outcome::ProtocolError,
                "a connect line instead of a response",
            ));
        }
    }
    if reply.handshake.headers.content_deflate() {
        return Err(ProbeError::new(
            Outcome::ProtocolError,
            "deflated stream, which we did not offer",
        ));
    }
    stream.write_all(&ack_and_query).await.map_err(io)?;
    let deadline = Instant::now() + cfg.wait;
    let mut decoder = MessageDecoder::with_limits(cfg.message_limits);
    decoder.feed(&hs.take_buffered());
    let mut out = QueryOutcome {
        ultrapeer: addr,
        user_agent,
        guid,
        criteria: cfg.criteria.clone(),
        hits: Vec::new(),
        pings_answered: 0,
        messages: 0,
        deviations: 0,
        end: QueryEnd::Waited,
        raw: Vec::new(),
    };
    'collect: loop {
        loop {
            let decoded = match decoder.next_message() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    let err = ProbeError::new(Outcome::ProtocolError, e.to_string());
                    return Err(if out.raw.is_empty() { err } else { err.with_raw(out.raw) });
                }
            };
            out.messages += 1;
            out.deviations += decoded.deviations.len();
            if let Some(end) = absorb(&mut out, decoded.message, &mut stream).await? {
                out.end = end;
                break 'collect;
            }
            if out.messages >= cfg.max_messages || out.hits.len() >= cfg.max_hits {
                out.end = QueryEnd::Limit;
                break 'collect;
            }
        }
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(0) | Err(_) => {
                    out.end = QueryEnd::Closed;
                    break;
                }
                Ok(n) => decoder.feed(&chunk[..n]),
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    if out.end != QueryEnd::Closed {
        let bye = Message {
            guid: random_guid(),
            ttl: 1,
            hops: 0,
            payload: Payload::Bye(Bye {
                code: 200,
                message: b"done".to_vec(),
            }),
        };
        if let Ok(wire) = bye.encode() {
            // Best effort: we are leaving anyway.
            let _ = stream.write_all(&wire).await;
            let _ = stream.shutdown().await;
        }
    }
    Ok(out)
}

/// Handles one descriptor: answers a Ping, keeps a QueryHit of ours; `Some` to stop.
async fn absorb(
    out: &mut QueryOutcome,
    message: Message,
    stream: &mut TcpStream,
) -> Result<Option<QueryEnd>, ProbeError> {
    match message.payload {
        Payload::Ping { .. } => {
            let pong = Message {
                guid: message.guid,
                ttl: message.hops.saturating_add(1),
                hops: 0,
                payload: Payload::Pong(Pong {
                    port: 0,
                    ip: std::net::Ipv4Addr::UNSPECIFIED,
                    files: 0,
                    kbytes: 0,
                    extensions: Vec::new(),
                }),
            };
            let wire = pong
                .encode()
                .map_err(|e| ProbeError::new(Outcome::ProtocolError, e.to_string()))?;
            stream.write_all(&wire).await.map_err(|e| ProbeError::io(&e))?;
            out.pings_answered += 1;
        }
        Payload::QueryHit(hit) if message.guid == out.guid => {
            let kept = Message {
                guid: message.guid,
                ttl: message.ttl,
                hops: message.hops,
                payload: Payload::QueryHit(hit),
            };
            if let Ok(wire) = kept.encode()
                && out.raw.len() + wire.len() <= MAX_RAW_HITS
            {
                out.raw.extend_from_slice(&wire);
            }
            if let Payload::QueryHit(hit) = kept.payload {
                out.hits.push(ReceivedHit {
                    hops: message.hops,
                    hit,
                });
            }
        }
        Payload::Bye(bye) => return Ok(Some(QueryEnd::Bye(bye.code))),
        _ => {}
    }
    Ok(None)
}

/// How a hit is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadConfig {
    /// The largest file downloaded (the advertised size must not exceed it either).
    pub max_size: usize,
    /// Our `User-Agent`.
    pub user_agent: String,
}

impl Default for DownloadConfig {
    /// 16 MiB, [`USER_AGENT`].
    fn default() -> Self {
        DownloadConfig {
            max_size: 16 << 20,
            user_agent: USER_AGENT.to_owned(),
        }
    }
}

/// What a responder served for one hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadCheck {
    /// The responder.
    pub responder: SocketAddr,
    /// The request target used.
    pub path: String,
    /// The hit's file name (lossy UTF-8).
    pub name: String,
    /// The advertised size.
    pub advertised_size: u64,
    /// The advertised `urn:sha1`, if any.
    pub advertised_sha1: Option<[u8; 20]>,
    /// The size served.
    pub served_size: u64,
    /// The SHA-1 of what was served.
    pub served_sha1: [u8; 20],
}

impl DownloadCheck {
    /// Whether the size, and the SHA-1 if one was advertised, match.
    pub fn genuine(&self) -> bool {
        self.served_size == self.advertised_size && self.advertised_sha1.is_none_or(|h| h == self.served_sha1)
    }

    /// The check for [`crate::analysis::pollution`].
    pub fn served_file(&self) -> ServedFile {
        ServedFile {
            responder: self.responder,
            name: self.name.clone(),
            advertised_size: self.advertised_size,
            advertised_sha1: self.advertised_sha1,
            served_size: self.served_size,
            served_sha1: self.served_sha1,
        }
    }
}

impl Reply for DownloadCheck {}

/// The request target for `result`: by SHA-1 if it has one, else by index and name.
pub fn download_path(result: &HitResult) -> String {
    match result.sha1() {
        Some(h) => format!("/uri-res/N2R?urn:sha1:{}", InfoHash(h).to_base32()),
        None => {
            let mut path = format!("/get/{}/", result.file_index);
            for &b in &result.name {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    path.push(char::from(b));
                } else {
                    path.push_str(&format!("%{b:02X}"));
                }
            }
            path
        }
    }
}

/// Downloads `result` from `responder` and checks it (see the module docs). `Ok` whenever the
/// file arrived, genuine or not.
pub async fn verify_hit(
    engine: &Engine,
    responder: SocketAddr,
    result: &HitResult,
    cfg: &DownloadConfig,
) -> Result<DownloadCheck, Error> {
    let advertised = u64::from(result.file_size);
    if advertised > cfg.max_size as u64 {
        return Err(Error::Unusable(format!(
            "advertised size {advertised} is over the download limit {}",
            cfg.max_size
        )));
    }
    let path = download_path(result);
    let url = HttpUrl {
        host: responder.ip().to_string(),
        port: responder.port(),
        target: path.clone(),
    };
    let http_cfg = HttpConfig {
        max_body: cfg.max_size,
        user_agent: cfg.user_agent.clone(),
        ..HttpConfig::default()
    };
    let advertised_sha1 = result.sha1();
    let mut target = Target::addr(ProbeKind::GnutellaDownload, responder);
    target.target = format!("http://{}{}", url.host_header(), path);
    target.info_hash = advertised_sha1.map(InfoHash);
    let name = String::from_utf8_lossy(&result.name).into_owned();
    // The last check, kept when the attempt reports a mismatch as an error for its visit.
    let last: Mutex<Option<DownloadCheck>> = Mutex::new(None);
    let outcome = engine
        .probe(&target, || async {
            let response = http::get(responder, &url, &http_cfg).await?;
            if response.status != 200 {
                return Err(ProbeError::new(
                    Outcome::RemoteError,
                    format!("HTTP status {}", response.status),
                ));
            }
            let check = DownloadCheck {
                responder,
                path: path.clone(),
                name: name.clone(),
                advertised_size: advertised,
                advertised_sha1,
                served_size: response.body.len() as u64,
                served_sha1: Sha1::digest(&response.body).into(),
            };
            if check.genuine() {
                return Ok(check);
            }
            let message = format!(
                "served {} bytes with SHA-1 {}, advertised {} bytes{}",
                check.served_size,
                InfoHash(check.served_sha1).to_base32(),
                check.advertised_size,
                advertised_sha1.map_or(String::new(), |h| format!(" with SHA-1 {}", InfoHash(h).to_base32())),
            );
            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(check);
            Err(ProbeError::new(Outcome::ProtocolError, message))
        })
        .await;
    match outcome {
        Ok(check) => Ok(check),
        Err(e) => match last.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(check) if e.outcome == Outcome::ProtocolError => Ok(check),
            _ => Err(Error::Probe(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_paths() {
        let mut r = HitResult {
            file_index: 7,
            file_size: 3,
            name: b"a b/c\xff.mp3".to_vec(),
            extensions: Vec::new(),
        };
        assert_eq!(download_path(&r), "/get/7/a%20b%2Fc%FF.mp3");
        let h = InfoHash([0x42; 20]);
        r.extensions = format!("urn:sha1:{}", h.to_base32()).into_bytes();
        assert_eq!(download_path(&r), format!("/uri-res/N2R?urn:sha1:{}", h.to_base32()));
        assert!(HttpUrl::parse(&format!("http://127.0.0.1:1{}", download_path(&r))).is_ok());
    }

    #[test]
    fn leaf_handshake_and_query_wire() {
        let h = leaf_connect("UA").encode().unwrap();
        assert_eq!(
            h,
            b"GNUTELLA CONNECT/0.6\r\nUser-Agent: UA\r\nX-Ultrapeer: False\r\nX-Query-Routing: 0.1\r\n\r\n"
        );
        let g = random_guid();
        assert!(g.is_modern());
        assert_ne!(g, random_guid());
        let q = Query {
            min_speed: QUERY_FLAGS.swap_bytes(),
            criteria: Vec::new(),
            extensions: Vec::new(),
        };
        assert!(q.firewalled());
        // On the wire, bit 15 is the high bit of the first byte.
        assert_eq!(q.min_speed.to_le_bytes(), [0xc0, 0x00]);
    }

    #[test]
    fn genuine_needs_size_and_advertised_hash() {
        let mut c = DownloadCheck {
            responder: "127.0.0.1:1".parse().unwrap(),
            path: String::new(),
            name: String::new(),
            advertised_size: 3,
            advertised_sha1: None,
            served_size: 3,
            served_sha1: [0; 20],
        };
        assert!(c.genuine());
        c.advertised_sha1 = Some([1; 20]);
        assert!(!c.genuine());
        c.advertised_sha1 = Some([0; 20]);
        c.served_size = 4;
        assert!(!c.genuine());
    }
}
