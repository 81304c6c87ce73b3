//! The client's YAML configuration.
//!
//! ```yaml
//! socks_listen: 127.0.0.1:9050       # loopback only
//! http_connect_listen: 127.0.0.1:9080 # HTTP CONNECT proxy (loopback only; optional, off by default)
//! data_dir: ~/.local/share/onionlab-client  # state.json (guards), cached-consensus
//! authorities:                       # a consensus needs valid signatures from more than half
//!   - address: 127.0.9.1:7000
//!     identity: 64 hex digits
//! enforce_distinct_subnets: true     # no two relays of a path in one /16
//! use_entry_guards: true             # enter through the persisted guards (false: a fresh entry per circuit)
//! circuit_max_dirtiness_secs: 600    # new streams stop using a circuit this long after its first
//! stream_timeout_secs: 15            # wait for CONNECTED (or RESOLVED) before retrying / failing
//! circuit_build_timeout_secs: 30     # the most a build may take; less once build times are learned
//! preemptive_ports: [80, 443]        # keep a clean circuit ready for each ([] for none)
//! metrics_listen: 127.0.0.1:9036     # Prometheus /metrics (loopback only; optional)
//! ```

pub use onionlab_link::config::AuthorityEntry;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Client settings. Unknown fields are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// SOCKS5 listener; must be a loopback address.
    #[serde(default = "default_socks")]
    pub socks_listen: SocketAddr,
    /// HTTP CONNECT listener (none by default); must be a loopback address.
    #[serde(default)]
    pub http_connect_listen: Option<SocketAddr>,
    /// Where the guards (`state.json`) and the cached consensus are kept.
    pub data_dir: PathBuf,
    /// Trusted authorities.
    pub authorities: Vec<AuthorityEntry>,
    /// Refuse two relays of a path in one IPv4 /16.
    #[serde(default = "default_true")]
    pub enforce_distinct_subnets: bool,
    /// Enter the network through the persisted guards (Tor's `UseEntryGuards`). Off, each
    /// circuit's first hop is drawn afresh, bandwidth-weighted, from the Guard relays: over
    /// many circuits a client then meets every hostile entry eventually. For experiments.
    #[serde(default = "default_true")]
    pub use_entry_guards: bool,
    /// Seconds a circuit takes new streams after its first one.
    #[serde(default = "default_dirtiness")]
    pub circuit_max_dirtiness_secs: u64,
    /// Seconds to wait for CONNECTED.
    #[serde(default = "default_stream_timeout")]
    pub stream_timeout_secs: u64,
    /// Seconds a circuit build may take at most; the limit learned from observed build
    /// times is usually lower (see `build_timeout`).
    #[serde(default = "default_build_timeout")]
    pub circuit_build_timeout_secs: u64,
    /// Ports for which a clean circuit is kept ready in the default isolation group.
    #[serde(default = "default_preemptive_ports")]
    pub preemptive_ports: Vec<u16>,
    /// Prometheus `/metrics` address (loopback only; none by default).
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

fn default_socks() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9050))
}
fn default_true() -> bool {
    true
}
fn default_dirtiness() -> u64 {
    600
}
fn default_stream_timeout() -> u64 {
    15
}
fn default_build_timeout() -> u64 {
    30
}
fn default_preemptive_ports() -> Vec<u16> {
    vec![80, 443]
}

impl ClientConfig {
    /// A configuration with defaults.
    pub fn new(data_dir: PathBuf, authorities: Vec<AuthorityEntry>) -> Self {
        ClientConfig {
            socks_listen: default_socks(),
            http_connect_listen: None,
            data_dir,
            authorities,
            enforce_distinct_subnets: true,
            use_entry_guards: true,
            circuit_max_dirtiness_secs: default_dirtiness(),
            stream_timeout_secs: default_stream_timeout(),
            circuit_build_timeout_secs: default_build_timeout(),
            preemptive_ports: default_preemptive_ports(),
            metrics_listen: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrib_example_parses() {
        let cfg: ClientConfig =
            onionlab_link::config::parse(include_str!("../contrib/client.yaml"), "client.yaml").unwrap();
        assert!(cfg.socks_listen.ip().is_loopback());
        assert!(cfg.http_connect_listen.is_some_and(|a| a.ip().is_loopback()));
        assert_eq!(cfg.authorities.len(), 1);
        assert_eq!(cfg.preemptive_ports, vec![80, 443]);
    }
}
