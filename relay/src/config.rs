//! The relay's YAML configuration.
//!
//! ```yaml
//! nickname: myrelay
//! or_listen: 0.0.0.0:9001          # where links are accepted
//! advertise: 203.0.113.5:9001      # address in the descriptor (default: or_listen)
//! data_dir: /var/lib/onionlab-relay
//! bandwidth: 10485760              # bytes/s offered (the consensus weight, for now)
//! exit: false                      # carry streams out to the Internet?
//! exit_policy: ["accept *:80", "accept *:443"]   # used when exit: true
//! exit_policy_reject_private: true # put `reject private:*` first (Tor's ExitPolicyRejectPrivate)
//! family: []                       # fingerprints of your other relays
//! contact: "you@example.org"
//! publish_interval_secs: 3600
//! hosts: {}                        # names this exit resolves itself (test networks)
//! system_resolver: true            # resolve other names with the system resolver
//! outbound_bind: null              # source address for exit connections
//! metrics_listen: 127.0.0.1:9035   # Prometheus /metrics (loopback only)
//! authorities:
//!   - address: 198.51.100.7:7000
//!     identity: 64 hex digits
//! ```

pub use onionlab_link::config::AuthorityEntry;
use onionlab_proto::exit_policy::{ExitPolicy, PolicyError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Relay settings. Unknown fields are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// 1–19 letters and digits.
    pub nickname: String,
    /// Address links are accepted on.
    pub or_listen: SocketAddr,
    /// Address published in the descriptor, when it differs (NAT, 0.0.0.0 binds).
    #[serde(default)]
    pub advertise: Option<SocketAddr>,
    /// Where keys are kept.
    pub data_dir: PathBuf,
    /// Bytes per second offered.
    #[serde(default = "default_bandwidth")]
    pub bandwidth: u64,
    /// Be an exit.
    #[serde(default)]
    pub exit: bool,
    /// Exit policy lines (torrc syntax), used when `exit` is true.
    #[serde(default = "default_policy")]
    pub exit_policy: Vec<String>,
    /// Put `reject private:*` before the policy.
    #[serde(default = "default_true")]
    pub exit_policy_reject_private: bool,
    /// Fingerprints of the operator's other relays.
    #[serde(default)]
    pub family: Vec<String>,
    /// Operator contact.
    #[serde(default)]
    pub contact: String,
    /// Authorities to publish to.
    pub authorities: Vec<AuthorityEntry>,
    /// Seconds between descriptor uploads.
    #[serde(default = "default_publish")]
    pub publish_interval_secs: u64,
    /// Names the exit resolves without DNS (test networks: a demo site's name).
    #[serde(default)]
    pub hosts: BTreeMap<String, IpAddr>,
    /// Resolve names not in `hosts` with the system resolver (off in offline test networks,
    /// where a lookup must fail at once instead of waiting for an unreachable DNS server).
    #[serde(default = "default_true")]
    pub system_resolver: bool,
    /// Prometheus `/metrics` address (loopback only; none by default).
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Source address for exit connections (default: chosen by the OS).
    #[serde(default)]
    pub outbound_bind: Option<IpAddr>,
}

fn default_bandwidth() -> u64 {
    10 * 1024 * 1024
}
fn default_policy() -> Vec<String> {
    vec!["accept *:*".into()]
}
fn default_true() -> bool {
    true
}
fn default_publish() -> u64 {
    3600
}

impl RelayConfig {
    /// A non-exit relay configuration with defaults.
    pub fn new(nickname: &str, or_listen: SocketAddr, data_dir: PathBuf, authorities: Vec<AuthorityEntry>) -> Self {
        RelayConfig {
            nickname: nickname.into(),
            or_listen,
            advertise: None,
            data_dir,
            bandwidth: default_bandwidth(),
            exit: false,
            exit_policy: default_policy(),
            exit_policy_reject_private: true,
            family: Vec::new(),
            contact: String::new(),
            authorities,
            publish_interval_secs: default_publish(),
            hosts: BTreeMap::new(),
            system_resolver: true,
            metrics_listen: None,
            outbound_bind: None,
        }
    }

    /// The effective exit policy: reject-all for non-exits; otherwise the lines, with
    /// `reject private:*` first unless turned off.
    pub fn effective_policy(&self) -> Result<ExitPolicy, PolicyError> {
        if !self.exit {
            return Ok(ExitPolicy::reject_all());
        }
        let mut lines: Vec<&str> = Vec::new();
        if self.exit_policy_reject_private {
            lines.push("reject private:*");
        }
        lines.extend(self.exit_policy.iter().map(String::as_str));
        ExitPolicy::parse_lines(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_policies_apply() {
        let yaml = "nickname: r1\nor_listen: 127.0.0.1:9001\ndata_dir: /tmp/r1\nexit: true\nauthorities:\n  - address: 127.0.0.1:7000\n    identity: \"00\"\n";
        let cfg: RelayConfig = onionlab_link::config::parse(yaml, "r1.yaml").unwrap();
        let p = cfg.effective_policy().unwrap();
        assert!(!p.allows("127.0.0.1".parse().unwrap(), 80));
        assert!(p.allows("1.1.1.1".parse().unwrap(), 80));
        assert!(cfg.authorities[0].identity_bytes().is_err());
        let bad = onionlab_link::config::parse::<RelayConfig>("nickname: r1\nor_lisen: 1\n", "bad.yaml")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("line 2"), "{bad}");
    }

    #[test]
    fn contrib_example_parses() {
        let cfg: RelayConfig =
            onionlab_link::config::parse(include_str!("../contrib/relay.yaml"), "relay.yaml").unwrap();
        assert!(
            cfg.effective_policy().unwrap().rules.is_empty(),
            "a non-exit rejects everything"
        );
    }
}
