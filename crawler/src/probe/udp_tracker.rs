//! UDP tracker announce and scrape (BEP 15) over [`crate::tracker::udp`]'s packets.
//!
//! - **Connection ids** are cached per tracker address and reused while at least half of their
//!   60-second lifetime remains; a connect is its own probe ([`ProbeKind::UdpConnect`]). An
//!   announce or scrape that gets no answer forgets the id, and one whose id expired while it
//!   waited connects again once.
//! - **Retransmission**: within one attempt the same packet (same transaction id) is sent again
//!   after `base * 2^n` ([`UdpConfig::base_timeout`], BEP 15's 15 s by default) for `n` up to
//!   [`UdpConfig::retransmits`], until the engine's per-attempt timeout ends the attempt. The
//!   engine's own retries start a fresh exchange.
//! - **Matching**: a datagram with another transaction id is ignored; one with ours that does
//!   not answer the request (wrong action, wrong scrape entry count) or does not decode is a
//!   protocol error; action 3 is [`Outcome::RemoteError`] with the tracker's message.
//! - **Limits**: one datagram is at most 64 KiB; a scrape of more than
//!   [`MAX_SCRAPE_HASHES`] info-hashes is split into several requests.
//!
//! Only IPv4 trackers: the codec reads announce replies in the IPv4 layout.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::engine::{Engine, ProbeError, Reply, Target};
use crate::infohash::InfoHash;
use crate::observe::{Outcome, ProbeKind, Visit};
use crate::tracker::http::{AnnounceRequest, Peer, PeerAddr, ScrapeFile};
use crate::tracker::udp::{
    self as codec, CONNECTION_ID_LIFETIME, ConnectRequest, ConnectionId, MAX_RETRIES, MAX_SCRAPE_HASHES, Request,
    Response, ScrapeRequest, retransmit_timeout_from,
};

use super::tracker::{Announce, Scrape, tracker_target};
use super::{Error, random_u64, record_tracker_sightings, resolve};

/// The retransmission schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// The wait after the first send; the `n`-th retransmission waits `base * 2^n`.
    pub base_timeout: Duration,
    /// Retransmissions after the first send (at most [`MAX_RETRIES`]).
    pub retransmits: u32,
}

impl Default for UdpConfig {
    /// BEP 15: 15 s, doubled up to 8 times.
    fn default() -> Self {
        UdpConfig {
            base_timeout: Duration::from_secs(15),
            retransmits: MAX_RETRIES,
        }
    }
}

/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_536;

/// A UDP tracker client (cheap to clone; clones share the connection-id cache).
#[derive(Debug, Clone)]
pub struct UdpTracker {
    engine: Engine,
    cfg: UdpConfig,
    /// The BEP 15 `key` sent when the request has none.
    key: u32,
    ids: Arc<Mutex<HashMap<SocketAddr, ConnectionId>>>,
}

/// A `udp://host:port[/path]` URL (the BEP 41 path is not sent).
struct UdpUrl {
    host: String,
    port: u16,
}

impl UdpUrl {
    fn parse(url: &str) -> Result<UdpUrl, Error> {
        let bad = |why: &str| Error::Unusable(format!("{url:?}: {why}"));
        let rest = url
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("udp://"))
            .map(|_| &url[6..])
            .ok_or_else(|| bad("not a udp:// URL"))?;
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
        if !host_ok {
            return Err(bad("bad host"));
        }
        let port = port.parse().map_err(|_| bad("bad port"))?;
        Ok(UdpUrl {
            host: host.to_string(),
            port,
        })
    }
}

/// A connect reply.
struct Connected {
    addr: SocketAddr,
    id: ConnectionId,
    raw: Vec<u8>,
}

impl Reply for Connected {
    fn describe(&self, visit: &mut Visit) {
        visit.raw = Some(self.raw.clone());
    }
}

impl UdpTracker {
    /// A client running its probes on `engine` with the schedule `cfg`.
    pub fn new(engine: Engine, cfg: UdpConfig) -> Self {
        UdpTracker {
            engine,
            cfg,
            key: random_u64() as u32,
            ids: Arc::default(),
        }
    }

    /// Announces `req` (`key` and `numwant` from it when set; `tracker_id` is HTTP-only) and
    /// records a sighting per peer returned.
    pub async fn announce(&self, url: &str, req: &AnnounceRequest) -> Result<Announce, Error> {
        let u = UdpUrl::parse(url)?;
        let num_want = req.numwant.map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
        let key = req.key.unwrap_or(self.key);
        let build = |connection_id, transaction_id| {
            Request::Announce(codec::AnnounceRequest {
                connection_id,
                transaction_id,
                info_hash: req.info_hash,
                peer_id: req.peer_id,
                downloaded: req.downloaded,
                left: req.left,
                uploaded: req.uploaded,
                event: req.event,
                ip: Ipv4Addr::UNSPECIFIED,
                key,
                num_want,
                port: req.port,
            })
        };
        let read = |response, raw| match response {
            Response::Announce(a) => Ok(Announce {
                interval: a.interval,
                min_interval: None,
                seeders: Some(a.seeders.into()),
                leechers: Some(a.leechers.into()),
                peers: a
                    .peers
                    .into_iter()
                    .map(|p| Peer {
                        addr: PeerAddr::Ip(SocketAddr::V4(p)),
                        peer_id: None,
                    })
                    .collect(),
                warning: None,
                tracker_id: None,
                raw,
                deviations: 0,
            }),
            other => Err(not_an_answer(&other, raw)),
        };
        let reply = self
            .transact(url, &u, ProbeKind::UdpAnnounce, Some(req.info_hash), &build, &read)
            .await?;
        record_tracker_sightings(self.engine.recorder(), url, req.info_hash, &reply.peers).await;
        Ok(reply)
    }

    /// Scrapes `info_hashes` (at least one), [`MAX_SCRAPE_HASHES`] per request.
    pub async fn scrape(&self, url: &str, info_hashes: &[InfoHash]) -> Result<Scrape, Error> {
        let u = UdpUrl::parse(url)?;
        if info_hashes.is_empty() {
            return Err(Error::Unusable("a UDP scrape needs at least one info-hash".into()));
        }
        let mut out = Scrape::default();
        for chunk in info_hashes.chunks(MAX_SCRAPE_HASHES) {
            let template = ScrapeRequest::new(0, 0, chunk.to_vec()).map_err(|e| Error::Unusable(e.to_string()))?;
            let build = |connection_id, transaction_id| {
                let mut req = template.clone();
                req.connection_id = connection_id;
                req.transaction_id = transaction_id;
                Request::Scrape(req)
            };
            let read = |response, raw| match response {
                Response::Scrape { stats, .. } => Ok(Scrape {
                    files: chunk
                        .iter()
                        .zip(stats)
                        .map(|(h, s)| {
                            let file = ScrapeFile {
                                complete: s.seeders.into(),
                                downloaded: s.completed.into(),
                                incomplete: s.leechers.into(),
                            };
                            (*h, file)
                        })
                        .collect(),
                    raw,
                    deviations: 0,
                }),
                other => Err(not_an_answer(&other, raw)),
            };
            let about = if let [one] = chunk { Some(*one) } else { None };
            let part = self
                .transact(url, &u, ProbeKind::UdpScrape, about, &build, &read)
                .await?;
            out.files.extend(part.files);
            out.raw.extend(part.raw);
        }
        Ok(out)
    }

    /// One announce or scrape request as a probe, after getting a connection id.
    async fn transact<T, B, R>(
        &self,
        url: &str,
        u: &UdpUrl,
        probe: ProbeKind,
        info_hash: Option<InfoHash>,
        build: &B,
        read: &R,
    ) -> Result<T, Error>
    where
        T: Reply,
        B: Fn(u64, u32) -> Request + Sync,
        R: Fn(Response, Vec<u8>) -> Result<T, ProbeError> + Sync,
    {
        for pass in 0..2 {
            let (addr, cid) = self.connection_id(url, u).await?;
            let target = Target {
                probe,
                target: url.to_string(),
                addr: Some(addr),
                info_hash,
            };
            let cfg = &self.cfg;
            let result = self
                .engine
                .probe(&target, move || async move {
                    if !cid.is_valid(Instant::now()) {
                        return Err(ProbeError::new(Outcome::Timeout, "the connection id expired"));
                    }
                    let sock = socket(addr).await?;
                    let request = build(cid.id, random_u64() as u32);
                    let (response, raw) = exchange(&sock, &request, Some(cid.expires_at()), cfg).await?;
                    read(response, raw)
                })
                .await;
            match result {
                Err(e) if e.outcome == Outcome::Timeout => {
                    self.forget(addr);
                    if pass == 0 && !cid.is_valid(Instant::now()) {
                        continue;
                    }
                    return Err(e.into());
                }
                other => return other.map_err(Error::from),
            }
        }
        Err(Error::Unusable("no usable connection id".into()))
    }

    /// A cached connection id with at least half its lifetime left, or a new one (a connect probe).
    async fn connection_id(&self, url: &str, u: &UdpUrl) -> Result<(SocketAddr, ConnectionId), Error> {
        let target = tracker_target(&self.engine, ProbeKind::UdpConnect, url, &u.host, u.port).await;
        if let Some(addr) = target.addr {
            if !addr.is_ipv4() {
                return Err(Error::Unusable(format!("{url}: IPv6 UDP trackers are not supported")));
            }
            let fresh_until = Instant::now() + CONNECTION_ID_LIFETIME / 2;
            let cached = self.ids.lock().unwrap_or_else(|p| p.into_inner()).get(&addr).copied();
            if let Some(id) = cached.filter(|id| id.is_valid(fresh_until)) {
                return Ok((addr, id));
            }
        }
        let (resolved, cfg) = (target.addr, &self.cfg);
        let host = &u.host;
        let connected = self
            .engine
            .probe(&target, move || async move {
                let addr = match resolved {
                    Some(a) => a,
                    None => resolve(host, u.port).await?,
                };
                if !addr.is_ipv4() {
                    return Err(ProbeError::new(
                        Outcome::Unreachable,
                        "IPv6 UDP trackers are not supported",
                    ));
                }
                let sock = socket(addr).await?;
                let request = Request::Connect(ConnectRequest {
                    transaction_id: random_u64() as u32,
                });
                let (response, raw) = exchange(&sock, &request, None, cfg).await?;
                match response {
                    Response::Connect { connection_id, .. } => Ok(Connected {
                        addr,
                        id: ConnectionId {
                            id: connection_id,
                            obtained_at: Instant::now(),
                        },
                        raw,
                    }),
                    other => Err(not_an_answer(&other, raw)),
                }
            })
            .await?;
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connected.addr, connected.id);
        Ok((connected.addr, connected.id))
    }

    fn forget(&self, addr: SocketAddr) {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).remove(&addr);
    }
}

fn not_an_answer(response: &Response, raw: Vec<u8>) -> ProbeError {
    ProbeError::new(
        Outcome::ProtocolError,
        format!(
            "reply with transaction id {} does not answer the request",
            response.transaction_id()
        ),
    )
    .with_raw(raw)
}

/// An ephemeral IPv4 socket connected to `addr` (so only its datagrams arrive, and ICMP port
/// unreachable surfaces as an error).
async fn socket(addr: SocketAddr) -> Result<UdpSocket, ProbeError> {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| ProbeError::io(&e))?;
    sock.connect(addr).await.map_err(|e| ProbeError::io(&e))?;
    Ok(sock)
}

/// Sends `request` and waits for its answer on the BEP 15 schedule; stops retransmitting once
/// `valid_until` (the connection id's expiry) has passed.
async fn exchange(
    sock: &UdpSocket,
    request: &Request,
    valid_until: Option<Instant>,
    cfg: &UdpConfig,
) -> Result<(Response, Vec<u8>), ProbeError> {
    let wire = request.encode();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let sends = cfg.retransmits.min(MAX_RETRIES) + 1;
    for n in 0..sends {
        if valid_until.is_some_and(|t| Instant::now() >= t) {
            return Err(ProbeError::new(
                Outcome::Timeout,
                "the connection id expired before an answer",
            ));
        }
        sock.send(&wire).await.map_err(|e| ProbeError::io(&e))?;
        let wait = retransmit_timeout_from(cfg.base_timeout, n).unwrap_or(cfg.base_timeout);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let len = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(ProbeError::io(&e)),
                Ok(Ok(len)) => len,
            };
            let packet = &buf[..len];
            let response = Response::decode(packet)
                .map_err(|e| ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(packet.to_vec()))?;
            if response.transaction_id() != request.transaction_id() {
                continue;
            }
            if let Response::Error { message, .. } = &response {
                return Err(ProbeError::new(
                    Outcome::RemoteError,
                    format!("tracker error: {}", String::from_utf8_lossy(message)),
                )
                .with_raw(packet.to_vec()));
            }
            if !response.answers(request) {
                return Err(not_an_answer(&response, packet.to_vec()));
            }
            return Ok((response, packet.to_vec()));
        }
    }
    Err(ProbeError::new(
        Outcome::Timeout,
        format!("no answer to {sends} transmissions"),
    ))
}
