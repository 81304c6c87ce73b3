//! Who we upload to, sans I/O: the choker, with the standard algorithm and three strategies
//! from the literature. Time and per-peer byte counts are passed in; the answer is the set of
//! peers to unchoke and, for the strategies that divide bandwidth, each one's upload rate.
//!
//! - [`Strategy::Standard`] (Cohen, "Incentives build robustness in BitTorrent", 2003): every
//!   [`ChokerConfig::regular_interval`] (10 s) the [`ChokerConfig::slots`] (4) interested peers
//!   that uploaded to us fastest are unchoked (a seed ranks by how fast they download from
//!   it); every [`ChokerConfig::optimistic_interval`] (30 s) one more interested peer, drawn at
//!   random, is unchoked optimistically. A slot freed between rounds is filled at once.
//! - [`Strategy::BitTyrant`] (Piatek et al., NSDI 2007): for each peer an estimate of what it
//!   gives when unchoked (d: its measured rate while it unchokes us, else its `have` rate
//!   divided among its slots and an optimistic one, 0 while it holds nothing we lack) and of
//!   what it takes to be reciprocated (u, starting at capacity / (slots + 1)). Peers are
//!   unchoked by d/u, best first, until their u add up to the upload capacity (the last gets
//!   what is left), each sent its u (and an even part of what is left once every interested
//!   peer is unchoked). A peer reciprocates when it unchokes us. u grows by 20 % for a peer
//!   that was sent its full u and did not reciprocate, and shrinks by 10 % after three rounds
//!   in a row that it did.
//! - [`Strategy::PropShare`] (Levin et al., "BitTorrent is an auction", SIGCOMM 2008): each
//!   round the capacity, less an optimistic fifth, is split among the peers in proportion to
//!   what each uploaded to us in the previous round; the fifth goes to an optimistic unchoke.
//! - [`Strategy::BitThief`] (Locher et al., HotNets 2006): a free rider; it never unchokes
//!   anyone (and its node connects to every peer it hears of).
//!
//! BitTyrant and PropShare only change how a leecher trades: as seeds they choke as the
//! standard seed does. Nothing here sends a message; the caller turns changes into
//! `choke`/`unchoke`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use onionlab_crawler::dht::space::SplitMix64;
use serde::{Deserialize, Serialize};

/// A connection, as the choker knows it.
pub type PeerKey = u64;

/// How a client chooses whom to upload to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Tit-for-tat with 4 regular slots and one optimistic unchoke.
    #[default]
    Standard,
    /// BitTyrant: the best return per byte, within the upload capacity.
    BitTyrant,
    /// PropShare: upload split in proportion to what each peer gave.
    PropShare,
    /// BitThief: a free rider that never uploads.
    BitThief,
}

impl Strategy {
    /// Whether a client of this strategy ever uploads.
    pub fn uploads(self) -> bool {
        self != Strategy::BitThief
    }

    /// The name, as written in campaign files.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Standard => "standard",
            Strategy::BitTyrant => "bit_tyrant",
            Strategy::PropShare => "prop_share",
            Strategy::BitThief => "bit_thief",
        }
    }
}

/// The choker's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChokerConfig {
    /// Regular unchoke slots (0: this client uploads to nobody).
    pub slots: usize,
    /// How often the regular slots are re-evaluated.
    pub regular_interval: Duration,
    /// How often the optimistic unchoke moves on.
    pub optimistic_interval: Duration,
    /// The upload capacity BitTyrant and PropShare divide, bytes per second.
    pub upload_capacity: f64,
    /// PropShare's optimistic part of the capacity.
    pub optimistic_share: f64,
}

impl Default for ChokerConfig {
    /// 4 slots, 10 s rounds, a 30 s optimistic unchoke, 1 MiB/s, a fifth optimistic.
    fn default() -> Self {
        ChokerConfig {
            slots: 4,
            regular_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            upload_capacity: f64::from(1u32 << 20),
            optimistic_share: 0.2,
        }
    }
}

/// What the choker needs to know of one connected peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerView {
    /// The connection.
    pub key: PeerKey,
    /// It is interested in what we have.
    pub interested: bool,
    /// Bytes it sent us, ever (piece data).
    pub downloaded: u64,
    /// Its upload rate to us over the recent window, bytes/s.
    pub down_rate: f64,
    /// Our upload rate to it over the recent window, bytes/s.
    pub up_rate: f64,
    /// The rate at which it announced new pieces (`have`s × piece length), bytes/s.
    pub announce_rate: f64,
    /// It holds pieces we lack (we are interested in it): only then can it reciprocate.
    pub wanted: bool,
    /// It unchokes us now (BitTyrant's sign of reciprocation).
    pub unchoked_us: bool,
}

/// The peers to unchoke now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Unchoked {
    /// The regular slots, best first.
    pub regular: Vec<PeerKey>,
    /// The optimistic unchoke.
    pub optimistic: Option<PeerKey>,
    /// Upload rate per unchoked peer, bytes/s, for the strategies that divide bandwidth.
    pub shares: BTreeMap<PeerKey, f64>,
}

impl Unchoked {
    /// Whether `key` is unchoked.
    pub fn contains(&self, key: PeerKey) -> bool {
        self.optimistic == Some(key) || self.regular.contains(&key)
    }

    /// Every unchoked peer.
    pub fn all(&self) -> BTreeSet<PeerKey> {
        self.regular.iter().copied().chain(self.optimistic).collect()
    }
}

/// BitTyrant's view of one peer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    /// What it gives when it unchokes us, bytes/s.
    d: f64,
    /// What it takes to be reciprocated, bytes/s.
    u: f64,
    /// Rounds in a row it reciprocated.
    reciprocated: u32,
}

/// BitTyrant's increase of u when a peer did not reciprocate.
const TYRANT_GROW: f64 = 0.2;
/// BitTyrant's decrease of u after [`TYRANT_PATIENCE`] rounds of reciprocation.
const TYRANT_SHRINK: f64 = 0.1;
/// Rounds of reciprocation before BitTyrant offers less.
const TYRANT_PATIENCE: u32 = 3;

/// The choker of one client.
#[derive(Debug, Clone)]
pub struct Choker {
    cfg: ChokerConfig,
    strategy: Strategy,
    rng: SplitMix64,
    next_regular: Option<Instant>,
    next_optimistic: Option<Instant>,
    round_started: Option<Instant>,
    current: Unchoked,
    /// Bytes downloaded from each peer at the start of the round.
    at_round: BTreeMap<PeerKey, u64>,
    estimates: BTreeMap<PeerKey, Estimate>,
}

impl Choker {
    /// A choker with `cfg`, following `strategy`, drawing from `seed`.
    pub fn new(cfg: ChokerConfig, strategy: Strategy, seed: u64) -> Self {
        Choker {
            cfg,
            strategy,
            rng: SplitMix64::new(seed),
            next_regular: None,
            next_optimistic: None,
            round_started: None,
            current: Unchoked::default(),
            at_round: BTreeMap::new(),
            estimates: BTreeMap::new(),
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The settings.
    pub fn config(&self) -> &ChokerConfig {
        &self.cfg
    }

    /// A peer left.
    pub fn forget(&mut self, key: PeerKey) {
        self.current.regular.retain(|&k| k != key);
        if self.current.optimistic == Some(key) {
            self.current.optimistic = None;
        }
        self.current.shares.remove(&key);
        self.at_round.remove(&key);
        self.estimates.remove(&key);
    }

    /// The peers to unchoke at `now`, given every connected peer; `seeding` when we hold the
    /// whole torrent. Rounds run when their period is due; free slots are filled at once.
    pub fn tick(&mut self, now: Instant, peers: &[PeerView], seeding: bool) -> &Unchoked {
        if !self.strategy.uploads() || self.cfg.slots == 0 {
            self.current = Unchoked::default();
            return &self.current;
        }
        let mode = if seeding { Strategy::Standard } else { self.strategy };
        let interested: BTreeSet<PeerKey> = peers.iter().filter(|p| p.interested).map(|p| p.key).collect();
        self.current.regular.retain(|k| interested.contains(k));
        if self.current.optimistic.is_some_and(|k| !interested.contains(&k)) {
            self.current.optimistic = None;
        }
        self.current
            .shares
            .retain(|k, _| self.current.regular.contains(k) || self.current.optimistic == Some(*k));
        if self.next_regular.is_none_or(|t| now >= t) {
            self.round(now, peers, &interested, mode, seeding);
            self.next_regular = Some(now + self.cfg.regular_interval);
            if self
                .current
                .optimistic
                .is_some_and(|k| self.current.regular.contains(&k))
            {
                // Promoted to a regular slot: its optimistic slot goes to someone else.
                self.current.optimistic = None;
            }
        }
        let optimistic_due = self.next_optimistic.is_none_or(|t| now >= t);
        if mode != Strategy::BitTyrant && (optimistic_due || self.current.optimistic.is_none()) {
            let candidates: Vec<PeerKey> = interested
                .iter()
                .copied()
                .filter(|k| !self.current.regular.contains(k))
                .collect();
            if optimistic_due || !candidates.is_empty() {
                self.current.optimistic =
                    (!candidates.is_empty()).then(|| candidates[self.rng.below(candidates.len() as u64) as usize]);
                self.next_optimistic = Some(now + self.cfg.optimistic_interval);
            }
        }
        if mode == Strategy::PropShare {
            if let Some(k) = self.current.optimistic {
                self.current
                    .shares
                    .insert(k, self.cfg.upload_capacity * self.cfg.optimistic_share);
            }
        } else if let Some(k) = self.current.optimistic {
            self.current.shares.remove(&k);
        }
        self.fill(peers, &interested, mode, seeding);
        &self.current
    }

    /// Peers ranked best first for the standard choker: by their rate to us, or as a seed by
    /// our rate to them; ties in a random order.
    fn ranked(&mut self, peers: &[PeerView], interested: &BTreeSet<PeerKey>, seeding: bool) -> Vec<PeerKey> {
        let mut views: Vec<&PeerView> = peers.iter().filter(|p| interested.contains(&p.key)).collect();
        for i in (1..views.len()).rev() {
            views.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        let rate = |p: &PeerView| if seeding { p.up_rate } else { p.down_rate };
        views.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
        views.iter().map(|p| p.key).collect()
    }

    fn round(
        &mut self,
        now: Instant,
        peers: &[PeerView],
        interested: &BTreeSet<PeerKey>,
        mode: Strategy,
        seeding: bool,
    ) {
        let secs = self
            .round_started
            .map_or(self.cfg.regular_interval, |t| now.saturating_duration_since(t))
            .as_secs_f64()
            .max(1e-3);
        let delta = |p: &PeerView, at: &BTreeMap<PeerKey, u64>| {
            p.downloaded.saturating_sub(at.get(&p.key).copied().unwrap_or(0))
        };
        let capacity = self.cfg.upload_capacity;
        match mode {
            Strategy::Standard | Strategy::BitThief => {
                let ranked = self.ranked(peers, interested, seeding);
                self.current.regular = ranked.into_iter().take(self.cfg.slots).collect();
                self.current.shares.clear();
            }
            Strategy::PropShare => {
                let gave: Vec<(PeerKey, u64)> = peers
                    .iter()
                    .filter(|p| interested.contains(&p.key))
                    .map(|p| (p.key, delta(p, &self.at_round)))
                    .filter(|&(_, d)| d > 0)
                    .collect();
                let total: u64 = gave.iter().map(|g| g.1).sum();
                let pool = capacity * (1.0 - self.cfg.optimistic_share);
                let mut gave = gave;
                gave.sort_by_key(|g| std::cmp::Reverse(g.1));
                self.current.regular = gave.iter().map(|g| g.0).collect();
                self.current.shares = gave.iter().map(|&(k, d)| (k, pool * d as f64 / total as f64)).collect();
            }
            Strategy::BitTyrant => {
                let start_u = capacity / (self.cfg.slots as f64 + 1.0);
                // What each peer was given last round: only a peer that got its full u and still
                // did not reciprocate says that u was too low.
                let was_given = std::mem::take(&mut self.current.shares);
                for p in peers {
                    let given = delta(p, &self.at_round);
                    let e = self.estimates.entry(p.key).or_insert(Estimate {
                        d: 0.0,
                        u: start_u,
                        reciprocated: 0,
                    });
                    if !p.wanted {
                        // It holds nothing we lack: it cannot give, and its silence says
                        // nothing about the price of its reciprocation.
                        e.d = 0.0;
                        e.reciprocated = 0;
                    } else if p.unchoked_us {
                        e.d = p.down_rate.max(given as f64 / secs);
                        e.reciprocated += 1;
                        if e.reciprocated >= TYRANT_PATIENCE {
                            e.u *= 1.0 - TYRANT_SHRINK;
                            e.reciprocated = 0;
                        }
                    } else {
                        // The equal split it likely uses among its slots and an optimistic one.
                        e.d = p.announce_rate / (self.cfg.slots as f64 + 1.0);
                        e.reciprocated = 0;
                        if was_given.get(&p.key).is_some_and(|&share| share >= e.u) {
                            e.u = (e.u * (1.0 + TYRANT_GROW)).min(capacity);
                        }
                    }
                }
                let mut ranked: Vec<(PeerKey, Estimate)> = interested
                    .iter()
                    .filter_map(|k| self.estimates.get(k).map(|e| (*k, *e)))
                    .collect();
                for i in (1..ranked.len()).rev() {
                    ranked.swap(i, self.rng.below(i as u64 + 1) as usize);
                }
                ranked.sort_by(|a, b| (b.1.d / b.1.u).total_cmp(&(a.1.d / a.1.u)));
                let mut spent = 0.0;
                self.current.regular.clear();
                self.current.shares.clear();
                for (k, e) in ranked {
                    // Until the u's add up to the capacity; the last one gets what is left.
                    if spent >= capacity {
                        break;
                    }
                    let share = e.u.min(capacity - spent);
                    spent += share;
                    self.current.regular.push(k);
                    self.current.shares.insert(k, share);
                }
                // Every interested peer unchoked and capacity left: spread it evenly (BitTyrant
                // as released always uses all of its capacity).
                if spent < capacity && !self.current.regular.is_empty() {
                    let excess = (capacity - spent) / self.current.regular.len() as f64;
                    for share in self.current.shares.values_mut() {
                        *share += excess;
                    }
                }
            }
        }
        self.at_round = peers.iter().map(|p| (p.key, p.downloaded)).collect();
        self.round_started = Some(now);
    }

    /// Fills slots left free between rounds (a peer left or lost interest, or a new one came).
    fn fill(&mut self, peers: &[PeerView], interested: &BTreeSet<PeerKey>, mode: Strategy, seeding: bool) {
        let capacity = self.cfg.upload_capacity;
        let waiting: Vec<PeerKey> = self
            .ranked(peers, interested, seeding)
            .into_iter()
            .filter(|&k| !self.current.contains(k))
            .collect();
        for k in waiting {
            match mode {
                Strategy::Standard | Strategy::BitThief => {
                    if self.current.regular.len() >= self.cfg.slots {
                        break;
                    }
                    self.current.regular.push(k);
                }
                Strategy::PropShare => {
                    let pool = capacity * (1.0 - self.cfg.optimistic_share);
                    let used: f64 = self
                        .current
                        .regular
                        .iter()
                        .filter_map(|r| self.current.shares.get(r))
                        .sum();
                    if self.current.regular.len() >= self.cfg.slots || used >= pool * (1.0 - 1e-9) {
                        break;
                    }
                    self.current.regular.push(k);
                    self.current
                        .shares
                        .insert(k, (pool - used).min(pool / self.cfg.slots as f64));
                }
                Strategy::BitTyrant => {
                    let u = self
                        .estimates
                        .get(&k)
                        .map_or(capacity / (self.cfg.slots as f64 + 1.0), |e| e.u);
                    let spent: f64 = self.current.shares.values().sum();
                    if spent >= capacity {
                        break;
                    }
                    self.current.regular.push(k);
                    self.current.shares.insert(k, u.min(capacity));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(key: PeerKey, down_rate: f64) -> PeerView {
        PeerView {
            key,
            interested: true,
            downloaded: 0,
            down_rate,
            up_rate: 0.0,
            announce_rate: 0.0,
            wanted: true,
            unchoked_us: false,
        }
    }

    fn standard() -> ChokerConfig {
        ChokerConfig::default()
    }

    #[test]
    fn four_regular_slots_go_to_the_fastest_uploaders() {
        let mut c = Choker::new(standard(), Strategy::Standard, 1);
        let mut peers: Vec<PeerView> = (0..8).map(|k| view(k, 100.0 * k as f64)).collect();
        peers[7].interested = false;
        let t0 = Instant::now();
        let u = c.tick(t0, &peers, false).clone();
        assert_eq!(u.regular, vec![6, 5, 4, 3], "fastest interested first");
        let opt = u.optimistic.expect("an optimistic unchoke");
        assert!(opt < 3, "optimistic among the rest: {opt}");
        // Rates change, but the slots hold until the next 10 s round.
        peers[0].down_rate = 10_000.0;
        assert_eq!(
            c.tick(t0 + Duration::from_secs(9), &peers, false).regular,
            vec![6, 5, 4, 3]
        );
        let u = c.tick(t0 + Duration::from_secs(10), &peers, false);
        assert_eq!(u.regular, vec![0, 6, 5, 4]);
        // A slot freed between rounds is filled at once.
        peers[5].interested = false;
        let u = c.tick(t0 + Duration::from_secs(11), &peers, false).clone();
        assert_eq!(u.regular.len(), 4);
        assert!(!u.contains(5) && u.shares.is_empty());
    }

    #[test]
    fn a_seed_ranks_by_its_upload_rate() {
        let mut c = Choker::new(standard(), Strategy::PropShare, 1);
        let peers: Vec<PeerView> = (0..6)
            .map(|k| PeerView {
                up_rate: 10.0 * k as f64,
                down_rate: 100.0 - k as f64,
                ..view(k, 0.0)
            })
            .collect();
        assert_eq!(c.tick(Instant::now(), &peers, true).regular, vec![5, 4, 3, 2]);
    }

    #[test]
    fn the_optimistic_unchoke_moves_every_30_seconds() {
        let mut c = Choker::new(standard(), Strategy::Standard, 3);
        let peers: Vec<PeerView> = (0..12).map(|k| view(k, if k < 4 { 1000.0 } else { 0.0 })).collect();
        let t0 = Instant::now();
        let mut last = None;
        let mut moves = Vec::new();
        for s in 0..=150u64 {
            let u = c.tick(t0 + Duration::from_secs(s), &peers, false);
            assert_eq!(u.regular.len(), 4);
            if u.optimistic != last {
                moves.push(s);
                last = u.optimistic;
            }
        }
        assert!(moves.iter().all(|s| s % 30 == 0), "{moves:?}");
        assert!(moves.len() >= 4, "{moves:?}");
    }

    #[test]
    fn propshare_splits_in_proportion_to_what_peers_gave() {
        let cfg = ChokerConfig {
            upload_capacity: 1000.0,
            ..standard()
        };
        let mut c = Choker::new(cfg, Strategy::PropShare, 1);
        let t0 = Instant::now();
        let mut peers: Vec<PeerView> = (0..4).map(|k| view(k, 0.0)).collect();
        c.tick(t0, &peers, false);
        peers[0].downloaded = 300_000;
        peers[1].downloaded = 100_000;
        let u = c.tick(t0 + Duration::from_secs(10), &peers, false).clone();
        assert_eq!(u.regular, vec![0, 1]);
        assert!((u.shares[&0] - 600.0).abs() < 1e-9, "{:?}", u.shares);
        assert!((u.shares[&1] - 200.0).abs() < 1e-9, "{:?}", u.shares);
        let opt = u.optimistic.expect("optimistic");
        assert!(opt >= 2 && (u.shares[&opt] - 200.0).abs() < 1e-9);
        let total: f64 = u.shares.values().sum();
        assert!((total - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn bittyrant_buys_the_best_return_within_its_capacity() {
        let cfg = ChokerConfig {
            upload_capacity: 1000.0,
            ..standard()
        };
        let mut c = Choker::new(cfg, Strategy::BitTyrant, 1);
        let t0 = Instant::now();
        let mut peers: Vec<PeerView> = (0..8).map(|k| view(k, 0.0)).collect();
        // Start: u = 200 each, so five peers fit in 1000.
        let u = c.tick(t0, &peers, false).clone();
        assert_eq!(u.regular.len(), 5);
        assert!(u.optimistic.is_none());
        let first: BTreeSet<PeerKey> = u.regular.iter().copied().collect();
        // Peer 7 unchokes us and gives a lot back; the others unchoked gave nothing for their
        // full u, and now cost 20 % more.
        peers[7].downloaded = 50_000;
        peers[7].unchoked_us = true;
        let u = c.tick(t0 + Duration::from_secs(10), &peers, false).clone();
        assert_eq!(u.regular[0], 7, "best d/u first");
        // Unchoked until the u's reach the capacity: the last one gets what is left of it.
        let spent: f64 = u.shares.values().sum();
        assert!((spent - 1000.0).abs() < 1e-9, "{spent}");
        let last = *u.regular.last().expect("someone unchoked");
        assert!(u.shares[&last] <= c.estimates[&last].u + 1e-9);
        for k in first.iter().filter(|&&k| k != 7) {
            let price = c.estimates[k].u;
            assert!((price - 240.0).abs() < 1e-9, "{k}: {price}");
            if let Some(share) = u.shares.get(k).filter(|_| *k != last) {
                assert!((share - price).abs() < 1e-9, "{k}: {share}");
            }
        }
        // The last one was sent less than its u: its silence next round does not raise it.
        if last != 7 {
            c.tick(t0 + Duration::from_secs(20), &peers, false);
            assert!((c.estimates[&last].u - 240.0).abs() < 1e-9);
        }
    }

    #[test]
    fn bittyrant_spends_nothing_on_peers_that_hold_nothing_it_lacks() {
        let cfg = ChokerConfig {
            upload_capacity: 1000.0,
            ..standard()
        };
        let mut c = Choker::new(cfg, Strategy::BitTyrant, 1);
        let t0 = Instant::now();
        // Two peers announce pieces fast, but peer 0 holds nothing we lack.
        let mut peers: Vec<PeerView> = (0..2)
            .map(|k| PeerView {
                announce_rate: 500.0,
                ..view(k, 0.0)
            })
            .collect();
        peers[0].wanted = false;
        c.tick(t0, &peers, false);
        let u = c.tick(t0 + Duration::from_secs(10), &peers, false).clone();
        assert_eq!(u.regular[0], 1, "the peer that can give back comes first");
        // Both fit (200 each at the start), and the capacity left is spread over them.
        let total: f64 = u.shares.values().sum();
        assert!((total - 1000.0).abs() < 1e-9, "{total}");
        // Peer 0's silence did not raise its price; peer 1's did.
        assert!((c.estimates[&0].u - 200.0).abs() < 1e-9);
        assert!((c.estimates[&1].u - 240.0).abs() < 1e-9);
    }

    #[test]
    fn bitthief_never_uploads() {
        for seeding in [false, true] {
            let mut c = Choker::new(standard(), Strategy::BitThief, 1);
            let peers: Vec<PeerView> = (0..6).map(|k| view(k, 1e6)).collect();
            for s in 0..100 {
                let u = c.tick(Instant::now() + Duration::from_secs(s), &peers, seeding);
                assert!(u.all().is_empty());
            }
        }
        let no_slots = ChokerConfig { slots: 0, ..standard() };
        let mut c = Choker::new(no_slots, Strategy::Standard, 1);
        assert!(c.tick(Instant::now(), &[view(1, 5.0)], false).all().is_empty());
    }
}
