//! Which circuit a stream uses.
//!
//! Streams are isolated by their SOCKS username and password: streams with different
//! credentials never share a circuit (Tor's IsolateSOCKSAuth), so a browser profile or an
//! application can keep its traffic unlinkable from another's at the exit. Within one
//! isolation group, a circuit is reused for new streams for at most
//! `circuit_max_dirtiness_secs` (10 minutes) after its first stream, and only if its exit
//! allows the destination. Requests in one group wait for a single build rather than each
//! building their own. Circuits already used are preferred, so that clean ones stay clean.
//!
//! Building: the guard is the first reachable primary guard ([`crate::guard`]); the build
//! may take as long as the learned timeout ([`crate::build_timeout`]) and is otherwise
//! abandoned and retried on a new path, at most [`MAX_BUILD_ATTEMPTS`] times. A failed link
//! or CREATE2 marks the guard unreachable, so the retry goes through the next primary guard;
//! a middle or exit that could not be reached is left out of that circuit's further attempts.
//! Without guards ([`EntryChoice::PerCircuit`], Tor's `UseEntryGuards 0`), each circuit draws
//! its first hop from the consensus like the others, and an unreachable one is left out too.
//!
//! Circuits ahead of demand ([`CircuitPool::keep_preemptive`]): for each configured port (80
//! and 443 by default), the default isolation group keeps at least one clean circuit whose
//! exit allows that port, so a first request does not wait for a build. When a stream takes
//! one, a replacement is built in the background.

use crate::build_timeout::BuildTimeout;
use crate::guard::Guards;
use crate::stats::ClientStats;
use onionlab_link::origin::EntryLinks;
use onionlab_link::origin::{BuildError, CircuitHandle, build};
use onionlab_proto::consensus::Consensus;
use onionlab_proto::path::{PathError, PathRules, choose_guard, choose_path, exit_allows};
use onionlab_proto::random::ThreadRandom;
use onionlab_proto::relay_msg::{Target, TargetHost};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Notify, watch};

/// Builds tried for one circuit (each on a new path) before giving up.
pub const MAX_BUILD_ATTEMPTS: u32 = 3;
/// How often circuits are pruned and the circuits ahead of demand checked, at the latest.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

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

/// How a circuit's first hop is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryChoice {
    /// The first reachable primary guard ([`crate::guard`]): the default.
    Guards,
    /// Drawn afresh for each circuit, bandwidth-weighted among the Running, Valid, Guard relays
    /// (Tor's `UseEntryGuards 0`; for experiments that compare the two).
    PerCircuit,
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
    /// The entry guards.
    pub guards: Guards,
    entry: EntryChoice,
    rules: PathRules,
    max_dirtiness: Duration,
    max_build_timeout: Duration,
    build_timeout: Mutex<BuildTimeout>,
    hash_key: u64,
    build_times: Mutex<Vec<Duration>>,
    /// A clean circuit of the default group was taken by a stream.
    clean_taken: Notify,
    /// Counters for `/metrics`.
    pub stats: ClientStats,
}

/// A name-shaped target for `port`: exits are matched by port alone, as for a hostname the
/// exit will resolve (see `path::exit_allows`). Never sent anywhere.
fn any_host_on(port: u16) -> Target {
    Target {
        host: TargetHost::Name(String::new()),
        port,
    }
}

impl CircuitPool {
    /// A pool building through `links`, following `consensus`, entering through `guards` or
    /// not as `entry` says; builds take at most `max_build_timeout`, less once build times
    /// have been learned.
    pub fn new(
        consensus: watch::Receiver<Option<Arc<Consensus>>>,
        links: EntryLinks,
        guards: Guards,
        entry: EntryChoice,
        rules: PathRules,
        max_dirtiness: Duration,
        max_build_timeout: Duration,
    ) -> Self {
        CircuitPool {
            groups: Mutex::new(HashMap::new()),
            consensus,
            links,
            guards,
            entry,
            rules,
            max_dirtiness,
            max_build_timeout,
            build_timeout: Mutex::new(BuildTimeout::new(max_build_timeout)),
            hash_key: onionlab_proto::random::u64(),
            build_times: Mutex::new(Vec::new()),
            clean_taken: Notify::new(),
            stats: ClientStats::default(),
        }
    }

    fn learned(&self) -> std::sync::MutexGuard<'_, BuildTimeout> {
        self.build_timeout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current circuit build timeout.
    pub fn build_timeout(&self) -> Duration {
        self.learned().timeout()
    }

    fn group(&self, key: &IsolationKey) -> Group {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone()
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
    /// whose exit allows the target (used ones first), else a fresh one. `fresh` forces a new
    /// build (retries).
    pub async fn get(
        &self,
        key: &IsolationKey,
        target: Option<&Target>,
        fresh: bool,
    ) -> Result<Arc<CircuitHandle>, PoolError> {
        let group = self.group(key);
        let mut circuits = group.lock().await;
        circuits.retain(|c| self.keep(c));
        if !fresh
            && let Some(c) = circuits
                .iter()
                .filter(|c| target.is_none_or(|t| exit_allows(&c.path.exit, t)))
                .max_by_key(|c| c.first_used().is_some())
        {
            if c.first_used().is_none() && *key == IsolationKey::default() {
                self.clean_taken.notify_one();
            }
            return Ok(c.clone());
        }
        let circuit = self.build_circuit(target).await?;
        circuits.push(circuit.clone());
        Ok(circuit)
    }

    /// Builds a circuit for `target` through the first reachable primary guard (or, without
    /// guards, a fresh entry), retrying on a new path when a build fails or takes longer than
    /// the learned timeout.
    async fn build_circuit(&self, target: Option<&Target>) -> Result<Arc<CircuitHandle>, PoolError> {
        let full = self.consensus(self.max_build_timeout).await?;
        // Relays this build may still use: middles and exits, and entries when not using guards
        // (guards have their own reachability rules).
        let mut candidates = full.clone();
        let mut attempt = 1;
        let guards = self.entry == EntryChoice::Guards;
        loop {
            let guard = if guards {
                self.guards.pick(&full)?
            } else {
                choose_guard(&candidates, &mut ThreadRandom)?.clone()
            };
            let path = choose_path(&candidates, &guard, target, self.rules, &mut ThreadRandom)?;
            let hops = [&path.guard, &path.middle, &path.exit].map(|r| r.info.identity);
            let limit = self.build_timeout();
            let e = match build(&self.links, path, limit).await {
                Ok(c) => {
                    if guards {
                        self.guards.succeeded(&guard.info.identity);
                    }
                    self.learned().record_build(c.build_time);
                    ClientStats::bump(&self.stats.circuits_built);
                    tracing::debug!(
                        circuit = c.id,
                        build_ms = c.build_time.as_secs_f64() * 1e3,
                        "circuit built"
                    );
                    self.build_times
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(c.build_time);
                    return Ok(Arc::new(c));
                }
                Err(e) => e,
            };
            ClientStats::bump(&self.stats.circuit_build_failures);
            // Which hop could not be reached, if that is what failed.
            let unreachable = match &e {
                BuildError::Timeout => {
                    ClientStats::bump(&self.stats.circuit_build_timeouts);
                    self.learned().record_timeout();
                    None
                }
                BuildError::Link(_) => Some(0),
                BuildError::Hop { hop, .. } => Some(*hop),
                _ => None,
            };
            match unreachable {
                Some(0) if guards => self.guards.failed(&guard.info.identity),
                Some(hop) => {
                    if let Some(failed) = hops.get(hop) {
                        let mut view = (*candidates).clone();
                        view.relays.retain(|r| r.info.identity != *failed);
                        candidates = Arc::new(view);
                    }
                }
                None => {}
            }
            tracing::debug!(
                attempt,
                limit_ms = limit.as_millis() as u64,
                "circuit build failed: {e}"
            );
            if attempt == MAX_BUILD_ATTEMPTS {
                return Err(e.into());
            }
            attempt += 1;
        }
    }

    /// Keeps, for each of `ports`, a clean circuit in the default group whose exit allows it;
    /// also prunes every group. Runs forever.
    pub async fn keep_preemptive(self: Arc<Self>, ports: Vec<u16>) {
        let mut failures = 0u32;
        loop {
            self.prune();
            let mut failed = false;
            for port in &ports {
                if self.has_clean_for(*port).await {
                    continue;
                }
                match self.build_circuit(Some(&any_host_on(*port))).await {
                    Ok(c) => self.group(&IsolationKey::default()).lock().await.push(c),
                    Err(e) => {
                        tracing::debug!(port, "no circuit ahead of demand: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            failures = if failed { failures.saturating_add(1) } else { 0 };
            let wait = match failures {
                0 => MAINTENANCE_INTERVAL,
                n => Duration::from_secs(1 << n.min(6)).min(MAINTENANCE_INTERVAL),
            };
            tokio::select! {
                _ = self.clean_taken.notified(), if failures == 0 => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn has_clean_for(&self, port: u16) -> bool {
        let target = any_host_on(port);
        let group = self.group(&IsolationKey::default());
        let circuits = group.lock().await;
        circuits
            .iter()
            .any(|c| self.keep(c) && c.first_used().is_none() && exit_allows(&c.path.exit, &target))
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
