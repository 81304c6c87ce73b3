//! Relay counters. They count events, never who or where: no addresses, no destinations.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters, readable while the relay runs.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// CREATE2 handshakes completed.
    pub circuits_created: AtomicU64,
    /// Circuits currently open.
    pub circuits_open: AtomicU64,
    /// CREATE2 handshakes that failed.
    pub handshake_failures: AtomicU64,
    /// EXTEND2 requests that reached the next relay.
    pub extends: AtomicU64,
    /// BEGIN requests naming a hostname (resolved here, at the exit).
    pub begin_hostname: AtomicU64,
    /// BEGIN requests naming an address.
    pub begin_address: AtomicU64,
    /// Streams connected at this exit.
    pub streams_connected: AtomicU64,
    /// BEGIN refused by the exit policy.
    pub exit_policy_rejects: AtomicU64,
    /// Circuits closed for breaking the protocol or flooding.
    pub protocol_violations: AtomicU64,
}

impl RelayStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
