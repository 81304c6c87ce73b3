//! Client–server vs P2P distribution of one file to N peers, simulated in discrete time and
//! compared with the lower bounds of the lecture (Kurose and Ross):
//!
//! - d_cs = max{NF/u_s, F/d_min}: the server sends N copies; the slowest client downloads one.
//! - d_P2P = max{F/u_s, F/d_min, NF/(u_s + Σu_i)}: the server sends at least one copy, and the
//!   N copies leave the server and the peers at their aggregate upload rate.
//!
//! The file is cut into chunks; time runs in slots of one chunk at the mean peer upload rate.
//! Every node earns upload (and every peer download) credit at its rate each slot and spends it
//! a chunk at a time. In the client–server run only the server uploads, water-filling the
//! clients. In the swarm the server and every peer upload what they held at the start of the
//! slot (store and forward) to a peer that lacks it, rarest chunk first. Credits only ever sum
//! to rate × time, so a simulated time can never beat its bound; how close it comes is the
//! measurement. Peer rates are drawn from the seed; N peers are the first N of the draw.
//! Never: a model of TCP, latency or tit-for-tat (see [`super::piece_selection`]).

use serde::Deserialize;

use super::{ParamsError, measurement, positive, require, shuffle, stream, unit};
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};

/// The setup; rates in Mbit/s, the file in Mbit, times reported in hours.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// File size F, Mbit (3600: one hour at the mean peer upload rate, as in the lecture).
    pub file_mbit: f64,
    /// Chunks the file is cut into (the time resolution: one slot is one chunk at u).
    pub chunks: usize,
    /// Server upload rate u_s (10 u in the lecture's example).
    pub server_upload_mbps: f64,
    /// Mean peer upload rate u.
    pub peer_upload_mbps: f64,
    /// Mean peer download rate (the lecture takes d_min ≥ u_s).
    pub peer_download_mbps: f64,
    /// Each peer's rates are drawn uniformly within ±spread × the mean, 0 ≤ spread < 1.
    pub rate_spread: f64,
    /// The numbers of peers N to run, each ≥ 1.
    pub peer_counts: Vec<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            file_mbit: 3600.0,
            chunks: 100,
            server_upload_mbps: 10.0,
            peer_upload_mbps: 1.0,
            peer_download_mbps: 20.0,
            rate_spread: 0.5,
            peer_counts: std::iter::once(1).chain((5..=100).step_by(5)).collect(),
        }
    }
}

/// Limits that keep one run's memory and time bounded.
const MAX_CHUNKS: usize = 10_000;
const MAX_PEERS: usize = 10_000;

impl Params {
    /// Refuses parameters the model cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(positive(self.file_mbit), "file_mbit", "must be finite and > 0")?;
        require(
            (1..=MAX_CHUNKS).contains(&self.chunks),
            "chunks",
            format!("must be in 1..={MAX_CHUNKS}"),
        )?;
        for (ok, field) in [
            (positive(self.server_upload_mbps), "server_upload_mbps"),
            (positive(self.peer_upload_mbps), "peer_upload_mbps"),
            (positive(self.peer_download_mbps), "peer_download_mbps"),
        ] {
            require(ok, field, "must be finite and > 0")?;
        }
        require(
            (0.0..1.0).contains(&self.rate_spread),
            "rate_spread",
            "must be in [0, 1)",
        )?;
        require(!self.peer_counts.is_empty(), "peer_counts", "must name at least one N")?;
        require(
            self.peer_counts.iter().all(|n| (1..=MAX_PEERS).contains(n)),
            "peer_counts",
            format!("each N must be in 1..={MAX_PEERS}"),
        )
    }
}

/// One peer's rates, in chunks per slot.
#[derive(Debug, Clone, Copy)]
struct Rates {
    up: f64,
    down: f64,
}

/// The swarm's state: who holds which chunk.
struct Holdings {
    words: usize,
    chunks: usize,
    bits: Vec<Vec<u64>>,
    held: Vec<usize>,
    copies: Vec<usize>,
}

impl Holdings {
    fn new(peers: usize, chunks: usize) -> Self {
        let words = chunks.div_ceil(64);
        Holdings {
            words,
            chunks,
            bits: vec![vec![0; words]; peers],
            held: vec![0; peers],
            copies: vec![0; chunks],
        }
    }

    fn has(bits: &[u64], chunk: usize) -> bool {
        bits[chunk / 64] >> (chunk % 64) & 1 == 1
    }

    fn give(&mut self, peer: usize, chunk: usize) {
        self.bits[peer][chunk / 64] |= 1 << (chunk % 64);
        self.held[peer] += 1;
        self.copies[chunk] += 1;
    }

    /// Whether `peer` lacks a chunk of `offer` (`None`: the server, which has them all).
    fn wants(&self, peer: usize, offer: Option<&[u64]>) -> bool {
        match offer {
            None => self.held[peer] < self.chunks,
            Some(offer) => (0..self.words).any(|w| offer[w] & !self.bits[peer][w] != 0),
        }
    }

    /// The rarest chunk of `offer` that `peer` lacks.
    fn rarest(&self, peer: usize, offer: Option<&[u64]>) -> Option<usize> {
        (0..self.chunks)
            .filter(|&c| !Self::has(&self.bits[peer], c) && offer.is_none_or(|o| Self::has(o, c)))
            .min_by_key(|&c| self.copies[c])
    }
}

/// Adds a slot's earnings to a credit; what was left unspent beyond one chunk is lost (idle
/// capacity does not bank), so credits never exceed rate × time.
fn earn(credit: &mut f64, per_slot: f64) {
    *credit = credit.min(1.0) + per_slot;
}

/// Slots until every one of `peers` holds the file, swarming.
fn swarm_slots(server_up: f64, peers: &[Rates], chunks: usize, seed: u64, max_slots: u64) -> u64 {
    let n = peers.len();
    let mut rng = stream(seed, 0x5EED_0000 + n as u64);
    let mut state = Holdings::new(n, chunks);
    let (mut server_credit, mut up, mut down) = (0.0, vec![0.0; n], vec![0.0; n]);
    let mut order: Vec<usize> = (0..n).collect();
    let mut slot = 0;
    while state.held.iter().any(|&h| h < chunks) && slot < max_slots {
        slot += 1;
        let start = state.bits.clone();
        earn(&mut server_credit, server_up);
        for (i, r) in peers.iter().enumerate() {
            earn(&mut up[i], r.up);
            earn(&mut down[i], r.down);
        }
        shuffle(&mut order, &mut rng);
        // The server first (it holds what nobody else has), then the peers in a fresh order.
        for uploader in std::iter::once(None).chain(order.iter().map(|&i| Some(i))) {
            let credit = match uploader {
                None => &mut server_credit,
                Some(i) => &mut up[i],
            };
            let offer = uploader.map(|i| start[i].as_slice());
            let mut first = rng.below(n as u64) as usize;
            'uploads: while *credit >= 1.0 {
                for k in 0..n {
                    let to = (first + k) % n;
                    if Some(to) == uploader || down[to] < 1.0 || !state.wants(to, offer) {
                        continue;
                    }
                    if let Some(chunk) = state.rarest(to, offer) {
                        state.give(to, chunk);
                        *credit -= 1.0;
                        down[to] -= 1.0;
                        first = to + 1;
                        continue 'uploads;
                    }
                }
                break;
            }
        }
    }
    slot
}

/// Slots until every one of `peers` holds the file, served by the server alone.
fn client_server_slots(server_up: f64, peers: &[Rates], chunks: usize, max_slots: u64) -> u64 {
    let n = peers.len();
    let (mut got, mut server_credit, mut down) = (vec![0usize; n], 0.0, vec![0.0; n]);
    let mut slot = 0;
    while got.iter().any(|&g| g < chunks) && slot < max_slots {
        slot += 1;
        earn(&mut server_credit, server_up);
        for (i, r) in peers.iter().enumerate() {
            earn(&mut down[i], r.down);
        }
        // Water-filling: one chunk to each client that can take one, round after round.
        let mut sent = true;
        while sent && server_credit >= 1.0 {
            sent = false;
            for i in 0..n {
                if server_credit >= 1.0 && got[i] < chunks && down[i] >= 1.0 {
                    got[i] += 1;
                    down[i] -= 1.0;
                    server_credit -= 1.0;
                    sent = true;
                }
            }
        }
    }
    slot
}

/// The lecture's two bounds for these rates (Mbit/s), in seconds.
fn bounds(params: &Params, peers: &[(f64, f64)]) -> (f64, f64) {
    let f = params.file_mbit;
    let n = peers.len() as f64;
    let d_min = peers.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let sum_up: f64 = peers.iter().map(|p| p.0).sum();
    let us = params.server_upload_mbps;
    let cs = (n * f / us).max(f / d_min);
    let p2p = (f / us).max(f / d_min).max(n * f / (us + sum_up));
    (cs, p2p)
}

const FORMULA: &str = "lower bound, Kurose & Ross (lecture): d_cs = max{NF/u_s, F/d_min}, \
                       d_P2P = max{F/u_s, F/d_min, NF/(u_s + Σu_i)}";

/// Runs both distributions for every N of `params` (call [`Params::validate`] first; invalid
/// parameters give a meaningless but finite outcome, never a panic or a hang).
pub fn run(params: &Params, seed: u64) -> Outcome {
    let max_n = params.peer_counts.iter().copied().max().unwrap_or(0).min(MAX_PEERS);
    let chunks = params.chunks.clamp(1, MAX_CHUNKS);
    let chunk_mbit = params.file_mbit / chunks as f64;
    let slot_secs = chunk_mbit / params.peer_upload_mbps;
    let mut rates_rng = stream(seed, 1);
    let spread = |mean: f64, rng: &mut _| mean * (1.0 + params.rate_spread * (2.0 * unit(rng) - 1.0));
    let mbps: Vec<(f64, f64)> = (0..max_n)
        .map(|_| {
            let up = spread(params.peer_upload_mbps, &mut rates_rng);
            (up, spread(params.peer_download_mbps, &mut rates_rng))
        })
        .collect();
    let per_slot = |rate: f64| rate * slot_secs / chunk_mbit;

    let mut rows = Vec::new();
    for &n in params.peer_counts.iter().filter(|&&n| (1..=MAX_PEERS).contains(&n)) {
        let peers = &mbps[..n];
        let rates: Vec<Rates> = peers
            .iter()
            .map(|&(up, down)| Rates {
                up: per_slot(up),
                down: per_slot(down),
            })
            .collect();
        let (cs_bound, p2p_bound) = bounds(params, peers);
        // Generous caps: a few times the bound, plus the store-and-forward pipeline.
        let cap = |bound: f64| (4.0 * bound / slot_secs) as u64 + 4 * chunks as u64 + 16;
        let server = per_slot(params.server_upload_mbps);
        let cs = client_server_slots(server, &rates, chunks, cap(cs_bound)) as f64 * slot_secs;
        let p2p = swarm_slots(server, &rates, chunks, seed, cap(p2p_bound)) as f64 * slot_secs;
        rows.push((n, cs, cs_bound, p2p, p2p_bound));
    }
    outcome(params, seed, &rows)
}

/// (N, client–server simulated, its bound, P2P simulated, its bound), seconds.
type Row = (usize, f64, f64, f64, f64);

fn outcome(params: &Params, seed: u64, rows: &[Row]) -> Outcome {
    let hours = |s: f64| s / 3600.0;
    let excess = |sim: f64, bound: f64| 100.0 * (sim - bound) / bound;
    let max_excess =
        |pick: fn(&Row) -> (f64, f64)| rows.iter().map(pick).map(|(s, b)| excess(s, b)).fold(0.0, f64::max);
    let below = rows
        .iter()
        .filter(|r| r.1 < r.2 * (1.0 - 1e-9) || r.3 < r.4 * (1.0 - 1e-9))
        .count();
    let mut measurements = Vec::new();
    if let Some(&(n, cs, cs_bound, p2p, p2p_bound)) = rows.last() {
        measurements.extend([
            measurement(
                format!("cs_time_n{n}"),
                format!("client–server distribution time, N = {n}"),
                hours(cs),
                "h",
                Some((hours(cs_bound), FORMULA)),
            ),
            measurement(
                format!("p2p_time_n{n}"),
                format!("P2P distribution time, N = {n}"),
                hours(p2p),
                "h",
                Some((hours(p2p_bound), FORMULA)),
            ),
            measurement(
                format!("cs_over_p2p_n{n}"),
                format!("client–server time over P2P time, N = {n}"),
                cs / p2p,
                "",
                Some((cs_bound / p2p_bound, FORMULA)),
            ),
        ]);
    }
    measurements.extend([
        measurement(
            "cs_max_excess",
            "largest excess of the simulated client–server time over its bound, over N",
            max_excess(|r| (r.1, r.2)),
            "%",
            None,
        ),
        measurement(
            "p2p_max_excess",
            "largest excess of the simulated P2P time over its bound, over N",
            max_excess(|r| (r.3, r.4)),
            "%",
            None,
        ),
        measurement(
            "runs_below_bound",
            "simulated runs faster than their lower bound",
            below as f64,
            "",
            Some((0.0, FORMULA)),
        ),
    ]);
    let series = |name: &str, style, pick: fn(&Row) -> f64| Series {
        name: name.to_string(),
        style,
        points: rows.iter().map(|r| (r.0 as f64, hours(pick(r)))).collect(),
    };
    let figure = Figure {
        id: "distribution-time".to_string(),
        title: "Time to distribute one file to N peers".to_string(),
        x_label: "N (peers)".to_string(),
        y_label: "distribution time (hours)".to_string(),
        x_log: false,
        y_log: false,
        series: vec![
            series("client–server, simulated", SeriesStyle::Line, |r| r.1),
            series("client–server, d_cs bound", SeriesStyle::Reference, |r| r.2),
            series("P2P, simulated", SeriesStyle::Line, |r| r.3),
            series("P2P, d_P2P bound", SeriesStyle::Reference, |r| r.4),
        ],
    };
    let table = Table {
        id: "distribution-times".to_string(),
        title: "Distribution times (hours)".to_string(),
        columns: ["N", "client–server", "d_cs", "P2P", "d_P2P"]
            .map(String::from)
            .to_vec(),
        rows: rows
            .iter()
            .map(|r| {
                let mut row = vec![r.0.to_string()];
                row.extend([r.1, r.2, r.3, r.4].map(|s| format!("{:.3}", hours(s))));
                row
            })
            .collect(),
    };
    Outcome {
        experiment: "distribution-time".to_string(),
        title: "Client–server vs P2P file distribution time".to_string(),
        summary: format!(
            "A {} Mbit file in {} chunks goes from a server uploading {} Mbit/s to N peers (upload {} \
             Mbit/s, download {} Mbit/s, each ±{:.0} %, drawn with seed {seed}), once by the server \
             alone and once as a swarm in which every peer forwards what it holds, rarest chunk \
             first. The simulated times are compared with the lower bounds d_cs and d_P2P.",
            params.file_mbit,
            params.chunks,
            params.server_upload_mbps,
            params.peer_upload_mbps,
            params.peer_download_mbps,
            100.0 * params.rate_spread,
        ),
        measurements,
        figures: vec![figure],
        tables: vec![table],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(o: &Outcome, name: &str) -> f64 {
        o.measurement(name).map(|m| m.value).expect("measurement present")
    }

    #[test]
    fn simulated_times_meet_but_never_beat_the_bounds() {
        let o = run(&Params::default(), 7);
        assert_eq!(value(&o, "runs_below_bound"), 0.0);
        // Client–server: water-filling is optimal up to one slot.
        assert!(value(&o, "cs_max_excess") < 5.0, "{}", value(&o, "cs_max_excess"));
        // P2P: store and forward costs a few slots of pipeline over the fluid bound.
        assert!(value(&o, "p2p_max_excess") < 10.0, "{}", value(&o, "p2p_max_excess"));
        // At N = 100 the server is the bottleneck of client–server: about 10 hours against
        // under one for the swarm.
        let ratio = value(&o, "cs_over_p2p_n100");
        let predicted = o
            .measurement("cs_over_p2p_n100")
            .and_then(|m| m.published.clone())
            .expect("formula");
        assert!(
            ratio > 8.0 && (ratio - predicted.value).abs() / predicted.value < 0.15,
            "{ratio}"
        );
    }

    #[test]
    fn one_peer_gets_the_file_at_the_server_rate_either_way() {
        let params = Params {
            rate_spread: 0.0,
            peer_counts: vec![1],
            ..Params::default()
        };
        let o = run(&params, 1);
        // F/u_s = 360 s = 0.1 h, exactly (10 chunks per slot, 10 slots).
        assert!((value(&o, "cs_time_n1") - 0.1).abs() < 1e-12);
        assert!((value(&o, "p2p_time_n1") - 0.1).abs() < 1e-12);
    }

    #[test]
    fn seeded_and_deterministic() {
        let params = Params {
            peer_counts: vec![10, 40],
            ..Params::default()
        };
        assert_eq!(run(&params, 3), run(&params, 3));
        assert_ne!(run(&params, 3).measurements, run(&params, 4).measurements);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = [
            Params {
                chunks: 0,
                ..Params::default()
            },
            Params {
                server_upload_mbps: 0.0,
                ..Params::default()
            },
            Params {
                peer_counts: vec![0],
                ..Params::default()
            },
            Params {
                rate_spread: 1.0,
                ..Params::default()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        Params::default().validate().expect("defaults are valid");
        let err = serde_saphyr::from_str::<Params>("chunks: 10\nbogus: 1\n").expect_err("unknown field");
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
