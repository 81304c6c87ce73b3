//! The SOCKS5 server (RFC 1928, with RFC 1929 username/password for stream isolation, and
//! Tor's RESOLVE extension).
//!
//! - Listens on loopback only; the greeting, authentication and request must arrive within
//!   [`NEGOTIATION_TIMEOUT`].
//! - fast-socks5 negotiates the authentication; the request itself is read with
//!   [`crate::socks_codec`], which knows Tor's RESOLVE (fast-socks5 refuses unknown commands).
//! - CONNECT to a hostname forwards the name to the exit unresolved: this process never
//!   resolves a SOCKS hostname. IPv4 and IPv6 targets are forwarded as addresses.
//! - RESOLVE (0xF0) asks an exit (RELAY RESOLVE) and answers the address in BND.ADDR; an
//!   address literal is answered as is. RESOLVE_PTR, BIND and UDP ASSOCIATE get reply 7.
//! - Credentials are not checked; they select the isolation group (see [`crate::pool`]).
//! - Retries and failure classes are [`crate::exit_request`]'s; the reply codes: 0x02 not
//!   allowed by an exit policy, 0x03 network unreachable (no circuit), 0x04 host unreachable
//!   (resolution failed), 0x05 connection refused, 0x06 TTL expired (timeout), 0x07 command
//!   not supported, 0x08 address type not supported.
//! - Destinations and credentials never appear in logs at `info` or above.

use crate::exit_request::{ExitRequests, FailureKind};
use crate::linger::linger_close;
use crate::pool::IsolationKey;
use crate::socks_codec::{Address, Command, Decoded, MAX_REQUEST_LEN, Reply, Request, decode_request, encode_reply};
use crate::stats::ClientStats;
use fast_socks5::server::{
    NoAuthentication, PasswordAuthentication, Socks5ServerProtocol, StandardAuthentication,
    StandardAuthenticationStarted,
};
use onionlab_proto::relay_msg::{Target, TargetHost};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Limit for the SOCKS greeting, authentication and request.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);

const METHODS: &[StandardAuthentication] = &[
    StandardAuthentication::PasswordAuthentication(PasswordAuthentication),
    StandardAuthentication::NoAuthentication(NoAuthentication),
];

const UNBOUND: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Serves SOCKS connections until the listener fails.
pub async fn serve(listener: TcpListener, exits: ExitRequests) {
    onionlab_link::accept::accept_each(listener, "SOCKS", |sock, _| {
        ClientStats::bump(&exits.stats().socks_connections);
        let exits = exits.clone();
        async move {
            if let Err(e) = handle(sock, &exits).await {
                tracing::debug!("SOCKS connection ended: {e}");
            }
        }
    })
    .await
}

/// The SOCKS reply for a failure.
pub fn reply_for(kind: FailureKind) -> Reply {
    match kind {
        FailureKind::NotAllowed => Reply::NotAllowed,
        FailureKind::NetworkUnreachable => Reply::NetworkUnreachable,
        FailureKind::HostUnreachable => Reply::HostUnreachable,
        FailureKind::Refused => Reply::ConnectionRefused,
        FailureKind::Timeout => Reply::TtlExpired,
        FailureKind::Other => Reply::GeneralFailure,
    }
}

/// Authenticates (the credentials become the isolation key) and reads the request. None: the
/// request was refused and answered already.
async fn negotiate(sock: &mut TcpStream) -> anyhow::Result<Option<(IsolationKey, Request)>> {
    let _ = sock.set_nodelay(true);
    // fast-socks5 works on a borrowed socket, so the socket is ours again after authentication.
    let creds = match Socks5ServerProtocol::start(&mut *sock).negotiate_auth(METHODS).await? {
        StandardAuthenticationStarted::NoAuthentication(_) => None,
        StandardAuthenticationStarted::PasswordAuthentication(a) => {
            let (user, pass, a) = a.read_username_password().await?;
            a.accept().await?;
            Some((user, pass))
        }
    };
    let mut buf = Vec::with_capacity(MAX_REQUEST_LEN);
    loop {
        match decode_request(&buf) {
            Ok(Decoded::Request(request, _)) => return Ok(Some((IsolationKey::new(creds), request))),
            Ok(Decoded::NeedMore(n)) => {
                let have = buf.len();
                buf.resize(n, 0);
                sock.read_exact(&mut buf[have..]).await?;
            }
            Err(e) => {
                if let Some(reply) = e.reply() {
                    sock.write_all(&encode_reply(reply, UNBOUND)).await?;
                }
                tracing::debug!("SOCKS request refused: {e}");
                return Ok(None);
            }
        }
    }
}

async fn handle(mut sock: TcpStream, exits: &ExitRequests) -> anyhow::Result<()> {
    let Some((isolation, request)) = tokio::time::timeout(NEGOTIATION_TIMEOUT, negotiate(&mut sock))
        .await
        .map_err(|_| anyhow::anyhow!("SOCKS negotiation timed out"))??
    else {
        // Refused before the whole request was read.
        linger_close(sock).await;
        return Ok(());
    };
    let host = match &request.address {
        Address::Ip(ip) => TargetHost::Ip(*ip),
        // A name that is not plausible DNS cannot resolve anywhere.
        Address::Name(n) => match std::str::from_utf8(n).ok().and_then(|n| TargetHost::parse(n).ok()) {
            Some(h) => h,
            None => {
                sock.write_all(&encode_reply(Reply::HostUnreachable, UNBOUND)).await?;
                return Ok(());
            }
        },
    };
    match (request.command, host) {
        (Command::Connect, host) => {
            let target = Target {
                host,
                port: request.port,
            };
            match exits.open_stream(&isolation, &target).await {
                Ok(stream) => match sock.write_all(&encode_reply(Reply::Succeeded, UNBOUND)).await {
                    Ok(()) => stream.attach(sock).await,
                    Err(e) => {
                        stream.abandon().await;
                        return Err(e.into());
                    }
                },
                Err(e) => sock.write_all(&encode_reply(reply_for(e.kind()), UNBOUND)).await?,
            }
        }
        (Command::Resolve, TargetHost::Ip(ip)) => {
            sock.write_all(&encode_reply(Reply::Succeeded, SocketAddr::new(ip, 0)))
                .await?
        }
        (Command::Resolve, TargetHost::Name(name)) => {
            let answer = match exits.resolve(&isolation, &name).await {
                Ok(ip) => encode_reply(Reply::Succeeded, SocketAddr::new(ip, 0)),
                Err(e) => encode_reply(reply_for(e.kind()), UNBOUND),
            };
            sock.write_all(&answer).await?;
        }
    }
    Ok(())
}
