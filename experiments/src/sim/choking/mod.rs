//! Tit-for-tat and the clients that game it, in a seeded swarm: the standard choker, BitThief's
//! large-view free riding (Locher et al., HotNets 2006), BitTyrant (Piatek et al., NSDI 2007),
//! PropShare (Levin et al., SIGCOMM 2008) and a Sybil attacker splitting itself into k
//! identities.
//!
//! A live swarm in steady state: L leechers whose upload capacities are lognormal (a stand-in
//! for the measured distributions of the papers, median and spread as parameters, download
//! capacity a multiple of upload), each starting with a uniformly drawn share of the pieces and
//! replaced by an empty newcomer when it completes, plus seeds that stay; random links (mean
//! degree `neighbours`). One observed user joins empty at t = 0. Each comparison runs the same
//! swarm (same capacities, newcomers, starting pieces and links) twice, changing only the
//! observed user's client, and takes the ratio of its download times, median over `runs`
//! swarms:
//!
//! - (a) BitThief in a standard swarm: uploads nothing, connects to `free_rider_view` peers to
//!   collect optimistic unchokes and seed bandwidth. Slowdown = its time / a standard client's.
//! - (b) BitTyrant vs the standard client in a standard swarm: speed-up = standard / BitTyrant.
//! - (c) BitTyrant vs PropShare in a PropShare swarm.
//! - (d) k Sybil identities (capacity split evenly, pieces shared) vs one identity, in a
//!   PropShare swarm and, for contrast, a standard one.
//!
//! The machinery is in [`swarm`] (rounds, pieces, capacities, the ledger) and [`choker`] (the
//! unchokers); this module holds the parameters and turns runs into measurements and figures.
//! Never: leechers that linger as seeds, several torrents, or clients that change their upload
//! capacity (BitTyrant as released always uses all of it).

mod choker;
mod draw;
mod report;
mod swarm;
#[cfg(test)]
mod tests;

use serde::Deserialize;

use super::{ParamsError, positive, require};
use crate::outcome::Outcome;
use draw::Draw;
use swarm::{Client, Observer, RunResult, simulate};

/// The swarm, the clients' settings and the number of swarms; rates in KB/s, times in seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Leechers besides the observed user (each replaced by an empty newcomer on completion).
    pub leechers: usize,
    /// Seeds, staying for the whole run.
    pub seeds: usize,
    /// Upload capacity of each seed.
    pub seed_kbps: f64,
    /// Pieces of the file.
    pub pieces: usize,
    /// Size of a piece, KB.
    pub piece_kb: f64,
    /// Mean number of links of a leecher (random graph); the observed user opens this many.
    pub neighbours: usize,
    /// Links the BitThief user opens (its large view), at most leechers + seeds.
    pub free_rider_view: usize,
    /// Median of the lognormal upload capacities.
    pub capacity_median_kbps: f64,
    /// σ of ln(capacity).
    pub capacity_sigma: f64,
    /// Capacities are clipped into [capacity_min_kbps, capacity_max_kbps].
    pub capacity_min_kbps: f64,
    /// See `capacity_min_kbps`.
    pub capacity_max_kbps: f64,
    /// Download capacity = this × upload capacity.
    pub download_factor: f64,
    /// Each leecher present at the start holds a share of the pieces drawn from [0, this).
    pub initial_share_max: f64,
    /// Regular unchoke slots of the standard choker and of seeds.
    pub upload_slots: usize,
    /// Optimistic unchokes of the standard choker, seeds and PropShare.
    pub optimistic_unchokes: usize,
    /// Seconds between rechokes (every client).
    pub rechoke_secs: u32,
    /// Seconds between new optimistic unchokes (a multiple of `rechoke_secs`).
    pub optimistic_secs: u32,
    /// Share of a PropShare peer's upload kept for its optimistic unchokes.
    pub propshare_optimistic_share: f64,
    /// BitTyrant's γ: u_p shrinks by this share after `tyrant_rounds` reciprocated periods.
    pub tyrant_gamma: f64,
    /// BitTyrant's δ: u_p grows by this share after a period without reciprocation.
    pub tyrant_delta: f64,
    /// BitTyrant's r.
    pub tyrant_rounds: u32,
    /// Upload capacity of the observed user (BitTyrant's headline: a 1 Mbit/s client).
    pub strategic_kbps: f64,
    /// Further capacities at which BitTyrant's speed-up is measured (the figure).
    pub capacity_classes_kbps: Vec<f64>,
    /// Identities of the Sybil attacker.
    pub sybils: usize,
    /// A run stops here; a download not done counts as this long.
    pub max_secs: u32,
    /// Swarms drawn per comparison.
    pub runs: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            leechers: 40,
            seeds: 1,
            seed_kbps: 200.0,
            pieces: 64,
            piece_kb: 256.0,
            neighbours: 14,
            free_rider_view: 41,
            capacity_median_kbps: 48.0,
            capacity_sigma: 1.0,
            capacity_min_kbps: 8.0,
            capacity_max_kbps: 1250.0,
            download_factor: 4.0,
            initial_share_max: 1.0,
            upload_slots: 4,
            optimistic_unchokes: 1,
            rechoke_secs: 10,
            optimistic_secs: 30,
            propshare_optimistic_share: 0.2,
            tyrant_gamma: 0.1,
            tyrant_delta: 0.2,
            tyrant_rounds: 3,
            strategic_kbps: 128.0,
            capacity_classes_kbps: vec![32.0, 512.0],
            sybils: 4,
            max_secs: 3600,
            runs: 6,
        }
    }
}

const MAX_LEECHERS: usize = 2_000;
const MAX_PIECES: usize = 4_096;
const MAX_CLASSES: usize = 16;

impl Params {
    /// Refuses parameters the model cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let others = self.leechers + self.seeds;
        require(
            (2..=MAX_LEECHERS).contains(&self.leechers),
            "leechers",
            format!("must be in 2..={MAX_LEECHERS}"),
        )?;
        require(self.seeds <= 100, "seeds", "must be at most 100")?;
        require(
            (1..=MAX_PIECES).contains(&self.pieces),
            "pieces",
            format!("must be in 1..={MAX_PIECES}"),
        )?;
        require(
            (1..others).contains(&self.neighbours),
            "neighbours",
            "must be at least 1 and below leechers + seeds",
        )?;
        require(
            (1..=others).contains(&self.free_rider_view),
            "free_rider_view",
            "must be in 1..=leechers + seeds",
        )?;
        for (x, field) in [
            (self.seed_kbps, "seed_kbps"),
            (self.piece_kb, "piece_kb"),
            (self.capacity_median_kbps, "capacity_median_kbps"),
            (self.capacity_min_kbps, "capacity_min_kbps"),
            (self.download_factor, "download_factor"),
            (self.strategic_kbps, "strategic_kbps"),
        ] {
            require(positive(x) && x <= 1e9, field, "must be finite, > 0 and at most 1e9")?;
        }
        require(
            self.capacity_sigma.is_finite() && (0.0..=5.0).contains(&self.capacity_sigma),
            "capacity_sigma",
            "must be in [0, 5]",
        )?;
        require(
            self.capacity_max_kbps.is_finite()
                && self.capacity_max_kbps >= self.capacity_min_kbps
                && self.capacity_max_kbps <= 1e9,
            "capacity_max_kbps",
            "must be at least capacity_min_kbps and at most 1e9",
        )?;
        require(
            (0.0..=1.0).contains(&self.initial_share_max),
            "initial_share_max",
            "must be in [0, 1]",
        )?;
        require(
            (1..=100).contains(&self.upload_slots),
            "upload_slots",
            "must be in 1..=100",
        )?;
        require(
            self.optimistic_unchokes <= 10,
            "optimistic_unchokes",
            "must be at most 10",
        )?;
        require(
            (1..=600).contains(&self.rechoke_secs),
            "rechoke_secs",
            "must be in 1..=600",
        )?;
        require(
            (1..=3600).contains(&self.optimistic_secs) && self.optimistic_secs.is_multiple_of(self.rechoke_secs.max(1)),
            "optimistic_secs",
            "must be in 1..=3600 and a multiple of rechoke_secs",
        )?;
        require(
            (0.0..1.0).contains(&self.propshare_optimistic_share),
            "propshare_optimistic_share",
            "must be in [0, 1)",
        )?;
        require(
            (0.0..1.0).contains(&self.tyrant_gamma),
            "tyrant_gamma",
            "must be in [0, 1)",
        )?;
        require(
            (0.0..=10.0).contains(&self.tyrant_delta),
            "tyrant_delta",
            "must be in [0, 10]",
        )?;
        require(
            (1..=100).contains(&self.tyrant_rounds),
            "tyrant_rounds",
            "must be in 1..=100",
        )?;
        require(
            self.capacity_classes_kbps.len() <= MAX_CLASSES
                && self.capacity_classes_kbps.iter().all(|&c| positive(c) && c <= 1e9),
            "capacity_classes_kbps",
            format!("must hold at most {MAX_CLASSES} capacities, each finite, > 0 and at most 1e9"),
        )?;
        require((1..=64).contains(&self.sybils), "sybils", "must be in 1..=64")?;
        require(
            (1..=100_000).contains(&self.max_secs),
            "max_secs",
            "must be in 1..=100000",
        )?;
        require((1..=1000).contains(&self.runs), "runs", "must be in 1..=1000")
    }

    /// The parameters forced into range, so that [`run`] never panics or hangs.
    fn clamped(&self) -> Params {
        let fix = |x: f64, lo: f64, hi: f64, or: f64| if x.is_finite() { x.clamp(lo, hi) } else { or };
        let leechers = self.leechers.clamp(2, MAX_LEECHERS);
        let seeds = self.seeds.min(100);
        let rechoke_secs = self.rechoke_secs.clamp(1, 600);
        let capacity_min_kbps = fix(self.capacity_min_kbps, 1e-3, 1e9, 8.0);
        Params {
            leechers,
            seeds,
            seed_kbps: fix(self.seed_kbps, 1e-3, 1e9, 200.0),
            pieces: self.pieces.clamp(1, MAX_PIECES),
            piece_kb: fix(self.piece_kb, 1e-3, 1e9, 256.0),
            neighbours: self.neighbours.clamp(1, leechers + seeds - 1),
            free_rider_view: self.free_rider_view.clamp(1, leechers + seeds),
            capacity_median_kbps: fix(self.capacity_median_kbps, 1e-3, 1e9, 48.0),
            capacity_sigma: fix(self.capacity_sigma, 0.0, 5.0, 1.0),
            capacity_min_kbps,
            capacity_max_kbps: fix(self.capacity_max_kbps, capacity_min_kbps, 1e9, capacity_min_kbps),
            download_factor: fix(self.download_factor, 1e-3, 1e9, 4.0),
            initial_share_max: fix(self.initial_share_max, 0.0, 1.0, 1.0),
            upload_slots: self.upload_slots.clamp(1, 100),
            optimistic_unchokes: self.optimistic_unchokes.min(10),
            rechoke_secs,
            optimistic_secs: (self.optimistic_secs.clamp(1, 3600) / rechoke_secs).max(1) * rechoke_secs,
            propshare_optimistic_share: fix(self.propshare_optimistic_share, 0.0, 0.999, 0.2),
            tyrant_gamma: fix(self.tyrant_gamma, 0.0, 0.999, 0.1),
            tyrant_delta: fix(self.tyrant_delta, 0.0, 10.0, 0.2),
            tyrant_rounds: self.tyrant_rounds.clamp(1, 100),
            strategic_kbps: fix(self.strategic_kbps, 1e-3, 1e9, 128.0),
            capacity_classes_kbps: self
                .capacity_classes_kbps
                .iter()
                .take(MAX_CLASSES)
                .map(|&c| fix(c, 1e-3, 1e9, 128.0))
                .collect(),
            sybils: self.sybils.clamp(1, 64),
            max_secs: self.max_secs.clamp(1, 100_000),
            runs: self.runs.clamp(1, 1000),
        }
    }

    /// The observed user's capacities for the speed-up figure, ascending, the headline's included.
    fn classes(&self) -> Vec<f64> {
        let mut classes = self.capacity_classes_kbps.clone();
        classes.push(self.strategic_kbps);
        classes.sort_by(f64::total_cmp);
        classes.dedup();
        classes
    }
}

/// The two swarms: every leecher but the observed user runs this client.
const SWARMS: [Client; 2] = [Client::Standard, Client::PropShare];

fn swarm_key(swarm: Client) -> &'static str {
    if swarm == Client::PropShare {
        "propshare"
    } else {
        "standard"
    }
}

/// The observed user's download time in each drawn swarm (`None`: not done by `max_secs`).
type Downloads = Vec<Option<u32>>;

/// The observed user's download times in one swarm kind, one entry per drawn swarm.
#[derive(Default)]
struct Times {
    /// Per capacity class: (the swarm's own client, BitTyrant).
    classes: Vec<(Downloads, Downloads)>,
    /// BitThief with its large view (`free_rider_view` links).
    free_rider: Downloads,
    /// BitThief with an ordinary view (`neighbours` links), standard swarm only.
    free_rider_small_view: Downloads,
    /// The Sybil attacker.
    sybils: Downloads,
}

/// Runs every comparison on `params.runs` swarms (call [`Params::validate`] first; invalid
/// parameters are clamped into range, never a panic or a hang).
pub fn run(params: &Params, seed: u64) -> Outcome {
    let params = params.clamped();
    let classes = params.classes();
    let mut times: Vec<Times> = SWARMS.iter().map(|_| Times::default()).collect();
    for t in &mut times {
        t.classes = classes.iter().map(|_| Default::default()).collect();
    }
    let mut unaccounted = 0.0f64;
    let mut record = |r: RunResult| {
        unaccounted = unaccounted.max(r.ledger.unaccounted() / r.ledger.sent.max(1.0));
        r.time
    };
    for i in 0..params.runs as u64 {
        let draw = Draw::new(&params, seed, i);
        for (swarm, t) in SWARMS.into_iter().zip(&mut times) {
            for (&kbps, (own, tyrant)) in classes.iter().zip(&mut t.classes) {
                own.push(record(simulate(&params, &draw, swarm, Observer::Client(swarm), kbps)));
                let strategic = Observer::Client(Client::Tyrant);
                tyrant.push(record(simulate(&params, &draw, swarm, strategic, kbps)));
            }
            let kbps = params.strategic_kbps;
            let thief = Observer::FreeRider(params.free_rider_view);
            t.free_rider.push(record(simulate(&params, &draw, swarm, thief, kbps)));
            if swarm == Client::Standard {
                let thief = Observer::FreeRider(params.neighbours);
                t.free_rider_small_view
                    .push(record(simulate(&params, &draw, swarm, thief, kbps)));
            }
            t.sybils.push(record(simulate(
                &params,
                &draw,
                swarm,
                Observer::Sybils(params.sybils),
                kbps,
            )));
        }
    }
    report::outcome(&params, seed, &classes, &times, unaccounted)
}
