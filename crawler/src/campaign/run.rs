//! Running a campaign: one recorded crawl in the output folder's store, one [`Engine`] shared
//! by every probe (so per-IP politeness holds across probes and protocols), each probe on its own
//! schedule until the campaign's duration is used up or the caller stops it; then the summary
//! and the exports. It owns the schedule; it never prints (the caller draws [`RunProgress`]).
//!
//! # How the probes fit together
//!
//! - `dht_crawl`: a whole [`Crawl`] per round from `targets.dht_bootstrap` (at most
//!   `max_duration`, never past the campaign's end); with `get_peers`, the peers its lookups
//!   find for the campaign's swarms go to their swarm monitors.
//! - `tracker`: per round, an announce (`started` first, then regular ones, never more often
//!   than a tracker's `min interval`) and a scrape to every tracker of every swarm, and a
//!   `stopped` announce to each at the end. The peers go to the swarm monitors.
//! - `swarm`: one [`SwarmMonitor`] per swarm, one round per `every`. When the campaign also has
//!   a `tracker` probe, that probe is the only one announcing (so the tracker counts the crawler
//!   once) and the monitors wait for its first round.
//!
//! A probe without `every` runs one round. Rounds of one probe never overlap: a round that takes
//! longer than `every` delays the next.
//!
//! # Output folder
//!
//! `crawl.sqlite` (every observation; one crawl per run of the campaign), `summary.txt`
//! ([`super::summary`]), `parquet/` and `csv/` (the run's rows, one file per table).
//!
//! # Stopping and resuming
//!
//! When the caller's stop future completes (Ctrl-C), rounds in flight are dropped, trackers get
//! their `stopped` announce, the crawl is marked `interrupted` with the time it ran in its notes,
//! and the summary and exports are written from what was recorded. [`CampaignRun::prepare`] with
//! `resume` takes up the newest unfinished run of the same campaign (interrupted, or `running`
//! because its process was killed) and runs for the time it had left, appending to the same
//! crawl; a killed run counts as having run until its last recorded visit.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::dht::crawl::{Crawl, CrawlConfig};
use crate::dht::socket::{KrpcSocket, SocketConfig};
use crate::engine::{Engine, EngineStats, Recorder};
use crate::gnutella::crawl::{TopologyConfig, TopologyCrawler};
use crate::gnutella::snapshot::FrontierRules;
use crate::infohash::InfoHash;
use crate::observe::Micros;
use crate::probe::onion_directory::{census_http_config, fetch_consensus};
use crate::probe::peer::PeerConfig;
use crate::probe::tracker::{TrackerClient, TrackerConfig};
use crate::probe::{random_peer_id, random_u64};
use crate::store::{
    CrawlEnd, CrawlId, CrawlRecord, CrawlStatus, ExportSummary, Recording, Store, StoreError, export_csv,
    export_parquet,
};
use crate::swarm::{PeerFeed, SwarmConfig, SwarmMonitor, SwarmTarget};
use crate::tracker::Event;
use crate::tracker::http::{AnnounceRequest, PeerAddr};

use super::config::{
    Campaign, CampaignError, DhtCrawlSpec, ExportFormat, GnutellaCrawlSpec, ProbeSpec, SwarmSpec, TrackerSpec,
};
use super::summary::{Summary, SummaryRequest, summarize};

/// The store in the output folder.
pub const STORE_FILE: &str = "crawl.sqlite";
/// The summary in the output folder.
pub const SUMMARY_FILE: &str = "summary.txt";
/// The port announced to trackers (nothing listens there: the crawler only asks).
const ANNOUNCE_PORT: u16 = 6881;
/// Peers asked of a tracker per announce.
const NUMWANT: u32 = 200;
/// How long the final `stopped` announces may take in all.
const STOPPED_GRACE: Duration = Duration::from_secs(10);
/// The note a run leaves in its crawl's notes: `campaign ran 12.345 s`.
const RAN_NOTE: &str = "campaign ran ";

/// Why a campaign could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The campaign's targets could not be read.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// The store failed (see the message for the file and the cause).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output folder or a file in it could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The folder or file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `--resume` was asked, but the store holds no unfinished run of this campaign.
    #[error("{path} holds no unfinished run of campaign {name:?} to resume")]
    NothingToResume {
        /// The store.
        path: PathBuf,
        /// The campaign.
        name: String,
    },
    /// A run of this campaign did not finish; starting another would leave it dangling.
    #[error(
        "{path} holds an unfinished run of campaign {name:?} (crawl {crawl}): continue it with --resume, or choose another output folder"
    )]
    Unfinished {
        /// The store.
        path: PathBuf,
        /// The campaign.
        name: String,
        /// Its crawl.
        crawl: CrawlId,
    },
    /// The DHT probe's UDP socket could not be bound.
    #[error("cannot bind the DHT socket on {bind:?}: {source}")]
    Socket {
        /// The addresses asked for.
        bind: Vec<SocketAddr>,
        /// The error.
        source: io::Error,
    },
}

/// Live counters of a run, for a progress display.
#[derive(Debug)]
pub struct RunProgress {
    started: Instant,
    budget: Duration,
    rounds: Vec<(&'static str, AtomicU64)>,
}

impl RunProgress {
    /// Time this run has been going.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Time this run may take in all (the campaign's duration, less what an earlier run used).
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Rounds completed so far, per probe in campaign order (swarm rounds over all swarms).
    pub fn rounds(&self) -> Vec<(&'static str, u64)> {
        self.rounds
            .iter()
            .map(|(n, r)| (*n, r.load(Ordering::Relaxed)))
            .collect()
    }

    fn round_done(&self, probe: usize) {
        if let Some((_, r)) = self.rounds.get(probe) {
            r.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a run left behind.
#[derive(Debug)]
pub struct RunOutcome {
    /// The crawl in the store.
    pub crawl: CrawlId,
    /// Whether it ran to its end or was stopped.
    pub end: CrawlEnd,
    /// The summary (also in `summary.txt`).
    pub summary: Summary,
    /// The output folder.
    pub output: PathBuf,
    /// What the exports wrote.
    pub exports: Vec<ExportSummary>,
}

/// A campaign ready to run: output folder made, crawl begun or resumed, engine built.
#[derive(Debug)]
pub struct CampaignRun {
    campaign: Campaign,
    swarms: Vec<SwarmTarget>,
    recording: Recording,
    engine: Engine,
    progress: Arc<RunProgress>,
}

/// The crawl kind a campaign's runs are recorded under.
fn crawl_kind(campaign: &Campaign) -> String {
    format!("campaign {}", campaign.name)
}

impl CampaignRun {
    /// Make the output folder, open its store, and begin a new run of `campaign` (or, with
    /// `resume`, take up its newest unfinished run).
    pub fn prepare(campaign: Campaign, resume: bool) -> Result<CampaignRun, RunError> {
        let swarms = campaign.swarms()?;
        std::fs::create_dir_all(&campaign.output).map_err(|source| RunError::Output {
            path: campaign.output.clone(),
            source,
        })?;
        let path = campaign.output.join(STORE_FILE);
        let kind = crawl_kind(&campaign);
        let store = Store::open(&path)?;
        let unfinished = store.unfinished_crawls()?.into_iter().rfind(|c| c.kind == kind);
        let (recorder, recording, used) = match (resume, unfinished) {
            (true, Some(before)) => {
                let used = time_used(&before, store.last_visit_at(before.id)?);
                let (recorder, recording) = Recording::resume(&path, before.id)?;
                (recorder, recording, used)
            }
            (true, None) => {
                return Err(RunError::NothingToResume {
                    path,
                    name: campaign.name.clone(),
                });
            }
            (false, Some(c)) => {
                return Err(RunError::Unfinished {
                    path,
                    name: campaign.name.clone(),
                    crawl: c.id,
                });
            }
            (false, None) => {
                let (recorder, recording) = Recording::begin(&path, &kind, &campaign.source)?;
                (recorder, recording, Duration::ZERO)
            }
        };
        let engine = engine_for(&campaign, recorder);
        let progress = Arc::new(RunProgress {
            started: Instant::now(),
            budget: campaign.duration.saturating_sub(used),
            rounds: campaign.probes.iter().map(|p| (p.name(), AtomicU64::new(0))).collect(),
        });
        Ok(CampaignRun {
            campaign,
            swarms,
            recording,
            engine,
            progress,
        })
    }

    /// The crawl this run records to, as it stood when the run was prepared.
    pub fn crawl(&self) -> &CrawlRecord {
        self.recording.crawl()
    }

    /// The engine's running totals.
    pub fn stats(&self) -> &Arc<EngineStats> {
        self.engine.stats()
    }

    /// Live counters.
    pub fn progress(&self) -> Arc<RunProgress> {
        self.progress.clone()
    }

    /// Run the probes until the time is up or `stop` completes, then finish the crawl, write the
    /// summary and the exports.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<RunOutcome, RunError> {
        let CampaignRun {
            campaign,
            swarms,
            recording,
            engine,
            progress,
        } = self;
        let id = recording.crawl().id;
        let path = recording.store().path().to_owned();
        let started = Instant::now();
        let deadline = started + progress.budget;
        let (stop_tx, stop_rx) = watch::channel(false);
        let schedule = Schedule {
            deadline,
            stop: stop_rx,
        };
        let probes = Probes::start(&campaign, &swarms, &engine, &schedule, &progress).await?;
        let end = tokio::select! {
            () = probes.finished() => CrawlEnd::Finished,
            () = stop => CrawlEnd::Interrupted,
        };
        let _ = stop_tx.send(true);
        info!(campaign = %campaign.name, ?end, "campaign probes stopped");
        recording
            .store()
            .append_note(id, &format!("{RAN_NOTE}{:.3} s\n", started.elapsed().as_secs_f64()))?;
        drop(engine);
        recording.finish(end).await?;

        let store = Store::open(&path)?;
        let request = SummaryRequest {
            analyses: campaign.analyses.clone(),
            attempts: campaign.engine.to_config().attempts,
            sybil: campaign.sybil.to_config(),
        };
        let summary = summarize(&store, id, &request)?;
        let text = summary_text(&campaign, &summary, end);
        let summary_path = campaign.output.join(SUMMARY_FILE);
        std::fs::write(&summary_path, text).map_err(|source| RunError::Output {
            path: summary_path,
            source,
        })?;
        let mut exports = Vec::new();
        for format in &campaign.export {
            exports.push(match format {
                ExportFormat::Parquet => export_parquet(&store, &campaign.output.join("parquet"), Some(id))?,
                ExportFormat::Csv => export_csv(&store, &campaign.output.join("csv"), Some(id))?,
            });
        }
        Ok(RunOutcome {
            crawl: id,
            end,
            summary,
            output: campaign.output.clone(),
            exports,
        })
    }
}

/// The engine under the campaign's rules and deny-list.
fn engine_for(campaign: &Campaign, recorder: Recorder) -> Engine {
    Engine::new(campaign.engine.to_config(), recorder).with_deny_list(campaign.engine.deny_list())
}

/// `summary.txt`: the campaign's name and purpose, then the crawl's summary.
pub fn summary_text(campaign: &Campaign, summary: &Summary, end: CrawlEnd) -> String {
    let mut text = format!("campaign {}\n", campaign.name);
    if !campaign.description.trim().is_empty() {
        text.push_str(&format!("{}\n", campaign.description.trim()));
    }
    if end == CrawlEnd::Interrupted {
        text.push_str("stopped early: `onionlab-crawl run --resume` continues it\n");
    }
    text.push('\n');
    text.push_str(&summary.to_string());
    text
}

/// The time earlier runs of `crawl` used: the `campaign ran` notes, plus, for a run killed
/// without leaving one (status `running`), the time from its start to its last visit.
fn time_used(crawl: &CrawlRecord, last_visit: Option<Micros>) -> Duration {
    let mut used = 0.0;
    let mut segment_start = crawl.started_at;
    let mut noted_since = false;
    for line in crawl.notes.lines() {
        if let Some(secs) = line.strip_prefix(RAN_NOTE).and_then(|r| r.strip_suffix(" s")) {
            used += secs.parse::<f64>().unwrap_or(0.0);
            noted_since = true;
        } else if let Some(at) = line
            .strip_prefix("resumed at ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|t| t.parse::<Micros>().ok())
        {
            segment_start = at;
            noted_since = false;
        }
    }
    if crawl.status == CrawlStatus::Running && !noted_since {
        let last = last_visit.unwrap_or(segment_start).max(segment_start);
        used += (last - segment_start) as f64 / 1e6;
    }
    Duration::try_from_secs_f64(used).unwrap_or(Duration::ZERO)
}

/// When rounds may run: until the deadline, or until the stop signal.
#[derive(Debug, Clone)]
struct Schedule {
    deadline: Instant,
    stop: watch::Receiver<bool>,
}

impl Schedule {
    /// Run `work` unless time runs out or the run is stopped first (`None` then).
    async fn bounded<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut stop = self.stop.clone();
        tokio::select! {
            out = work => Some(out),
            () = tokio::time::sleep_until(self.deadline) => None,
            _ = stop.wait_for(|s| *s) => None,
        }
    }

    /// Wait until `at`; `false` if the run ends first.
    async fn wait_until(&self, at: Instant) -> bool {
        at < self.deadline && self.bounded(tokio::time::sleep_until(at)).await.is_some()
    }

    /// Time left.
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// After a round that began at `began`, wait for the next one; `false` when the probe is done.
    async fn next_round(&self, began: Instant, every: Option<Duration>) -> bool {
        match every {
            Some(every) => self.wait_until(began + every).await,
            None => false,
        }
    }
}

/// The probe tasks of a run.
struct Probes {
    tasks: JoinSet<()>,
}

impl Probes {
    async fn start(
        campaign: &Campaign,
        swarms: &[SwarmTarget],
        engine: &Engine,
        schedule: &Schedule,
        progress: &Arc<RunProgress>,
    ) -> Result<Probes, RunError> {
        let mut tasks = JoinSet::new();
        let has_tracker = campaign.probes.iter().any(|p| matches!(p, ProbeSpec::Tracker(_)));
        let (first_tracker_round, tracker_ready) = watch::channel(!has_tracker);
        let mut feeds: BTreeMap<InfoHash, Vec<PeerFeed>> = BTreeMap::new();
        for (i, probe) in campaign.probes.iter().enumerate() {
            if let ProbeSpec::Swarm(spec) = probe {
                for swarm in swarms {
                    let mut target = swarm.clone();
                    if has_tracker {
                        target.trackers.clear();
                    }
                    let monitor = SwarmMonitor::new(engine.clone(), swarm_config(spec, schedule.left()), target);
                    feeds.entry(swarm.info_hash).or_default().push(monitor.feed());
                    let (schedule, progress, mut ready) = (schedule.clone(), progress.clone(), tracker_ready.clone());
                    tasks.spawn(async move {
                        if schedule.bounded(ready.wait_for(|r| *r)).await.is_none() {
                            return;
                        }
                        schedule.bounded(monitor.run(|_| progress.round_done(i))).await;
                    });
                }
            }
        }
        let feeds = Arc::new(feeds);
        let mut first_tracker_round = Some(first_tracker_round);
        for (i, probe) in campaign.probes.iter().enumerate() {
            let (schedule, progress, feeds) = (schedule.clone(), progress.clone(), feeds.clone());
            match probe {
                ProbeSpec::DhtCrawl(spec) => {
                    let socket = dht_socket(spec, engine).await?;
                    let (engine, spec) = (engine.clone(), spec.clone());
                    let bootstrap = campaign.targets.dht_bootstrap.clone();
                    let hashes: Vec<InfoHash> = swarms.iter().map(|s| s.info_hash).collect();
                    tasks.spawn(async move {
                        let info_hashes = if spec.get_peers { hashes } else { Vec::new() };
                        dht_rounds(
                            socket,
                            engine,
                            bootstrap,
                            info_hashes,
                            spec,
                            schedule,
                            feeds,
                            progress,
                            i,
                        )
                        .await;
                    });
                }
                ProbeSpec::Tracker(spec) => {
                    let client = TrackerClient::new(engine.clone(), TrackerConfig::default());
                    let (swarms, spec) = (swarms.to_vec(), spec.clone());
                    let ready = first_tracker_round.take();
                    tasks.spawn(async move {
                        tracker_rounds(client, swarms, spec, schedule, feeds, progress, i, ready).await;
                    });
                }
                ProbeSpec::Swarm(_) => {}
                ProbeSpec::GnutellaCrawl(spec) => {
                    let crawler = TopologyCrawler::new(engine.clone(), topology_config(spec));
                    let (bootstrap, every) = (campaign.targets.gnutella_bootstrap.clone(), spec.every);
                    tasks.spawn(async move {
                        gnutella_rounds(crawler, bootstrap, every, schedule, progress, i).await;
                    });
                }
                ProbeSpec::OnionConsensus(spec) => {
                    let (engine, every) = (engine.clone(), spec.every);
                    let authorities = campaign.targets.onion_authorities.clone();
                    tasks.spawn(async move {
                        onion_rounds(engine, authorities, every, schedule, progress, i).await;
                    });
                }
            }
        }
        Ok(Probes { tasks })
    }

    /// Every probe is done (a campaign whose probes all ran their rounds ends early).
    async fn finished(mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(e) = joined {
                warn!("a campaign probe task failed: {e}");
            }
        }
    }
}

fn swarm_config(spec: &SwarmSpec, left: Duration) -> SwarmConfig {
    let d = SwarmConfig::default();
    SwarmConfig {
        rounds: spec.every.is_none().then_some(1),
        duration: spec.every.map(|_| left),
        interval: spec.every.unwrap_or(d.interval),
        sample_pieces: spec.sample_pieces,
        linger: spec.linger,
        peer: PeerConfig {
            max_pex_peers: if spec.pex { d.peer.max_pex_peers } else { 0 },
            ..d.peer
        },
        ..d
    }
}

fn topology_config(spec: &GnutellaCrawlSpec) -> TopologyConfig {
    let d = TopologyConfig::default();
    TopologyConfig {
        frontier: FrontierRules {
            contact_leaves: spec.contact_leaves,
            max_contacts: spec.max_contacts,
            ..d.frontier
        },
        recrawl_interval: spec.recrawl_interval.or(spec.every).unwrap_or(d.recrawl_interval),
        max_duration: spec.max_duration,
        ..d
    }
}

/// Topology snapshots on the probe's schedule; each visit and sighting goes to the store
/// through the engine.
async fn gnutella_rounds(
    mut crawler: TopologyCrawler,
    bootstrap: Vec<SocketAddr>,
    every: Option<Duration>,
    schedule: Schedule,
    progress: Arc<RunProgress>,
    probe: usize,
) {
    loop {
        let began = Instant::now();
        let Some(snapshot) = schedule.bounded(crawler.snapshot(&bootstrap)).await else {
            return;
        };
        debug!(nodes = snapshot.nodes.len(), "campaign gnutella round done");
        progress.round_done(probe);
        if !schedule.next_round(began, every).await {
            return;
        }
    }
}

/// Relay censuses on the probe's schedule: every authority's view of the consensus, one after
/// the other (each fetch is recorded with its sightings through the engine).
async fn onion_rounds(
    engine: Engine,
    authorities: Vec<SocketAddr>,
    every: Option<Duration>,
    schedule: Schedule,
    progress: Arc<RunProgress>,
    probe: usize,
) {
    let http = census_http_config();
    loop {
        let began = Instant::now();
        let census = async {
            for authority in &authorities {
                if let Err(e) = fetch_consensus(&engine, &http, *authority).await {
                    debug!(%authority, "campaign onion census: {e}");
                }
            }
        };
        if schedule.bounded(census).await.is_none() {
            return;
        }
        progress.round_done(probe);
        if !schedule.next_round(began, every).await {
            return;
        }
    }
}

async fn dht_socket(spec: &DhtCrawlSpec, engine: &Engine) -> Result<KrpcSocket, RunError> {
    let d = SocketConfig::default();
    let bind = if spec.bind.is_empty() {
        d.bind.clone()
    } else {
        spec.bind.clone()
    };
    KrpcSocket::bind(SocketConfig {
        bind: bind.clone(),
        timeout: engine.config().timeout,
        ..d
    })
    .await
    .map_err(|source| RunError::Socket { bind, source })
}

/// Hand `peers` of `info_hash` to its monitors.
async fn feed(
    feeds: &BTreeMap<InfoHash, Vec<PeerFeed>>,
    info_hash: &InfoHash,
    peers: impl IntoIterator<Item = SocketAddr>,
) {
    let Some(monitors) = feeds.get(info_hash) else {
        return;
    };
    for peer in peers {
        for m in monitors {
            m.send(peer).await;
        }
    }
}

#[allow(clippy::too_many_arguments)] // one task's whole context, taken apart once
async fn dht_rounds(
    socket: KrpcSocket,
    engine: Engine,
    bootstrap: Vec<SocketAddr>,
    info_hashes: Vec<InfoHash>,
    spec: DhtCrawlSpec,
    schedule: Schedule,
    feeds: Arc<BTreeMap<InfoHash, Vec<PeerFeed>>>,
    progress: Arc<RunProgress>,
    probe: usize,
) {
    loop {
        let began = Instant::now();
        let left = schedule.left();
        let d = CrawlConfig::default();
        let config = CrawlConfig {
            bootstrap: bootstrap.clone(),
            max_duration: spec.max_duration.min(left),
            max_nodes: spec.max_nodes,
            sample_infohashes: spec.sample_infohashes,
            info_hashes: info_hashes.clone(),
            lookup_duration: d.lookup_duration.min(left),
            ..d
        };
        let Some(out) = schedule
            .bounded(Crawl::new(socket.clone(), engine.clone(), config).run())
            .await
        else {
            return;
        };
        debug!(responsive = out.report.responsive, "campaign dht round done");
        for (h, peers) in &out.peers {
            feed(&feeds, h, peers.iter().copied()).await;
        }
        progress.round_done(probe);
        if !schedule.next_round(began, spec.every).await {
            return;
        }
    }
}

/// One tracker of one swarm, as the tracker probe sees it.
struct Announced {
    url: String,
    swarm: usize,
    not_before: Instant,
    tracker_id: Option<Vec<u8>>,
    started: bool,
}

#[allow(clippy::too_many_arguments)] // one task's whole context, taken apart once
async fn tracker_rounds(
    client: TrackerClient,
    swarms: Vec<SwarmTarget>,
    spec: TrackerSpec,
    schedule: Schedule,
    feeds: Arc<BTreeMap<InfoHash, Vec<PeerFeed>>>,
    progress: Arc<RunProgress>,
    probe: usize,
    mut ready: Option<watch::Sender<bool>>,
) {
    let peer_id = random_peer_id();
    let key = u32::try_from(random_u64() & 0xffff_ffff).unwrap_or(0);
    let request = |swarm: &SwarmTarget, event, tracker_id: &Option<Vec<u8>>| AnnounceRequest {
        info_hash: swarm.info_hash,
        peer_id,
        port: ANNOUNCE_PORT,
        uploaded: 0,
        downloaded: 0,
        left: swarm.info.as_ref().map_or(1, |i| i.total_length().max(1)),
        event,
        numwant: Some(NUMWANT),
        key: Some(key),
        tracker_id: tracker_id.clone(),
    };
    let mut trackers: Vec<Announced> = Vec::new();
    for (i, s) in swarms.iter().enumerate() {
        for url in &s.trackers {
            trackers.push(Announced {
                url: url.clone(),
                swarm: i,
                not_before: Instant::now(),
                tracker_id: None,
                started: false,
            });
        }
    }
    loop {
        let began = Instant::now();
        let round = async {
            for t in &mut trackers {
                let swarm = &swarms[t.swarm];
                if Instant::now() < t.not_before {
                    continue;
                }
                let event = if t.started { Event::None } else { Event::Started };
                match client.announce(&t.url, &request(swarm, event, &t.tracker_id)).await {
                    Ok(a) => {
                        t.started = true;
                        let min = a.min_interval.map_or(Duration::ZERO, |m| Duration::from_secs(m.into()));
                        t.not_before = Instant::now() + min;
                        t.tracker_id = a.tracker_id.or(t.tracker_id.take());
                        let peers = a.peers.iter().filter_map(|p| match p.addr {
                            PeerAddr::Ip(addr) => Some(addr),
                            PeerAddr::Name(..) => None,
                        });
                        feed(&feeds, &swarm.info_hash, peers.collect::<Vec<_>>()).await;
                    }
                    Err(e) => debug!("campaign announce failed: {e}"),
                }
                if spec.scrape
                    && let Err(e) = client.scrape(&t.url, &[swarm.info_hash]).await
                {
                    debug!("campaign scrape failed: {e}");
                }
            }
        };
        let done = schedule.bounded(round).await.is_some();
        if let Some(tx) = ready.take() {
            let _ = tx.send(true);
        }
        if !done {
            break;
        }
        progress.round_done(probe);
        if !schedule.next_round(began, spec.every).await {
            break;
        }
    }
    let stopped = async {
        for t in trackers.iter().filter(|t| t.started) {
            let stopped = request(&swarms[t.swarm], Event::Stopped, &t.tracker_id);
            if let Err(e) = client.announce(&t.url, &stopped).await {
                debug!("campaign stopped announce failed: {e}");
            }
        }
    };
    if tokio::time::timeout(STOPPED_GRACE, stopped).await.is_err() {
        warn!("campaign: the final `stopped` announces took longer than {STOPPED_GRACE:?}; some were not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: CrawlStatus, notes: &str) -> CrawlRecord {
        CrawlRecord {
            id: CrawlId(1),
            kind: "campaign x".into(),
            started_at: 1_000_000_000,
            finished_at: None,
            status,
            config: String::new(),
            notes: notes.into(),
        }
    }

    #[test]
    fn time_used_adds_the_notes_of_earlier_runs() {
        let c = record(
            CrawlStatus::Interrupted,
            "campaign ran 2.500 s\nresumed at 1005000000 (was interrupted)\ncampaign ran 1.000 s\n",
        );
        assert_eq!(time_used(&c, Some(2_000_000_000)), Duration::from_millis(3500));
    }

    #[test]
    fn a_killed_run_counts_until_its_last_visit() {
        let c = record(CrawlStatus::Running, "");
        assert_eq!(time_used(&c, Some(1_004_000_000)), Duration::from_secs(4));
        let c = record(
            CrawlStatus::Running,
            "campaign ran 2.000 s\nresumed at 1010000000 (was interrupted)\n",
        );
        assert_eq!(time_used(&c, Some(1_013_000_000)), Duration::from_secs(5));
        assert_eq!(time_used(&c, None), Duration::from_secs(2));
    }
}
