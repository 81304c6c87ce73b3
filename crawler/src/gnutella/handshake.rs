//! The Gnutella 0.6 connection handshake (RFC draft section 2.1, Ultrapeers proposal section 3,
//! LimeWire's crawler note): header blocks, their incremental decoder and the typed headers.
//!
//! A connection opens with three header blocks, each a start line, `Name: value` lines and an
//! empty line, all ended by `\r\n`:
//!
//! ```text
//! initiator: GNUTELLA CONNECT/0.6      acceptor: GNUTELLA/0.6 200 OK      initiator: GNUTELLA/0.6 200 OK
//!            User-Agent: ...                     User-Agent: ...                     (headers)
//!            Crawler: 0.1                        Peers: a:p, b:p
//!                                                Leaves: c:p
//! ```
//!
//! This module owns the bytes of one block and the meaning of the headers; it never decides
//! whether to accept a connection, and it never reads past the blank line (the bytes after it
//! belong to the descriptor stream, perhaps deflated).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

use super::EncodeError;

/// The protocol version this codec writes (`GNUTELLA CONNECT/0.6`, `GNUTELLA/0.6 200 OK`).
pub const PROTOCOL_VERSION: &str = "0.6";

/// The crawler extension version sent in `Crawler:` (LimeWire's crawler note: "currently 0.1").
pub const CRAWLER_VERSION: &str = "0.1";

/// The port assumed for an address-list entry written without one (GDF header list).
pub const DEFAULT_PORT: u16 = 6346;

/// Bounds that keep a hostile peer from making the decoder buffer forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// The longest header block accepted, start line and blank line included.
    pub max_block: usize,
    /// The longest physical line accepted, its line end included (a folded header is several
    /// physical lines).
    pub max_line: usize,
    /// The most header fields (continuation lines not counted).
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    /// 32 KiB, 8 KiB, 128: an ultrapeer's crawler reply with hundreds of leaves on one line fits
    /// (gtk-gnutella builds it in an 8 KiB buffer), a block that never ends does not.
    fn default() -> Self {
        HandshakeLimits {
            max_block: 32 << 10,
            max_line: 8 << 10,
            max_headers: 128,
        }
    }
}

/// The first line of a block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StartLine {
    /// `GNUTELLA CONNECT/<version>`, the initiator's first block.
    Connect {
        /// The protocol version, like `0.6`.
        version: String,
    },
    /// `GNUTELLA/<version> <code> <reason>`, the second and third blocks.
    Response {
        /// The protocol version, like `0.6`.
        version: String,
        /// The three-digit status: 200 accepts, 503 refuses (often with `X-Try-Ultrapeers`).
        code: u16,
        /// The reason phrase, possibly empty.
        reason: String,
    },
}

/// Header fields in wire order, at most one per name (names compare ASCII case-insensitively;
/// the first spelling seen is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

/// One header block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The start line.
    pub start: StartLine,
    /// The headers.
    pub headers: Headers,
}

/// A decoded block and the deviations accepted on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedHandshake {
    /// The block.
    pub handshake: Handshake,
    /// What was accepted although the grammar does not allow it, in line order.
    pub deviations: Vec<HandshakeDeviation>,
}

/// A form accepted and recorded; `line` is the 1-based physical line in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeDeviation {
    /// The line ended with `\n` alone.
    BareLf {
        /// The line.
        line: usize,
    },
    /// The line is not UTF-8; invalid sequences became U+FFFD.
    NonUtf8 {
        /// The line.
        line: usize,
    },
    /// A header line without a colon or whose name is not an HTTP token, or a continuation line
    /// with no header to continue; skipped.
    MalformedHeader {
        /// The line.
        line: usize,
    },
}

/// Why bytes are not a header block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A physical line reached [`HandshakeLimits::max_line`] bytes without ending.
    #[error("handshake line {line} is longer than {max} bytes")]
    LineTooLong {
        /// The 1-based line.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// The block reached [`HandshakeLimits::max_block`] bytes without its blank line.
    #[error("handshake block is longer than {max} bytes")]
    BlockTooLarge {
        /// The limit.
        max: usize,
    },
    /// More than [`HandshakeLimits::max_headers`] header fields.
    #[error("more than {max} handshake headers")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// The first line is not a Gnutella connect or response line; the line (at most 80
    /// characters of it) is kept for the record.
    #[error("not a Gnutella start line: {0:?}")]
    BadStartLine(String),
}

/// Decodes one block from the start of `input` with [`HandshakeLimits::default`].
pub fn decode_handshake(input: &[u8]) -> Result<Option<(DecodedHandshake, usize)>, HandshakeError> {
    decode_handshake_with(input, HandshakeLimits::default())
}

/// Decodes one block from the start of `input`: `Ok(None)` while the blank line has not arrived
/// (and no limit is exceeded), otherwise the block and the bytes it used, blank line included.
pub fn decode_handshake_with(
    input: &[u8],
    limits: HandshakeLimits,
) -> Result<Option<(DecodedHandshake, usize)>, HandshakeError> {
    let mut scan = Scan::default();
    match scan.advance(input, &limits)? {
        None => Ok(None),
        Some(end) => Ok(Some((parse_block(&input[..end])?, end))),
    }
}

/// An incremental decoder for a byte stream: feed it what the socket gave, then take blocks.
///
/// Each byte is looked at once, so a peer that dribbles its headers a byte at a time costs
/// linear work, and the limits trip as soon as the offending byte arrives. After a block, the
/// bytes that followed it stay buffered: take them with [`HandshakeDecoder::take_buffered`]
/// for the descriptor stream, or call [`HandshakeDecoder::next_handshake`] again for the next
/// block (an acceptor reads the first and the third).
#[derive(Debug, Clone, Default)]
pub struct HandshakeDecoder {
    buf: Vec<u8>,
    scan: Scan,
    limits: HandshakeLimits,
}

impl HandshakeDecoder {
    /// A decoder with [`HandshakeLimits::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with explicit limits.
    pub fn with_limits(limits: HandshakeLimits) -> Self {
        HandshakeDecoder {
            buf: Vec::new(),
            scan: Scan::default(),
            limits,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet consumed by a block.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the buffered bytes (those after the last block), leaving the decoder empty.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.scan = Scan::default();
        std::mem::take(&mut self.buf)
    }

    /// The next whole block, or `Ok(None)` if more bytes are needed. After an error the stream
    /// is not a handshake; the same error comes back on every call.
    pub fn next_handshake(&mut self) -> Result<Option<DecodedHandshake>, HandshakeError> {
        let Some(end) = self.scan.advance(&self.buf, &self.limits)? else {
            return Ok(None);
        };
        let decoded = parse_block(&self.buf[..end])?;
        self.buf.drain(..end);
        self.scan = Scan::default();
        Ok(Some(decoded))
    }
}

/// Where the search for the blank line stands: everything before `pos` has been checked.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    pos: usize,
    line_start: usize,
    lines: usize,
    headers: usize,
}

impl Scan {
    /// Looks at the bytes of `buf` from `pos` on (`buf` starts where the block starts). Limits
    /// are checked at the exact byte that exceeds them, so the outcome for a given prefix does
    /// not depend on how the bytes arrived.
    fn advance(&mut self, buf: &[u8], limits: &HandshakeLimits) -> Result<Option<usize>, HandshakeError> {
        loop {
            let lf = buf
                .get(self.pos..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map(|i| self.pos + i);
            let examined = lf.map_or(buf.len(), |i| i + 1);
            // Index of the first byte that breaks each limit.
            let line_trip = self.line_start.saturating_add(limits.max_line);
            let block_trip = limits.max_block;
            if line_trip < examined || block_trip < examined {
                return Err(if line_trip <= block_trip {
                    HandshakeError::LineTooLong {
                        line: self.lines + 1,
                        max: limits.max_line,
                    }
                } else {
                    HandshakeError::BlockTooLarge { max: limits.max_block }
                });
            }
            let Some(lf) = lf else {
                self.pos = buf.len();
                return Ok(None);
            };
            // Checks first, then the state moves on: after an error, the next call fails the same way.
            let content = line_content(&buf[self.line_start..lf]);
            let mut headers = self.headers;
            if self.lines == 0 {
                parse_start_line(content)?;
            } else if content.is_empty() {
                return Ok(Some(lf + 1));
            } else if !is_continuation(content) {
                headers += 1;
                if headers > limits.max_headers {
                    return Err(HandshakeError::TooManyHeaders {
                        max: limits.max_headers,
                    });
                }
            }
            self.headers = headers;
            self.lines += 1;
            self.pos = lf + 1;
            self.line_start = lf + 1;
        }
    }
}

/// A line without its `\n` and the `\r` before it, if any.
fn line_content(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_continuation(content: &[u8]) -> bool {
    matches!(content.first(), Some(b' ' | b'\t'))
}

/// Parses a whole block, which [`Scan::advance`] has already delimited and checked.
fn parse_block(block: &[u8]) -> Result<DecodedHandshake, HandshakeError> {
    let mut deviations = Vec::new();
    let mut start = None;
    let mut headers = Headers::default();
    let mut current: Option<(String, String)> = None;
    for (i, raw) in block.split_inclusive(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        let content = match body.strip_suffix(b"\r") {
            Some(content) => content,
            None => {
                deviations.push(HandshakeDeviation::BareLf { line });
                body
            }
        };
        if i == 0 {
            start = Some(parse_start_line(content)?);
            continue;
        }
        if content.is_empty() {
            break;
        }
        let text = match std::str::from_utf8(content) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => {
                deviations.push(HandshakeDeviation::NonUtf8 { line });
                String::from_utf8_lossy(content)
            }
        };
        if is_continuation(content) {
            match current.as_mut() {
                Some((_, value)) => {
                    let more = trim_ows(&text);
                    if !more.is_empty() {
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(more);
                    }
                }
                None => deviations.push(HandshakeDeviation::MalformedHeader { line }),
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.append(&name, &value);
        }
        match text.split_once(':') {
            Some((name, value)) if is_token(name) => current = Some((name.to_owned(), trim_ows(value).to_owned())),
            _ => deviations.push(HandshakeDeviation::MalformedHeader { line }),
        }
    }
    if let Some((name, value)) = current {
        headers.append(&name, &value);
    }
    let start = start.ok_or_else(|| HandshakeError::BadStartLine(String::new()))?;
    Ok(DecodedHandshake {
        handshake: Handshake { start, headers },
        deviations,
    })
}

fn parse_start_line(content: &[u8]) -> Result<StartLine, HandshakeError> {
    let bad = || HandshakeError::BadStartLine(String::from_utf8_lossy(content).chars().take(80).collect());
    let text = std::str::from_utf8(content).map_err(|_| bad())?;
    if let Some(version) = text.strip_prefix("GNUTELLA CONNECT/") {
        return if is_version(version) {
            Ok(StartLine::Connect {
                version: version.to_owned(),
            })
        } else {
            Err(bad())
        };
    }
    let rest = text.strip_prefix("GNUTELLA/").ok_or_else(bad)?;
    let (version, rest) = rest.split_once(' ').ok_or_else(bad)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if !is_version(version) || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let code = code.parse().map_err(|_| bad())?;
    Ok(StartLine::Response {
        version: version.to_owned(),
        code,
        reason: reason.to_owned(),
    })
}

fn is_version(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// An HTTP token (RFC 9110 section 5.6.2): the characters a header name may use.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Strips optional whitespace (spaces and tabs, nothing else) at both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, replacing any value it had (in place, keeping its spelling).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Adds `value` to `name`: a new field, or the existing value followed by `,` and `value`,
    /// which is what a repeated header means (RFC 9110 section 5.3).
    pub fn append(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The fields in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `User-Agent`: the servent's name and version.
    pub fn user_agent(&self) -> Option<&str> {
        self.get("User-Agent")
    }

    /// `X-Ultrapeer`: `True` for an ultrapeer, `False` for a leaf; `None` when absent or neither.
    pub fn ultrapeer(&self) -> Option<bool> {
        self.get("X-Ultrapeer").and_then(parse_bool)
    }

    /// `X-Ultrapeer-Needed`: whether the ultrapeer wants more ultrapeers (`True`/`False`;
    /// `Yes`/`No` are read too).
    pub fn ultrapeer_needed(&self) -> Option<bool> {
        self.get("X-Ultrapeer-Needed").and_then(parse_bool)
    }

    /// `X-Try-Ultrapeers`: ultrapeer addresses to try, usually sent with a 503.
    pub fn try_ultrapeers(&self) -> Option<PeerList> {
        self.get("X-Try-Ultrapeers").map(parse_peer_list)
    }

    /// `X-Try`: host addresses to try (the pre-ultrapeer form of `X-Try-Ultrapeers`).
    pub fn try_hosts(&self) -> Option<PeerList> {
        self.get("X-Try").map(parse_peer_list)
    }

    /// The sender's own listening address: `Listen-IP`, or its older spellings `X-My-Address`
    /// and `Node`, the first present; `None` if absent or not an address (the raw value is still
    /// in [`Headers::get`]). A missing port means [`DEFAULT_PORT`].
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        ["Listen-IP", "X-My-Address", "Node"]
            .iter()
            .find_map(|name| self.get(name))
            .and_then(|v| parse_addr(trim_ows(v)))
    }

    /// `Remote-IP`: the address the sender sees us at (an address with a port is read too).
    pub fn remote_ip(&self) -> Option<IpAddr> {
        let v = trim_ows(self.get("Remote-IP")?);
        v.parse().ok().or_else(|| v.parse::<SocketAddr>().ok().map(|a| a.ip()))
    }

    /// `X-Query-Routing`: the QRP version supported, like `0.1` or `0.2`.
    pub fn query_routing(&self) -> Option<&str> {
        self.get("X-Query-Routing")
    }

    /// Whether `Accept-Encoding` lists `deflate`: the sender can read a deflated stream.
    pub fn accepts_deflate(&self) -> bool {
        self.get("Accept-Encoding").is_some_and(lists_deflate)
    }

    /// Whether `Content-Encoding` lists `deflate`: the sender's stream is deflated right after
    /// this block.
    pub fn content_deflate(&self) -> bool {
        self.get("Content-Encoding").is_some_and(lists_deflate)
    }

    /// `Crawler`: the crawler extension version a crawler asks for, like `0.1`.
    pub fn crawler(&self) -> Option<&str> {
        self.get("Crawler")
    }

    /// `Peers`: in a crawler reply, the sender's ultrapeer neighbours (a leaf lists its
    /// ultrapeers).
    pub fn peers(&self) -> Option<PeerList> {
        self.get("Peers").map(parse_peer_list)
    }

    /// `Leaves`: in a crawler reply, an ultrapeer's leaves; a leaf sends no `Leaves` at all,
    /// which is how the crawler tells the two apart.
    pub fn leaves(&self) -> Option<PeerList> {
        self.get("Leaves").map(parse_peer_list)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    let v = trim_ows(v);
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

fn lists_deflate(v: &str) -> bool {
    v.split(',').any(|t| trim_ows(t).eq_ignore_ascii_case("deflate"))
}

/// A parsed address list (`X-Try-Ultrapeers`, `X-Try`, `Peers`, `Leaves`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerList {
    /// The entries that parsed, in order.
    pub entries: Vec<PeerEntry>,
    /// The entries that did not, verbatim (trimmed).
    pub bad: Vec<String>,
}

impl PeerList {
    /// The addresses of the good entries.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.entries.iter().map(|e| e.addr).collect()
    }
}

/// One address-list entry: `ip:port`, optionally followed by a space and a time stamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerEntry {
    /// The address; [`DEFAULT_PORT`] if the entry had no port.
    pub addr: SocketAddr,
    /// What followed the address, like `2004-12-18T23:47Z` (when the sender last saw it), kept as
    /// text.
    pub seen: Option<String>,
}

/// Parses a comma-separated address list leniently: entries may carry a time stamp after a space
/// or no port; IPv6 addresses are bracketed (`[::1]:6346`); empty entries (a trailing comma) are
/// skipped; anything else that is not an address goes to [`PeerList::bad`].
pub fn parse_peer_list(value: &str) -> PeerList {
    let mut list = PeerList::default();
    for item in value.split(',').map(trim_ows).filter(|s| !s.is_empty()) {
        let (addr, seen) = match item.split_once([' ', '\t']) {
            Some((addr, seen)) => (addr, Some(trim_ows(seen).to_owned())),
            None => (item, None),
        };
        match parse_addr(addr) {
            Some(addr) => list.entries.push(PeerEntry { addr, seen }),
            None => list.bad.push(item.to_owned()),
        }
    }
    list
}

/// Writes addresses the way gtk-gnutella writes `Peers` and `Leaves`: `ip:port, ip:port`.
pub fn format_peer_list(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(", ")
}

fn parse_addr(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Some(SocketAddr::from((ip, DEFAULT_PORT)));
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| SocketAddr::from((ip, DEFAULT_PORT)))
}

/// What a servent tells a crawler (LimeWire's crawler note, as gtk-gnutella answers it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrawlerReply {
    /// Our `User-Agent`.
    pub user_agent: String,
    /// Whether we are an ultrapeer (`X-Ultrapeer: True`); only an ultrapeer sends `Leaves`.
    pub ultrapeer: bool,
    /// Our ultrapeer neighbours, for `Peers`.
    pub peers: Vec<SocketAddr>,
    /// Our leaves, for `Leaves` (ignored unless `ultrapeer`).
    pub leaves: Vec<SocketAddr>,
}

impl Handshake {
    /// `GNUTELLA CONNECT/0.6` with no headers.
    pub fn connect() -> Self {
        Handshake {
            start: StartLine::Connect {
                version: PROTOCOL_VERSION.to_owned(),
            },
            headers: Headers::new(),
        }
    }

    /// `GNUTELLA/0.6 <code> <reason>` with no headers.
    pub fn response(code: u16, reason: &str) -> Self {
        Handshake {
            start: StartLine::Response {
                version: PROTOCOL_VERSION.to_owned(),
                code,
                reason: reason.to_owned(),
            },
            headers: Headers::new(),
        }
    }

    /// The crawler's first block: `GNUTELLA CONNECT/0.6`, `User-Agent` and `Crawler: 0.1`.
    /// Nothing else: the crawler claims no role, offers no compression (it reads the reply and
    /// closes) and asks for nothing but the neighbour lists.
    pub fn crawler_connect(user_agent: &str) -> Self {
        let mut h = Self::connect();
        h.headers.set("User-Agent", user_agent);
        h.headers.set("Crawler", CRAWLER_VERSION);
        h
    }

    /// A servent's answer to a crawler: `GNUTELLA/0.6 200 OK`, `User-Agent`, `X-Ultrapeer`,
    /// `Peers` (always, perhaps empty) and, from an ultrapeer only, `Leaves`.
    pub fn crawler_reply(reply: &CrawlerReply) -> Self {
        let mut h = Self::response(200, "OK");
        h.headers.set("User-Agent", &reply.user_agent);
        h.headers
            .set("X-Ultrapeer", if reply.ultrapeer { "True" } else { "False" });
        h.headers.set("Peers", &format_peer_list(&reply.peers));
        if reply.ultrapeer {
            h.headers.set("Leaves", &format_peer_list(&reply.leaves));
        }
        h
    }

    /// The status code of a response block; `None` for a connect block.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Connect { .. } => None,
        }
    }

    /// The wire bytes: start line, one `Name: value` line per field, blank line, all ended by
    /// `\r\n`. Refused when the block would not decode back to `self`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        // `write!` into a String cannot fail: its results are ignored below.
        let mut out = String::new();
        match &self.start {
            StartLine::Connect { version } => {
                check_version(version)?;
                let _ = write!(out, "GNUTELLA CONNECT/{version}\r\n");
            }
            StartLine::Response { version, code, reason } => {
                check_version(version)?;
                if *code > 999 {
                    return Err(EncodeError::StartLine("status code over 999"));
                }
                if reason.contains('\n') {
                    return Err(EncodeError::StartLine("line feed in the reason phrase"));
                }
                let _ = write!(out, "GNUTELLA/{version} {code:03}");
                if !reason.is_empty() {
                    out.push(' ');
                    out.push_str(reason);
                }
                out.push_str("\r\n");
            }
        }
        for (name, value) in self.headers.iter() {
            if !is_token(name) {
                return Err(EncodeError::HeaderName(name.to_owned()));
            }
            if value.contains('\n') || trim_ows(value).len() != value.len() {
                return Err(EncodeError::HeaderValue(name.to_owned()));
            }
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("\r\n");
        Ok(out.into_bytes())
    }
}

fn check_version(version: &str) -> Result<(), EncodeError> {
    if is_version(version) {
        Ok(())
    } else {
        Err(EncodeError::StartLine("version is not digits and dots"))
    }
}
