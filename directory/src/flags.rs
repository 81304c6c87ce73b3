//! How an authority assigns flags. Each rule, as documented on [`assign`]:
//!
//! | flag | rule |
//! |---|---|
//! | Running | the last reachability test of the OR port (TLS + LINK_AUTH with the descriptor's identity) succeeded |
//! | Valid | the descriptor verified and is fresh (listed relays are always Valid) |
//! | Fast | weight ≥ `fast_min_bandwidth` (measured bandwidth, or advertised capped at `unmeasured_bandwidth_cap`) |
//! | Stable | reachable for at least `stable_min_uptime_secs` |
//! | Guard | Fast, and reachable for at least `guard_min_uptime_secs` |
//! | Exit | the exit policy allows port 80 or 443 to some public address |
//! | BadExit | the operator listed the fingerprint in `bad_exits` |

use crate::config::AuthorityConfig;
use onionlab_proto::consensus::Flags;
use onionlab_proto::descriptor::RelayInfo;
use onionlab_proto::keys::fingerprint;

/// Flags for a relay with this `weight` (bytes/s) that has passed every reachability test for
/// the last `uptime` seconds.
pub fn assign(info: &RelayInfo, weight: u64, uptime: u64, cfg: &AuthorityConfig) -> Flags {
    let mut f = Flags::RUNNING;
    f.insert(Flags::VALID);
    let fast = weight >= cfg.fast_min_bandwidth;
    if fast {
        f.insert(Flags::FAST);
    }
    if uptime >= cfg.stable_min_uptime_secs {
        f.insert(Flags::STABLE);
    }
    if fast && uptime >= cfg.guard_min_uptime_secs {
        f.insert(Flags::GUARD);
    }
    if info.exit_policy.allows_port(80) || info.exit_policy.allows_port(443) {
        f.insert(Flags::EXIT);
    }
    let fp = fingerprint(&info.identity);
    if cfg.bad_exits.iter().any(|b| b.eq_ignore_ascii_case(&fp)) {
        f.insert(Flags::BAD_EXIT);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use onionlab_proto::exit_policy::ExitPolicy;

    fn info(bw: u64, policy: ExitPolicy) -> RelayInfo {
        RelayInfo {
            nickname: "r".into(),
            identity: [1; 32],
            onion_key: [2; 32],
            or_addr: "127.0.0.1:1".parse().unwrap(),
            bandwidth: bw,
            exit_policy: policy,
            family: vec![],
        }
    }

    #[test]
    fn flags_follow_the_documented_rules() {
        let mut cfg = AuthorityConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp".into());
        let slow_new = assign(&info(10, ExitPolicy::reject_all()), 10, 0, &cfg);
        assert_eq!(slow_new.names(), vec!["Running", "Valid"]);
        let fast_old_exit = assign(&info(1 << 20, ExitPolicy::default_exit()), 1 << 20, 7200, &cfg);
        assert_eq!(
            fast_old_exit.names(),
            vec!["Running", "Valid", "Fast", "Stable", "Guard", "Exit"]
        );
        cfg.bad_exits.push(fingerprint(&[1; 32]));
        assert!(assign(&info(1 << 20, ExitPolicy::default_exit()), 1 << 20, 0, &cfg).contains(Flags::BAD_EXIT));
    }
}
