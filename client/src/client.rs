//! Client start-up: the consensus (from the cache, then the authorities), the circuit pool
//! with its circuits ahead of demand, and the SOCKS and HTTP CONNECT listeners.

use crate::config::ClientConfig;
use crate::consensus_cache::ConsensusCache;
use crate::exit_request::ExitRequests;
use crate::guard::{GuardParams, Guards};
use crate::pool::{CircuitInfo, CircuitPool, EntryChoice};
use onionlab_link::channel::ChannelConnector;
use onionlab_link::origin::EntryLinks;
use onionlab_proto::consensus::Consensus;
use onionlab_proto::path::PathRules;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The client proxy.
pub struct Client;

/// A running client; dropping it stops every task.
pub struct ClientHandle {
    /// Where the SOCKS5 server listens.
    pub socks_addr: SocketAddr,
    /// Where the HTTP CONNECT proxy listens, if configured.
    pub http_connect_addr: Option<SocketAddr>,
    /// The circuits.
    pub pool: Arc<CircuitPool>,
    consensus: watch::Receiver<Option<Arc<Consensus>>>,
    tasks: JoinSet<()>,
}

/// Why the client could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A listening port could not be bound.
    #[error(transparent)]
    Listen(#[from] onionlab_link::accept::BindError),
    /// TLS setup failed.
    #[error("TLS setup: {0}")]
    Tls(#[from] onionlab_link::tls::TlsError),
}

impl Client {
    /// Loads the cached consensus, starts fetching newer ones, binds the proxy ports
    /// (loopback only) and builds circuits ahead of demand.
    pub async fn start(config: ClientConfig) -> Result<ClientHandle, StartError> {
        for (name, addr) in [
            ("socks_listen", Some(config.socks_listen)),
            ("http_connect_listen", config.http_connect_listen),
        ] {
            if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
                return Err(StartError::Config(format!(
                    "{name} {addr} is not a loopback address; proxy ports must not be reachable from other hosts"
                )));
            }
        }
        if config.authorities.is_empty() {
            return Err(StartError::Config("no authorities configured".into()));
        }
        let trusted = config
            .authorities
            .iter()
            .map(|a| {
                a.identity_bytes()
                    .map_err(|e| StartError::Config(format!("authority {}: {e}", a.address)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (listener, socks_addr) = bind(config.socks_listen).await?;
        let http_connect = match config.http_connect_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let cache = ConsensusCache::new(&config.data_dir);
        let cached = cache.load(&trusted, crate::directory::unix_now());
        let (tx, rx) = watch::channel(cached.map(Arc::new));
        let pool = Arc::new(CircuitPool::new(
            rx.clone(),
            EntryLinks::new(ChannelConnector::new(onionlab_link::tls::client_config()?)),
            Guards::load(&config.data_dir, GuardParams::default()),
            if config.use_entry_guards {
                EntryChoice::Guards
            } else {
                EntryChoice::PerCircuit
            },
            PathRules {
                enforce_distinct_subnets: config.enforce_distinct_subnets,
            },
            Duration::from_secs(config.circuit_max_dirtiness_secs),
            Duration::from_secs(config.circuit_build_timeout_secs),
        ));
        let mut tasks = JoinSet::new();
        if let Some(addr) = config.metrics_listen {
            let (listener, _) = onionlab_link::metrics::bind(addr)
                .await
                .map_err(|e| StartError::Config(e.to_string()))?;
            let p = pool.clone();
            tasks.spawn(onionlab_link::metrics::serve(
                listener,
                Arc::new(move || p.stats.render(&p.build_times(), p.build_timeout())),
            ));
        }
        tasks.spawn(crate::directory::refresh_loop(
            config.authorities.clone(),
            trusted,
            cache,
            tx,
        ));
        let exits = ExitRequests::new(pool.clone(), Duration::from_secs(config.stream_timeout_secs));
        tasks.spawn(crate::socks::serve(listener, exits.clone()));
        tracing::info!(%socks_addr, "SOCKS5 proxy listening");
        let http_connect_addr = http_connect.map(|(listener, addr)| {
            tasks.spawn(crate::http_connect::serve(listener, exits));
            tracing::info!(%addr, "HTTP CONNECT proxy listening");
            addr
        });
        tasks.spawn(pool.clone().keep_preemptive(config.preemptive_ports.clone()));
        Ok(ClientHandle {
            socks_addr,
            http_connect_addr,
            pool,
            consensus: rx,
            tasks,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    Ok(onionlab_link::accept::bind(addr).await?)
}

impl ClientHandle {
    /// Waits until the client has a consensus from which paths can be built.
    pub async fn ready(&self, wait: Duration) -> bool {
        let mut rx = self.consensus.clone();
        tokio::time::timeout(
            wait,
            rx.wait_for(|c| c.as_ref().is_some_and(|c| crate::directory::usable(c))),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// The circuits the pool holds.
    pub async fn circuits(&self) -> Vec<CircuitInfo> {
        self.pool.circuits().await
    }

    /// Waits until a task ends (they run until the client is dropped unless something fails).
    pub async fn wait(&mut self) {
        let _ = self.tasks.join_next().await;
    }
}
