//! Entry guards (Tor's guard-spec, simplified): the few relays this client enters the network
//! through, kept across restarts in `DATA_DIR/state.json`.
//!
//! Using a few entry relays for a long time means a client meets a hostile entry rarely, rather
//! than eventually with certainty by picking a fresh one per circuit. The rules:
//! - The **sample**: at most [`GuardParams::max_sampled`] relays, each drawn (bandwidth-weighted)
//!   from the consensus's Running, Valid, Guard relays only when the sample has too few usable
//!   ones. Each is kept for a random lifetime of 30–60 days from when it was sampled, then
//!   dropped; one unlisted in the consensus for 20 days is dropped too. The sample bounds how
//!   many entries an adversary can make a client try by knocking guards offline.
//! - The **primary guards**: the first [`GuardParams::primaries`] sampled guards, in sample order,
//!   that the current consensus lists as Running, Valid and Guard. A guard absent from the
//!   consensus or without those flags is not used (and regains its place when it is back).
//! - Circuits use the first primary guard not marked unreachable. A guard whose link or CREATE2
//!   failed is unreachable for 10 minutes (doubling with each further failure, at most 4 hours);
//!   the next primary is used meanwhile. When every primary is marked, the one due first is
//!   tried again: the client never walks through more guards than the primaries.
//!
//! [`GuardSet`] holds the rules without I/O (time is passed in); [`Guards`] persists it.
//! Reachability is not persisted: after a restart every guard gets a fresh chance.

use onionlab_proto::consensus::{Consensus, ConsensusRelay};
use onionlab_proto::keys::{IdentityBytes, fingerprint, parse_fingerprint};
use onionlab_proto::path::{PathError, usable_guard, weighted_choice};
use onionlab_proto::random::{RandomSource, ThreadRandom};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const DAY: u64 = 24 * 3600;
/// Largest state file read.
pub const MAX_STATE_LEN: u64 = 1 << 20;

/// The knobs of guard selection (Tor's names in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardParams {
    /// Most guards ever in the sample [guard-max-sample-size, here absolute].
    pub max_sampled: usize,
    /// Primary guards [guard-n-primary-guards].
    pub primaries: usize,
    /// Shortest lifetime of a sampled guard, seconds [guard-lifetime-days].
    pub min_lifetime: u64,
    /// Longest lifetime of a sampled guard, seconds.
    pub max_lifetime: u64,
    /// A guard unlisted this long is dropped, seconds [guard-remove-unlisted-guards-after-days].
    pub remove_unlisted_after: u64,
    /// Seconds a failed guard is skipped after its first failure; doubles per further failure.
    pub retry_after: u64,
    /// Longest skip, seconds.
    pub max_retry_after: u64,
}

impl Default for GuardParams {
    fn default() -> Self {
        GuardParams {
            max_sampled: 20,
            primaries: 3,
            min_lifetime: 30 * DAY,
            max_lifetime: 60 * DAY,
            remove_unlisted_after: 20 * DAY,
            retry_after: 600,
            max_retry_after: 4 * 3600,
        }
    }
}

/// One sampled guard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Guard {
    identity: IdentityBytes,
    /// Unix seconds.
    sampled_at: u64,
    /// Unix seconds; dropped from then on.
    expires_at: u64,
    /// Since when the consensus has not listed it at all.
    unlisted_since: Option<u64>,
    /// Failures in a row, and when it may be tried again (not persisted).
    failures: u32,
    retry_at: u64,
}

/// The sample, in priority order, without I/O.
#[derive(Debug, Clone)]
pub struct GuardSet {
    guards: Vec<Guard>,
    params: GuardParams,
    changed: bool,
}

impl GuardSet {
    /// An empty sample.
    pub fn new(params: GuardParams) -> Self {
        GuardSet {
            guards: Vec::new(),
            params,
            changed: false,
        }
    }

    /// The sampled guards' identities, in priority order.
    pub fn sampled(&self) -> Vec<IdentityBytes> {
        self.guards.iter().map(|g| g.identity).collect()
    }

    /// The primary guards for `consensus`, in order (no sampling, no expiry).
    pub fn primaries(&self, consensus: &Consensus) -> Vec<IdentityBytes> {
        self.guards
            .iter()
            .filter(|g| consensus.relay(&g.identity).is_some_and(usable_guard))
            .take(self.params.primaries)
            .map(|g| g.identity)
            .collect()
    }

    /// True once if the persisted part changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The guard for the next circuit at time `now`: drops expired and long-unlisted guards,
    /// samples new ones if fewer than the primaries are usable, and returns the first primary
    /// not marked unreachable (or, all being marked, the one due first).
    pub fn pick(
        &mut self,
        consensus: &Consensus,
        now: u64,
        rng: &mut impl RandomSource,
    ) -> Result<ConsensusRelay, PathError> {
        self.maintain(consensus, now);
        self.sample(consensus, now, rng);
        let primaries: Vec<&Guard> = self
            .guards
            .iter()
            .filter(|g| consensus.relay(&g.identity).is_some_and(usable_guard))
            .take(self.params.primaries)
            .collect();
        let chosen = primaries
            .iter()
            .find(|g| g.retry_at <= now)
            .or_else(|| primaries.iter().min_by_key(|g| g.retry_at))
            .ok_or(PathError::NoGuard)?;
        consensus.relay(&chosen.identity).cloned().ok_or(PathError::NoGuard)
    }

    /// A link or CREATE2 to `id` failed at `now`.
    pub fn record_failure(&mut self, id: &IdentityBytes, now: u64) {
        let p = self.params;
        if let Some(g) = self.guards.iter_mut().find(|g| &g.identity == id) {
            g.failures = g.failures.saturating_add(1);
            let delay = p
                .retry_after
                .saturating_mul(1u64 << (g.failures - 1).min(16))
                .min(p.max_retry_after);
            g.retry_at = now.saturating_add(delay);
            tracing::info!(
                guard = %fingerprint(id),
                failures = g.failures,
                retry_in_secs = delay,
                "guard unreachable; using the next primary guard"
            );
        }
    }

    /// A circuit through `id` was built.
    pub fn record_success(&mut self, id: &IdentityBytes) {
        if let Some(g) = self.guards.iter_mut().find(|g| &g.identity == id) {
            g.failures = 0;
            g.retry_at = 0;
        }
    }

    fn maintain(&mut self, consensus: &Consensus, now: u64) {
        let p = self.params;
        let before = self.guards.len();
        for g in &mut self.guards {
            let listed = consensus.relay(&g.identity).is_some();
            if listed == g.unlisted_since.is_some() {
                g.unlisted_since = if listed { None } else { Some(now) };
                self.changed = true;
            }
        }
        self.guards.retain(|g| {
            let keep = now < g.expires_at
                && g.unlisted_since
                    .is_none_or(|t| now.saturating_sub(t) < p.remove_unlisted_after);
            if !keep {
                tracing::info!(guard = %fingerprint(&g.identity), "guard lifetime over; dropping it from the sample");
            }
            keep
        });
        self.changed |= self.guards.len() != before;
    }

    fn sample(&mut self, consensus: &Consensus, now: u64, rng: &mut impl RandomSource) {
        let p = self.params;
        loop {
            let usable = self
                .guards
                .iter()
                .filter(|g| consensus.relay(&g.identity).is_some_and(usable_guard))
                .count();
            if usable >= p.primaries || self.guards.len() >= p.max_sampled {
                return;
            }
            let candidates: Vec<&ConsensusRelay> = consensus
                .relays
                .iter()
                .filter(|r| usable_guard(r) && !self.guards.iter().any(|g| g.identity == r.info.identity))
                .collect();
            let Some(chosen) = weighted_choice(&candidates, rng) else {
                return;
            };
            let lifetime = p.min_lifetime + rng.below(p.max_lifetime.saturating_sub(p.min_lifetime) + 1);
            tracing::info!(guard = %fingerprint(&chosen.info.identity), "sampled a new guard");
            self.guards.push(Guard {
                identity: chosen.info.identity,
                sampled_at: now,
                expires_at: now.saturating_add(lifetime),
                unlisted_since: None,
                failures: 0,
                retry_at: 0,
            });
            self.changed = true;
        }
    }
}

/// `state.json`: the sample, without reachability.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    guards: Vec<StoredGuard>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredGuard {
    identity: String,
    sampled_at: u64,
    expires_at: u64,
    unlisted_since: Option<u64>,
}

/// The guard set of this client, persisted in `data_dir/state.json` whenever it changes.
#[derive(Debug)]
pub struct Guards {
    path: PathBuf,
    set: Mutex<GuardSet>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Guards {
    /// Loads `data_dir/state.json` (a missing or unreadable file starts an empty sample).
    pub fn load(data_dir: &Path, params: GuardParams) -> Self {
        let path = data_dir.join("state.json");
        let mut set = GuardSet::new(params);
        match read_state(&path) {
            Ok(Some(state)) => {
                for g in state.guards {
                    match parse_fingerprint(&g.identity) {
                        Ok(identity) => set.guards.push(Guard {
                            identity,
                            sampled_at: g.sampled_at,
                            expires_at: g.expires_at,
                            unlisted_since: g.unlisted_since,
                            failures: 0,
                            retry_at: 0,
                        }),
                        Err(e) => tracing::warn!("{}: skipping a guard: {e}", path.display()),
                    }
                }
                set.guards.truncate(params.max_sampled);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{}: {e}; starting a new guard sample", path.display()),
        }
        Guards {
            path,
            set: Mutex::new(set),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut GuardSet) -> T) -> T {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut set);
        if set.take_changed() {
            self.save(&set);
        }
        out
    }

    /// The guard for the next circuit (see [`GuardSet::pick`]).
    pub fn pick(&self, consensus: &Consensus) -> Result<ConsensusRelay, PathError> {
        self.with(|s| s.pick(consensus, unix_now(), &mut ThreadRandom))
    }

    /// A link or CREATE2 to `id` failed.
    pub fn failed(&self, id: &IdentityBytes) {
        self.with(|s| s.record_failure(id, unix_now()));
    }

    /// A circuit through `id` was built.
    pub fn succeeded(&self, id: &IdentityBytes) {
        self.with(|s| s.record_success(id));
    }

    /// The primary guards for `consensus`, in order.
    pub fn primaries(&self, consensus: &Consensus) -> Vec<IdentityBytes> {
        self.with(|s| s.primaries(consensus))
    }

    /// Every sampled guard, in priority order.
    pub fn sampled(&self) -> Vec<IdentityBytes> {
        self.with(|s| s.sampled())
    }

    fn save(&self, set: &GuardSet) {
        let state = State {
            guards: set
                .guards
                .iter()
                .map(|g| StoredGuard {
                    identity: fingerprint(&g.identity),
                    sampled_at: g.sampled_at,
                    expires_at: g.expires_at,
                    unlisted_since: g.unlisted_since,
                })
                .collect(),
        };
        let write = || -> std::io::Result<()> {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::warn!("cannot save guard state to {}: {e}", self.path.display());
        }
    }
}

fn read_state(path: &Path) -> Result<Option<State>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if meta.len() > MAX_STATE_LEN {
        return Err(format!("larger than {MAX_STATE_LEN} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onionlab_proto::consensus::Flags;
    use onionlab_proto::exit_policy::ExitPolicy;

    const NOW: u64 = 1_800_000_000;

    fn relay(i: u8, guard: bool) -> ConsensusRelay {
        let mut flags = Flags::RUNNING;
        flags.insert(Flags::VALID);
        if guard {
            flags.insert(Flags::GUARD);
        }
        crate::consensus_cache::tests::relay(i, flags, ExitPolicy::reject_all())
    }

    /// `n` guard relays and 5 others.
    fn consensus(n: u8) -> Consensus {
        Consensus {
            valid_after: NOW,
            fresh_until: NOW + 3600,
            valid_until: NOW + 3 * 3600,
            relays: (1..=n)
                .map(|i| relay(i, true))
                .chain((100..105).map(|i| relay(i, false)))
                .collect(),
        }
    }

    fn without(c: &Consensus, id: &IdentityBytes) -> Consensus {
        let mut c = c.clone();
        c.relays.retain(|r| &r.info.identity != id);
        c
    }

    fn pick(set: &mut GuardSet, c: &Consensus, now: u64) -> IdentityBytes {
        set.pick(c, now, &mut ThreadRandom).unwrap().info.identity
    }

    #[test]
    fn samples_only_guards_and_keeps_using_the_first() {
        let c = consensus(10);
        let mut set = GuardSet::new(GuardParams::default());
        let first = pick(&mut set, &c, NOW);
        assert!(c.relay(&first).is_some_and(usable_guard));
        assert_eq!(set.sampled().len(), 3, "sampled just enough for the primaries");
        assert_eq!(set.primaries(&c).len(), 3);
        assert!(set.take_changed());
        for t in 0..100 {
            assert_eq!(pick(&mut set, &c, NOW + t * 3600), first);
        }
        assert_eq!(set.sampled().len(), 3, "no new sampling while the primaries are fine");
    }

    #[test]
    fn failing_primary_moves_to_the_next_not_a_fresh_guard() {
        let c = consensus(10);
        let mut set = GuardSet::new(GuardParams::default());
        let first = pick(&mut set, &c, NOW);
        let primaries = set.primaries(&c);
        set.record_failure(&first, NOW);
        assert_eq!(pick(&mut set, &c, NOW + 1), primaries[1]);
        set.record_failure(&primaries[1], NOW + 1);
        assert_eq!(pick(&mut set, &c, NOW + 2), primaries[2]);
        set.record_failure(&primaries[2], NOW + 2);
        // All primaries down: the one due first, never a fourth guard.
        for t in 3..50 {
            let g = pick(&mut set, &c, NOW + t);
            assert!(primaries.contains(&g));
            set.record_failure(&g, NOW + t);
        }
        assert_eq!(set.sampled().len(), 3, "no walking through the network's guards");
        // After the retry delay the first primary is used again, and success clears it.
        let later = NOW + 5 * 3600;
        assert_eq!(pick(&mut set, &c, later), first);
        set.record_success(&first);
        assert_eq!(pick(&mut set, &c, later + 1), first);
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let c = consensus(10);
        let p = GuardParams::default();
        let mut set = GuardSet::new(p);
        let first = pick(&mut set, &c, NOW);
        set.record_failure(&first, NOW);
        assert_ne!(pick(&mut set, &c, NOW + p.retry_after - 1), first);
        assert_eq!(pick(&mut set, &c, NOW + p.retry_after), first);
        set.record_failure(&first, NOW);
        assert_ne!(pick(&mut set, &c, NOW + 2 * p.retry_after - 1), first);
        for _ in 0..40 {
            set.record_failure(&first, NOW);
        }
        assert_eq!(pick(&mut set, &c, NOW + p.max_retry_after), first);
    }

    #[test]
    fn unusable_guards_are_skipped_and_come_back() {
        let c = consensus(10);
        let mut set = GuardSet::new(GuardParams::default());
        let first = pick(&mut set, &c, NOW);
        // Absent from the consensus: the next primary, and a replacement fills the primaries.
        let gone = without(&c, &first);
        let next = pick(&mut set, &gone, NOW + 10);
        assert_ne!(next, first);
        assert_eq!(set.primaries(&gone).len(), 3);
        assert_eq!(set.sampled().len(), 4);
        // Listed without the Guard flag: not used either.
        let mut demoted = c.clone();
        for r in &mut demoted.relays {
            if r.info.identity == first {
                r.flags = Flags::RUNNING;
            }
        }
        assert_ne!(pick(&mut set, &demoted, NOW + 20), first);
        // Back with its flags: first again (it kept its place in the sample).
        assert_eq!(pick(&mut set, &c, NOW + 30), first);
        // Unlisted for 20 days: dropped for good.
        pick(&mut set, &gone, NOW + 40);
        pick(&mut set, &gone, NOW + 40 + 20 * DAY);
        assert!(!set.sampled().contains(&first));
        assert_ne!(pick(&mut set, &c, NOW + 41 + 20 * DAY), first);
    }

    #[test]
    fn lifetime_expiry_drops_a_guard() {
        let c = consensus(10);
        let p = GuardParams::default();
        let mut set = GuardSet::new(p);
        let first = pick(&mut set, &c, NOW);
        assert_eq!(
            pick(&mut set, &c, NOW + p.min_lifetime - 1),
            first,
            "kept at least 30 days"
        );
        // After at most 60 days every guard of the first sample is gone; the new sample (which
        // may draw the same relays again) starts its own lifetimes.
        let renewed = NOW + p.max_lifetime;
        pick(&mut set, &c, renewed);
        assert_eq!(set.sampled().len(), 3);
        assert!(set.guards.iter().all(|g| g.sampled_at == renewed), "{:?}", set.guards);
        assert!(
            set.guards
                .iter()
                .all(|g| (renewed + p.min_lifetime..=renewed + p.max_lifetime).contains(&g.expires_at))
        );
    }

    #[test]
    fn the_sample_is_bounded() {
        let c = consensus(30);
        let p = GuardParams::default();
        let mut set = GuardSet::new(p);
        // Every guard we pick vanishes from the consensus: the sample grows, up to its limit.
        let mut current = c.clone();
        for t in 0..100 {
            match set.pick(&current, NOW + t, &mut ThreadRandom) {
                Ok(g) => current = without(&current, &g.info.identity),
                Err(e) => {
                    assert_eq!(e, PathError::NoGuard);
                    break;
                }
            }
        }
        assert_eq!(set.sampled().len(), p.max_sampled);
        assert_eq!(
            set.pick(&current, NOW + 200, &mut ThreadRandom),
            Err(PathError::NoGuard)
        );
        // No guard relays at all.
        let none = Consensus {
            relays: c.relays.iter().filter(|r| !usable_guard(r)).cloned().collect(),
            ..c
        };
        let mut empty = GuardSet::new(p);
        assert_eq!(empty.pick(&none, NOW, &mut ThreadRandom), Err(PathError::NoGuard));
    }

    #[test]
    fn restart_keeps_the_sample_and_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = consensus(10);
        let guards = Guards::load(dir.path(), GuardParams::default());
        let first = guards.pick(&c).unwrap().info.identity;
        let sampled = guards.sampled();
        guards.failed(&first);
        drop(guards);
        let again = Guards::load(dir.path(), GuardParams::default());
        assert_eq!(again.sampled(), sampled);
        assert_eq!(
            again.pick(&c).unwrap().info.identity,
            first,
            "reachability is not persisted: a restart tries the first primary again"
        );
        // A corrupt state file starts a new sample instead of failing.
        std::fs::write(dir.path().join("state.json"), b"{not json").unwrap();
        let fresh = Guards::load(dir.path(), GuardParams::default());
        assert!(fresh.sampled().is_empty());
        assert!(fresh.pick(&c).is_ok());
    }
}
