//! What a campaign would do and whom it would contact first, worked out without sending a
//! packet or resolving a name: `onionlab-crawl run --dry-run`. The addresses listed are the
//! starting points; a DHT crawl goes on to every node they lead to, a swarm monitor to every
//! peer trackers, the DHT and PEX name (each checked against the same deny-list as it comes).

use std::fmt;
use std::net::IpAddr;

use crate::engine::DenyList;

use super::config::{Campaign, CampaignError, ProbeSpec};
use super::run::STORE_FILE;

/// One starting point of the campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Which probe contacts it, and as what.
    pub role: String,
    /// The address or URL.
    pub target: String,
    /// The deny-list range that forbids it (it will not be contacted).
    pub denied: Option<String>,
}

/// The campaign's schedule and starting points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The campaign's header lines: name, duration, output, engine rules.
    pub header: Vec<String>,
    /// One line per probe: what it does, how often, at most how many rounds.
    pub probes: Vec<String>,
    /// The starting points.
    pub contacts: Vec<Contact>,
}

/// The host of an announce URL, when it is an IP literal (`http://1.2.3.4:80/a`, `udp://[::1]:6969`).
fn url_ip(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.parse().ok()
}

impl Plan {
    /// Work out the plan of `campaign` (reads its torrent files, nothing else).
    pub fn of(campaign: &Campaign) -> Result<Plan, CampaignError> {
        let deny = campaign.engine.deny_list();
        let e = campaign.engine.to_config();
        let header = vec![
            format!("campaign {} for {:?}", campaign.name, campaign.duration),
            format!("output   {}", campaign.output.join(STORE_FILE).display()),
            format!(
                "engine   {} in flight, 1 attempt per {:?} per IP, timeout {:?}, {} attempts, backoff {:?}",
                e.concurrency, e.per_ip_interval, e.timeout, e.attempts, e.backoff
            ),
            format!(
                "deny     {}",
                deny.ranges()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ];
        let probes = campaign
            .probes
            .iter()
            .map(|p| {
                let schedule = match p.every() {
                    Some(every) => format!(
                        "every {every:?}, at most {} rounds",
                        1 + campaign.duration.as_nanos() / every.as_nanos().max(1)
                    ),
                    None => "once".to_owned(),
                };
                let what = match p {
                    ProbeSpec::DhtCrawl(s) => format!(
                        "crawl the DHT (at most {:?} and {} nodes per crawl{}{})",
                        s.max_duration,
                        s.max_nodes,
                        if s.get_peers { ", get_peers for every swarm" } else { "" },
                        if s.sample_infohashes { ", sample_infohashes" } else { "" }
                    ),
                    ProbeSpec::Tracker(s) => format!(
                        "announce{} to every tracker of every swarm",
                        if s.scrape { " and scrape" } else { "" }
                    ),
                    ProbeSpec::Swarm(s) => format!(
                        "visit every peer of every swarm, {} sample pieces each{}",
                        s.sample_pieces,
                        if s.pex { ", PEX on" } else { ", PEX off" }
                    ),
                    ProbeSpec::GnutellaCrawl(s) => format!(
                        "snapshot the Gnutella topology (at most {:?} and {} contacts per snapshot, {})",
                        s.max_duration,
                        s.max_contacts,
                        if s.contact_leaves {
                            "leaves contacted too"
                        } else {
                            "ultrapeers only"
                        }
                    ),
                    ProbeSpec::OnionConsensus(_) => {
                        "read every onion directory authority's view of the consensus".to_owned()
                    }
                };
                format!("{}: {what}, {schedule}", p.name())
            })
            .collect();
        let mut contacts = Vec::new();
        let mut add = |role: String, target: String, ip: Option<IpAddr>, deny: &DenyList| {
            let denied = ip.and_then(|ip| deny.denies(ip)).map(ToString::to_string);
            contacts.push(Contact { role, target, denied });
        };
        if campaign.probes.iter().any(|p| matches!(p, ProbeSpec::DhtCrawl(_))) {
            for a in &campaign.targets.dht_bootstrap {
                add("DHT bootstrap node".into(), a.to_string(), Some(a.ip()), &deny);
            }
        }
        if campaign.probes.iter().any(|p| matches!(p, ProbeSpec::GnutellaCrawl(_))) {
            for a in &campaign.targets.gnutella_bootstrap {
                add("Gnutella bootstrap servent".into(), a.to_string(), Some(a.ip()), &deny);
            }
        }
        if campaign
            .probes
            .iter()
            .any(|p| matches!(p, ProbeSpec::OnionConsensus(_)))
        {
            for a in &campaign.targets.onion_authorities {
                add("onion directory authority".into(), a.to_string(), Some(a.ip()), &deny);
            }
        }
        let announces = campaign
            .probes
            .iter()
            .any(|p| matches!(p, ProbeSpec::Tracker(_) | ProbeSpec::Swarm(_)));
        for swarm in campaign.swarms()? {
            let hash = swarm.info_hash.to_hex();
            if announces {
                for t in &swarm.trackers {
                    add(format!("tracker of {hash}"), t.clone(), url_ip(t), &deny);
                }
            }
            if campaign.probes.iter().any(|p| matches!(p, ProbeSpec::Swarm(_))) {
                for p in &swarm.peers {
                    add(format!("peer of {hash}"), p.to_string(), Some(p.ip()), &deny);
                }
            }
        }
        Ok(Plan {
            header,
            probes,
            contacts,
        })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.header {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "probes")?;
        for line in &self.probes {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "first contacts (the crawl goes on to whatever they name)")?;
        if self.contacts.is_empty() {
            writeln!(f, "  none")?;
        }
        for c in &self.contacts {
            match &c.denied {
                Some(range) => writeln!(f, "  {:<24} {}  DENIED by {range}: never contacted", c.role, c.target)?,
                None => writeln!(f, "  {:<24} {}", c.role, c.target)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_ip("http://10.1.2.3:6969/announce"), "10.1.2.3".parse().ok());
        assert_eq!(url_ip("udp://[::1]:6969"), "::1".parse().ok());
        assert_eq!(url_ip("udp://127.0.0.1:6969/announce?x=1"), "127.0.0.1".parse().ok());
        assert_eq!(url_ip("http://tracker.example:80/announce"), None);
        assert_eq!(url_ip("nonsense"), None);
    }

    #[test]
    fn dry_run_lists_probes_and_denied_contacts() {
        let yaml = "name: p\nduration: 60s\noutput: out\nengine: { deny: [10.0.0.0/8] }\n\
                    targets:\n  dht_bootstrap: [10.1.1.1:6881, 127.0.0.1:6881]\n  \
                    info_hashes: [0123456789abcdef0123456789abcdef01234567]\n  \
                    trackers: [udp://127.0.0.1:6969]\n\
                    probes:\n  - dht_crawl: { every: 30s }\n  - tracker: {}\n";
        let c = Campaign::parse(yaml, "p.yaml").unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::of(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.probes.len(), 2);
        assert!(
            plan.probes[0].contains("every 30s, at most 3 rounds"),
            "{}",
            plan.probes[0]
        );
        assert!(plan.probes[1].contains("once"));
        let denied: Vec<_> = plan.contacts.iter().filter(|c| c.denied.is_some()).collect();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].target, "10.1.1.1:6881");
        assert_eq!(plan.contacts.len(), 3, "{plan}");
        assert!(plan.to_string().contains("DENIED by 10.0.0.0/8"));
    }
}
