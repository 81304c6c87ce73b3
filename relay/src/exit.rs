//! The exit's side of a stream: resolve, check the exit policy, connect.
//!
//! Hostnames arrive unresolved and are resolved here, at the exit, never by the client: first
//! in the configured `hosts` table (test networks), then, unless turned off, by the system
//! resolver. Every
//! resolved address is checked against the exit policy *after* resolution, so a name that
//! points at 127.0.0.1 is refused by an exit whose policy rejects loopback. Each step has a
//! time limit, and failures map to the END reason that tells the client what went wrong.
//! A hibernating or shutting-down relay refuses new streams with END(HIBERNATING).

use crate::config::RelayConfig;
use crate::relay::Relay;
use crate::stats::RelayStats;
use onionlab_proto::relay_msg::{EndReason, ResolvedAnswer, Target, TargetHost};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// Limit for a DNS lookup.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for a TCP connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn resolve(config: &RelayConfig, name: &str) -> Result<Vec<IpAddr>, EndReason> {
    if let Some(ip) = config.hosts.get(&name.to_ascii_lowercase()) {
        return Ok(vec![*ip]);
    }
    if !config.system_resolver {
        return Err(EndReason::ResolveFailed);
    }
    // The exit is the one place names are resolved (see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    let lookup = tokio::net::lookup_host((name, 0));
    match timeout(RESOLVE_TIMEOUT, lookup).await {
        Err(_) => Err(EndReason::Timeout),
        Ok(Err(_)) => Err(EndReason::ResolveFailed),
        Ok(Ok(addrs)) => {
            let ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            if ips.is_empty() {
                Err(EndReason::ResolveFailed)
            } else {
                Ok(ips)
            }
        }
    }
}

/// Opens the TCP connection for a BEGIN, or says why not.
pub async fn connect(relay: &Relay, target: &Target) -> Result<TcpStream, EndReason> {
    let settings = relay.settings();
    let config = &settings.config;
    if !config.exit {
        RelayStats::bump(&relay.stats.exit_policy_rejects);
        return Err(EndReason::ExitPolicy);
    }
    if relay.refusing_new_work() {
        RelayStats::bump(&relay.stats.begins_refused_hibernating);
        return Err(EndReason::Hibernating);
    }
    let candidates = match &target.host {
        TargetHost::Ip(ip) => {
            RelayStats::bump(&relay.stats.begin_address);
            vec![*ip]
        }
        TargetHost::Name(name) => {
            RelayStats::bump(&relay.stats.begin_hostname);
            resolve(config, name).await?
        }
    };
    let allowed: Vec<IpAddr> = candidates
        .into_iter()
        .filter(|ip| settings.policy.allows(*ip, target.port))
        .collect();
    let Some(ip) = allowed.first().copied() else {
        RelayStats::bump(&relay.stats.exit_policy_rejects);
        return Err(EndReason::ExitPolicy);
    };
    let addr = SocketAddr::new(ip, target.port);
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|_| EndReason::ResourceLimit)?;
    if let Some(bind) = config.outbound_bind.filter(|b| b.is_ipv4() == ip.is_ipv4()) {
        socket.bind(SocketAddr::new(bind, 0)).map_err(|_| EndReason::Internal)?;
    }
    match timeout(CONNECT_TIMEOUT, socket.connect(addr)).await {
        Err(_) => Err(EndReason::Timeout),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(match e.kind() {
            ErrorKind::ConnectionRefused => EndReason::ConnectRefused,
            ErrorKind::TimedOut => EndReason::Timeout,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => EndReason::NoRoute,
            ErrorKind::ConnectionReset => EndReason::ConnReset,
            _ => EndReason::Misc,
        }),
    }
}

/// Answers a RESOLVE (Tor's SOCKS RESOLVE extension): the addresses, or an error answer.
pub async fn resolve_answers(relay: &Relay, name: &str) -> Vec<ResolvedAnswer> {
    let settings = relay.settings();
    if !settings.config.exit {
        return vec![ResolvedAnswer::NonTransientError];
    }
    if relay.refusing_new_work() {
        return vec![ResolvedAnswer::TransientError];
    }
    match resolve(&settings.config, name).await {
        Ok(ips) => ips.into_iter().take(8).map(|ip| ResolvedAnswer::Addr(ip, 60)).collect(),
        Err(EndReason::Timeout) => vec![ResolvedAnswer::TransientError],
        Err(_) => vec![ResolvedAnswer::NonTransientError],
    }
}
