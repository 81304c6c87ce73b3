//! Randomness for padding, circuit ids and path selection.
//!
//! Padding must be unpredictable (never zeros a next hop could read) and cheap, since every
//! cell carries some. A per-thread ChaCha20 keystream seeded once from the operating system
//! gives both; keys for handshakes and identities come straight from the OS instead
//! (see [`crate::keys`]).

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use std::cell::RefCell;

thread_local! {
    static STREAM: RefCell<ChaCha20> = RefCell::new(seeded());
}

fn seeded() -> ChaCha20 {
    let mut seed = [0u8; 44];
    os_fill(&mut seed);
    let (key, nonce) = seed.split_at(32);
    let mut key_arr = [0u8; 32];
    key_arr.copy_from_slice(key);
    let mut nonce_arr = [0u8; 12];
    nonce_arr.copy_from_slice(nonce);
    ChaCha20::new(&key_arr.into(), &nonce_arr.into())
}

/// Fills `buf` from the operating system's generator.
///
/// # Panics
/// If the operating system cannot supply randomness. Nothing here can go on safely without
/// it (keys and padding would be predictable), so this is the one deliberate panic.
pub fn os_fill(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// Fills `buf` with unpredictable bytes from the per-thread stream.
pub fn fill(buf: &mut [u8]) {
    buf.fill(0);
    STREAM.with(|s| s.borrow_mut().apply_keystream(buf));
}

/// A uniformly random u64.
pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

/// A source of uniform random numbers, so that path selection can be driven by a seed in
/// simulations and tests, and by [`ThreadRandom`] in daemons.
pub trait RandomSource {
    /// A uniform value in `0..n`; `n` is never zero.
    fn below(&mut self, n: u64) -> u64;
}

/// [`RandomSource`] backed by the per-thread unpredictable stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn below(&mut self, n: u64) -> u64 {
        // Rejection sampling removes modulo bias.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = u64();
            if v < zone {
                return v % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_not_constant() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 64]);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = ThreadRandom;
        for n in 1..200 {
            assert!(r.below(n) < n);
        }
    }
}
