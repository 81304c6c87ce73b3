//! The local testbed: a whole onion network on loopback, in one process.
//!
//! One directory authority, N relays (each on its own address 127.0.i.1, all exits), the SOCKS
//! client and the demo site, started from the same libraries the daemons use. Like Tor's
//! test networks (chutney, `TestingTorNetwork`), it trades realism for speed where that is
//! safe on one machine: the authority rebuilds the consensus as soon as a relay passes its
//! reachability test and gives Guard at once, the client does not require distinct /16s
//! (every relay is in 127.0/16), and exits opt in to loopback destinations with
//! `accept 127.0.0.0/8:*` ahead of `reject private:*`. The exits resolve the demo site's name
//! (`demo.onionlab.test`) themselves; nothing else knows it, which shows that hostnames
//! travel to the exit unresolved. Exits resolve only from their own table (the demo name and
//! `localhost`), never through system DNS: the testbed stays offline and a lookup of any
//! other name fails at once.

use crate::demo_site::DemoSite;
use onionlab_client::{Client, ClientConfig, ClientHandle};
use onionlab_directory::{Authority, AuthorityConfig, AuthorityHandle};
use onionlab_link::config::AuthorityEntry;
use onionlab_proto::consensus::Flags;
use onionlab_proto::keys::fingerprint;
use onionlab_relay::{Relay, RelayConfig, RelayHandle};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The demo site's name, known only to the testbed's exits.
pub const DEMO_HOSTNAME: &str = "demo.onionlab.test";
/// Port of each relay's `/metrics` on its own address (when relays use fixed ports).
pub const METRICS_PORT: u16 = 9035;
/// Most relays (one /24 of 127.0.0.0/16 each).
pub const MAX_RELAYS: usize = 250;

/// What to start.
#[derive(Debug, Clone)]
pub struct TestbedConfig {
    /// Number of relays.
    pub relays: usize,
    /// Relays' OR port (0: any free port).
    pub relay_port: u16,
    /// The authority's HTTP address.
    pub authority: SocketAddr,
    /// The SOCKS port.
    pub socks: SocketAddr,
    /// The demo site.
    pub demo: SocketAddr,
    /// Size of the demo site's `/large.bin`.
    pub large_file: u64,
    /// Where keys and state go (None: a temporary directory removed at exit).
    pub data_dir: Option<PathBuf>,
    /// Give exits the default policy (reject private destinations, loopback included)
    /// instead of the testbed's loopback opt-in.
    pub default_exit_policy: bool,
}

impl Default for TestbedConfig {
    fn default() -> Self {
        TestbedConfig {
            relays: 6,
            relay_port: 9001,
            authority: SocketAddr::from(([127, 0, 254, 1], 7000)),
            socks: SocketAddr::from(([127, 0, 0, 1], 9050)),
            demo: SocketAddr::from(([127, 0, 0, 1], 8000)),
            large_file: 64 * 1024 * 1024,
            data_dir: None,
            default_exit_policy: false,
        }
    }
}

impl TestbedConfig {
    /// Everything on free ports, for tests that run side by side.
    pub fn ephemeral() -> Self {
        TestbedConfig {
            relay_port: 0,
            authority: SocketAddr::from(([127, 0, 254, 1], 0)),
            socks: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }
}

/// Why the testbed could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TestbedError {
    /// A bad setting.
    #[error("testbed configuration: {0}")]
    Config(String),
    /// A component failed to start.
    #[error("starting {what}: {error}")]
    Start {
        /// Which component.
        what: String,
        /// Its error.
        error: String,
    },
    /// The network did not come up in time.
    #[error("the network was not ready within {0:?}: {1}")]
    NotReady(Duration, String),
}

fn start_err(what: impl Into<String>, error: impl std::fmt::Display) -> TestbedError {
    TestbedError::Start {
        what: what.into(),
        error: error.to_string(),
    }
}

/// A running testbed; dropping it stops everything.
pub struct Testbed {
    /// The directory authority.
    pub authority: AuthorityHandle,
    /// The relays.
    pub relays: Vec<RelayHandle>,
    /// The SOCKS client.
    pub client: ClientHandle,
    /// The demo site.
    pub demo: DemoSite,
    /// How long start-up took.
    pub startup: Duration,
    _tempdir: Option<tempfile::TempDir>,
}

/// The address of relay `i` (1-based): 127.0.i.1.
pub fn relay_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, i as u8, 1))
}

impl Testbed {
    /// Starts the authority, the relays, the demo site and the client, and waits until the
    /// client holds a consensus listing every relay (or `ready_within` passes).
    pub async fn start(cfg: TestbedConfig, ready_within: Duration) -> Result<Testbed, TestbedError> {
        let started = Instant::now();
        if cfg.relays < 3 || cfg.relays > MAX_RELAYS {
            return Err(TestbedError::Config(format!(
                "relays must be between 3 and {MAX_RELAYS}"
            )));
        }
        let (tempdir, root) = match &cfg.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("onionlab-testbed-")
                    .tempdir()
                    .map_err(|e| start_err("data directory", e))?;
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let demo = DemoSite::start(cfg.demo, cfg.large_file)
            .await
            .map_err(|e| start_err(format!("demo site on {}", cfg.demo), e))?;

        let mut acfg = AuthorityConfig::new(cfg.authority, root.join("authority"));
        acfg.nickname = "testbedauth".into();
        acfg.consensus_interval_secs = 60;
        acfg.reachability_interval_secs = 30;
        acfg.guard_min_uptime_secs = 0;
        acfg.stable_min_uptime_secs = 0;
        let authority = Authority::start(acfg).await.map_err(|e| start_err("authority", e))?;
        let auth_entry = AuthorityEntry {
            address: authority.http_addr,
            identity: fingerprint(&authority.identity),
        };

        let mut relays = Vec::with_capacity(cfg.relays);
        for i in 1..=cfg.relays {
            let ip = relay_ip(i);
            let mut rc = RelayConfig::new(
                &format!("relay{i}"),
                SocketAddr::new(ip, cfg.relay_port),
                root.join(format!("relay{i}")),
                vec![auth_entry.clone()],
            );
            rc.exit = true;
            if !cfg.default_exit_policy {
                rc.exit_policy_reject_private = false;
                rc.exit_policy = vec![
                    "accept 127.0.0.0/8:*".into(),
                    "reject private:*".into(),
                    "accept *:*".into(),
                ];
            }
            rc.hosts.insert(DEMO_HOSTNAME.into(), demo.addr.ip());
            rc.hosts.insert("localhost".into(), IpAddr::V4(Ipv4Addr::LOCALHOST));
            rc.system_resolver = false;
            rc.outbound_bind = Some(ip);
            rc.metrics_listen = Some(SocketAddr::new(ip, if cfg.relay_port == 0 { 0 } else { METRICS_PORT }));
            rc.contact = "testbed".into();
            relays.push(
                Relay::start(rc)
                    .await
                    .map_err(|e| start_err(format!("relay {i} on {ip}"), e))?,
            );
        }

        // Wait for the authority to list every relay before the client looks.
        let deadline = started + ready_within;
        loop {
            let listed = authority.authority.published().map_or(0, |p| {
                p.signed
                    .consensus
                    .relays
                    .iter()
                    .filter(|r| r.flags.contains(Flags::RUNNING))
                    .count()
            });
            if listed == cfg.relays {
                break;
            }
            if Instant::now() > deadline {
                return Err(TestbedError::NotReady(
                    ready_within,
                    format!("the authority lists {listed} of {} relays", cfg.relays),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let mut ccfg = ClientConfig::new(root.join("client"), vec![auth_entry]);
        ccfg.socks_listen = cfg.socks;
        ccfg.enforce_distinct_subnets = false;
        let client = Client::start(ccfg).await.map_err(|e| start_err("client", e))?;
        if !client.ready(deadline.saturating_duration_since(Instant::now())).await {
            return Err(TestbedError::NotReady(
                ready_within,
                "the client has no usable consensus".into(),
            ));
        }
        Ok(Testbed {
            authority,
            relays,
            client,
            demo,
            startup: started.elapsed(),
            _tempdir: tempdir,
        })
    }

    /// The demo site's URL through the exit-only hostname.
    pub fn demo_url(&self, path: &str) -> String {
        format!("http://{DEMO_HOSTNAME}:{}{path}", self.demo.addr.port())
    }

    /// A summary for people: addresses and commands to try.
    pub fn banner(&self) -> String {
        let socks = self.client.socks_addr;
        let first = self.relays.first().map(|r| r.or_addr.to_string()).unwrap_or_default();
        let last = self.relays.last().map(|r| r.or_addr.to_string()).unwrap_or_default();
        format!(
            "onionlab testbed ready in {:.2} s\n\
             \x20 authority  http://{}/onionlab/v1/consensus.json\n\
             \x20 relays     {} ({first} .. {last}), all exits\n\
             \x20 metrics    {}\n\
             \x20 SOCKS5     {socks}\n\
             \x20 demo site  {} (name resolved only by the exits; also http://{}/)\n\n\
             Try:\n\
             \x20 curl --socks5-hostname {socks} {}\n\
             \x20 curl --socks5-hostname {socks} -o /dev/null -w '%{{speed_download}} B/s\\n' {}\n\
             \x20 chromium --proxy-server=socks5://{socks} --proxy-bypass-list='<-loopback>' {}\n\n\
             Press Ctrl-C to stop.",
            self.startup.as_secs_f64(),
            self.authority.http_addr,
            self.relays.len(),
            self.relays
                .first()
                .and_then(|r| r.metrics_addr)
                .map_or(String::new(), |a| format!(
                    "http://{a}/metrics (one per relay), http://{}/metrics (authority)",
                    self.authority.http_addr
                )),
            self.demo_url("/"),
            self.demo.addr,
            self.demo_url("/"),
            self.demo_url("/large.bin"),
            self.demo_url("/"),
        )
    }
}
