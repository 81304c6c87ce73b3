//! A minimal HTTP/1.1 client, just enough for tracker announces and scrapes: one `GET` per
//! connection (`Connection: close`), `http://` only, no redirects, no compression.
//!
//! The response is read with hard limits: the status line and headers together at most
//! [`HttpConfig::max_head`] bytes, the body at most [`HttpConfig::max_body`] bytes whether it is
//! framed by `Content-Length`, by chunked transfer coding or by the end of the connection. A
//! body announced larger than the cap is refused before it is read. Interim `1xx` responses are
//! skipped (at most four). Anything malformed is an [`HttpReadError`], never a panic.

use std::net::SocketAddr;

use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::engine::ProbeError;
use crate::observe::Outcome;

/// Limits and identity of the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest status line plus headers accepted.
    pub max_head: usize,
    /// Largest body accepted.
    pub max_body: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    /// 16 KiB of headers, 2 MiB of body, `onionlab-crawl/<version>`.
    fn default() -> Self {
        HttpConfig {
            max_head: 16 << 10,
            max_body: 2 << 20,
            user_agent: concat!("onionlab-crawl/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// An `http://` URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The host: an IP literal (IPv6 without brackets) or a name.
    pub host: String,
    /// The port (80 if the URL has none).
    pub port: u16,
    /// The request target: path and query, starting with `/`.
    pub target: String,
}

impl HttpUrl {
    /// Splits `url`; refuses other schemes, user info, fragments and malformed authorities.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
        if rest.contains('#') {
            return Err(format!("{url:?} has a fragment"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!("{url:?} has user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed IPv6 literal"))?;
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{url:?}: bad IPv6 literal"));
            }
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{url:?}: junk after the IPv6 literal")),
            };
            (ip, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
        if !host_ok {
            return Err(format!("{url:?}: bad host {host:?}"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        };
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        if target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{url:?}: spaces or control characters in the path"));
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The `Host` header value: the host (IPv6 in brackets) and the port if it is not 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The request bytes: `GET`, `Host`, `User-Agent`, identity encoding, `Connection: close`.
    pub fn request(&self, user_agent: &str) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {user_agent}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
            self.target,
            self.host_header()
        )
        .into_bytes()
    }
}

/// A response: its status code and its (de-chunked) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a response could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpReadError {
    /// The connection failed or ended early.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The status line and headers are over [`HttpConfig::max_head`].
    #[error("response headers over {0} bytes")]
    HeadTooLarge(usize),
    /// The body is (or is announced) over [`HttpConfig::max_body`].
    #[error("response body over {0} bytes")]
    BodyTooLarge(usize),
    /// Not HTTP/1.x, or a header or chunk that cannot be read.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

impl HttpReadError {
    /// The outcome to record: I/O errors by kind, everything else a protocol error.
    pub fn to_probe_error(&self) -> ProbeError {
        match self {
            HttpReadError::Io(e) => ProbeError::io(e),
            other => ProbeError::new(Outcome::ProtocolError, other.to_string()),
        }
    }
}

/// Reads one line (up to and including `\n`) of at most `max` bytes into `out` (cleared first),
/// without the line ending. Returns the bytes consumed.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, out: &mut Vec<u8>, max: usize) -> Result<usize, HttpReadError> {
    out.clear();
    let mut used = 0;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(HttpReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if used + take > max {
            return Err(HttpReadError::HeadTooLarge(max));
        }
        out.extend_from_slice(&buf[..take]);
        r.consume(take);
        used += take;
        if done {
            out.pop();
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            return Ok(used);
        }
    }
}

/// How the body is delimited.
enum Framing {
    Length(u64),
    Chunked,
    Close,
    Empty,
}

/// Reads a status line and headers; returns the status and the body framing.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R, cfg: &HttpConfig) -> Result<(u16, Framing), HttpReadError> {
    read_head_within(r, cfg).await.map_err(|e| match e {
        HttpReadError::HeadTooLarge(_) => HttpReadError::HeadTooLarge(cfg.max_head),
        other => other,
    })
}

async fn read_head_within<R: AsyncBufRead + Unpin>(
    r: &mut R,
    cfg: &HttpConfig,
) -> Result<(u16, Framing), HttpReadError> {
    let mut budget = cfg.max_head;
    let mut line = Vec::new();
    budget -= read_line(r, &mut line, budget).await?;
    let status = parse_status_line(&line)?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    loop {
        let used = read_line(r, &mut line, budget).await?;
        budget -= used;
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpReadError::Malformed("header line without a colon"))?;
        let name = &line[..colon];
        let value = std::str::from_utf8(&line[colon + 1..])
            .map_err(|_| HttpReadError::Malformed("header value is not UTF-8"))?
            .trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpReadError::Malformed("bad Content-Length"));
            }
            // All digits: a number too large for u64 is simply over any body cap.
            let n: u64 = value.parse().unwrap_or(u64::MAX);
            if length.is_some_and(|l| l != n) {
                return Err(HttpReadError::Malformed("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                // A transfer coding other than chunked last: the body runs to the close.
                length = None;
            }
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok((status, framing))
}

fn parse_status_line(line: &[u8]) -> Result<u16, HttpReadError> {
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or(HttpReadError::Malformed("status line is not HTTP/1.x"))?;
    match rest {
        [b'0' | b'1', b' ', a, b, c, tail @ ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit()) && (tail.is_empty() || tail[0] == b' ') =>
        {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(HttpReadError::Malformed("bad status line")),
    }
}

/// Reads a response (skipping interim `1xx` ones) and its body, within `cfg`'s limits.
pub async fn read_response<R: AsyncBufRead + Unpin>(
    r: &mut R,
    cfg: &HttpConfig,
) -> Result<HttpResponse, HttpReadError> {
    let mut interim = 0;
    let (status, framing) = loop {
        let (status, framing) = read_head(r, cfg).await?;
        if (100..200).contains(&status) && status != 101 {
            interim += 1;
            if interim > 4 {
                return Err(HttpReadError::Malformed("too many interim responses"));
            }
            continue;
        }
        break (status, framing);
    };
    let max = cfg.max_body;
    let mut body = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or(HttpReadError::BodyTooLarge(max))?;
            body.resize(n, 0);
            r.read_exact(&mut body).await?;
        }
        Framing::Close => {
            let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
            r.take(cap).read_to_end(&mut body).await?;
            if body.len() > max {
                return Err(HttpReadError::BodyTooLarge(max));
            }
        }
        Framing::Chunked => read_chunked(r, cfg, &mut body).await?,
    }
    Ok(HttpResponse { status, body })
}

async fn read_chunked<R: AsyncBufRead + Unpin>(
    r: &mut R,
    cfg: &HttpConfig,
    body: &mut Vec<u8>,
) -> Result<(), HttpReadError> {
    let mut line = Vec::new();
    loop {
        read_line(r, &mut line, 1024).await.map_err(|e| match e {
            HttpReadError::HeadTooLarge(_) => HttpReadError::Malformed("chunk size line too long"),
            other => other,
        })?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 16)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or(HttpReadError::Malformed("bad chunk size"))?;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= cfg.max_body.saturating_sub(body.len()))
            .ok_or(HttpReadError::BodyTooLarge(cfg.max_body))?;
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut end = [0u8; 1];
        r.read_exact(&mut end).await?;
        if end[0] == b'\r' {
            r.read_exact(&mut end).await?;
        }
        if end[0] != b'\n' {
            return Err(HttpReadError::Malformed("chunk not followed by CRLF"));
        }
    }
    // Trailer fields, then the empty line.
    let mut budget = cfg.max_head;
    loop {
        budget -= read_line(r, &mut line, budget).await.map_err(|e| match e {
            HttpReadError::HeadTooLarge(_) => HttpReadError::HeadTooLarge(cfg.max_head),
            other => other,
        })?;
        if line.is_empty() {
            return Ok(());
        }
    }
}

/// `GET url` from `addr`: connect, send the request, read the response within `cfg`'s limits.
/// The caller bounds the whole exchange in time (an engine attempt).
pub async fn get(addr: SocketAddr, url: &HttpUrl, cfg: &HttpConfig) -> Result<HttpResponse, ProbeError> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| ProbeError::io(&e))?;
    stream
        .write_all(&url.request(&cfg.user_agent))
        .await
        .map_err(|e| ProbeError::io(&e))?;
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, cfg).await.map_err(|e| e.to_probe_error())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn read(bytes: &[u8], cfg: &HttpConfig) -> Result<HttpResponse, HttpReadError> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut r = bytes;
        rt.block_on(read_response(&mut r, cfg))
    }

    fn ok(bytes: &[u8]) -> HttpResponse {
        read(bytes, &HttpConfig::default()).unwrap()
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:6969/announce?passkey=x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 6969, "/announce?passkey=x")
        );
        assert_eq!(u.host_header(), "127.0.0.1:6969");
        let u = HttpUrl::parse("HTTP://[::1]/a").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("::1", 80, "/a"));
        assert_eq!(u.host_header(), "[::1]");
        let u = HttpUrl::parse("http://tracker.example.org?x=1").unwrap();
        assert_eq!(u.target, "/?x=1");
        assert_eq!(
            u.request("ua"),
            b"GET /?x=1 HTTP/1.1\r\nHost: tracker.example.org\r\nUser-Agent: ua\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
        );
        for bad in [
            "https://a/announce",
            "udp://a:1",
            "http://",
            "http://u@a/",
            "http://a:99999/",
            "http://a:x/",
            "http://[::1/",
            "http://[zz]/",
            "http://a b/",
            "http://a/x#f",
            "http://a/x y",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_length_chunked_and_close() {
        let r = ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloIGNORED");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n");
        assert_eq!(r.body, b"abc0123456789");
        let r = ok(b"HTTP/1.0 200 OK\nServer: x\n\nd8:intervali5ee");
        assert_eq!(r.body, b"d8:intervali5ee");
        let r = ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (404, 0));
        let r = ok(b"HTTP/1.1 204 No Content\r\n\r\njunk");
        assert_eq!((r.status, r.body.len()), (204, 0));
    }

    #[test]
    fn limits_and_malformed() {
        let small = HttpConfig {
            max_head: 64,
            max_body: 8,
            ..HttpConfig::default()
        };
        let too_big = |input: &[u8]| matches!(read(input, &small), Err(HttpReadError::BodyTooLarge(8)));
        assert!(too_big(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789"));
        assert!(too_big(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"
        ));
        assert!(too_big(b"HTTP/1.1 200 OK\r\n\r\n123456789"));
        assert!(too_big(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n1234\r\n0\r\n\r\n"
        ));
        assert!(too_big(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"
        ));
        let long_header = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert!(matches!(
            read(long_header.as_bytes(), &small),
            Err(HttpReadError::HeadTooLarge(64))
        ));
        let malformed = |input: &[u8]| matches!(read(input, &small), Err(HttpReadError::Malformed(_)));
        assert!(malformed(b"SSH-2.0-OpenSSH\r\n\r\n"));
        assert!(malformed(b"HTTP/1.1 2000 OK\r\n\r\n"));
        assert!(malformed(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"));
        assert!(malformed(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"));
        assert!(malformed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        ));
        assert!(malformed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        ));
        assert!(malformed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"
        ));
        let truncated = |input: &[u8]| matches!(read(input, &small), Err(HttpReadError::Io(_)));
        assert!(truncated(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"));
        assert!(truncated(b"HTTP/1.1 200 OK\r\n"));
        assert!(truncated(b""));
    }

    proptest! {
        #[test]
        fn reader_never_panics_and_respects_caps(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let cfg = HttpConfig { max_head: 100, max_body: 50, ..HttpConfig::default() };
            if let Ok(r) = read(&input, &cfg) {
                prop_assert!(r.body.len() <= 50);
            }
        }

        #[test]
        fn chunked_bodies_reassemble(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..6)) {
            let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
            for c in &chunks {
                wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            prop_assert_eq!(ok(&wire).body, chunks.concat());
        }
    }
}
