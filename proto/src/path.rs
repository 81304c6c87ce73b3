//! Path selection: which three relays a circuit uses.
//!
//! Rules (Tor's, simplified): the exit is chosen first among Running, Exit, non-BadExit relays
//! whose policy allows the target (by address and port when the address is known, by port
//! alone for hostnames, which only the exit resolves); the guard is the client's persisted
//! guard; the middle is any other Running relay. Choices are weighted by consensus bandwidth.
//! No two relays of a path share an identity, a declared family, or (when
//! [`PathRules::enforce_distinct_subnets`] is on, the default) an IPv4 /16 or IPv6 /32.
//! Test networks where every relay is on 127.0.x.1 turn the subnet rule off, as Tor's
//! `EnforceDistinctSubnets 0` does.

use crate::consensus::{Consensus, ConsensusRelay, Flags};
use crate::random::RandomSource;
use crate::relay_msg::{Target, TargetHost};
use std::net::IpAddr;
use thiserror::Error;

/// Knobs of path selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// Refuse two relays in one IPv4 /16 (IPv6 /32).
    pub enforce_distinct_subnets: bool,
}

impl Default for PathRules {
    fn default() -> Self {
        PathRules {
            enforce_distinct_subnets: true,
        }
    }
}

/// No path could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    /// No usable relay allows this port (or address).
    #[error("no exit relay in the consensus allows this destination")]
    NoExit,
    /// No guard candidate.
    #[error("no usable guard relay in the consensus")]
    NoGuard,
    /// No relay fits in the middle.
    #[error("no middle relay compatible with the guard and exit")]
    NoMiddle,
}

fn subnet(ip: IpAddr) -> (bool, u32) {
    match ip {
        IpAddr::V4(a) => (true, u32::from(a) >> 16),
        IpAddr::V6(a) => (false, (u128::from(a) >> 96) as u32),
    }
}

/// May `a` and `b` be on one path?
pub fn compatible(a: &ConsensusRelay, b: &ConsensusRelay, rules: PathRules) -> bool {
    a.info.identity != b.info.identity
        && !a.info.same_family(&b.info)
        && !(rules.enforce_distinct_subnets && subnet(a.info.or_addr.ip()) == subnet(b.info.or_addr.ip()))
}

/// Does `relay`'s policy let it carry a stream to `target`?
pub fn exit_allows(relay: &ConsensusRelay, target: &Target) -> bool {
    match &target.host {
        TargetHost::Ip(ip) => relay.info.exit_policy.allows(*ip, target.port),
        TargetHost::Name(_) => relay.info.exit_policy.allows_port(target.port),
    }
}

/// The weight a relay is chosen with: its consensus bandwidth, at least 1.
pub fn selection_weight(r: &ConsensusRelay) -> u64 {
    r.info.bandwidth.max(1)
}

/// Picks one of `candidates` with probability proportional to [`selection_weight`].
pub fn weighted_choice<'a>(
    candidates: &[&'a ConsensusRelay],
    rng: &mut impl RandomSource,
) -> Option<&'a ConsensusRelay> {
    let total: u64 = candidates
        .iter()
        .map(|r| selection_weight(r))
        .fold(0u64, u64::saturating_add);
    if candidates.is_empty() || total == 0 {
        return None;
    }
    let mut pick = rng.below(total);
    for r in candidates {
        let w = selection_weight(r);
        if pick < w {
            return Some(r);
        }
        pick -= w;
    }
    candidates.last().copied()
}

/// Listed as Running, Valid and Guard: may be a circuit's entry.
pub fn usable_guard(r: &ConsensusRelay) -> bool {
    r.flags.contains(Flags::RUNNING) && r.flags.contains(Flags::GUARD) && r.flags.contains(Flags::VALID)
}

/// Chooses a guard among Running, Valid, Guard relays, weighted by bandwidth.
pub fn choose_guard<'a>(
    consensus: &'a Consensus,
    rng: &mut impl RandomSource,
) -> Result<&'a ConsensusRelay, PathError> {
    let c: Vec<&ConsensusRelay> = consensus.relays.iter().filter(|r| usable_guard(r)).collect();
    weighted_choice(&c, rng).ok_or(PathError::NoGuard)
}

/// A chosen path, first hop first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Entry.
    pub guard: ConsensusRelay,
    /// Middle.
    pub middle: ConsensusRelay,
    /// Exit.
    pub exit: ConsensusRelay,
}

fn running_and_valid(r: &ConsensusRelay) -> bool {
    r.flags.contains(Flags::RUNNING) && r.flags.contains(Flags::VALID)
}

/// The relays [`choose_path`] draws the exit from (weighted by [`selection_weight`]) for a
/// circuit through `guard` that can reach `target`: Running, Valid, Exit and not BadExit,
/// allowing the target, compatible with the guard.
pub fn exit_candidates<'a>(
    consensus: &'a Consensus,
    guard: &ConsensusRelay,
    target: Option<&Target>,
    rules: PathRules,
) -> Vec<&'a ConsensusRelay> {
    consensus
        .relays
        .iter()
        .filter(|r| running_and_valid(r))
        .filter(|r| r.flags.contains(Flags::EXIT) && !r.flags.contains(Flags::BAD_EXIT))
        .filter(|r| match target {
            Some(t) => exit_allows(r, t),
            None => r.info.exit_policy.allows_port(80) || r.info.exit_policy.allows_port(443),
        })
        .filter(|r| compatible(r, guard, rules))
        .collect()
}

/// Chooses exit then middle for a circuit through `guard` that can reach `target`
/// (`None`: any exit that allows port 80 or 443, for circuits built ahead of demand).
pub fn choose_path(
    consensus: &Consensus,
    guard: &ConsensusRelay,
    target: Option<&Target>,
    rules: PathRules,
    rng: &mut impl RandomSource,
) -> Result<Path, PathError> {
    let exits = exit_candidates(consensus, guard, target, rules);
    let exit = weighted_choice(&exits, rng).ok_or(PathError::NoExit)?;
    let middles: Vec<&ConsensusRelay> = consensus
        .relays
        .iter()
        .filter(|r| running_and_valid(r))
        .filter(|r| compatible(r, guard, rules) && compatible(r, exit, rules))
        .collect();
    let middle = weighted_choice(&middles, rng).ok_or(PathError::NoMiddle)?;
    Ok(Path {
        guard: guard.clone(),
        middle: middle.clone(),
        exit: exit.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::tests::sample;
    use crate::exit_policy::ExitPolicy;
    use crate::keys::fresh_signing_key;
    use crate::random::ThreadRandom;

    fn relay(addr: &str, bw: u64, exit: bool) -> ConsensusRelay {
        let k = fresh_signing_key();
        let mut info = sample(&k, 9001).info;
        info.or_addr = addr.parse().unwrap();
        info.bandwidth = bw;
        info.family.clear();
        info.exit_policy = if exit {
            ExitPolicy::default_exit()
        } else {
            ExitPolicy::reject_all()
        };
        let mut flags = Flags::RUNNING;
        flags.insert(Flags::VALID);
        flags.insert(Flags::GUARD);
        if exit {
            flags.insert(Flags::EXIT);
        }
        ConsensusRelay { info, flags }
    }

    fn web(port: u16) -> Target {
        Target {
            host: TargetHost::Name("example.org".into()),
            port,
        }
    }

    #[test]
    fn paths_are_distinct_by_subnet_and_family() {
        let relays = vec![
            relay("1.1.0.1:9001", 100, false),
            relay("1.1.0.2:9001", 100, true), // same /16 as the guard
            relay("2.2.0.1:9001", 100, false),
            relay("3.3.0.1:9001", 100, true),
        ];
        let c = Consensus {
            valid_after: 0,
            fresh_until: 1,
            valid_until: 2,
            relays,
        };
        let guard = c.relays[0].clone();
        for _ in 0..50 {
            let p = choose_path(&c, &guard, Some(&web(80)), PathRules::default(), &mut ThreadRandom).unwrap();
            assert_eq!(p.exit.info.or_addr.to_string(), "3.3.0.1:9001");
            assert_eq!(p.middle.info.or_addr.to_string(), "2.2.0.1:9001");
        }
        // A declared family keeps the middle out.
        let mut c2 = c.clone();
        let exit_id = c2.relays[3].info.identity;
        c2.relays[2].info.family.push(exit_id);
        assert_eq!(
            choose_path(&c2, &guard, Some(&web(80)), PathRules::default(), &mut ThreadRandom),
            Err(PathError::NoMiddle)
        );
        // Test networks may turn the subnet rule off.
        let same: Vec<_> = (1..=4).map(|i| relay(&format!("127.0.{i}.1:9001"), 10, true)).collect();
        let c3 = Consensus {
            valid_after: 0,
            fresh_until: 1,
            valid_until: 2,
            relays: same,
        };
        assert!(choose_path(&c3, &c3.relays[0], None, PathRules::default(), &mut ThreadRandom).is_err());
        assert!(
            choose_path(
                &c3,
                &c3.relays[0],
                None,
                PathRules {
                    enforce_distinct_subnets: false
                },
                &mut ThreadRandom
            )
            .is_ok()
        );
    }

    #[test]
    fn exit_must_allow_the_destination() {
        let relays = vec![
            relay("1.1.0.1:9001", 100, false),
            relay("2.2.0.1:9001", 100, false),
            relay("3.3.0.1:9001", 100, true),
        ];
        let c = Consensus {
            valid_after: 0,
            fresh_until: 1,
            valid_until: 2,
            relays,
        };
        let g = c.relays[0].clone();
        let loopback = Target {
            host: TargetHost::Ip("127.0.0.1".parse().unwrap()),
            port: 80,
        };
        assert_eq!(
            choose_path(&c, &g, Some(&loopback), PathRules::default(), &mut ThreadRandom),
            Err(PathError::NoExit)
        );
        assert!(exit_candidates(&c, &g, Some(&loopback), PathRules::default()).is_empty());
        let web_exits = exit_candidates(&c, &g, Some(&web(443)), PathRules::default());
        assert_eq!(web_exits.len(), 1);
        assert_eq!(web_exits[0].info.identity, c.relays[2].info.identity);
        assert!(
            exit_candidates(&c, &c.relays[2], None, PathRules::default()).is_empty(),
            "never the guard itself"
        );
        assert!(choose_path(&c, &g, Some(&web(443)), PathRules::default(), &mut ThreadRandom).is_ok());
    }

    #[test]
    fn choice_follows_bandwidth() {
        let a = relay("1.1.0.1:9001", 900, true);
        let b = relay("2.2.0.1:9001", 100, true);
        let (ra, rb) = (&a, &b);
        let mut hits = 0;
        for _ in 0..2000 {
            if weighted_choice(&[ra, rb], &mut ThreadRandom).unwrap().info.identity == a.info.identity {
                hits += 1;
            }
        }
        // Expected 1800; 5 standard deviations is about 67.
        assert!((1700..1900).contains(&hits), "{hits}");
    }
}
