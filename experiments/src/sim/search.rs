//! Flooding with a TTL vs k random walkers on an unstructured overlay: success rate against
//! messages per query, after Lv, Cao, Cohen, Li and Shenker, "Search and replication in
//! unstructured peer-to-peer networks" (ICS 2002).
//!
//! The overlay is an Erdős–Rényi graph ([`super::graph::erdos_renyi`]). Each query looks for a
//! fresh object held by a `replication` share of the nodes, from a random node.
//!
//! - **Flooding** (Gnutella): the source sends the query to all its neighbours; a node that
//!   receives it for the first time with TTL left forwards it to all neighbours but the sender;
//!   duplicates are dropped. Every copy sent is a message. It succeeds if a holder lies within
//!   TTL hops; the flood does not stop when it finds one.
//! - **k random walkers**: k copies each step to a random neighbour, one message per step, and
//!   check back with the source every `check_every` steps (Lv et al.'s checking), stopping at
//!   the first check after any walker found a holder, or after the step budget.
//!
//! One flood per query yields every TTL (the reached depth and the messages within each), and
//! one walk per query and k yields every step budget (its first hit), so the curves compare
//! the same queries. Never: replication strategies, query popularity or duplicate suppression
//! in walkers.

use serde::Deserialize;

use super::graph::erdos_renyi;
use super::{ParamsError, measurement, positive, require, stream};
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};
use onionlab_crawler::dht::space::SplitMix64;

/// The overlay, the objects and the search configurations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Overlay nodes.
    pub nodes: usize,
    /// The overlay's mean degree (Lv et al.'s random graph: 4).
    pub mean_degree: f64,
    /// The share of nodes holding each object, in (0, 1].
    pub replication: f64,
    /// Queries, each for a fresh object from a random node.
    pub queries: usize,
    /// Flooding is run for TTL 1..=max_ttl.
    pub max_ttl: u32,
    /// Walker counts k (Lv et al. recommend 16 to 64).
    pub walkers: Vec<usize>,
    /// Step budgets per walker, ascending.
    pub step_budgets: Vec<usize>,
    /// Walkers check with the source every this many steps.
    pub check_every: usize,
    /// Success rate at which the message counts are compared: flooding's smallest TTL reaching
    /// it, against the walkers' messages for the same success.
    pub target_success: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            nodes: 10_000,
            mean_degree: 4.0,
            replication: 0.01,
            queries: 200,
            max_ttl: 7,
            walkers: vec![16, 32],
            step_budgets: vec![4, 8, 16, 32, 64, 128, 256, 512],
            check_every: 4,
            target_success: 0.95,
        }
    }
}

const MAX_NODES: usize = 1_000_000;

impl Params {
    /// Refuses parameters the model cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            (2..=MAX_NODES).contains(&self.nodes),
            "nodes",
            format!("must be in 2..={MAX_NODES}"),
        )?;
        require(
            positive(self.mean_degree) && self.mean_degree <= (self.nodes - 1) as f64 / 2.0,
            "mean_degree",
            "must be > 0 and at most half the other nodes",
        )?;
        require(
            positive(self.replication) && self.replication <= 1.0,
            "replication",
            "must be in (0, 1]",
        )?;
        require(
            (1..=100_000).contains(&self.queries),
            "queries",
            "must be in 1..=100000",
        )?;
        require((1..=64).contains(&self.max_ttl), "max_ttl", "must be in 1..=64")?;
        require(
            !self.walkers.is_empty() && self.walkers.iter().all(|k| (1..=1024).contains(k)),
            "walkers",
            "must list walker counts in 1..=1024",
        )?;
        require(
            !self.step_budgets.is_empty()
                && self.step_budgets.windows(2).all(|w| w[0] < w[1])
                && self.step_budgets.iter().all(|s| (1..=100_000).contains(s)),
            "step_budgets",
            "must list ascending budgets in 1..=100000",
        )?;
        require(
            (1..=1000).contains(&self.check_every),
            "check_every",
            "must be in 1..=1000",
        )?;
        require(
            self.target_success > 0.0 && self.target_success <= 1.0,
            "target_success",
            "must be in (0, 1]",
        )
    }
}

/// One query's object: a stamp per node, equal to the query's number where a replica is.
struct Replicas {
    stamp: Vec<u32>,
    query: u32,
}

impl Replicas {
    fn place(&mut self, count: usize, rng: &mut SplitMix64) {
        self.query += 1;
        let n = self.stamp.len() as u64;
        let mut placed = 0;
        // Bounded: count ≤ n, and a rejection only repeats an already stamped node.
        for _ in 0..64 * count + 1024 {
            if placed == count {
                break;
            }
            let v = rng.below(n) as usize;
            if self.stamp[v] != self.query {
                self.stamp[v] = self.query;
                placed += 1;
            }
        }
    }

    fn holds(&self, v: usize) -> bool {
        self.stamp[v] == self.query
    }
}

/// For one flood from `source`: the depth of the nearest holder (if within `max_ttl`), and the
/// messages sent with each TTL 1..=max_ttl.
fn flood(
    g: &[Vec<usize>],
    source: usize,
    replicas: &Replicas,
    max_ttl: u32,
    depth: &mut [u32],
) -> (Option<u32>, Vec<f64>) {
    depth.iter_mut().for_each(|d| *d = u32::MAX);
    depth[source] = 0;
    let mut frontier = vec![source];
    let mut found = replicas.holds(source).then_some(0);
    // sent[d]: messages sent by the nodes at depth d (the source all, others all but one).
    let mut sent = Vec::new();
    for d in 0..max_ttl {
        let mut next = Vec::new();
        let mut messages = 0usize;
        for &v in &frontier {
            messages += g[v].len() - usize::from(v != source);
            for &u in &g[v] {
                if depth[u] == u32::MAX {
                    depth[u] = d + 1;
                    next.push(u);
                    if found.is_none() && replicas.holds(u) {
                        found = Some(d + 1);
                    }
                }
            }
        }
        sent.push(messages as f64);
        frontier = next;
    }
    let cumulative = sent
        .iter()
        .scan(0.0, |total, m| {
            *total += m;
            Some(*total)
        })
        .collect();
    (found, cumulative)
}

/// The first step at which one of `k` lockstep walkers from `source` stands on a holder, within
/// `max_steps` (0 if the source holds the object).
fn walk(
    g: &[Vec<usize>],
    source: usize,
    replicas: &Replicas,
    k: usize,
    max_steps: usize,
    rng: &mut SplitMix64,
) -> Option<usize> {
    if replicas.holds(source) {
        return Some(0);
    }
    if g[source].is_empty() {
        return None;
    }
    let mut at = vec![source; k];
    for step in 1..=max_steps {
        for w in &mut at {
            let next = &g[*w];
            *w = next[rng.below(next.len() as u64) as usize];
        }
        if at.iter().any(|&w| replicas.holds(w)) {
            return Some(step);
        }
    }
    None
}

/// Runs every flooding TTL and walker configuration over the same queries (call
/// [`Params::validate`] first; invalid parameters give a meaningless but finite outcome, never
/// a panic or a hang).
pub fn run(params: &Params, seed: u64) -> Outcome {
    let nodes = params.nodes.clamp(2, MAX_NODES);
    let max_ttl = params.max_ttl.clamp(1, 64);
    let max_steps = params.step_budgets.iter().copied().max().unwrap_or(1).min(100_000);
    let check = params.check_every.clamp(1, 1000);
    let g = erdos_renyi(nodes, params.mean_degree, seed);
    let mut rng = stream(seed, 3);
    let count = ((params.replication.clamp(0.0, 1.0) * nodes as f64).round() as usize).clamp(1, nodes);
    let mut replicas = Replicas {
        stamp: vec![0; nodes],
        query: 0,
    };
    let mut depth = vec![0; nodes];
    let ttls = max_ttl as usize;
    let (mut flood_hits, mut flood_messages) = (vec![0usize; ttls], vec![0.0; ttls]);
    let walkers: Vec<usize> = params.walkers.iter().map(|&k| k.clamp(1, 1024)).collect();
    let budgets = &params.step_budgets;
    let mut walk_hits = vec![vec![0usize; budgets.len()]; walkers.len()];
    let mut walk_messages = vec![vec![0.0; budgets.len()]; walkers.len()];
    let queries = params.queries.clamp(1, 100_000);
    for _ in 0..queries {
        let source = rng.below(nodes as u64) as usize;
        replicas.place(count, &mut rng);
        let (found, messages) = flood(&g, source, &replicas, max_ttl, &mut depth);
        for t in 0..ttls {
            flood_messages[t] += messages[t];
            flood_hits[t] += usize::from(found.is_some_and(|d| d as usize <= t + 1));
        }
        for (w, &k) in walkers.iter().enumerate() {
            let hit = walk(&g, source, &replicas, k, max_steps, &mut rng);
            for (b, &budget) in budgets.iter().enumerate() {
                // Walkers stop at the first check after the hit, or at the budget.
                let steps = hit.map_or(budget, |h| h.div_ceil(check) * check).min(budget);
                let steps = if g[source].is_empty() { 0 } else { steps };
                walk_messages[w][b] += (k * steps) as f64;
                walk_hits[w][b] += usize::from(hit.is_some_and(|h| h <= budget));
            }
        }
    }
    let q = queries as f64;
    let flooding: Vec<(f64, f64)> = (0..ttls)
        .map(|t| (flood_messages[t] / q, flood_hits[t] as f64 / q))
        .collect();
    let walks: Vec<(usize, Vec<(f64, f64)>)> = walkers
        .iter()
        .enumerate()
        .map(|(w, &k)| {
            let curve = (0..budgets.len())
                .map(|b| (walk_messages[w][b] / q, walk_hits[w][b] as f64 / q))
                .collect();
            (k, curve)
        })
        .collect();
    outcome(params, seed, &flooding, &walks)
}

/// The messages at which a (messages, success) curve, success non-decreasing, first reaches
/// `success`, linearly interpolated; `None` if it never does.
fn messages_for(curve: &[(f64, f64)], success: f64) -> Option<f64> {
    let i = curve.iter().position(|p| p.1 >= success)?;
    if i == 0 {
        return Some(curve[0].0);
    }
    let ((m0, s0), (m1, s1)) = (curve[i - 1], curve[i]);
    Some(if s1 > s0 {
        m0 + (m1 - m0) * (success - s0) / (s1 - s0)
    } else {
        m1
    })
}

const LV: &str = "Lv, Cao, Cohen, Li and Shenker, \"Search and replication in unstructured peer-to-peer \
                  networks\", ICS 2002: k-walker random walks with checking reach flooding's success with \
                  about an order of magnitude fewer messages";

fn outcome(params: &Params, seed: u64, flooding: &[(f64, f64)], walks: &[(usize, Vec<(f64, f64)>)]) -> Outcome {
    let mut measurements = Vec::new();
    for (t, &(messages, success)) in flooding.iter().enumerate() {
        measurements.push(measurement(
            format!("flood_success_ttl{}", t + 1),
            format!("flooding success rate, TTL {}", t + 1),
            success,
            "",
            None,
        ));
        measurements.push(measurement(
            format!("flood_messages_ttl{}", t + 1),
            format!("flooding messages per query, TTL {}", t + 1),
            messages,
            "messages",
            None,
        ));
    }
    // The comparison point: flooding's smallest TTL that reaches the target success.
    let target = flooding.iter().enumerate().find(|(_, p)| p.1 >= params.target_success);
    if let Some((t, &(flood_messages, flood_success))) = target {
        measurements.push(measurement(
            "flood_ttl_at_target",
            format!("smallest TTL whose flooding success reaches {}", params.target_success),
            (t + 1) as f64,
            "",
            None,
        ));
        measurements.push(measurement(
            "flood_success_at_target",
            "flooding success at that TTL",
            flood_success,
            "",
            None,
        ));
        for (k, curve) in walks {
            if let Some(walk_messages) = messages_for(curve, flood_success) {
                measurements.push(measurement(
                    format!("walk_messages_at_target_k{k}"),
                    format!("{k}-walker messages per query for flooding's success at TTL {}", t + 1),
                    walk_messages,
                    "messages",
                    None,
                ));
                measurements.push(measurement(
                    format!("messages_ratio_k{k}"),
                    format!("flooding messages over {k}-walker messages at equal success"),
                    flood_messages / walk_messages.max(1e-9),
                    "",
                    Some((10.0, LV)),
                ));
            }
        }
    }
    let mut series = vec![Series {
        name: "flooding (TTL 1, 2, ...)".to_string(),
        style: SeriesStyle::Line,
        points: flooding.to_vec(),
    }];
    series.extend(walks.iter().map(|(k, curve)| Series {
        name: format!("{k} random walkers"),
        style: SeriesStyle::Line,
        points: curve.clone(),
    }));
    let mut rows: Vec<Vec<String>> = flooding
        .iter()
        .enumerate()
        .map(|(t, p)| {
            vec![
                "flooding".into(),
                format!("TTL {}", t + 1),
                format!("{:.1}", p.0),
                format!("{:.3}", p.1),
            ]
        })
        .collect();
    for (k, curve) in walks {
        for (budget, p) in params.step_budgets.iter().zip(curve) {
            rows.push(vec![
                format!("{k} walkers"),
                format!("{budget} steps"),
                format!("{:.1}", p.0),
                format!("{:.3}", p.1),
            ]);
        }
    }
    Outcome {
        experiment: "flooding-vs-random-walks".to_string(),
        title: "Flooding vs random walks on an unstructured overlay".to_string(),
        summary: format!(
            "An Erdős–Rényi overlay of {} nodes with mean degree {}; each of {} queries (seed {seed}) looks \
             for a fresh object held by {} % of the nodes. Flooding runs with TTL 1 to {}; k random \
             walkers (k = {:?}) check with the source every {} steps, with step budgets {:?}. After Lv et al. \
             (ICS 2002).",
            params.nodes,
            params.mean_degree,
            params.queries,
            100.0 * params.replication,
            params.max_ttl,
            params.walkers,
            params.check_every,
            params.step_budgets,
        ),
        measurements,
        figures: vec![Figure {
            id: "success-vs-messages".to_string(),
            title: "Search success against messages per query".to_string(),
            x_label: "messages per query".to_string(),
            y_label: "success rate".to_string(),
            x_log: true,
            y_log: false,
            series,
        }],
        tables: vec![Table {
            id: "search-configurations".to_string(),
            title: "Every search configuration".to_string(),
            columns: ["method", "limit", "messages per query", "success rate"]
                .map(String::from)
                .to_vec(),
            rows,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(o: &Outcome, name: &str) -> f64 {
        o.measurement(name).map(|m| m.value).expect("measurement present")
    }

    fn small() -> Params {
        Params {
            nodes: 3000,
            queries: 100,
            ..Params::default()
        }
    }

    #[test]
    fn flooding_success_and_cost_grow_with_the_ttl() {
        let o = run(&small(), 1);
        let success: Vec<f64> = (1..=7).map(|t| value(&o, &format!("flood_success_ttl{t}"))).collect();
        let messages: Vec<f64> = (1..=7).map(|t| value(&o, &format!("flood_messages_ttl{t}"))).collect();
        assert!(success.windows(2).all(|w| w[0] <= w[1]), "{success:?}");
        assert!(messages.windows(2).all(|w| w[0] < w[1]), "{messages:?}");
        // TTL 1 reaches the mean degree's worth of nodes: a few percent at 1 % replication.
        assert!(success[0] < 0.2 && success[6] > 0.9, "{success:?}");
        // TTL 1 sends one message per neighbour of the source: the mean degree.
        assert!((messages[0] - 4.0).abs() < 1.0, "{}", messages[0]);
    }

    #[test]
    fn random_walks_need_fewer_messages_for_flooding_success() {
        let o = run(&small(), 2);
        for k in [16, 32] {
            let ratio = value(&o, &format!("messages_ratio_k{k}"));
            assert!(ratio > 3.0, "k = {k}: {ratio}");
        }
        // More budget, more success, per walker count.
        let walks = &o.figures[0].series[1..];
        for s in walks {
            assert!(
                s.points.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 <= w[1].0),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn interpolation_finds_the_crossing() {
        let curve = [(10.0, 0.2), (20.0, 0.6), (40.0, 1.0)];
        assert_eq!(messages_for(&curve, 0.4), Some(15.0));
        assert_eq!(messages_for(&curve, 0.1), Some(10.0));
        assert_eq!(messages_for(&curve, 1.0), Some(40.0));
        assert_eq!(messages_for(&[(1.0, 0.5)], 0.9), None);
    }

    #[test]
    fn seeded_and_deterministic() {
        let params = Params {
            nodes: 1000,
            queries: 50,
            ..Params::default()
        };
        assert_eq!(run(&params, 9), run(&params, 9));
        assert_ne!(run(&params, 9).measurements, run(&params, 10).measurements);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for p in [
            Params {
                replication: 0.0,
                ..Params::default()
            },
            Params {
                step_budgets: vec![8, 4],
                ..Params::default()
            },
            Params {
                walkers: vec![],
                ..Params::default()
            },
            Params {
                nodes: 1,
                ..Params::default()
            },
        ] {
            assert!(p.validate().is_err(), "{p:?}");
        }
        Params::default().validate().expect("defaults are valid");
    }
}
