//! Pollution signals over Gnutella query results: who answers a query with decoys. Pure
//! functions over plain hit and download records; the content probe
//! ([`crate::gnutella::leaf`]) produces them, this module never contacts anyone.
//!
//! Two signals, after Liang, Naoumov and Ross, "The index poisoning attack in P2P file sharing
//! systems" (INFOCOM 2006), and Liang, Kumar, Xi and Ross, "Pollution in P2P file sharing
//! systems" (INFOCOM 2005):
//!
//! - **Many hits for one query from one address range**: index poisoners answer popular queries
//!   from a few hosting ranges with many fake results. Flagged: a (query, /24 or /64) pair with
//!   more than [`PollutionConfig::max_hits_per_subnet`] results. One honest servent with a large
//!   matching collection can trip it too; the report gives the responders and the share of the
//!   query's results, to tell the two apart.
//! - **What is served is not what was advertised**: a download whose size, or SHA-1 when the hit
//!   carried a `urn:sha1`, differs from the hit (content pollution, decoys).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::Score;
use super::sybil::Subnet;

/// One result of one QueryHit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The search text it answered.
    pub query: String,
    /// The responder's address, as the QueryHit gives it.
    pub responder: SocketAddr,
    /// The responder's servent id.
    pub servent_id: [u8; 16],
    /// The file name.
    pub file_name: String,
    /// The advertised size.
    pub size: u64,
    /// The advertised `urn:sha1`, if any.
    pub sha1: Option<[u8; 20]>,
}

/// One download of a hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedFile {
    /// Who served it.
    pub responder: SocketAddr,
    /// The hit's file name.
    pub name: String,
    /// The size the hit advertised.
    pub advertised_size: u64,
    /// The SHA-1 the hit advertised, if any.
    pub advertised_sha1: Option<[u8; 20]>,
    /// The size served.
    pub served_size: u64,
    /// The SHA-1 of what was served.
    pub served_sha1: [u8; 20],
}

impl ServedFile {
    /// Whether the size, and the SHA-1 if one was advertised, match.
    pub fn genuine(&self) -> bool {
        self.served_size == self.advertised_size && self.advertised_sha1.is_none_or(|h| h == self.served_sha1)
    }
}

/// Thresholds for [`pollution_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollutionConfig {
    /// Flag a (query, subnet) pair with more results than this. Default 20.
    pub max_hits_per_subnet: usize,
}

impl Default for PollutionConfig {
    fn default() -> Self {
        PollutionConfig {
            max_hits_per_subnet: 20,
        }
    }
}

/// A (query, subnet) pair over the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdedSubnet {
    /// The query.
    pub query: String,
    /// The subnet.
    pub subnet: Subnet,
    /// Its results for the query.
    pub hits: usize,
    /// The share of the query's results.
    pub share: f64,
    /// The responders in it.
    pub responders: BTreeSet<SocketAddr>,
}

/// What [`pollution_report`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PollutionReport {
    /// Crowded (query, subnet) pairs, by query then subnet.
    pub crowded: Vec<CrowdedSubnet>,
    /// Downloads that did not match their hit.
    pub mismatched: Vec<ServedFile>,
}

impl PollutionReport {
    /// Responders in a crowded subnet or with a mismatched download.
    pub fn flagged_responders(&self) -> BTreeSet<SocketAddr> {
        let crowded = self.crowded.iter().flat_map(|c| c.responders.iter().copied());
        crowded.chain(self.mismatched.iter().map(|m| m.responder)).collect()
    }

    /// Precision and recall against planted polluters.
    pub fn score(&self, truth: &BTreeSet<SocketAddr>) -> Score {
        Score::of(&self.flagged_responders(), truth)
    }
}

/// Runs both signals over `hits` and `downloads`.
pub fn pollution_report(hits: &[Hit], downloads: &[ServedFile], config: &PollutionConfig) -> PollutionReport {
    let mut per_query: BTreeMap<&str, BTreeMap<Subnet, (usize, BTreeSet<SocketAddr>)>> = BTreeMap::new();
    for h in hits {
        let slot = per_query
            .entry(h.query.as_str())
            .or_default()
            .entry(Subnet::of(h.responder.ip()))
            .or_default();
        slot.0 += 1;
        slot.1.insert(h.responder);
    }
    let mut crowded = Vec::new();
    for (query, subnets) in per_query {
        let total: usize = subnets.values().map(|(n, _)| n).sum();
        for (subnet, (n, responders)) in subnets {
            if n > config.max_hits_per_subnet {
                crowded.push(CrowdedSubnet {
                    query: query.to_owned(),
                    subnet,
                    hits: n,
                    share: n as f64 / total as f64,
                    responders,
                });
            }
        }
    }
    PollutionReport {
        crowded,
        mismatched: downloads.iter().filter(|d| !d.genuine()).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(query: &str, responder: &str) -> Hit {
        Hit {
            query: query.into(),
            responder: responder.parse().unwrap(),
            servent_id: [0; 16],
            file_name: "f".into(),
            size: 1,
            sha1: None,
        }
    }

    #[test]
    fn a_poisoned_range_is_flagged_per_query() {
        let mut hits = Vec::new();
        // 30 results from five hosts of one /24 for "song", one each from 10 honest ranges.
        for i in 0..30 {
            hits.push(hit("song", &format!("10.9.9.{}:6346", i % 5)));
        }
        for i in 0..10 {
            hits.push(hit("song", &format!("10.{i}.0.1:6346")));
        }
        // The same range answering another query modestly is not flagged there.
        for i in 0..3 {
            hits.push(hit("other", &format!("10.9.9.{i}:6346")));
        }
        let r = pollution_report(&hits, &[], &PollutionConfig::default());
        assert_eq!(r.crowded.len(), 1);
        let c = &r.crowded[0];
        assert_eq!((c.query.as_str(), c.hits, c.responders.len()), ("song", 30, 5));
        assert_eq!(c.share, 0.75);
        assert_eq!(c.subnet.to_string(), "10.9.9.0/24");
        let truth: BTreeSet<SocketAddr> = (0..5).map(|i| format!("10.9.9.{i}:6346").parse().unwrap()).collect();
        let s = r.score(&truth);
        assert_eq!((s.precision(), s.recall()), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn decoys_are_flagged_by_size_or_hash() {
        let good = ServedFile {
            responder: "10.0.0.1:1".parse().unwrap(),
            name: "a".into(),
            advertised_size: 3,
            advertised_sha1: Some([1; 20]),
            served_size: 3,
            served_sha1: [1; 20],
        };
        let wrong_hash = ServedFile {
            responder: "10.0.0.2:1".parse().unwrap(),
            served_sha1: [2; 20],
            ..good.clone()
        };
        let wrong_size = ServedFile {
            responder: "10.0.0.3:1".parse().unwrap(),
            advertised_sha1: None,
            served_size: 4,
            ..good.clone()
        };
        let r = pollution_report(
            &[],
            &[good, wrong_hash.clone(), wrong_size.clone()],
            &PollutionConfig::default(),
        );
        assert_eq!(r.mismatched, vec![wrong_hash, wrong_size]);
        assert_eq!(r.flagged_responders().len(), 2);
        assert!(
            pollution_report(&[], &[], &PollutionConfig::default())
                .crowded
                .is_empty()
        );
    }
}
