//! One snapshot of a Gnutella overlay, assembled without I/O: the breadth-first frontier over
//! ultrapeers, and the nodes and edges that the crawler replies reveal. The tokio driver
//! ([`super::crawl`]) asks [`SnapshotAssembly::next_target`] whom to contact, feeds it each
//! reply ([`SnapshotAssembly::answered`]) or failure ([`SnapshotAssembly::failed`]), and takes
//! the [`Snapshot`] at the end. This module never touches a socket or a clock: times come in.
//!
//! # Roles and edges
//!
//! A servent that answers `200` says what it is: `X-Ultrapeer: True`/`False`, or, without that
//! header, the presence of `Leaves:` (LimeWire's crawler note: a leaf sends no `Leaves`). A node
//! that was not reached takes its role from the reports about it, whatever order they came in:
//! an ultrapeer if any `Peers:` or `X-Try-Ultrapeers:` names it (a leaf's `Peers` are its
//! ultrapeers), else a leaf if a `Leaves:` names it. Edges are undirected, one per pair, written
//! `(lower address, higher address)` ([`edge`]): every `Peers` and `Leaves` entry of a `200`
//! answer is an edge to the answerer, whether or not the other end is reached. A refusal
//! (`503` and the like) contributes no edges, only its `X-Try-Ultrapeers`.
//!
//! # Whom to contact
//!
//! Every seed (bootstrap addresses, and in later snapshots the ultrapeers known before), every
//! `Peers` entry, and, when configured, `Leaves` and `X-Try-Ultrapeers` entries; each address at
//! most once per snapshot, never a servent's own address, never an unroutable one (port 0,
//! unspecified, multicast, broadcast), at most [`FrontierRules::max_contacts`] in all.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::{DecodedHandshake, Handshake, HandshakeError, HandshakeLimits, PeerList, StartLine, decode_handshake_with};
use crate::observe::{Micros, Outcome};

/// What a servent is in the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// An ultrapeer: it routes for leaves and other ultrapeers.
    Ultrapeer,
    /// A leaf: it connects to a few ultrapeers only.
    Leaf,
    /// Neither said nor reported (a seed that did not answer).
    Unknown,
}

impl Role {
    /// `ultrapeer`, `leaf` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ultrapeer => "ultrapeer",
            Role::Leaf => "leaf",
            Role::Unknown => "unknown",
        }
    }
}

/// What became of a node in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    /// Reported by others, not contacted (a leaf, or over the contact limit).
    NotContacted,
    /// Contacted; the snapshot ended before the probe did.
    Unfinished,
    /// It answered the crawler handshake with `200`.
    Answered,
    /// It answered with another status (`503` busy, ...): alive, but no neighbour lists.
    Refused {
        /// The status code.
        code: u16,
    },
    /// No Gnutella answer: timeout, connection refused, garbage, a limit exceeded, or denied.
    Failed {
        /// The outcome of its last attempt.
        outcome: Outcome,
    },
}

impl NodeStatus {
    /// Whether the node answered with a Gnutella status line (`200` or a refusal).
    pub fn is_up(&self) -> bool {
        matches!(self, NodeStatus::Answered | NodeStatus::Refused { .. })
    }

    /// A short name: `not_contacted`, `unfinished`, `answered`, `refused_503`, `failed_timeout`...
    pub fn label(&self) -> String {
        match self {
            NodeStatus::NotContacted => "not_contacted".into(),
            NodeStatus::Unfinished => "unfinished".into(),
            NodeStatus::Answered => "answered".into(),
            NodeStatus::Refused { code } => format!("refused_{code}"),
            NodeStatus::Failed { outcome } => format!("failed_{}", outcome.as_str()),
        }
    }
}

/// Everything one snapshot learnt about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its role (see the module docs).
    pub role: Role,
    /// Whether and how it answered.
    pub status: NodeStatus,
    /// Its `User-Agent`, if it answered with one.
    pub user_agent: Option<String>,
    /// The address it says it listens on (`Listen-IP` and older spellings), if it said.
    pub listen_addr: Option<SocketAddr>,
    /// The servents whose `Peers`, `Leaves` or `X-Try-Ultrapeers` named it.
    pub reported_by: BTreeSet<SocketAddr>,
    /// When its probe ended, if it was contacted.
    pub probed_at: Option<Micros>,
    /// How long its last attempt took, if it was contacted.
    pub rtt: Option<Duration>,
    /// Why it failed or refused, in words.
    pub error: Option<String>,
}

impl NodeInfo {
    fn new() -> Self {
        NodeInfo {
            role: Role::Unknown,
            status: NodeStatus::NotContacted,
            user_agent: None,
            listen_addr: None,
            reported_by: BTreeSet::new(),
            probed_at: None,
            rtt: None,
            error: None,
        }
    }
}

/// Why a snapshot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Nobody was left to contact: the snapshot is complete.
    Exhausted,
    /// [`FrontierRules::max_contacts`] addresses were contacted; others were left.
    MaxContacts,
    /// The snapshot's time limit passed.
    MaxDuration,
}

/// One snapshot of the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When it began.
    pub started_at: Micros,
    /// How long it took.
    pub duration: Duration,
    /// Every address known, contacted or reported.
    pub nodes: BTreeMap<SocketAddr, NodeInfo>,
    /// Undirected neighbour edges, `(lower, higher)` (see [`edge`]): ultrapeer–ultrapeer and
    /// ultrapeer–leaf.
    pub edges: BTreeSet<(SocketAddr, SocketAddr)>,
    /// Addresses contacted without a Gnutella answer ([`NodeStatus::Failed`]).
    pub unreachable: BTreeSet<SocketAddr>,
    /// Addresses contacted (probes started).
    pub contacted: usize,
    /// Why it ended.
    pub stop: StopReason,
}

/// The edge between `a` and `b` as [`Snapshot::edges`] holds it: the lower address first.
pub fn edge(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Snapshot {
    /// Addresses with `role`.
    pub fn with_role(&self, role: Role) -> BTreeSet<SocketAddr> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.role == role)
            .map(|(a, _)| *a)
            .collect()
    }

    /// The ultrapeers.
    pub fn ultrapeers(&self) -> BTreeSet<SocketAddr> {
        self.with_role(Role::Ultrapeer)
    }

    /// The leaves.
    pub fn leaves(&self) -> BTreeSet<SocketAddr> {
        self.with_role(Role::Leaf)
    }

    /// Addresses that answered (`200` or a refusal).
    pub fn reached(&self) -> BTreeSet<SocketAddr> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.status.is_up())
            .map(|(a, _)| *a)
            .collect()
    }

    /// The role of `addr`, [`Role::Unknown`] if it is not known.
    pub fn role(&self, addr: SocketAddr) -> Role {
        self.nodes.get(&addr).map_or(Role::Unknown, |n| n.role)
    }

    /// Edges between two ultrapeers.
    pub fn ultrapeer_edges(&self) -> BTreeSet<(SocketAddr, SocketAddr)> {
        self.edges
            .iter()
            .filter(|(a, b)| self.role(*a) == Role::Ultrapeer && self.role(*b) == Role::Ultrapeer)
            .copied()
            .collect()
    }

    /// Edges between an ultrapeer and a leaf, as `(ultrapeer, leaf)`.
    pub fn leaf_edges(&self) -> BTreeSet<(SocketAddr, SocketAddr)> {
        self.edges
            .iter()
            .filter_map(|&(a, b)| match (self.role(a), self.role(b)) {
                (Role::Ultrapeer, Role::Leaf) => Some((a, b)),
                (Role::Leaf, Role::Ultrapeer) => Some((b, a)),
                _ => None,
            })
            .collect()
    }

    /// How many leaf connections each ultrapeer holds (ultrapeers without leaves included).
    pub fn leaves_per_ultrapeer(&self) -> BTreeMap<SocketAddr, usize> {
        let mut counts: BTreeMap<SocketAddr, usize> = self.ultrapeers().into_iter().map(|u| (u, 0)).collect();
        for (u, _) in self.leaf_edges() {
            *counts.entry(u).or_insert(0) += 1;
        }
        counts
    }
}

/// What a servent answered to the crawler handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlerAnswer {
    /// The status code (200 accepts the crawler; 503 and others refuse).
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `X-Ultrapeer`, when it is `True` or `False`.
    pub ultrapeer: Option<bool>,
    /// `Peers`.
    pub peers: Option<PeerList>,
    /// `Leaves` (an ultrapeer's only).
    pub leaves: Option<PeerList>,
    /// `X-Try-Ultrapeers`.
    pub try_ultrapeers: Option<PeerList>,
    /// `Listen-IP` (or `X-My-Address`, `Node`).
    pub listen_addr: Option<SocketAddr>,
    /// Deviations the decoder accepted.
    pub deviations: usize,
}

/// Why bytes are not an answer to the crawler handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// Not a header block, or over the limits.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The block ended before its blank line.
    #[error("the reply ended before its blank line")]
    Incomplete,
    /// A `GNUTELLA CONNECT` block where a response belongs.
    #[error("a connect line instead of a response")]
    NotAResponse,
}

impl CrawlerAnswer {
    /// The answer in a decoded response block; [`AnswerError::NotAResponse`] for a connect block.
    pub fn from_handshake(decoded: &DecodedHandshake) -> Result<Self, AnswerError> {
        let Handshake { start, headers } = &decoded.handshake;
        let StartLine::Response { code, reason, .. } = start else {
            return Err(AnswerError::NotAResponse);
        };
        Ok(CrawlerAnswer {
            code: *code,
            reason: reason.clone(),
            user_agent: headers.user_agent().map(str::to_owned),
            ultrapeer: headers.ultrapeer(),
            peers: headers.peers(),
            leaves: headers.leaves(),
            try_ultrapeers: headers.try_ultrapeers(),
            listen_addr: headers.listen_addr(),
            deviations: decoded.deviations.len(),
        })
    }

    /// The answer in `raw`, a whole response block (what a probe keeps as its visit's raw).
    pub fn decode(raw: &[u8], limits: HandshakeLimits) -> Result<Self, AnswerError> {
        let (decoded, _) = decode_handshake_with(raw, limits)?.ok_or(AnswerError::Incomplete)?;
        Self::from_handshake(&decoded)
    }

    /// The role it claims: `X-Ultrapeer` if given, else ultrapeer exactly when `Leaves` is there.
    pub fn role(&self) -> Role {
        match self.ultrapeer {
            Some(true) => Role::Ultrapeer,
            Some(false) => Role::Leaf,
            None if self.leaves.is_some() => Role::Ultrapeer,
            None => Role::Leaf,
        }
    }
}

/// Which reported addresses a snapshot contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontierRules {
    /// Contact the addresses in `Leaves` too (they answer with their ultrapeers).
    pub contact_leaves: bool,
    /// Contact the addresses in `X-Try-Ultrapeers` (discovery only: they make no edges).
    pub follow_try_ultrapeers: bool,
    /// Contact at most this many addresses.
    pub max_contacts: usize,
}

impl Default for FrontierRules {
    /// Ultrapeers only (like Cruiser), following `X-Try-Ultrapeers`, at most a million contacts.
    fn default() -> Self {
        FrontierRules {
            contact_leaves: false,
            follow_try_ultrapeers: true,
            max_contacts: 1_000_000,
        }
    }
}

/// How one report names an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Peer,
    Leaf,
    Try,
}

/// A snapshot being assembled (see the module docs).
#[derive(Debug, Clone)]
pub struct SnapshotAssembly {
    started_at: Micros,
    rules: FrontierRules,
    nodes: BTreeMap<SocketAddr, NodeInfo>,
    /// Reported as an ultrapeer (`Peers`, `X-Try-Ultrapeers`) / as a leaf, by anyone.
    reported_up: BTreeSet<SocketAddr>,
    reported_leaf: BTreeSet<SocketAddr>,
    edges: BTreeSet<(SocketAddr, SocketAddr)>,
    queued: BTreeSet<SocketAddr>,
    frontier: VecDeque<SocketAddr>,
    contacted: usize,
    limited: bool,
}

impl SnapshotAssembly {
    /// A snapshot starting at `started_at` from `seeds` (contacted whatever their role).
    pub fn new(started_at: Micros, seeds: impl IntoIterator<Item = SocketAddr>, rules: FrontierRules) -> Self {
        let mut s = SnapshotAssembly {
            started_at,
            rules,
            nodes: BTreeMap::new(),
            reported_up: BTreeSet::new(),
            reported_leaf: BTreeSet::new(),
            edges: BTreeSet::new(),
            queued: BTreeSet::new(),
            frontier: VecDeque::new(),
            contacted: 0,
            limited: false,
        };
        for seed in seeds {
            s.nodes.entry(seed).or_insert_with(NodeInfo::new);
            s.enqueue(seed);
        }
        s
    }

    fn enqueue(&mut self, addr: SocketAddr) {
        if crate::dht::crawl::routable(addr) && self.queued.insert(addr) {
            self.frontier.push_back(addr);
        }
    }

    /// The next address to contact, breadth-first; `None` when the frontier is empty or the
    /// contact limit is reached. The node's status becomes [`NodeStatus::Unfinished`] until its
    /// answer or failure comes in.
    pub fn next_target(&mut self) -> Option<SocketAddr> {
        if self.contacted >= self.rules.max_contacts {
            self.limited |= !self.frontier.is_empty();
            return None;
        }
        let addr = self.frontier.pop_front()?;
        self.contacted += 1;
        self.nodes.entry(addr).or_insert_with(NodeInfo::new).status = NodeStatus::Unfinished;
        Some(addr)
    }

    /// Addresses waiting to be contacted.
    pub fn frontier_len(&self) -> usize {
        self.frontier.len()
    }

    /// `addr` answered at `at` after `rtt`.
    pub fn answered(&mut self, addr: SocketAddr, at: Micros, rtt: Duration, answer: &CrawlerAnswer) {
        let own = [Some(addr), answer.listen_addr];
        {
            let node = self.nodes.entry(addr).or_insert_with(NodeInfo::new);
            node.probed_at = Some(at);
            node.rtt = Some(rtt);
            node.user_agent.clone_from(&answer.user_agent);
            node.listen_addr = answer.listen_addr;
            if answer.code == 200 {
                node.status = NodeStatus::Answered;
                node.role = answer.role();
                node.error = None;
            } else {
                node.status = NodeStatus::Refused { code: answer.code };
                node.error = Some(format!("{} {}", answer.code, answer.reason).trim_end().to_owned());
                if let Some(up) = answer.ultrapeer {
                    node.role = if up { Role::Ultrapeer } else { Role::Leaf };
                }
            }
        }
        let lists = [
            (answer.peers.as_ref(), Report::Peer),
            (answer.leaves.as_ref(), Report::Leaf),
            (answer.try_ultrapeers.as_ref(), Report::Try),
        ];
        for (list, report) in lists {
            let Some(list) = list else { continue };
            let neighbour = report != Report::Try && answer.code == 200;
            if report != Report::Try && !neighbour {
                continue;
            }
            for other in list.addrs() {
                if own.contains(&Some(other)) {
                    continue;
                }
                self.reported(addr, other, report);
                if neighbour {
                    self.edges.insert(edge(addr, other));
                }
            }
        }
    }

    fn reported(&mut self, by: SocketAddr, addr: SocketAddr, report: Report) {
        self.nodes
            .entry(addr)
            .or_insert_with(NodeInfo::new)
            .reported_by
            .insert(by);
        let contact = match report {
            Report::Peer => {
                self.reported_up.insert(addr);
                true
            }
            Report::Try => {
                self.reported_up.insert(addr);
                self.rules.follow_try_ultrapeers
            }
            Report::Leaf => {
                self.reported_leaf.insert(addr);
                self.rules.contact_leaves
            }
        };
        if contact {
            self.enqueue(addr);
        }
    }

    /// `addr` gave no Gnutella answer (`outcome` is never [`Outcome::Ok`]).
    pub fn failed(&mut self, addr: SocketAddr, at: Micros, rtt: Duration, outcome: Outcome, error: &str) {
        let node = self.nodes.entry(addr).or_insert_with(NodeInfo::new);
        node.probed_at = Some(at);
        node.rtt = Some(rtt);
        node.status = NodeStatus::Failed { outcome };
        node.error = Some(error.to_owned());
    }

    /// The snapshot, `duration` after its start, ended for `stop` (a snapshot that ran out of
    /// addresses after hitting the contact limit ends with [`StopReason::MaxContacts`]).
    pub fn finish(mut self, duration: Duration, stop: StopReason) -> Snapshot {
        for (addr, node) in &mut self.nodes {
            let said = matches!(node.status, NodeStatus::Answered)
                || (matches!(node.status, NodeStatus::Refused { .. }) && node.role != Role::Unknown);
            if !said {
                node.role = if self.reported_up.contains(addr) {
                    Role::Ultrapeer
                } else if self.reported_leaf.contains(addr) {
                    Role::Leaf
                } else {
                    Role::Unknown
                };
            }
        }
        let unreachable = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n.status, NodeStatus::Failed { .. }))
            .map(|(a, _)| *a)
            .collect();
        let stop = match stop {
            StopReason::Exhausted if self.limited => StopReason::MaxContacts,
            other => other,
        };
        Snapshot {
            started_at: self.started_at,
            duration,
            nodes: self.nodes,
            edges: self.edges,
            unreachable,
            contacted: self.contacted,
            stop,
        }
    }
}

#[cfg(test)]
mod tests;
