//! Ids packed near a key, tested against chance.
//!
//! If N ids are uniform in the 160-bit space, the number C_b that share at least b leading bits
//! with a fixed key is Binomial(N, 2⁻ᵇ), here approximated by Poisson(N/2ᵇ) (close when 2⁻ᵇ is
//! small, conservative otherwise, as the Poisson tail is the heavier). The p-value of an observed
//! count is its Poisson upper tail, corrected (Bonferroni) for the depths and cells tested. The
//! ids given are the ones observed, so a partial crawl only makes the test more conservative.

use super::{SybilError, check_network_size};
use crate::analysis::special::ln_poisson_tail;
use crate::krpc::NodeId;

/// The statistics of one cluster: `count` ids share at least `bits` leading bits with `key`,
/// where chance predicts `expected`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterStats {
    /// The key (for a prefix cluster, the prefix padded with zero bits).
    pub key: [u8; 20],
    /// Leading bits shared with the key.
    pub bits: u32,
    /// Distinct ids sharing them.
    pub count: usize,
    /// N / 2^bits.
    pub expected: f64,
    /// The natural log of the corrected p-value (kept as a log: far tails underflow an f64).
    pub ln_p_value: f64,
}

impl ClusterStats {
    /// The corrected p-value (0 when it underflows).
    pub fn p_value(&self) -> f64 {
        self.ln_p_value.exp()
    }
}

/// A cluster and its member ids (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Its statistics.
    pub stats: ClusterStats,
    /// The ids in it.
    pub members: Vec<NodeId>,
}

/// Leading bits `a` and `b` share (160 when equal).
pub fn common_prefix_len(a: &[u8; 20], b: &[u8; 20]) -> u32 {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let diff = x ^ y;
        if diff != 0 {
            return i as u32 * 8 + diff.leading_zeros();
        }
    }
    160
}

/// The first depth worth testing: below log₂ N, chance alone puts many ids in every prefix.
fn first_depth(network_size: f64) -> u32 {
    (network_size.log2().floor() as u32).clamp(1, 160)
}

/// The most significant depth around `key`: for each depth b from ⌊log₂ N⌋ to 160, counts the
/// distinct ids sharing at least b bits with `key`, and returns the depth whose Poisson tail is
/// smallest (the deeper on a tie), Bonferroni-corrected for the number of depths tested.
/// Compare its p-value with a significance level to decide. `None` when no id reaches the first
/// depth tested.
///
/// The members are the ids at that depth: a cluster spread over several depths may come back as
/// its densest part.
pub fn densest_near(ids: &[NodeId], key: &[u8; 20], network_size: f64) -> Result<Option<Cluster>, SybilError> {
    check_network_size(network_size)?;
    Ok(densest_in_sorted(&sorted_distinct(ids), key, network_size))
}

pub(super) fn sorted_distinct(ids: &[NodeId]) -> Vec<NodeId> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// [`densest_near`] over sorted distinct ids, where the ids sharing b bits with the key are the
/// contiguous range between the key's prefix padded with zeros and padded with ones.
pub(super) fn densest_in_sorted(sorted: &[NodeId], key: &[u8; 20], network_size: f64) -> Option<Cluster> {
    let first = first_depth(network_size);
    let ln_tests = f64::from(161 - first).ln();
    let mut best: Option<(ClusterStats, usize, usize)> = None;
    for bits in first..=160 {
        let (low, high) = (masked(key, bits, false), masked(key, bits, true));
        let lo = sorted.partition_point(|id| id.0 < low);
        let hi = sorted.partition_point(|id| id.0 <= high);
        let count = hi - lo;
        if count == 0 {
            break;
        }
        let expected = network_size / 2f64.powi(bits as i32);
        let ln_p_value = (ln_poisson_tail(expected, count) + ln_tests).min(0.0);
        if best.is_none_or(|(b, _, _)| ln_p_value <= b.ln_p_value) {
            best = Some((
                ClusterStats {
                    key: *key,
                    bits,
                    count,
                    expected,
                    ln_p_value,
                },
                lo,
                hi,
            ));
        }
    }
    best.map(|(stats, lo, hi)| Cluster {
        stats,
        members: sorted[lo..hi].to_vec(),
    })
}

/// A run of sorted ids sharing a prefix at one depth, with its corrected log p-value and the
/// smallest log p-value of any significant run nested inside it.
struct Run {
    start: usize,
    end: usize,
    ln_p: f64,
    best_inside: f64,
}

/// Scans all ids for prefixes holding more ids than chance allows, without a key: for each depth
/// d from ⌊log₂ N⌋ to ⌊log₂ N⌋ + `extra_bits` (at most 160), the ids sharing a d-bit prefix are
/// counted against Poisson(N/2ᵈ), Bonferroni-corrected for the 2ᵈ prefixes and the depths
/// tested. Of nested significant prefixes, the one with the smallest p-value is reported (the
/// deeper on a tie), so honest ids sharing a short prefix with a tight cluster are left out.
/// Clusters come back in id order.
pub fn scan_clusters(
    ids: &[NodeId],
    network_size: f64,
    extra_bits: u32,
    alpha: f64,
) -> Result<Vec<Cluster>, SybilError> {
    check_network_size(network_size)?;
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(SybilError::Alpha(alpha));
    }
    let sorted = sorted_distinct(ids);
    let shared: Vec<u32> = sorted.windows(2).map(|w| common_prefix_len(&w[0].0, &w[1].0)).collect();
    let first = first_depth(network_size);
    let last = first.saturating_add(extra_bits).min(160);
    let ln_alpha = alpha.ln();
    let ln_depths = f64::from(last - first + 1).ln();

    // Bottom-up: runs of two or more ids per depth, deepest first, each knowing the best
    // significant run nested in it.
    let mut levels: Vec<Vec<Run>> = Vec::new();
    for depth in (first..=last).rev() {
        let expected = network_size / 2f64.powi(depth as i32);
        let ln_tests = f64::from(depth) * std::f64::consts::LN_2 + ln_depths;
        let deeper = levels.last().map(Vec::as_slice).unwrap_or_default();
        let mut child = 0;
        let mut runs = Vec::new();
        let mut start = 0;
        while start < shared.len() {
            if shared[start] < depth {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < shared.len() && shared[end] >= depth {
                end += 1;
            }
            // Ids start..=end share `depth` bits.
            let ln_p = (ln_poisson_tail(expected, end + 1 - start) + ln_tests).min(0.0);
            let mut best_inside = f64::INFINITY;
            while child < deeper.len() && deeper[child].start <= end {
                let c = &deeper[child];
                let own = if c.ln_p < ln_alpha { c.ln_p } else { f64::INFINITY };
                best_inside = best_inside.min(own).min(c.best_inside);
                child += 1;
            }
            runs.push(Run {
                start,
                end: end + 1,
                ln_p,
                best_inside,
            });
            start = end + 1;
        }
        levels.push(runs);
    }

    // Top-down: report a significant run that beats everything nested in it, unless a run
    // around it was reported already.
    let mut covered = vec![false; sorted.len()];
    let mut out = Vec::new();
    for (level, depth) in levels.iter().rev().zip(first..) {
        for run in level {
            if run.ln_p < ln_alpha && run.ln_p < run.best_inside && !covered[run.start] {
                covered[run.start..run.end].iter_mut().for_each(|c| *c = true);
                out.push(Cluster {
                    stats: ClusterStats {
                        key: masked(&sorted[run.start].0, depth, false),
                        bits: depth,
                        count: run.end - run.start,
                        expected: network_size / 2f64.powi(depth as i32),
                        ln_p_value: run.ln_p,
                    },
                    members: sorted[run.start..run.end].to_vec(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.members.first().cmp(&b.members.first()));
    Ok(out)
}

/// The first `bits` bits of `id`, the rest zeros (or ones, with `ones`).
fn masked(id: &[u8; 20], bits: u32, ones: bool) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, (o, b)) in out.iter_mut().zip(id).enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        *o = (b & mask) | if ones { !mask } else { 0 };
    }
    out
}
