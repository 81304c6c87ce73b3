//! Chord lookups (Stoica, Morris, Karger, Kaashoek and Balakrishnan, "Chord: a scalable
//! peer-to-peer lookup service for Internet applications", SIGCOMM 2001) on a 2^m ring.
//!
//! N nodes take uniformly random ids; a key belongs to its successor, the first node at or
//! after it. Node n's finger i is successor(n + 2^i), and its successor list holds the r nodes
//! after it. A lookup for key k at node n: if k ∈ (n, successor], the successor owns it;
//! otherwise n forwards to its closest finger preceding k. Each forward is a hop; the mean path
//! is about ½·log₂N (§6.3 of the paper).
//!
//! Failures without repair: a share f of the nodes fails at once and no table is fixed. A node
//! skips failed successors in its list; forwarding tries its fingers and successors preceding k
//! from the closest to k down, and each failed one it tries costs a timeout. A lookup fails when
//! a node on the path has no live successor and no live entry preceding the key. One node
//! loses all r successors with probability about f^r, and the key's live predecessor must not,
//! so success is at most about 1 − f^r; the last hops of a path run through several nodes close
//! to the key whose only entries before it are their successors, so it is lower, and the
//! successor list must grow like log N to keep lookups alive (Stoica et al., §5.3). Whatever a
//! lookup returns is the key's true live owner. Never: network latency.
//!
//! Churn with repair ([`churn`]): nodes join and fail all the time while each repairs its
//! successor list, predecessor and fingers by stabilising, and lookups run over those tables;
//! successor lists of 2 against longer ones, at several churn rates.

pub mod churn;

use serde::Deserialize;

use self::churn::{ChurnParams, ChurnResult};
use super::{ParamsError, mean, measurement, require, shuffle, stream};
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};
use onionlab_crawler::dht::space::SplitMix64;

/// Ring size, network sizes, lookups and the failure experiment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Bits m of the identifier ring (ids in 0..2^m), 8..=63.
    pub ring_bits: u32,
    /// Network sizes N for the path-length curve.
    pub node_counts: Vec<usize>,
    /// Lookups per network size and per failure setting, each from a random live node for a
    /// random key.
    pub lookups: usize,
    /// N for the failure experiment.
    pub failure_nodes: usize,
    /// Shares of nodes that fail, each in [0, 1).
    pub failed_fractions: Vec<f64>,
    /// Successor-list lengths r to compare under failures.
    pub successor_lists: Vec<usize>,
    /// The churn experiment.
    pub churn: ChurnParams,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            ring_bits: 32,
            node_counts: (4..=12).map(|b| 1 << b).collect(),
            lookups: 1000,
            failure_nodes: 1024,
            failed_fractions: vec![0.1, 0.2, 0.3, 0.4, 0.5],
            successor_lists: vec![2, 4, 8, 16],
            churn: ChurnParams::default(),
        }
    }
}

const MAX_NODES: usize = 1 << 20;

impl Params {
    /// Refuses parameters the model cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require((8..=63).contains(&self.ring_bits), "ring_bits", "must be in 8..=63")?;
        let fits = |n: usize| (2..=MAX_NODES).contains(&n) && (n as u64) <= (1u64 << self.ring_bits.min(63)) / 2;
        require(
            !self.node_counts.is_empty() && self.node_counts.iter().all(|&n| fits(n)),
            "node_counts",
            format!("each N must be in 2..={MAX_NODES} and at most half the ring"),
        )?;
        require(
            (1..=1_000_000).contains(&self.lookups),
            "lookups",
            "must be in 1..=1000000",
        )?;
        require(
            fits(self.failure_nodes),
            "failure_nodes",
            "must be in 2..=2^20 and at most half the ring",
        )?;
        require(
            self.failed_fractions.iter().all(|f| (0.0..1.0).contains(f)),
            "failed_fractions",
            "each must be in [0, 1)",
        )?;
        require(
            !self.successor_lists.is_empty() && self.successor_lists.iter().all(|&r| r >= 1 && r < self.failure_nodes),
            "successor_lists",
            "each r must be ≥ 1 and below failure_nodes",
        )?;
        self.churn.validate(self.ring_bits)
    }
}

/// A ring of nodes with their finger tables (as indices into the sorted ids).
struct Ring {
    ids: Vec<u64>,
    fingers: Vec<Vec<u32>>,
    mask: u64,
}

impl Ring {
    fn new(nodes: usize, bits: u32, rng: &mut SplitMix64) -> Ring {
        let mask = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let mut ids = std::collections::BTreeSet::new();
        // Bounded: N ≤ half the ring, so a draw is new with probability ≥ ½.
        for _ in 0..64 * nodes + 64 {
            if ids.len() == nodes {
                break;
            }
            ids.insert(rng.next_u64() & mask);
        }
        let ids: Vec<u64> = ids.into_iter().collect();
        let mut ring = Ring {
            ids,
            fingers: Vec::new(),
            mask,
        };
        ring.fingers = (0..ring.ids.len())
            .map(|j| {
                (0..bits)
                    .map(|i| ring.successor(ring.ids[j].wrapping_add(1 << i) & mask) as u32)
                    .collect()
            })
            .collect();
        ring
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The index of the first node at or after `key`.
    fn successor(&self, key: u64) -> usize {
        self.ids.partition_point(|&id| id < key) % self.len()
    }

    /// Clockwise distance from a to b.
    fn dist(&self, a: u64, b: u64) -> u64 {
        dist(self.mask, a, b)
    }

    /// key ∈ (a, b] clockwise (the whole ring when a = b).
    fn in_half_open(&self, key: u64, a: u64, b: u64) -> bool {
        in_half_open(self.mask, key, a, b)
    }
}

/// Clockwise distance from a to b on the ring of ids `0..=mask`.
fn dist(mask: u64, a: u64, b: u64) -> u64 {
    b.wrapping_sub(a) & mask
}

/// key ∈ (a, b] clockwise on the ring of ids `0..=mask` (the whole ring when a = b).
fn in_half_open(mask: u64, key: u64, a: u64, b: u64) -> bool {
    let (d, span) = (dist(mask, a, key), dist(mask, a, b));
    d != 0 && (span == 0 || d <= span)
}

/// How one lookup went.
struct Lookup {
    owner: Option<usize>,
    hops: usize,
    timeouts: usize,
}

/// Looks `key` up from node `start`; `alive` and `r` model failures (all alive: plain Chord).
fn lookup(ring: &Ring, alive: &[bool], r: usize, start: usize, key: u64) -> Lookup {
    let n = ring.len();
    let (mut cur, mut hops, mut timeouts) = (start, 0, 0);
    for _ in 0..=n {
        let id = ring.ids[cur];
        let successor = (1..=r.min(n - 1)).map(|k| (cur + k) % n).find(|&s| alive[s]);
        if let Some(s) = successor
            && ring.in_half_open(key, id, ring.ids[s])
        {
            return Lookup {
                owner: Some(s),
                hops,
                timeouts,
            };
        }
        // Entries strictly between this node and the key, closest to the key first.
        let mut candidates: Vec<usize> = ring.fingers[cur]
            .iter()
            .map(|&f| f as usize)
            .chain((1..=r.min(n - 1)).map(|k| (cur + k) % n))
            .filter(|&c| c != cur && ring.dist(id, ring.ids[c]) < ring.dist(id, key))
            .collect();
        candidates.sort_by_key(|&c| std::cmp::Reverse(ring.dist(id, ring.ids[c])));
        candidates.dedup();
        let mut next = None;
        for c in candidates {
            if alive[c] {
                next = Some(c);
                break;
            }
            timeouts += 1;
        }
        match next {
            Some(c) => {
                cur = c;
                hops += 1;
            }
            None => break,
        }
    }
    Lookup {
        owner: None,
        hops,
        timeouts,
    }
}

/// The index of the first live node at or after `key`.
fn live_owner(ring: &Ring, alive: &[bool], key: u64) -> Option<usize> {
    let first = ring.successor(key);
    (0..ring.len()).map(|k| (first + k) % ring.len()).find(|&i| alive[i])
}

/// Per failure setting: success rate, mean hops, mean timeouts.
struct Churned {
    fraction: f64,
    r: usize,
    success: f64,
    hops: f64,
    timeouts: f64,
}

/// Runs the path-length curve and the failure experiment (call [`Params::validate`] first;
/// invalid parameters give a meaningless but finite outcome, never a panic or a hang).
pub fn run(params: &Params, seed: u64) -> Outcome {
    let bits = params.ring_bits.clamp(8, 63);
    let half_ring = ((1u64 << bits) / 2) as usize;
    let size = |n: usize| n.clamp(2, MAX_NODES.min(half_ring));
    let lookups = params.lookups.clamp(1, 1_000_000);
    let mut paths = Vec::new();
    let mut correct = 0usize;
    let mut total = 0usize;
    for (i, &n) in params.node_counts.iter().enumerate() {
        let mut rng = stream(seed, 100 + i as u64);
        let ring = Ring::new(size(n), bits, &mut rng);
        let alive = vec![true; ring.len()];
        let mut hops = Vec::with_capacity(lookups);
        for _ in 0..lookups {
            let start = rng.below(ring.len() as u64) as usize;
            let key = rng.next_u64() & ring.mask;
            let found = lookup(&ring, &alive, 1, start, key);
            correct += usize::from(found.owner.is_some() && found.owner == live_owner(&ring, &alive, key));
            total += 1;
            hops.push(found.hops as f64);
        }
        paths.push((ring.len(), mean(&hops)));
    }
    let mut rng = stream(seed, 7);
    let ring = Ring::new(size(params.failure_nodes), bits, &mut rng);
    let mut order: Vec<usize> = (0..ring.len()).collect();
    shuffle(&mut order, &mut rng);
    let mut churned = Vec::new();
    for (fi, &fraction) in params.failed_fractions.iter().enumerate() {
        let failed = ((fraction.clamp(0.0, 0.99) * ring.len() as f64).round() as usize).min(ring.len() - 1);
        let mut alive = vec![true; ring.len()];
        for &i in &order[..failed] {
            alive[i] = false;
        }
        let live: Vec<usize> = (0..ring.len()).filter(|&i| alive[i]).collect();
        for &r in &params.successor_lists {
            let r = r.clamp(1, ring.len() - 1);
            // The same lookups for every r.
            let mut lookups_rng = stream(seed, 1000 + fi as u64);
            let (mut ok, mut hops, mut timeouts) = (0usize, Vec::new(), Vec::new());
            for _ in 0..lookups {
                let start = live[lookups_rng.below(live.len() as u64) as usize];
                let key = lookups_rng.next_u64() & ring.mask;
                let found = lookup(&ring, &alive, r, start, key);
                if found.owner.is_some() && found.owner == live_owner(&ring, &alive, key) {
                    ok += 1;
                    hops.push(found.hops as f64);
                }
                timeouts.push(found.timeouts as f64);
            }
            churned.push(Churned {
                fraction,
                r,
                success: ok as f64 / lookups as f64,
                hops: mean(&hops),
                timeouts: mean(&timeouts),
            });
        }
    }
    let no_failures = if total == 0 { 0.0 } else { correct as f64 / total as f64 };
    let mut under_churn = Vec::new();
    if params.churn.validate(bits).is_ok() {
        for (ci, &per_minute) in params.churn.per_minute.iter().enumerate() {
            for &r in &params.churn.successor_lists {
                // The same churn and lookup times for every r.
                let stream_id = 2000 + ci as u64;
                under_churn.push(churn::run_one(
                    &params.churn,
                    bits,
                    per_minute,
                    r.max(1),
                    seed,
                    stream_id,
                ));
            }
        }
    }
    outcome(params, seed, &paths, no_failures, &churned, &under_churn)
}

const STOICA: &str = "Stoica, Morris, Karger, Kaashoek and Balakrishnan, \"Chord\", SIGCOMM 2001, §6.3: mean \
                      path length ½·log₂N";

fn outcome(
    params: &Params,
    seed: u64,
    paths: &[(usize, f64)],
    no_failures: f64,
    churned: &[Churned],
    under_churn: &[ChurnResult],
) -> Outcome {
    let half_log = |n: usize| 0.5 * (n as f64).log2();
    let mut measurements: Vec<_> = paths
        .iter()
        .map(|&(n, hops)| {
            measurement(
                format!("mean_path_length_n{n}"),
                format!("mean lookup path length, N = {n}"),
                hops,
                "hops",
                Some((half_log(n), STOICA)),
            )
        })
        .collect();
    let large: Vec<f64> = paths
        .iter()
        .filter(|p| p.0 >= 256)
        .map(|&(n, hops)| 100.0 * (hops - half_log(n)).abs() / half_log(n))
        .collect();
    if !large.is_empty() {
        measurements.push(measurement(
            "max_path_error_n256_up",
            "largest relative gap between the mean path and ½·log₂N, N ≥ 256",
            large.iter().copied().fold(0.0, f64::max),
            "%",
            None,
        ));
    }
    measurements.push(measurement(
        "lookup_success_no_failures",
        "lookups that found the key's owner, no failures",
        no_failures,
        "",
        Some((
            1.0,
            "Chord's correctness: with correct successors every lookup succeeds (Stoica et al. 2001)",
        )),
    ));
    for c in churned {
        let pct = (100.0 * c.fraction).round() as u32;
        let tag = format!("r{}_f{pct}", c.r);
        let setting = format!("{pct} % of {} nodes failed, r = {}", params.failure_nodes, c.r);
        measurements.extend([
            measurement(
                format!("lookup_success_{tag}"),
                format!("lookups that found the key's live owner, {setting}"),
                c.success,
                "",
                None,
            ),
            measurement(
                format!("mean_path_length_{tag}"),
                format!("mean path of the successful lookups, {setting}"),
                c.hops,
                "hops",
                None,
            ),
            measurement(
                format!("mean_timeouts_{tag}"),
                format!("failed nodes tried per lookup, {setting}"),
                c.timeouts,
                "",
                None,
            ),
        ]);
    }
    let c = &params.churn;
    for u in under_churn {
        let tag = format!("r{}_m{}", u.r, u.per_minute);
        let setting = format!(
            "{} joins and {0} failures a minute among {} nodes stabilising every {} s, r = {}",
            u.per_minute, c.nodes, c.stabilize_secs, u.r
        );
        measurements.extend([
            measurement(
                format!("churn_lookup_success_{tag}"),
                format!("lookups that found the key's live owner, {setting}"),
                u.success,
                "",
                None,
            ),
            measurement(
                format!("churn_mean_timeouts_{tag}"),
                format!("dead nodes tried per lookup, {setting}"),
                u.timeouts,
                "",
                None,
            ),
        ]);
    }
    let churn_series = c
        .successor_lists
        .iter()
        .map(|&r| Series {
            name: format!("r = {r}"),
            style: SeriesStyle::Line,
            points: under_churn
                .iter()
                .filter(|u| u.r == r.max(1))
                .map(|u| (f64::from(u.per_minute), u.success))
                .collect(),
        })
        .collect();
    let churn_figure = Figure {
        id: "lookup-success-under-churn".to_string(),
        title: format!(
            "Lookup success under churn with repair (about {} nodes, stabilising every {} s)",
            c.nodes, c.stabilize_secs
        ),
        x_label: "joins (and failures) a minute".to_string(),
        y_label: "lookup success".to_string(),
        x_log: true,
        y_log: false,
        series: churn_series,
    };
    let path_figure = Figure {
        id: "path-length".to_string(),
        title: "Chord lookup path length against N".to_string(),
        x_label: "N (nodes)".to_string(),
        y_label: "mean path length (hops)".to_string(),
        x_log: true,
        y_log: false,
        series: vec![
            Series {
                name: "simulated".to_string(),
                style: SeriesStyle::Line,
                points: paths.iter().map(|&(n, h)| (n as f64, h)).collect(),
            },
            Series {
                name: "½·log₂N".to_string(),
                style: SeriesStyle::Reference,
                points: paths.iter().map(|&(n, _)| (n as f64, half_log(n))).collect(),
            },
        ],
    };
    let mut failure_series = Vec::new();
    for &r in &params.successor_lists {
        let mine: Vec<&Churned> = churned
            .iter()
            .filter(|c| c.r == r.clamp(1, params.failure_nodes.max(2) - 1))
            .collect();
        failure_series.push(Series {
            name: format!("r = {r}, simulated"),
            style: SeriesStyle::Line,
            points: mine.iter().map(|c| (c.fraction, c.success)).collect(),
        });
        failure_series.push(Series {
            name: format!("r = {r}, 1 − f^r (one node keeps a successor)"),
            style: SeriesStyle::Reference,
            points: mine
                .iter()
                .map(|c| (c.fraction, 1.0 - c.fraction.powi(c.r as i32)))
                .collect(),
        });
    }
    let failure_figure = Figure {
        id: "lookup-success-under-failures".to_string(),
        title: format!(
            "Lookup success when nodes fail without repair (N = {})",
            params.failure_nodes
        ),
        x_label: "share of nodes failed".to_string(),
        y_label: "lookup success".to_string(),
        x_log: false,
        y_log: false,
        series: failure_series,
    };
    let rows = churned
        .iter()
        .map(|c| {
            vec![
                format!("{:.2}", c.fraction),
                c.r.to_string(),
                format!("{:.4}", c.success),
                format!("{:.4}", 1.0 - c.fraction.powi(c.r as i32)),
                format!("{:.2}", c.hops),
                format!("{:.2}", c.timeouts),
            ]
        })
        .collect();
    Outcome {
        experiment: "chord-lookups".to_string(),
        title: "Chord lookups: path length and failures".to_string(),
        summary: format!(
            "Chord on a 2^{} ring with finger tables, N = {:?}, {} lookups each (seed {seed}), against \
             ½·log₂N. Then {} nodes, a share f ∈ {:?} of which fails with no repair, with successor \
             lists of r ∈ {:?}: lookup success against the estimate 1 − f^r, path length and timeouts. \
             Then churn with repair: about {} nodes, {:?} joins and as many failures a minute, each node \
             stabilising every {} s on average, {} lookups a minute over the nodes' own tables for {} \
             simulated seconds (the first {} not counted).",
            params.ring_bits,
            params.node_counts,
            params.lookups,
            params.failure_nodes,
            params.failed_fractions,
            params.successor_lists,
            c.nodes,
            c.per_minute,
            c.stabilize_secs,
            c.lookups_per_minute,
            c.duration_secs,
            2 * c.stabilize_secs,
        ),
        measurements,
        figures: vec![path_figure, failure_figure, churn_figure],
        tables: vec![
            Table {
                id: "failures".to_string(),
                title: "Lookups under failures".to_string(),
                columns: [
                    "failed share f",
                    "r",
                    "success",
                    "1 − f^r (upper estimate)",
                    "mean hops",
                    "mean timeouts",
                ]
                .map(String::from)
                .to_vec(),
                rows,
            },
            Table {
                id: "churn".to_string(),
                title: "Lookups under churn with repair".to_string(),
                columns: [
                    "joins a minute",
                    "mean lifetime (min)",
                    "r",
                    "lookups",
                    "success",
                    "mean timeouts",
                ]
                .map(String::from)
                .to_vec(),
                rows: under_churn
                    .iter()
                    .map(|u| {
                        vec![
                            u.per_minute.to_string(),
                            format!("{:.1}", c.nodes as f64 / f64::from(u.per_minute)),
                            u.r.to_string(),
                            u.lookups.to_string(),
                            format!("{:.4}", u.success),
                            format!("{:.2}", u.timeouts),
                        ]
                    })
                    .collect(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(o: &Outcome, name: &str) -> f64 {
        o.measurement(name).map(|m| m.value).expect("measurement present")
    }

    #[test]
    fn mean_path_is_half_log_n_and_lookups_succeed_without_failures() {
        let o = run(&Params::default(), 1);
        assert_eq!(value(&o, "lookup_success_no_failures"), 1.0);
        for b in 8..=12 {
            let n = 1usize << b;
            let hops = value(&o, &format!("mean_path_length_n{n}"));
            let want = 0.5 * b as f64;
            assert!(
                (hops - want).abs() / want < 0.15,
                "N = {n}: {hops} hops, ½·log₂N = {want}"
            );
        }
    }

    #[test]
    fn longer_successor_lists_survive_failures() {
        let o = run(&Params::default(), 2);
        let (r2, r8) = (value(&o, "lookup_success_r2_f20"), value(&o, "lookup_success_r8_f20"));
        // At most about 1 − 0.2² = 0.96 (lower: several nodes near the key need a live
        // successor), and 1 − 0.2⁸ ≈ 1.
        assert!((0.8..0.97).contains(&r2), "{r2}");
        assert!(r8 > 0.995, "{r8}");
        for r in [2, 4, 8, 16] {
            let f = 0.2f64;
            assert!(value(&o, &format!("lookup_success_r{r}_f20")) <= 1.0 - f.powi(r) + 0.01);
        }
        assert!(value(&o, "lookup_success_r2_f50") < value(&o, "lookup_success_r16_f50"));
        assert!(value(&o, "mean_timeouts_r8_f20") > 0.0);
    }

    #[test]
    fn half_open_intervals_wrap() {
        let mut rng = SplitMix64::new(1);
        let ring = Ring::new(16, 8, &mut rng);
        assert!(ring.in_half_open(5, 250, 10));
        assert!(ring.in_half_open(10, 250, 10));
        assert!(!ring.in_half_open(250, 250, 10));
        assert!(!ring.in_half_open(11, 250, 10));
        assert!(ring.in_half_open(7, 3, 3));
        assert!(!ring.in_half_open(3, 3, 3));
    }

    #[test]
    fn seeded_and_deterministic() {
        let params = Params {
            node_counts: vec![64, 256],
            lookups: 200,
            failure_nodes: 256,
            ..Params::default()
        };
        assert_eq!(run(&params, 4), run(&params, 4));
        assert_ne!(run(&params, 4).measurements, run(&params, 5).measurements);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for p in [
            Params {
                ring_bits: 64,
                ..Params::default()
            },
            Params {
                node_counts: vec![1],
                ..Params::default()
            },
            Params {
                failed_fractions: vec![1.0],
                ..Params::default()
            },
            Params {
                ring_bits: 8,
                ..Params::default()
            },
            Params {
                churn: ChurnParams {
                    duration_secs: 60,
                    ..ChurnParams::default()
                },
                ..Params::default()
            },
            Params {
                churn: ChurnParams {
                    successor_lists: vec![0],
                    ..ChurnParams::default()
                },
                ..Params::default()
            },
        ] {
            assert!(p.validate().is_err(), "{p:?}");
        }
        Params::default().validate().expect("defaults are valid");
    }
}
