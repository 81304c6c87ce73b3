//! Relay counters, served as Prometheus text on `metrics_listen`. They count events, never
//! who or where: no addresses, no destinations.

use onionlab_link::metrics::Exposition;
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
    /// Relay cells handled travelling away from clients.
    pub cells_forward: AtomicU64,
    /// Relay cells sent towards clients (passed on or originated here).
    pub cells_backward: AtomicU64,
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

    /// The Prometheus page.
    pub fn render(&self) -> String {
        let g = Self::get;
        let cell_bytes = onionlab_proto::cell::CELL_LEN as u64;
        let mut e = Exposition::new();
        e.counter(
            "onionlab_relay_circuits_created_total",
            "Circuits created by CREATE2.",
            g(&self.circuits_created),
        )
        .gauge(
            "onionlab_relay_circuits_open",
            "Circuits open now.",
            g(&self.circuits_open) as f64,
        )
        .counter(
            "onionlab_relay_handshake_failures_total",
            "CREATE2 handshakes refused.",
            g(&self.handshake_failures),
        )
        .counter(
            "onionlab_relay_extends_total",
            "Circuits extended to a next relay.",
            g(&self.extends),
        )
        .counter(
            "onionlab_relay_begin_hostname_total",
            "BEGIN requests naming a hostname.",
            g(&self.begin_hostname),
        )
        .counter(
            "onionlab_relay_begin_address_total",
            "BEGIN requests naming an address.",
            g(&self.begin_address),
        )
        .counter(
            "onionlab_relay_streams_connected_total",
            "Exit streams connected.",
            g(&self.streams_connected),
        )
        .counter(
            "onionlab_relay_exit_policy_rejects_total",
            "BEGIN refused by the exit policy.",
            g(&self.exit_policy_rejects),
        )
        .counter(
            "onionlab_relay_protocol_violations_total",
            "Circuits closed for protocol violations or floods.",
            g(&self.protocol_violations),
        )
        .counter(
            "onionlab_relay_cells_forward_total",
            "Relay cells travelling away from clients.",
            g(&self.cells_forward),
        )
        .counter(
            "onionlab_relay_cells_backward_total",
            "Relay cells travelling towards clients.",
            g(&self.cells_backward),
        )
        .counter(
            "onionlab_relay_bytes_forward_total",
            "Bytes of relay cells away from clients.",
            g(&self.cells_forward) * cell_bytes,
        )
        .counter(
            "onionlab_relay_bytes_backward_total",
            "Bytes of relay cells towards clients.",
            g(&self.cells_backward) * cell_bytes,
        );
        e.finish()
    }
}
