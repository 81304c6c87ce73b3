//! The overlay's plan, drawn from the seed before any socket opens: every node's address,
//! servent GUID, role, behaviour, library and churn schedule, the ultrapeer graph (random or
//! preferential) and the leaves' attachments. Pure and deterministic: the same configuration
//! gives the same plan, byte for byte. The running overlay dials what the plan says; it never
//! changes the plan.
//!
//! Node indices: honest ultrapeers `0..U`, leaves `U..U+L`, Sybil ultrapeers after them.
//! Addresses ([`honest_ip`], [`sybil_ip`], [`poisoner_ip`]), all on the configured port: honest
//! node i (ultrapeers, honest leaves, free riders) at `base_ip + (i mod 256)·2⁸ + ⌊i/256⌋ + 1`,
//! one per /24 for the first 256 and at most ⌈N/256⌉ per /24 after that, as real hosts spread
//! over many networks; the adversaries come from one hosting range each, packed: Sybil j at
//! `base_ip + 2¹⁶ + 1 + j`, poisoner j at `base_ip + 2¹⁶ + 2¹⁵ + 1 + j` (the next /16), which is
//! what the per-/24 signals of a crawler look for.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use onionlab_crawler::dht::space::SplitMix64;
use onionlab_crawler::gnutella::Guid;
use serde::Serialize;

use super::churn::{self, PlannedSession};
use super::config::{ConfigError, OverlayConfig, TopologyModel};
use super::files::{Catalogue, Library};

/// A node's place in the two-tier overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Routes queries among ultrapeers and to its leaves.
    Ultrapeer,
    /// Shares files, sends queries to its ultrapeers, routes nothing.
    Leaf,
}

/// What a node does beyond (or instead of) following the protocol honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// One of many ultrapeer identities of one adversary, in the Sybil address range.
    Sybil,
    /// A leaf answering queries for popular titles with decoys.
    Poisoner,
    /// A leaf sharing nothing, answering nothing, serving nothing.
    FreeRider,
}

/// One planned node.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNode {
    /// Its index.
    pub index: usize,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its servent GUID (in its QueryHits).
    pub guid: Guid,
    /// Ultrapeer or leaf.
    pub role: Role,
    /// Honest or which adversary.
    pub behaviour: Behaviour,
    /// What it shares.
    pub library: Library,
    /// Its sessions; empty for a node that never churns (up from start to stop).
    pub sessions: Vec<PlannedSession>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Every node, by index.
    pub nodes: Vec<PlannedNode>,
    /// Ultrapeer links as (dialer, acceptor) indices, dialer first in each pair.
    pub ultrapeer_links: Vec<(usize, usize)>,
    /// Leaf attachments as (leaf, ultrapeer) indices; the leaf dials.
    pub leaf_links: Vec<(usize, usize)>,
    /// The file catalogue.
    pub catalogue: Catalogue,
}

/// Independent streams per purpose, so that a change to one (say, more files) leaves the
/// others (topology) as they were.
pub(crate) fn stream(seed: u64, purpose: u64) -> SplitMix64 {
    SplitMix64::new(SplitMix64::new(seed ^ purpose.wrapping_mul(0xA24B_AED4_963E_E407)).next_u64())
}

fn offset(base: Ipv4Addr, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n as u32))
}

/// Honest node `i`'s address: the `i mod 256`-th /24 of the base /16, host `⌊i/256⌋ + 1`.
pub fn honest_ip(base: Ipv4Addr, i: usize) -> Ipv4Addr {
    offset(base, ((i % 256) << 8) + i / 256 + 1)
}

/// Sybil ultrapeer `j`'s address: consecutive addresses from the start of the next /16.
pub fn sybil_ip(base: Ipv4Addr, j: usize) -> Ipv4Addr {
    offset(base, (1 << 16) + 1 + j)
}

/// Poisoning leaf `j`'s address: consecutive addresses from the middle of the next /16.
pub fn poisoner_ip(base: Ipv4Addr, j: usize) -> Ipv4Addr {
    offset(base, (1 << 16) + (1 << 15) + 1 + j)
}

impl Plan {
    /// Draws the plan of `config`.
    pub fn new(config: &OverlayConfig) -> Result<Plan, ConfigError> {
        config.validate()?;
        let (ups, leaves, sybils) = (config.ultrapeers, config.leaves, config.sybils.count);
        let total = ups + leaves + sybils;
        let mut ids = stream(config.seed, 1);
        let mut roles = stream(config.seed, 2);
        let mut files = stream(config.seed, 3);
        let mut churn_rng = stream(config.seed, 4);
        let mut graph = stream(config.seed, 5);

        let catalogue = Catalogue::generate(&config.files, &mut files);
        // Adversarial leaves: a seeded shuffle of the leaf indices, free riders first.
        let mut leaf_order: Vec<usize> = (ups..ups + leaves).collect();
        shuffle(&mut leaf_order, &mut roles);
        let free: BTreeSet<usize> = leaf_order[..config.free_riders].iter().copied().collect();
        let poison: Vec<usize> = leaf_order[config.free_riders..config.free_riders + config.poisoners.count].to_vec();
        let poisoner_rank = |index: usize| poison.iter().position(|p| *p == index);
        let decoy_seed = roles.next_u64();

        let mut nodes = Vec::with_capacity(total);
        for index in 0..total {
            let (role, behaviour, ip) = if index < ups {
                (Role::Ultrapeer, Behaviour::Honest, honest_ip(config.base_ip, index))
            } else if index < ups + leaves {
                match poisoner_rank(index) {
                    Some(j) => (Role::Leaf, Behaviour::Poisoner, poisoner_ip(config.base_ip, j)),
                    None if free.contains(&index) => {
                        (Role::Leaf, Behaviour::FreeRider, honest_ip(config.base_ip, index))
                    }
                    None => (Role::Leaf, Behaviour::Honest, honest_ip(config.base_ip, index)),
                }
            } else {
                let j = index - ups - leaves;
                (Role::Ultrapeer, Behaviour::Sybil, sybil_ip(config.base_ip, j))
            };
            let mut guid = [0u8; 16];
            ids.fill(&mut guid);
            let library = match (role, behaviour) {
                (Role::Ultrapeer, _) => Library::default(),
                (_, Behaviour::FreeRider) => Library::free_rider(),
                (_, Behaviour::Poisoner) => Library::decoys(
                    &catalogue,
                    config.poisoners.targets,
                    config.poisoners.decoy,
                    decoy_seed ^ index as u64,
                ),
                _ => Library::genuine(&catalogue, &catalogue.pick(config.files.per_leaf, &mut files)),
            };
            let sessions = match &config.churn {
                Some(c) if behaviour != Behaviour::Sybil => {
                    let fraction = match role {
                        Role::Ultrapeer => c.ultrapeer_fraction,
                        Role::Leaf => c.leaf_fraction,
                    };
                    if churn::churns(fraction, &mut churn_rng) {
                        churn::schedule(&c.session, &c.downtime, c.horizon_secs, &mut churn_rng)
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            };
            nodes.push(PlannedNode {
                index,
                addr: SocketAddr::V4(SocketAddrV4::new(ip, config.port)),
                guid: Guid::modern(guid),
                role,
                behaviour,
                library,
                sessions,
            });
        }

        let mut degree = vec![0usize; total];
        let mut ultrapeer_links = match config.topology {
            TopologyModel::Random => random_graph(ups, config, &mut degree, &mut graph),
            TopologyModel::Preferential => preferential_graph(ups, config, &mut degree, &mut graph),
        };
        for s in ups + leaves..total {
            let targets = pick_distinct(ups, config.sybils.links.min(ups), &mut graph, |u| {
                degree[u] < config.max_ultrapeer_peers
            });
            for u in targets {
                degree[u] += 1;
                degree[s] += 1;
                ultrapeer_links.push((s, u));
            }
        }

        let mut leaves_of = vec![0usize; ups];
        let mut leaf_links = Vec::new();
        for leaf in ups..ups + leaves {
            let span = (config.leaf_ultrapeers_max - config.leaf_ultrapeers_min + 1) as u64;
            let want = config.leaf_ultrapeers_min + graph.below(span) as usize;
            let targets = pick_distinct(ups, want, &mut graph, |u| leaves_of[u] < config.max_leaves);
            if targets.len() < config.leaf_ultrapeers_min {
                return Err(ConfigError(format!("no room for leaf {leaf}: raise max_leaves")));
            }
            for u in targets {
                leaves_of[u] += 1;
                leaf_links.push((leaf, u));
            }
        }
        Ok(Plan {
            nodes,
            ultrapeer_links,
            leaf_links,
            catalogue,
        })
    }

    /// The nodes `index` dials: its ultrapeer links as dialer, or a leaf's ultrapeers.
    pub fn dials(&self, index: usize) -> Vec<usize> {
        self.ultrapeer_links
            .iter()
            .chain(&self.leaf_links)
            .filter(|(from, _)| *from == index)
            .map(|&(_, to)| to)
            .collect()
    }
}

pub(crate) fn shuffle<T>(v: &mut [T], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Up to `count` distinct indices in `0..n` that pass `ok`, uniformly (a seeded shuffle).
fn pick_distinct(n: usize, count: usize, rng: &mut SplitMix64, ok: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    shuffle(&mut all, rng);
    all.into_iter().filter(|&i| ok(i)).take(count).collect()
}

fn linked(links: &BTreeSet<(usize, usize)>, a: usize, b: usize) -> bool {
    links.contains(&(a.min(b), a.max(b)))
}

/// Each ultrapeer dials `ultrapeer_links` others chosen uniformly among those not yet linked to
/// it and not full.
fn random_graph(ups: usize, config: &OverlayConfig, degree: &mut [usize], rng: &mut SplitMix64) -> Vec<(usize, usize)> {
    let cap = config.max_ultrapeer_peers;
    let mut set = BTreeSet::new();
    let mut links = Vec::new();
    for a in 0..ups {
        let picks = pick_distinct(ups, config.ultrapeer_links, rng, |b| {
            b != a && !linked(&set, a, b) && degree[b] < cap && degree[a] < cap
        });
        for b in picks {
            if degree[a] >= cap {
                break;
            }
            set.insert((a.min(b), a.max(b)));
            degree[a] += 1;
            degree[b] += 1;
            links.push((a, b));
        }
    }
    links
}

/// Barabási–Albert: a clique of the first `m + 1` ultrapeers, then each next one dials `m`
/// earlier ones picked with probability proportional to their degree.
pub(crate) fn preferential_graph(
    ups: usize,
    config: &OverlayConfig,
    degree: &mut [usize],
    rng: &mut SplitMix64,
) -> Vec<(usize, usize)> {
    let m = config.ultrapeer_links.max(1);
    let cap = config.max_ultrapeer_peers;
    let mut set = BTreeSet::new();
    let mut links = Vec::new();
    // Every link's two ends: a uniform draw from it is a degree-proportional draw.
    let mut ends: Vec<usize> = Vec::new();
    let mut link = |a: usize, b: usize, degree: &mut [usize], ends: &mut Vec<usize>| {
        set.insert((a.min(b), a.max(b)));
        degree[a] += 1;
        degree[b] += 1;
        ends.extend([a, b]);
        links.push((a, b));
    };
    for a in 0..ups.min(m + 1) {
        for b in 0..a {
            if degree[a] < cap && degree[b] < cap {
                link(a, b, degree, &mut ends);
            }
        }
    }
    for a in m + 1..ups {
        let mut chosen = Vec::new();
        for _ in 0..m * 32 {
            if chosen.len() == m || ends.is_empty() {
                break;
            }
            let b = ends[rng.below(ends.len() as u64) as usize];
            if !chosen.contains(&b) && degree[b] < cap {
                chosen.push(b);
            }
        }
        for b in chosen {
            if degree[a] < cap {
                link(a, b, degree, &mut ends);
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnutella::config::ChurnConfig;

    fn small(topology: TopologyModel) -> OverlayConfig {
        OverlayConfig {
            ultrapeers: 50,
            leaves: 450,
            topology,
            sybils: crate::gnutella::config::SybilConfig {
                count: 10,
                ..Default::default()
            },
            free_riders: 20,
            poisoners: crate::gnutella::config::PoisonConfig {
                count: 5,
                ..Default::default()
            },
            churn: Some(ChurnConfig::default()),
            ..OverlayConfig::default()
        }
    }

    fn connected(plan: &Plan, ups: usize) -> bool {
        let mut seen = vec![false; ups];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(a) = stack.pop() {
            for &(x, y) in &plan.ultrapeer_links {
                for (p, q) in [(x, y), (y, x)] {
                    if p == a && q < ups && !seen[q] {
                        seen[q] = true;
                        stack.push(q);
                    }
                }
            }
        }
        seen.iter().all(|&s| s)
    }

    #[test]
    fn same_seed_same_plan_and_roles_addresses_and_caps_hold() {
        for model in [TopologyModel::Random, TopologyModel::Preferential] {
            let config = small(model);
            let plan = Plan::new(&config).unwrap();
            assert_eq!(plan, Plan::new(&config).unwrap());
            let other = Plan::new(&OverlayConfig {
                seed: 2,
                ..config.clone()
            })
            .unwrap();
            assert_ne!(plan.ultrapeer_links, other.ultrapeer_links);
            assert_eq!(plan.nodes.len(), 510);
            let count = |b: Behaviour| plan.nodes.iter().filter(|n| n.behaviour == b).count();
            assert_eq!(
                (
                    count(Behaviour::Sybil),
                    count(Behaviour::FreeRider),
                    count(Behaviour::Poisoner)
                ),
                (10, 20, 5)
            );
            let addrs: BTreeSet<SocketAddr> = plan.nodes.iter().map(|n| n.addr).collect();
            assert_eq!(addrs.len(), 510);
            assert_eq!(plan.nodes[0].addr, "127.60.0.1:6346".parse().unwrap());
            assert_eq!(plan.nodes[500].addr, "127.61.0.1:6346".parse().unwrap());
            assert!(connected(&plan, 50), "{model:?}");
            let mut up_degree = vec![0; 510];
            let mut leaf_count = vec![0; 510];
            for &(a, b) in &plan.ultrapeer_links {
                assert_eq!(plan.nodes[a].role, Role::Ultrapeer);
                assert_eq!(plan.nodes[b].role, Role::Ultrapeer);
                up_degree[a] += 1;
                up_degree[b] += 1;
            }
            for &(l, u) in &plan.leaf_links {
                assert_eq!(
                    (plan.nodes[l].role, plan.nodes[u].behaviour),
                    (Role::Leaf, Behaviour::Honest)
                );
                leaf_count[u] += 1;
            }
            assert!(up_degree.iter().all(|&d| d <= config.max_ultrapeer_peers));
            assert!(leaf_count.iter().all(|&d| d <= config.max_leaves));
            for leaf in 50..500 {
                let n = plan.dials(leaf).len();
                assert!((1..=3).contains(&n), "leaf {leaf}: {n}");
            }
            assert!(
                plan.nodes[50..500].iter().all(|n| !n.sessions.is_empty()),
                "all leaves churn"
            );
            assert!(plan.nodes[..50].iter().all(|n| n.sessions.is_empty()));
        }
    }

    #[test]
    fn preferential_attachment_grows_hubs() {
        let max_degree = |model| {
            let plan = Plan::new(&OverlayConfig {
                ultrapeers: 300,
                leaves: 0,
                max_ultrapeer_peers: 300,
                topology: model,
                ..OverlayConfig::default()
            })
            .unwrap();
            let mut d = vec![0; 300];
            for (a, b) in plan.ultrapeer_links {
                d[a] += 1;
                d[b] += 1;
            }
            d.into_iter().max().unwrap()
        };
        let (random, preferential) = (
            max_degree(TopologyModel::Random),
            max_degree(TopologyModel::Preferential),
        );
        assert!(
            preferential > 2 * random,
            "random {random}, preferential {preferential}"
        );
    }
}
