//! A minimal SOCKS5 client and HTTP/1.0 fetcher, for measurements and tests through the
//! testbed (OnionPerf-style timings need a client that reports each step).
//!
//! Hostnames are sent to the proxy as names (ATYP 3), never resolved here. Every step has a
//! time limit; a SOCKS failure comes back as its reply code.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Limit for the SOCKS exchange (including the proxy's circuit work).
pub const SOCKS_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a SOCKS connection failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SocksClientError {
    /// Socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The proxy answered with a failure code.
    #[error("SOCKS reply {0:#04x}")]
    Reply(u8),
    /// The proxy spoke something else.
    #[error("SOCKS protocol: {0}")]
    Protocol(&'static str),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

/// Opens `host:port` through the SOCKS5 proxy, with optional username/password.
pub async fn connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    creds: Option<(&str, &str)>,
) -> Result<TcpStream, SocksClientError> {
    timeout(SOCKS_TIMEOUT, connect_inner(proxy, host, port, creds))
        .await
        .map_err(|_| SocksClientError::Timeout)?
}

async fn connect_inner(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    creds: Option<(&str, &str)>,
) -> Result<TcpStream, SocksClientError> {
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    let method = if creds.is_some() { 2 } else { 0 };
    s.write_all(&[5, 1, method]).await?;
    let mut resp = [0u8; 2];
    s.read_exact(&mut resp).await?;
    if resp != [5, method] {
        return Err(SocksClientError::Protocol("proxy refused the authentication method"));
    }
    if let Some((user, pass)) = creds {
        let mut m = vec![1, user.len() as u8];
        m.extend_from_slice(user.as_bytes());
        m.push(pass.len() as u8);
        m.extend_from_slice(pass.as_bytes());
        s.write_all(&m).await?;
        s.read_exact(&mut resp).await?;
        if resp[1] != 0 {
            return Err(SocksClientError::Protocol("credentials refused"));
        }
    }
    let mut req = vec![5, 1, 0];
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.octets());
        }
        Ok(IpAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            req.push(3);
            req.push(host.len() as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(SocksClientError::Protocol("not a SOCKS5 reply"));
    }
    if head[1] != 0 {
        return Err(SocksClientError::Reply(head[1]));
    }
    let skip = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await?;
            usize::from(l[0]) + 2
        }
        _ => return Err(SocksClientError::Protocol("bad bound address type")),
    };
    let mut rest = vec![0u8; skip];
    s.read_exact(&mut rest).await?;
    Ok(s)
}

/// A fetched HTTP response.
#[derive(Debug)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Time from sending the request to the first response byte.
    pub first_byte: Duration,
}

/// Sends `GET path` (HTTP/1.0) on `stream` and reads the whole response (at most `max` bytes).
pub async fn http_get(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    max: usize,
    limit: Duration,
) -> Result<Fetched, SocksClientError> {
    let fut = async {
        let start = tokio::time::Instant::now();
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: onionlab\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::with_capacity(max.min(64 * 1024));
        let mut first = [0u8; 1];
        let n = stream.read(&mut first).await?;
        let first_byte = start.elapsed();
        buf.extend_from_slice(&first[..n]);
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            if buf.len() + n > max {
                return Err(SocksClientError::Protocol("response larger than allowed"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(SocksClientError::Protocol("no end of headers"))?;
        let status = std::str::from_utf8(&buf[..end])
            .ok()
            .and_then(|h| h.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or(SocksClientError::Protocol("bad status line"))?;
        Ok(Fetched {
            status,
            body: buf[end + 4..].to_vec(),
            first_byte,
        })
    };
    timeout(limit, fut).await.map_err(|_| SocksClientError::Timeout)?
}
