//! Relay start-up, the state every task shares, and what an operator does to a running relay:
//! reload its configuration and shut it down gracefully.
//!
//! **Reload** ([`RelayHandle::reload`], SIGHUP in `main.rs`) swaps in a new [`Settings`]
//! snapshot: tasks read the settings when they use them, so the exit policy, rate limit,
//! contact, family and limits apply at once, and the descriptor is republished. Fields that
//! bind sockets, files or the accounting period keep their old values, and each is logged.
//!
//! **Shutdown** ([`RelayHandle::shutdown`], SIGTERM or Ctrl-C in `main.rs`) stops accepting
//! links and publishing, refuses new circuits and streams as a hibernating relay does, and
//! waits until no exit stream is open and no relay cell has moved for [`DRAIN_QUIET`] (a
//! middle relay cannot see streams, only cells), or until the grace period ends. Then every
//! link reader stops, which closes every circuit, and the accounting counter is saved.

use crate::config::{ConfigError, RelayConfig};
use crate::limits::CircuitLimits;
use crate::links::{self, LinkTable};
use crate::onion_keys::{KeyStep, OnionKeyError, OnionKeys};
use crate::stats::RelayStats;
use crate::traffic::TrafficMeter;
use onionlab_link::channel::{ChannelAcceptor, ChannelConnector};
use onionlab_link::keystore;
use onionlab_proto::exit_policy::ExitPolicy;
use onionlab_proto::keys::{IdentityBytes, OnionPublicKey, SigningKey, fingerprint};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::{AbortHandle, JoinSet};

/// How long a draining relay must see no relay cell move before it stops early.
pub const DRAIN_QUIET: Duration = Duration::from_secs(1);
/// After the drain, how long circuits get to send their DESTROYs.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The current time in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The configuration in force and what is derived from it; replaced whole on reload.
#[derive(Debug)]
pub struct Settings {
    /// The configuration.
    pub config: RelayConfig,
    /// Its effective exit policy.
    pub policy: ExitPolicy,
}

/// What every task of a relay shares.
pub struct Relay {
    settings: RwLock<Arc<Settings>>,
    /// Identity signing key.
    pub identity_key: Arc<SigningKey>,
    /// Identity public key.
    pub identity: IdentityBytes,
    /// The ntor onion keys (current and, after a rotation, previous).
    pub onion_keys: OnionKeys,
    /// The address in the descriptor.
    pub advertised: SocketAddr,
    /// Links this relay opened, by peer identity, for reuse.
    pub outbound: LinkTable,
    /// Counters.
    pub stats: RelayStats,
    /// Bandwidth rate limit and accounting.
    pub traffic: TrafficMeter,
    /// Circuits per address and queued cells.
    pub limits: CircuitLimits,
    /// Permits for CREATE2 handshakes pending (`max_pending_creates`).
    pub pending_creates: Arc<Semaphore>,
    /// Wakes the publisher to upload a fresh descriptor now.
    pub republish: Notify,
    draining: AtomicBool,
    stop: watch::Sender<bool>,
}

impl Relay {
    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The onion public key to publish.
    pub fn onion_public(&self) -> OnionPublicKey {
        self.onion_keys.current_public()
    }

    /// True while hibernating or shutting down: no new circuits, no new streams.
    pub fn refusing_new_work(&self) -> bool {
        self.traffic.hibernating() || self.draining.load(Ordering::Relaxed)
    }

    /// Becomes true when the relay stops: link readers end, and with them every circuit.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    fn cells_moved(&self) -> u64 {
        RelayStats::get(&self.stats.cells_forward) + RelayStats::get(&self.stats.cells_backward)
    }

    /// Returns once no exit stream is open and no relay cell moved for [`DRAIN_QUIET`].
    async fn drained(&self) {
        let step = Duration::from_millis(100);
        let mut quiet = Duration::ZERO;
        let mut moved = self.cells_moved();
        while quiet < DRAIN_QUIET {
            tokio::time::sleep(step).await;
            let now = self.cells_moved();
            if now != moved || RelayStats::get(&self.stats.streams_open) > 0 {
                quiet = Duration::ZERO;
                moved = now;
            } else {
                quiet += step;
            }
        }
    }
}

/// What a reload did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Changed fields that keep their old values until a restart.
    pub restart_needed: Vec<&'static str>,
}

/// A running relay; dropping it stops every task and closes every link.
pub struct RelayHandle {
    /// The shared state.
    pub relay: Arc<Relay>,
    /// Where links are accepted.
    pub or_addr: SocketAddr,
    /// Where `/metrics` is served, if configured.
    pub metrics_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
    accepting: AbortHandle,
    publishing: AbortHandle,
}

impl RelayHandle {
    /// The identity.
    pub fn identity(&self) -> IdentityBytes {
        self.relay.identity
    }

    /// Waits until a task ends (they run until the relay is dropped unless something fails).
    pub async fn wait(&mut self) {
        let _ = self.tasks.join_next().await;
    }

    /// Applies what can change while running (see the module doc) and republishes the
    /// descriptor. An invalid configuration changes nothing.
    pub fn reload(&self, new: RelayConfig) -> Result<Reloaded, ConfigError> {
        let relay = &self.relay;
        let (config, restart_needed) = relay.settings().config.reloaded(new);
        let policy = config.validate()?;
        relay.traffic.set_rate_limit(config.rate_limit());
        *relay.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Settings { config, policy });
        relay.republish.notify_one();
        for field in &restart_needed {
            tracing::warn!(field, "changed in the configuration, but applies only after a restart");
        }
        tracing::info!("configuration reloaded; descriptor republished");
        Ok(Reloaded { restart_needed })
    }

    /// Stops gracefully (see the module doc), waiting at most `grace` for streams to finish.
    pub async fn shutdown(mut self, grace: Duration) {
        let relay = self.relay.clone();
        relay.draining.store(true, Ordering::Relaxed);
        self.accepting.abort();
        self.publishing.abort();
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new links, circuits or streams; letting streams finish"
        );
        if tokio::time::timeout(grace, relay.drained()).await.is_err() {
            tracing::info!("grace period over; closing the remaining circuits");
        }
        relay.stop.send_replace(true);
        let closed = async {
            while RelayStats::get(&relay.stats.circuits_open) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
        if let Err(e) = relay.traffic.save() {
            tracing::warn!("cannot save the accounting counter: {e}");
        }
        self.tasks.shutdown().await;
        tracing::info!("relay stopped");
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.relay.stop.send_replace(true);
    }
}

/// Why a relay could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The identity key file could not be used.
    #[error(transparent)]
    Key(#[from] keystore::KeyStoreError),
    /// The onion keys could not be loaded or rotated.
    #[error(transparent)]
    OnionKey(#[from] OnionKeyError),
    /// The OR port could not be bound.
    #[error(transparent)]
    Listen(#[from] onionlab_link::accept::BindError),
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The metrics port could not be used.
    #[error(transparent)]
    Metrics(#[from] onionlab_link::metrics::MetricsError),
    /// The saved accounting counter could not be read.
    #[error("accounting state: {0}")]
    Accounting(std::io::Error),
    /// TLS setup failed.
    #[error("TLS setup: {0}")]
    Tls(#[from] onionlab_link::tls::TlsError),
}

impl Relay {
    /// Loads keys (creating them on first run, mode 0600) and rotates the onion key if it is
    /// due, resumes the accounting counter, binds the OR port, and starts accepting links,
    /// publishing descriptors and enforcing the limits.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, StartError> {
        let policy = config.validate()?;
        let identity_key = Arc::new(keystore::identity_key(&config.data_dir.join("identity_ed25519.key"))?);
        let (lifetime, grace) = (config.onion_key_lifetime_secs, config.onion_key_grace_secs);
        let onion_keys = OnionKeys::load(&config.data_dir, unix_now(), grace)?;
        // At most two steps: retire an expired previous key, then replace an old current one.
        let mut rotated = false;
        for _ in 0..2 {
            rotated |= onion_keys.advance(unix_now(), lifetime, grace)? == Some(KeyStep::Rotate);
        }
        let traffic = TrafficMeter::new(&config).map_err(StartError::Accounting)?;
        let (listener, or_addr) = onionlab_link::accept::bind(config.or_listen).await?;
        let advertised = config.advertise.unwrap_or(or_addr);
        let identity = identity_key.verifying_key().to_bytes();
        let acceptor = ChannelAcceptor::new(onionlab_link::tls::server_config()?, identity_key.clone());
        let connector = ChannelConnector::new(onionlab_link::tls::client_config()?).with_source(config.outbound_bind);
        let metrics = match config.metrics_listen {
            Some(addr) => Some(onionlab_link::metrics::bind(addr).await?),
            None => None,
        };
        let relay = Arc::new(Relay {
            identity_key,
            identity,
            onion_keys,
            advertised,
            outbound: LinkTable::new(connector),
            stats: RelayStats::default(),
            traffic,
            limits: CircuitLimits::default(),
            pending_creates: Arc::new(Semaphore::new(config.max_pending_creates)),
            republish: Notify::new(),
            draining: AtomicBool::new(false),
            stop: watch::Sender::new(false),
            settings: RwLock::new(Arc::new(Settings { config, policy })),
        });
        if rotated {
            RelayStats::bump(&relay.stats.onion_key_rotations);
            tracing::info!("the onion key was older than its lifetime: rotated at start");
        }
        let mut tasks = JoinSet::new();
        let metrics_addr = metrics.as_ref().map(|m| m.1);
        if let Some((listener, _)) = metrics {
            let r = relay.clone();
            tasks.spawn(onionlab_link::metrics::serve(
                listener,
                Arc::new(move || r.stats.render()),
            ));
        }
        let accepting = tasks.spawn(links::accept_loop(listener, acceptor, relay.clone()));
        let publishing = tasks.spawn(crate::publish::publish_loop(relay.clone()));
        if relay.settings().config.accounting_max_bytes.is_some() {
            tasks.spawn(crate::traffic::accounting_loop(relay.clone()));
        }
        tasks.spawn(crate::onion_keys::rotation_loop(relay.clone()));
        tasks.spawn(crate::limits::memory_loop(relay.clone()));
        let settings = relay.settings();
        tracing::info!(
            nickname = %settings.config.nickname,
            identity = %fingerprint(&identity),
            %or_addr,
            exit = settings.config.exit,
            rate_limit = ?settings.config.rate_limit(),
            accounting = ?settings.config.accounting_max_bytes,
            "relay started"
        );
        Ok(RelayHandle {
            relay,
            or_addr,
            metrics_addr,
            tasks,
            accepting,
            publishing,
        })
    }
}
