//! The HTTP CONNECT proxy port (`http_connect_listen`; off by default, loopback only), for
//! applications that speak HTTP proxies but not SOCKS (Tor's HTTPTunnelPort).
//!
//! `CONNECT host:port HTTP/1.1` opens a stream through [`crate::exit_request`] exactly as a
//! SOCKS CONNECT does: the host goes to the exit unresolved, the stream is retried once on a
//! fresh circuit, and it uses the default isolation group. The answer is
//! `HTTP/1.1 200 Connection established`, then the connection carries the stream's bytes; or
//! an error status, and the connection closes: 400 malformed request, 405 a method other than
//! CONNECT (this is not a forwarding HTTP proxy), 431 request head over [`MAX_HEAD_LEN`],
//! 403 refused by an exit policy, 404 the name did not resolve, 502 no circuit or the
//! destination refused, 504 timeout. Header fields are read and ignored.
//!
//! The request head must arrive within [`HEAD_TIMEOUT`] and fit in [`MAX_HEAD_LEN`] bytes; it
//! is read without consuming anything after its blank line, so an application that sends
//! early data loses none. [`parse_connect`] is the sans-I/O parser; it never panics.
//!
//! Try: `curl -p -x http://127.0.0.1:PORT http://example.org/`.

use crate::exit_request::{ExitRequests, FailureKind};
use crate::linger::linger_close;
use crate::pool::IsolationKey;
use crate::stats::ClientStats;
use onionlab_proto::relay_msg::{Target, TargetHost};
use std::net::IpAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head (request line and header fields).
pub const MAX_HEAD_LEN: usize = 8 * 1024;
/// Limit for receiving the request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeadError {
    /// Not an HTTP/1.x request line, or a bad authority.
    #[error("malformed CONNECT request")]
    Malformed,
    /// A method other than CONNECT.
    #[error("only CONNECT is supported")]
    Method,
    /// Longer than [`MAX_HEAD_LEN`].
    #[error("request head too large")]
    TooLarge,
}

impl HeadError {
    /// The status line answering it.
    pub fn status(self) -> &'static str {
        match self {
            HeadError::Malformed => "400 Bad Request",
            HeadError::Method => "405 Method Not Allowed",
            HeadError::TooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// The status line for a failed stream.
pub fn status_for(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::NotAllowed => "403 Forbidden",
        FailureKind::HostUnreachable => "404 Not Found",
        FailureKind::Timeout => "504 Gateway Timeout",
        FailureKind::NetworkUnreachable | FailureKind::Refused | FailureKind::Other => "502 Bad Gateway",
    }
}

/// Parses a request head (everything up to and including the blank line) into the target of
/// its `CONNECT host:port HTTP/1.x` line.
pub fn parse_connect(head: &[u8]) -> Result<Target, HeadError> {
    if head.len() > MAX_HEAD_LEN {
        return Err(HeadError::TooLarge);
    }
    let line_end = head.windows(2).position(|w| w == b"\r\n").ok_or(HeadError::Malformed)?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| HeadError::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(authority), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if !version.starts_with("HTTP/1.") || version.len() != 8 {
        return Err(HeadError::Malformed);
    }
    if method != "CONNECT" {
        return Err(HeadError::Method);
    }
    let (host, port) = authority.rsplit_once(':').ok_or(HeadError::Malformed)?;
    // Digits only: `u16::from_str` would also take a leading `+`.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::Malformed);
    }
    let port: u16 = port.parse().map_err(|_| HeadError::Malformed)?;
    if port == 0 {
        return Err(HeadError::Malformed);
    }
    let host = TargetHost::parse(host).map_err(|_| HeadError::Malformed)?;
    Ok(Target { host, port })
}

/// The request head a client sends to reach `target` (the encoding [`parse_connect`] reads).
pub fn encode_connect(target: &Target) -> Vec<u8> {
    let host = match &target.host {
        TargetHost::Name(n) => n.clone(),
        TargetHost::Ip(IpAddr::V4(a)) => a.to_string(),
        TargetHost::Ip(IpAddr::V6(a)) => format!("[{a}]"),
    };
    let port = target.port;
    format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").into_bytes()
}

/// Serves HTTP CONNECT connections until the listener fails.
pub async fn serve(listener: TcpListener, exits: ExitRequests) {
    onionlab_link::accept::accept_each(listener, "HTTP CONNECT", |sock, _| {
        ClientStats::bump(&exits.stats().http_connect_connections);
        let exits = exits.clone();
        async move {
            if let Err(e) = handle(sock, &exits).await {
                tracing::debug!("HTTP CONNECT connection ended: {e}");
            }
        }
    })
    .await
}

/// Reads up to and including the first blank line, never past it, at most [`MAX_HEAD_LEN`].
async fn read_head(sock: &mut TcpStream) -> std::io::Result<Result<Vec<u8>, HeadError>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let room = (MAX_HEAD_LEN - head.len()).min(buf.len());
        if room == 0 {
            return Ok(Err(HeadError::TooLarge));
        }
        // Peek, then consume only what belongs to the head: the bytes after it are the stream's.
        let n = sock.peek(&mut buf[..room]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let scan_from = head.len().saturating_sub(3);
        let seen = head.len();
        head.extend_from_slice(&buf[..n]);
        let take = match head[scan_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            Some(pos) => scan_from + pos + 4 - seen,
            None => n,
        };
        sock.read_exact(&mut buf[..take]).await?;
        if take < n {
            head.truncate(seen + take);
            return Ok(Ok(head));
        }
        if head.ends_with(b"\r\n\r\n") {
            return Ok(Ok(head));
        }
    }
}

/// Answers an error status and closes.
async fn refuse(mut sock: TcpStream, status: &str) -> std::io::Result<()> {
    let extra = if status.starts_with("405") {
        "Allow: CONNECT\r\n"
    } else {
        ""
    };
    sock.write_all(format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    linger_close(sock).await;
    Ok(())
}

async fn handle(mut sock: TcpStream, exits: &ExitRequests) -> anyhow::Result<()> {
    let _ = sock.set_nodelay(true);
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut sock))
        .await
        .map_err(|_| anyhow::anyhow!("no request head in time"))??;
    let target = match head.and_then(|h| parse_connect(&h)) {
        Ok(t) => t,
        Err(e) => return Ok(refuse(sock, e.status()).await?),
    };
    match exits.open_stream(&IsolationKey::default(), &target).await {
        Ok(stream) => match sock.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await {
            Ok(()) => stream.attach(sock).await,
            Err(e) => {
                stream.abandon().await;
                return Err(e.into());
            }
        },
        Err(e) => refuse(sock, status_for(e.kind())).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn target() -> impl Strategy<Value = Target> {
        let host = prop_oneof![
            "[a-z0-9][a-z0-9.-]{0,60}"
                .prop_filter("not an address", |h| h.parse::<std::net::Ipv4Addr>().is_err())
                .prop_map(TargetHost::Name),
            any::<[u8; 4]>().prop_map(|a| TargetHost::Ip(std::net::Ipv4Addr::from(a).into())),
            any::<[u8; 16]>().prop_map(|a| TargetHost::Ip(std::net::Ipv6Addr::from(a).into())),
        ];
        (host, 1u16..).prop_map(|(host, port)| Target { host, port })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_connect(&bytes);
        }

        #[test]
        fn round_trip(t in target()) {
            prop_assert_eq!(parse_connect(&encode_connect(&t)), Ok(t));
        }
    }

    fn parse(s: &str) -> Result<Target, HeadError> {
        parse_connect(s.as_bytes())
    }

    #[test]
    fn what_curl_sends() {
        let t = parse(
            "CONNECT demo.onionlab.test:8000 HTTP/1.1\r\nHost: demo.onionlab.test:8000\r\n\
             User-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n",
        )
        .unwrap();
        assert_eq!(t.host, TargetHost::Name("demo.onionlab.test".into()));
        assert_eq!(t.port, 8000);
        let v6 = parse("CONNECT [::1]:443 HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(v6.host, TargetHost::Ip("::1".parse().unwrap()));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse("GET http://example.org/ HTTP/1.1\r\n\r\n"),
            Err(HeadError::Method)
        );
        for bad in [
            "CONNECT example.org HTTP/1.1\r\n\r\n",
            "CONNECT example.org:0 HTTP/1.1\r\n\r\n",
            "CONNECT example.org:+80 HTTP/1.1\r\n\r\n",
            "CONNECT example.org:70000 HTTP/1.1\r\n\r\n",
            "CONNECT exa mple.org:80 HTTP/1.1\r\n\r\n",
            "CONNECT ex/ample.org:80 HTTP/1.1\r\n\r\n",
            "CONNECT example.org:80 SPDY/3\r\n\r\n",
            "CONNECT example.org:80\r\n\r\n",
            "CONNECT example.org:80 HTTP/1.1",
        ] {
            assert_eq!(parse(bad), Err(HeadError::Malformed), "{bad:?}");
        }
        let huge = format!("CONNECT a:1 HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(MAX_HEAD_LEN));
        assert_eq!(parse(&huge), Err(HeadError::TooLarge));
        assert_eq!(HeadError::Method.status(), "405 Method Not Allowed");
        assert_eq!(status_for(FailureKind::NotAllowed), "403 Forbidden");
        assert_eq!(status_for(FailureKind::Timeout), "504 Gateway Timeout");
    }
}
