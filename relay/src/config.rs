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
//! outbound_bind: null              # source address for links to relays and exit connections
//! metrics_listen: 127.0.0.1:9035   # Prometheus /metrics (loopback only)
//! authorities:
//!   - address: 198.51.100.7:7000
//!     identity: 64 hex digits
//!
//! # Operating limits (all optional; defaults shown)
//! bandwidth_rate: null             # bytes/s relayed (token bucket rate); null: unlimited
//! bandwidth_burst: null            # bytes the bucket holds; null: one second at bandwidth_rate
//! accounting_max_bytes: null       # bytes relayed per period before hibernating; null: no limit
//! accounting_start_day: 1          # day of month (1-28, 00:00 UTC) a period starts
//! onion_key_lifetime_secs: 604800  # rotate the ntor onion key after 7 days
//! onion_key_grace_secs: 86400      # keep accepting the previous one for 1 day
//! shutdown_grace_secs: 30          # on SIGTERM, let streams finish for up to this long
//! max_circuits_per_client: 1024    # open circuits per link peer address
//! max_pending_creates: 256         # CREATE2 handshakes queued or being computed
//! max_queued_cells: 262144         # cells waiting in circuit and link queues (514 bytes each)
//! ```
//!
//! On SIGHUP the relay reloads the file (see [`RelayConfig::reloaded`]): everything applies at
//! once except the fields that bind sockets, files, queues or the accounting period, which keep
//! their old values until a restart.

pub use onionlab_link::config::AuthorityEntry;
use onionlab_proto::cell::CELL_LEN;
use onionlab_proto::exit_policy::{ExitPolicy, PolicyError};
use onionlab_proto::keys::parse_fingerprint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use thiserror::Error;

/// Relay settings. Unknown fields are errors.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// Source address for outgoing connections, links to relays and exit streams alike
    /// (default: chosen by the OS).
    #[serde(default)]
    pub outbound_bind: Option<IpAddr>,
    /// Relayed bytes per second, the token bucket's rate (none: unlimited).
    #[serde(default)]
    pub bandwidth_rate: Option<u64>,
    /// The token bucket's size in bytes, the largest burst (none: one second at the rate).
    #[serde(default)]
    pub bandwidth_burst: Option<u64>,
    /// Bytes relayed per accounting period before the relay hibernates (none: no accounting).
    #[serde(default)]
    pub accounting_max_bytes: Option<u64>,
    /// Day of the month (1–28) at 00:00 UTC when an accounting period starts.
    #[serde(default = "default_start_day")]
    pub accounting_start_day: u8,
    /// Age at which the onion key is replaced.
    #[serde(default = "default_key_lifetime")]
    pub onion_key_lifetime_secs: u64,
    /// How long the previous onion key still completes handshakes after a rotation.
    #[serde(default = "default_key_grace")]
    pub onion_key_grace_secs: u64,
    /// Longest a shutdown waits for streams to finish.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Most circuits open at once from one link peer address (other relays extending many
    /// clients' circuits count as one address too, hence the generous default).
    #[serde(default = "default_circuits_per_client")]
    pub max_circuits_per_client: usize,
    /// Most CREATE2 handshakes queued or being computed.
    #[serde(default = "default_pending_creates")]
    pub max_pending_creates: usize,
    /// Most cells waiting in circuit inboxes and link queues together; above it the circuits
    /// with the most queued cells are destroyed.
    #[serde(default = "default_queued_cells")]
    pub max_queued_cells: usize,
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

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
fn default_start_day() -> u8 {
    1
}
fn default_key_lifetime() -> u64 {
    7 * 86_400
}
fn default_key_grace() -> u64 {
    86_400
}
fn default_shutdown_grace() -> u64 {
    30
}
fn default_circuits_per_client() -> usize {
    1024
}
fn default_pending_creates() -> usize {
    256
}
fn default_queued_cells() -> usize {
    256 * 1024
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
            bandwidth_rate: None,
            bandwidth_burst: None,
            accounting_max_bytes: None,
            accounting_start_day: default_start_day(),
            onion_key_lifetime_secs: default_key_lifetime(),
            onion_key_grace_secs: default_key_grace(),
            shutdown_grace_secs: default_shutdown_grace(),
            max_circuits_per_client: default_circuits_per_client(),
            max_pending_creates: default_pending_creates(),
            max_queued_cells: default_queued_cells(),
        }
    }

    /// Checks what serde cannot: names, fingerprints, the policy and the limits. Returns the
    /// effective exit policy.
    pub fn validate(&self) -> Result<ExitPolicy, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if !onionlab_proto::descriptor::valid_nickname(&self.nickname) {
            return err(format!("nickname {:?} must be 1-19 letters and digits", self.nickname));
        }
        for a in &self.authorities {
            if let Err(e) = a.identity_bytes() {
                return err(format!("authority {}: {e}", a.address));
            }
        }
        if self.family.len() > onionlab_proto::descriptor::MAX_FAMILY {
            return err(format!(
                "at most {} family members",
                onionlab_proto::descriptor::MAX_FAMILY
            ));
        }
        for f in &self.family {
            if let Err(e) = parse_fingerprint(f) {
                return err(format!("family member {f:?}: {e}"));
            }
        }
        let cell = CELL_LEN as u64;
        if self.bandwidth_rate.is_some_and(|r| r < cell) {
            return err(format!("bandwidth_rate must be at least one cell ({cell} bytes/s)"));
        }
        match (self.bandwidth_rate, self.bandwidth_burst) {
            (None, Some(_)) => return err("bandwidth_burst needs bandwidth_rate".into()),
            (_, Some(b)) if b < cell => {
                return err(format!("bandwidth_burst must be at least one cell ({cell} bytes)"));
            }
            _ => {}
        }
        if !(1..=28).contains(&self.accounting_start_day) {
            return err("accounting_start_day must be 1-28".into());
        }
        if self.onion_key_lifetime_secs == 0 || self.onion_key_grace_secs > self.onion_key_lifetime_secs {
            return err("onion_key_lifetime_secs must be positive and at least onion_key_grace_secs".into());
        }
        if self.max_circuits_per_client == 0 || self.max_pending_creates == 0 || self.max_queued_cells == 0 {
            return err("max_circuits_per_client, max_pending_creates and max_queued_cells must be positive".into());
        }
        self.effective_policy().map_err(|e| ConfigError(e.to_string()))
    }

    /// The bucket's (rate, burst), if rate limiting is on.
    pub fn rate_limit(&self) -> Option<(u64, u64)> {
        self.bandwidth_rate
            .map(|rate| (rate, self.bandwidth_burst.unwrap_or(rate)))
    }

    /// The configuration a reload to `new` gives: `new`, except for the fields that only a
    /// restart can change (`or_listen`, `advertise`, `data_dir`, `metrics_listen`,
    /// `outbound_bind`, the accounting period and limit, `max_pending_creates`), which keep their
    /// values from `self`; and the names of those that `new` wanted to change.
    pub fn reloaded(&self, new: RelayConfig) -> (RelayConfig, Vec<&'static str>) {
        let mut out = new;
        let mut ignored = Vec::new();
        macro_rules! keep {
            ($($field:ident),*) => {$(
                if out.$field != self.$field {
                    ignored.push(stringify!($field));
                    out.$field = self.$field.clone();
                }
            )*};
        }
        keep!(
            or_listen,
            advertise,
            data_dir,
            metrics_listen,
            outbound_bind,
            accounting_max_bytes,
            accounting_start_day,
            max_pending_creates
        );
        (out, ignored)
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
    fn yaml_policy_with_ipv6_rules_and_port_ranges_applies() {
        let yaml = r#"
nickname: v6exit
or_listen: "[::]:9001"
data_dir: /tmp/v6exit
exit: true
exit_policy:
  - "reject [2001:db8::]/32:*"
  - "accept [::]/0:8000-8100"
  - accept 198.51.100.0/24:20-23
  - "reject *:*"
authorities: []
"#;
        let cfg: RelayConfig = onionlab_link::config::parse(yaml, "v6.yaml").unwrap();
        let p = cfg.validate().unwrap();
        let allows = |ip: &str, port| p.allows(ip.parse().unwrap(), port);
        assert!(
            allows("2606:4700::1", 8000) && allows("2606:4700::1", 8100),
            "range ends"
        );
        assert!(
            !allows("2606:4700::1", 7999) && !allows("2606:4700::1", 8101),
            "outside the range"
        );
        assert!(!allows("2001:db8::5", 8050), "the /32 reject comes first");
        assert!(!allows("::1", 8050), "reject private:* is put first");
        assert!(!allows("203.0.113.9", 8050), "an IPv6 rule does not match IPv4");
        assert!(allows("198.51.100.77", 22) && !allows("198.51.100.77", 24));
        assert!(p.allows_port(8080) && !p.allows_port(443));
        assert_eq!(
            p.to_lines()[1..3],
            ["reject [2001:db8::]/32:*", "accept [::]/0:8000-8100"],
            "canonical lines for the descriptor"
        );
    }

    #[test]
    fn limits_are_checked() {
        let base = RelayConfig::new("r1", "127.0.0.1:0".parse().unwrap(), "/tmp/r1".into(), Vec::new());
        assert!(base.validate().is_ok());
        let broken: [fn(&mut RelayConfig); 7] = [
            |c| c.bandwidth_rate = Some(100),
            |c| c.bandwidth_burst = Some(100_000),
            |c| c.accounting_start_day = 29,
            |c| c.onion_key_grace_secs = c.onion_key_lifetime_secs + 1,
            |c| c.max_queued_cells = 0,
            |c| c.family = vec!["abc".into()],
            |c| c.nickname = "no spaces".into(),
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut c = base.clone();
            breaks(&mut c);
            assert!(c.validate().is_err(), "case {i}");
        }
        let mut c = base.clone();
        c.bandwidth_rate = Some(1_000_000);
        assert_eq!(
            c.rate_limit(),
            Some((1_000_000, 1_000_000)),
            "burst defaults to one second"
        );
    }

    #[test]
    fn reload_keeps_what_needs_a_restart() {
        let old = RelayConfig::new("r1", "127.0.0.1:9001".parse().unwrap(), "/tmp/r1".into(), Vec::new());
        let mut new = old.clone();
        new.or_listen = "127.0.0.1:9002".parse().unwrap();
        new.accounting_max_bytes = Some(1 << 30);
        new.contact = "new".into();
        new.bandwidth_rate = Some(1 << 20);
        let (merged, ignored) = old.reloaded(new);
        assert_eq!(ignored, ["or_listen", "accounting_max_bytes"]);
        assert_eq!((merged.or_listen, merged.accounting_max_bytes), (old.or_listen, None));
        assert_eq!((merged.contact.as_str(), merged.bandwidth_rate), ("new", Some(1 << 20)));
    }

    #[test]
    fn contrib_example_parses() {
        let cfg: RelayConfig =
            onionlab_link::config::parse(include_str!("../contrib/relay.yaml"), "relay.yaml").unwrap();
        assert!(
            cfg.validate().unwrap().rules.is_empty(),
            "a non-exit rejects everything"
        );
        assert_eq!(cfg.rate_limit(), Some((5 << 20, 10 << 20)));
        assert_eq!(cfg.accounting_max_bytes, Some(1 << 40));
        let defaults = RelayConfig::new("d", cfg.or_listen, cfg.data_dir.clone(), Vec::new());
        let documented = (
            cfg.onion_key_lifetime_secs,
            cfg.onion_key_grace_secs,
            cfg.shutdown_grace_secs,
            cfg.max_circuits_per_client,
            cfg.max_pending_creates,
            cfg.max_queued_cells,
        );
        let default = (
            defaults.onion_key_lifetime_secs,
            defaults.onion_key_grace_secs,
            defaults.shutdown_grace_secs,
            defaults.max_circuits_per_client,
            defaults.max_pending_creates,
            defaults.max_queued_cells,
        );
        assert_eq!(documented, default, "the example shows the defaults");
        let exit = RelayConfig { exit: true, ..cfg };
        let policy = exit.validate().unwrap();
        assert!(policy.allows("2606:4700::1".parse().unwrap(), 8080));
    }
}
