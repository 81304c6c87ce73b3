//! The randomness of one swarm in [`super`], drawn once and shared by every run on it: the
//! leechers' lognormal capacities, the newcomers', the pieces each leecher starts with, the
//! random graph of links (the sim's Erdős–Rényi generator) and the order in which the observed
//! user dials. Never: anything that depends on the clients (the runs draw those choices
//! themselves, from `choices`).

use onionlab_crawler::dht::space::SplitMix64;

use super::super::graph::erdos_renyi;
use super::super::{shuffle, stream, unit};
use super::Params;

/// The randomness of one swarm, shared by every run on it (common random numbers): the same
/// capacities, newcomers, starting pieces and links whichever client the observed user runs.
pub(super) struct Draw {
    /// Initial upload capacity of each leecher, KB/s.
    pub(super) capacities: Vec<f64>,
    /// Capacities of newcomers, in order of arrival.
    pub(super) newcomers: SplitMix64,
    /// The pieces each leecher starts with.
    pub(super) initial: Vec<Vec<usize>>,
    /// Links among the others: leechers 0..L, then seeds.
    pub(super) links: Vec<Vec<usize>>,
    /// The others in the order the observed user connects to them.
    pub(super) order: Vec<usize>,
    /// Seed of the run's own choices (tie-breaks, optimistic picks).
    pub(super) choices: u64,
}

/// A lognormal capacity (median × e^(σz), z by Box–Muller), clipped into the range.
pub(super) fn capacity(params: &Params, rng: &mut SplitMix64) -> f64 {
    let (a, b) = (unit(rng), unit(rng));
    let z = (-2.0 * (1.0 - a).ln()).sqrt() * (std::f64::consts::TAU * b).cos();
    (params.capacity_median_kbps * (params.capacity_sigma * z).exp())
        .clamp(params.capacity_min_kbps, params.capacity_max_kbps)
}

impl Draw {
    /// Swarm number `index` of a campaign seeded with `seed`.
    pub(super) fn new(params: &Params, seed: u64, index: u64) -> Draw {
        let purpose = |k: u64| index * 16 + k;
        let (leechers, others) = (params.leechers, params.leechers + params.seeds);
        let mut rng = stream(seed, purpose(0));
        let capacities = (0..leechers).map(|_| capacity(params, &mut rng)).collect();
        let mut rng = stream(seed, purpose(1));
        let mut all: Vec<usize> = (0..params.pieces).collect();
        let initial = (0..leechers)
            .map(|_| {
                shuffle(&mut all, &mut rng);
                let share = unit(&mut rng) * params.initial_share_max;
                all[..(share * params.pieces as f64) as usize].to_vec()
            })
            .collect();
        let links = erdos_renyi(others, params.neighbours as f64, stream(seed, purpose(2)).next_u64());
        let mut order: Vec<usize> = (0..others).collect();
        shuffle(&mut order, &mut stream(seed, purpose(3)));
        Draw {
            capacities,
            newcomers: stream(seed, purpose(4)),
            initial,
            links,
            order,
            choices: stream(seed, purpose(5)).next_u64(),
        }
    }
}
