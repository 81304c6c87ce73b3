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
    /// Exit streams open or connecting now.
    pub streams_open: AtomicU64,
    /// Cells held back by the bandwidth rate limit.
    pub bandwidth_delayed: AtomicU64,
    /// 1 while the accounting limit is reached, else 0.
    pub hibernating: AtomicU64,
    /// Bytes counted in the current accounting period.
    pub accounting_bytes: AtomicU64,
    /// CREATE2 refused while hibernating or shutting down.
    pub creates_refused_hibernating: AtomicU64,
    /// BEGIN refused while hibernating or shutting down.
    pub begins_refused_hibernating: AtomicU64,
    /// CREATE2 refused: the peer address had `max_circuits_per_client` circuits.
    pub creates_refused_per_address: AtomicU64,
    /// CREATE2 refused: `max_pending_creates` handshakes were waiting.
    pub creates_refused_busy: AtomicU64,
    /// Circuits destroyed to bring queued cells under `max_queued_cells`.
    pub circuits_killed_memory: AtomicU64,
    /// Cells waiting in circuit and link queues at the last check.
    pub queued_cells: AtomicU64,
    /// Onion keys replaced.
    pub onion_key_rotations: AtomicU64,
    /// Handshakes completed with the previous onion key (during its grace period).
    pub handshakes_previous_key: AtomicU64,
}

impl RelayStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
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
        )
        .gauge(
            "onionlab_relay_streams_open",
            "Exit streams open or connecting now.",
            g(&self.streams_open) as f64,
        )
        .counter(
            "onionlab_relay_bandwidth_delayed_cells_total",
            "Cells held back by the bandwidth rate limit.",
            g(&self.bandwidth_delayed),
        )
        .gauge(
            "onionlab_relay_hibernating",
            "1 while the accounting limit is reached.",
            g(&self.hibernating) as f64,
        )
        .gauge(
            "onionlab_relay_accounting_bytes",
            "Bytes counted in the current accounting period.",
            g(&self.accounting_bytes) as f64,
        )
        .counter(
            "onionlab_relay_creates_refused_hibernating_total",
            "CREATE2 refused while hibernating or shutting down.",
            g(&self.creates_refused_hibernating),
        )
        .counter(
            "onionlab_relay_begins_refused_hibernating_total",
            "BEGIN refused while hibernating or shutting down.",
            g(&self.begins_refused_hibernating),
        )
        .counter(
            "onionlab_relay_creates_refused_per_address_total",
            "CREATE2 refused: too many circuits from one peer address.",
            g(&self.creates_refused_per_address),
        )
        .counter(
            "onionlab_relay_creates_refused_busy_total",
            "CREATE2 refused: too many handshakes pending.",
            g(&self.creates_refused_busy),
        )
        .counter(
            "onionlab_relay_circuits_killed_memory_total",
            "Circuits destroyed to keep queued cells under the ceiling.",
            g(&self.circuits_killed_memory),
        )
        .gauge(
            "onionlab_relay_queued_cells",
            "Cells waiting in circuit and link queues.",
            g(&self.queued_cells) as f64,
        )
        .counter(
            "onionlab_relay_onion_key_rotations_total",
            "Onion keys replaced.",
            g(&self.onion_key_rotations),
        )
        .counter(
            "onionlab_relay_handshakes_previous_key_total",
            "Handshakes completed with the previous onion key.",
            g(&self.handshakes_previous_key),
        );
        e.finish()
    }
}
