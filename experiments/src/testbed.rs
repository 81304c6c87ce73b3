//! The local testbed: a whole onion network on loopback, in one process.
//!
//! Three voting directory authorities (127.0.254.k), N relays (each on its own address
//! 127.0.i.1, all exits), optional Sybil relays of one adversary (on 127.0.200.1, or spread
//! over 127.0.200.1 .. 127.0.200.m when the adversary has m addresses), the
//! SOCKS client and the demo site, started from the same libraries the daemons use. Like Tor's
//! test networks (chutney, `TestingTorNetwork`), it trades realism for speed where that is
//! safe on one machine: the authorities vote every second and give Guard at once, the client does not require distinct /16s
//! (every relay is in 127.0/16), and exits opt in to loopback destinations with
//! `accept 127.0.0.0/8:*` ahead of `reject private:*`. The exits resolve the demo site's name
//! (`demo.onionlab.test`) themselves; nothing else knows it, which shows that hostnames
//! travel to the exit unresolved. Exits resolve only from their own table (the demo name and
//! `localhost`), never through system DNS: the testbed stays offline and a lookup of any
//! other name fails at once.
//!
//! Experiments may change the directory's Sybil defences ([`TestbedConfig::max_relays_per_ip`],
//! [`TestbedConfig::unmeasured_bandwidth_cap`], the bandwidth scanner) and the bandwidth relays
//! advertise, and start further clients of the same network ([`Testbed::client_config`]).

use crate::demo_site::DemoSite;
use onionlab_client::{Client, ClientConfig, ClientHandle};
use onionlab_directory::config::DEFAULT_MAX_RELAYS_PER_IP;
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
/// The adversary's first address (all its relays share it unless it has more).
pub const SYBIL_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 200, 1);
/// Most addresses the adversary may have (127.0.200.1 .. 127.0.200.250).
pub const MAX_SYBIL_IPS: usize = 250;
/// Port of each relay's `/metrics` on its own address (when relays use fixed ports).
pub const METRICS_PORT: u16 = 9035;
/// Most relays (one /24 of 127.0.0.0/16 each, below the Sybils' 127.0.200.0/24).
pub const MAX_RELAYS: usize = 199;

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
    /// Number of directory authorities (they vote; clients need a majority's signatures).
    pub authorities: usize,
    /// Extra relays run by one adversary, on [`sybil_ip`] addresses.
    pub sybil_relays: usize,
    /// How many addresses the adversary spreads them over, round robin (at least 1).
    pub sybil_ips: usize,
    /// Bandwidth the Sybil relays advertise (bytes/s).
    pub sybil_bandwidth: u64,
    /// Bandwidth the honest relays advertise (bytes/s; None: the relay's default).
    pub relay_bandwidth: Option<u64>,
    /// The authorities' per-address cap (None: their default, 2).
    pub max_relays_per_ip: Option<usize>,
    /// The weight of relays no scanner measured, at most (None: the authorities' default).
    pub unmeasured_bandwidth_cap: Option<u64>,
    /// Run the authorities' bandwidth scanners (off: consensus weights are the advertised
    /// bandwidths, capped at `unmeasured_bandwidth_cap`, so they are known in advance).
    pub measure_bandwidth: bool,
    /// Run relay 1 as a child process of this `onionlab-relay` binary (to measure it alone).
    pub relay_process: Option<PathBuf>,
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
            authorities: 3,
            sybil_relays: 0,
            sybil_ips: 1,
            sybil_bandwidth: 10 * 1024 * 1024,
            relay_bandwidth: None,
            max_relays_per_ip: None,
            unmeasured_bandwidth_cap: None,
            measure_bandwidth: true,
            relay_process: None,
        }
    }
}

impl TestbedConfig {
    /// Everything on free ports, for tests that run side by side.
    pub fn ephemeral() -> Self {
        TestbedConfig {
            relay_port: 0,
            authority: SocketAddr::from(([127, 0, 254, 1], 0)),
            sybil_relays: 0,
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
    /// The directory authorities.
    pub authorities: Vec<AuthorityHandle>,
    /// The relays running in this process.
    pub relays: Vec<RelayHandle>,
    /// Relay 1, when it runs as a child process ([`TestbedConfig::relay_process`]).
    pub relay_child: Option<RelayChild>,
    /// The SOCKS client.
    pub client: ClientHandle,
    /// The demo site.
    pub demo: DemoSite,
    /// How long start-up took.
    pub startup: Duration,
    /// The authorities, as clients configure them.
    entries: Vec<AuthorityEntry>,
    /// How many of `relays` (the last ones) are Sybils.
    sybil_count: usize,
    _tempdir: Option<tempfile::TempDir>,
}

/// A relay running as a child process (killed when dropped).
pub struct RelayChild {
    child: tokio::process::Child,
    /// Its `/metrics` address.
    pub metrics: SocketAddr,
}

impl RelayChild {
    async fn spawn(binary: &std::path::Path, mut rc: RelayConfig) -> Result<RelayChild, TestbedError> {
        // A fixed metrics port on the relay's own address, so that it is known in advance.
        let metrics = SocketAddr::new(rc.or_listen.ip(), METRICS_PORT);
        rc.metrics_listen = Some(metrics);
        std::fs::create_dir_all(&rc.data_dir).map_err(|e| start_err("relay directory", e))?;
        let path = rc.data_dir.join("relay.yaml");
        let yaml = serde_saphyr::to_string(&rc).map_err(|e| start_err("relay configuration", e))?;
        std::fs::write(&path, yaml).map_err(|e| start_err("relay configuration", e))?;
        let child = tokio::process::Command::new(binary)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| start_err(format!("{}", binary.display()), e))?;
        Ok(RelayChild { child, metrics })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak resident memory (VmHWM) so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

/// The address of relay `i` (1-based): 127.0.i.1.
pub fn relay_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, i as u8, 1))
}

/// The address of Sybil `j` (0-based) when the adversary has `ips` addresses:
/// 127.0.200.(1 + j mod ips).
pub fn sybil_ip(j: usize, ips: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 200, 1 + (j % ips.clamp(1, MAX_SYBIL_IPS)) as u8))
}

/// How many relays the authorities list: every honest one, and on each Sybil address at most
/// `per_ip` of the Sybils there.
pub fn expected_listed(relays: usize, sybil_relays: usize, sybil_ips: usize, per_ip: usize) -> usize {
    let ips = sybil_ips.clamp(1, MAX_SYBIL_IPS);
    let on_ip = |k: usize| sybil_relays / ips + usize::from(k < sybil_relays % ips);
    relays + (0..ips).map(|k| on_ip(k).min(per_ip)).sum::<usize>()
}

/// A client of the testbed's authorities keeping its state in `data_dir`, with its SOCKS port
/// on `socks` and the /16 rule off (every relay is in 127.0/16).
fn client_config(data_dir: PathBuf, entries: Vec<AuthorityEntry>, socks: SocketAddr) -> ClientConfig {
    let mut ccfg = ClientConfig::new(data_dir, entries);
    ccfg.socks_listen = socks;
    ccfg.enforce_distinct_subnets = false;
    ccfg
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

        if cfg.max_relays_per_ip == Some(0) {
            return Err(TestbedError::Config("max_relays_per_ip must be at least 1".into()));
        }
        if cfg.sybil_ips == 0 || cfg.sybil_ips > MAX_SYBIL_IPS {
            return Err(TestbedError::Config(format!(
                "sybil_ips must be between 1 and {MAX_SYBIL_IPS}"
            )));
        }
        if cfg.authorities == 0 || cfg.authorities > 9 {
            return Err(TestbedError::Config("authorities must be between 1 and 9".into()));
        }
        // Bind every authority first: each one's configuration lists them all.
        let mut listeners = Vec::new();
        let mut entries = Vec::new();
        for k in 0..cfg.authorities {
            let addr = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 254, 1 + k as u8)),
                cfg.authority.port(),
            );
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| start_err(format!("authority on {addr}"), e))?;
            let bound = listener.local_addr().map_err(|e| start_err("authority address", e))?;
            let dir = root.join(format!("authority{}", k + 1));
            let key = onionlab_link::keystore::identity_key(&onionlab_directory::authority::key_path(&dir))
                .map_err(|e| start_err("authority key", e))?;
            entries.push(AuthorityEntry {
                address: bound,
                identity: fingerprint(&key.verifying_key().to_bytes()),
            });
            listeners.push((listener, bound, dir));
        }
        let mut authorities = Vec::new();
        for (k, (listener, bound, dir)) in listeners.into_iter().enumerate() {
            let mut acfg = AuthorityConfig::new(bound, dir);
            acfg.nickname = format!("testbedauth{}", k + 1);
            acfg.authorities = entries.clone();
            acfg.consensus_interval_secs = 1;
            acfg.vote_delay_ms = 300;
            acfg.signature_delay_ms = 600;
            acfg.reachability_interval_secs = 30;
            acfg.guard_min_uptime_secs = 0;
            acfg.stable_min_uptime_secs = 0;
            acfg.measure_bytes = 512 * 1024;
            acfg.measure_interval_secs = 600;
            acfg.measure_bandwidth = cfg.measure_bandwidth;
            if let Some(cap) = cfg.max_relays_per_ip {
                acfg.max_relays_per_ip = cap;
            }
            if let Some(cap) = cfg.unmeasured_bandwidth_cap {
                acfg.unmeasured_bandwidth_cap = cap;
            }
            authorities.push(
                Authority::start_on(listener, acfg)
                    .await
                    .map_err(|e| start_err(format!("authority {}", k + 1), e))?,
            );
        }

        let mut relays = Vec::with_capacity(cfg.relays + cfg.sybil_relays);
        let mut relay_child = None;
        for i in 1..=cfg.relays + cfg.sybil_relays {
            let sybil = i > cfg.relays;
            let ip = if sybil {
                sybil_ip(i - cfg.relays - 1, cfg.sybil_ips)
            } else {
                relay_ip(i)
            };
            let port = if sybil && cfg.relay_port != 0 {
                cfg.relay_port + (i - cfg.relays) as u16
            } else {
                cfg.relay_port
            };
            let name = if sybil {
                format!("sybil{}", i - cfg.relays)
            } else {
                format!("relay{i}")
            };
            let mut rc = RelayConfig::new(&name, SocketAddr::new(ip, port), root.join(&name), entries.clone());
            rc.exit = true;
            if !cfg.default_exit_policy {
                rc.exit_policy_reject_private = false;
                rc.exit_policy = vec![
                    "accept 127.0.0.0/8:*".into(),
                    "reject private:*".into(),
                    "accept *:*".into(),
                ];
            }
            if sybil {
                rc.bandwidth = cfg.sybil_bandwidth;
            } else if let Some(bandwidth) = cfg.relay_bandwidth {
                rc.bandwidth = bandwidth;
            }
            rc.hosts.insert(DEMO_HOSTNAME.into(), demo.addr.ip());
            rc.hosts.insert("localhost".into(), IpAddr::V4(Ipv4Addr::LOCALHOST));
            rc.system_resolver = false;
            rc.outbound_bind = Some(ip);
            let metrics_port = if cfg.relay_port == 0 || sybil { 0 } else { METRICS_PORT };
            rc.metrics_listen = Some(SocketAddr::new(ip, metrics_port));
            rc.contact = "testbed".into();
            // One client address opens every circuit here: do not let the DoS limit bite.
            rc.max_circuits_per_client = 1 << 20;
            match &cfg.relay_process {
                Some(binary) if i == 1 => relay_child = Some(RelayChild::spawn(binary, rc).await?),
                _ => relays.push(
                    Relay::start(rc)
                        .await
                        .map_err(|e| start_err(format!("{name} on {ip}"), e))?,
                ),
            }
        }

        // Wait until every authority serves a consensus listing every honest relay (and as many
        // Sybils as the per-address cap lets through) before the client looks.
        let per_ip = cfg.max_relays_per_ip.unwrap_or(DEFAULT_MAX_RELAYS_PER_IP);
        let expected = expected_listed(cfg.relays, cfg.sybil_relays, cfg.sybil_ips, per_ip);
        let deadline = started + ready_within;
        loop {
            let listed: Vec<usize> = authorities
                .iter()
                .map(|a| {
                    a.authority.published().map_or(0, |p| {
                        p.signed
                            .consensus
                            .relays
                            .iter()
                            .filter(|r| r.flags.contains(Flags::RUNNING))
                            .count()
                    })
                })
                .collect();
            if listed.iter().all(|n| *n == expected) {
                break;
            }
            if Instant::now() > deadline {
                return Err(TestbedError::NotReady(
                    ready_within,
                    format!("the authorities list {listed:?} of {expected} relays"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let ccfg = client_config(root.join("client"), entries.clone(), cfg.socks);
        let client = Client::start(ccfg).await.map_err(|e| start_err("client", e))?;
        if !client.ready(deadline.saturating_duration_since(Instant::now())).await {
            return Err(TestbedError::NotReady(
                ready_within,
                "the client has no usable consensus".into(),
            ));
        }
        Ok(Testbed {
            authorities,
            relays,
            relay_child,
            client,
            demo,
            startup: started.elapsed(),
            entries,
            sybil_count: cfg.sybil_relays,
            _tempdir: tempdir,
        })
    }

    /// The configuration of a further client of this network keeping its state (guards, cached
    /// consensus) in `data_dir`, with its SOCKS port on any free loopback port.
    pub fn client_config(&self, data_dir: PathBuf) -> ClientConfig {
        client_config(data_dir, self.entries.clone(), SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The adversary's relays (on [`sybil_ip`] addresses), listed in the consensus or not.
    pub fn sybils(&self) -> &[RelayHandle] {
        &self.relays[self.relays.len() - self.sybil_count..]
    }

    /// The first authority (every authority serves the same consensus).
    pub fn authority(&self) -> &AuthorityHandle {
        &self.authorities[0]
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
             \x20 authority  http://{}/onionlab/v1/consensus.json ({} voting)\n\
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
            self.authority().http_addr,
            self.authorities.len(),
            self.relays.len(),
            self.relays
                .first()
                .and_then(|r| r.metrics_addr)
                .map_or(String::new(), |a| format!(
                    "http://{a}/metrics (one per relay), http://{}/metrics (authority)",
                    self.authority().http_addr
                )),
            self.demo_url("/"),
            self.demo.addr,
            self.demo_url("/"),
            self.demo_url("/large.bin"),
            self.demo_url("/"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sybils_go_round_robin_and_each_address_is_capped() {
        assert_eq!(sybil_ip(0, 1), IpAddr::V4(SYBIL_IP));
        assert_eq!(sybil_ip(5, 1), IpAddr::V4(SYBIL_IP));
        assert_eq!(sybil_ip(5, 4), IpAddr::V4(Ipv4Addr::new(127, 0, 200, 2)));
        // 8 Sybils on 4 addresses, 2 each: a cap of 2 lets them all through, a cap of 1 half.
        assert_eq!(expected_listed(8, 8, 4, 2), 16);
        assert_eq!(expected_listed(8, 8, 4, 1), 12);
        // 7 on 3 addresses are 3, 2, 2.
        assert_eq!(expected_listed(5, 7, 3, 2), 5 + 6);
        assert_eq!(expected_listed(5, 6, 1, 2), 7);
        assert_eq!(expected_listed(5, 0, 1, 2), 5);
    }
}
