//! Exit policies: which destinations an exit relay will connect to.
//!
//! A policy is an ordered list of rules in Tor's torrc syntax, first match wins:
//! `accept|reject ADDR[/BITS]:PORT[-PORT]` where ADDR is `*`, an IPv4 address, a bracketed
//! IPv6 address, or `private` (loopback, RFC 1918, link-local, CGNAT, unique-local, unspecified),
//! and PORT is `*` or a number or range. A destination no rule matches is **rejected**.
//!
//! [`ExitPolicy::default_exit`] rejects private destinations and accepts the rest; the local
//! testbed puts `accept 127.0.0.0/8:*` in front to opt in to loopback explicitly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use thiserror::Error;

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Connect.
    Accept,
    /// Refuse with END reason EXITPOLICY.
    Reject,
}

/// Which addresses a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrPattern {
    /// Every address, both families.
    Any,
    /// The private ranges (see the module docs).
    Private,
    /// An IPv4 prefix.
    V4(Ipv4Addr, u8),
    /// An IPv6 prefix.
    V6(Ipv6Addr, u8),
}

/// The address ranges `private` stands for.
const PRIVATE_V4: [(Ipv4Addr, u8); 8] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(255, 255, 255, 255), 32),
];
const PRIVATE_V6: [(Ipv6Addr, u8); 4] = [
    (Ipv6Addr::UNSPECIFIED, 128),
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
];

fn v4_in(a: Ipv4Addr, net: Ipv4Addr, bits: u8) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits))
    };
    u32::from(a) & mask == u32::from(net) & mask
}

fn v6_in(a: Ipv6Addr, net: Ipv6Addr, bits: u8) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits))
    };
    u128::from(a) & mask == u128::from(net) & mask
}

/// True for addresses in the `private` ranges (including IPv4-mapped IPv6 forms).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => PRIVATE_V4.iter().any(|(n, b)| v4_in(a, *n, *b)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_private(v4.into()),
            None => PRIVATE_V6.iter().any(|(n, b)| v6_in(a, *n, *b)),
        },
    }
}

impl AddrPattern {
    /// True if every address covered is private (a prefix of a private range).
    fn only_private(&self) -> bool {
        match *self {
            AddrPattern::Any => false,
            AddrPattern::Private => true,
            AddrPattern::V4(n, b) => PRIVATE_V4.iter().any(|(pn, pb)| b >= *pb && v4_in(n, *pn, *pb)),
            AddrPattern::V6(n, b) => PRIVATE_V6.iter().any(|(pn, pb)| b >= *pb && v6_in(n, *pn, *pb)),
        }
    }

    fn matches(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (AddrPattern::Any, _) => true,
            (AddrPattern::Private, ip) => is_private(ip),
            (AddrPattern::V4(n, b), IpAddr::V4(a)) => v4_in(a, *n, *b),
            (AddrPattern::V6(n, b), IpAddr::V6(a)) => v6_in(a, *n, *b),
            _ => false,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRule {
    /// What to do on a match.
    pub action: Action,
    /// Addresses covered.
    pub addr: AddrPattern,
    /// First port covered.
    pub port_lo: u16,
    /// Last port covered (inclusive).
    pub port_hi: u16,
}

/// A rule or policy that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad exit policy rule {rule:?}: {reason}")]
pub struct PolicyError {
    /// The offending text.
    pub rule: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl FromStr for PolicyRule {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let err = |reason| PolicyError {
            rule: s.to_owned(),
            reason,
        };
        let s_trim = s.trim();
        let (action, rest) = s_trim
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("expected `accept|reject ADDR:PORT`"))?;
        let action = match action {
            "accept" => Action::Accept,
            "reject" => Action::Reject,
            _ => return Err(err("action must be accept or reject")),
        };
        let rest = rest.trim();
        let (addr, ports) = rest.rsplit_once(':').ok_or_else(|| err("missing :PORT"))?;
        let addr = parse_addr(addr).ok_or_else(|| err("address must be *, private, A.B.C.D[/N] or [IPv6][/N]"))?;
        let (port_lo, port_hi) = if ports == "*" {
            (1, 65535)
        } else if let Some((lo, hi)) = ports.split_once('-') {
            (
                lo.parse().map_err(|_| err("bad port"))?,
                hi.parse().map_err(|_| err("bad port"))?,
            )
        } else {
            let p = ports.parse().map_err(|_| err("bad port"))?;
            (p, p)
        };
        if port_lo == 0 || port_lo > port_hi {
            return Err(err("port range must be 1..=65535 and ascending"));
        }
        Ok(PolicyRule {
            action,
            addr,
            port_lo,
            port_hi,
        })
    }
}

fn parse_addr(s: &str) -> Option<AddrPattern> {
    match s {
        "*" => return Some(AddrPattern::Any),
        "private" => return Some(AddrPattern::Private),
        _ => {}
    }
    let (ip, bits) = match s.rsplit_once('/') {
        Some((ip, bits)) if !ip.ends_with(':') => (ip, Some(bits.parse::<u8>().ok()?)),
        _ => (s, None),
    };
    if let Some(v6) = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        let a: Ipv6Addr = v6.parse().ok()?;
        let b = bits.unwrap_or(128);
        return (b <= 128).then_some(AddrPattern::V6(a, b));
    }
    let a: Ipv4Addr = ip.parse().ok()?;
    let b = bits.unwrap_or(32);
    (b <= 32).then_some(AddrPattern::V4(a, b))
}

impl fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Accept => "accept",
            Action::Reject => "reject",
        };
        write!(f, "{action} ")?;
        match self.addr {
            AddrPattern::Any => write!(f, "*")?,
            AddrPattern::Private => write!(f, "private")?,
            AddrPattern::V4(a, b) => write!(f, "{a}/{b}")?,
            AddrPattern::V6(a, b) => write!(f, "[{a}]/{b}")?,
        }
        match (self.port_lo, self.port_hi) {
            (1, 65535) => write!(f, ":*"),
            (lo, hi) if lo == hi => write!(f, ":{lo}"),
            (lo, hi) => write!(f, ":{lo}-{hi}"),
        }
    }
}

impl PolicyRule {
    fn covers_port(&self, port: u16) -> bool {
        (self.port_lo..=self.port_hi).contains(&port)
    }
}

/// An ordered list of rules; no match means reject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitPolicy {
    /// The rules, first match wins.
    pub rules: Vec<PolicyRule>,
}

impl ExitPolicy {
    /// Rejects everything: a non-exit relay.
    pub fn reject_all() -> Self {
        ExitPolicy { rules: Vec::new() }
    }

    /// The default for exits: `reject private:*`, then `accept *:*`.
    pub fn default_exit() -> Self {
        ExitPolicy::parse_lines(["reject private:*", "accept *:*"]).unwrap_or_default()
    }

    /// Parses rules, one per item.
    pub fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Self, PolicyError> {
        let rules = lines
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(ExitPolicy { rules })
    }

    /// Would the exit connect to `ip:port`?
    pub fn allows(&self, ip: IpAddr, port: u16) -> bool {
        self.rules
            .iter()
            .find(|r| r.covers_port(port) && r.addr.matches(ip))
            .is_some_and(|r| r.action == Action::Accept)
    }

    /// Might the exit connect to *some public* address on `port`? Used for hostnames, whose
    /// address only the exit learns. Accept rules that cover only private addresses and
    /// reject rules for some addresses are skipped; the first other rule decides.
    pub fn allows_port(&self, port: u16) -> bool {
        for r in self.rules.iter().filter(|r| r.covers_port(port)) {
            match (r.action, r.addr) {
                (Action::Accept, a) if a.only_private() => continue,
                (Action::Accept, _) => return true,
                (Action::Reject, AddrPattern::Any) => return false,
                (Action::Reject, _) => continue,
            }
        }
        false
    }

    /// The rules as lines of text (the form descriptors carry).
    pub fn to_lines(&self) -> Vec<String> {
        self.rules.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_policy_refuses_private_and_accepts_public() {
        let p = ExitPolicy::default_exit();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.0.5",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "fd00::1",
        ] {
            assert!(!p.allows(ip.parse().unwrap(), 80), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(p.allows(ip.parse().unwrap(), 443), "{ip}");
        }
        assert!(p.allows_port(80));
    }

    #[test]
    fn testbed_opt_in_and_ports() {
        let p = ExitPolicy::parse_lines([
            "accept 127.0.0.0/8:*",
            "reject private:*",
            "reject *:25",
            "accept *:80-443",
        ])
        .unwrap();
        assert!(p.allows("127.0.3.1".parse().unwrap(), 9));
        assert!(!p.allows("8.8.8.8".parse().unwrap(), 25));
        assert!(p.allows("8.8.8.8".parse().unwrap(), 100));
        assert!(!p.allows("8.8.8.8".parse().unwrap(), 8080));
        assert!(!p.allows_port(25));
        assert!(p.allows_port(443));
        assert!(!ExitPolicy::reject_all().allows_port(80));
    }

    #[test]
    fn bad_rules_say_why() {
        for bad in [
            "allow *:80",
            "accept *",
            "accept 1.2.3.4/33:80",
            "accept *:0",
            "accept *:90-80",
            "accept [::1:80",
        ] {
            assert!(bad.parse::<PolicyRule>().is_err(), "{bad}");
        }
        assert!("accept [::1]/128:80".parse::<PolicyRule>().is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<PolicyRule>();
        }

        #[test]
        fn display_round_trips(accept in any::<bool>(), a in any::<[u8; 4]>(), bits in 0u8..=32, lo in 1u16.., span in 0u16..100) {
            let hi = lo.saturating_add(span);
            let rule = PolicyRule { action: if accept { Action::Accept } else { Action::Reject }, addr: AddrPattern::V4(Ipv4Addr::from(a), bits), port_lo: lo, port_hi: hi };
            prop_assert_eq!(rule.to_string().parse::<PolicyRule>().unwrap(), rule);
        }
    }
}
