//! How many nodes a DHT has, from one crawl.
//!
//! Two numbers: the distinct ids the crawl saw (a lower bound), and a density estimate. If N ids
//! are uniform in the key space, the XOR distances from a fixed key to them, as fractions of
//! 2¹⁶⁰, are N uniform draws on [0, 1), so the k-th smallest, d_k, is about Gamma(k, N)
//! distributed (the Poisson approximation). Over T independent keys, Σ d_k is Gamma(kT, N) and
//! (kT − 1) / Σ d_k is an unbiased estimate of N. This is the nearest-neighbour form of the
//! zone-density estimates of DHT size (compare Wang and Kangasharju, "Measuring large-scale
//! distributed systems: case of BitTorrent Mainline DHT", IEEE P2P 2013).
//!
//! The keys must be random and independent of the ids (not ids from the crawl), and the crawl
//! must have found every node near each key (a complete lookup): a missed neighbour lengthens
//! d_k and lowers the estimate.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::krpc::NodeId;

/// The size estimates of [`estimate_size`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeEstimate {
    /// Distinct ids seen.
    pub distinct_ids: usize,
    /// (kT − 1) / Σ d_k over the T keys.
    pub density_estimate: f64,
}

/// Why [`estimate_size`] could not estimate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SizeError {
    /// k is 0, or k × keys is below 2 (the estimator needs kT ≥ 2).
    #[error("need k ≥ 1 and k × keys ≥ 2, got k = {k} with {keys} keys")]
    TooFewSamples {
        /// The k given.
        k: usize,
        /// The number of keys given.
        keys: usize,
    },
    /// Fewer distinct ids than k.
    #[error("need at least k = {k} distinct ids, got {ids}")]
    TooFewIds {
        /// The k given.
        k: usize,
        /// Distinct ids.
        ids: usize,
    },
    /// Every k-th closest id coincides with its key (only possible for k = 1).
    #[error("every k-th closest id equals its key: the distances carry no information")]
    ZeroDistance,
}

/// The XOR distance between `a` and `b` as a fraction of 2¹⁶⁰, in [0, 1] (its top 128 bits,
/// far beyond the 53 an f64 keeps).
pub fn xor_fraction(a: &[u8; 20], b: &[u8; 20]) -> f64 {
    let mut x = [0u8; 16];
    for (o, (p, q)) in x.iter_mut().zip(a.iter().zip(b)) {
        *o = p ^ q;
    }
    u128::from_be_bytes(x) as f64 / 2f64.powi(128)
}

/// Estimates the network size from the crawled `ids` and the k-th closest id to each of `keys`.
pub fn estimate_size(ids: &[NodeId], keys: &[[u8; 20]], k: usize) -> Result<SizeEstimate, SizeError> {
    if k == 0 || k.saturating_mul(keys.len()) < 2 {
        return Err(SizeError::TooFewSamples { k, keys: keys.len() });
    }
    let distinct: Vec<NodeId> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if distinct.len() < k {
        return Err(SizeError::TooFewIds { k, ids: distinct.len() });
    }
    let mut distances = vec![0.0; distinct.len()];
    let mut sum = 0.0;
    for key in keys {
        for (d, id) in distances.iter_mut().zip(&distinct) {
            *d = xor_fraction(&id.0, key);
        }
        let (_, kth, _) = distances.select_nth_unstable_by(k - 1, f64::total_cmp);
        sum += *kth;
    }
    if sum <= 0.0 {
        return Err(SizeError::ZeroDistance);
    }
    let samples = (k * keys.len()) as f64;
    Ok(SizeEstimate {
        distinct_ids: distinct.len(),
        density_estimate: (samples - 1.0) / sum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testutil::Rng;

    fn random_ids(rng: &mut Rng, n: usize) -> Vec<NodeId> {
        (0..n).map(|_| NodeId(rng.bytes20())).collect()
    }

    #[test]
    fn xor_fraction_bounds() {
        assert_eq!(xor_fraction(&[7; 20], &[7; 20]), 0.0);
        let mut far = [0u8; 20];
        far[0] = 0x80;
        assert_eq!(xor_fraction(&[0; 20], &far), 0.5);
        assert!(xor_fraction(&[0; 20], &[0xff; 20]) <= 1.0);
    }

    /// 20 000 uniform ids, 200 keys, k = 8: kT = 1600, so the estimate's relative standard
    /// deviation is 1/√1600 = 2.5%; the tolerance is 10% (4 sd).
    #[test]
    fn density_estimate_recovers_the_size() {
        let mut rng = Rng::new(42);
        let n = 20_000;
        let ids = random_ids(&mut rng, n);
        let keys: Vec<[u8; 20]> = (0..200).map(|_| rng.bytes20()).collect();
        let est = estimate_size(&ids, &keys, 8).unwrap();
        assert_eq!(est.distinct_ids, n);
        let rel = (est.density_estimate - n as f64).abs() / n as f64;
        assert!(rel < 0.10, "estimate {} for {n}", est.density_estimate);
    }

    /// A crawl that saw only every other node estimates about half the network: the estimate
    /// measures the density of what the crawl found.
    #[test]
    fn a_half_crawl_estimates_half() {
        let mut rng = Rng::new(7);
        let ids = random_ids(&mut rng, 20_000);
        let half: Vec<NodeId> = ids.iter().step_by(2).copied().collect();
        let keys: Vec<[u8; 20]> = (0..200).map(|_| rng.bytes20()).collect();
        let est = estimate_size(&half, &keys, 8).unwrap().density_estimate;
        assert!((est - 10_000.0).abs() < 1_000.0, "{est}");
    }

    #[test]
    fn duplicates_count_once() {
        let mut rng = Rng::new(3);
        let ids = random_ids(&mut rng, 100);
        let doubled: Vec<NodeId> = ids.iter().chain(&ids).copied().collect();
        let keys = [rng.bytes20(), rng.bytes20()];
        assert_eq!(estimate_size(&doubled, &keys, 4), estimate_size(&ids, &keys, 4));
    }

    #[test]
    fn refuses_what_it_cannot_estimate() {
        let id = NodeId([1; 20]);
        assert_eq!(
            estimate_size(&[id], &[[0; 20]], 0),
            Err(SizeError::TooFewSamples { k: 0, keys: 1 })
        );
        assert_eq!(
            estimate_size(&[id], &[[0; 20]], 1),
            Err(SizeError::TooFewSamples { k: 1, keys: 1 })
        );
        assert_eq!(
            estimate_size(&[id], &[], 8),
            Err(SizeError::TooFewSamples { k: 8, keys: 0 })
        );
        assert_eq!(
            estimate_size(&[id], &[[0; 20]], 2),
            Err(SizeError::TooFewIds { k: 2, ids: 1 })
        );
        assert_eq!(
            estimate_size(&[id], &[[1; 20], [1; 20]], 1),
            Err(SizeError::ZeroDistance)
        );
    }
}
