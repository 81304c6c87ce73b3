//! The authority's state: descriptors it holds, what its reachability tests found, and the
//! consensus it currently serves.
//!
//! Life of a relay here: its descriptor is uploaded and verified ([`Authority::submit`]); a
//! reachability test opens a link to its OR port and insists on the identity in the
//! descriptor; once that succeeds the relay is Running and the next consensus lists it. The
//! consensus is rebuilt on a schedule (`consensus_interval_secs`) and shortly after any change,
//! so a fresh test network is usable within a second. Relays that fail a test or whose
//! descriptor grows stale drop out, with the reason visible in the JSON view.

use crate::config::AuthorityConfig;
use crate::flags;
use crate::unix_now;
use bytes::Bytes;
use onionlab_link::channel::ChannelConnector;
use onionlab_link::keystore;
use onionlab_proto::consensus::{Consensus, ConsensusRelay, SignedConsensus};
use onionlab_proto::descriptor::{DescriptorError, SignedDescriptor};
use onionlab_proto::keys::{IdentityBytes, SigningKey, fingerprint};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Clock skew tolerated on a descriptor's publication time.
const MAX_SKEW_SECS: u64 = 300;
/// Quiet period after a change before the consensus is rebuilt.
const REBUILD_DEBOUNCE: Duration = Duration::from_millis(50);

/// What the authority knows about one relay.
#[derive(Debug, Clone)]
struct RelayRecord {
    desc: SignedDescriptor,
    /// Unix time since which every reachability test passed; None if the last one failed
    /// or none finished yet.
    reachable_since: Option<u64>,
    /// Why the relay is not listed, for the JSON view.
    last_failure: Option<String>,
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

/// A directory authority.
pub struct Authority {
    config: AuthorityConfig,
    key: SigningKey,
    relays: Mutex<HashMap<IdentityBytes, RelayRecord>>,
    published: RwLock<Option<Arc<Published>>>,
    connector: ChannelConnector,
    changed: Notify,
    counters: Counters,
}

/// Event counts for `/metrics`.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    unreachable: AtomicU64,
    builds: AtomicU64,
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
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error("TLS setup: {0}")]
    Tls(#[from] onionlab_link::tls::TlsError),
}

impl Authority {
    /// Loads (or creates, mode 0600) the identity key, binds the HTTP port and starts the
    /// reachability and consensus tasks.
    pub async fn start(config: AuthorityConfig) -> Result<AuthorityHandle, StartError> {
        let key = keystore::identity_key(&config.data_dir.join("authority_identity.key"))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let identity = key.verifying_key().to_bytes();
        let authority = Arc::new(Authority {
            connector: ChannelConnector::new(onionlab_link::tls::client_config()?),
            config,
            key,
            relays: Mutex::new(HashMap::new()),
            published: RwLock::new(None),
            changed: Notify::new(),
            counters: Counters::default(),
        });
        authority.rebuild();
        let mut tasks = JoinSet::new();
        tasks.spawn(crate::http::serve(listener, authority.clone()));
        tasks.spawn(authority.clone().consensus_loop());
        tasks.spawn(authority.clone().reachability_loop());
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

    /// The Prometheus page.
    pub fn metrics(&self) -> String {
        let known = self.relays.lock().unwrap_or_else(|e| e.into_inner()).len();
        let listed = self.published().map_or(0, |p| p.signed.consensus.relays.len());
        let c = &self.counters;
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
            c.accepted.load(Ordering::Relaxed),
        )
        .counter(
            "onionlab_dirauth_descriptors_refused_total",
            "Descriptor uploads refused.",
            c.refused.load(Ordering::Relaxed),
        )
        .counter(
            "onionlab_dirauth_reachability_failures_total",
            "Failed OR-port tests.",
            c.unreachable.load(Ordering::Relaxed),
        )
        .counter(
            "onionlab_dirauth_consensus_builds_total",
            "Consensuses built and signed.",
            c.builds.load(Ordering::Relaxed),
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
        desc.check_time(unix_now(), self.config.descriptor_max_age_secs, MAX_SKEW_SECS)?;
        let id = desc.descriptor.info.identity;
        let needs_test = {
            let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
            match relays.get_mut(&id) {
                Some(rec) if rec.desc.descriptor.published > desc.descriptor.published => false,
                Some(rec) => {
                    let moved = rec.desc.descriptor.info.or_addr != desc.descriptor.info.or_addr;
                    rec.desc = desc;
                    if moved {
                        rec.reachable_since = None;
                    }
                    moved || rec.reachable_since.is_none()
                }
                None => {
                    relays.insert(
                        id,
                        RelayRecord {
                            desc,
                            reachable_since: None,
                            last_failure: Some("reachability test pending".into()),
                        },
                    );
                    true
                }
            }
        };
        if needs_test {
            let me = self.clone();
            tokio::spawn(async move { me.test_reachability(id).await });
        }
        self.changed.notify_one();
        Ok(())
    }

    async fn test_reachability(&self, id: IdentityBytes) {
        let Some(addr) = self
            .relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|r| r.desc.descriptor.info.or_addr)
        else {
            return;
        };
        let result = self.connector.connect(addr, &id).await;
        let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rec) = relays.get_mut(&id) else {
            return;
        };
        let was = rec.reachable_since.is_some();
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
        if was != rec.reachable_since.is_some() {
            drop(relays);
            self.changed.notify_one();
        }
    }

    async fn reachability_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.reachability_interval_secs.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            let ids: Vec<IdentityBytes> = self
                .relays
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .copied()
                .collect();
            let mut tests = JoinSet::new();
            for id in ids {
                let me = self.clone();
                tests.spawn(async move { me.test_reachability(id).await });
            }
            while tests.join_next().await.is_some() {}
        }
    }

    async fn consensus_loop(self: Arc<Self>) {
        let interval = Duration::from_secs(self.config.consensus_interval_secs.max(1));
        loop {
            let _ = tokio::time::timeout(interval, self.changed.notified()).await;
            tokio::time::sleep(REBUILD_DEBOUNCE).await;
            self.rebuild();
        }
    }

    /// Builds, signs and publishes a consensus from what the authority knows now.
    pub fn rebuild(&self) {
        self.counters.builds.fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        let cfg = &self.config;
        let (relays, excluded) = {
            let mut map = self.relays.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, r| {
                r.desc
                    .check_time(now, cfg.descriptor_max_age_secs, MAX_SKEW_SECS)
                    .is_ok()
            });
            let mut listed = Vec::new();
            let mut excluded = Vec::new();
            for r in map.values() {
                match r.reachable_since {
                    Some(since) => listed.push(ConsensusRelay {
                        info: r.desc.descriptor.info.clone(),
                        flags: flags::assign(&r.desc.descriptor.info, now.saturating_sub(since), cfg),
                    }),
                    None => excluded.push((
                        r.desc.descriptor.info.clone(),
                        r.last_failure.clone().unwrap_or_default(),
                    )),
                }
            }
            (listed, excluded)
        };
        let interval = cfg.consensus_interval_secs.max(1);
        let mut signed = SignedConsensus::new(Consensus {
            valid_after: now,
            fresh_until: now + interval,
            valid_until: now + 3 * interval,
            relays,
        });
        signed.add_signature(&self.key);
        let json = crate::http::json_view(&signed, &excluded, &self.identity());
        let published = Published {
            bytes: Bytes::from(signed.encode()),
            json: Bytes::from(json),
            signed,
        };
        tracing::debug!(relays = published.signed.consensus.relays.len(), "published consensus");
        if let Ok(mut p) = self.published.write() {
            *p = Some(Arc::new(published));
        }
    }
}
