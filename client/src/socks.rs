//! The SOCKS5 server (RFC 1928, with RFC 1929 username/password for stream isolation).
//!
//! - Listens on loopback only; the negotiation must finish within [`NEGOTIATION_TIMEOUT`].
//! - CONNECT to a hostname forwards the name to the exit unresolved: this process never
//!   resolves a SOCKS hostname. IPv4 and IPv6 targets are forwarded as addresses.
//! - Credentials are not checked; they select the isolation group (see [`crate::pool`]).
//! - A stream that fails because of its circuit (closed, timed out) or its exit (policy,
//!   resolution, resources) is retried once on a fresh circuit; a refusal by the destination
//!   is not retried.
//! - Failures become the SOCKS reply that says what failed: 0x02 not allowed by an exit
//!   policy, 0x03 network unreachable (no circuit), 0x04 host unreachable (resolution failed),
//!   0x05 connection refused, 0x06 TTL expired (timeout), 0x07 command not supported.
//! - Destinations and credentials never appear in logs at `info` or above.

use crate::pool::{CircuitPool, IsolationKey, PoolError};
use crate::stats::ClientStats;
use fast_socks5::server::{
    AuthMethodSuccessState, NoAuthentication, PasswordAuthentication, Socks5ServerProtocol, StandardAuthentication,
    StandardAuthenticationStarted,
};
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command};
use onionlab_link::origin::StreamError;
use onionlab_proto::path::PathError;
use onionlab_proto::relay_msg::{EndReason, Target, TargetHost};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Limit for the SOCKS greeting, authentication and request.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);

const METHODS: &[StandardAuthentication] = &[
    StandardAuthentication::PasswordAuthentication(PasswordAuthentication),
    StandardAuthentication::NoAuthentication(NoAuthentication),
];

/// Serves SOCKS connections until the listener fails.
pub async fn serve(listener: TcpListener, pool: Arc<CircuitPool>, stream_timeout: Duration) {
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("SOCKS accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        ClientStats::bump(&pool.stats.socks_connections);
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(sock, &pool, stream_timeout).await {
                tracing::debug!("SOCKS connection ended: {e}");
            }
        });
    }
}

/// What the client asked for, after negotiation.
struct Request {
    proto: Socks5ServerProtocol<TcpStream, fast_socks5::server::states::CommandRead>,
    isolation: IsolationKey,
    target: Target,
}

async fn negotiate(sock: TcpStream) -> Result<Option<Request>, fast_socks5::server::SocksServerError> {
    let _ = sock.set_nodelay(true);
    let proto = Socks5ServerProtocol::start(sock);
    let (proto, creds) = match proto.negotiate_auth(METHODS).await? {
        StandardAuthenticationStarted::NoAuthentication(a) => (a.finish_auth(), None),
        StandardAuthenticationStarted::PasswordAuthentication(a) => {
            let (user, pass, a) = a.read_username_password().await?;
            (a.accept().await?.finish_auth(), Some((user, pass)))
        }
    };
    let (proto, cmd, addr) = proto.read_command().await?;
    if cmd != Socks5Command::TCPConnect {
        proto.reply_error(&ReplyError::CommandNotSupported).await?;
        return Ok(None);
    }
    let target = match addr {
        TargetAddr::Ip(sa) => Target {
            host: TargetHost::Ip(sa.ip()),
            port: sa.port(),
        },
        TargetAddr::Domain(name, port) => match TargetHost::parse(&name) {
            Ok(host) => Target { host, port },
            Err(_) => {
                proto.reply_error(&ReplyError::HostUnreachable).await?;
                return Ok(None);
            }
        },
    };
    Ok(Some(Request {
        proto,
        isolation: IsolationKey::new(creds),
        target,
    }))
}

/// Whether a failure is worth a second try on a fresh circuit.
fn retryable(e: &StreamError) -> bool {
    match e {
        StreamError::CircuitClosed | StreamError::Timeout => true,
        StreamError::End(r) => !matches!(r, EndReason::ConnectRefused | EndReason::Done),
    }
}

fn reply_for_stream(e: &StreamError) -> ReplyError {
    match e {
        StreamError::Timeout => ReplyError::TtlExpired,
        StreamError::CircuitClosed => ReplyError::NetworkUnreachable,
        StreamError::End(r) => match r {
            EndReason::ExitPolicy => ReplyError::ConnectionNotAllowed,
            EndReason::ResolveFailed => ReplyError::HostUnreachable,
            EndReason::ConnectRefused => ReplyError::ConnectionRefused,
            EndReason::Timeout => ReplyError::TtlExpired,
            EndReason::NoRoute => ReplyError::NetworkUnreachable,
            _ => ReplyError::GeneralFailure,
        },
    }
}

fn reply_for_pool(e: &PoolError) -> ReplyError {
    match e {
        PoolError::Path(PathError::NoExit) => ReplyError::ConnectionNotAllowed,
        _ => ReplyError::NetworkUnreachable,
    }
}

async fn handle(sock: TcpStream, pool: &CircuitPool, stream_timeout: Duration) -> anyhow::Result<()> {
    let Some(req) = tokio::time::timeout(NEGOTIATION_TIMEOUT, negotiate(sock))
        .await
        .map_err(|_| anyhow::anyhow!("SOCKS negotiation timed out"))??
    else {
        return Ok(());
    };
    let mut last = None;
    for attempt in 0..2 {
        let circuit = match pool.get(&req.isolation, Some(&req.target), attempt > 0).await {
            Ok(c) => c,
            Err(e) => {
                ClientStats::bump(&pool.stats.stream_failures);
                tracing::info!("no circuit for a stream: {e}");
                req.proto.reply_error(&reply_for_pool(&e)).await?;
                return Ok(());
            }
        };
        match circuit.begin(req.target.clone(), stream_timeout).await {
            Ok(id) => {
                ClientStats::bump(&pool.stats.streams_opened);
                match req.proto.reply_success("0.0.0.0:0".parse()?).await {
                    Ok(sock) => circuit.attach(id, sock).await,
                    Err(e) => {
                        circuit.abandon(id).await;
                        return Err(e.into());
                    }
                }
                return Ok(());
            }
            Err(e) => {
                tracing::debug!(circuit = circuit.id, attempt, "stream failed: {e}");
                let again = retryable(&e);
                if again && attempt == 0 {
                    ClientStats::bump(&pool.stats.stream_retries);
                }
                last = Some(e);
                if !again {
                    break;
                }
            }
        }
    }
    ClientStats::bump(&pool.stats.stream_failures);
    let e = last.unwrap_or(StreamError::CircuitClosed);
    req.proto.reply_error(&reply_for_stream(&e)).await?;
    Ok(())
}
