//! The authority's state: descriptors it holds, what its reachability tests and bandwidth
//! scanner found, its votes, and the consensus it serves.
//!
//! Life of a relay here: its descriptor is uploaded and verified ([`Authority::submit`]); a
//! reachability test opens a link to its OR port and insists on the identity in the
//! descriptor; once that succeeds the relay is Running and this authority votes for it (unless
//! the Sybil cap leaves it out); the scanner measures its bandwidth. What the consensus says
//! is decided by the votes of all authorities ([`crate::voting`]). Relays left out by this
//! authority, and why, appear in the JSON view.

use crate::config::AuthorityConfig;
use crate::{flags, sybil, unix_now};
use bytes::Bytes;
use onionlab_link::channel::ChannelConnector;
use onionlab_link::config::AuthorityEntry;
use onionlab_link::keystore;
use onionlab_proto::consensus::{AuthoritySignature, SignedConsensus};
use onionlab_proto::descriptor::{DescriptorError, RelayInfo, SignedDescriptor};
use onionlab_proto::keys::{IdentityBytes, SigningKey, fingerprint};
use onionlab_proto::vote::{Vote, VoteRelay};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::task::JoinSet;

/// Clock skew tolerated on a descriptor's publication time.
const MAX_SKEW_SECS: u64 = 300;
/// Periods of own votes and signatures kept for the other authorities to fetch.
const KEEP_PERIODS: usize = 4;

/// What the authority knows about one relay.
#[derive(Debug, Clone)]
struct RelayRecord {
    desc: SignedDescriptor,
    /// Unix time since which every reachability test passed; None if the last one failed
    /// or none finished yet.
    reachable_since: Option<u64>,
    /// Why the relay is not voted for, for the JSON view.
    last_failure: Option<String>,
    /// When this authority first saw the relay.
    first_seen: u64,
}

/// The consensus being served, in the forms clients and people fetch.
#[derive(Debug, Clone)]
pub struct Published {
    /// The signed consensus.
    pub signed: SignedConsensus,
    /// Its wire encoding.
    pub bytes: Bytes,
    /// The JSON view.
    pub json: Bytes,
}

/// Event counts for `/metrics`.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    unreachable: AtomicU64,
    published: AtomicU64,
    failed_rounds: AtomicU64,
    measurements: AtomicU64,
}

/// A directory authority.
pub struct Authority {
    pub(crate) config: AuthorityConfig,
    pub(crate) key: SigningKey,
    pub(crate) http_addr: SocketAddr,
    relays: Mutex<HashMap<IdentityBytes, RelayRecord>>,
    published: RwLock<Option<Arc<Published>>>,
    pub(crate) connector: ChannelConnector,
    counters: Counters,
    votes: Mutex<BTreeMap<u64, Bytes>>,
    signatures: Mutex<BTreeMap<u64, AuthoritySignature>>,
    excluded: Mutex<Vec<(RelayInfo, String)>>,
    clusters: Mutex<Vec<(String, usize)>>,
    measured: Mutex<HashMap<IdentityBytes, (u64, u64)>>,
}

/// A running authority; dropping it stops every task.
pub struct AuthorityHandle {
    /// The HTTP API's address.
    pub http_addr: SocketAddr,
    /// The authority's identity.
    pub identity: IdentityBytes,
    /// The shared state.
    pub authority: Arc<Authority>,
    tasks: JoinSet<()>,
}

impl AuthorityHandle {
    /// Waits until a task ends (they run forever unless something fails).
    pub async fn wait(&mut self) {
        let _ = self.tasks.join_next().await;
    }
}

/// Why the authority could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The identity key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] keystore::KeyStoreError),
    /// The HTTP port could not be bound.
    #[error(transparent)]
    Listen(#[from] onionlab_link::accept::BindError),
    /// TLS setup failed.
    #[error("TLS setup: {0}")]
    Tls(#[from] onionlab_link::tls::TlsError),
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The authority's identity key file inside `data_dir`.
pub fn key_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("authority_identity.key")
}

impl Authority {
    /// Loads (or creates, mode 0600) the identity key, binds the HTTP port and starts the
    /// reachability tests, the voting schedule and the bandwidth scanner.
    pub async fn start(config: AuthorityConfig) -> Result<AuthorityHandle, StartError> {
        let (listener, _) = onionlab_link::accept::bind(config.listen).await?;
        Self::start_on(listener, config).await
    }

    /// Like [`Authority::start`] on an already bound listener (when the addresses of all
    /// authorities must be known before any starts, as in the testbed).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: AuthorityConfig,
    ) -> Result<AuthorityHandle, StartError> {
        let key = keystore::identity_key(&key_path(&config.data_dir))?;
        let identity = key.verifying_key().to_bytes();
        for a in &config.authorities {
            a.identity_bytes()
                .map_err(|e| StartError::Config(format!("authority {}: {e}", a.address)))?;
        }
        if !config.authorities.is_empty()
            && !config
                .authorities
                .iter()
                .any(|a| a.identity_bytes().ok() == Some(identity))
        {
            return Err(StartError::Config(format!(
                "the authorities list must include this authority ({})",
                fingerprint(&identity)
            )));
        }
        let http_addr = listener
            .local_addr()
            .map_err(|source| onionlab_link::accept::BindError {
                addr: config.listen,
                source,
            })?;
        let authority = Arc::new(Authority {
            connector: ChannelConnector::new(onionlab_link::tls::client_config()?),
            http_addr,
            config,
            key,
            relays: Mutex::new(HashMap::new()),
            published: RwLock::new(None),
            counters: Counters::default(),
            votes: Mutex::new(BTreeMap::new()),
            signatures: Mutex::new(BTreeMap::new()),
            excluded: Mutex::new(Vec::new()),
            clusters: Mutex::new(Vec::new()),
            measured: Mutex::new(HashMap::new()),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(crate::http::serve(listener, authority.clone()));
        tasks.spawn(crate::voting::run(authority.clone()));
        tasks.spawn(authority.clone().reachability_loop());
        if authority.config.measure_bandwidth {
            tasks.spawn(crate::scanner::run(authority.clone()));
        }
        tracing::info!(nickname = %authority.config.nickname, identity = %fingerprint(&identity), %http_addr, "directory authority started");
        Ok(AuthorityHandle {
            http_addr,
            identity,
            authority,
            tasks,
        })
    }

    /// The authority's identity.
    pub fn identity(&self) -> IdentityBytes {
        self.key.verifying_key().to_bytes()
    }

    /// The other voting authorities.
    pub(crate) fn peers(&self) -> Vec<(AuthorityEntry, IdentityBytes)> {
        let me = self.identity();
        self.config
            .authorities
            .iter()
            .filter_map(|a| a.identity_bytes().ok().map(|id| (a.clone(), id)))
            .filter(|(_, id)| *id != me)
            .collect()
    }

    /// How many authorities vote (this one included).
    pub(crate) fn voters(&self) -> usize {
        self.config.authorities.len().max(1)
    }

    /// The Prometheus page.
    pub fn metrics(&self) -> String {
        let known = lock(&self.relays).len();
        let listed = self.published().map_or(0, |p| p.signed.consensus.relays.len());
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut e = onionlab_link::metrics::Exposition::new();
        e.gauge(
            "onionlab_dirauth_relays_known",
            "Relays with a fresh descriptor.",
            known as f64,
        )
        .gauge(
            "onionlab_dirauth_relays_listed",
            "Relays in the current consensus.",
            listed as f64,
        )
        .counter(
            "onionlab_dirauth_descriptors_accepted_total",
            "Descriptor uploads accepted.",
            g(&c.accepted),
        )
        .counter(
            "onionlab_dirauth_descriptors_refused_total",
            "Descriptor uploads refused.",
            g(&c.refused),
        )
        .counter(
            "onionlab_dirauth_reachability_failures_total",
            "Failed OR-port tests.",
            g(&c.unreachable),
        )
        .counter(
            "onionlab_dirauth_consensus_published_total",
            "Consensuses published with a majority.",
            g(&c.published),
        )
        .counter(
            "onionlab_dirauth_voting_rounds_failed_total",
            "Periods without a majority of signatures.",
            g(&c.failed_rounds),
        )
        .counter(
            "onionlab_dirauth_bandwidth_measurements_total",
            "Relays measured by the scanner.",
            g(&c.measurements),
        );
        e.finish()
    }

    /// The consensus being served, if any.
    pub fn published(&self) -> Option<Arc<Published>> {
        self.published.read().ok().and_then(|p| p.clone())
    }

    /// Accepts an uploaded descriptor: verifies it, stores it and schedules a reachability
    /// test. The error text goes back to the relay.
    pub fn submit(self: &Arc<Self>, bytes: &[u8]) -> Result<(), DescriptorError> {
        let result = self.accept(bytes);
        let counter = if result.is_ok() {
            &self.counters.accepted
        } else {
            &self.counters.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn accept(self: &Arc<Self>, bytes: &[u8]) -> Result<(), DescriptorError> {
        let desc = SignedDescriptor::decode(bytes)?;
        let now = unix_now();
        desc.check_time(now, self.config.descriptor_max_age_secs, MAX_SKEW_SECS)?;
        let id = desc.descriptor.info.identity;
        let (needs_test, new) = {
            let mut relays = lock(&self.relays);
            match relays.get_mut(&id) {
                Some(rec) if rec.desc.descriptor.published > desc.descriptor.published => (false, false),
                Some(rec) => {
                    let moved = rec.desc.descriptor.info.or_addr != desc.descriptor.info.or_addr;
                    rec.desc = desc;
                    if moved {
                        rec.reachable_since = None;
                    }
                    (moved || rec.reachable_since.is_none(), false)
                }
                None => {
                    let pending = Some("reachability test pending".into());
                    relays.insert(
                        id,
                        RelayRecord {
                            desc,
                            reachable_since: None,
                            last_failure: pending,
                            first_seen: now,
                        },
                    );
                    (true, true)
                }
            }
        };
        if new {
            self.check_clusters(now);
        }
        if needs_test {
            let me = self.clone();
            tokio::spawn(async move { me.test_reachability(id).await });
        }
        Ok(())
    }

    fn check_clusters(&self, now: u64) {
        let seen: Vec<_> = lock(&self.relays)
            .values()
            .map(|r| (r.desc.descriptor.info.or_addr.ip(), r.first_seen))
            .collect();
        let found = sybil::clusters(
            &seen,
            now,
            self.config.cluster_window_secs,
            self.config.cluster_alert_size,
        );
        let mut known = lock(&self.clusters);
        // Warned once when a prefix becomes a cluster; its growth is only debug news (one
        // warning per joining Sybil would bury the log). It warns again if it forms anew after
        // leaving the window.
        let window_secs = self.config.cluster_window_secs;
        for (prefix, n) in &found {
            match known.iter().find(|(p, _)| p == prefix) {
                None => {
                    tracing::warn!(%prefix, relays = n, window_secs, "suspicious cluster: many new relays from one prefix")
                }
                Some((_, m)) if m < n => tracing::debug!(%prefix, relays = n, window_secs, "suspicious cluster grew"),
                Some(_) => {}
            }
        }
        *known = found;
    }

    async fn test_reachability(&self, id: IdentityBytes) {
        let Some(addr) = lock(&self.relays).get(&id).map(|r| r.desc.descriptor.info.or_addr) else {
            return;
        };
        let result = self.connector.connect(addr, &id).await;
        let mut relays = lock(&self.relays);
        let Some(rec) = relays.get_mut(&id) else { return };
        match result {
            Ok(_channel) => {
                rec.reachable_since.get_or_insert_with(unix_now);
                rec.last_failure = None;
            }
            Err(e) => {
                self.counters.unreachable.fetch_add(1, Ordering::Relaxed);
                tracing::info!(relay = %fingerprint(&id), "reachability test failed: {e}");
                rec.reachable_since = None;
                rec.last_failure = Some(format!("OR port unreachable: {e}"));
            }
        }
    }

    async fn reachability_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.reachability_interval_secs.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            let ids: Vec<IdentityBytes> = lock(&self.relays).keys().copied().collect();
            let mut tests = JoinSet::new();
            for id in ids {
                let me = self.clone();
                tests.spawn(async move { me.test_reachability(id).await });
            }
            while tests.join_next().await.is_some() {}
        }
    }

    /// Relays reachable now, for the scanner: (info, measured bandwidth if any).
    pub(crate) fn reachable(&self) -> Vec<(RelayInfo, Option<(u64, u64)>)> {
        let measured = lock(&self.measured).clone();
        lock(&self.relays)
            .values()
            .filter(|r| r.reachable_since.is_some())
            .map(|r| {
                (
                    r.desc.descriptor.info.clone(),
                    measured.get(&r.desc.descriptor.info.identity).copied(),
                )
            })
            .collect()
    }

    /// Records a measurement by the scanner.
    pub(crate) fn record_measurement(&self, id: IdentityBytes, bytes_per_sec: u64) {
        self.counters.measurements.fetch_add(1, Ordering::Relaxed);
        lock(&self.measured).insert(id, (bytes_per_sec, unix_now()));
    }

    /// This authority's signed vote for the period starting at `valid_after`.
    pub(crate) fn make_vote(&self, valid_after: u64) -> Bytes {
        let now = unix_now();
        let cfg = &self.config;
        let measured = lock(&self.measured).clone();
        let mut excluded = Vec::new();
        let mut candidates = Vec::new();
        {
            let mut map = lock(&self.relays);
            map.retain(|_, r| {
                r.desc
                    .check_time(now, cfg.descriptor_max_age_secs, MAX_SKEW_SECS)
                    .is_ok()
            });
            for r in map.values() {
                let info = &r.desc.descriptor.info;
                match r.reachable_since {
                    Some(since) => candidates.push((r, since)),
                    None => excluded.push((info.clone(), r.last_failure.clone().unwrap_or_default())),
                }
            }
            let sybil: Vec<sybil::Candidate> = candidates
                .iter()
                .map(|(r, since)| {
                    let info = &r.desc.descriptor.info;
                    sybil::Candidate {
                        ip: info.or_addr.ip(),
                        reachable_since: *since,
                        identity: info.identity,
                    }
                })
                .collect();
            let keep = sybil::cap_per_ip(&sybil, cfg.max_relays_per_ip);
            let mut relays = Vec::new();
            for ((r, since), kept) in candidates.iter().zip(keep) {
                let info = &r.desc.descriptor.info;
                if !kept {
                    excluded.push((
                        info.clone(),
                        format!("more than {} relays on this address", cfg.max_relays_per_ip),
                    ));
                    continue;
                }
                let m = measured.get(&info.identity).map(|m| m.0);
                let weight = m.unwrap_or(info.bandwidth.min(cfg.unmeasured_bandwidth_cap));
                relays.push(VoteRelay {
                    info: info.clone(),
                    published: r.desc.descriptor.published,
                    flags: flags::assign(info, weight, now.saturating_sub(*since), cfg),
                    measured: m,
                });
            }
            relays.sort_by_key(|r| r.info.identity);
            *lock(&self.excluded) = excluded;
            let raw = Bytes::from(
                Vote {
                    authority: self.identity(),
                    valid_after,
                    relays,
                }
                .sign(&self.key),
            );
            let mut votes = lock(&self.votes);
            votes.insert(valid_after, raw.clone());
            while votes.len() > KEEP_PERIODS {
                votes.pop_first();
            }
            raw
        }
    }

    /// Own vote for a period, if made.
    pub(crate) fn vote(&self, valid_after: u64) -> Option<Bytes> {
        lock(&self.votes).get(&valid_after).cloned()
    }

    /// Records own signature for a period, for the others to fetch.
    pub(crate) fn set_signature(&self, valid_after: u64, sig: AuthoritySignature) {
        let mut sigs = lock(&self.signatures);
        sigs.insert(valid_after, sig);
        while sigs.len() > KEEP_PERIODS {
            sigs.pop_first();
        }
    }

    /// Own signature for a period, if computed.
    pub(crate) fn signature(&self, valid_after: u64) -> Option<AuthoritySignature> {
        lock(&self.signatures).get(&valid_after).cloned()
    }

    /// Serves `signed` from now on.
    pub(crate) fn publish(&self, signed: SignedConsensus, votes_from: &[IdentityBytes]) {
        let excluded = lock(&self.excluded).clone();
        let clusters = lock(&self.clusters).clone();
        let json = crate::http::json_view(&signed, &excluded, &clusters, votes_from, &self.identity());
        let published = Published {
            bytes: Bytes::from(signed.encode()),
            json: Bytes::from(json),
            signed,
        };
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut p) = self.published.write() {
            *p = Some(Arc::new(published));
        }
    }

    /// Counts a period that ended without a majority of signatures.
    pub(crate) fn round_failed(&self) {
        self.counters.failed_rounds.fetch_add(1, Ordering::Relaxed);
    }
}
