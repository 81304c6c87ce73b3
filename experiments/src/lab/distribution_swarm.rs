//! Experiment 1 on loopback: client–server vs P2P distribution of one file to N peers with
//! our own BitTorrent peers ([`crate::swarm`]), the rates enforced by token buckets, against
//! the lecture's lower bounds (Kurose and Ross):
//!
//! - d_cs = max{NF/u_s, F/d_min}: the seed alone uploads (the leechers have no unchoke slots);
//! - d_P2P = max{F/u_s, F/d_min, NF/(u_s + Σu_i)}: every leecher uploads at u_i as well.
//!
//! For each N a fresh swarm (tracker, seed, N leechers on their own 127.S.x.y) runs once
//! client–server and once P2P; the distribution time is the last leecher's completion, from
//! the moment they all start, and every download is compared with the original bytes. The
//! measured times can approach the bounds but not beat them; how close they come (TCP,
//! handshakes, pipelines, store-and-forward of whole pieces, choking) is the measurement.
//! The seed of the campaign seeds the content and the clients' random choices; the times
//! themselves depend on the machine, so this experiment is not bit-reproducible.

use std::time::Duration;

use serde::Deserialize;

use crate::campaign::Progress;
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};
use crate::sim::{ParamsError, measurement, positive, require};
use crate::swarm::node::PACING_TOLERANCE;
use crate::swarm::runner::{PeerSpec, SwarmError, SwarmReport, SwarmSpec, run_swarm};

/// The setup; sizes in KiB, rates in KiB/s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// File size F.
    pub file_kib: u32,
    /// Piece size (a multiple of 16 KiB keeps blocks whole).
    pub piece_kib: u32,
    /// Server (seed) upload rate u_s.
    pub server_upload_kibps: f64,
    /// Every leecher's upload rate u_i.
    pub peer_upload_kibps: f64,
    /// Every leecher's download rate (d_min); unlimited when absent.
    pub peer_download_kibps: Option<f64>,
    /// The numbers of leechers N.
    pub peer_counts: Vec<usize>,
    /// Block requests in flight per peer. On loopback a short queue is best: a block takes
    /// 10–40 ms at these rates, and a piece asked for long before it can arrive was chosen
    /// on stale availability (the client's default, 16, suits real networks' round trips).
    pub pipeline: usize,
    /// The choker's regular period (the optimistic one is three times it).
    #[serde(deserialize_with = "super::duration")]
    pub choke_interval: Duration,
    /// The second octet of every address (127.S.x.y).
    pub subnet: u8,
    /// A run may take this many times its bound, plus 10 s, before it is called unfinished.
    pub deadline_factor: f64,
}

impl Default for Params {
    /// 4 MiB in 16 KiB pieces, u_s = 4 MiB/s, u_i = 2 MiB/s, no download limit, N = 1, 2,
    /// 4, 8, 16, 2 requests in flight, 1 s choking rounds, subnet 61, deadline 4 × the
    /// bound + 10 s. F/u_s is 1 s: the whole campaign takes about 45 s.
    fn default() -> Self {
        Params {
            file_kib: 4096,
            piece_kib: 16,
            server_upload_kibps: 4096.0,
            peer_upload_kibps: 2048.0,
            peer_download_kibps: None,
            peer_counts: vec![1, 2, 4, 8, 16],
            pipeline: 2,
            choke_interval: Duration::from_secs(1),
            subnet: 61,
            deadline_factor: 4.0,
        }
    }
}

/// Most leechers in one swarm.
const MAX_PEERS: usize = 200;

impl Params {
    /// Refuses parameters the swarm cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            (1..=64 * 1024).contains(&self.file_kib),
            "file_kib",
            "must be in 1..=65536",
        )?;
        require(
            (1..=16 * 1024).contains(&self.piece_kib),
            "piece_kib",
            "must be in 1..=16384",
        )?;
        for (ok, field) in [
            (positive(self.server_upload_kibps), "server_upload_kibps"),
            (positive(self.peer_upload_kibps), "peer_upload_kibps"),
            (self.peer_download_kibps.is_none_or(positive), "peer_download_kibps"),
            (positive(self.deadline_factor), "deadline_factor"),
        ] {
            require(ok, field, "must be finite and > 0")?;
        }
        require(!self.peer_counts.is_empty(), "peer_counts", "must name at least one N")?;
        require(
            self.peer_counts.iter().all(|n| (1..=MAX_PEERS).contains(n)),
            "peer_counts",
            format!("each N must be in 1..={MAX_PEERS}"),
        )?;
        require((1..=256).contains(&self.pipeline), "pipeline", "must be in 1..=256")?;
        require(!self.choke_interval.is_zero(), "choke_interval", "must be positive")?;
        require(self.subnet != 0, "subnet", "127.0.x.y is left to other services")
    }

    /// The two bounds for N leechers, seconds.
    fn bounds(&self, n: usize) -> (f64, f64) {
        let f = f64::from(self.file_kib);
        let n = n as f64;
        let us = self.server_upload_kibps;
        let per_peer = self.peer_download_kibps.map_or(0.0, |d| f / d);
        let cs = (n * f / us).max(per_peer);
        let p2p = (f / us).max(per_peer).max(n * f / (us + n * self.peer_upload_kibps));
        (cs, p2p)
    }
}

const FORMULA: &str = "lower bound, Kurose & Ross (lecture): d_cs = max{NF/u_s, F/d_min}, \
                       d_P2P = max{F/u_s, F/d_min, NF/(u_s + Σu_i)}";

/// One N: (client–server time, its bound, P2P time, its bound, the seed's share of the P2P
/// upload); `None` times for a run that did not finish.
struct Row {
    n: usize,
    cs: Option<f64>,
    cs_bound: f64,
    p2p: Option<f64>,
    p2p_bound: f64,
    seed_share: f64,
    unverified: usize,
}

/// Runs both distributions for every N (call [`Params::validate`] first).
pub async fn run(params: &Params, seed: u64, progress: &Progress) -> Result<Outcome, SwarmError> {
    let kib = |x: f64| x * 1024.0;
    let mut rows = Vec::new();
    progress.counted(
        "swarms (client-server, then P2P, for each N)",
        2 * params.peer_counts.len() as u64,
    );
    for &n in &params.peer_counts {
        let (cs_bound, p2p_bound) = params.bounds(n);
        let once = |uploads: bool, bound: f64| {
            let leecher = PeerSpec {
                download_limit: params.peer_download_kibps.map(kib),
                uploads,
                ..PeerSpec::leecher(Some(kib(params.peer_upload_kibps)))
            };
            let mut spec = SwarmSpec::new(
                params.file_kib as usize * 1024,
                params.piece_kib * 1024,
                PeerSpec::seed(Some(kib(params.server_upload_kibps))),
                vec![leecher; n],
                params.choke_interval,
            );
            spec.subnet = params.subnet;
            spec.client.pipeline = params.pipeline;
            spec.rng_seed = seed.wrapping_mul(1000).wrapping_add(n as u64);
            spec.deadline = Duration::from_secs_f64(params.deadline_factor * bound + 10.0);
            async move { run_swarm(&spec).await }
        };
        let cs = once(false, cs_bound).await?;
        progress.step();
        let p2p = once(true, p2p_bound).await?;
        progress.step();
        let time = |r: &SwarmReport| r.distribution_time().map(|t| t.as_secs_f64());
        let leech_up: u64 = p2p.leechers.iter().map(|l| l.node.stats.uploaded).sum();
        let unverified = [&cs, &p2p]
            .iter()
            .flat_map(|r| &r.leechers)
            .filter(|l| !l.verified)
            .count();
        tracing::info!(
            n,
            cs = ?time(&cs),
            cs_bound,
            p2p = ?time(&p2p),
            p2p_bound,
            "distribution over loopback"
        );
        rows.push(Row {
            n,
            cs: time(&cs),
            cs_bound,
            p2p: time(&p2p),
            p2p_bound,
            seed_share: p2p.seed.stats.uploaded as f64 / (p2p.seed.stats.uploaded + leech_up).max(1) as f64,
            unverified,
        });
    }
    Ok(outcome(params, seed, &rows))
}

fn outcome(params: &Params, seed: u64, rows: &[Row]) -> Outcome {
    // An unfinished run counts as infinitely far from its bound: its checks fail.
    let deviation = |t: Option<f64>, bound: f64| t.map_or(f64::MAX, |t| 100.0 * (t - bound).abs() / bound);
    let worst = |pick: fn(&Row) -> (Option<f64>, f64)| {
        rows.iter()
            .map(|r| {
                let (t, b) = pick(r);
                deviation(t, b)
            })
            .fold(0.0, f64::max)
    };
    let mut measurements = Vec::new();
    for r in rows {
        let n = r.n;
        measurements.extend([
            measurement(
                format!("cs_time_n{n}"),
                format!("client–server distribution time, N = {n}"),
                r.cs.unwrap_or(f64::MAX),
                "s",
                Some((r.cs_bound, FORMULA)),
            ),
            measurement(
                format!("p2p_time_n{n}"),
                format!("P2P distribution time, N = {n}"),
                r.p2p.unwrap_or(f64::MAX),
                "s",
                Some((r.p2p_bound, FORMULA)),
            ),
            measurement(
                format!("cs_over_p2p_n{n}"),
                format!("client–server time over P2P time, N = {n}"),
                match (r.cs, r.p2p) {
                    (Some(c), Some(p)) if p > 0.0 => c / p,
                    _ => 0.0,
                },
                "",
                Some((r.cs_bound / r.p2p_bound, FORMULA)),
            ),
        ]);
    }
    let unverified: usize = rows.iter().map(|r| r.unverified).sum();
    // The buckets may run PACING_TOLERANCE ahead of their rate; nothing else can beat a bound.
    let slack = PACING_TOLERANCE.as_secs_f64();
    let below = rows
        .iter()
        .filter(|r| r.cs.is_some_and(|t| t < r.cs_bound - slack) || r.p2p.is_some_and(|t| t < r.p2p_bound - slack))
        .count();
    measurements.extend([
        measurement(
            "cs_max_deviation",
            "largest distance of the client–server time from d_cs, over N",
            worst(|r| (r.cs, r.cs_bound)),
            "%",
            None,
        ),
        measurement(
            "p2p_max_deviation",
            "largest distance of the P2P time from d_P2P, over N",
            worst(|r| (r.p2p, r.p2p_bound)),
            "%",
            None,
        ),
        measurement(
            "runs_below_bound",
            "runs faster than their lower bound (less the buckets' 2 ms tolerance)",
            below as f64,
            "",
            Some((0.0, FORMULA)),
        ),
        measurement(
            "unverified_downloads",
            "leechers that did not end with the original bytes",
            unverified as f64,
            "",
            Some((0.0, "every download is checked against the original")),
        ),
    ]);
    if let Some(last) = rows.last() {
        measurements.push(measurement(
            format!("p2p_seed_share_n{}", last.n),
            format!("the seed's part of all bytes uploaded, P2P, N = {}", last.n),
            last.seed_share,
            "",
            None,
        ));
    }
    let series = |name: &str, style, pick: fn(&Row) -> Option<f64>| Series {
        name: name.to_string(),
        style,
        points: rows.iter().filter_map(|r| pick(r).map(|y| (r.n as f64, y))).collect(),
    };
    let figure = Figure {
        id: "distribution-swarm".to_string(),
        title: "Time to distribute one file to N peers over loopback".to_string(),
        x_label: "N (leechers)".to_string(),
        y_label: "distribution time (s)".to_string(),
        x_log: false,
        y_log: false,
        series: vec![
            series("client–server, measured", SeriesStyle::Line, |r| r.cs),
            series("client–server, d_cs bound", SeriesStyle::Reference, |r| {
                Some(r.cs_bound)
            }),
            series("P2P, measured", SeriesStyle::Line, |r| r.p2p),
            series("P2P, d_P2P bound", SeriesStyle::Reference, |r| Some(r.p2p_bound)),
        ],
    };
    let cell = |t: Option<f64>| t.map_or("unfinished".to_string(), |t| format!("{t:.2}"));
    let table = Table {
        id: "distribution-swarm-times".to_string(),
        title: "Distribution times (s)".to_string(),
        columns: [
            "N",
            "client–server",
            "d_cs",
            "P2P",
            "d_P2P",
            "seed's part of P2P uploads",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.n.to_string(),
                    cell(r.cs),
                    format!("{:.2}", r.cs_bound),
                    cell(r.p2p),
                    format!("{:.2}", r.p2p_bound),
                    format!("{:.0} %", 100.0 * r.seed_share),
                ]
            })
            .collect(),
    };
    let download = params
        .peer_download_kibps
        .map_or("unlimited".to_string(), |d| format!("{d} KiB/s"));
    Outcome {
        experiment: "distribution-swarm".to_string(),
        title: "Client–server vs P2P file distribution time, on loopback".to_string(),
        summary: format!(
            "A {} KiB file in {} KiB pieces goes from one seed uploading {} KiB/s to N leechers (upload {} \
             KiB/s, download {download}), each peer our own BitTorrent client on its own loopback address \
             with token-bucket rate limits, found through an in-process HTTP tracker; once with only the \
             seed uploading (client–server) and once with every leecher trading (P2P: rarest first, the \
             standard choker with {:?} rounds, {} requests in flight per peer), seed {seed}. The measured times are compared with the \
             lower bounds d_cs and d_P2P.",
            params.file_kib,
            params.piece_kib,
            params.server_upload_kibps,
            params.peer_upload_kibps,
            params.choke_interval,
            params.pipeline,
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
    fn the_bounds_are_the_lecture_formulas() {
        let p = Params {
            file_kib: 1024,
            server_upload_kibps: 1024.0,
            peer_upload_kibps: 512.0,
            ..Params::default()
        };
        assert_eq!(p.bounds(1), (1.0, 1.0));
        let (cs, p2p) = p.bounds(16);
        assert_eq!(cs, 16.0);
        assert!((p2p - 16.0 / 9.0).abs() < 1e-12);
        let slow = Params {
            peer_download_kibps: Some(256.0),
            ..p
        };
        assert_eq!(slow.bounds(1), (4.0, 4.0));
    }

    #[test]
    fn bad_parameters_are_refused() {
        Params::default().validate().expect("defaults are valid");
        for bad in [
            Params {
                peer_counts: vec![0],
                ..Params::default()
            },
            Params {
                server_upload_kibps: 0.0,
                ..Params::default()
            },
            Params {
                peer_download_kibps: Some(f64::NAN),
                ..Params::default()
            },
            Params {
                subnet: 0,
                ..Params::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let err = serde_saphyr::from_str::<Params>("file_kib: 10\nbogus: 1\n").expect_err("unknown field");
        assert!(err.to_string().contains("bogus"), "{err}");
        let p: Params = serde_saphyr::from_str("choke_interval: 2s\npeer_counts: [1, 3]\n").unwrap();
        assert_eq!((p.choke_interval, p.peer_counts), (Duration::from_secs(2), vec![1, 3]));
    }
}
