//! The DHT crawl: from a few bootstrap nodes, visit every node that can be found, record the
//! neighbour graph, and tell responsive nodes from those that only appear in others' tables. It
//! owns the crawl's node table and schedule; every query goes through the [`Engine`] (so per-IP
//! politeness, concurrency, timeouts and retries apply) and every reply becomes rows.
//!
//! # How nodes are visited
//!
//! A node is queried as soon as it is first sighted, with `find_node` for its own advertised id
//! (a bootstrap node, whose id is unknown, first gets a random target, then its own id): the reply
//! lists its k nearest neighbours and proves it alive. Then, one query per politeness slot, it gets
//! [`CrawlConfig::bucket_probes`] more `find_node`s aimed into its routing table (the BEP 5 buckets:
//! a target sharing exactly d leading bits with its id is answered from bucket d):
//!
//! 1. one shallow bucket, picked at random above the neighbourhood: 8 nodes from far away, which
//!    makes discovery spread over the whole key space within a couple of slots;
//! 2. bucket c, c − 1, c − 2, ..., where c is the shallowest bucket its nearest-neighbour reply
//!    reached. Deeper buckets were wholly in that reply; bucket c and the ones just above it are
//!    where the nodes the reply had no room for sit.
//!
//! Every node is in the deep buckets of the nodes nearest to it, so visiting every node this way
//! finds every node that anybody's table holds. Nodes sharing an IP address with
//! [`CrawlConfig::full_visits_per_ip`] others already visited get the first query only: per-IP
//! politeness would otherwise queue one IP's many ports (a Sybil signature) for minutes. Our own
//! socket addresses, which clients that ignore `ro=1` put in their tables, are never queried. With
//! [`CrawlConfig::sample_infohashes`], each responsive node also gets one BEP 51 query.
//!
//! The crawl ends when no node is left to query ([`StopReason::Exhausted`]), or at
//! [`CrawlConfig::max_duration`]: then visits send nothing more, and replies already in are
//! recorded whole (a visit row never lacks the sightings of its reply, which resuming relies on).
//! At most [`CrawlConfig::max_nodes`] nodes are queried; the rest
//! stay in the frontier. Then, for each of [`CrawlConfig::info_hashes`], an iterative `get_peers`
//! lookup starts from the closest responsive nodes found.
//!
//! # What it records and reports
//!
//! Rows (to the engine's recorder): one [`crate::observe::Visit`] per attempt, through the engine;
//! one [`Sighting`] per entry of every `nodes`/`nodes6` list (the neighbour graph, no info-hash)
//! and per `values` peer of a lookup (with the info-hash).
//!
//! The [`CrawlOutcome`] lists every node known, in four states (responsive; unresponsive, i.e.
//! sighted but silent on every attempt, the mldht cleanup rule of reporting those apart;
//! misbehaving, answering with KRPC errors or garbage; unvisited), the id each was advertised with
//! and the id it answered with (a mismatch is the same address under another id, a restart or an
//! identity game), its BEP 42 verdict, and a [`CrawlReport`] of the counts.
//!
//! # Network size
//!
//! Each nearest-neighbour reply is a sample of the density of ids around a random point: with N
//! uniform ids, the distance to the k-th nearest other id, as a fraction of the key space, is
//! Gamma(k, N − 1) distributed, whose median is about (k − 1/3)/(N − 1). The crawl reports
//! N̂ = 1 + (k − 1/3)/median(d_k) over all replies with k = 8 entries. It counts every node held in
//! routing tables, silent ones included, and needs no complete crawl.
//!
//! # Resuming
//!
//! [`Resume::from_rows`] rebuilds what a stopped crawl knew from its rows: the nodes that answered
//! (not queried again, but counted in the new report), and the frontier (sighted but never
//! answered, bootstrap nodes that timed out included), which the new crawl starts from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::socket::{KrpcReply, KrpcSocket, Request};
use super::space::{SplitMix64, bucket_target, cmp_distance, distance_fraction, prefix_len};
use crate::engine::{Engine, ProbeError, Recorder};
use crate::infohash::InfoHash;
use crate::krpc::NodeId;
use crate::observe::{Observation, Outcome, ProbeKind, Sighting, SourceKind, now_micros};

/// Bucket size (BEP 5): what a full `nodes` list holds, and the size of a lookup's closest set.
const K: usize = 8;

/// How long visits get, once the crawl stops, to record the replies they already have.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a crawl does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlConfig {
    /// Where to start.
    pub bootstrap: Vec<SocketAddr>,
    /// Stop querying new nodes after this long.
    pub max_duration: Duration,
    /// Query at most this many nodes.
    pub max_nodes: usize,
    /// `find_node`s into each responsive node's routing table after its first reply.
    pub bucket_probes: usize,
    /// Nodes per IP address that get bucket probes; later ones get the first query only.
    pub full_visits_per_ip: usize,
    /// Ask every responsive node for `sample_infohashes` (BEP 51) once.
    pub sample_infohashes: bool,
    /// Look up the peers of these torrents after the crawl.
    pub info_hashes: Vec<InfoHash>,
    /// Bound on each info-hash lookup.
    pub lookup_duration: Duration,
    /// What an earlier run already did.
    pub resume: Resume,
    /// Seed of the random targets (`None`: from the OS).
    pub seed: Option<u64>,
}

impl CrawlConfig {
    /// The replies a complete visit of a node with a known id gets: the first query, the bucket
    /// probes, and `sample_infohashes` if asked.
    pub fn queries_per_visit(&self) -> usize {
        1 + self.bucket_probes + usize::from(self.sample_infohashes)
    }
}

impl Default for CrawlConfig {
    /// No bootstrap, 10 minutes, a million nodes, 4 bucket probes, 1 full visit per IP, no
    /// samples, no lookups (30 s each when asked).
    fn default() -> Self {
        CrawlConfig {
            bootstrap: Vec::new(),
            max_duration: Duration::from_secs(600),
            max_nodes: 1_000_000,
            bucket_probes: 4,
            full_visits_per_ip: 1,
            sample_infohashes: false,
            info_hashes: Vec::new(),
            lookup_duration: Duration::from_secs(30),
            resume: Resume::default(),
            seed: None,
        }
    }
}

/// Where an earlier crawl stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// Nodes sighted (with the id they were advertised with, if known) but never answered.
    pub frontier: Vec<(SocketAddr, Option<NodeId>)>,
    /// Nodes whose visit was complete, with the id they answered with: not queried again.
    pub visited: Vec<(SocketAddr, NodeId)>,
    /// Nodes that answered but whose visit was cut short: counted as responsive and visited again
    /// (their bucket probes may be the only way to some nodes).
    pub unfinished: Vec<(SocketAddr, NodeId)>,
}

impl Resume {
    /// What the DHT rows of earlier runs say. A node answered if a query of it got any reply (a
    /// timeout or an unreachable port is no reply); its visit was complete if `find_node` and
    /// `sample_infohashes` got `queries_per_visit` replies (see [`CrawlConfig::queries_per_visit`];
    /// nodes visited with the first query only, on crowded IPs, count as unfinished and cost one
    /// query again). Everything else sighted as a DHT node, and every node that only timed out, is
    /// frontier.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a Observation>, queries_per_visit: usize) -> Resume {
        let mut answered: BTreeMap<SocketAddr, (Option<NodeId>, usize)> = BTreeMap::new();
        let mut sighted: BTreeMap<SocketAddr, Option<NodeId>> = BTreeMap::new();
        for row in rows {
            match row {
                Observation::Visit(v) if v.probe.is_dht() => {
                    let Some(addr) = v.addr else { continue };
                    if v.outcome.is_retryable() {
                        sighted.entry(addr).or_insert(None);
                        continue;
                    }
                    let entry = answered.entry(addr).or_insert((None, 0));
                    if entry.0.is_none() {
                        entry.0 = v.remote_id.map(NodeId);
                    }
                    if matches!(v.probe, ProbeKind::DhtFindNode | ProbeKind::DhtSampleInfohashes) {
                        entry.1 += 1;
                    }
                }
                Observation::Sighting(s) if s.source_kind == SourceKind::Dht && s.info_hash.is_none() => {
                    let slot = sighted.entry(s.addr).or_insert(None);
                    if slot.is_none() {
                        *slot = s.id.map(NodeId);
                    }
                }
                _ => {}
            }
        }
        let mut resume = Resume::default();
        for (addr, (id, replies)) in &answered {
            match id {
                Some(id) if *replies >= queries_per_visit => resume.visited.push((*addr, *id)),
                Some(id) => resume.unfinished.push((*addr, *id)),
                // Nodes that answered only with errors have no id: they are queried again.
                None => resume.frontier.push((*addr, None)),
            }
        }
        resume.frontier.extend(
            sighted
                .into_iter()
                .filter(|(a, _)| !answered.get(a).is_some_and(|(id, _)| id.is_some())),
        );
        // One entry per address, keeping an advertised id where there is one.
        resume.frontier.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        resume.frontier.dedup_by_key(|(a, _)| *a);
        resume
    }
}

/// What became of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeState {
    /// It answered (in this run or, when resumed, an earlier one).
    Responsive,
    /// It was queried and never answered (timeouts, unreachable).
    Unresponsive,
    /// It answered with KRPC errors or malformed replies only.
    Misbehaving,
    /// It was sighted but not queried (the crawl stopped, hit its node limit, or cannot reach the
    /// address family).
    Unvisited,
}

/// Everything the crawl learnt about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawledNode {
    /// The address.
    pub addr: SocketAddr,
    /// The id the first `nodes` entry naming this address gave (`None` for bootstrap nodes).
    pub advertised: Option<NodeId>,
    /// Whether `nodes` entries named this address with different ids.
    pub conflicting_ads: bool,
    /// The id it answered with.
    pub id: Option<NodeId>,
    /// Its `v`.
    pub client: Option<Vec<u8>>,
    /// The BEP 42 note of its reply (see [`super::socket::bep42_note`]); `None` if it complies.
    pub bep42: Option<&'static str>,
    /// How many `nodes` entries named it.
    pub sighted: u32,
    /// What became of it.
    pub state: NodeState,
    /// Its visit ran to the end (in this run or an earlier one).
    pub finished: bool,
}

impl CrawledNode {
    /// It answered with another id than it was advertised with.
    pub fn mismatched(&self) -> bool {
        matches!((self.advertised, self.id), (Some(a), Some(b)) if a != b)
    }
}

/// Why the crawl stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// No node left to query.
    Exhausted,
    /// [`CrawlConfig::max_duration`] passed.
    MaxDuration,
    /// [`CrawlConfig::max_nodes`] were queried (the rest is frontier).
    MaxNodes,
}

/// The counts of a crawl.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlReport {
    /// Nodes that answered.
    pub responsive: usize,
    /// Nodes queried that never answered.
    pub unresponsive: usize,
    /// Nodes that answered only with errors or garbage.
    pub misbehaving: usize,
    /// Nodes sighted but not queried.
    pub unvisited: usize,
    /// Responsive nodes that answered with another id than advertised.
    pub mismatched: usize,
    /// Addresses advertised with more than one id.
    pub conflicting: usize,
    /// Responsive nodes whose id fails BEP 42 (exempt ranges checked too).
    pub bep42_failures: usize,
    /// The network size estimate (see the module docs), if there were replies to base it on.
    pub size_estimate: Option<f64>,
    /// Queries sent (retries included).
    pub queries: u64,
    /// Responses received and matched.
    pub responses: u64,
    /// Sighting rows recorded.
    pub sightings: u64,
    /// Distinct info-hashes from `sample_infohashes`.
    pub sampled_infohashes: usize,
    /// Distinct peers found by the lookups, over all info-hashes.
    pub peers: usize,
    /// Wall-clock time of the crawl and the lookups.
    pub duration: Duration,
    /// Why the crawl phase ended.
    pub stop: StopReason,
}

impl fmt::Display for CrawlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration.as_secs_f64();
        writeln!(f, "responsive nodes:     {}", self.responsive)?;
        writeln!(f, "unresponsive nodes:   {}", self.unresponsive)?;
        writeln!(f, "misbehaving nodes:    {}", self.misbehaving)?;
        writeln!(f, "unvisited (frontier): {}", self.unvisited)?;
        writeln!(f, "id mismatches:        {}", self.mismatched)?;
        writeln!(f, "conflicting adverts:  {}", self.conflicting)?;
        writeln!(f, "BEP 42 failures:      {}", self.bep42_failures)?;
        match self.size_estimate {
            Some(n) => writeln!(f, "network size (est.):  {n:.0}")?,
            None => writeln!(f, "network size (est.):  -")?,
        }
        writeln!(f, "queries / responses:  {} / {}", self.queries, self.responses)?;
        writeln!(f, "sightings:            {}", self.sightings)?;
        writeln!(f, "sampled info-hashes:  {}", self.sampled_infohashes)?;
        writeln!(f, "peers found:          {}", self.peers)?;
        write!(f, "duration:             {secs:.2} s ({:?})", self.stop)
    }
}

/// What a crawl found.
#[derive(Debug, Clone)]
pub struct CrawlOutcome {
    /// The counts.
    pub report: CrawlReport,
    /// Every address known, in address order.
    pub nodes: Vec<CrawledNode>,
    /// Peers found per looked-up info-hash.
    pub peers: BTreeMap<InfoHash, BTreeSet<SocketAddr>>,
    /// Info-hashes from `sample_infohashes`.
    pub samples: BTreeSet<InfoHash>,
}

impl CrawlOutcome {
    /// Where to pick up from: the nodes whose visit finished, those cut short, and the frontier
    /// (never queried, or queried without an answer).
    pub fn resume(&self) -> Resume {
        let mut r = Resume::default();
        for n in &self.nodes {
            match (n.state, n.id) {
                (NodeState::Responsive, Some(id)) if n.finished => r.visited.push((n.addr, id)),
                (NodeState::Responsive, Some(id)) => r.unfinished.push((n.addr, id)),
                (NodeState::Unvisited, _) => r.frontier.push((n.addr, n.advertised)),
                _ => {}
            }
        }
        r
    }
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct CrawlProgress {
    known: AtomicU64,
    queued: AtomicU64,
    responsive: AtomicU64,
    unresponsive: AtomicU64,
}

impl CrawlProgress {
    /// Addresses known (sighted or bootstrap).
    pub fn known(&self) -> u64 {
        self.known.load(Ordering::Relaxed)
    }
    /// Nodes scheduled for a visit.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
    /// Nodes that answered.
    pub fn responsive(&self) -> u64 {
        self.responsive.load(Ordering::Relaxed)
    }
    /// Nodes that never answered (or answered only errors).
    pub fn unresponsive(&self) -> u64 {
        self.unresponsive.load(Ordering::Relaxed)
    }
}

/// What a node's visit tells the coordinator.
enum Event {
    /// The first query was answered; `k_distance` is the distance to the k-th neighbour.
    Answered {
        addr: SocketAddr,
        id: NodeId,
        client: Option<Vec<u8>>,
        bep42: Option<&'static str>,
        k_distance: Option<f64>,
    },
    /// A reply's `nodes`.
    Nodes(Vec<(NodeId, SocketAddr)>),
    /// The first query failed on every attempt.
    Failed { addr: SocketAddr, outcome: Outcome },
    /// Info-hashes from `sample_infohashes`.
    Samples(Vec<InfoHash>),
    /// The visit ended (its last event); `finished` unless the crawl stopped it.
    Done { addr: SocketAddr, finished: bool },
}

struct Record {
    advertised: Option<NodeId>,
    conflicting_ads: bool,
    id: Option<NodeId>,
    client: Option<Vec<u8>>,
    bep42: Option<&'static str>,
    sighted: u32,
    state: NodeState,
    /// A visit was started.
    scheduled: bool,
    /// The visit ran to its end.
    finished: bool,
}

/// What every visit task shares.
struct Context {
    socket: KrpcSocket,
    engine: Engine,
    events: mpsc::Sender<Event>,
    bucket_probes: usize,
    sample: bool,
    sightings: AtomicU64,
    /// Set when the crawl stops: visits send no further query.
    stop: watch::Receiver<bool>,
}

impl Context {
    /// `request` to `addr` through the engine, unless the crawl stops first (`None`). Once a reply
    /// is in, the caller records it whole: stopping never splits a visit row from its sightings.
    async fn ask(&self, addr: SocketAddr, request: &Request) -> Option<Result<KrpcReply, ProbeError>> {
        let mut stop = self.stop.clone();
        tokio::select! {
            biased;
            r = self.socket.probe(&self.engine, addr, request) => Some(r),
            _ = stop.wait_for(|stopped| *stopped) => None,
        }
    }
}

/// A crawl, ready to run; its progress counters can be watched meanwhile.
#[derive(Debug)]
pub struct Crawl {
    socket: KrpcSocket,
    engine: Engine,
    config: CrawlConfig,
    progress: Arc<CrawlProgress>,
}

/// Runs a crawl with `config` (see [`Crawl`] to watch its progress).
pub async fn crawl(socket: KrpcSocket, engine: Engine, config: CrawlConfig) -> CrawlOutcome {
    Crawl::new(socket, engine, config).run().await
}

impl Crawl {
    /// A crawl over `socket`, under `engine`'s rules.
    pub fn new(socket: KrpcSocket, engine: Engine, config: CrawlConfig) -> Self {
        Crawl {
            socket,
            engine,
            config,
            progress: Arc::default(),
        }
    }

    /// Counters updated while it runs.
    pub fn progress(&self) -> Arc<CrawlProgress> {
        self.progress.clone()
    }

    /// Crawls, then looks up the info-hashes.
    pub async fn run(self) -> CrawlOutcome {
        let started = Instant::now();
        let sent0 = self.socket.stats().sent();
        let responses0 = self.socket.stats().responses();
        let mut rng = self.config.seed.map_or_else(SplitMix64::from_entropy, SplitMix64::new);
        let (tx, mut rx) = mpsc::channel(4096);
        let (stop_tx, stop_rx) = watch::channel(false);
        let cx = Arc::new(Context {
            socket: self.socket.clone(),
            engine: self.engine.clone(),
            events: tx,
            bucket_probes: self.config.bucket_probes,
            sample: self.config.sample_infohashes,
            sightings: AtomicU64::new(0),
            stop: stop_rx,
        });
        let locals = self.socket.local_addrs();
        let families: Vec<bool> = locals.iter().map(SocketAddr::is_ipv4).collect();
        let mut state = State {
            nodes: HashMap::new(),
            per_ip: HashMap::new(),
            tasks: JoinSet::new(),
            k_distances: Vec::new(),
            samples: BTreeSet::new(),
            queued: 0,
            running: 0,
            limited: false,
            max_nodes: self.config.max_nodes,
            full_visits_per_ip: self.config.full_visits_per_ip,
            families,
            locals,
            progress: self.progress.clone(),
        };
        let resume = &self.config.resume;
        let earlier = resume
            .visited
            .iter()
            .map(|v| (v, true))
            .chain(resume.unfinished.iter().map(|v| (v, false)));
        for ((addr, id), finished) in earlier {
            state.nodes.insert(
                *addr,
                Record {
                    advertised: None,
                    conflicting_ads: false,
                    id: Some(*id),
                    client: None,
                    bep42: super::socket::bep42_note(addr.ip(), id),
                    sighted: 0,
                    state: NodeState::Responsive,
                    scheduled: finished,
                    finished,
                },
            );
            self.progress.known.fetch_add(1, Ordering::Relaxed);
            self.progress.responsive.fetch_add(1, Ordering::Relaxed);
            if finished {
                *state.per_ip.entry(addr.ip()).or_insert(0) += 1;
            }
        }
        let start = (self.config.bootstrap.iter().map(|a| (*a, None)))
            .chain(resume.unfinished.iter().map(|(a, id)| (*a, Some(*id))))
            .chain(resume.frontier.iter().copied());
        for (addr, id) in start {
            state.sighted(addr, id, false, &cx, &mut rng);
        }
        let deadline = tokio::time::sleep_until(started + self.config.max_duration);
        tokio::pin!(deadline);
        let mut stop = StopReason::Exhausted;
        // Each visit's last event is `Done`, so once none is running every event was handled.
        while state.running > 0 {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => state.handle(ev, &cx, &mut rng),
                    None => break,
                },
                () = &mut deadline => {
                    stop = StopReason::MaxDuration;
                    break;
                }
            }
        }
        // Visits stop asking and record what they already received; a visit stuck on a slow
        // recorder past the grace period is cut.
        let _ = stop_tx.send(true);
        let grace = tokio::time::sleep(STOP_GRACE);
        tokio::pin!(grace);
        while state.running > 0 {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => state.handle_late(ev),
                    None => break,
                },
                () = &mut grace => break,
            }
        }
        state.tasks.abort_all();
        while state.tasks.join_next().await.is_some() {}
        while let Ok(ev) = rx.try_recv() {
            state.handle_late(ev);
        }
        if stop == StopReason::Exhausted && state.limited {
            stop = StopReason::MaxNodes;
        }

        let mut peers = BTreeMap::new();
        for ih in &self.config.info_hashes {
            let start: Vec<(NodeId, SocketAddr)> = state
                .nodes
                .iter()
                .filter(|(_, r)| r.state == NodeState::Responsive)
                .filter_map(|(a, r)| Some((r.id?, *a)))
                .collect();
            let found = tokio::time::timeout(self.config.lookup_duration, lookup(&cx, *ih, start))
                .await
                .unwrap_or_default();
            peers.insert(*ih, found);
        }

        let mut nodes: Vec<CrawledNode> = state
            .nodes
            .into_iter()
            .map(|(addr, r)| CrawledNode {
                addr,
                advertised: r.advertised,
                conflicting_ads: r.conflicting_ads,
                id: r.id,
                client: r.client,
                bep42: r.bep42,
                sighted: r.sighted,
                state: r.state,
                finished: r.finished,
            })
            .collect();
        nodes.sort_by_key(|n| n.addr);
        let count = |s: NodeState| nodes.iter().filter(|n| n.state == s).count();
        let responsive = nodes.iter().filter(|n| n.state == NodeState::Responsive);
        let report = CrawlReport {
            responsive: count(NodeState::Responsive),
            unresponsive: count(NodeState::Unresponsive),
            misbehaving: count(NodeState::Misbehaving),
            unvisited: count(NodeState::Unvisited),
            mismatched: responsive.clone().filter(|n| n.mismatched()).count(),
            conflicting: nodes.iter().filter(|n| n.conflicting_ads).count(),
            bep42_failures: responsive.filter(|n| n.bep42.is_some()).count(),
            size_estimate: size_estimate(&mut state.k_distances),
            queries: self.socket.stats().sent() - sent0,
            responses: self.socket.stats().responses() - responses0,
            sightings: cx.sightings.load(Ordering::Relaxed),
            sampled_infohashes: state.samples.len(),
            peers: peers.values().flatten().collect::<BTreeSet<_>>().len(),
            duration: started.elapsed(),
            stop,
        };
        CrawlOutcome {
            report,
            nodes,
            peers,
            samples: state.samples,
        }
    }
}

/// N̂ = 1 + (k − 1/3) / median(d_k) (see the module docs).
fn size_estimate(k_distances: &mut [f64]) -> Option<f64> {
    if k_distances.is_empty() {
        return None;
    }
    k_distances.sort_by(f64::total_cmp);
    let n = k_distances.len();
    let median = if n % 2 == 1 {
        k_distances[n / 2]
    } else {
        (k_distances[n / 2 - 1] + k_distances[n / 2]) / 2.0
    };
    (median > 0.0).then(|| 1.0 + (K as f64 - 1.0 / 3.0) / median)
}

/// The coordinator's state: the node table and the running visits.
struct State {
    nodes: HashMap<SocketAddr, Record>,
    per_ip: HashMap<IpAddr, usize>,
    tasks: JoinSet<()>,
    k_distances: Vec<f64>,
    samples: BTreeSet<InfoHash>,
    queued: usize,
    /// Visits started and not done.
    running: usize,
    /// A node was left unvisited because of `max_nodes`.
    limited: bool,
    max_nodes: usize,
    full_visits_per_ip: usize,
    /// Address families we have a local socket for (true = IPv4).
    families: Vec<bool>,
    /// Our own sockets' addresses: clients that ignore `ro=1` list us too.
    locals: Vec<SocketAddr>,
    progress: Arc<CrawlProgress>,
}

impl State {
    fn handle(&mut self, ev: Event, cx: &Arc<Context>, rng: &mut SplitMix64) {
        match ev {
            Event::Nodes(nodes) => {
                for (id, addr) in nodes {
                    if !is_ours(&self.locals, addr) {
                        self.sighted(addr, Some(id), true, cx, rng);
                    }
                }
            }
            other => self.handle_late(other),
        }
    }

    /// An event that schedules nothing (also used after the crawl stopped).
    fn handle_late(&mut self, ev: Event) {
        match ev {
            Event::Answered {
                addr,
                id,
                client,
                bep42,
                k_distance,
            } => {
                if let Some(r) = self.nodes.get_mut(&addr) {
                    if r.state != NodeState::Responsive {
                        self.progress.responsive.fetch_add(1, Ordering::Relaxed);
                    }
                    r.id = Some(id);
                    r.client = client;
                    r.bep42 = bep42;
                    r.state = NodeState::Responsive;
                }
                self.k_distances.extend(k_distance);
            }
            Event::Failed { addr, outcome } => {
                if let Some(r) = self.nodes.get_mut(&addr) {
                    r.state = if outcome.is_retryable() {
                        NodeState::Unresponsive
                    } else {
                        NodeState::Misbehaving
                    };
                    self.progress.unresponsive.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Samples(hashes) => self.samples.extend(hashes),
            Event::Nodes(nodes) => {
                for (id, addr) in nodes {
                    if !is_ours(&self.locals, addr) {
                        self.note(addr, Some(id), true);
                    }
                }
            }
            Event::Done { addr, finished } => {
                if let Some(r) = self.nodes.get_mut(&addr) {
                    r.finished |= finished;
                }
                self.running -= 1;
                while self.tasks.try_join_next().is_some() {}
            }
        }
    }

    /// Records a sighting of `addr`.
    fn note(&mut self, addr: SocketAddr, id: Option<NodeId>, counted: bool) {
        let mut new = false;
        let r = self.nodes.entry(addr).or_insert_with(|| {
            new = true;
            Record {
                advertised: id,
                conflicting_ads: false,
                id: None,
                client: None,
                bep42: None,
                sighted: 0,
                state: NodeState::Unvisited,
                scheduled: false,
                finished: false,
            }
        });
        if counted {
            r.sighted += 1;
        }
        match (r.advertised, id) {
            (None, Some(_)) => r.advertised = id,
            (Some(a), Some(b)) if a != b => r.conflicting_ads = true,
            _ => {}
        }
        if new {
            self.progress.known.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a sighting and starts a visit if the node is new and allowed.
    fn sighted(
        &mut self,
        addr: SocketAddr,
        id: Option<NodeId>,
        counted: bool,
        cx: &Arc<Context>,
        rng: &mut SplitMix64,
    ) {
        self.note(addr, id, counted);
        let Some(r) = self.nodes.get_mut(&addr) else { return };
        if r.scheduled || !routable(addr) || !self.families.contains(&addr.is_ipv4()) {
            return;
        }
        if self.queued >= self.max_nodes {
            self.limited = true;
            return;
        }
        r.scheduled = true;
        self.queued += 1;
        self.running += 1;
        self.progress.queued.fetch_add(1, Ordering::Relaxed);
        let seen_at_ip = self.per_ip.entry(addr.ip()).or_insert(0);
        let full = *seen_at_ip < self.full_visits_per_ip;
        *seen_at_ip += 1;
        let advertised = r.advertised;
        self.tasks
            .spawn(visit(cx.clone(), addr, advertised, full, rng.next_u64()));
    }
}

/// Whether `addr` is one of our sockets (a wildcard bind is taken to be us on every loopback
/// address: replies to loopback queries leave from there).
fn is_ours(locals: &[SocketAddr], addr: SocketAddr) -> bool {
    locals.iter().any(|l| {
        l.port() == addr.port() && (l.ip() == addr.ip() || (l.ip().is_unspecified() && addr.ip().is_loopback()))
    })
}

/// Addresses a crawl never queries: port 0, unspecified, multicast and broadcast addresses.
pub(crate) fn routable(addr: SocketAddr) -> bool {
    addr.port() != 0
        && match addr.ip() {
            IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
            IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
        }
}

/// Records the `nodes` and `nodes6` of `reply` as DHT sightings (the neighbour graph: source is the
/// node that answered, no info-hash) and returns them.
pub async fn record_nodes(recorder: &Recorder, reply: &KrpcReply) -> Vec<(NodeId, SocketAddr)> {
    let r = &reply.response;
    let v4 = r.nodes.iter().flatten().map(|(id, a)| (*id, SocketAddr::V4(*a)));
    let v6 = r.nodes6.iter().flatten().map(|(id, a)| (*id, SocketAddr::V6(*a)));
    let nodes: Vec<(NodeId, SocketAddr)> = v4.chain(v6).collect();
    if nodes.is_empty() {
        return nodes;
    }
    let at = now_micros();
    let source = reply.from.to_string();
    for (id, addr) in &nodes {
        let row = Sighting {
            at,
            source_kind: SourceKind::Dht,
            source: source.clone(),
            source_id: Some(r.id.0),
            info_hash: None,
            addr: *addr,
            id: Some(id.0),
        };
        recorder.record(Observation::Sighting(row)).await;
    }
    nodes
}

/// Records the `values` of a `get_peers` reply as peers of `info_hash` seen by the DHT node that
/// answered, and returns them.
pub async fn record_peers(recorder: &Recorder, reply: &KrpcReply, info_hash: InfoHash) -> Vec<SocketAddr> {
    let values = reply.response.values.clone().unwrap_or_default();
    if values.is_empty() {
        return values;
    }
    let at = now_micros();
    let source = reply.from.to_string();
    for peer in &values {
        let row = Sighting {
            at,
            source_kind: SourceKind::Dht,
            source: source.clone(),
            source_id: Some(reply.response.id.0),
            info_hash: Some(info_hash),
            addr: *peer,
            id: None,
        };
        recorder.record(Observation::Sighting(row)).await;
    }
    values
}

impl Context {
    /// [`record_nodes`], counted.
    async fn record_nodes(&self, reply: &KrpcReply) -> Vec<(NodeId, SocketAddr)> {
        let nodes = record_nodes(self.engine.recorder(), reply).await;
        self.sightings.fetch_add(nodes.len() as u64, Ordering::Relaxed);
        nodes
    }
}

/// One node's visit, then [`Event::Done`].
async fn visit(cx: Arc<Context>, addr: SocketAddr, advertised: Option<NodeId>, full: bool, seed: u64) {
    visit_node(&cx, addr, advertised, full, seed).await;
    let finished = !*cx.stop.borrow();
    let _ = cx.events.send(Event::Done { addr, finished }).await;
}

/// One node's visit (see the module docs). Ends early if the node does not answer.
async fn visit_node(cx: &Context, addr: SocketAddr, advertised: Option<NodeId>, full: bool, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let first_target = advertised.unwrap_or_else(|| rng.node_id());
    let reply = match cx.ask(addr, &Request::FindNode { target: first_target }).await {
        None => return,
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            let _ = cx
                .events
                .send(Event::Failed {
                    addr,
                    outcome: e.outcome,
                })
                .await;
            return;
        }
    };
    let id = reply.response.id;
    let first = cx.record_nodes(&reply).await;
    let answered = Event::Answered {
        addr,
        id,
        client: reply.version.clone(),
        bep42: reply.bep42_note(),
        // Only a reply for the node's own id samples the density around it.
        k_distance: advertised.and_then(|_| kth_distance(&first_target, &first)),
    };
    let _ = cx.events.send(answered).await;
    let _ = cx.events.send(Event::Nodes(first.clone())).await;
    if !full {
        return;
    }
    // A bootstrap node was asked for a random target: ask for its own neighbourhood now.
    let nearest = match advertised {
        Some(_) => Some(first),
        None => probe(cx, addr, id).await,
    };
    if let Some(nearest) = nearest {
        for depth in probe_depths(&id, &nearest, cx.bucket_probes, &mut rng) {
            probe(cx, addr, bucket_target(&id, depth, &mut rng)).await;
        }
    }
    if cx.sample {
        let request = Request::SampleInfohashes { target: rng.node_id() };
        if let Some(Ok(reply)) = cx.ask(addr, &request).await {
            let nodes = cx.record_nodes(&reply).await;
            let _ = cx.events.send(Event::Nodes(nodes)).await;
            if let Some(samples) = reply.response.samples {
                let _ = cx.events.send(Event::Samples(samples)).await;
            }
        }
    }
}

/// One `find_node` into a node's table; its `nodes` go to the coordinator and are returned.
async fn probe(cx: &Context, addr: SocketAddr, target: NodeId) -> Option<Vec<(NodeId, SocketAddr)>> {
    let reply = cx.ask(addr, &Request::FindNode { target }).await?.ok()?;
    let nodes = cx.record_nodes(&reply).await;
    let _ = cx.events.send(Event::Nodes(nodes.clone())).await;
    Some(nodes)
}

/// The distance from `target` to the k-th closest of a full `nodes` list.
fn kth_distance(target: &NodeId, nodes: &[(NodeId, SocketAddr)]) -> Option<f64> {
    if nodes.len() < K {
        return None;
    }
    let mut d: Vec<f64> = nodes.iter().map(|(id, _)| distance_fraction(target, id)).collect();
    d.sort_by(f64::total_cmp);
    Some(d[K - 1])
}

/// The buckets to probe after a nearest-neighbour reply: one random shallow bucket, then c, c − 1,
/// ... (c: the shallowest bucket the reply reached), `count` in all.
fn probe_depths(id: &NodeId, nearest: &[(NodeId, SocketAddr)], count: usize, rng: &mut SplitMix64) -> Vec<u32> {
    let Some(c) = nearest.iter().map(|(n, _)| prefix_len(id, n)).min() else {
        return Vec::new();
    };
    let c = c.min(159);
    let mut depths = Vec::with_capacity(count);
    let deep = count.saturating_sub(1);
    if count > 0 {
        // The shallow bucket: above the ones probed below, if there is room.
        let above = c.saturating_sub(deep as u32).saturating_sub(1);
        if above > 0 || c > deep as u32 {
            depths.push(rng.below(u64::from(above) + 1) as u32);
        }
    }
    for i in 0..deep as u32 {
        if i > c {
            break;
        }
        depths.push(c - i);
    }
    depths.truncate(count);
    depths
}

/// An iterative `get_peers` lookup for `info_hash` from the closest of `known`; returns the peers
/// and records them (and the nodes met) as sightings.
async fn lookup(cx: &Context, info_hash: InfoHash, known: Vec<(NodeId, SocketAddr)>) -> BTreeSet<SocketAddr> {
    let target = NodeId(info_hash.0);
    let mut candidates: BTreeMap<[u8; 20], (NodeId, SocketAddr)> = BTreeMap::new();
    let key = |id: &NodeId| super::space::distance(&target, id);
    let mut known = known;
    known.sort_by(|a, b| cmp_distance(&target, &a.0, &b.0));
    for (id, addr) in known.into_iter().take(2 * K) {
        candidates.insert(key(&id), (id, addr));
    }
    let mut asked: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut answered: BTreeSet<[u8; 20]> = BTreeSet::new();
    let mut peers = BTreeSet::new();
    loop {
        // The closest K that answered or are still to ask; stop once all of them were asked.
        let batch: Vec<(NodeId, SocketAddr)> = candidates
            .iter()
            .filter(|(d, (_, a))| answered.contains(*d) || !asked.contains(a))
            .take(K)
            .filter(|(_, (_, a))| !asked.contains(a))
            .map(|(_, v)| *v)
            .collect();
        if batch.is_empty() {
            break;
        }
        let mut round = JoinSet::new();
        for (id, addr) in batch {
            asked.insert(addr);
            let socket = cx.socket.clone();
            let engine = cx.engine.clone();
            round.spawn(async move {
                let reply = socket.probe(&engine, addr, &Request::GetPeers { info_hash }).await;
                (id, reply)
            });
        }
        while let Some(done) = round.join_next().await {
            let Ok((id, Ok(reply))) = done else { continue };
            answered.insert(key(&id));
            let locals = cx.socket.local_addrs();
            for (nid, naddr) in cx.record_nodes(&reply).await {
                if routable(naddr) && !is_ours(&locals, naddr) {
                    candidates.entry(key(&nid)).or_insert((nid, naddr));
                }
            }
            let values = record_peers(cx.engine.recorder(), &reply, info_hash).await;
            cx.sightings.fetch_add(values.len() as u64, Ordering::Relaxed);
            peers.extend(values);
        }
    }
    peers
}

#[cfg(test)]
mod tests;
