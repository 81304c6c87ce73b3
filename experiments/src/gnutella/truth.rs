//! Ground truth, for scoring what a crawler or an analysis finds: a snapshot of the live overlay
//! (nodes with role, behaviour, online state and counters; the ultrapeer–ultrapeer and
//! ultrapeer–leaf connections both ends agree on), the churn session log, and what follows
//! from them (who is Sybil, poisoner or free rider; which ultrapeers a query can reach). Plain
//! data with serde, so an experiment can dump it next to its observations. It never probes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use onionlab_crawler::gnutella::snapshot::edge;
use serde::Serialize;

use super::node::NodeCounters;
use super::topology::{Behaviour, Role};

/// One node, as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeTruth {
    /// Its index in the plan.
    pub index: usize,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its servent GUID, hex.
    pub guid: String,
    /// Ultrapeer or leaf.
    pub role: Role,
    /// Honest or which adversary.
    pub behaviour: Behaviour,
    /// Whether an ultrapeer floods queries (false for black-hole Sybils and for leaves).
    pub forwards_queries: bool,
    /// Whether it is in a session.
    pub online: bool,
    /// Its counters so far.
    pub counters: NodeCounters,
}

/// A snapshot of the live overlay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Seconds since the overlay was ready.
    pub elapsed_secs: f64,
    /// Every node, by index.
    pub nodes: Vec<NodeTruth>,
    /// Ultrapeer links up now, as (lower index, higher index), sorted.
    pub ultrapeer_edges: Vec<(usize, usize)>,
    /// Leaf attachments up now, as (leaf, ultrapeer), sorted.
    pub leaf_edges: Vec<(usize, usize)>,
    /// Leaf attachments whose ultrapeer has not got the leaf's whole QRP table yet.
    pub qrp_pending: Vec<(usize, usize)>,
}

/// One session of one node, as it happened (seconds since the overlay was ready).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SessionRecord {
    /// The node.
    pub node: usize,
    /// When it joined (0 for the session it started with).
    pub start_secs: f64,
    /// When it left; `None` while the session lasts.
    pub end_secs: Option<f64>,
}

impl SessionRecord {
    /// The true session length, once it ended.
    pub fn length(&self) -> Option<f64> {
        self.end_secs.map(|end| end - self.start_secs)
    }
}

/// The live overlay as a crawler would map it: online ultrapeers, online leaves, and the
/// edges as address pairs (lower first, as the crawler's snapshots keep them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrTopology {
    /// Online ultrapeers.
    pub ultrapeers: BTreeSet<SocketAddr>,
    /// Online leaves.
    pub leaves: BTreeSet<SocketAddr>,
    /// Ultrapeer–ultrapeer and ultrapeer–leaf edges.
    pub edges: BTreeSet<(SocketAddr, SocketAddr)>,
}

impl Truth {
    /// The live topology by address.
    pub fn online_topology(&self) -> AddrTopology {
        let addr = |i: usize| self.nodes[i].addr;
        let online = |role: Role| -> BTreeSet<SocketAddr> {
            self.nodes
                .iter()
                .filter(|n| n.online && n.role == role)
                .map(|n| n.addr)
                .collect()
        };
        AddrTopology {
            ultrapeers: online(Role::Ultrapeer),
            leaves: online(Role::Leaf),
            edges: (self.ultrapeer_edges.iter().chain(&self.leaf_edges))
                .map(|&(a, b)| edge(addr(a), addr(b)))
                .collect(),
        }
    }

    /// The listen addresses of the nodes with this behaviour.
    pub fn addrs_of(&self, behaviour: Behaviour) -> BTreeSet<SocketAddr> {
        self.nodes
            .iter()
            .filter(|n| n.behaviour == behaviour)
            .map(|n| n.addr)
            .collect()
    }

    /// `index`'s ultrapeer neighbours and (for an ultrapeer) leaves, by index.
    pub fn neighbours(&self, index: usize) -> (BTreeSet<usize>, BTreeSet<usize>) {
        let mut ups = BTreeSet::new();
        let mut leaves = BTreeSet::new();
        for &(a, b) in &self.ultrapeer_edges {
            if a == index {
                ups.insert(b);
            } else if b == index {
                ups.insert(a);
            }
        }
        for &(leaf, up) in &self.leaf_edges {
            if leaf == index {
                ups.insert(up);
            } else if up == index {
                leaves.insert(leaf);
            }
        }
        (ups, leaves)
    }

    /// The ultrapeers a query sent by `from` with `ttl` reaches: those at distance 1 to `ttl`
    /// over live links, walking on only through ultrapeers that forward queries.
    pub fn ultrapeers_within(&self, from: usize, ttl: u8) -> BTreeSet<usize> {
        let mut adjacent: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &(a, b) in self.ultrapeer_edges.iter().chain(&self.leaf_edges) {
            adjacent.entry(a).or_default().push(b);
            adjacent.entry(b).or_default().push(a);
        }
        let mut distance: BTreeMap<usize, u8> = BTreeMap::from([(from, 0)]);
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            let d = distance[&n];
            let relays = n == from || self.nodes.get(n).is_some_and(|t| t.forwards_queries);
            if d == ttl || !relays {
                continue;
            }
            for &m in adjacent.get(&n).into_iter().flatten() {
                let is_up = self.nodes.get(m).is_some_and(|t| t.role == Role::Ultrapeer);
                if is_up && !distance.contains_key(&m) {
                    distance.insert(m, d + 1);
                    queue.push_back(m);
                }
            }
        }
        distance.into_keys().filter(|&n| n != from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(index: usize, role: Role, forwards: bool) -> NodeTruth {
        NodeTruth {
            index,
            addr: SocketAddr::from(([127, 0, 0, 1], index as u16 + 1)),
            guid: String::new(),
            role,
            behaviour: Behaviour::Honest,
            forwards_queries: forwards,
            online: true,
            counters: NodeCounters::default(),
        }
    }

    #[test]
    fn reach_follows_ttl_and_stops_at_black_holes() {
        // Leaf 5 on ultrapeer 0; a chain 0-1-2-3, with 1 also linked to 4 that swallows queries
        // and 4 linked to 3's far side... 4-3 gives no shortcut when 4 does not forward.
        let mut nodes: Vec<NodeTruth> = (0..5).map(|i| node(i, Role::Ultrapeer, i != 4)).collect();
        nodes.push(node(5, Role::Leaf, false));
        let truth = Truth {
            elapsed_secs: 0.0,
            nodes,
            ultrapeer_edges: vec![(0, 1), (1, 2), (2, 3), (1, 4), (3, 4)],
            leaf_edges: vec![(5, 0)],
            qrp_pending: vec![],
        };
        assert_eq!(truth.ultrapeers_within(5, 1), BTreeSet::from([0]));
        assert_eq!(truth.ultrapeers_within(5, 3), BTreeSet::from([0, 1, 2, 4]));
        assert_eq!(truth.ultrapeers_within(5, 4), BTreeSet::from([0, 1, 2, 3, 4]));
        assert_eq!(truth.neighbours(1), (BTreeSet::from([0, 2, 4]), BTreeSet::new()));
        assert_eq!(truth.neighbours(0), (BTreeSet::from([1]), BTreeSet::from([5])));
        let record = SessionRecord {
            node: 5,
            start_secs: 1.0,
            end_secs: Some(3.5),
        };
        assert_eq!(record.length(), Some(2.5));
    }
}
