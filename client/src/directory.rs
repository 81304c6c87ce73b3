//! The client's view of the network: a consensus fetched from any authority that answers,
//! accepted only with valid signatures from more than half of the configured authorities.
//!
//! - Authorities are asked in a random order each time, so no single one learns every fetch
//!   and one that is down costs only its own timeout.
//! - An accepted consensus is written to `DATA_DIR/cached-consensus` (see
//!   [`crate::consensus_cache`]), so that a restart is ready at once, even with every
//!   authority down, for as long as the cached one is valid.
//! - When to fetch is [`FetchSchedule`]: a random moment in the last eighth of the current
//!   consensus's freshness, so a new one is in hand around `fresh_until`; after a failure, or
//!   an answer no newer than what we hold, again with exponential backoff. While no consensus
//!   usable for a 3-hop path is held (a network still starting), the backoff starts at 50 ms.
//! - An older consensus never replaces a newer one; one past `valid_until` is dropped.
//!
//! A refused consensus is logged with the reason (too few signatures, expired...).

use crate::consensus_cache::ConsensusCache;
use onionlab_link::config::AuthorityEntry;
use onionlab_link::dirhttp;
use onionlab_proto::consensus::{Consensus, ConsensusError, Flags, MAX_CONSENSUS_LEN, SignedConsensus};
use onionlab_proto::keys::IdentityBytes;
use onionlab_proto::random::{RandomSource, ThreadRandom};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// Why no consensus could be fetched.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Every authority failed; the last reason.
    #[error("no authority gave a valid consensus: {0}")]
    AllFailed(String),
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Decodes signed consensus bytes and checks them against `trusted` at `now`.
pub fn verified(bytes: &[u8], trusted: &[IdentityBytes], now: u64) -> Result<Consensus, ConsensusError> {
    let sc = SignedConsensus::decode(bytes)?;
    sc.verify(trusted, now).cloned()
}

/// Asks the authorities, in a random order, until one gives a consensus that verifies;
/// returns it with its signed bytes.
pub async fn fetch(
    authorities: &[AuthorityEntry],
    trusted: &[IdentityBytes],
) -> Result<(Consensus, Vec<u8>), FetchError> {
    let mut order: Vec<&AuthorityEntry> = authorities.iter().collect();
    shuffle(&mut order, &mut ThreadRandom);
    let mut last = String::from("no authorities configured");
    for auth in order {
        match dirhttp::get(auth.address, "/onionlab/v1/consensus", MAX_CONSENSUS_LEN).await {
            Ok((status, body)) if status.is_success() => match verified(&body, trusted, unix_now()) {
                Ok(c) => return Ok((c, body.to_vec())),
                Err(e @ ConsensusError::Malformed(_)) => last = format!("{}: {e}", auth.address),
                Err(e) => {
                    tracing::warn!(authority = %auth.address, "refusing consensus: {e}");
                    last = e.to_string();
                }
            },
            Ok((status, _)) => last = format!("{} answered {status}", auth.address),
            Err(e) => last = format!("{}: {e}", auth.address),
        }
    }
    Err(FetchError::AllFailed(last))
}

/// Fisher–Yates.
fn shuffle<T>(items: &mut [T], rng: &mut impl RandomSource) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// True if a 3-hop path can be built from `c`: a guard, an exit and three running relays.
pub fn usable(c: &Consensus) -> bool {
    let running = c.relays.iter().filter(|r| r.flags.contains(Flags::RUNNING)).count();
    let guard = c.relays.iter().any(|r| r.flags.contains(Flags::GUARD));
    let exit = c.relays.iter().any(|r| r.flags.contains(Flags::EXIT));
    running >= 3 && guard && exit
}

/// Backoff while no usable consensus is held: quick, a network may be starting.
const BOOTSTRAP_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(10));

/// When to fetch next. No I/O: times are passed in.
#[derive(Debug, Default)]
pub struct FetchSchedule {
    /// Fetches in a row that brought nothing new.
    misses: u32,
}

impl FetchSchedule {
    /// Delay after accepting `c` at `now`: a random moment in the last eighth of its
    /// freshness (at once if it is already past `fresh_until` or unusable).
    pub fn after_new(&mut self, c: &Consensus, now: u64, rng: &mut impl RandomSource) -> Duration {
        self.misses = 0;
        if !usable(c) || now >= c.fresh_until {
            return self.after_miss(Some(c));
        }
        let window = c.fresh_until.saturating_sub(c.valid_after) / 8;
        let start = c.fresh_until.saturating_sub(window).max(now);
        let at = start + rng.below(c.fresh_until - start + 1);
        Duration::from_secs(at - now)
    }

    /// Delay after a fetch that failed or brought nothing newer than `current`: exponential
    /// backoff from 1/64 to 1/8 of the freshness period (50 ms to 10 s without a usable one).
    pub fn after_miss(&mut self, current: Option<&Consensus>) -> Duration {
        let (first, max) = match current.filter(|c| usable(c)) {
            Some(c) => {
                let period = c.fresh_until.saturating_sub(c.valid_after);
                let max = Duration::from_secs(period / 8).max(Duration::from_secs(1));
                (Duration::from_secs(period / 64).clamp(Duration::from_secs(1), max), max)
            }
            None => BOOTSTRAP_BACKOFF,
        };
        let delay = first.saturating_mul(1u32 << self.misses.min(20)).min(max);
        self.misses = self.misses.saturating_add(1);
        delay
    }
}

/// Keeps `tx` holding the newest accepted consensus (starting from `current`, e.g. the cached
/// one), forever; each newly accepted one is written to `cache`.
pub async fn refresh_loop(
    authorities: Vec<AuthorityEntry>,
    trusted: Vec<IdentityBytes>,
    cache: ConsensusCache,
    tx: watch::Sender<Option<Arc<Consensus>>>,
) {
    let mut schedule = FetchSchedule::default();
    let mut current: Option<Arc<Consensus>> = tx.borrow().clone();
    // A cached consensus that is still fresh waits for its refresh time; otherwise fetch now.
    let now = unix_now();
    let mut wait = match &current {
        Some(c) if usable(c) && now < c.fresh_until => schedule.after_new(c, now, &mut ThreadRandom),
        _ => Duration::ZERO,
    };
    loop {
        tokio::time::sleep(wait).await;
        let fetched = fetch(&authorities, &trusted).await;
        let now = unix_now();
        if current.as_ref().is_some_and(|c| c.valid_until < now) {
            tracing::warn!("the consensus expired and no newer one could be fetched");
            current = None;
            tx.send_replace(None);
        }
        wait = match fetched {
            Ok((c, bytes)) if current.as_ref().is_none_or(|old| newer(&c, old)) => {
                tracing::debug!(relays = c.relays.len(), usable = usable(&c), "consensus accepted");
                cache.store(&bytes);
                let c = Arc::new(c);
                current = Some(c.clone());
                tx.send_replace(Some(c.clone()));
                schedule.after_new(&c, now, &mut ThreadRandom)
            }
            Ok(_) => schedule.after_miss(current.as_deref()),
            Err(e) => {
                tracing::warn!("{e}");
                schedule.after_miss(current.as_deref())
            }
        };
    }
}

/// Does `c` replace `old`? Later, or as recent and different (an authority that rebuilt its
/// consensus within the same second).
fn newer(c: &Consensus, old: &Consensus) -> bool {
    c.valid_after > old.valid_after || (c.valid_after == old.valid_after && c != old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consensus(valid_after: u64, period: u64, usable_relays: bool) -> Consensus {
        let mut relays = Vec::new();
        if usable_relays {
            // usable() only counts flags, so three flag-only relays are enough here.
            let sc = crate::consensus_cache::tests::signed(valid_after, valid_after + period, 1);
            relays = sc.consensus.relays;
        }
        Consensus {
            valid_after,
            fresh_until: valid_after + period,
            valid_until: valid_after + 3 * period,
            relays,
        }
    }

    #[test]
    fn refresh_lands_in_the_last_eighth_of_freshness() {
        let c = consensus(1000, 3600, true);
        let mut s = FetchSchedule::default();
        for _ in 0..200 {
            let d = s.after_new(&c, 1000, &mut ThreadRandom).as_secs();
            assert!((3600 - 450..=3600).contains(&d), "{d}");
        }
        // Fetched late: no earlier than now.
        assert!(s.after_new(&c, 4500, &mut ThreadRandom) <= Duration::from_secs(450));
    }

    #[test]
    fn misses_back_off_exponentially_and_are_capped() {
        let c = consensus(1000, 3600, true);
        let mut s = FetchSchedule::default();
        let delays: Vec<u64> = (0..6).map(|_| s.after_miss(Some(&c)).as_secs()).collect();
        assert_eq!(delays, vec![56, 112, 224, 448, 450, 450]);
        // A new consensus resets the backoff.
        s.after_new(&c, 1000, &mut ThreadRandom);
        assert_eq!(s.after_miss(Some(&c)).as_secs(), 56);
        // Without a usable consensus: quick retries for a starting network.
        let mut boot = FetchSchedule::default();
        let d: Vec<Duration> = (0..10).map(|_| boot.after_miss(None)).collect();
        assert_eq!(d[0], Duration::from_millis(50));
        assert_eq!(d[9], Duration::from_secs(10));
        let unusable = consensus(1000, 3600, false);
        assert_eq!(
            FetchSchedule::default().after_new(&unusable, 1000, &mut ThreadRandom),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn only_newer_consensuses_replace_the_current_one() {
        let old = consensus(1000, 60, true);
        let new = consensus(1060, 60, true);
        assert!(newer(&new, &old));
        assert!(!newer(&old, &new));
        assert!(!newer(&old, &old));
        let mut rebuilt = old.clone();
        rebuilt.relays.pop();
        assert!(newer(&rebuilt, &old), "same second, different relays");
    }

    #[test]
    fn shuffle_visits_every_order() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let mut v = [1, 2, 3];
            shuffle(&mut v, &mut ThreadRandom);
            seen.insert(v);
        }
        assert_eq!(seen.len(), 6);
    }
}
