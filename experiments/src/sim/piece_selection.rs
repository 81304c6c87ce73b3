//! Rarest-first vs random piece selection in a flash crowd whose only seed leaves early.
//!
//! One seed and L leechers that arrive together; every leecher is connected to the seed and to
//! a few random leechers (the tracker's answer). Time runs in rounds: each uploader (the seed,
//! then the leechers in a fresh order) fills its upload slots, each time with a random
//! neighbour that lacks one of the pieces the uploader held at the start of the round; that
//! neighbour picks which of those pieces it takes, either the rarest among its own neighbours
//! (ties broken at random) or one at random. The seed leaves once it has uploaded
//! `seed_upload_copies` × P pieces; a piece no leecher holds then is *lost*: nobody completes.
//! The leechers that complete stay and upload.
//!
//! With random selection the seed's uploads are close to P draws with replacement, so about
//! P·(1 − 1/P)^(cP) ≈ P·e^(−c) pieces never leave it after c copies' worth; rarest first asks the seed for what the swarm
//! lacks, so it uploads almost one copy of each piece (Legout, Urvoy-Keller and Michiardi,
//! "Rarest first and choke algorithms are enough", IMC 2006). Never: choking, tit-for-tat or
//! end-game mode (uploaders serve any interested neighbour).

use serde::Deserialize;

use super::{ParamsError, mean, measurement, positive, require, shuffle, stream};
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};
use onionlab_crawler::dht::space::SplitMix64;

/// The swarm and the number of seeded runs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Leechers L, arriving together.
    pub leechers: usize,
    /// Pieces P of the file.
    pub pieces: usize,
    /// Random leecher neighbours each leecher dials (links are symmetric; all know the seed).
    pub neighbours: usize,
    /// Pieces the seed uploads per round.
    pub seed_upload_slots: usize,
    /// Pieces a leecher uploads per round.
    pub leecher_upload_slots: usize,
    /// The seed leaves after uploading this many copies' worth of pieces (× P).
    pub seed_upload_copies: f64,
    /// Independent runs per policy (run i of both policies shares its neighbour graph).
    pub runs: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            leechers: 40,
            pieces: 100,
            neighbours: 20,
            seed_upload_slots: 4,
            leecher_upload_slots: 1,
            seed_upload_copies: 1.25,
            runs: 20,
        }
    }
}

const MAX_LEECHERS: usize = 5_000;
const MAX_PIECES: usize = 10_000;
const MAX_RUNS: usize = 10_000;

impl Params {
    /// Refuses parameters the model cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            (1..=MAX_LEECHERS).contains(&self.leechers),
            "leechers",
            format!("must be in 1..={MAX_LEECHERS}"),
        )?;
        require(
            (1..=MAX_PIECES).contains(&self.pieces),
            "pieces",
            format!("must be in 1..={MAX_PIECES}"),
        )?;
        require(
            self.neighbours < self.leechers.max(1),
            "neighbours",
            "must be below the number of leechers",
        )?;
        require(
            (1..=1000).contains(&self.seed_upload_slots),
            "seed_upload_slots",
            "must be in 1..=1000",
        )?;
        require(
            (1..=1000).contains(&self.leecher_upload_slots),
            "leecher_upload_slots",
            "must be in 1..=1000",
        )?;
        require(
            positive(self.seed_upload_copies) && self.seed_upload_copies <= 100.0,
            "seed_upload_copies",
            "must be in (0, 100]",
        )?;
        require(
            (1..=MAX_RUNS).contains(&self.runs),
            "runs",
            format!("must be in 1..={MAX_RUNS}"),
        )
    }

    fn clamped(&self) -> Params {
        let leechers = self.leechers.clamp(1, MAX_LEECHERS);
        Params {
            leechers,
            pieces: self.pieces.clamp(1, MAX_PIECES),
            neighbours: self.neighbours.min(leechers - 1),
            seed_upload_slots: self.seed_upload_slots.clamp(1, 1000),
            leecher_upload_slots: self.leecher_upload_slots.clamp(1, 1000),
            seed_upload_copies: if positive(self.seed_upload_copies) {
                self.seed_upload_copies.min(100.0)
            } else {
                1.0
            },
            runs: self.runs.clamp(1, MAX_RUNS),
        }
    }
}

/// Which piece a leecher asks an uploader for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    RarestFirst,
    Random,
}

impl Policy {
    fn key(self) -> &'static str {
        match self {
            Policy::RarestFirst => "rarest_first",
            Policy::Random => "random",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Policy::RarestFirst => "rarest first",
            Policy::Random => "random",
        }
    }
}

/// What one run saw.
struct RunTrace {
    /// Pieces no leecher held when the seed left.
    lost: usize,
    /// Per round: distinct pieces held by leechers, and the share of leechers complete.
    rounds: Vec<(usize, f64)>,
}

/// Symmetric random links among leechers: each dials `k` distinct others.
fn neighbour_graph(leechers: usize, k: usize, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); leechers];
    let mut others: Vec<usize> = (0..leechers).collect();
    for a in 0..leechers {
        shuffle(&mut others, rng);
        for &b in others.iter().filter(|&&b| b != a).take(k) {
            if !adj[a].contains(&b) {
                adj[a].push(b);
                adj[b].push(a);
            }
        }
    }
    for list in &mut adj {
        list.sort_unstable();
    }
    adj
}

/// The swarm's state during a run.
struct Swarm<'a> {
    adj: &'a [Vec<usize>],
    have: Vec<Vec<bool>>,
    held: Vec<usize>,
    /// seen[l][p]: copies of p among l's neighbours, the seed included while it stays.
    seen: Vec<Vec<usize>>,
    pieces: usize,
}

impl Swarm<'_> {
    fn give(&mut self, to: usize, piece: usize) {
        self.have[to][piece] = true;
        self.held[to] += 1;
        for &n in &self.adj[to] {
            self.seen[n][piece] += 1;
        }
    }

    /// The piece `to` takes from an uploader holding `offer` (`None`: the seed, which holds
    /// all), or `None` if it wants none of them.
    fn pick(&self, to: usize, offer: Option<&[bool]>, policy: Policy, rng: &mut SplitMix64) -> Option<usize> {
        let wanted = (0..self.pieces).filter(|&p| !self.have[to][p] && offer.is_none_or(|o| o[p]));
        let mut best: Option<(usize, usize)> = None;
        let mut ties = 0u64;
        for p in wanted {
            // Reservoir choice among the best: the rarest, or (Random) any.
            let score = match policy {
                Policy::RarestFirst => self.seen[to][p],
                Policy::Random => 0,
            };
            match best {
                Some((s, _)) if score > s => continue,
                Some((s, _)) if score == s => ties += 1,
                _ => ties = 1,
            }
            if ties == 1 || rng.below(ties) == 0 {
                best = Some((score, p));
            }
        }
        best.map(|(_, p)| p)
    }
}

fn run_once(params: &Params, adj: &[Vec<usize>], policy: Policy, rng: &mut SplitMix64) -> RunTrace {
    let (l, p) = (params.leechers, params.pieces);
    let mut swarm = Swarm {
        adj,
        have: vec![vec![false; p]; l],
        held: vec![0; l],
        seen: vec![vec![1; p]; l],
        pieces: p,
    };
    let seed_budget = (params.seed_upload_copies * p as f64).ceil() as usize;
    let (mut seed_sent, mut seed_here, mut lost) = (0usize, true, 0usize);
    let mut order: Vec<usize> = (0..l).collect();
    let mut all: Vec<usize> = (0..l).collect();
    let mut rounds = Vec::new();
    let max_rounds = 4 * (p * l).div_ceil(params.seed_upload_slots) + 4 * p + 16;
    for _ in 0..max_rounds {
        if swarm.held.iter().all(|&h| h == p) {
            break;
        }
        let start = swarm.have.clone();
        let mut moved = 0usize;
        if seed_here {
            shuffle(&mut all, rng);
            let mut slots = params.seed_upload_slots.min(seed_budget - seed_sent);
            for &to in &all {
                if slots == 0 {
                    break;
                }
                if let Some(piece) = swarm.pick(to, None, policy, rng) {
                    swarm.give(to, piece);
                    (slots, seed_sent, moved) = (slots - 1, seed_sent + 1, moved + 1);
                }
            }
        }
        shuffle(&mut order, rng);
        for &from in &order {
            let mut candidates = adj[from].clone();
            shuffle(&mut candidates, rng);
            let mut slots = params.leecher_upload_slots;
            for &to in &candidates {
                if slots == 0 {
                    break;
                }
                if let Some(piece) = swarm.pick(to, Some(&start[from]), policy, rng) {
                    swarm.give(to, piece);
                    (slots, moved) = (slots - 1, moved + 1);
                }
            }
        }
        if seed_here && seed_sent >= seed_budget {
            seed_here = false;
            for row in &mut swarm.seen {
                row.iter_mut().for_each(|c| *c -= 1);
            }
            lost = (0..p).filter(|&q| swarm.have.iter().all(|h| !h[q])).count();
        }
        let distinct = (0..p).filter(|&q| swarm.have.iter().any(|h| h[q])).count();
        let complete = swarm.held.iter().filter(|&&h| h == p).count() as f64 / l as f64;
        rounds.push((distinct, complete));
        if !seed_here && moved == 0 {
            break;
        }
    }
    RunTrace { lost, rounds }
}

/// Runs both policies `params.runs` times (call [`Params::validate`] first; invalid parameters
/// are clamped into range, never a panic or a hang).
pub fn run(params: &Params, seed: u64) -> Outcome {
    let params = params.clamped();
    let mut traces = Vec::new();
    for policy in [Policy::RarestFirst, Policy::Random] {
        let mut runs = Vec::new();
        for i in 0..params.runs as u64 {
            let adj = neighbour_graph(params.leechers, params.neighbours, &mut stream(seed, 2 * i));
            let mut rng = stream(seed, 2 * i + 1);
            runs.push(run_once(&params, &adj, policy, &mut rng));
        }
        traces.push((policy, runs));
    }
    outcome(&params, seed, &traces)
}

/// A policy's mean curves over rounds: pieces available, share complete.
type Curves = (Policy, Vec<(f64, f64)>, Vec<(f64, f64)>);

fn outcome(params: &Params, seed: u64, traces: &[(Policy, Vec<RunTrace>)]) -> Outcome {
    let p = params.pieces as f64;
    let draws = (params.seed_upload_copies * p).ceil();
    let never_drawn = p * (1.0 - 1.0 / p).powf(draws);
    let legout = "Legout, Urvoy-Keller and Michiardi, \"Rarest first and choke algorithms are enough\", IMC 2006";
    let coupon = "≈ P·(1 − 1/P)^(copies·P): pieces the seed never uploads when each upload is a \
                  uniformly random piece (an over-estimate: a leecher never asks for a piece it holds, \
                  so the seed repeats itself less than independent draws would)";
    let mut measurements = Vec::new();
    let mut figures_points: Vec<Curves> = Vec::new();
    let mut table_rows = Vec::new();
    for (policy, runs) in traces {
        let lost: Vec<f64> = runs.iter().map(|r| r.lost as f64).collect();
        let completion: Vec<f64> = runs.iter().map(|r| r.rounds.last().map_or(0.0, |x| x.1)).collect();
        let with_loss = runs.iter().filter(|r| r.lost > 0).count() as f64 / runs.len().max(1) as f64;
        let published = match policy {
            Policy::Random => Some((never_drawn, coupon)),
            Policy::RarestFirst => None,
        };
        let key = policy.key();
        measurements.extend([
            measurement(
                format!("pieces_lost_{key}"),
                format!(
                    "pieces no leecher held when the seed left, {}, mean over runs",
                    policy.label()
                ),
                mean(&lost),
                "pieces",
                published,
            ),
            measurement(
                format!("completion_{key}"),
                format!("share of leechers that completed, {}, mean over runs", policy.label()),
                mean(&completion),
                "",
                None,
            ),
            measurement(
                format!("runs_with_loss_{key}"),
                format!("share of runs that lost a piece, {}", policy.label()),
                with_loss,
                "",
                None,
            ),
        ]);
        // Mean curves over runs; a run that ended keeps its last value.
        let length = runs.iter().map(|r| r.rounds.len()).max().unwrap_or(0);
        let at = |r: &RunTrace, i: usize| r.rounds.get(i).or(r.rounds.last()).copied().unwrap_or((0, 0.0));
        let mut available = Vec::new();
        let mut complete = Vec::new();
        for i in 0..length {
            let n = runs.len() as f64;
            available.push(((i + 1) as f64, runs.iter().map(|r| at(r, i).0 as f64).sum::<f64>() / n));
            complete.push(((i + 1) as f64, runs.iter().map(|r| at(r, i).1).sum::<f64>() / n));
        }
        figures_points.push((*policy, available, complete));
        table_rows.push(vec![
            policy.label().to_string(),
            format!("{:.2}", mean(&lost)),
            format!("{:.0}", lost.iter().copied().fold(0.0, f64::max)),
            format!("{:.3}", mean(&completion)),
        ]);
    }
    let lost_of = |key: &str| {
        measurements
            .iter()
            .find(|m| m.name == format!("pieces_lost_{key}"))
            .map_or(0.0, |m| m.value)
    };
    let (rarest_lost, random_lost) = (lost_of("rarest_first"), lost_of("random"));
    measurements.push(measurement(
        "pieces_lost_saved",
        "pieces lost with random selection minus pieces lost with rarest first, mean over runs",
        random_lost - rarest_lost,
        "pieces",
        None,
    ));
    let figure = |id: &str, title: &str, y_label: &str, pick: fn(&Curves) -> &Vec<(f64, f64)>| Figure {
        id: id.to_string(),
        title: title.to_string(),
        x_label: "round".to_string(),
        y_label: y_label.to_string(),
        x_log: false,
        y_log: false,
        series: figures_points
            .iter()
            .map(|f| Series {
                name: f.0.label().to_string(),
                style: SeriesStyle::Line,
                points: pick(f).clone(),
            })
            .collect(),
    };
    let mut available = figure(
        "pieces-available",
        "Distinct pieces held by leechers (mean over runs)",
        "pieces",
        |f| &f.1,
    );
    let last_round = available
        .series
        .iter()
        .filter_map(|s| s.points.last())
        .map(|x| x.0)
        .fold(1.0, f64::max);
    available.series.push(Series {
        name: "the whole file".to_string(),
        style: SeriesStyle::Reference,
        points: vec![(1.0, p), (last_round, p)],
    });
    let completion = figure(
        "completion",
        "Share of leechers complete (mean over runs)",
        "share complete",
        |f| &f.2,
    );
    Outcome {
        experiment: "rarest-first".to_string(),
        title: "Rarest-first vs random piece selection when the seed leaves early".to_string(),
        summary: format!(
            "{} leechers arrive together for a file of {} pieces; each knows the seed and dials {} random \
             leechers. The seed uploads {} pieces per round, a leecher {}; the seed leaves after uploading \
             {} copies' worth. {} runs per policy (seed {seed}, run i of both policies on the same graph). \
             A piece no leecher holds when the seed leaves is lost, and nobody completes. After {legout}.",
            params.leechers,
            params.pieces,
            params.neighbours,
            params.seed_upload_slots,
            params.leecher_upload_slots,
            params.seed_upload_copies,
            params.runs,
        ),
        measurements,
        figures: vec![available, completion],
        tables: vec![Table {
            id: "pieces-lost".to_string(),
            title: "Pieces lost and completion by policy".to_string(),
            columns: ["policy", "mean pieces lost", "most lost", "mean share complete"]
                .map(String::from)
                .to_vec(),
            rows: table_rows,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(o: &Outcome, name: &str) -> f64 {
        o.measurement(name).map(|m| m.value).expect("measurement present")
    }

    #[test]
    fn rarest_first_loses_far_fewer_pieces_than_random() {
        let o = run(&Params::default(), 11);
        let (rarest, random) = (value(&o, "pieces_lost_rarest_first"), value(&o, "pieces_lost_random"));
        assert!(rarest * 5.0 < random, "rarest first {rarest}, random {random}");
        // Random selection: somewhat below the coupon-collector estimate 100·e^(−1.25) ≈ 28.5.
        assert!((15.0..30.0).contains(&random), "{random}");
        assert!(
            value(&o, "completion_rarest_first") > 0.9,
            "{}",
            value(&o, "completion_rarest_first")
        );
        assert!(
            value(&o, "completion_random") < 0.1,
            "{}",
            value(&o, "completion_random")
        );
    }

    #[test]
    fn a_seed_that_stays_long_enough_loses_nothing() {
        let params = Params {
            seed_upload_copies: 10.0,
            runs: 3,
            ..Params::default()
        };
        let o = run(&params, 2);
        for key in ["rarest_first", "random"] {
            assert_eq!(value(&o, &format!("pieces_lost_{key}")), 0.0);
            assert_eq!(value(&o, &format!("completion_{key}")), 1.0);
        }
    }

    #[test]
    fn seeded_and_deterministic() {
        let params = Params {
            runs: 4,
            ..Params::default()
        };
        assert_eq!(run(&params, 5), run(&params, 5));
        assert_ne!(run(&params, 5).measurements, run(&params, 6).measurements);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for p in [
            Params {
                leechers: 0,
                ..Params::default()
            },
            Params {
                neighbours: 40,
                ..Params::default()
            },
            Params {
                seed_upload_copies: f64::NAN,
                ..Params::default()
            },
        ] {
            assert!(p.validate().is_err(), "{p:?}");
        }
        Params::default().validate().expect("defaults are valid");
    }
}
