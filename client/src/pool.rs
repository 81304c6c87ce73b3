//! Which circuit a stream uses.
//!
//! Streams are isolated by their SOCKS username and password: streams with different
//! credentials never share a circuit (Tor's IsolateSOCKSAuth), so a browser profile or an
//! application can keep its traffic unlinkable from another's at the exit. Within one
//! isolation group, a circuit is reused for new streams for at most
//! `circuit_max_dirtiness_secs` (10 minutes) after its first stream, and only if its exit
//! allows the destination. Requests in one group wait for a single build rather than each
//! building their own.

use crate::guard::GuardStore;
use crate::stats::ClientStats;
use onionlab_link::origin::EntryLinks;
use onionlab_link::origin::{BuildError, CircuitHandle, build};
use onionlab_proto::consensus::Consensus;
use onionlab_proto::path::{PathError, PathRules, choose_path, exit_allows};
use onionlab_proto::random::ThreadRandom;
use onionlab_proto::relay_msg::Target;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// Streams with equal keys may share circuits. Holds the SOCKS credentials, so it is never
/// logged or shown; [`CircuitInfo::isolation`] shows a keyed hash instead.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct IsolationKey(Option<(String, String)>);

impl IsolationKey {
    /// The key for these SOCKS credentials (None: no authentication).
    pub fn new(creds: Option<(String, String)>) -> Self {
        IsolationKey(creds)
    }
}

impl std::fmt::Debug for IsolationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IsolationKey([scrubbed])")
    }
}

/// Why no circuit could be had.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No consensus yet.
    #[error("no usable consensus yet")]
    NoConsensus,
    /// No path fits.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The build failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// A circuit as the pool reports it (no credentials, no destinations).
#[derive(Debug, Clone)]
pub struct CircuitInfo {
    /// Circuit number.
    pub id: u64,
    /// Distinguishes isolation groups without revealing them (a per-process keyed hash).
    pub isolation: u64,
    /// Relay fingerprints, guard first.
    pub path: [String; 3],
    /// Streams opened.
    pub streams: u64,
    /// Still open.
    pub open: bool,
    /// Build time.
    pub build_time: Duration,
}

/// The circuits of one isolation group; its lock makes concurrent requests share one build.
type Group = Arc<tokio::sync::Mutex<Vec<Arc<CircuitHandle>>>>;

/// The client's circuits.
pub struct CircuitPool {
    groups: Mutex<HashMap<IsolationKey, Group>>,
    consensus: watch::Receiver<Option<Arc<Consensus>>>,
    links: EntryLinks,
    guards: GuardStore,
    rules: PathRules,
    max_dirtiness: Duration,
    build_timeout: Duration,
    hash_key: u64,
    build_times: Mutex<Vec<Duration>>,
    /// Counters for `/metrics`.
    pub stats: ClientStats,
}

impl CircuitPool {
    /// A pool building through `links`, following `consensus`.
    pub fn new(
        consensus: watch::Receiver<Option<Arc<Consensus>>>,
        links: EntryLinks,
        guards: GuardStore,
        rules: PathRules,
        max_dirtiness: Duration,
        build_timeout: Duration,
    ) -> Self {
        CircuitPool {
            groups: Mutex::new(HashMap::new()),
            consensus,
            links,
            guards,
            rules,
            max_dirtiness,
            build_timeout,
            hash_key: onionlab_proto::random::u64(),
            build_times: Mutex::new(Vec::new()),
            stats: ClientStats::default(),
        }
    }

    /// Waits up to `wait` for a consensus that can make a path.
    pub async fn consensus(&self, wait: Duration) -> Result<Arc<Consensus>, PoolError> {
        let mut rx = self.consensus.clone();
        let got = tokio::time::timeout(
            wait,
            rx.wait_for(|c| c.as_ref().is_some_and(|c| crate::directory::usable(c))),
        )
        .await;
        match got {
            Ok(Ok(c)) => c.clone().ok_or(PoolError::NoConsensus),
            _ => Err(PoolError::NoConsensus),
        }
    }

    /// A circuit for `target` (None: any web exit) in group `key`: an open, not-too-dirty one
    /// whose exit allows the target, else a fresh one. `fresh` forces a new build (retries).
    pub async fn get(
        &self,
        key: &IsolationKey,
        target: Option<&Target>,
        fresh: bool,
    ) -> Result<Arc<CircuitHandle>, PoolError> {
        let group = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let mut circuits = group.lock().await;
        circuits.retain(|c| self.keep(c));
        if !fresh
            && let Some(c) = circuits
                .iter()
                .find(|c| target.is_none_or(|t| exit_allows(&c.path.exit, t)))
        {
            return Ok(c.clone());
        }
        let consensus = self.consensus(self.build_timeout).await?;
        let guard = self.guards.guard(&consensus)?;
        let path = choose_path(&consensus, &guard, target, self.rules, &mut ThreadRandom)?;
        let circuit = match build(&self.links, path, self.build_timeout).await {
            Ok(c) => Arc::new(c),
            Err(e) => {
                ClientStats::bump(&self.stats.circuit_build_failures);
                return Err(e.into());
            }
        };
        ClientStats::bump(&self.stats.circuits_built);
        tracing::debug!(
            circuit = circuit.id,
            build_ms = circuit.build_time.as_secs_f64() * 1e3,
            "circuit built"
        );
        self.build_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(circuit.build_time);
        circuits.push(circuit.clone());
        Ok(circuit)
    }

    /// Every circuit currently held.
    pub async fn circuits(&self) -> Vec<CircuitInfo> {
        let groups: Vec<_> = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (self.hash(k), v.clone()))
            .collect();
        let mut out = Vec::new();
        for (isolation, group) in groups {
            for c in group.lock().await.iter() {
                out.push(CircuitInfo {
                    id: c.id,
                    isolation,
                    path: [&c.path.guard, &c.path.middle, &c.path.exit]
                        .map(|r| onionlab_proto::keys::fingerprint(&r.info.identity)),
                    streams: c.streams_opened(),
                    open: c.is_open(),
                    build_time: c.build_time,
                });
            }
        }
        out.sort_by_key(|c| c.id);
        out
    }

    /// Every build time so far (for benchmarks).
    pub fn build_times(&self) -> Vec<Duration> {
        self.build_times.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn hash(&self, key: &IsolationKey) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash_key.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    }

    /// Should the pool still offer `c` for new streams? Open, and used for the first time less
    /// than the dirtiness limit ago (or, never used, built less than twice that ago).
    fn keep(&self, c: &CircuitHandle) -> bool {
        c.is_open()
            && match c.first_used() {
                Some(t) => t.elapsed() < self.max_dirtiness,
                None => c.built_at.elapsed() < self.max_dirtiness * 2,
            }
    }

    /// Drops circuits the pool no longer offers. A dropped circuit closes once its last
    /// stream ends (see `circuit`).
    pub fn prune(&self) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for g in groups.values() {
            if let Ok(mut circuits) = g.try_lock() {
                circuits.retain(|c| self.keep(c));
            }
        }
    }
}
