//! The Gnutella topology crawl over tokio, in the manner of Cruiser (Stutzbach and Rejaie): the
//! crawler handshake as an [`Engine`] probe, and the breadth-first snapshot driver around the
//! sans-I/O [`SnapshotAssembly`]. It owns the sockets, the clock and the recording; what an
//! answer means and whom to contact next are [`super::snapshot`]'s.
//!
//! # The probe ([`crawler_handshake`])
//!
//! Connect over TCP, send `GNUTELLA CONNECT/0.6` with `User-Agent` and `Crawler: 0.1`, read the
//! reply block with the incremental decoder under [`HandshakeLimits`] (and the engine's attempt
//! timeout), and close without the third block: a servent that knows the crawler extension
//! answers with `Peers:` and `Leaves:` and expects nothing more. Each attempt is one
//! [`ProbeKind::GnutellaCrawl`] visit: a `200` is `ok` with the `User-Agent` as client, the
//! reply block as raw and the decoder's deviations; another status (`503` busy) is
//! `remote_error` with the block as raw; a block over the limits, a start line that is not
//! Gnutella or a connection closed before the blank line is `protocol_error`. The driver records
//! one [`Sighting`] per entry of `Peers:` ([`SourceKind::GnutellaPeer`]), `Leaves:`
//! ([`SourceKind::GnutellaLeaf`]) and `X-Try-Ultrapeers:` ([`SourceKind::GnutellaTry`]), source
//! the servent that answered, so the store holds the graph.
//!
//! # Snapshots ([`TopologyCrawler::snapshot`], [`crawl_topology`])
//!
//! Breadth-first from the bootstrap addresses (and, with [`TopologyConfig::revisit_known`], the
//! ultrapeers that answered the previous snapshot, and the leaves too when leaves are
//! contacted, so that departures show up as failed probes),
//! each address at most once per snapshot, under the engine's per-IP politeness. Across
//! snapshots, a probe of an address starts at least [`TopologyConfig::recrawl_interval`] after
//! the previous one ended (servents limit how often one source may crawl them): a probe that
//! comes too soon waits for its slot, so snapshots closer together than that stretch. A snapshot ends when nobody is left to contact, at the contact limit, or at
//! [`TopologyConfig::max_duration`]; probes still running then are cut (their nodes stay
//! [`NodeStatus::Unfinished`](super::snapshot::NodeStatus::Unfinished), and their visit may
//! lack its sightings).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::snapshot::{CrawlerAnswer, FrontierRules, Snapshot, SnapshotAssembly, StopReason};
use super::{Handshake, HandshakeDecoder, HandshakeLimits, PeerList};
use crate::engine::{Engine, ProbeError, Recorder, Reply, Target};
use crate::observe::{Observation, Outcome, ProbeKind, Sighting, SourceKind, Visit, now_micros};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// Above this many remembered addresses, those whose next slot has passed are forgotten.
const LEDGER_PRUNE_AT: usize = 65_536;

/// The `User-Agent` the crawler sends unless told otherwise.
pub const USER_AGENT: &str = concat!("onionlab-crawl/", env!("CARGO_PKG_VERSION"));

/// How the crawler handshake is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlerProbeConfig {
    /// Our `User-Agent` (no line breaks, no leading or trailing blanks).
    pub user_agent: String,
    /// Bounds on the reply block.
    pub limits: HandshakeLimits,
}

impl Default for CrawlerProbeConfig {
    /// [`USER_AGENT`] and [`HandshakeLimits::default`].
    fn default() -> Self {
        CrawlerProbeConfig {
            user_agent: USER_AGENT.to_owned(),
            limits: HandshakeLimits::default(),
        }
    }
}

/// A Gnutella answer to the crawler handshake (any status) and the block it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbedAnswer {
    /// The answer.
    pub answer: CrawlerAnswer,
    /// The reply block as received.
    pub raw: Vec<u8>,
}

impl Reply for ProbedAnswer {
    fn describe(&self, visit: &mut Visit) {
        visit.client = self.answer.user_agent.as_ref().map(|ua| ua.as_bytes().to_vec());
        visit.deviations = u32::try_from(self.answer.deviations).unwrap_or(u32::MAX);
        visit.raw = Some(self.raw.clone());
    }
}

/// One crawler handshake with `addr` through `engine` (see the module docs). `Ok` for any
/// Gnutella answer, refusals included; `Err` when there was none (timeout, refused connection,
/// garbage, limits), or when our own handshake cannot be encoded (nothing sent, no visit).
pub async fn crawler_handshake(
    engine: &Engine,
    addr: SocketAddr,
    cfg: &CrawlerProbeConfig,
) -> Result<ProbedAnswer, ProbeError> {
    let request = Handshake::crawler_connect(&cfg.user_agent)
        .encode()
        .map_err(|e| ProbeError::new(Outcome::ProtocolError, format!("cannot encode our handshake: {e}")))?;
    let target = Target::addr(ProbeKind::GnutellaCrawl, addr);
    match engine.probe(&target, || attempt(addr, &request, cfg.limits)).await {
        Err(e) if e.outcome == Outcome::RemoteError => {
            // A refusal: the block is in the error's raw, where the visit recorded it.
            let raw = e.raw.clone().unwrap_or_default();
            match CrawlerAnswer::decode(&raw, cfg.limits) {
                Ok(answer) => Ok(ProbedAnswer { answer, raw }),
                Err(_) => Err(e),
            }
        }
        other => other,
    }
}

async fn attempt(addr: SocketAddr, request: &[u8], limits: HandshakeLimits) -> Result<ProbedAnswer, ProbeError> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| ProbeError::io(&e))?;
    stream.write_all(request).await.map_err(|e| ProbeError::io(&e))?;
    let mut decoder = HandshakeDecoder::with_limits(limits);
    // What arrived, for the record; the decoder refuses more than `max_block`, so this stays
    // within `max_block + READ_CHUNK`.
    let mut received = Vec::new();
    let mut chunk = [0u8; READ_CHUNK];
    let decoded = loop {
        let n = stream.read(&mut chunk).await.map_err(|e| ProbeError::io(&e))?;
        if n == 0 {
            let e = ProbeError::new(
                Outcome::ProtocolError,
                "connection closed before the end of the reply headers",
            );
            return Err(if received.is_empty() { e } else { e.with_raw(received) });
        }
        received.extend_from_slice(&chunk[..n]);
        decoder.feed(&chunk[..n]);
        match decoder.next_handshake() {
            Ok(Some(decoded)) => break decoded,
            Ok(None) => {}
            Err(e) => return Err(ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(received)),
        }
    };
    received.truncate(received.len() - decoder.buffered());
    let answer = CrawlerAnswer::from_handshake(&decoded)
        .map_err(|e| ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(received.clone()))?;
    if answer.code != 200 {
        let message = format!("status {} {}", answer.code, answer.reason);
        return Err(ProbeError::new(Outcome::RemoteError, message.trim_end()).with_raw(received));
    }
    Ok(ProbedAnswer { answer, raw: received })
}

/// Records the address lists of `answer` from `source` as sightings (every entry as given; a
/// refusal's `Peers` and `Leaves` are not neighbour lists and are skipped).
pub async fn record_sightings(recorder: &Recorder, source: SocketAddr, answer: &CrawlerAnswer) -> usize {
    let at = now_micros();
    let neighbours = answer.code == 200;
    let lists: [(Option<&PeerList>, SourceKind); 3] = [
        (answer.peers.as_ref().filter(|_| neighbours), SourceKind::GnutellaPeer),
        (answer.leaves.as_ref().filter(|_| neighbours), SourceKind::GnutellaLeaf),
        (answer.try_ultrapeers.as_ref(), SourceKind::GnutellaTry),
    ];
    let mut count = 0;
    for (list, kind) in lists {
        for addr in list.map(PeerList::addrs).unwrap_or_default() {
            let row = Sighting {
                at,
                source_kind: kind,
                source: source.to_string(),
                source_id: None,
                info_hash: None,
                addr,
                id: None,
            };
            recorder.record(Observation::Sighting(row)).await;
            count += 1;
        }
    }
    count
}

/// What a topology crawl does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyConfig {
    /// Whom to contact.
    pub frontier: FrontierRules,
    /// The least time between two crawls of one address (across snapshots).
    pub recrawl_interval: Duration,
    /// Stop a snapshot after this long.
    pub max_duration: Duration,
    /// Start each snapshot from the ultrapeers that answered the previous one too (and the
    /// leaves that did, when leaves are contacted).
    pub revisit_known: bool,
    /// The handshake.
    pub probe: CrawlerProbeConfig,
}

impl Default for TopologyConfig {
    /// [`FrontierRules::default`] (ultrapeers only), 5 minutes between crawls of an address,
    /// 10 minutes per snapshot, known ultrapeers revisited, [`CrawlerProbeConfig::default`].
    fn default() -> Self {
        TopologyConfig {
            frontier: FrontierRules::default(),
            recrawl_interval: Duration::from_secs(300),
            max_duration: Duration::from_secs(600),
            revisit_known: true,
            probe: CrawlerProbeConfig::default(),
        }
    }
}

/// When each address may be crawled next: `interval` after its last probe ended (pure: the
/// caller passes the times).
#[derive(Debug, Default, Clone)]
pub struct RecrawlLedger {
    next: HashMap<SocketAddr, Instant>,
}

impl RecrawlLedger {
    /// When a probe of `addr` may start, `now` at the earliest.
    pub fn slot(&self, addr: SocketAddr, now: Instant) -> Instant {
        self.next.get(&addr).map_or(now, |t| (*t).max(now))
    }

    /// A probe of `addr` ended at `at`: the next may start `interval` later.
    pub fn crawled(&mut self, addr: SocketAddr, at: Instant, interval: Duration) {
        if self.next.len() >= LEDGER_PRUNE_AT {
            self.next.retain(|_, t| *t > at);
        }
        self.next.insert(addr, at + interval);
    }
}

/// Successive snapshots of one overlay, sharing the recrawl ledger and the known ultrapeers.
#[derive(Debug)]
pub struct TopologyCrawler {
    engine: Engine,
    config: TopologyConfig,
    ledger: RecrawlLedger,
    known: BTreeSet<SocketAddr>,
}

/// One probe's result, for the coordinator.
struct Probed {
    addr: SocketAddr,
    at: i64,
    ended: Instant,
    took: Duration,
    result: Result<ProbedAnswer, ProbeError>,
}

impl TopologyCrawler {
    /// A crawler under `engine`'s rules.
    pub fn new(engine: Engine, config: TopologyConfig) -> Self {
        TopologyCrawler {
            engine,
            config,
            ledger: RecrawlLedger::default(),
            known: BTreeSet::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// One snapshot from `bootstrap` (see the module docs).
    pub async fn snapshot(&mut self, bootstrap: &[SocketAddr]) -> Snapshot {
        let started = Instant::now();
        let mut seeds: Vec<SocketAddr> = bootstrap.to_vec();
        if self.config.revisit_known {
            seeds.extend(self.known.iter().copied());
        }
        let mut assembly = SnapshotAssembly::new(now_micros(), seeds, self.config.frontier);
        let mut tasks: JoinSet<Probed> = JoinSet::new();
        let mut in_flight: BTreeSet<SocketAddr> = BTreeSet::new();
        let deadline = tokio::time::sleep_until(started + self.config.max_duration);
        tokio::pin!(deadline);
        let stop = loop {
            while let Some(addr) = assembly.next_target() {
                let slot = self.ledger.slot(addr, Instant::now());
                in_flight.insert(addr);
                let engine = self.engine.clone();
                let probe = self.config.probe.clone();
                tasks.spawn(async move {
                    tokio::time::sleep_until(slot).await;
                    let begun = Instant::now();
                    let result = crawler_handshake(&engine, addr, &probe).await;
                    if let Ok(p) = &result {
                        record_sightings(engine.recorder(), addr, &p.answer).await;
                    }
                    Probed {
                        addr,
                        at: now_micros(),
                        ended: Instant::now(),
                        took: begun.elapsed(),
                        result,
                    }
                });
            }
            if tasks.is_empty() {
                break StopReason::Exhausted;
            }
            tokio::select! {
                done = tasks.join_next() => {
                    // A task that panicked leaves its node unfinished.
                    if let Some(Ok(p)) = done {
                        in_flight.remove(&p.addr);
                        self.ledger.crawled(p.addr, p.ended, self.config.recrawl_interval);
                        match &p.result {
                            Ok(answered) => assembly.answered(p.addr, p.at, p.took, &answered.answer),
                            Err(e) => assembly.failed(p.addr, p.at, p.took, e.outcome, &e.message),
                        }
                    }
                }
                () = &mut deadline => break StopReason::MaxDuration,
            }
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        // Probes cut short may have reached their servent.
        for addr in in_flight {
            self.ledger.crawled(addr, Instant::now(), self.config.recrawl_interval);
        }
        let snapshot = assembly.finish(started.elapsed(), stop);
        let contact_leaves = self.config.frontier.contact_leaves;
        self.known = snapshot
            .nodes
            .iter()
            .filter(|(_, n)| n.status.is_up() && (contact_leaves || n.role == super::snapshot::Role::Ultrapeer))
            .map(|(a, _)| *a)
            .collect();
        snapshot
    }
}

/// One snapshot of the overlay reachable from `bootstrap`, under `engine`'s rules.
pub async fn crawl_topology(engine: &Engine, bootstrap: &[SocketAddr], config: &TopologyConfig) -> Snapshot {
    TopologyCrawler::new(engine.clone(), config.clone())
        .snapshot(bootstrap)
        .await
}

/// `count` snapshots, started `interval` apart (or as soon as the previous one ends, if later;
/// the recrawl interval may delay probes further).
pub async fn crawl_snapshots(
    engine: &Engine,
    bootstrap: &[SocketAddr],
    config: &TopologyConfig,
    count: usize,
    interval: Duration,
) -> Vec<Snapshot> {
    let mut crawler = TopologyCrawler::new(engine.clone(), config.clone());
    let mut snapshots = Vec::with_capacity(count);
    let first = Instant::now();
    for i in 0..count {
        let due = first + interval.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        tokio::time::sleep_until(due).await;
        snapshots.push(crawler.snapshot(bootstrap).await);
    }
    snapshots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recrawl_slots_are_spaced_per_address() {
        let mut ledger = RecrawlLedger::default();
        let now = Instant::now();
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:2".parse().unwrap();
        let minute = Duration::from_secs(60);
        assert_eq!(ledger.slot(a, now), now);
        ledger.crawled(a, now, minute);
        assert_eq!(ledger.slot(b, now), now, "another port is another servent");
        assert_eq!(ledger.slot(a, now), now + minute);
        // Long after, no wait.
        let later = now + 10 * minute;
        assert_eq!(ledger.slot(a, later), later);
    }
}
