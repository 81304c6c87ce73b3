//! The DHT key space: 160-bit ids under the XOR metric (BEP 5). Distances, shared prefixes, targets
//! inside one k-bucket of a node, BEP 42 ids for an address, and the small seeded PRNG the
//! simulator and the crawl draw ids and targets from.
//!
//! Bit 0 is the most significant bit of byte 0: "sharing a prefix of d bits" and "bucket d" both
//! count from there, as the routing tables of BEP 5 do.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::krpc::{NodeId, bep42_prefix};

/// The XOR distance of `a` and `b`, as 20 big-endian bytes (compare them as bytes).
pub fn distance(a: &NodeId, b: &NodeId) -> [u8; 20] {
    let mut d = [0u8; 20];
    for (o, (x, y)) in d.iter_mut().zip(a.0.iter().zip(b.0.iter())) {
        *o = x ^ y;
    }
    d
}

/// Orders `a` and `b` by their distance to `target` (closer first).
pub fn cmp_distance(target: &NodeId, a: &NodeId, b: &NodeId) -> Ordering {
    for ((t, x), y) in target.0.iter().zip(a.0.iter()).zip(b.0.iter()) {
        let (dx, dy) = (t ^ x, t ^ y);
        if dx != dy {
            return dx.cmp(&dy);
        }
    }
    Ordering::Equal
}

/// How many leading bits `a` and `b` share (160 when equal).
pub fn prefix_len(a: &NodeId, b: &NodeId) -> u32 {
    for (i, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return i as u32 * 8 + d.leading_zeros();
        }
    }
    160
}

/// `id` with bit `bit` (0 = most significant) inverted. Bits past 159 leave `id` unchanged.
pub fn flip_bit(id: &NodeId, bit: u32) -> NodeId {
    let mut out = *id;
    if let Some(byte) = out.0.get_mut((bit / 8) as usize) {
        *byte ^= 0x80 >> (bit % 8);
    }
    out
}

/// A target in bucket `depth` of a node with id `id`: it shares exactly `depth` leading bits with
/// `id`, and the bits after the first difference are random. The `k` closest nodes to it that the
/// node knows are that bucket's entries, when the bucket holds at least `k`.
pub fn bucket_target(id: &NodeId, depth: u32, rng: &mut SplitMix64) -> NodeId {
    if depth >= 160 {
        return *id;
    }
    let mut out = rng.node_id();
    for bit in 0..=depth {
        let (byte, mask) = ((bit / 8) as usize, 0x80u8 >> (bit % 8));
        let want = if bit == depth { !id.0[byte] } else { id.0[byte] };
        out.0[byte] = (out.0[byte] & !mask) | (want & mask);
    }
    out
}

/// The distance of `a` and `b` as a fraction of the key space, in [0, 1).
pub fn distance_fraction(a: &NodeId, b: &NodeId) -> f64 {
    let d = distance(a, b);
    let hi = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let lo = u64::from_be_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]);
    (hi as f64 + lo as f64 / 18_446_744_073_709_551_616.0) / 18_446_744_073_709_551_616.0
}

/// A BEP 42 id for `ip`: the prefix derived from the address and a random byte, the rest random.
pub fn bep42_id(ip: IpAddr, rng: &mut SplitMix64) -> NodeId {
    let mut id = rng.node_id();
    let prefix = bep42_prefix(ip, id.0[19]);
    id.0[0] = prefix[0];
    id.0[1] = prefix[1];
    id.0[2] = prefix[2] | (id.0[2] & 0x07);
    id
}

/// Whether `id` carries the BEP 42 prefix of `ip`, even where BEP 42 exempts the address (as it
/// does all of 127/8: a loopback testbed whose honest nodes comply can still tell them apart).
pub fn bep42_matches(ip: IpAddr, id: &NodeId) -> bool {
    let want = bep42_prefix(ip.to_canonical(), id.0[19]);
    id.0[0] == want[0] && id.0[1] == want[1] && id.0[2] & 0xf8 == want[2]
}

/// SplitMix64: a tiny, fast, seedable generator. Not for secrets; the same seed always gives the
/// same stream, on every platform and version, which is what seeded simulations need.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A generator seeded from the operating system (falls back to the clock if that fails).
    pub fn from_entropy() -> Self {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            b = (nanos as u64).to_le_bytes();
        }
        SplitMix64(u64::from_le_bytes(b))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }

    /// A uniformly random id.
    pub fn node_id(&mut self) -> NodeId {
        let mut id = [0u8; 20];
        self.fill(&mut id);
        NodeId(id)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::krpc::{Bep42, bep42_check};

    #[test]
    fn prefixes_and_flips() {
        let a = NodeId([0u8; 20]);
        assert_eq!(prefix_len(&a, &a), 160);
        for bit in [0, 1, 7, 8, 100, 159] {
            let b = flip_bit(&a, bit);
            assert_eq!(prefix_len(&a, &b), bit);
            assert_eq!(flip_bit(&b, bit), a);
        }
        assert_eq!(flip_bit(&a, 160), a);
    }

    #[test]
    fn bucket_targets_share_exactly_depth_bits() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..200 {
            let id = rng.node_id();
            let depth = rng.below(160) as u32;
            assert_eq!(prefix_len(&id, &bucket_target(&id, depth, &mut rng)), depth);
        }
    }

    #[test]
    fn distance_order_and_fraction() {
        let t = NodeId([0u8; 20]);
        let near = flip_bit(&t, 100);
        let far = flip_bit(&t, 0);
        assert_eq!(cmp_distance(&t, &near, &far), Ordering::Less);
        assert_eq!(cmp_distance(&t, &far, &far), Ordering::Equal);
        assert!((distance_fraction(&t, &far) - 0.5).abs() < 1e-12);
        assert!(distance_fraction(&t, &near) < 1e-20);
    }

    #[test]
    fn bep42_ids_check_out() {
        let mut rng = SplitMix64::new(1);
        let public = IpAddr::V4(Ipv4Addr::new(124, 31, 75, 21));
        let id = bep42_id(public, &mut rng);
        assert_eq!(bep42_check(public, &id), Bep42::Valid);
        assert!(bep42_matches(public, &id));
        let lo = IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3));
        let id = bep42_id(lo, &mut rng);
        assert!(bep42_matches(lo, &id));
        assert!(!bep42_matches(lo, &NodeId([0xAA; 20])));
    }

    #[test]
    fn seeded_streams_repeat() {
        let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
        assert_eq!(a.node_id(), b.node_id());
        assert!(a.below(10) < 10);
        assert_eq!(a.below(0), 0);
    }
}
