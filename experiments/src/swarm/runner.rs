//! A testbed swarm on loopback: an in-process [`Tracker`], one seed and N leechers (free riders
//! and adversaries among them if asked), each a [`Node`] on its own 127.S.x.y with its own rate
//! limits. The seed starts and announces first; the leechers all start at once; the run ends
//! when every honest leecher holds the torrent or at the deadline. The report has, per peer,
//! its completion time (from its start), bytes up and down, hash failures and the peers it
//! dropped, and whether its content matches the original byte for byte.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use onionlab_crawler::dht::space::SplitMix64;
use thiserror::Error;

use super::choker::Strategy;
use super::client::ClientConfig;
use super::node::{Node, NodeConfig, NodeError, NodeReport};
use super::torrent::{PieceStore, TorrentError, make_torrent};
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
    /// The part of the pieces it holds from the start (the first ones), 0 to 1.
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
    /// The tracker's interval (and the most a node waits between announces).
    pub announce_interval: Duration,
    /// How long the honest leechers may take.
    pub deadline: Duration,
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
            announce_interval: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
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
    /// piece.
    pub completed_after: Option<Duration>,
    /// It was waited for (honest).
    pub honest: bool,
    /// It ended with the whole content, equal to the original.
    pub verified: bool,
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
            .map(|l| l.node.completed_after.filter(|_| l.verified))
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

/// Runs the swarm to its end.
pub async fn run_swarm(spec: &SwarmSpec) -> Result<SwarmReport, SwarmError> {
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
    let meta = &torrent.metainfo;
    let url = tracker.url().to_string();
    let url = url.as_str();
    let start = |index: u64, name: String, addr: IpAddr, peer: &PeerSpec| {
        let mut client = spec.client.clone();
        client.peer_id = onionlab_crawler::probe::random_peer_id();
        client.strategy = peer.strategy;
        client.seed = spec.rng_seed.wrapping_mul(0x9E37_79B9).wrapping_add(index);
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
        let mut cfg = NodeConfig::new(name, addr, client);
        cfg.upload_limit = peer.upload_limit;
        cfg.download_limit = peer.download_limit;
        cfg.announce_interval = spec.announce_interval;
        let pieces = meta.info.pieces.len() as f64;
        let held = (peer.holds.clamp(0.0, 1.0) * pieces).ceil() as u32;
        let store = PieceStore::with_content(&meta.info, &content, |i| i < held);
        async move { Ok::<_, SwarmError>(Node::start(cfg, meta.info_hash, url, store?).await?) }
    };
    let seed = start(0, "seed".into(), ip(spec.subnet, 1, 1), &spec.seed).await?;
    if tokio::time::timeout(Duration::from_secs(10), seed.announced())
        .await
        .is_err()
    {
        return Err(SwarmError::SeedSilent);
    }
    let t0 = Instant::now();
    let mut leechers = Vec::with_capacity(spec.leechers.len());
    for (i, peer) in spec.leechers.iter().enumerate() {
        let addr = ip(spec.subnet, 2 + (i / 250) as u8, 1 + (i % 250) as u8);
        leechers.push(start(1 + i as u64, format!("leecher-{i}"), addr, peer).await?);
    }
    let honest = spec.leechers.iter().zip(&leechers).filter(|(p, _)| p.honest());
    let all_done = async {
        // Completion is a state, not an event: waiting for each in turn misses none.
        for (_, node) in honest {
            node.complete().await;
        }
    };
    let finished = tokio::time::timeout(spec.deadline, all_done).await.is_ok();
    tracing::info!(
        leechers = leechers.len(),
        finished,
        "swarm ran for {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let verified: Vec<bool> = leechers
        .iter()
        .map(|n| n.content().as_deref() == Some(&content[..]))
        .collect();
    let mut reports = Vec::with_capacity(leechers.len());
    for ((node, peer), verified) in leechers.into_iter().zip(&spec.leechers).zip(verified) {
        let offset = node.started().saturating_duration_since(t0);
        let node = node.stop().await;
        reports.push(LeecherReport {
            completed_after: node.completed_after.map(|t| t + offset),
            node,
            honest: peer.honest(),
            verified,
        });
    }
    let seed = seed.stop().await;
    drop(tracker);
    Ok(SwarmReport {
        seed,
        leechers: reports,
        finished,
    })
}
