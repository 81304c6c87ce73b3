//! The authority's YAML configuration.
//!
//! ```yaml
//! nickname: auth1
//! listen: 127.0.9.1:7000          # HTTP API
//! data_dir: /var/lib/onionlab-dirauth
//! consensus_interval_secs: 300    # a fresh consensus at least this often
//! reachability_interval_secs: 120 # re-test every relay's OR port
//! descriptor_max_age_secs: 10800  # relays republish every hour
//! guard_min_uptime_secs: 3600     # no Guard flag before this
//! stable_min_uptime_secs: 3600
//! fast_min_bandwidth: 20480       # bytes/s
//! bad_exits: []                   # fingerprints flagged BadExit
//! authorities:                    # every voting authority, this one included (empty: vote alone)
//!   - address: 127.0.254.1:7000
//!     identity: 64 hex digits
//! vote_delay_ms: 10000            # after a period starts: fetch the others' votes
//! signature_delay_ms: 20000       # then: fetch the others' signatures
//! max_relays_per_ip: 2            # Sybil cap: more relays on one address are left out
//! unmeasured_bandwidth_cap: 20480 # weight of relays the scanner has not measured yet
//! measure_bandwidth: true         # run the bandwidth scanner
//! measure_interval_secs: 3600     # re-measure each relay this often
//! measure_bytes: 1048576          # bytes downloaded through the relay per measurement
//! cluster_alert_size: 4           # log when this many relays of one /24 appear within
//! cluster_window_secs: 600        #   this window
//! ```

pub use onionlab_link::config::AuthorityEntry;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Authority settings. Unknown fields are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// A name for people.
    #[serde(default = "default_nickname")]
    pub nickname: String,
    /// HTTP API address.
    pub listen: SocketAddr,
    /// Where the identity key is kept.
    pub data_dir: PathBuf,
    /// Seconds between consensuses (also their freshness; validity is three times this).
    #[serde(default = "default_interval")]
    pub consensus_interval_secs: u64,
    /// Seconds between reachability tests of every relay.
    #[serde(default = "default_reachability")]
    pub reachability_interval_secs: u64,
    /// Oldest descriptor accepted and kept.
    #[serde(default = "default_max_age")]
    pub descriptor_max_age_secs: u64,
    /// Uptime (since first successful test) before Guard.
    #[serde(default = "default_uptime")]
    pub guard_min_uptime_secs: u64,
    /// Uptime before Stable.
    #[serde(default = "default_uptime")]
    pub stable_min_uptime_secs: u64,
    /// Bandwidth (bytes/s) for Fast.
    #[serde(default = "default_fast")]
    pub fast_min_bandwidth: u64,
    /// Relays flagged BadExit by the operator (hex fingerprints).
    #[serde(default)]
    pub bad_exits: Vec<String>,
    /// Every voting authority, this one included; empty means this one alone.
    #[serde(default)]
    pub authorities: Vec<AuthorityEntry>,
    /// Milliseconds into a period before the other authorities' votes are fetched.
    #[serde(default = "default_vote_delay")]
    pub vote_delay_ms: u64,
    /// Milliseconds into a period before the other authorities' signatures are fetched.
    #[serde(default = "default_signature_delay")]
    pub signature_delay_ms: u64,
    /// Most relays listed per IP address (Sybil defence).
    #[serde(default = "default_per_ip")]
    pub max_relays_per_ip: usize,
    /// Weight (bytes/s) at most for relays not yet measured.
    #[serde(default = "default_fast")]
    pub unmeasured_bandwidth_cap: u64,
    /// Run the bandwidth scanner.
    #[serde(default = "default_true")]
    pub measure_bandwidth: bool,
    /// Seconds between measurements of one relay.
    #[serde(default = "default_uptime")]
    pub measure_interval_secs: u64,
    /// Bytes downloaded per measurement.
    #[serde(default = "default_measure_bytes")]
    pub measure_bytes: u64,
    /// Relays from one /24 first seen within `cluster_window_secs` that trigger an alert.
    #[serde(default = "default_cluster")]
    pub cluster_alert_size: usize,
    /// The window for `cluster_alert_size`.
    #[serde(default = "default_cluster_window")]
    pub cluster_window_secs: u64,
}

fn default_vote_delay() -> u64 {
    10_000
}
fn default_signature_delay() -> u64 {
    20_000
}
/// The per-address Sybil cap when a configuration gives none.
pub const DEFAULT_MAX_RELAYS_PER_IP: usize = 2;

fn default_per_ip() -> usize {
    DEFAULT_MAX_RELAYS_PER_IP
}
fn default_true() -> bool {
    true
}
fn default_measure_bytes() -> u64 {
    1 << 20
}
fn default_cluster() -> usize {
    4
}
fn default_cluster_window() -> u64 {
    600
}
fn default_nickname() -> String {
    "authority".into()
}
fn default_interval() -> u64 {
    300
}
fn default_reachability() -> u64 {
    120
}
fn default_max_age() -> u64 {
    3 * 3600
}
fn default_uptime() -> u64 {
    3600
}
fn default_fast() -> u64 {
    20 * 1024
}

impl AuthorityConfig {
    /// A configuration with defaults for everything but the address and data directory.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        AuthorityConfig {
            nickname: default_nickname(),
            listen,
            data_dir,
            consensus_interval_secs: default_interval(),
            reachability_interval_secs: default_reachability(),
            descriptor_max_age_secs: default_max_age(),
            guard_min_uptime_secs: default_uptime(),
            stable_min_uptime_secs: default_uptime(),
            fast_min_bandwidth: default_fast(),
            bad_exits: Vec::new(),
            authorities: Vec::new(),
            vote_delay_ms: default_vote_delay(),
            signature_delay_ms: default_signature_delay(),
            max_relays_per_ip: default_per_ip(),
            unmeasured_bandwidth_cap: default_fast(),
            measure_bandwidth: true,
            measure_interval_secs: default_uptime(),
            measure_bytes: default_measure_bytes(),
            cluster_alert_size: default_cluster(),
            cluster_window_secs: default_cluster_window(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrib_example_parses() {
        let cfg: AuthorityConfig =
            onionlab_link::config::parse(include_str!("../contrib/dirauth.yaml"), "dirauth.yaml").unwrap();
        assert_eq!(cfg.consensus_interval_secs, 300);
        let err = onionlab_link::config::parse::<AuthorityConfig>(
            "listen: 1.2.3.4:5
data_dir: /x
consensus_intervl: 3
",
            "a.yaml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
