//! Chord lookups under churn, with repair (Stoica et al., SIGCOMM 2001, §4.3–§5.3 and the
//! lookups-during-stabilisation experiment of §6): nodes join and leave while every node
//! repairs its state by the protocol's own periodic work, and lookups run meanwhile.
//!
//! The ring starts with `nodes` nodes and correct state. Joins and departures each arrive as a
//! Poisson process of `per_minute` events a minute, so the size stays about `nodes`; a
//! departure is a failure (no goodbye), of a node drawn uniformly among the live ones. A node
//! keeps a successor list of r entries, a predecessor and one finger per bit, all learnt from
//! the protocol, never from the simulator's view of the ring:
//! - **join**: a new node with a fresh random id asks a random live node to look its id up
//!   (through that node's fingers and successors); the answer becomes its successor and every
//!   finger, and it stabilises at once;
//! - **stabilise**, every `stabilize_secs` on average (each period drawn uniformly from half to
//!   one and a half times it): drop dead successors (a node with none left falls back to its
//!   closest live finger), adopt the successor's predecessor if it sits in between, copy the
//!   successor's list behind it, notify the successor (which takes this node as predecessor if
//!   it is closer than the one it has, or that one is dead), and fix every finger by looking
//!   its target up through the node's own tables;
//! - **lookup**, `lookups_per_minute` of them: from a random live node for a random key, routed
//!   as in the failure experiment but over each node's own, possibly stale, tables; each dead
//!   entry tried costs a timeout. It succeeds when it returns the key's true live owner: a
//!   lookup that ends at a node not yet told of a newcomer returns the wrong owner and fails.
//!
//! A node's list is all dead before it stabilises again with probability about (P/L)^r, for a
//! period P and a mean lifetime L = nodes / rate: two successors, the lecture's choice, are
//! enough under mild churn and not under heavy churn, where longer lists keep lookups alive.
//! Lookups are counted after a warm-up of two stabilisation periods. Never: latency, retries,
//! graceful departures, a node that knows another's state without asking.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Deserialize;

use super::super::{ParamsError, require, stream, unit};
use super::{dist, in_half_open};
use onionlab_crawler::dht::space::SplitMix64;

/// The churn experiment's parameters (`churn:` inside `chord:`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnParams {
    /// Nodes at the start (and, on average, throughout).
    pub nodes: usize,
    /// Churn rates: joins a minute, and as many departures.
    pub per_minute: Vec<u32>,
    /// Mean period of a node's stabilisation, seconds.
    pub stabilize_secs: u32,
    /// Simulated time per setting, seconds (the first two stabilisation periods not counted).
    pub duration_secs: u32,
    /// Lookups a minute.
    pub lookups_per_minute: u32,
    /// Successor-list lengths r to compare.
    pub successor_lists: Vec<usize>,
}

impl Default for ChurnParams {
    /// 256 nodes; 8, 30, 60 and 120 joins and departures a minute (mean lifetimes of 32, 8.5,
    /// 4.3 and 2.1 minutes); 30 s stabilisation; 20 simulated minutes; 120 lookups a minute;
    /// successor lists of 2, 4 and 8.
    fn default() -> Self {
        ChurnParams {
            nodes: 256,
            per_minute: vec![8, 30, 60, 120],
            stabilize_secs: 30,
            duration_secs: 1200,
            lookups_per_minute: 120,
            successor_lists: vec![2, 4, 8],
        }
    }
}

/// Bootstrap nodes a newcomer tries before it gives up.
const JOIN_TRIES: usize = 3;

/// Largest ring the churn experiment simulates.
const MAX_CHURN_NODES: usize = 1 << 14;

impl ChurnParams {
    /// Refuses parameters the model cannot run.
    pub(super) fn validate(&self, ring_bits: u32) -> Result<(), ParamsError> {
        require(
            (8..=MAX_CHURN_NODES).contains(&self.nodes) && (self.nodes as u64) <= (1u64 << ring_bits.min(63)) / 4,
            "churn.nodes",
            format!("must be in 8..={MAX_CHURN_NODES} and at most a quarter of the ring"),
        )?;
        require(
            self.per_minute.iter().all(|&r| (1..=60_000).contains(&r)),
            "churn.per_minute",
            "each rate must be in 1..=60000",
        )?;
        require(
            (1..=3600).contains(&self.stabilize_secs),
            "churn.stabilize_secs",
            "must be in 1..=3600",
        )?;
        require(
            self.duration_secs > 2 * self.stabilize_secs && self.duration_secs <= 86_400,
            "churn.duration_secs",
            "must exceed two stabilisation periods (the warm-up) and be at most a day",
        )?;
        require(
            (1..=60_000).contains(&self.lookups_per_minute),
            "churn.lookups_per_minute",
            "must be in 1..=60000",
        )?;
        require(
            self.successor_lists.iter().all(|&r| (1..self.nodes).contains(&r)),
            "churn.successor_lists",
            "each r must be ≥ 1 and below churn.nodes",
        )
    }
}

/// What one churn setting gave.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ChurnResult {
    /// Joins (and departures) a minute.
    pub per_minute: u32,
    /// Successor-list length.
    pub r: usize,
    /// Lookups counted.
    pub lookups: usize,
    /// Share of them that returned the key's live owner.
    pub success: f64,
    /// Dead entries tried per lookup.
    pub timeouts: f64,
    /// Newcomers that found no live node to join through.
    pub failed_joins: usize,
    /// Nodes alive at the end.
    pub final_nodes: usize,
}

/// One node's own state.
#[derive(Debug, Clone)]
struct Node {
    successors: Vec<u64>,
    predecessor: Option<u64>,
    fingers: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Join,
    Leave,
    Lookup,
    Stabilize(u64),
}

/// A ring under churn.
struct Net {
    nodes: BTreeMap<u64, Node>,
    /// The live ids, for uniform draws.
    live: Vec<u64>,
    bits: u32,
    mask: u64,
    r: usize,
}

/// How one lookup over the nodes' own tables went.
struct Found {
    owner: Option<u64>,
    timeouts: usize,
}

impl Net {
    /// `count` nodes with correct successor lists, predecessors and fingers.
    fn new(count: usize, bits: u32, r: usize, rng: &mut SplitMix64) -> Net {
        let mask = (1u64 << bits) - 1;
        let mut net = Net {
            nodes: BTreeMap::new(),
            live: Vec::new(),
            bits,
            mask,
            r,
        };
        // Bounded: N ≤ a quarter of the ring, so a draw is new with probability ≥ ¾.
        for _ in 0..64 * count + 64 {
            if net.live.len() == count {
                break;
            }
            let id = rng.next_u64() & mask;
            if !net.nodes.contains_key(&id) {
                net.insert(id, Vec::new(), Vec::new());
            }
        }
        let ids = net.live.clone();
        for id in ids {
            let successors = net.true_successors(id, r);
            let fingers = (0..bits)
                .map(|i| net.true_owner(id.wrapping_add(1 << i) & mask))
                .collect();
            let predecessor = net.true_predecessor(id);
            if let Some(node) = net.nodes.get_mut(&id) {
                *node = Node {
                    successors,
                    predecessor,
                    fingers,
                };
            }
        }
        net
    }

    fn insert(&mut self, id: u64, successors: Vec<u64>, fingers: Vec<u64>) {
        self.nodes.insert(
            id,
            Node {
                successors,
                predecessor: None,
                fingers,
            },
        );
        self.live.push(id);
    }

    fn alive(&self, id: u64) -> bool {
        self.nodes.contains_key(&id)
    }

    /// The first live node at or after `key` (the simulator's truth, used only to judge).
    fn true_owner(&self, key: u64) -> u64 {
        self.nodes
            .range(key..)
            .next()
            .or(self.nodes.iter().next())
            .map_or(key, |(&id, _)| id)
    }

    /// The live node before `id` (only to build the starting ring, and to check it).
    fn true_predecessor(&self, id: u64) -> Option<u64> {
        self.nodes
            .range(..id)
            .next_back()
            .or(self.nodes.iter().next_back())
            .map(|(&p, _)| p)
    }

    /// The `r` live nodes after `id` (only to build the starting ring, and to check it).
    fn true_successors(&self, id: u64, r: usize) -> Vec<u64> {
        let after = self.nodes.range(id.wrapping_add(1)..).map(|(&i, _)| i);
        let wrapped = self.nodes.range(..id).map(|(&i, _)| i);
        after.chain(wrapped).take(r).collect()
    }

    /// Looks `key` up from `start` over the nodes' own tables.
    fn lookup(&self, start: u64, key: u64) -> Found {
        let mut timeouts = 0;
        let mut cur = start;
        // A path visits each node at most once: every hop gets strictly closer to the key.
        for _ in 0..=self.nodes.len() {
            let Some(node) = self.nodes.get(&cur) else { break };
            let live_successor = node.successors.iter().copied().find(|&s| {
                let alive = self.alive(s);
                timeouts += usize::from(!alive);
                alive
            });
            if let Some(s) = live_successor
                && in_half_open(self.mask, key, cur, s)
            {
                return Found {
                    owner: Some(s),
                    timeouts,
                };
            }
            let mut candidates: Vec<u64> = node
                .fingers
                .iter()
                .chain(&node.successors)
                .copied()
                .filter(|&c| c != cur && dist(self.mask, cur, c) < dist(self.mask, cur, key))
                .collect();
            candidates.sort_by_key(|&c| Reverse(dist(self.mask, cur, c)));
            candidates.dedup();
            let mut next = None;
            for c in candidates {
                if self.alive(c) {
                    next = Some(c);
                    break;
                }
                timeouts += 1;
            }
            match next {
                Some(c) => cur = c,
                None => break,
            }
        }
        Found { owner: None, timeouts }
    }

    /// One stabilisation round of node `id` (alive).
    fn stabilize(&mut self, id: u64) {
        let Some(node) = self.nodes.get(&id) else { return };
        let closest_live = |ids: &mut dyn Iterator<Item = &u64>| {
            ids.copied()
                .filter(|&s| s != id && self.alive(s))
                .min_by_key(|&s| dist(self.mask, id, s))
        };
        let Some(mut successor) =
            closest_live(&mut node.successors.iter()).or_else(|| closest_live(&mut node.fingers.iter()))
        else {
            return;
        };
        if let Some(x) = self.nodes.get(&successor).and_then(|s| s.predecessor)
            && x != id
            && self.alive(x)
            && dist(self.mask, id, x) < dist(self.mask, id, successor)
        {
            successor = x;
        }
        let mut list = vec![successor];
        if let Some(s) = self.nodes.get(&successor) {
            for &next in &s.successors {
                if list.len() >= self.r {
                    break;
                }
                if next != id && self.alive(next) && !list.contains(&next) {
                    list.push(next);
                }
            }
        }
        let mask = self.mask;
        let dead = |p: Option<u64>| p.is_some_and(|p| !self.alive(p));
        let successor_knows_a_dead_one = dead(self.nodes.get(&successor).and_then(|s| s.predecessor));
        let own_predecessor_dead = dead(self.nodes.get(&id).and_then(|n| n.predecessor));
        if let Some(s) = self.nodes.get_mut(&successor) {
            // notify: the successor takes this node if it is closer than its predecessor.
            let closer = match s.predecessor {
                Some(p) if p != successor => dist(mask, p, id) < dist(mask, p, successor),
                _ => true,
            };
            if closer || successor_knows_a_dead_one {
                s.predecessor = Some(id);
            }
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.successors = list;
            if own_predecessor_dead {
                node.predecessor = None;
            }
        }
        for i in 0..self.bits {
            let target = id.wrapping_add(1 << i) & self.mask;
            if let Some(owner) = self.lookup(id, target).owner
                && let Some(node) = self.nodes.get_mut(&id)
            {
                node.fingers[i as usize] = owner;
            }
        }
    }

    /// A newcomer joins through a random live node, trying up to [`JOIN_TRIES`] of them; its
    /// id, or `None` when every lookup of its id failed (it stays away).
    fn join(&mut self, rng: &mut SplitMix64) -> Option<u64> {
        let id = (0..64)
            .map(|_| rng.next_u64() & self.mask)
            .find(|id| !self.alive(*id))?;
        let successor = (0..JOIN_TRIES).find_map(|_| {
            let via = self.live[rng.below(self.live.len() as u64) as usize];
            self.lookup(via, id).owner
        })?;
        self.insert(id, vec![successor], vec![successor; self.bits as usize]);
        self.stabilize(id);
        Some(id)
    }

    /// A uniformly drawn live node fails (one always stays).
    fn leave(&mut self, rng: &mut SplitMix64) {
        if self.live.len() <= 2 {
            return;
        }
        let gone = self.live.swap_remove(rng.below(self.live.len() as u64) as usize);
        self.nodes.remove(&gone);
    }
}

/// Milliseconds to the next event of a Poisson process of `per_minute` events a minute.
fn exponential_ms(per_minute: u32, rng: &mut SplitMix64) -> u64 {
    (-(1.0 - unit(rng)).ln() * 60_000.0 / f64::from(per_minute.max(1))) as u64 + 1
}

/// A stabilisation period: uniform in [½, 1½] × the mean, milliseconds.
fn period_ms(mean_secs: u32, rng: &mut SplitMix64) -> u64 {
    let mean = u64::from(mean_secs) * 1000;
    mean / 2 + rng.below(mean + 1)
}

/// Runs one setting: `per_minute` churn with successor lists of `r`.
pub(super) fn run_one(p: &ChurnParams, bits: u32, per_minute: u32, r: usize, seed: u64, stream_id: u64) -> ChurnResult {
    // Churn, lookups and ids from one stream, stabilisation periods from another, so every r
    // sees the same event times.
    let mut rng = stream(seed, stream_id);
    let mut periods = stream(seed, stream_id + 1_000_000);
    let mut net = Net::new(p.nodes, bits, r, &mut rng);
    let mut queue = BinaryHeap::new();
    // Events at the same millisecond run in the order they were scheduled.
    let mut scheduled = 0u64;
    let mut push = |queue: &mut BinaryHeap<Reverse<(u64, u64, Event)>>, at: u64, e: Event| {
        scheduled += 1;
        queue.push(Reverse((at, scheduled, e)));
    };
    for &id in &net.live {
        push(
            &mut queue,
            period_ms(p.stabilize_secs, &mut periods),
            Event::Stabilize(id),
        );
    }
    push(&mut queue, exponential_ms(per_minute, &mut rng), Event::Join);
    push(&mut queue, exponential_ms(per_minute, &mut rng), Event::Leave);
    push(
        &mut queue,
        exponential_ms(p.lookups_per_minute, &mut rng),
        Event::Lookup,
    );
    let end = u64::from(p.duration_secs) * 1000;
    let warm_up = 2 * u64::from(p.stabilize_secs) * 1000;
    let (mut lookups, mut ok, mut timeouts, mut failed_joins) = (0usize, 0usize, 0usize, 0usize);
    // Bounded by the queue: every event pops once and pushes at most two later ones, and
    // every pushed time is later than the popped one.
    while let Some(Reverse((now, _, event))) = queue.pop() {
        if now > end {
            break;
        }
        match event {
            Event::Join => {
                match net.join(&mut rng) {
                    Some(id) => push(
                        &mut queue,
                        now + period_ms(p.stabilize_secs, &mut periods),
                        Event::Stabilize(id),
                    ),
                    None => failed_joins += 1,
                }
                push(&mut queue, now + exponential_ms(per_minute, &mut rng), Event::Join);
            }
            Event::Leave => {
                net.leave(&mut rng);
                push(&mut queue, now + exponential_ms(per_minute, &mut rng), Event::Leave);
            }
            Event::Lookup => {
                if now >= warm_up {
                    let start = net.live[rng.below(net.live.len() as u64) as usize];
                    let key = rng.next_u64() & net.mask;
                    let found = net.lookup(start, key);
                    lookups += 1;
                    ok += usize::from(found.owner == Some(net.true_owner(key)));
                    timeouts += found.timeouts;
                }
                push(
                    &mut queue,
                    now + exponential_ms(p.lookups_per_minute, &mut rng),
                    Event::Lookup,
                );
            }
            Event::Stabilize(id) => {
                if net.alive(id) {
                    net.stabilize(id);
                    push(
                        &mut queue,
                        now + period_ms(p.stabilize_secs, &mut periods),
                        Event::Stabilize(id),
                    );
                }
            }
        }
    }
    let share = |n: usize| if lookups == 0 { 0.0 } else { n as f64 / lookups as f64 };
    ChurnResult {
        per_minute,
        r,
        lookups,
        success: share(ok),
        timeouts: share(timeouts),
        failed_joins,
        final_nodes: net.live.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ChurnParams {
        ChurnParams {
            nodes: 128,
            duration_secs: 600,
            ..ChurnParams::default()
        }
    }

    #[test]
    fn under_mild_churn_nearly_every_lookup_succeeds() {
        let calm = run_one(&small(), 32, 1, 2, 1, 1);
        assert!(calm.lookups > 1000, "{calm:?}");
        assert!(calm.success > 0.99, "{calm:?}");
        assert_eq!(calm.failed_joins, 0);
    }

    #[test]
    fn two_successors_lose_the_ring_under_heavy_churn_and_eight_keep_it() {
        // A mean lifetime of about two minutes, stabilising every 30 s.
        let r2 = run_one(&small(), 32, 60, 2, 1, 2);
        let r8 = run_one(&small(), 32, 60, 8, 1, 2);
        assert!(r8.success > r2.success + 0.1, "r = 2: {r2:?}, r = 8: {r8:?}");
        assert!(r2.timeouts > r8.timeouts && r8.timeouts > 0.0);
        assert!(r8.final_nodes > 64, "{r8:?}");
    }

    #[test]
    fn seeded_and_deterministic() {
        let p = ChurnParams {
            duration_secs: 200,
            ..small()
        };
        assert_eq!(run_one(&p, 32, 30, 4, 9, 1), run_one(&p, 32, 30, 4, 9, 1));
        assert_ne!(run_one(&p, 32, 30, 4, 9, 1), run_one(&p, 32, 30, 4, 10, 1));
    }

    #[test]
    fn the_ring_repairs_itself_to_the_truth() {
        let mut rng = SplitMix64::new(3);
        let mut net = Net::new(64, 32, 4, &mut rng);
        for _ in 0..20 {
            net.leave(&mut rng);
            net.join(&mut rng);
        }
        // Stabilising every node a few times, with no more churn, gives every node its true
        // successor and predecessor.
        for _ in 0..6 {
            for id in net.live.clone() {
                net.stabilize(id);
            }
        }
        for &id in &net.live {
            let node = &net.nodes[&id];
            assert_eq!(node.successors, net.true_successors(id, 4));
            assert_eq!(node.predecessor, net.true_predecessor(id));
        }
    }
}
