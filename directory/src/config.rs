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
//! ```

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
