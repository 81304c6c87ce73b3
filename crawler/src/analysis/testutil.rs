//! A small seeded PRNG for the analyses' tests (SplitMix64: fast, deterministic, good enough for
//! Monte Carlo checks), so the tests need no new dependency.

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); `n` > 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Exponential with the given rate.
    pub(crate) fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }

    pub(crate) fn bytes20(&mut self) -> [u8; 20] {
        let mut out = [0u8; 20];
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        out
    }

    /// A random unicast IPv4 address with first octet in 11..=222 outside 127, 169, 172 and 192,
    /// so never in a range BEP 42 exempts.
    pub(crate) fn public_v4(&mut self) -> std::net::Ipv4Addr {
        loop {
            let r = self.next_u64().to_be_bytes();
            let first = 11 + r[0] % 212;
            if ![127, 169, 172, 192].contains(&first) {
                return std::net::Ipv4Addr::new(first, r[1], r[2], r[3]);
            }
        }
    }
}
