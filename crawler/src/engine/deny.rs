//! The deny-list: address ranges the crawler never contacts, whatever a tracker, a DHT node or a
//! campaign file says. A crawler that follows peer lists can be steered towards anyone, so the
//! check sits in the engine, below every probe.
//!
//! [`DenyList::default`] holds the ranges no real peer can be at (unspecified, multicast,
//! broadcast, reserved); loopback is allowed, since the lab's testbeds live there. Campaigns add
//! their own ranges (`engine.deny: [10.0.0.0/8, ...]`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an address range such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Ranges never to contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyList {
    ranges: Vec<Cidr>,
}

/// Ranges no peer can be at: "this network", multicast, reserved and broadcast, and their IPv6
/// counterparts.
const ALWAYS_DENIED: [&str; 5] = ["0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::/128", "ff00::/8"];

impl Default for DenyList {
    fn default() -> Self {
        DenyList {
            ranges: ALWAYS_DENIED.iter().filter_map(|r| r.parse().ok()).collect(),
        }
    }
}

impl DenyList {
    /// The default ranges plus `extra`.
    pub fn with(extra: impl IntoIterator<Item = Cidr>) -> Self {
        let mut list = DenyList::default();
        list.ranges.extend(extra);
        list
    }

    /// The range that denies `ip`, if any.
    pub fn denies(&self, ip: IpAddr) -> Option<&Cidr> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    /// Every range.
    pub fn ranges(&self) -> &[Cidr] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains(ip("10.255.1.2")) && !r.contains(ip("11.0.0.1")));
        assert!(r.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 is IPv4");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("2001:db8::1")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
        for bad in ["10.0.0.0/33", "::/129", "ten/8", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_denies_what_no_peer_can_be_and_allows_loopback() {
        let d = DenyList::default();
        for bad in [
            "0.0.0.0",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "ff02::1",
        ] {
            assert!(d.denies(ip(bad)).is_some(), "{bad}");
        }
        for good in ["127.0.0.1", "127.1.2.3", "::1", "192.0.2.1", "10.0.0.1"] {
            assert!(d.denies(ip(good)).is_none(), "{good}");
        }
        let d = DenyList::with(["127.66.0.0/16".parse().unwrap()]);
        assert_eq!(
            d.denies(ip("127.66.1.1")).map(ToString::to_string).as_deref(),
            Some("127.66.0.0/16")
        );
    }
}
