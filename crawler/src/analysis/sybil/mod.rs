//! Sybil signals over DHT crawl sightings: which node ids look like one operator's many
//! identities. Flags are evidence for a human or an experiment's score, not verdicts.
//!
//! # The signals and their limits
//!
//! - **Ids per IP, per /24 (IPv4) and per /64 (IPv6).** BEP 42 ties a node id to its IP: the
//!   first 21 bits must equal CRC-32C of the masked address with a 3-bit random `r`, so one
//!   IPv4 address can only place ids in 8 of the 2²¹ prefixes. It restricts *where* an address's
//!   ids lie, not how many there are (several hosts behind one NAT legitimately share those 8
//!   prefixes). The count limits live in the routing tables: libtorrent (`dht_restrict_routing_ips`,
//!   `dht_restrict_search_ips`) admits at most one node per /24 (IPv4) or /64 (IPv6) per bucket
//!   and per lookup. The thresholds here ([`SybilConfig`]) flag addresses and subnets with more
//!   ids than an honest crawl shows.
//! - **Ids packed near a key** ([`densest_near`], [`scan_clusters`]): BEP 42's attack is placing
//!   K = 8 or more nodes closest to one info-hash. With N uniform ids, the number sharing at
//!   least b leading bits with a key is Binomial(N, 2⁻ᵇ) ≈ Poisson(N/2ᵇ); a count far in that
//!   tail is a cluster.
//! - **Id changes at one IP:port**: a node keeps its id across a crawl; an endpoint answering
//!   with a new id again and again rotates identities.
//! - **BEP 42 mismatch** (off by default): the id does not match the address
//!   ([`crate::krpc::bep42_check`]). Many deployed clients predate BEP 42, so on the real DHT
//!   this flags a large honest share; it is meant for testbeds whose honest nodes comply.
//!
//! For Sybils measured in the Mainline DHT itself, see Wang and Kangasharju, "Real-world Sybil
//! attacks in BitTorrent Mainline DHT" (IEEE GLOBECOM 2012).

mod cluster;
#[cfg(test)]
mod tests;

pub use cluster::{Cluster, ClusterStats, common_prefix_len, densest_near, scan_clusters};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

use super::Score;
use crate::krpc::{Bep42, NodeId, bep42_check};

/// One node seen in a crawl: it answered from `addr` with `id` at time `at` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeSighting {
    /// The node id it answered with.
    pub id: NodeId,
    /// The address it answered from.
    pub addr: SocketAddr,
    /// When, in seconds on the crawl's clock.
    pub at: f64,
}

/// Thresholds for [`sybil_report`]. Counts are of distinct ids over the sightings given, so feed
/// one crawl (hours, not weeks): over a long period honest nodes restart under new ids.
#[derive(Debug, Clone, PartialEq)]
pub struct SybilConfig {
    /// Flag an IP with more distinct ids than this. Default 2: a node has one id; a second
    /// allows for a restart under a fresh id or a neighbour behind the same NAT. Carrier-grade
    /// NAT puts many honest users behind one IP: raise it for mobile networks.
    pub max_ids_per_ip: usize,
    /// Flag a /24 (IPv4) or /64 (IPv6) with more distinct ids than this. Default 8, the
    /// bucket size K: a subnet with more ids could on its own fill a bucket, or the K closest
    /// nodes of a lookup in a client without libtorrent's one-per-subnet rule.
    pub max_ids_per_subnet: usize,
    /// Flag an IP:port whose id changed more often than this, in time order. Default 1 (one
    /// restart with a new random id during the crawl).
    pub max_id_changes_per_addr: usize,
    /// Significance level for clusters near a key, after the Bonferroni corrections described
    /// in [`densest_near`] and [`scan_clusters`]. Default 1e-3.
    pub cluster_alpha: f64,
    /// How many bits past log₂ N the cluster scan looks. Default 32: a deeper cluster is still
    /// counted at the last depth (its ids share those bits too), where N honest ids form about
    /// N/2³³ sharing pairs in all, so looking deeper adds nothing.
    pub scan_extra_bits: u32,
    /// Flag ids that fail the BEP 42 check at their address. Default off (see the module docs).
    pub flag_bep42_mismatch: bool,
}

impl Default for SybilConfig {
    fn default() -> Self {
        SybilConfig {
            max_ids_per_ip: 2,
            max_ids_per_subnet: 8,
            max_id_changes_per_addr: 1,
            cluster_alpha: 1e-3,
            scan_extra_bits: 32,
            flag_bep42_mismatch: false,
        }
    }
}

/// Why [`sybil_report`] or a cluster search refused its input.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SybilError {
    /// The network size estimate is NaN, infinite or below 1.
    #[error("the network size must be a finite number ≥ 1, got {0}")]
    NetworkSize(f64),
    /// The significance level is not in (0, 1).
    #[error("the cluster significance level must be in (0, 1), got {0}")]
    Alpha(f64),
}

/// A /24 (IPv4) or /64 (IPv6) network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: IpAddr,
    /// 24 or 64.
    pub prefix_len: u8,
}

impl Subnet {
    /// The /24 or /64 holding `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn of(ip: IpAddr) -> Subnet {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Subnet {
                    network: IpAddr::V4(Ipv4Addr::new(a, b, c, 0)),
                    prefix_len: 24,
                }
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Subnet {
                    network: IpAddr::V6(Ipv6Addr::from(bits)),
                    prefix_len: 64,
                }
            }
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Why an id was flagged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SybilReason {
    /// Its IP carries more ids than [`SybilConfig::max_ids_per_ip`].
    IdsPerIp {
        /// The IP.
        ip: IpAddr,
        /// Distinct ids seen at it.
        ids: usize,
    },
    /// Its /24 or /64 carries more ids than [`SybilConfig::max_ids_per_subnet`].
    IdsPerSubnet {
        /// The subnet.
        subnet: Subnet,
        /// Distinct ids seen in it.
        ids: usize,
    },
    /// It was one of the ids of an IP:port whose id changed more than
    /// [`SybilConfig::max_id_changes_per_addr`] times.
    IdChanges {
        /// The IP:port.
        addr: SocketAddr,
        /// Id changes, in time order.
        changes: usize,
    },
    /// It is in a significant cluster around one of the given keys.
    NearKey(ClusterStats),
    /// It is in a significant cluster found by scanning id prefixes.
    PrefixCluster(ClusterStats),
    /// It fails the BEP 42 check at this address.
    Bep42Mismatch {
        /// The address.
        addr: SocketAddr,
    },
}

/// The flagged ids, each with every reason that applies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SybilReport {
    /// Flagged ids and their reasons, in the order the checks ran.
    pub flagged: BTreeMap<NodeId, Vec<SybilReason>>,
}

impl SybilReport {
    /// The flagged ids.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.flagged.keys().copied().collect()
    }

    /// Precision and recall against planted Sybil ids.
    pub fn score(&self, truth: &BTreeSet<NodeId>) -> Score {
        Score::of(&self.ids(), truth)
    }

    fn flag(&mut self, ids: impl IntoIterator<Item = NodeId>, reason: &SybilReason) {
        for id in ids {
            self.flagged.entry(id).or_default().push(reason.clone());
        }
    }
}

/// Runs every signal over `sightings`. `keys` are the keys to check for clusters (info-hashes the
/// crawl cares about, say); `network_size` is N for the cluster statistics (see
/// [`crate::analysis::size`]).
pub fn sybil_report(
    sightings: &[NodeSighting],
    keys: &[[u8; 20]],
    network_size: f64,
    config: &SybilConfig,
) -> Result<SybilReport, SybilError> {
    check_network_size(network_size)?;
    if !(config.cluster_alpha > 0.0 && config.cluster_alpha < 1.0) {
        return Err(SybilError::Alpha(config.cluster_alpha));
    }
    let mut report = SybilReport::default();

    let mut by_ip: BTreeMap<IpAddr, BTreeSet<NodeId>> = BTreeMap::new();
    let mut by_subnet: BTreeMap<Subnet, BTreeSet<NodeId>> = BTreeMap::new();
    for s in sightings {
        let ip = s.addr.ip().to_canonical();
        by_ip.entry(ip).or_default().insert(s.id);
        by_subnet.entry(Subnet::of(ip)).or_default().insert(s.id);
    }
    for (ip, ids) in by_ip.into_iter().filter(|(_, ids)| ids.len() > config.max_ids_per_ip) {
        report.flag(ids.iter().copied(), &SybilReason::IdsPerIp { ip, ids: ids.len() });
    }
    for (subnet, ids) in by_subnet
        .into_iter()
        .filter(|(_, ids)| ids.len() > config.max_ids_per_subnet)
    {
        report.flag(
            ids.iter().copied(),
            &SybilReason::IdsPerSubnet { subnet, ids: ids.len() },
        );
    }

    for (addr, ids, changes) in id_changes(sightings) {
        if changes > config.max_id_changes_per_addr {
            report.flag(ids, &SybilReason::IdChanges { addr, changes });
        }
    }

    let ids = cluster::sorted_distinct(&sightings.iter().map(|s| s.id).collect::<Vec<_>>());
    for key in keys {
        if let Some(c) = cluster::densest_in_sorted(&ids, key, network_size)
            && c.stats.ln_p_value < config.cluster_alpha.ln()
        {
            report.flag(c.members, &SybilReason::NearKey(c.stats));
        }
    }
    for c in scan_clusters(&ids, network_size, config.scan_extra_bits, config.cluster_alpha)? {
        report.flag(c.members, &SybilReason::PrefixCluster(c.stats));
    }

    if config.flag_bep42_mismatch {
        let mismatched: BTreeSet<(NodeId, SocketAddr)> = sightings
            .iter()
            .filter(|s| bep42_check(s.addr.ip().to_canonical(), &s.id) == Bep42::Invalid)
            .map(|s| (s.id, s.addr))
            .collect();
        for (id, addr) in mismatched {
            report.flag([id], &SybilReason::Bep42Mismatch { addr });
        }
    }
    Ok(report)
}

/// Per IP:port (IPv4-mapped addresses as IPv4): its distinct ids and how often its id changed
/// between consecutive sightings in time order (NaN times sort to one end).
fn id_changes(sightings: &[NodeSighting]) -> Vec<(SocketAddr, BTreeSet<NodeId>, usize)> {
    let mut by_addr: BTreeMap<SocketAddr, Vec<(f64, NodeId)>> = BTreeMap::new();
    for s in sightings {
        let addr = SocketAddr::new(s.addr.ip().to_canonical(), s.addr.port());
        by_addr.entry(addr).or_default().push((s.at, s.id));
    }
    by_addr
        .into_iter()
        .map(|(addr, mut seen)| {
            seen.sort_by(|a, b| a.0.total_cmp(&b.0));
            let changes = seen.windows(2).filter(|w| w[0].1 != w[1].1).count();
            (addr, seen.into_iter().map(|(_, id)| id).collect(), changes)
        })
        .collect()
}

fn check_network_size(n: f64) -> Result<(), SybilError> {
    if n.is_finite() && n >= 1.0 {
        Ok(())
    } else {
        Err(SybilError::NetworkSize(n))
    }
}
