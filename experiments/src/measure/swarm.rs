//! The BitTorrent swarm of a measurement testbed (`testbed: swarm:`): our own peers
//! ([`crate::swarm`]) on loopback, each on its own 127.S.x.y with a rate limit: seeders,
//! leechers, BitThief-like free riders and poisoners (peers that claim every piece and serve
//! corrupt blocks), the leechers optionally churning (sessions and downtimes drawn from two
//! Weibulls, as in the Gnutella overlay), and the score of a crawl against what ran: peers
//! found, poisoners flagged by the crawler's bad-piece checks, and measured session lengths
//! against the true ones (Stutzbach and Rejaie's create-based method against the naive one).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use onionlab_crawler::analysis::Score;
use onionlab_crawler::campaign::Summary;
use onionlab_crawler::campaign::config::Targets;
use onionlab_crawler::dht::space::SplitMix64;
use onionlab_crawler::observe::{Outcome as ProbeOutcome, ProbeKind};
use onionlab_crawler::store::SessionRow;
use serde::Deserialize;
use tokio::sync::watch;

use super::{CrawlRows, MeasureError, Scored, precision_recall};
use crate::gnutella::churn::{self, PlannedSession};
use crate::gnutella::config::WeibullParams;
use crate::outcome::{Figure, Series, SeriesStyle, Table};
use crate::sim::{ParamsError, measurement, require};
use crate::swarm::choker::Strategy;
use crate::swarm::runner::{PeerSpec, Swarm, SwarmSpec};

/// What to start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmTestbed {
    /// Bytes of content, KiB.
    pub file_kib: u32,
    /// Bytes per piece, KiB (16 to 16,384).
    pub piece_kib: u32,
    /// Peers holding the whole content from the start (at least 1).
    pub seeders: usize,
    /// Honest peers starting with nothing.
    pub leechers: usize,
    /// BitThief-like free riders: never upload, connect to every peer they hear of.
    pub free_riders: usize,
    /// Poisoners: claim every piece, serve blocks with their first byte flipped.
    pub poisoners: usize,
    /// Every peer's upload limit, KiB/s.
    pub upload_kibps: u32,
    /// The second octet of every address: tracker 127.S.0.1, first seeder 127.S.1.1, the
    /// others 127.S.2.1 onwards.
    pub subnet: u8,
    /// Leechers leaving and coming back (`None`: everyone stays).
    pub churn: Option<SwarmChurn>,
}

impl Default for SwarmTestbed {
    /// A 2 MiB file in 32 KiB pieces, 1 seeder and 8 leechers uploading 1 MiB/s each, no
    /// adversaries, no churn, on 127.62.0.0/16.
    fn default() -> Self {
        SwarmTestbed {
            file_kib: 2048,
            piece_kib: 32,
            seeders: 1,
            leechers: 8,
            free_riders: 0,
            poisoners: 0,
            upload_kibps: 1024,
            subnet: 62,
            churn: None,
        }
    }
}

/// Churn of the leechers: each churning leecher alternates sessions and downtimes drawn from
/// two Weibulls (seconds), coming back with the pieces it held.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmChurn {
    /// The fraction of the honest leechers that churn (picked with the seed).
    #[serde(default = "all")]
    pub fraction: f64,
    /// Session lengths.
    pub session: WeibullParams,
    /// Downtimes.
    pub downtime: WeibullParams,
}

fn all() -> f64 {
    1.0
}

/// Most peers of one testbed swarm (250 addresses per /24, 200 /24s).
const MAX_PEERS: usize = 250 * 200;

impl SwarmTestbed {
    /// Refuses swarms that cannot run; the field named is under `testbed.swarm`.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            self.file_kib >= 1 && self.file_kib <= 1 << 20,
            "file_kib",
            "must be 1 to 1,048,576",
        )?;
        require(
            (16..=16384).contains(&self.piece_kib),
            "piece_kib",
            "must be 16 to 16,384",
        )?;
        require(self.seeders >= 1, "seeders", "at least one peer must hold the content")?;
        require(
            self.seeders + self.leechers + self.free_riders + self.poisoners <= MAX_PEERS,
            "leechers",
            format!("at most {MAX_PEERS} peers in all"),
        )?;
        require(self.upload_kibps >= 1, "upload_kibps", "must be at least 1")?;
        require(self.subnet != 0, "subnet", "127.0.x.y is left to other services")?;
        if let Some(c) = &self.churn {
            require((0.0..=1.0).contains(&c.fraction), "churn.fraction", "must be 0 to 1")?;
            require(
                c.session.is_usable(),
                "churn.session",
                "shape ≥ 0.1 and scale > 0 (seconds)",
            )?;
            require(
                c.downtime.is_usable(),
                "churn.downtime",
                "shape ≥ 0.1 and scale > 0 (seconds)",
            )?;
        }
        Ok(())
    }

    /// Starts the tracker and every peer; the churning leechers' sessions are drawn up to
    /// `horizon` with `seed`.
    pub async fn start(&self, seed: u64, horizon: Duration) -> Result<RunningSwarm, MeasureError> {
        let limit = Some(f64::from(self.upload_kibps) * 1024.0);
        let mut kinds = Vec::new();
        let mut peers = Vec::new();
        let mut add = |kind: Kind, n: usize, spec: PeerSpec| {
            for _ in 0..n {
                kinds.push(kind);
                peers.push(spec.clone());
            }
        };
        add(Kind::Seeder, self.seeders - 1, PeerSpec::seed(limit));
        add(Kind::Leecher, self.leechers, PeerSpec::leecher(limit));
        add(
            Kind::FreeRider,
            self.free_riders,
            PeerSpec {
                strategy: Strategy::BitThief,
                ..PeerSpec::leecher(limit)
            },
        );
        add(
            Kind::Poisoner,
            self.poisoners,
            PeerSpec {
                corrupt: true,
                ..PeerSpec::seed(limit)
            },
        );
        let mut spec = SwarmSpec::new(
            self.file_kib as usize * 1024,
            self.piece_kib * 1024,
            PeerSpec::seed(limit),
            peers,
            Duration::from_secs(2),
        );
        spec.subnet = self.subnet;
        spec.rng_seed = seed;
        let mut rng = SplitMix64::new(seed ^ 0xC4_0A2E);
        let schedules: Vec<Option<Vec<PlannedSession>>> = kinds
            .iter()
            .map(|kind| match &self.churn {
                Some(c) if *kind == Kind::Leecher && churn::churns(c.fraction, &mut rng) => Some(churn::schedule(
                    &c.session,
                    &c.downtime,
                    horizon.as_secs_f64(),
                    &mut rng,
                )),
                _ => None,
            })
            .collect();
        let swarm = Swarm::start(spec).await?;
        let now = SystemTime::now();
        Ok(RunningSwarm {
            params: self.clone(),
            truth: kinds
                .iter()
                .map(|_| vec![TrueSession { start: now, end: None }])
                .collect(),
            kinds,
            schedules,
            swarm,
        })
    }
}

/// What a testbed peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Seeder,
    Leecher,
    FreeRider,
    Poisoner,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Seeder => "seeder",
            Kind::Leecher => "leecher",
            Kind::FreeRider => "free rider",
            Kind::Poisoner => "poisoner",
        }
    }
}

/// One session a peer really had, in wall-clock time (the crawler's clock).
#[derive(Debug, Clone, Copy)]
struct TrueSession {
    start: SystemTime,
    end: Option<SystemTime>,
}

/// The running swarm, what each peer is, and the truth of its sessions.
#[derive(Debug)]
pub struct RunningSwarm {
    params: SwarmTestbed,
    swarm: Swarm,
    /// Per leecher (in the swarm's order): what it is, its planned sessions if it churns, and
    /// the sessions it really had.
    kinds: Vec<Kind>,
    schedules: Vec<Option<Vec<PlannedSession>>>,
    truth: Vec<Vec<TrueSession>>,
}

impl RunningSwarm {
    /// Writes the torrent into `folder` and names it (and so its tracker) as a target.
    pub fn add_targets(&self, folder: &Path, targets: &mut Targets) -> Result<(), MeasureError> {
        std::fs::create_dir_all(folder).map_err(|e| MeasureError::Testbed(format!("{}: {e}", folder.display())))?;
        let path = folder.join("payload.torrent");
        std::fs::write(&path, &self.swarm.torrent().bytes)
            .map_err(|e| MeasureError::Testbed(format!("{}: {e}", path.display())))?;
        targets.torrents.push(path);
        Ok(())
    }

    /// One line for the report's summary.
    pub fn describe(&self) -> String {
        let p = &self.params;
        let churn = match &p.churn {
            Some(c) => format!(
                ", {:.0} % of the leechers churning (sessions Weibull({}, {} s), downtimes Weibull({}, {} s))",
                c.fraction * 100.0,
                c.session.shape,
                c.session.scale,
                c.downtime.shape,
                c.downtime.scale
            ),
            None => String::new(),
        };
        format!(
            "a loopback BitTorrent swarm of our own peers ({} KiB in {} KiB pieces, {} seeders, {} leechers, {} \
             free riders, {} poisoners, {} KiB/s upload each{churn}) with its tracker",
            p.file_kib, p.piece_kib, p.seeders, p.leechers, p.free_riders, p.poisoners, p.upload_kibps
        )
    }

    /// Follows the churn schedule until `done` turns true: leechers leave and come back at
    /// their planned times (from now), and each real session is recorded.
    pub async fn churn(&mut self, mut done: watch::Receiver<bool>) {
        let mut events: Vec<(f64, usize, bool)> = Vec::new();
        for (i, plan) in self.schedules.iter().enumerate() {
            for (k, s) in plan.iter().flatten().enumerate() {
                if k > 0 {
                    events.push((s.start, i, true));
                }
                events.push((s.end, i, false));
            }
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let t0 = tokio::time::Instant::now();
        for (at, i, join) in events {
            let due = t0 + Duration::from_secs_f64(at);
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                _ = done.wait_for(|d| *d) => return,
            }
            if join {
                match self.swarm.rejoin(i).await {
                    Ok(()) => self.truth[i].push(TrueSession {
                        start: SystemTime::now(),
                        end: None,
                    }),
                    Err(e) => tracing::warn!(leecher = i, "a churning leecher could not come back: {e}"),
                }
            } else if self.swarm.is_online(i) {
                if let Some(s) = self.truth[i].last_mut() {
                    s.end = Some(SystemTime::now());
                }
                self.swarm.leave(i).await;
            }
        }
        let _ = done.wait_for(|d| *d).await;
    }

    /// Stops the swarm and scores the crawl (its rows and `summary`)
    /// against what ran.
    pub async fn score(self, summary: &Summary, crawl: &CrawlRows) -> Scored {
        let CrawlRows {
            visits,
            piece_checks,
            sessions,
            ..
        } = crawl;
        let crawl_end = SystemTime::now();
        let RunningSwarm {
            params,
            swarm,
            kinds,
            schedules,
            truth,
        } = self;
        let seed_addr = swarm.seed_addr();
        let peers: Vec<(SocketAddr, Kind)> = std::iter::once((seed_addr, Kind::Seeder))
            .chain(swarm.leechers().map(|(a, _)| a).zip(kinds.iter().copied()))
            .collect();
        let report = swarm.stop(false).await;
        let handshakes: BTreeSet<SocketAddr> = visits
            .iter()
            .filter(|v| v.probe == ProbeKind::PeerHandshake && v.outcome == ProbeOutcome::Ok)
            .filter_map(|v| v.addr)
            .collect();
        let mut checks: BTreeMap<SocketAddr, (usize, usize)> = BTreeMap::new();
        for c in piece_checks {
            let entry = checks.entry(c.addr).or_default();
            if c.ok {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        let found = peers.iter().filter(|(a, _)| handshakes.contains(a)).count();
        let planted = "the testbed's ground truth";
        let mut measurements = vec![measurement(
            "peers_found",
            "testbed peers the crawler completed a handshake with (fraction)",
            found as f64 / peers.len().max(1) as f64,
            "",
            Some((1.0, planted)),
        )];
        let honest: Vec<_> = report.leechers.iter().filter(|l| l.honest).collect();
        measurements.push(measurement(
            "honest_complete",
            "honest leechers holding the verified content at the end (fraction)",
            honest.iter().filter(|l| l.verified).count() as f64 / honest.len().max(1) as f64,
            "",
            None,
        ));
        if params.free_riders > 0 {
            let riders: Vec<_> = report
                .leechers
                .iter()
                .zip(&kinds)
                .filter(|(_, k)| **k == Kind::FreeRider)
                .map(|(l, _)| l)
                .collect();
            measurements.push(measurement(
                "free_riders_complete",
                "free riders holding the verified content at the end (fraction)",
                riders.iter().filter(|l| l.verified).count() as f64 / riders.len().max(1) as f64,
                "",
                Some((1.0, "Locher et al., HotNets 2006: BitThief downloads without uploading")),
            ));
            measurements.push(measurement(
                "free_rider_uploaded",
                "bytes the free riders uploaded",
                riders.iter().map(|l| l.node.stats.uploaded as f64).sum(),
                "B",
                Some((0.0, "BitThief never uploads")),
            ));
        }
        let bad_peers: BTreeSet<SocketAddr> = summary
            .poisoning
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|r| r.bad_peers.iter().map(|b| b.peer).collect())
            .unwrap_or_default();
        let poisoners: BTreeSet<SocketAddr> = peers
            .iter()
            .filter(|(_, k)| *k == Kind::Poisoner)
            .map(|(a, _)| *a)
            .collect();
        measurements.push(measurement(
            "bad_peers_flagged",
            "peers flagged for serving pieces that fail their hash",
            bad_peers.len() as f64,
            "",
            Some((poisoners.len() as f64, planted)),
        ));
        if !poisoners.is_empty() {
            let score = Score::of(&bad_peers, &poisoners);
            measurements.extend(precision_recall("bad_peer", "bad-piece flags", &score, planted));
        }
        let mut figures = Vec::new();
        let by_kind = |kind: Kind| Series {
            name: format!("{}s", kind.as_str()),
            style: SeriesStyle::Points,
            points: peers
                .iter()
                .enumerate()
                .filter(|(_, (_, k))| *k == kind)
                .filter_map(|(i, (a, _))| {
                    let (ok, bad) = checks.get(a).copied()?;
                    (ok + bad > 0).then(|| (i as f64, bad as f64 / (ok + bad) as f64))
                })
                .collect(),
        };
        if !checks.is_empty() {
            figures.push(Figure {
                id: "piece-checks".into(),
                title: "Sample pieces failing their SHA-1, per peer".into(),
                x_label: "peer (0 is the first seeder)".into(),
                y_label: "fraction of checked pieces that failed".into(),
                x_log: false,
                y_log: false,
                series: [Kind::Seeder, Kind::Leecher, Kind::FreeRider, Kind::Poisoner]
                    .into_iter()
                    .map(by_kind)
                    .filter(|s| !s.points.is_empty())
                    .collect(),
            });
        }
        if let Some(c) = &params.churn {
            let (m, f) = session_bias(c, &peers[1..], &schedules, &truth, sessions, crawl_end);
            measurements.extend(m);
            figures.push(f);
        }
        let mut rows = Vec::new();
        let leechers = report.leechers.iter().map(|l| (&l.node, l.verified));
        for ((addr, kind), (node, verified)) in peers.iter().zip(std::iter::once((&report.seed, true)).chain(leechers))
        {
            let (ok, bad) = checks.get(addr).copied().unwrap_or_default();
            let mib = |b: u64| format!("{:.2}", b as f64 / f64::from(1 << 20));
            rows.push(vec![
                node.name.clone(),
                addr.to_string(),
                kind.as_str().into(),
                mib(node.stats.uploaded),
                mib(node.stats.downloaded),
                if verified { "yes" } else { "no" }.into(),
                if handshakes.contains(addr) { "yes" } else { "no" }.into(),
                format!("{ok} / {bad}"),
            ]);
        }
        Scored {
            measurements,
            figures,
            tables: vec![Table {
                id: "swarm-peers".into(),
                title: "The testbed swarm's peers, and what the crawler saw of each".into(),
                columns: [
                    "peer",
                    "address",
                    "kind",
                    "uploaded MiB",
                    "downloaded MiB",
                    "complete",
                    "handshake",
                    "pieces ok / bad",
                ]
                .map(String::from)
                .to_vec(),
                rows,
            }],
        }
    }
}

/// Seconds from the Unix epoch to `t`.
fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// True session lengths of the churning leechers against what the crawl measured of them.
fn session_bias(
    churn: &SwarmChurn,
    leechers: &[(SocketAddr, Kind)],
    schedules: &[Option<Vec<PlannedSession>>],
    truth: &[Vec<TrueSession>],
    sessions: &[SessionRow],
    crawl_end: SystemTime,
) -> (Vec<crate::outcome::Measurement>, Figure) {
    let churning: BTreeSet<SocketAddr> = leechers
        .iter()
        .zip(schedules)
        .filter(|(_, s)| s.is_some())
        .map(|((a, _), _)| *a)
        .collect();
    // A true session counts once it ended within the crawl (the others are censored).
    let true_lengths: Vec<f64> = truth
        .iter()
        .zip(schedules)
        .filter(|(_, s)| s.is_some())
        .flat_map(|(t, _)| t.iter())
        .filter_map(|s| {
            s.end
                .filter(|e| *e <= crawl_end)
                .map(|e| unix_secs(e) - unix_secs(s.start))
        })
        .collect();
    super::sessions::session_bias(&churn.session, "leechers", &churning, &true_lengths, sessions)
}
