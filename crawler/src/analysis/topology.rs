//! Overlay topology: pure functions over an undirected graph given as a node set and an edge set
//! (a crawl snapshot's ultrapeers and edges, or any graph), never a crawl of their own.
//!
//! - [`degrees`] and [`degree_histogram`]: the degree distribution.
//! - [`top_k_share`]: the share of connections (an ultrapeer's leaves, say) held by the k
//!   nodes holding the most. Measured supernode overlays are concentrated: Skype's top 20
//!   supernodes held 43.8 % of the connections in one measurement.
//! - [`robustness`]: the size of the giant (largest connected) component, as a fraction of all
//!   nodes, when a fraction f of the nodes is removed, at random ([`Removal::Random`]: failures)
//!   or highest degree first ([`Removal::HighestDegree`]: an attack), after Albert, Jeong and
//!   Barabási, "Error and attack tolerance of complex networks" (Nature, 2000). Degrees are those
//!   of the intact graph (the "initial degree" attack of Holme, Kim, Yoon and Han, 2002); the
//!   whole curve comes from one pass that adds the nodes back in reverse removal order with a
//!   union-find (Newman and Ziff's percolation algorithm).
//! - [`ultrapeer_subnets`]: a Sybil signal, many ultrapeer identities (addresses) in one /24 or
//!   /64, scored with [`Score`] against planted ones.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::Score;
use super::sybil::Subnet;
use crate::dht::space::SplitMix64;

/// Each node's degree: edges with both ends in `nodes` and distinct ends, each counted once
/// whichever way it is written. Nodes without edges have degree 0.
pub fn degrees<N: Ord + Copy>(nodes: &BTreeSet<N>, edges: &BTreeSet<(N, N)>) -> BTreeMap<N, usize> {
    let mut out: BTreeMap<N, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for (a, b) in undirected(nodes, edges) {
        *out.entry(a).or_insert(0) += 1;
        *out.entry(b).or_insert(0) += 1;
    }
    out
}

/// The edges of `edges` within `nodes`, without loops, each once as `(lower, higher)`.
fn undirected<N: Ord + Copy>(nodes: &BTreeSet<N>, edges: &BTreeSet<(N, N)>) -> BTreeSet<(N, N)> {
    edges
        .iter()
        .filter(|(a, b)| a != b && nodes.contains(a) && nodes.contains(b))
        .map(|&(a, b)| if a < b { (a, b) } else { (b, a) })
        .collect()
}

/// How many nodes have each degree.
pub fn degree_histogram<N>(degrees: &BTreeMap<N, usize>) -> BTreeMap<usize, usize> {
    let mut out = BTreeMap::new();
    for d in degrees.values() {
        *out.entry(*d).or_insert(0) += 1;
    }
    out
}

/// What the k nodes with the most connections hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopShare {
    /// k (at most the number of nodes).
    pub k: usize,
    /// Connections the top k hold.
    pub held: usize,
    /// Connections in all.
    pub total: usize,
}

impl TopShare {
    /// held / total; `None` when there are no connections.
    pub fn share(&self) -> Option<f64> {
        (self.total > 0).then(|| self.held as f64 / self.total as f64)
    }
}

/// The share of all connections in `counts` (connections per node) held by the `k` nodes with
/// the most.
pub fn top_k_share<N>(counts: &BTreeMap<N, usize>, k: usize) -> TopShare {
    let mut sorted: Vec<usize> = counts.values().copied().collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let k = k.min(sorted.len());
    TopShare {
        k,
        held: sorted[..k].iter().sum(),
        total: sorted.iter().sum(),
    }
}

/// The order in which [`robustness`] removes nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Uniformly at random (a seeded shuffle): failures.
    Random {
        /// The shuffle's seed.
        seed: u64,
    },
    /// Highest degree in the intact graph first, ties in node order: an attack.
    HighestDegree,
}

/// One point of a robustness curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustnessPoint {
    /// The fraction of nodes asked to be removed.
    pub fraction: f64,
    /// Nodes removed: round(fraction · n).
    pub removed: usize,
    /// Nodes in the largest connected component of what is left.
    pub giant: usize,
    /// giant / n, n the nodes of the intact graph.
    pub giant_fraction: f64,
}

/// The giant component after removing each of `fractions` of `nodes` in `removal` order (see the
/// module docs). Fractions are clamped to [0, 1]; NaN ones are skipped; no nodes, no points.
pub fn robustness<N: Ord + Copy>(
    nodes: &BTreeSet<N>,
    edges: &BTreeSet<(N, N)>,
    removal: Removal,
    fractions: &[f64],
) -> Vec<RobustnessPoint> {
    let n = nodes.len();
    if n == 0 {
        return Vec::new();
    }
    let index: BTreeMap<N, usize> = nodes.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let mut adjacent = vec![Vec::new(); n];
    for (a, b) in undirected(nodes, edges) {
        let (i, j) = (index[&a], index[&b]);
        adjacent[i].push(j);
        adjacent[j].push(i);
    }
    let mut order: Vec<usize> = (0..n).collect();
    match removal {
        Removal::Random { seed } => {
            let mut rng = SplitMix64::new(seed);
            for i in (1..n).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
        Removal::HighestDegree => order.sort_by(|&a, &b| adjacent[b].len().cmp(&adjacent[a].len()).then(a.cmp(&b))),
    }
    // largest[p]: the giant component with the last p nodes of `order` present.
    let mut largest = vec![0usize; n + 1];
    let mut sets = UnionFind::new(n);
    let mut present = vec![false; n];
    let mut best = 0;
    for (p, &v) in order.iter().rev().enumerate() {
        present[v] = true;
        best = best.max(1);
        for &w in &adjacent[v] {
            if present[w] {
                best = best.max(sets.union(v, w));
            }
        }
        largest[p + 1] = best;
    }
    fractions
        .iter()
        .filter(|f| !f.is_nan())
        .map(|&f| {
            let f = f.clamp(0.0, 1.0);
            let removed = ((f * n as f64).round() as usize).min(n);
            let giant = largest[n - removed];
            RobustnessPoint {
                fraction: f,
                removed,
                giant,
                giant_fraction: giant as f64 / n as f64,
            }
        })
        .collect()
}

/// The nodes in the largest connected component.
pub fn giant_component<N: Ord + Copy>(nodes: &BTreeSet<N>, edges: &BTreeSet<(N, N)>) -> usize {
    robustness(nodes, edges, Removal::HighestDegree, &[0.0])
        .first()
        .map_or(0, |p| p.giant)
}

/// Disjoint sets with union by size and path halving.
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut v: usize) -> usize {
        while self.parent[v] != v {
            self.parent[v] = self.parent[self.parent[v]];
            v = self.parent[v];
        }
        v
    }

    /// Joins the sets of `a` and `b`; returns the size of the joined set.
    fn union(&mut self, a: usize, b: usize) -> usize {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return self.size[a];
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
        self.size[a]
    }
}

/// Subnets holding more ultrapeer identities than allowed, with those identities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubnetReport {
    /// Flagged /24s (or /64s) and the ultrapeer addresses in them.
    pub flagged: BTreeMap<Subnet, BTreeSet<SocketAddr>>,
}

impl SubnetReport {
    /// Every flagged address.
    pub fn addrs(&self) -> BTreeSet<SocketAddr> {
        self.flagged.values().flatten().copied().collect()
    }

    /// Precision and recall against planted Sybil addresses.
    pub fn score(&self, truth: &BTreeSet<SocketAddr>) -> Score {
        Score::of(&self.addrs(), truth)
    }
}

/// Flags every /24 (IPv4) or /64 (IPv6) with more than `max_per_subnet` ultrapeer addresses.
/// Honest ultrapeers are mostly home machines, rarely more than a few per /24; a university or a
/// hosting provider can exceed that honestly, so the flag is a lead, not a verdict.
pub fn ultrapeer_subnets(ultrapeers: &BTreeSet<SocketAddr>, max_per_subnet: usize) -> SubnetReport {
    let mut by_subnet: BTreeMap<Subnet, BTreeSet<SocketAddr>> = BTreeMap::new();
    for u in ultrapeers {
        by_subnet.entry(Subnet::of(u.ip())).or_default().insert(*u);
    }
    by_subnet.retain(|_, addrs| addrs.len() > max_per_subnet);
    SubnetReport { flagged: by_subnet }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: u32) -> BTreeSet<u32> {
        (0..n).collect()
    }

    /// A star: 0 in the middle, 1..n around it.
    fn star(n: u32) -> BTreeSet<(u32, u32)> {
        (1..n).map(|i| (0, i)).collect()
    }

    #[test]
    fn degrees_ignore_loops_duplicates_and_strangers() {
        let nodes = set(4);
        let edges: BTreeSet<(u32, u32)> = [(0, 1), (1, 0), (1, 1), (1, 2), (2, 9)].into();
        let d = degrees(&nodes, &edges);
        assert_eq!(d, [(0, 1), (1, 2), (2, 1), (3, 0)].into());
        assert_eq!(degree_histogram(&d), [(0, 1), (1, 2), (2, 1)].into());
    }

    #[test]
    fn top_k_shares() {
        let counts: BTreeMap<u32, usize> = [(1, 50), (2, 30), (3, 10), (4, 10), (5, 0)].into();
        let s = top_k_share(&counts, 2);
        assert_eq!((s.k, s.held, s.total), (2, 80, 100));
        assert_eq!(s.share(), Some(0.8));
        assert_eq!(top_k_share(&counts, 99).share(), Some(1.0));
        assert_eq!(top_k_share(&BTreeMap::<u32, usize>::new(), 3).share(), None);
    }

    #[test]
    fn a_star_dies_by_attack_and_survives_failures() {
        let nodes = set(101);
        let edges = star(101);
        let attack = robustness(&nodes, &edges, Removal::HighestDegree, &[0.0, 0.01, 1.0, f64::NAN, 2.0]);
        assert_eq!(attack.len(), 4);
        assert_eq!((attack[0].removed, attack[0].giant), (0, 101));
        // Removing the hub leaves 100 isolated nodes.
        assert_eq!((attack[1].removed, attack[1].giant), (1, 1));
        assert_eq!((attack[2].giant, attack[2].giant_fraction), (0, 0.0));
        assert_eq!((attack[3].fraction, attack[3].removed), (1.0, 101));
        // Removing 10 random nodes most likely spares the hub; either way the count is exact.
        let random = robustness(&nodes, &edges, Removal::Random { seed: 7 }, &[0.1]);
        assert_eq!(random[0].removed, 10);
        assert!(random[0].giant == 91 || random[0].giant == 1);
        assert_eq!(giant_component(&nodes, &edges), 101);
        assert!(
            robustness(
                &BTreeSet::<u32>::new(),
                &BTreeSet::new(),
                Removal::HighestDegree,
                &[0.5]
            )
            .is_empty()
        );
    }

    #[test]
    fn giant_component_matches_a_direct_count() {
        // Two triangles and a path, joined by one bridge node.
        let nodes = set(10);
        let edges: BTreeSet<(u32, u32)> =
            [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (2, 6), (6, 3), (7, 8)].into();
        assert_eq!(giant_component(&nodes, &edges), 7);
        // Node 6 has degree 2, nodes 2 and 3 degree 3: the attack removes 2 and 3 first.
        let p = robustness(&nodes, &edges, Removal::HighestDegree, &[0.2]);
        assert_eq!((p[0].removed, p[0].giant), (2, 2));
        // Random removal of every node in any order ends empty; of none, whole.
        for seed in 0..20 {
            let p = robustness(&nodes, &edges, Removal::Random { seed }, &[0.0, 1.0]);
            assert_eq!((p[0].giant, p[1].giant), (7, 0));
        }
    }

    #[test]
    fn scale_free_graphs_are_fragile_to_attacks_only() {
        // Preferential attachment, two edges per new node (Barabási–Albert).
        let mut rng = SplitMix64::new(1);
        let mut edges = BTreeSet::new();
        let mut ends: Vec<u32> = vec![0, 1];
        edges.insert((0u32, 1u32));
        for v in 2..2000u32 {
            for _ in 0..2 {
                let u = ends[rng.below(ends.len() as u64) as usize];
                if u != v && edges.insert((u.min(v), u.max(v))) {
                    ends.extend([u, v]);
                }
            }
        }
        let nodes = set(2000);
        let f = [0.05];
        let attack = robustness(&nodes, &edges, Removal::HighestDegree, &f)[0].giant_fraction;
        let failure = robustness(&nodes, &edges, Removal::Random { seed: 3 }, &f)[0].giant_fraction;
        assert!(failure > 0.9, "random failures of 5% keep the graph whole: {failure}");
        assert!(
            attack < failure - 0.1,
            "attacking 5% hubs hurts more: {attack} vs {failure}"
        );
    }

    #[test]
    fn crowded_subnets_are_flagged_and_scored() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let mut ups: BTreeSet<SocketAddr> = (1..=6).map(|i| a(&format!("10.0.0.{i}:6346"))).collect();
        ups.extend([a("10.0.1.1:6346"), a("10.0.2.1:6346"), a("10.0.2.1:6347")]);
        let r = ultrapeer_subnets(&ups, 3);
        assert_eq!(r.flagged.len(), 1);
        let truth: BTreeSet<SocketAddr> = (1..=5).map(|i| a(&format!("10.0.0.{i}:6346"))).collect();
        let s = r.score(&truth);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (5, 1, 0));
        assert!(ultrapeer_subnets(&ups, 6).flagged.is_empty());
    }
}
