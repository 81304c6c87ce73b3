//! The swarm monitor: who is in one torrent's swarm, what they hold, and whether what they
//! serve is genuine, round after round.
//!
//! Each round (every [`SwarmConfig::interval`], for [`SwarmConfig::rounds`] rounds or
//! [`SwarmConfig::duration`]):
//!
//! 1. **Gather peers**: announce to every tracker whose interval has passed (the first
//!    announce says `started`; the tracker's `interval`/`min interval` is respected), take the
//!    addresses others pushed into the [`PeerFeed`] (the DHT's `get_peers` lookups plug in
//!    here), and the `ut_pex` peers learned in the previous round. Trackers record a
//!    [`SourceKind::Tracker`](crate::observe::SourceKind::Tracker) sighting per peer, sessions a
//!    [`SourceKind::Pex`](crate::observe::SourceKind::Pex) one.
//! 2. **Visit every known peer**: a handshake probe per peer (visit and [`PeerState`] rows:
//!    outcome, client, pieces held), then [`SwarmConfig::linger`] of listening for `have`s and
//!    PEX. Arrivals and departures are peers that answered this round but not the previous one,
//!    and the other way round.
//! 3. **Content check**: when only a magnet is known, fetch the metadata (BEP 9) from the first
//!    peer that offers it; then download [`SwarmConfig::sample_pieces`] random pieces that each
//!    peer holds, once per peer, and verify them ([`PieceCheck`] rows; a bad piece says
//!    `ok: false`).
//!
//! A peer that fails [`SwarmConfig::forget_after`] rounds in a row is dropped until someone
//! names it again. Trackers list the monitor itself (the address it announced); once a peer's BEP 10 `yourip`
//! reveals our address, that address with the announced port is dropped from the known peers.
//! At the end every tracker announced to gets a `stopped` announce. The monitor keeps at most
//! [`SwarmConfig::max_peers`] addresses and runs at most [`SwarmConfig::sessions`] sessions at
//! once, whatever the trackers, the feed and PEX offer.
//!
//! [`PeerState`]: crate::observe::PeerState
//! [`PieceCheck`]: crate::observe::PieceCheck

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::infohash::InfoHash;
use crate::magnet::{self, Magnet};
use crate::metainfo::{Info, Metainfo};
use crate::observe::{Micros, Outcome, now_micros};
use crate::probe::metadata::Metadata;
use crate::probe::peer::{PeerConfig, PeerSession, PiecesHeld};
use crate::probe::tracker::{TrackerClient, TrackerConfig};
use crate::probe::{Error, random_u64};
use crate::tracker::Event;
use crate::tracker::http::{AnnounceRequest, PeerAddr};

/// What to monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmTarget {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The torrent, if known (otherwise its metadata is fetched from peers).
    pub info: Option<Info>,
    /// Tracker announce URLs (`http://` and `udp://`; others are skipped).
    pub trackers: Vec<String>,
    /// Peers known from the start (a magnet's `x.pe`, the command line).
    pub peers: Vec<SocketAddr>,
}

impl SwarmTarget {
    /// The swarm of a `.torrent`: its info and its trackers (`announce` and every tier).
    pub fn from_metainfo(m: &Metainfo) -> Self {
        let mut trackers: Vec<String> = Vec::new();
        for url in m.announce.iter().chain(m.announce_list.iter().flatten()) {
            if !trackers.contains(url) {
                trackers.push(url.clone());
            }
        }
        SwarmTarget {
            info_hash: m.info_hash,
            info: Some(m.info.clone()),
            trackers,
            peers: Vec::new(),
        }
    }

    /// The swarm of a magnet link: its trackers and its IP peers (host names are not resolved).
    pub fn from_magnet(m: &Magnet) -> Self {
        SwarmTarget {
            info_hash: m.info_hash,
            info: None,
            trackers: m.trackers.clone(),
            peers: m
                .peers
                .iter()
                .filter_map(|p| match p {
                    magnet::PeerAddr::Ip(a) => Some(*a),
                    magnet::PeerAddr::Host { .. } => None,
                })
                .collect(),
        }
    }
}

/// How the monitor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    /// Rounds to run (`None`: until [`SwarmConfig::duration`]; both `None`: one round).
    pub rounds: Option<u32>,
    /// Stop starting rounds after this long.
    pub duration: Option<Duration>,
    /// From the start of one round to the start of the next.
    pub interval: Duration,
    /// Pieces downloaded and verified from each peer (once per peer; 0: no content check).
    pub sample_pieces: u32,
    /// How long each session listens after the handshake (for `have`s and PEX).
    pub linger: Duration,
    /// Most peer addresses kept.
    pub max_peers: usize,
    /// A peer that fails this many rounds in a row is forgotten (until a tracker, the feed or
    /// PEX names it again); 0 keeps every peer.
    pub forget_after: u32,
    /// Most peer sessions at once.
    pub sessions: usize,
    /// The port announced to trackers.
    pub announce_port: u16,
    /// Peers asked of each tracker.
    pub numwant: u32,
    /// Peer sessions.
    pub peer: PeerConfig,
    /// Tracker clients.
    pub trackers: TrackerConfig,
}

impl Default for SwarmConfig {
    /// One round, 30 s apart, one sample piece per peer, 2 s of listening, 500 peers (each
    /// forgotten after 3 failed rounds in a row), 64 sessions at once, port 6881, 200 peers per
    /// announce.
    fn default() -> Self {
        SwarmConfig {
            rounds: Some(1),
            duration: None,
            interval: Duration::from_secs(30),
            sample_pieces: 1,
            linger: Duration::from_secs(2),
            max_peers: 500,
            forget_after: 3,
            sessions: 64,
            announce_port: 6881,
            numwant: 200,
            peer: PeerConfig::default(),
            trackers: TrackerConfig::default(),
        }
    }
}

/// Where other discovery mechanisms (a DHT `get_peers` lookup) hand peer addresses to a running
/// monitor. Bounded: when the monitor is behind, [`PeerFeed::send`] waits.
#[derive(Debug, Clone)]
pub struct PeerFeed(mpsc::Sender<SocketAddr>);

impl PeerFeed {
    /// Hands over one address; `false` once the monitor has finished.
    pub async fn send(&self, addr: SocketAddr) -> bool {
        self.0.send(addr).await.is_ok()
    }
}

/// One tracker announce of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerRound {
    /// The announce URL.
    pub url: String,
    /// Seeders, leechers and peers returned, or the error.
    pub result: Result<(Option<u64>, Option<u64>, usize), String>,
}

/// What a peer said when it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSeen {
    /// Its peer id.
    pub peer_id: [u8; 20],
    /// Its BEP 10 `v`.
    pub client: Option<Vec<u8>>,
    /// Pieces it holds (after the linger), if it said.
    pub pieces_have: Option<u32>,
    /// Pieces of the torrent, if known.
    pub pieces_total: Option<u32>,
}

/// One peer in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerVisit {
    /// The peer.
    pub addr: SocketAddr,
    /// What it said, or how the handshake failed (the outcome and the error in words).
    pub answer: Result<PeerSeen, (Outcome, String)>,
    /// Pieces it served that matched their hash.
    pub pieces_ok: u32,
    /// Pieces it served that did not.
    pub pieces_bad: u32,
    /// New peers it told us about over PEX.
    pub pex_peers: usize,
}

/// One round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundSummary {
    /// 1 for the first round.
    pub round: u32,
    /// When it started.
    pub at: Micros,
    /// Announces made this round.
    pub trackers: Vec<TrackerRound>,
    /// Addresses known when the round's visits started.
    pub known: usize,
    /// Every peer visited, by address.
    pub peers: Vec<PeerVisit>,
    /// Peers that answered this round and not the previous one.
    pub arrivals: Vec<SocketAddr>,
    /// Peers that answered the previous round and not this one.
    pub departures: Vec<SocketAddr>,
    /// Whether the torrent's info is known (given, or fetched from a peer).
    pub metadata_known: bool,
}

impl RoundSummary {
    /// Peers that completed the handshake.
    pub fn reached(&self) -> usize {
        self.peers.iter().filter(|p| p.answer.is_ok()).count()
    }

    /// Verified pieces this round, good and bad.
    pub fn pieces(&self) -> (u32, u32) {
        self.peers
            .iter()
            .fold((0, 0), |(ok, bad), p| (ok + p.pieces_ok, bad + p.pieces_bad))
    }
}

/// What a whole run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmReport {
    /// Rounds run.
    pub rounds: u32,
    /// Peer addresses known at the end.
    pub peers_known: usize,
    /// The metadata, when it was fetched from a peer.
    pub metadata: Option<Metadata>,
}

/// State shared by the peer visits of a round.
struct Shared {
    engine: Engine,
    cfg: SwarmConfig,
    info_hash: InfoHash,
    info: Mutex<Option<Arc<Info>>>,
    fetched: Mutex<Option<Metadata>>,
}

/// Monitors one swarm (see the module docs).
#[derive(Debug)]
pub struct SwarmMonitor {
    engine: Engine,
    cfg: SwarmConfig,
    target: SwarmTarget,
    feed_tx: mpsc::Sender<SocketAddr>,
    feed_rx: mpsc::Receiver<SocketAddr>,
}

/// Capacity of the [`PeerFeed`] channel.
const FEED_CAPACITY: usize = 1024;

impl SwarmMonitor {
    /// A monitor of `target` probing through `engine`.
    pub fn new(engine: Engine, cfg: SwarmConfig, target: SwarmTarget) -> Self {
        let (feed_tx, feed_rx) = mpsc::channel(FEED_CAPACITY);
        SwarmMonitor {
            engine,
            cfg,
            target,
            feed_tx,
            feed_rx,
        }
    }

    /// A feed other discovery mechanisms push peer addresses into while the monitor runs.
    pub fn feed(&self) -> PeerFeed {
        PeerFeed(self.feed_tx.clone())
    }

    /// Runs every round, handing each summary to `on_round` as it completes.
    pub async fn run(mut self, mut on_round: impl FnMut(&RoundSummary)) -> SwarmReport {
        let started = Instant::now();
        let trackers = TrackerClient::new(self.engine.clone(), self.cfg.trackers.clone());
        let shared = Arc::new(Shared {
            engine: self.engine.clone(),
            cfg: self.cfg.clone(),
            info_hash: self.target.info_hash,
            info: Mutex::new(self.target.info.clone().map(Arc::new)),
            fetched: Mutex::new(None),
        });
        let tracker_urls: Vec<String> = self
            .target
            .trackers
            .iter()
            .filter(|u| u.starts_with("http://") || u.starts_with("udp://"))
            .cloned()
            .collect();
        let mut next_announce: HashMap<String, Instant> = HashMap::new();
        let mut known: BTreeSet<SocketAddr> = BTreeSet::new();
        let mut checked: BTreeSet<SocketAddr> = BTreeSet::new();
        let mut previous: BTreeSet<SocketAddr> = BTreeSet::new();
        let mut failed_rounds: HashMap<SocketAddr, u32> = HashMap::new();
        // Our own announced address, as peers' `yourip` reveals it: trackers list it too.
        let mut ours: BTreeSet<SocketAddr> = BTreeSet::new();
        let max_peers = self.cfg.max_peers;
        let add = |known: &mut BTreeSet<SocketAddr>, ours: &BTreeSet<SocketAddr>, addr: SocketAddr| {
            let usable = !addr.ip().is_unspecified() && addr.port() != 0 && !ours.contains(&addr);
            if usable && known.len() < max_peers {
                known.insert(addr);
            }
        };
        for &p in &self.target.peers {
            add(&mut known, &ours, p);
        }
        let (rounds, duration) = match (self.cfg.rounds, self.cfg.duration) {
            (None, None) => (Some(1), None),
            limits => limits,
        };
        // Whether a round may start `ahead` from now, after `done` rounds.
        let may_start = |done: u32, ahead: Duration| {
            rounds.is_none_or(|r| done < r) && duration.is_none_or(|d| started.elapsed() + ahead < d)
        };
        let mut round = 0;
        while may_start(round, Duration::ZERO) {
            round += 1;
            let round_start = Instant::now();
            let at = now_micros();

            // 1. Gather.
            let left = shared.info.lock().await.as_ref().map_or(1, |i| i.total_length().max(1));
            let mut announces = JoinSet::new();
            for url in &tracker_urls {
                let due = next_announce.get(url).is_none_or(|t| *t <= round_start);
                if !due {
                    continue;
                }
                let req = self.announce_request(left, !next_announce.contains_key(url));
                let (client, url) = (trackers.clone(), url.clone());
                announces.spawn(async move {
                    let result = client.announce(&url, &req).await;
                    (url, result)
                });
            }
            let mut tracker_rounds = Vec::new();
            while let Some(joined) = announces.join_next().await {
                let Ok((url, result)) = joined else { continue };
                let summary = match result {
                    Ok(a) => {
                        let wait = u64::from(a.interval.max(a.min_interval.unwrap_or(0))).clamp(1, 86_400);
                        next_announce.insert(url.clone(), round_start + Duration::from_secs(wait));
                        for p in &a.peers {
                            if let PeerAddr::Ip(addr) = p.addr {
                                add(&mut known, &ours, addr);
                            }
                        }
                        Ok((a.seeders, a.leechers, a.peers.len()))
                    }
                    Err(e) => Err(e.to_string()),
                };
                tracker_rounds.push(TrackerRound { url, result: summary });
            }
            tracker_rounds.sort_by(|a, b| a.url.cmp(&b.url));
            while let Ok(addr) = self.feed_rx.try_recv() {
                add(&mut known, &ours, addr);
            }

            // 2. and 3. Visit every known peer; check the content of those not checked yet.
            let slots = Arc::new(Semaphore::new(self.cfg.sessions.max(1)));
            let mut visits = JoinSet::new();
            for &addr in &known {
                let (shared, slots) = (shared.clone(), slots.clone());
                let check = !checked.contains(&addr);
                visits.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    visit(&shared, addr, check).await
                });
            }
            let known_at_visit = known.len();
            let mut peers = Vec::new();
            let mut pex = Vec::new();
            while let Some(joined) = visits.join_next().await {
                let Ok(VisitResult { visit, learned, yourip }) = joined else {
                    continue;
                };
                if visit.pieces_ok + visit.pieces_bad > 0 {
                    checked.insert(visit.addr);
                }
                if let Some(ip) = yourip {
                    ours.insert(SocketAddr::new(ip, self.cfg.announce_port));
                }
                if visit.answer.is_ok() {
                    failed_rounds.remove(&visit.addr);
                } else {
                    *failed_rounds.entry(visit.addr).or_default() += 1;
                }
                pex.extend(learned);
                peers.push(visit);
            }
            let forget_after = self.cfg.forget_after;
            known.retain(|a| {
                let forgotten = forget_after > 0 && failed_rounds.get(a).is_some_and(|&n| n >= forget_after);
                !ours.contains(a) && !forgotten
            });
            failed_rounds.retain(|a, _| known.contains(a));
            for addr in pex {
                add(&mut known, &ours, addr);
            }
            peers.sort_by_key(|p| p.addr);
            let reached: BTreeSet<SocketAddr> = peers.iter().filter(|p| p.answer.is_ok()).map(|p| p.addr).collect();
            let summary = RoundSummary {
                round,
                at,
                trackers: tracker_rounds,
                known: known_at_visit,
                arrivals: reached.difference(&previous).copied().collect(),
                departures: previous.difference(&reached).copied().collect(),
                peers,
                metadata_known: shared.info.lock().await.is_some(),
            };
            on_round(&summary);
            previous = reached;

            let wait = (round_start + self.cfg.interval).saturating_duration_since(Instant::now());
            if !may_start(round, wait) {
                break;
            }
            tokio::time::sleep(wait).await;
        }

        // Leave the trackers' peer lists.
        for url in next_announce.keys() {
            let left = shared.info.lock().await.as_ref().map_or(1, |i| i.total_length().max(1));
            let mut req = self.announce_request(left, false);
            req.event = Event::Stopped;
            if let Err(e) = trackers.announce(url, &req).await {
                tracing::debug!(tracker = %url, "stopped announce failed: {e}");
            }
        }
        SwarmReport {
            rounds: round,
            peers_known: known.len(),
            metadata: shared.fetched.lock().await.take(),
        }
    }

    /// An announce of ours: `started` the `first` time, then regular.
    fn announce_request(&self, left: u64, first: bool) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: self.target.info_hash,
            peer_id: self.cfg.peer.peer_id,
            port: self.cfg.announce_port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: if first { Event::Started } else { Event::None },
            numwant: Some(self.cfg.numwant),
            key: None,
            tracker_id: None,
        }
    }
}

/// What one visit found.
struct VisitResult {
    visit: PeerVisit,
    /// New PEX peers.
    learned: Vec<SocketAddr>,
    /// Our address as the peer saw it (BEP 10 `yourip`).
    yourip: Option<IpAddr>,
}

/// One peer, one round: handshake, linger, metadata if still unknown, content check if `check`.
async fn visit(shared: &Shared, addr: SocketAddr, check: bool) -> VisitResult {
    let engine = &shared.engine;
    let cfg = &shared.cfg;
    let info = shared.info.lock().await.clone();
    let total = info.as_ref().and_then(|i| u32::try_from(i.pieces.len()).ok());
    let mut visit = PeerVisit {
        addr,
        answer: Err((Outcome::Timeout, String::new())),
        pieces_ok: 0,
        pieces_bad: 0,
        pex_peers: 0,
    };
    let mut session = match PeerSession::open(engine, &cfg.peer, addr, shared.info_hash, total).await {
        Ok(s) => s,
        Err(e) => {
            let message = match &e {
                Error::Probe(p) => p.message.clone(),
                other => other.to_string(),
            };
            visit.answer = Err((e.outcome().unwrap_or(Outcome::ProtocolError), message));
            return VisitResult {
                visit,
                learned: Vec::new(),
                yourip: None,
            };
        }
    };
    if !cfg.linger.is_zero() {
        session.linger(cfg.linger, engine.recorder()).await;
    }
    let info = match info {
        Some(i) => Some(i),
        None => fetch_info(shared, &mut session).await,
    };
    if let (true, Some(info)) = (check && cfg.sample_pieces > 0, &info) {
        for piece in sample(session.held(), info, cfg.sample_pieces) {
            match session.download_piece(engine, info, piece).await {
                Ok(_) => visit.pieces_ok += 1,
                Err(Error::BadPiece { .. }) => visit.pieces_bad += 1,
                Err(e) => {
                    tracing::debug!(peer = %addr, piece, "no piece check: {e}");
                    break;
                }
            }
        }
    }
    let state = session.state();
    visit.answer = Ok(PeerSeen {
        peer_id: state.peer_id,
        client: state.client,
        pieces_have: state.pieces_have,
        pieces_total: state.pieces_total,
    });
    let learned = session.take_pex_peers();
    visit.pex_peers = learned.len();
    VisitResult {
        visit,
        learned,
        yourip: session.hello().yourip(),
    }
}

/// The torrent's info, fetched from `session` if no other visit has it yet (one fetch at a
/// time; the others wait for its result).
async fn fetch_info(shared: &Shared, session: &mut PeerSession) -> Option<Arc<Info>> {
    let mut info = shared.info.lock().await;
    if info.is_none() && session.offers_metadata() {
        match session.fetch_metadata(&shared.engine).await {
            Ok(m) => match m.metainfo() {
                Ok(parsed) => {
                    *info = Some(Arc::new(parsed.info));
                    *shared.fetched.lock().await = Some(m);
                }
                Err(e) => tracing::warn!(peer = %session.addr(), "metadata hashes right but does not parse: {e}"),
            },
            Err(e) => tracing::debug!(peer = %session.addr(), "metadata fetch failed: {e}"),
        }
    }
    let found = info.clone();
    if let Some(total) = found.as_ref().and_then(|i| u32::try_from(i.pieces.len()).ok()) {
        session.set_pieces_total(total);
    }
    found
}

/// Up to `n` distinct random pieces among those `held` says the peer has.
fn sample(held: &PiecesHeld, info: &Info, n: u32) -> Vec<u32> {
    let total = u32::try_from(info.pieces.len()).unwrap_or(u32::MAX);
    if total == 0 || matches!(held, PiecesHeld::Nothing) {
        return Vec::new();
    }
    let holds = |p: u32| matches!(held, PiecesHeld::Unknown) || held.has(p);
    let mut picked = BTreeMap::new();
    for _ in 0..n.saturating_mul(32) {
        if picked.len() as u32 >= n {
            break;
        }
        let p = (random_u64() % u64::from(total)) as u32;
        if holds(p) {
            picked.insert(p, ());
        }
    }
    picked.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Layout;

    #[test]
    fn samples_only_held_pieces() {
        let info = Info {
            name: b"x".to_vec(),
            piece_length: 1,
            pieces: vec![[0; 20]; 16],
            layout: Layout::Single { length: 16 },
            private: false,
        };
        let held = PiecesHeld::Bits(vec![0b0000_0000, 0b0000_0101]);
        for _ in 0..20 {
            let s = sample(&held, &info, 2);
            assert!(s.iter().all(|p| [13, 15].contains(p)), "{s:?}");
        }
        assert_eq!(sample(&held, &info, 5).len(), 2);
        assert!(sample(&PiecesHeld::Nothing, &info, 3).is_empty());
        assert_eq!(sample(&PiecesHeld::All, &info, 3).len(), 3);
    }
}
