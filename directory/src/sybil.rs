//! Defences against one operator posing as many relays (Sybils).
//!
//! - **Per-address cap**: at most `max_relays_per_ip` relays per IP address are voted for;
//!   the ones kept are those reachable the longest (in whole minutes), then the smallest
//!   identity. Not what a relay advertises (the attacker controls that), and not this
//!   authority's own measurements either: those differ between authorities, and the cap must
//!   pick the same relays everywhere or the majority rule drops them all.
//! - **Cluster alerts**: many relays from one /24 appearing within a short window are logged
//!   and listed in the JSON view, for a human to judge.
//!
//! The unmeasured-bandwidth cap and the uptime needed for Guard live in the vote rules
//! (`onionlab_proto::vote`, [`crate::flags`]); families are honoured by path selection.

use std::collections::HashMap;
use std::net::IpAddr;

/// A relay competing for a place on its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its address.
    pub ip: IpAddr,
    /// Unix time since which it is reachable.
    pub reachable_since: u64,
    /// Its identity (the final tie-break).
    pub identity: [u8; 32],
}

/// Which candidates keep their place: returns a flag per candidate, in input order.
pub fn cap_per_ip(candidates: &[Candidate], max_per_ip: usize) -> Vec<bool> {
    let mut by_ip: HashMap<IpAddr, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_ip.entry(c.ip).or_default().push(i);
    }
    let mut keep = vec![false; candidates.len()];
    for (_, mut idx) in by_ip {
        idx.sort_by(|&a, &b| {
            let (x, y) = (&candidates[a], &candidates[b]);
            (x.reachable_since / 60)
                .cmp(&(y.reachable_since / 60))
                .then(x.identity.cmp(&y.identity))
        });
        for i in idx.into_iter().take(max_per_ip) {
            keep[i] = true;
        }
    }
    keep
}

/// The /24 (IPv4) or /48 (IPv6) a relay address belongs to, as text.
pub fn prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Prefixes with at least `size` relays first seen within `window` seconds before `now`,
/// with their counts. `first_seen` lists (address, first-seen time) of known relays.
pub fn clusters(first_seen: &[(IpAddr, u64)], now: u64, window: u64, size: usize) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (ip, t) in first_seen {
        if now.saturating_sub(*t) <= window {
            *counts.entry(prefix(*ip)).or_default() += 1;
        }
    }
    let mut out: Vec<_> = counts.into_iter().filter(|(_, n)| *n >= size).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ip: &str, since: u64, id: u8) -> Candidate {
        Candidate {
            ip: ip.parse().unwrap(),
            reachable_since: since,
            identity: [id; 32],
        }
    }

    #[test]
    fn at_most_two_per_address_preferring_old_then_small_identities() {
        let cands = vec![
            c("10.0.0.1", 600, 1),
            c("10.0.0.1", 650, 2),
            c("10.0.0.1", 10, 3),
            c("10.0.0.1", 700, 4),
            c("10.0.0.2", 9999, 5),
        ];
        // 3 is older by minutes; 1, 2 and 4 share a minute, and 1 has the smallest identity.
        assert_eq!(cap_per_ip(&cands, 2), vec![true, false, true, false, true]);
        let six: Vec<_> = (0..6).map(|i| c("10.9.9.9", 100, i)).collect();
        assert_eq!(cap_per_ip(&six, 2).iter().filter(|k| **k).count(), 2);
    }

    #[test]
    fn clusters_of_one_slash_24_in_a_window_are_found() {
        let seen: Vec<(IpAddr, u64)> = (1..=5)
            .map(|i| (format!("10.1.2.{i}").parse().unwrap(), 1000 + i))
            .collect();
        assert_eq!(clusters(&seen, 1010, 600, 4), vec![("10.1.2.0/24".to_owned(), 5)]);
        assert!(clusters(&seen, 5000, 600, 4).is_empty(), "outside the window");
        assert!(clusters(&seen, 1010, 600, 6).is_empty(), "below the alert size");
    }
}
