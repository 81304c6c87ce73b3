//! A testbed swarm on loopback: an in-process [`Tracker`], one seed and N leechers (free riders
//! and adversaries among them if asked), each a [`Node`] on its own 127.S.x.y with its own rate
//! limits. The seed starts and announces first; the leechers all start at once; the run ends
//! when every honest leecher holds the torrent or at the deadline. The report has, per peer,
//! its completion time (from its start), bytes up and down, hash failures and the peers it
//! dropped, and whether its content matches the original byte for byte.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use onionlab_crawler::dht::space::SplitMix64;
use thiserror::Error;

use super::bitfield::Bitfield;
use super::choker::Strategy;
use super::client::ClientConfig;
use super::node::{Node, NodeConfig, NodeError, NodeReport};
use super::torrent::{PieceStore, TorrentError, TorrentFile, make_torrent};
use super::tracker::{Tracker, TrackerConfig};

/// One peer of the swarm.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSpec {
    /// Whom it uploads to.
    pub strategy: Strategy,
    /// Upload limit, bytes/s (`None`: unlimited).
    pub upload_limit: Option<f64>,
    /// Download limit, bytes/s (`None`: unlimited).
    pub download_limit: Option<f64>,
    /// Whether it uploads at all (`false`: no unchoke slots, as in client–server distribution).
    pub uploads: bool,
    /// An adversary serving corrupt blocks.
    pub corrupt: bool,
    /// The part of the pieces it holds from the start, 0 to 1 (which ones: drawn per peer
    /// with the swarm's seed).
    pub holds: f64,
}

impl PeerSpec {
    /// A standard peer holding nothing, with an upload limit.
    pub fn leecher(upload_limit: Option<f64>) -> Self {
        PeerSpec {
            strategy: Strategy::Standard,
            upload_limit,
            download_limit: None,
            uploads: true,
            corrupt: false,
            holds: 0.0,
        }
    }

    /// A standard peer holding everything.
    pub fn seed(upload_limit: Option<f64>) -> Self {
        PeerSpec {
            holds: 1.0,
            ..PeerSpec::leecher(upload_limit)
        }
    }

    /// Waited for: not a free rider, not an adversary.
    pub fn honest(&self) -> bool {
        !self.corrupt && self.strategy.uploads()
    }
}

/// The swarm to run.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmSpec {
    /// Bytes of content.
    pub file_size: usize,
    /// Bytes per piece.
    pub piece_length: u32,
    /// The second octet of every address: the tracker at 127.S.0.1, the seed at 127.S.1.1,
    /// leecher i at 127.S.(2 + i / 250).(1 + i % 250).
    pub subnet: u8,
    /// The seed.
    pub seed: PeerSpec,
    /// The leechers.
    pub leechers: Vec<PeerSpec>,
    /// What every client starts from (choker periods, pipeline, timeouts); peer ids, strategy,
    /// slots and capacity are set per peer.
    pub client: ClientConfig,
    /// Every node's listening port (each node has its own address).
    pub port: u16,
    /// The tracker's interval (and the most a node waits between announces).
    pub announce_interval: Duration,
    /// How long the honest leechers may take.
    pub deadline: Duration,
    /// Every leecher leaves the moment it completes (no finished peer seeds, so what a
    /// leecher gets is what the others trade with it), and the run waits for the free riders
    /// as well as the honest leechers.
    pub leave_when_complete: bool,
    /// Seeds the content and every client's random choices.
    pub rng_seed: u64,
}

impl SwarmSpec {
    /// `file_size` bytes in `piece_length` pieces from one seed to `leechers`, with the
    /// client defaults but the choker's periods shortened to `rounds` (regular) and three
    /// times that (optimistic), announces every 2 s, and a 60 s deadline.
    pub fn new(file_size: usize, piece_length: u32, seed: PeerSpec, leechers: Vec<PeerSpec>, rounds: Duration) -> Self {
        let mut client = ClientConfig::default();
        client.choker.regular_interval = rounds;
        client.choker.optimistic_interval = rounds * 3;
        client.rate_window = rounds * 2;
        SwarmSpec {
            file_size,
            piece_length,
            subnet: 60,
            seed,
            leechers,
            client,
            port: 6881,
            announce_interval: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
            leave_when_complete: false,
            rng_seed: 1,
        }
    }
}

/// One leecher's result.
#[derive(Debug, Clone, PartialEq)]
pub struct LeecherReport {
    /// What its node did.
    pub node: NodeReport,
    /// Time from the swarm's start (when the first leecher started) to its last verified
    /// piece, in the first session that completed (a leecher under churn has several).
    pub completed_after: Option<Duration>,
    /// It was waited for (honest).
    pub honest: bool,
    /// It ended with the whole content, equal to the original.
    pub verified: bool,
}

impl LeecherReport {
    /// Its completion time from the swarm's start, if it ended with the original bytes.
    pub fn verified_completion(&self) -> Option<Duration> {
        self.completed_after.filter(|_| self.verified)
    }
}

/// What a swarm run found.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmReport {
    /// The seed's node.
    pub seed: NodeReport,
    /// The leechers, in the order given.
    pub leechers: Vec<LeecherReport>,
    /// Every honest leecher completed before the deadline.
    pub finished: bool,
}

impl SwarmReport {
    /// The distribution time: the last honest leecher's completion, if all completed.
    pub fn distribution_time(&self) -> Option<Duration> {
        let honest = self.leechers.iter().filter(|l| l.honest);
        honest
            .map(LeecherReport::verified_completion)
            .try_fold(Duration::ZERO, |acc, t| t.map(|t| acc.max(t)))
    }
}

/// Why a swarm did not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// The tracker did not start.
    #[error("cannot start the tracker: {0}")]
    Tracker(std::io::Error),
    /// A node did not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The torrent could not be made.
    #[error(transparent)]
    Torrent(#[from] TorrentError),
    /// The seed's first announce did not come back.
    #[error("the seed could not announce itself")]
    SeedSilent,
}

fn ip(subnet: u8, third: u8, fourth: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, subnet, third, fourth))
}

/// Runs the swarm to its end: every honest leecher complete, or the deadline.
pub async fn run_swarm(spec: &SwarmSpec) -> Result<SwarmReport, SwarmError> {
    let mut swarm = Swarm::start(spec.clone()).await?;
    let finished = if spec.leave_when_complete {
        tokio::time::timeout(spec.deadline, swarm.leave_as_complete())
            .await
            .is_ok()
    } else {
        tokio::time::timeout(spec.deadline, swarm.honest_complete())
            .await
            .is_ok()
    };
    Ok(swarm.stop(finished).await)
}

/// The pieces a peer holding the part `holds` of `n` pieces starts with: that many (rounded
/// up), drawn without replacement with `seed`.
fn initial_pieces(n: u32, holds: f64, seed: u64) -> Bitfield {
    let count = (holds.clamp(0.0, 1.0) * f64::from(n)).ceil() as u32;
    let mut order: Vec<u32> = (0..n).collect();
    let mut rng = SplitMix64::new(seed ^ 0x401D_5EED);
    let mut chosen = Bitfield::new(n);
    for k in 0..count.min(n) {
        let pick = k + rng.below(u64::from(n - k)) as u32;
        order.swap(k as usize, pick as usize);
        chosen.set(order[k as usize]);
    }
    chosen
}

/// How often a swarm whose leechers leave when complete looks for the complete ones.
const LEAVE_POLL: Duration = Duration::from_millis(20);

/// A running testbed swarm: its tracker, its seed and its leechers, each leecher online or
/// (under churn) away; stops when [`Swarm::stop`]ped or dropped.
#[derive(Debug)]
pub struct Swarm {
    spec: SwarmSpec,
    content: Vec<u8>,
    torrent: TorrentFile,
    tracker: Tracker,
    seed: Node,
    leechers: Vec<Leecher>,
    t0: Instant,
}

/// One leecher: its address, and its node while it is online.
#[derive(Debug)]
struct Leecher {
    addr: SocketAddr,
    node: Option<Node>,
    /// What it held when it last left (it comes back with it).
    held: Option<Bitfield>,
    /// Its reports from the sessions that ended, bytes and failures added up at the end.
    ended: Vec<NodeReport>,
    /// Its first completion over the sessions that ended, from the swarm's start.
    completed: Option<Duration>,
    /// It left holding the whole content, equal to the original.
    left_verified: bool,
}

impl Leecher {
    /// Stops its node and keeps the session's report; a completion in this session counts
    /// from the swarm's start `t0`, and the earliest over all sessions is kept.
    async fn end_session(&mut self, node: Node, t0: Instant) {
        let offset = node.started().saturating_duration_since(t0);
        let report = node.stop().await;
        if let Some(t) = report.completed_after.map(|t| t + offset) {
            self.completed = Some(self.completed.map_or(t, |c| c.min(t)));
        }
        self.ended.push(report);
    }
}

impl Swarm {
    /// Starts the tracker and the seed, waits for the seed's first announce, then starts every
    /// leecher. Every node listens on `spec.port` of its own address, so a leecher that leaves
    /// and comes back is the same peer to a crawler.
    pub async fn start(spec: SwarmSpec) -> Result<Swarm, SwarmError> {
        let mut content = vec![0u8; spec.file_size];
        SplitMix64::new(spec.rng_seed ^ 0xC0A7_E417).fill(&mut content);
        let tracker = Tracker::start(TrackerConfig {
            listen: (ip(spec.subnet, 0, 1), 0).into(),
            interval: spec.announce_interval,
            ..TrackerConfig::default()
        })
        .await
        .map_err(SwarmError::Tracker)?;
        let torrent = make_torrent("payload.bin", &content, spec.piece_length, tracker.url())?;
        let mut swarm = Swarm {
            seed: Self::start_node(&spec, &torrent, &content, tracker.url(), 0, None).await?,
            leechers: Vec::with_capacity(spec.leechers.len()),
            spec,
            content,
            torrent,
            tracker,
            t0: Instant::now(),
        };
        if tokio::time::timeout(Duration::from_secs(10), swarm.seed.announced())
            .await
            .is_err()
        {
            return Err(SwarmError::SeedSilent);
        }
        swarm.t0 = Instant::now();
        for i in 0..swarm.spec.leechers.len() {
            let node = swarm.start_leecher(i, None).await?;
            swarm.leechers.push(Leecher {
                addr: node.addr(),
                node: Some(node),
                held: None,
                ended: Vec::new(),
                completed: None,
                left_verified: false,
            });
        }
        Ok(swarm)
    }

    /// Leecher `i`'s node, holding its share of the pieces or, coming back, what it `held`.
    async fn start_leecher(&self, i: usize, held: Option<&Bitfield>) -> Result<Node, SwarmError> {
        Self::start_node(
            &self.spec,
            &self.torrent,
            &self.content,
            self.tracker.url(),
            i + 1,
            held,
        )
        .await
    }

    /// Whether `node` holds the whole content, equal to the original.
    fn verified(&self, node: &Node) -> bool {
        node.content().as_deref() == Some(&self.content[..])
    }

    /// Node `index` (0 the seed, i + 1 leecher i), holding its share of the pieces or, coming
    /// back, what it held. (The seed starts before the `Swarm` exists, hence the parts.)
    async fn start_node(
        spec: &SwarmSpec,
        torrent: &TorrentFile,
        content: &[u8],
        url: &str,
        index: usize,
        held: Option<&Bitfield>,
    ) -> Result<Node, SwarmError> {
        let (name, addr, peer) = match index {
            0 => ("seed".to_string(), ip(spec.subnet, 1, 1), &spec.seed),
            n => {
                let i = n - 1;
                let addr = ip(spec.subnet, 2 + (i / 250) as u8, 1 + (i % 250) as u8);
                (format!("leecher-{i}"), addr, &spec.leechers[i])
            }
        };
        let mut client = spec.client.clone();
        client.peer_id = onionlab_crawler::probe::random_peer_id();
        client.strategy = peer.strategy;
        client.seed = spec.rng_seed.wrapping_mul(0x9E37_79B9).wrapping_add(index as u64);
        client.corrupt_uploads = peer.corrupt;
        if !peer.uploads {
            client.choker.slots = 0;
        }
        if let Some(limit) = peer.upload_limit {
            client.choker.upload_capacity = limit;
        }
        if peer.strategy == Strategy::BitThief {
            client.max_connections = client.max_connections.max(1000);
        }
        let client_seed = client.seed;
        let mut cfg = NodeConfig::new(name, addr, client);
        cfg.port = spec.port;
        cfg.upload_limit = peer.upload_limit;
        cfg.download_limit = peer.download_limit;
        cfg.announce_interval = spec.announce_interval;
        let info = &torrent.metainfo.info;
        let pieces = held
            .cloned()
            .unwrap_or_else(|| initial_pieces(info.pieces.len() as u32, peer.holds, client_seed));
        let store = PieceStore::with_content(info, content, |i| pieces.has(i))?;
        Ok(Node::start(cfg, torrent.metainfo.info_hash, url, store).await?)
    }

    /// The `.torrent` every node shares.
    pub fn torrent(&self) -> &TorrentFile {
        &self.torrent
    }

    /// The tracker's announce URL.
    pub fn tracker_url(&self) -> &str {
        self.tracker.url()
    }

    /// The seed's address.
    pub fn seed_addr(&self) -> SocketAddr {
        self.seed.addr()
    }

    /// Every leecher's address and what it is, in the order given.
    pub fn leechers(&self) -> impl Iterator<Item = (SocketAddr, &PeerSpec)> {
        self.leechers.iter().map(|l| l.addr).zip(&self.spec.leechers)
    }

    /// Whether leecher `i` is online.
    pub fn is_online(&self, i: usize) -> bool {
        self.leechers.get(i).is_some_and(|l| l.node.is_some())
    }

    /// Waits until every honest leecher holds the whole torrent (each waited for in turn:
    /// completion is a state, not an event).
    pub async fn honest_complete(&self) {
        for (l, peer) in self.leechers.iter().zip(&self.spec.leechers) {
            if let (Some(node), true) = (&l.node, peer.honest()) {
                node.complete().await;
            }
        }
    }

    /// Leaves each leecher the moment it completes; returns once every one but the
    /// adversaries has.
    async fn leave_as_complete(&mut self) {
        loop {
            let mut waiting = false;
            for i in 0..self.leechers.len() {
                match &self.leechers[i].node {
                    Some(node) if node.is_complete() => self.leave(i).await,
                    Some(_) => waiting |= !self.spec.leechers[i].corrupt,
                    None => {}
                }
            }
            if !waiting {
                return;
            }
            tokio::time::sleep(LEAVE_POLL).await;
        }
    }

    /// Leecher `i` leaves (a `stopped` announce, its connections closed), keeping what it holds.
    pub async fn leave(&mut self, i: usize) {
        let Some(node) = self.leechers.get_mut(i).and_then(|l| l.node.take()) else {
            return;
        };
        let verified = self.verified(&node);
        let t0 = self.t0;
        let leecher = &mut self.leechers[i];
        leecher.held = Some(node.held());
        leecher.left_verified = verified;
        leecher.end_session(node, t0).await;
    }

    /// Leecher `i` comes back at its address with what it held when it left.
    pub async fn rejoin(&mut self, i: usize) -> Result<(), SwarmError> {
        let Some(leecher) = self.leechers.get(i) else {
            return Ok(());
        };
        if leecher.node.is_some() {
            return Ok(());
        }
        let node = self.start_leecher(i, leecher.held.as_ref()).await?;
        self.leechers[i].node = Some(node);
        Ok(())
    }

    /// Stops every node and the tracker; `finished` says whether the honest leechers all
    /// completed in time.
    pub async fn stop(self, finished: bool) -> SwarmReport {
        tracing::info!(
            leechers = self.leechers.len(),
            finished,
            "swarm ran for {:.2} s",
            self.t0.elapsed().as_secs_f64()
        );
        let verified: Vec<bool> = self
            .leechers
            .iter()
            .map(|l| l.node.as_ref().map_or(l.left_verified, |n| self.verified(n)))
            .collect();
        let mut reports = Vec::with_capacity(self.leechers.len());
        for ((mut leecher, peer), verified) in self.leechers.into_iter().zip(&self.spec.leechers).zip(verified) {
            if let Some(node) = leecher.node.take() {
                leecher.end_session(node, self.t0).await;
            }
            let Some(node) = leecher.ended.into_iter().reduce(|earlier, later| later.after(earlier)) else {
                continue;
            };
            reports.push(LeecherReport {
                completed_after: leecher.completed,
                node,
                honest: peer.honest(),
                verified,
            });
        }
        let seed = self.seed.stop().await;
        drop(self.tracker);
        SwarmReport {
            seed,
            leechers: reports,
            finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_pieces_are_the_asked_part_drawn_per_seed() {
        assert_eq!(initial_pieces(100, 0.0, 1).count(), 0);
        assert!(initial_pieces(100, 1.0, 1).is_complete());
        let a = initial_pieces(100, 0.25, 1);
        let b = initial_pieces(100, 0.25, 2);
        assert_eq!((a.count(), b.count()), (25, 25));
        assert_eq!(initial_pieces(100, 0.25, 1), a, "the same seed draws the same pieces");
        assert_ne!(a, b, "another seed draws others");
        // Not simply the first ones.
        assert!((25..100).any(|i| a.has(i)));
        assert_eq!(initial_pieces(7, 0.5, 3).count(), 4, "rounded up");
    }
}
