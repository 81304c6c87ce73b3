//! Client counters, served as Prometheus text on `metrics_listen`. No destinations, no
//! credentials: only how many and how long.

use onionlab_link::metrics::Exposition;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Monotonic counters.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// SOCKS connections accepted.
    pub socks_connections: AtomicU64,
    /// HTTP CONNECT connections accepted.
    pub http_connect_connections: AtomicU64,
    /// Names asked to be resolved (SOCKS RESOLVE).
    pub resolves: AtomicU64,
    /// Streams that reached CONNECTED.
    pub streams_opened: AtomicU64,
    /// Requests (SOCKS, HTTP CONNECT) answered with a failure.
    pub stream_failures: AtomicU64,
    /// Requests retried on a fresh circuit.
    pub stream_retries: AtomicU64,
    /// Circuits built.
    pub circuits_built: AtomicU64,
    /// Circuit builds that failed (timeouts included).
    pub circuit_build_failures: AtomicU64,
    /// Circuit builds abandoned at the learned build timeout.
    pub circuit_build_timeouts: AtomicU64,
}

impl ClientStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus page; `builds` are the build times so far, `build_timeout` the
    /// current circuit build timeout.
    pub fn render(&self, builds: &[Duration], build_timeout: Duration) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut sorted = builds.to_vec();
        sorted.sort();
        let median = sorted.get(sorted.len() / 2).map_or(0.0, Duration::as_secs_f64);
        let mut e = Exposition::new();
        e.counter(
            "onionlab_client_socks_connections_total",
            "SOCKS connections accepted.",
            g(&self.socks_connections),
        )
        .counter(
            "onionlab_client_http_connect_connections_total",
            "HTTP CONNECT connections accepted.",
            g(&self.http_connect_connections),
        )
        .counter(
            "onionlab_client_resolves_total",
            "Names sent to an exit to resolve (SOCKS RESOLVE).",
            g(&self.resolves),
        )
        .counter(
            "onionlab_client_streams_opened_total",
            "Streams connected through a circuit.",
            g(&self.streams_opened),
        )
        .counter(
            "onionlab_client_stream_failures_total",
            "SOCKS and HTTP CONNECT requests answered with an error.",
            g(&self.stream_failures),
        )
        .counter(
            "onionlab_client_stream_retries_total",
            "Requests retried on a fresh circuit.",
            g(&self.stream_retries),
        )
        .counter(
            "onionlab_client_circuits_built_total",
            "Circuits built.",
            g(&self.circuits_built),
        )
        .counter(
            "onionlab_client_circuit_build_failures_total",
            "Circuit builds that failed.",
            g(&self.circuit_build_failures),
        )
        .counter(
            "onionlab_client_circuit_build_timeouts_total",
            "Circuit builds abandoned at the learned build timeout.",
            g(&self.circuit_build_timeouts),
        )
        .gauge(
            "onionlab_client_circuit_build_seconds_median",
            "Median circuit build time.",
            median,
        )
        .gauge(
            "onionlab_client_circuit_build_timeout_seconds",
            "Current circuit build timeout (learned from build times).",
            build_timeout.as_secs_f64(),
        );
        e.finish()
    }
}
