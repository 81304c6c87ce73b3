//! Seeded random graphs as adjacency lists (`adjacency[v]` lists v's neighbours, ascending; no
//! loops, no multi-edges): Erdős–Rényi G(n, M) for an unstructured overlay with a narrow degree
//! distribution, and Barabási–Albert preferential attachment for a scale-free one (drawn by the
//! Gnutella plan's generator, not a second one). Pure functions of their arguments; they never
//! analyse the graphs they draw.

use std::collections::BTreeSet;

use super::stream;
use crate::gnutella::OverlayConfig;
use crate::gnutella::topology::preferential_graph;

/// Erdős–Rényi G(n, M): `nodes` vertices and M = round(nodes · mean_degree / 2) distinct edges
/// drawn uniformly. A mean degree that is not finite and ≥ 0 counts as 0; M is capped at half
/// of all possible edges, so that rejection sampling stays fast.
pub fn erdos_renyi(nodes: usize, mean_degree: f64, seed: u64) -> Vec<Vec<usize>> {
    let mut adjacency = vec![Vec::new(); nodes];
    if nodes < 2 {
        return adjacency;
    }
    let degree = if mean_degree.is_finite() && mean_degree > 0.0 {
        mean_degree
    } else {
        0.0
    };
    let possible = nodes as f64 * (nodes - 1) as f64 / 2.0;
    let edges = (nodes as f64 * degree / 2.0).round().min(possible / 2.0) as usize;
    let mut rng = stream(seed, 0x6E7);
    let mut drawn = BTreeSet::new();
    while drawn.len() < edges {
        let (a, b) = (rng.below(nodes as u64) as usize, rng.below(nodes as u64) as usize);
        if a != b {
            drawn.insert((a.min(b), a.max(b)));
        }
    }
    for (a, b) in drawn {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    for list in &mut adjacency {
        list.sort_unstable();
    }
    adjacency
}

/// Barabási–Albert: a clique of the first `links + 1` vertices, then each next vertex links to
/// `links` earlier ones chosen with probability proportional to their degree (mean degree
/// about 2 · links, a power-law tail).
pub fn barabasi_albert(nodes: usize, links: usize, seed: u64) -> Vec<Vec<usize>> {
    let config = OverlayConfig {
        ultrapeer_links: links,
        max_ultrapeer_peers: usize::MAX,
        ..OverlayConfig::default()
    };
    let mut degree = vec![0; nodes];
    let mut adjacency = vec![Vec::new(); nodes];
    for (a, b) in preferential_graph(nodes, &config, &mut degree, &mut stream(seed, 0xBA)) {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    for list in &mut adjacency {
        list.sort_unstable();
    }
    adjacency
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(adjacency: &[Vec<usize>]) -> bool {
        adjacency.iter().enumerate().all(|(v, list)| {
            list.windows(2).all(|w| w[0] < w[1])
                && list.iter().all(|&u| u != v && adjacency[u].binary_search(&v).is_ok())
        })
    }

    #[test]
    fn erdos_renyi_has_the_asked_mean_degree_and_is_seeded() {
        let g = erdos_renyi(2000, 4.0, 1);
        assert!(simple(&g));
        let edges: usize = g.iter().map(Vec::len).sum::<usize>() / 2;
        assert_eq!(edges, 4000);
        // A narrow (Poisson) degree distribution: nobody near the hub degrees of BA.
        assert!(g.iter().map(Vec::len).max().unwrap_or(0) < 20);
        assert_eq!(g, erdos_renyi(2000, 4.0, 1));
        assert_ne!(g, erdos_renyi(2000, 4.0, 2));
        assert!(erdos_renyi(1, 4.0, 1)[0].is_empty());
        assert_eq!(erdos_renyi(10, f64::NAN, 1).iter().map(Vec::len).sum::<usize>(), 0);
        // Capped at half the possible edges.
        assert_eq!(erdos_renyi(10, 100.0, 1).iter().map(Vec::len).sum::<usize>() / 2, 22);
    }

    #[test]
    fn barabasi_albert_grows_hubs() {
        let g = barabasi_albert(2000, 2, 1);
        assert!(simple(&g));
        let degrees: Vec<usize> = g.iter().map(Vec::len).collect();
        let mean = degrees.iter().sum::<usize>() as f64 / degrees.len() as f64;
        assert!((3.5..=4.0).contains(&mean), "{mean}");
        assert!(degrees.iter().all(|&d| d >= 2));
        assert!(
            degrees.iter().copied().max().unwrap_or(0) > 40,
            "a hub of degree > 10 × mean"
        );
        assert_eq!(g, barabasi_albert(2000, 2, 1));
        assert_ne!(g, barabasi_albert(2000, 2, 2));
    }
}
