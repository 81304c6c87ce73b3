//! Experiment 3 on loopback: does tit-for-tat reward uploading, and what do the clients that
//! game it gain, with our own BitTorrent peers ([`crate::swarm`]) in real swarms.
//!
//! The swarm: one seed and leechers in capacity classes (by default 4 peers each at 256, 512
//! and 1024 KiB/s upload, download unlimited), each on its own 127.S.x.y with token-bucket
//! limits, each holding a random quarter of the pieces at the start (the swarm is past its
//! flash crowd: the leechers' trading, not the seed, limits them), each leaving the moment it
//! completes (no finished peer seeds, so a leecher gets what the others trade with it). The
//! first leecher of the middle class runs BitTyrant, and one more peer is a BitThief-like free
//! rider (no upload, connects to every peer it hears of). The swarm runs twice per
//! repetition, on the same content and seeds:
//!
//! - with the **standard** choker everywhere else. Tit-for-tat rewards capacity when the fast
//!   class completes sooner than the slow one (Legout et al., "Clustering and sharing
//!   incentives in BitTorrent systems", SIGMETRICS 2007: peers cluster with peers of similar
//!   upload, and faster uploaders download faster); BitTyrant's speed-up is its class
//!   mates' mean completion time over its own (Piatek et al., NSDI 2007: median 1.7 for the
//!   strategic client); the free rider completes (Locher et al., HotNets 2006), from the seed
//!   and optimistic unchokes;
//! - with **PropShare** everywhere else (Levin et al., SIGCOMM 2008: upload in proportion to
//!   what each peer gave, which leaves BitTyrant about no gain).
//!
//! The ratios are medians over `runs` repetitions with different random seeds. Every download
//! is checked against the original bytes. The times depend on the machine, so this experiment
//! is not bit-reproducible.

use std::time::Duration;

use serde::Deserialize;

use crate::campaign::Progress;
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};
use crate::sim::{self, ParamsError, measurement, positive, require};
use crate::swarm::choker::Strategy;
use crate::swarm::runner::{LeecherReport, PeerSpec, SwarmError, SwarmReport, SwarmSpec, run_swarm};

/// The setup; sizes in KiB, rates in KiB/s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// File size.
    pub file_kib: u32,
    /// Piece size (a multiple of 16 KiB keeps blocks whole).
    pub piece_kib: u32,
    /// The seed's upload rate.
    pub seed_upload_kibps: f64,
    /// The upload rate of each capacity class, slowest first.
    pub classes_kibps: Vec<f64>,
    /// Leechers per class.
    pub peers_per_class: usize,
    /// The part of the pieces each leecher holds at the start (random ones, different for
    /// each): the swarm is past its flash crowd, the content is spread among the leechers,
    /// and their trading, not the seed, is what limits them.
    pub initial_share: f64,
    /// Repetitions of both swarms (the ratios are medians over them).
    pub runs: usize,
    /// Block requests in flight per peer.
    pub pipeline: usize,
    /// The choker's regular period (the optimistic one is three times it).
    #[serde(deserialize_with = "super::duration")]
    pub choke_interval: Duration,
    /// The second octet of every address (127.S.x.y).
    pub subnet: u8,
    /// How long one swarm may take before it is called unfinished.
    #[serde(deserialize_with = "super::duration")]
    pub deadline: Duration,
}

impl Default for Params {
    /// 16 MiB in 32 KiB pieces, a seed at 256 KiB/s, 4 leechers in each of the classes 256,
    /// 512 and 1024 KiB/s holding a quarter of the pieces each, 2 runs, 4 requests in
    /// flight, 0.5 s choking rounds (a download lasts 30 to 70 of them: clusters of peers
    /// of one class take tens of rounds to form), subnet 64, a 120 s deadline. One swarm
    /// takes about 40 s.
    fn default() -> Self {
        Params {
            file_kib: 16384,
            piece_kib: 32,
            seed_upload_kibps: 256.0,
            classes_kibps: vec![256.0, 512.0, 1024.0],
            peers_per_class: 4,
            initial_share: 0.25,
            runs: 2,
            pipeline: 4,
            choke_interval: Duration::from_millis(500),
            subnet: 64,
            deadline: Duration::from_secs(120),
        }
    }
}

/// Most leechers in one swarm.
const MAX_PEERS: usize = 200;

impl Params {
    /// Refuses parameters the swarms cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            (1..=64 * 1024).contains(&self.file_kib),
            "file_kib",
            "must be in 1..=65536",
        )?;
        require(
            (16..=16 * 1024).contains(&self.piece_kib),
            "piece_kib",
            "must be in 16..=16384",
        )?;
        require(
            positive(self.seed_upload_kibps),
            "seed_upload_kibps",
            "must be finite and > 0",
        )?;
        require(
            self.classes_kibps.len() >= 2 && self.classes_kibps.iter().all(|&c| positive(c)),
            "classes_kibps",
            "at least two classes, each finite and > 0",
        )?;
        require(
            self.classes_kibps.windows(2).all(|w| w[0] < w[1]),
            "classes_kibps",
            "slowest first, each faster than the one before",
        )?;
        require(
            self.peers_per_class >= 1 && self.peers_per_class * self.classes_kibps.len() < MAX_PEERS,
            "peers_per_class",
            format!("at least 1, and fewer than {MAX_PEERS} leechers in all"),
        )?;
        require(
            (0.0..1.0).contains(&self.initial_share),
            "initial_share",
            "must be at least 0 and below 1",
        )?;
        require((1..=20).contains(&self.runs), "runs", "must be in 1..=20")?;
        require((1..=256).contains(&self.pipeline), "pipeline", "must be in 1..=256")?;
        require(!self.choke_interval.is_zero(), "choke_interval", "must be positive")?;
        require(!self.deadline.is_zero(), "deadline", "must be positive")?;
        require(self.subnet != 0, "subnet", "127.0.x.y is left to other services")
    }

    /// The leecher that changes strategy: the first of the middle class.
    fn observed(&self) -> usize {
        self.classes_kibps.len() / 2 * self.peers_per_class
    }
}

/// The two swarms of each repetition: what every leecher but the BitTyrant and the free rider
/// runs.
const SWARMS: [Strategy; 2] = [Strategy::Standard, Strategy::PropShare];

/// The leechers: the capacity classes running `everyone`, the observed one BitTyrant, and the
/// free rider last.
fn leechers(params: &Params, everyone: Strategy) -> Vec<PeerSpec> {
    let mut peers: Vec<PeerSpec> = params
        .classes_kibps
        .iter()
        .flat_map(|&c| std::iter::repeat_n(c, params.peers_per_class))
        .map(|c| PeerSpec {
            strategy: everyone,
            holds: params.initial_share,
            ..PeerSpec::leecher(Some(c * 1024.0))
        })
        .collect();
    peers[params.observed()].strategy = Strategy::BitTyrant;
    peers.push(PeerSpec {
        strategy: Strategy::BitThief,
        holds: params.initial_share,
        ..PeerSpec::leecher(None)
    });
    peers
}

/// A leecher's completion time in seconds, if it completed with the original bytes.
fn completion(r: &SwarmReport, i: usize) -> Option<f64> {
    r.leechers
        .get(i)
        .and_then(LeecherReport::verified_completion)
        .map(|t| t.as_secs_f64())
}

/// The mean, if there is anything to average.
fn mean_of(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| sim::mean(xs))
}

/// Runs both swarms `runs` times (call [`Params::validate`] first); per repetition, the
/// standard swarm's report then PropShare's.
pub async fn run(params: &Params, seed: u64, progress: &Progress) -> Result<Outcome, SwarmError> {
    let kib = |x: f64| x * 1024.0;
    progress.counted(
        "swarms (standard, then PropShare, per run)",
        (params.runs * SWARMS.len()) as u64,
    );
    let mut repetitions = Vec::new();
    for run in 0..params.runs {
        let mut reports = Vec::new();
        for everyone in SWARMS {
            let mut spec = SwarmSpec::new(
                params.file_kib as usize * 1024,
                params.piece_kib * 1024,
                PeerSpec::seed(Some(kib(params.seed_upload_kibps))),
                leechers(params, everyone),
                params.choke_interval,
            );
            spec.subnet = params.subnet;
            spec.client.pipeline = params.pipeline;
            // Both swarms of one repetition share the content, the holdings and the seeds.
            spec.rng_seed = seed.wrapping_mul(1000).wrapping_add(run as u64);
            spec.deadline = params.deadline;
            spec.leave_when_complete = true;
            let report = run_swarm(&spec).await?;
            tracing::info!(
                run,
                swarm = everyone.as_str(),
                finished = report.finished,
                time = ?report.distribution_time(),
                "choking swarm over loopback"
            );
            reports.push(report);
            progress.step();
        }
        repetitions.push(reports);
    }
    Ok(outcome(params, seed, &repetitions))
}

const LEGOUT: &str = "Legout et al., SIGMETRICS 2007: tit-for-tat rewards upload capacity";
const LOCHER: &str = "Locher et al., HotNets 2006: BitThief completes";
const PIATEK: &str = "Piatek et al., NSDI 2007: median speed-up 1.7";
const LEVIN: &str = "Levin et al., SIGCOMM 2008: PropShare leaves BitTyrant no gain";

/// One swarm's figures.
struct SwarmFigures {
    /// Per class, the mean completion time of its standard (or PropShare) leechers.
    class_means: Vec<Option<f64>>,
    /// Slowest class's mean over the fastest's.
    reward: Option<f64>,
    /// BitTyrant's class mates' mean over its own time.
    tyrant_speedup: Option<f64>,
    /// The free rider's time, and over the compliant leechers' mean.
    free_rider: Option<f64>,
    free_rider_slowdown: Option<f64>,
}

fn figures(params: &Params, r: &SwarmReport) -> SwarmFigures {
    let per_class = params.peers_per_class;
    let classes = params.classes_kibps.len();
    let observed = params.observed();
    let free_rider = per_class * classes;
    let times = |range: std::ops::Range<usize>| -> Vec<f64> {
        range
            .filter(|&i| i != observed)
            .filter_map(|i| completion(r, i))
            .collect()
    };
    let class_means: Vec<Option<f64>> = (0..classes)
        .map(|c| mean_of(&times(c * per_class..(c + 1) * per_class)))
        .collect();
    let reward = match (class_means[0], class_means[classes - 1]) {
        (Some(slow), Some(fast)) if fast > 0.0 => Some(slow / fast),
        _ => None,
    };
    let middle = observed / per_class;
    let tyrant_speedup = completion(r, observed).and_then(|t| Some(class_means[middle]? / t));
    let free_rider_time = completion(r, free_rider);
    let compliant = mean_of(&times(0..free_rider));
    SwarmFigures {
        class_means,
        reward,
        tyrant_speedup,
        free_rider: free_rider_time,
        free_rider_slowdown: free_rider_time.and_then(|t| Some(t / compliant?)),
    }
}

fn outcome(params: &Params, seed: u64, reps: &[Vec<SwarmReport>]) -> Outcome {
    let classes = params.classes_kibps.len();
    // Per repetition, the figures of each swarm, in SWARMS' order.
    let figs: Vec<Vec<SwarmFigures>> = reps
        .iter()
        .map(|r| r.iter().map(|s| figures(params, s)).collect())
        .collect();
    let median = |swarm: usize, pick: fn(&SwarmFigures) -> Option<f64>| {
        let xs: Vec<f64> = figs.iter().filter_map(|f| pick(&f[swarm])).collect();
        (!xs.is_empty()).then(|| sim::median(&xs))
    };
    let completed = |swarm: usize| figs.iter().filter(|f| f[swarm].free_rider.is_some()).count() as f64;
    let unverified: usize = reps
        .iter()
        .flatten()
        .flat_map(|s| &s.leechers)
        .filter(|l| l.honest && !l.verified)
        .count();
    let unfinished = reps.iter().flatten().filter(|s| !s.finished).count();
    // A missing ratio (a run that did not finish) is 0, a missing slowdown infinite: their
    // checks fail.
    let or_zero = |x: Option<f64>| x.unwrap_or(0.0);
    let (fastest, slowest) = (params.classes_kibps[classes - 1], params.classes_kibps[0]);
    let mut measurements = Vec::new();
    for (k, name) in [(0, "standard"), (1, "propshare")] {
        let clients = if k == 0 {
            "standard clients"
        } else {
            "PropShare clients"
        };
        measurements.extend([
            measurement(
                format!("tft_reward_{name}"),
                format!(
                    "{slowest} KiB/s class's mean completion time over the {fastest} KiB/s class's, among \
                     {clients}, median over runs"
                ),
                or_zero(median(k, |f| f.reward)),
                "",
                (k == 0).then_some((1.0, LEGOUT)),
            ),
            measurement(
                format!("tyrant_speedup_{name}"),
                format!(
                    "BitTyrant's class mates' mean completion time over its own, among {clients}, median over runs"
                ),
                or_zero(median(k, |f| f.tyrant_speedup)),
                "",
                Some(if k == 0 { (1.7, PIATEK) } else { (1.0, LEVIN) }),
            ),
            measurement(
                format!("freerider_completion_{name}"),
                format!("runs in which the free rider completed, among {clients}"),
                completed(k),
                "",
                Some((reps.len() as f64, LOCHER)),
            ),
            measurement(
                format!("freerider_slowdown_{name}"),
                format!("the free rider's completion time over the compliant leechers' mean, among {clients}"),
                median(k, |f| f.free_rider_slowdown).unwrap_or(f64::MAX),
                "",
                None,
            ),
        ]);
    }
    measurements.extend([
        measurement(
            "unverified_downloads",
            "honest leechers that did not end with the original bytes",
            unverified as f64,
            "",
            Some((0.0, "every download is checked against the original")),
        ),
        measurement(
            "unfinished_swarms",
            "swarms whose leechers did not all complete before the deadline",
            unfinished as f64,
            "",
            None,
        ),
    ]);
    let class_series = |k: usize, name: &str| Series {
        name: name.to_string(),
        style: SeriesStyle::Line,
        points: (0..classes)
            .filter_map(|c| {
                let xs: Vec<f64> = figs.iter().filter_map(|f| f[k].class_means[c]).collect();
                mean_of(&xs).map(|m| (params.classes_kibps[c], m))
            })
            .collect(),
    };
    let figure = Figure {
        id: "choking-swarm-classes".to_string(),
        title: "Completion time by upload capacity, tit-for-tat vs PropShare, on loopback".to_string(),
        x_label: "upload capacity (KiB/s)".to_string(),
        y_label: "mean completion time (s)".to_string(),
        x_log: false,
        y_log: false,
        series: vec![class_series(0, "standard choker"), class_series(1, "PropShare")],
    };
    let cell = |t: Option<f64>| t.map_or("unfinished".to_string(), |t| format!("{t:.2}"));
    let mut rows = Vec::new();
    for (run, (f, r)) in figs.iter().zip(reps).enumerate() {
        for ((everyone, f), report) in SWARMS.iter().zip(f).zip(r) {
            let mut row = vec![(run + 1).to_string(), everyone.as_str().to_string()];
            row.extend(f.class_means.iter().map(|m| cell(*m)));
            row.push(cell(completion(report, params.observed())));
            row.push(cell(f.free_rider));
            rows.push(row);
        }
    }
    let mut columns = vec!["run".to_string(), "everyone else".to_string()];
    columns.extend(params.classes_kibps.iter().map(|c| format!("{c} KiB/s class (s)")));
    columns.push("BitTyrant (s)".to_string());
    columns.push("free rider (s)".to_string());
    let table = Table {
        id: "choking-swarm-runs".to_string(),
        title: "Mean completion time per class, BitTyrant's and the free rider's, every swarm".to_string(),
        columns,
        rows,
    };
    Outcome {
        experiment: "choking-swarm".to_string(),
        title: "Tit-for-tat, free riding, BitTyrant and PropShare, on loopback".to_string(),
        summary: format!(
            "A {} KiB file in {} KiB pieces, one seed uploading {} KiB/s, {} leechers per class of upload \
             capacity ({:?} KiB/s, download unlimited) each holding a random {:.0} % of the pieces at the \
             start and leaving when complete, leecher {} (of the middle class) running BitTyrant, and one \
             BitThief-like free rider; each peer our own BitTorrent client on its own loopback address with \
             token-bucket limits, {:?} choking rounds and {} requests in flight. Each of {} runs has two \
             swarms on the same content and seeds: everyone else standard, then PropShare. Seed {seed}.",
            params.file_kib,
            params.piece_kib,
            params.seed_upload_kibps,
            params.peers_per_class,
            params.classes_kibps,
            100.0 * params.initial_share,
            params.observed() + 1,
            params.choke_interval,
            params.pipeline,
            params.runs,
        ),
        measurements,
        figures: vec![figure],
        tables: vec![table],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swarms_differ_only_in_the_majority_strategy() {
        let p = Params::default();
        let standard = leechers(&p, Strategy::Standard);
        assert_eq!(standard.len(), 13);
        assert_eq!(p.observed(), 4);
        assert_eq!(standard[0].upload_limit, Some(256.0 * 1024.0));
        assert_eq!(standard[4].upload_limit, Some(512.0 * 1024.0));
        assert_eq!(standard[11].upload_limit, Some(1024.0 * 1024.0));
        assert_eq!(standard[4].strategy, Strategy::BitTyrant);
        assert_eq!(standard[12].strategy, Strategy::BitThief);
        assert!(standard.iter().all(|l| l.holds == p.initial_share));
        let others = |l: &[PeerSpec]| {
            l[..12]
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 4)
                .map(|(_, l)| l.strategy)
                .collect::<Vec<_>>()
        };
        assert!(others(&standard).iter().all(|s| *s == Strategy::Standard));
        let prop = leechers(&p, Strategy::PropShare);
        assert!(others(&prop).iter().all(|s| *s == Strategy::PropShare));
        assert_eq!(
            (prop[4].strategy, prop[12].strategy),
            (Strategy::BitTyrant, Strategy::BitThief)
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        Params::default().validate().expect("defaults are valid");
        for bad in [
            Params {
                classes_kibps: vec![512.0],
                ..Params::default()
            },
            Params {
                classes_kibps: vec![512.0, 256.0],
                ..Params::default()
            },
            Params {
                peers_per_class: 0,
                ..Params::default()
            },
            Params {
                initial_share: 1.0,
                ..Params::default()
            },
            Params {
                runs: 0,
                ..Params::default()
            },
            Params {
                seed_upload_kibps: f64::NAN,
                ..Params::default()
            },
            Params {
                subnet: 0,
                ..Params::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let err = serde_saphyr::from_str::<Params>("runs: 1\nbogus: 1\n").expect_err("unknown field");
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
