//! Relay start-up: keys from disk, the OR listener, and the state every task shares.

use crate::config::RelayConfig;
use crate::links::{self, LinkTable};
use crate::stats::RelayStats;
use onionlab_link::channel::{ChannelAcceptor, ChannelConnector};
use onionlab_link::keystore;
use onionlab_proto::exit_policy::ExitPolicy;
use onionlab_proto::keys::{IdentityBytes, OnionPublicKey, OnionSecret, SigningKey, fingerprint};
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What every task of a relay shares.
pub struct Relay {
    /// The configuration.
    pub config: RelayConfig,
    /// Identity signing key.
    pub identity_key: Arc<SigningKey>,
    /// Identity public key.
    pub identity: IdentityBytes,
    /// ntor onion key.
    pub onion_secret: OnionSecret,
    /// The effective exit policy.
    pub policy: ExitPolicy,
    /// The address in the descriptor.
    pub advertised: SocketAddr,
    /// Links this relay opened, by peer identity, for reuse.
    pub outbound: LinkTable,
    /// Counters.
    pub stats: RelayStats,
}

impl Relay {
    /// The onion public key.
    pub fn onion_public(&self) -> OnionPublicKey {
        OnionPublicKey::from(&self.onion_secret)
    }
}

/// A running relay; dropping it stops every task.
pub struct RelayHandle {
    /// The shared state.
    pub relay: Arc<Relay>,
    /// Where links are accepted.
    pub or_addr: SocketAddr,
    /// Where `/metrics` is served, if configured.
    pub metrics_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
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
}

/// Why a relay could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// A key file could not be used.
    #[error(transparent)]
    Key(#[from] keystore::KeyStoreError),
    /// The OR port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// TLS setup failed.
    #[error("TLS setup: {0}")]
    Tls(#[from] onionlab_link::tls::TlsError),
}

impl Relay {
    /// Loads keys (creating them on first run, mode 0600), binds the OR port, and starts
    /// accepting links and publishing descriptors.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, StartError> {
        if !onionlab_proto::descriptor::valid_nickname(&config.nickname) {
            return Err(StartError::Config(format!(
                "nickname {:?} must be 1-19 letters and digits",
                config.nickname
            )));
        }
        let policy = config
            .effective_policy()
            .map_err(|e| StartError::Config(e.to_string()))?;
        for a in &config.authorities {
            a.identity_bytes()
                .map_err(|e| StartError::Config(format!("authority {}: {e}", a.address)))?;
        }
        for f in &config.family {
            onionlab_proto::keys::parse_fingerprint(f)
                .map_err(|e| StartError::Config(format!("family member {f:?}: {e}")))?;
        }
        let identity_key = Arc::new(keystore::identity_key(&config.data_dir.join("identity_ed25519.key"))?);
        let onion_secret = keystore::onion_key(&config.data_dir.join("onion_x25519.key"))?;
        let listener = TcpListener::bind(config.or_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.or_listen,
                source,
            })?;
        let or_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.or_listen,
            source,
        })?;
        let advertised = config.advertise.unwrap_or(or_addr);
        let identity = identity_key.verifying_key().to_bytes();
        let acceptor = ChannelAcceptor::new(onionlab_link::tls::server_config()?, identity_key.clone());
        let relay = Arc::new(Relay {
            identity_key,
            identity,
            onion_secret,
            policy,
            advertised,
            outbound: LinkTable::new(ChannelConnector::new(onionlab_link::tls::client_config()?)),
            stats: RelayStats::default(),
            config,
        });
        let metrics = match relay.config.metrics_listen {
            Some(addr) => Some(
                onionlab_link::metrics::bind(addr)
                    .await
                    .map_err(|e| StartError::Config(e.to_string()))?,
            ),
            None => None,
        };
        let mut tasks = JoinSet::new();
        let metrics_addr = metrics.as_ref().map(|m| m.1);
        if let Some((listener, _)) = metrics {
            let r = relay.clone();
            tasks.spawn(onionlab_link::metrics::serve(
                listener,
                Arc::new(move || r.stats.render()),
            ));
        }
        tasks.spawn(links::accept_loop(listener, acceptor, relay.clone()));
        tasks.spawn(crate::publish::publish_loop(relay.clone()));
        tracing::info!(nickname = %relay.config.nickname, identity = %fingerprint(&identity), %or_addr, exit = relay.config.exit, "relay started");
        Ok(RelayHandle {
            relay,
            or_addr,
            metrics_addr,
            tasks,
        })
    }
}
