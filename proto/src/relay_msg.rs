//! Relay messages: what travels inside a RELAY cell once the onion layers are removed.
//!
//! A relay cell's 509-byte payload is a 16-byte authentication tag followed by a 493-byte
//! sealed body (see [`crate::layer`]). The body, once opened, is
//! `command(1) stream_id(2) length(2) data(length) padding`, with random padding up to
//! [`RELAY_BODY_LEN`]. Command numbers and message bodies follow Tor's tor-spec where Tor has
//! the message (BEGIN's `host:port\0flags`, END reasons, EXTEND2 link specifiers, RESOLVED
//! answers).

use crate::cell::{Create2, Created2};
use crate::codec::{DecodeError, Reader, Writer, put_socket_addr, read_socket_addr};
use crate::random;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes of a relay body (payload minus the 16-byte tag).
pub const RELAY_BODY_LEN: usize = crate::cell::PAYLOAD_LEN - crate::layer::TAG_LEN;
/// Bytes of the relay header: command, stream id, length.
pub const RELAY_HEADER_LEN: usize = 5;
/// Most data bytes one relay cell carries.
pub const MAX_DATA_LEN: usize = RELAY_BODY_LEN - RELAY_HEADER_LEN;
/// Longest hostname accepted in BEGIN or RESOLVE (DNS's own limit).
pub const MAX_HOSTNAME_LEN: usize = 255;

/// A stream on a circuit; 0 means "the circuit itself" (circuit SENDME, EXTEND2...).
pub type StreamId = u16;

/// Where a stream should go: a hostname the exit resolves, or an address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum TargetHost {
    /// A DNS name, forwarded unresolved and resolved only by the exit.
    Name(String),
    /// A literal address.
    Ip(IpAddr),
}

impl std::fmt::Debug for TargetHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destinations are private: Debug output ends up in logs.
        f.write_str("[scrubbed]")
    }
}

impl TargetHost {
    /// Parses a host as written in BEGIN (`[v6]`, dotted v4, or a name).
    pub fn parse(host: &str) -> Result<Self, DecodeError> {
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .map(|a| TargetHost::Ip(a.into()))
                .map_err(|_| DecodeError::invalid("target host", "bad IPv6 literal"));
        }
        if let Ok(a) = host.parse::<Ipv4Addr>() {
            return Ok(TargetHost::Ip(a.into()));
        }
        validate_hostname(host)?;
        Ok(TargetHost::Name(host.to_owned()))
    }

    fn write(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = match self {
            TargetHost::Name(n) => write!(out, "{n}"),
            TargetHost::Ip(IpAddr::V4(a)) => write!(out, "{a}"),
            TargetHost::Ip(IpAddr::V6(a)) => write!(out, "[{a}]"),
        };
    }
}

/// Checks that a hostname is plausible DNS: 1..=255 bytes of letters, digits, `-`, `_`, `.`.
pub fn validate_hostname(host: &str) -> Result<(), DecodeError> {
    if host.is_empty() || host.len() > MAX_HOSTNAME_LEN {
        return Err(DecodeError::invalid("hostname", "empty or longer than 255 bytes"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(DecodeError::invalid("hostname", "characters outside [A-Za-z0-9._-]"));
    }
    Ok(())
}

/// Host and port of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host.
    pub host: TargetHost,
    /// The TCP port.
    pub port: u16,
}

/// Why a stream ended (Tor's numbering). Each maps to a SOCKS reply in the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Unspecified failure.
    Misc,
    /// The exit could not resolve the hostname.
    ResolveFailed,
    /// The destination refused the connection.
    ConnectRefused,
    /// The exit's policy does not allow this destination.
    ExitPolicy,
    /// The circuit is being destroyed.
    Destroy,
    /// The stream closed normally.
    Done,
    /// Connecting or resolving timed out.
    Timeout,
    /// No route to the destination.
    NoRoute,
    /// The exit is hibernating.
    Hibernating,
    /// Internal error at the exit.
    Internal,
    /// The exit is out of resources.
    ResourceLimit,
    /// The connection was reset.
    ConnReset,
    /// The other side broke the protocol.
    Protocol,
    /// A number this implementation does not know.
    Other(u8),
}

impl EndReason {
    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Misc => 1,
            Self::ResolveFailed => 2,
            Self::ConnectRefused => 3,
            Self::ExitPolicy => 4,
            Self::Destroy => 5,
            Self::Done => 6,
            Self::Timeout => 7,
            Self::NoRoute => 8,
            Self::Hibernating => 9,
            Self::Internal => 10,
            Self::ResourceLimit => 11,
            Self::ConnReset => 12,
            Self::Protocol => 13,
            Self::Other(v) => v,
        }
    }

    /// From the wire byte; unknown numbers are kept.
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Misc,
            2 => Self::ResolveFailed,
            3 => Self::ConnectRefused,
            4 => Self::ExitPolicy,
            5 => Self::Destroy,
            6 => Self::Done,
            7 => Self::Timeout,
            8 => Self::NoRoute,
            9 => Self::Hibernating,
            10 => Self::Internal,
            11 => Self::ResourceLimit,
            12 => Self::ConnReset,
            13 => Self::Protocol,
            v => Self::Other(v),
        }
    }
}

/// One answer in RESOLVED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedAnswer {
    /// An address, with its time to live in seconds.
    Addr(IpAddr, u32),
    /// A name (reverse lookups), with its TTL.
    Hostname(String, u32),
    /// The lookup failed but may succeed later.
    TransientError,
    /// The lookup failed for good.
    NonTransientError,
}

/// Where EXTEND2 asks the circuit to go next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extend2 {
    /// The next relay's OR address.
    pub addr: SocketAddr,
    /// The next relay's Ed25519 identity; the link must be bound to it.
    pub identity: [u8; 32],
    /// The handshake to forward in CREATE2.
    pub create: Create2,
}

/// A relay message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMsg {
    /// Open a stream to `target` (sent to the exit).
    Begin {
        /// Destination.
        target: Target,
        /// Tor's BEGIN flags (IPv6 okay/preferred...), kept as sent.
        flags: u32,
    },
    /// Stream payload.
    Data(Vec<u8>),
    /// The stream is closed.
    End(EndReason),
    /// The exit connected the stream (address it connected to, if it says).
    Connected(Option<(IpAddr, u32)>),
    /// Window credit: stream id 0 for the circuit window, else the stream's.
    Sendme,
    /// Extend the circuit by one hop.
    Extend2(Extend2),
    /// The extension succeeded: the next hop's handshake reply.
    Extended2(Created2),
    /// Tear down the circuit beyond this hop.
    Truncate,
    /// The circuit beyond this hop was torn down.
    Truncated(u8),
    /// Long-range padding, dropped by the hop it is sealed for.
    Drop,
    /// Ask the exit to resolve a name.
    Resolve(String),
    /// The exit's answers.
    Resolved(Vec<ResolvedAnswer>),
}

impl RelayMsg {
    /// Tor's command number.
    pub fn command(&self) -> u8 {
        match self {
            RelayMsg::Begin { .. } => 1,
            RelayMsg::Data(_) => 2,
            RelayMsg::End(_) => 3,
            RelayMsg::Connected(_) => 4,
            RelayMsg::Sendme => 5,
            RelayMsg::Truncate => 8,
            RelayMsg::Truncated(_) => 9,
            RelayMsg::Drop => 10,
            RelayMsg::Resolve(_) => 11,
            RelayMsg::Resolved(_) => 12,
            RelayMsg::Extend2(_) => 14,
            RelayMsg::Extended2(_) => 15,
        }
    }
}

/// A relay message addressed to a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCell {
    /// The stream (0 for circuit-level messages).
    pub stream_id: StreamId,
    /// The message.
    pub msg: RelayMsg,
}

/// Link specifier types (tor-spec EXTEND2).
const LS_IPV4: u8 = 0;
const LS_IPV6: u8 = 1;
const LS_ED25519: u8 = 3;

impl RelayCell {
    /// Builds a cell.
    pub fn new(stream_id: StreamId, msg: RelayMsg) -> Self {
        RelayCell { stream_id, msg }
    }

    /// Encodes into a relay body with random padding. Fails if the message does not fit.
    pub fn encode(&self) -> Result<[u8; RELAY_BODY_LEN], DecodeError> {
        let mut data = Vec::with_capacity(MAX_DATA_LEN);
        match &self.msg {
            RelayMsg::Begin { target, flags } => {
                let mut s = String::new();
                target.host.write(&mut s);
                data.put(s.as_bytes());
                data.put(format!(":{}", target.port).as_bytes());
                data.put_u8(0);
                data.put_u32(*flags);
            }
            RelayMsg::Data(d) => data.put(d),
            RelayMsg::End(r) => data.put_u8(r.to_u8()),
            RelayMsg::Connected(None) => {}
            RelayMsg::Connected(Some((ip, ttl))) => {
                put_ip(&mut data, ip);
                data.put_u32(*ttl);
            }
            RelayMsg::Sendme | RelayMsg::Truncate | RelayMsg::Drop => {}
            RelayMsg::Truncated(r) => data.put_u8(*r),
            RelayMsg::Resolve(name) => {
                data.put(name.as_bytes());
                data.put_u8(0);
            }
            RelayMsg::Resolved(answers) => {
                for a in answers {
                    match a {
                        ResolvedAnswer::Addr(IpAddr::V4(v4), ttl) => {
                            data.put_u8(4);
                            data.put_u8(4);
                            data.put(&v4.octets());
                            data.put_u32(*ttl);
                        }
                        ResolvedAnswer::Addr(IpAddr::V6(v6), ttl) => {
                            data.put_u8(6);
                            data.put_u8(16);
                            data.put(&v6.octets());
                            data.put_u32(*ttl);
                        }
                        ResolvedAnswer::Hostname(h, ttl) => {
                            data.put_u8(0);
                            data.put_string_u8(h);
                            data.put_u32(*ttl);
                        }
                        ResolvedAnswer::TransientError => {
                            data.put(&[0xF0, 0]);
                            data.put_u32(0);
                        }
                        ResolvedAnswer::NonTransientError => {
                            data.put(&[0xF1, 0]);
                            data.put_u32(0);
                        }
                    }
                }
            }
            RelayMsg::Extend2(e) => {
                let is_v4 = e.addr.is_ipv4();
                data.put_u8(2);
                data.put_u8(if is_v4 { LS_IPV4 } else { LS_IPV6 });
                data.put_u8(if is_v4 { 6 } else { 18 });
                let mut a = Vec::new();
                put_socket_addr(&mut a, &e.addr);
                data.put(&a[1..]);
                data.put_u8(LS_ED25519);
                data.put_u8(32);
                data.put(&e.identity);
                e.create.encode_into(&mut data);
            }
            RelayMsg::Extended2(c) => c.encode_into(&mut data),
        }
        if data.len() > MAX_DATA_LEN {
            return Err(DecodeError::TooLong {
                field: "relay data",
                len: data.len(),
                max: MAX_DATA_LEN,
            });
        }
        let mut body = [0u8; RELAY_BODY_LEN];
        body[0] = self.msg.command();
        body[1..3].copy_from_slice(&self.stream_id.to_be_bytes());
        body[3..5].copy_from_slice(&(data.len() as u16).to_be_bytes());
        body[5..5 + data.len()].copy_from_slice(&data);
        random::fill(&mut body[5 + data.len()..]);
        Ok(body)
    }

    /// Decodes a relay body. Never panics; unknown commands and malformed bodies are errors.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let command = r.u8("relay command")?;
        let stream_id = r.u16("stream id")?;
        let len = usize::from(r.u16("relay length")?);
        if len > MAX_DATA_LEN {
            return Err(DecodeError::TooLong {
                field: "relay data",
                len,
                max: MAX_DATA_LEN,
            });
        }
        let data = r.take(len, "relay data")?;
        let mut r = Reader::new(data);
        let msg = match command {
            1 => {
                let nul = data
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(DecodeError::invalid("BEGIN", "no NUL after host:port"))?;
                let text = std::str::from_utf8(&data[..nul]).map_err(|_| DecodeError::invalid("BEGIN", "not UTF-8"))?;
                let (host, port) = text.rsplit_once(':').ok_or(DecodeError::invalid("BEGIN", "no port"))?;
                let port: u16 = port.parse().map_err(|_| DecodeError::invalid("BEGIN", "bad port"))?;
                let host = TargetHost::parse(host)?;
                r.take(nul + 1, "BEGIN")?;
                let flags = if r.remaining() == 0 { 0 } else { r.u32("BEGIN flags")? };
                RelayMsg::Begin {
                    target: Target { host, port },
                    flags,
                }
            }
            2 => RelayMsg::Data(r.rest().to_vec()),
            3 => RelayMsg::End(if r.remaining() == 0 {
                EndReason::Misc
            } else {
                EndReason::from_u8(r.u8("END reason")?)
            }),
            4 => {
                if r.remaining() == 0 {
                    RelayMsg::Connected(None)
                } else {
                    let ip = read_ip(&mut r)?;
                    RelayMsg::Connected(Some((ip, r.u32("CONNECTED ttl")?)))
                }
            }
            5 => RelayMsg::Sendme,
            8 => RelayMsg::Truncate,
            9 => RelayMsg::Truncated(r.u8("TRUNCATED reason")?),
            10 => RelayMsg::Drop,
            11 => {
                let name = data
                    .strip_suffix(&[0])
                    .ok_or(DecodeError::invalid("RESOLVE", "no NUL"))?;
                let name = std::str::from_utf8(name).map_err(|_| DecodeError::invalid("RESOLVE", "not UTF-8"))?;
                validate_hostname(name)?;
                r.rest();
                RelayMsg::Resolve(name.to_owned())
            }
            12 => {
                let mut answers = Vec::new();
                while r.remaining() > 0 {
                    let kind = r.u8("answer type")?;
                    let alen = usize::from(r.u8("answer length")?);
                    let value = r.take(alen, "answer value")?;
                    let ttl = r.u32("answer ttl")?;
                    answers.push(match (kind, alen) {
                        (4, 4) => {
                            ResolvedAnswer::Addr(Ipv4Addr::new(value[0], value[1], value[2], value[3]).into(), ttl)
                        }
                        (6, 16) => {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(value);
                            ResolvedAnswer::Addr(Ipv6Addr::from(o).into(), ttl)
                        }
                        (0, _) => ResolvedAnswer::Hostname(
                            String::from_utf8(value.to_vec())
                                .map_err(|_| DecodeError::invalid("RESOLVED", "name not UTF-8"))?,
                            ttl,
                        ),
                        (0xF0, 0) => ResolvedAnswer::TransientError,
                        (0xF1, 0) => ResolvedAnswer::NonTransientError,
                        _ => {
                            return Err(DecodeError::invalid("RESOLVED", "unknown answer type or length"));
                        }
                    });
                }
                RelayMsg::Resolved(answers)
            }
            14 => {
                let n = r.u8("link specifier count")?;
                let (mut addr, mut identity) = (None, None);
                for _ in 0..n {
                    let kind = r.u8("link specifier type")?;
                    let len = usize::from(r.u8("link specifier length")?);
                    let spec = r.take(len, "link specifier")?;
                    match (kind, len) {
                        (LS_IPV4, 6) => {
                            let mut b = vec![4u8];
                            b.extend_from_slice(spec);
                            addr = Some(read_socket_addr(&mut Reader::new(&b))?);
                        }
                        (LS_IPV6, 18) => {
                            let mut b = vec![6u8];
                            b.extend_from_slice(spec);
                            addr = Some(read_socket_addr(&mut Reader::new(&b))?);
                        }
                        (LS_ED25519, 32) => {
                            let mut id = [0u8; 32];
                            id.copy_from_slice(spec);
                            identity = Some(id);
                        }
                        (LS_IPV4 | LS_IPV6 | LS_ED25519, _) => {
                            return Err(DecodeError::invalid("link specifier", "wrong length"));
                        }
                        _ => {} // Unknown specifiers are skipped, as tor-spec asks.
                    }
                }
                let addr = addr.ok_or(DecodeError::invalid("EXTEND2", "no address"))?;
                let identity = identity.ok_or(DecodeError::invalid("EXTEND2", "no Ed25519 identity"))?;
                let create = Create2::read(&mut r)?;
                RelayMsg::Extend2(Extend2 { addr, identity, create })
            }
            15 => RelayMsg::Extended2(Created2::read(&mut r)?),
            _ => return Err(DecodeError::invalid("relay command", "unknown command")),
        };
        r.finish()?;
        Ok(RelayCell { stream_id, msg })
    }
}

fn put_ip(w: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => w.put(&a.octets()),
        IpAddr::V6(a) => {
            // tor-spec: 0.0.0.0, then type 6 and the IPv6 address.
            w.put(&[0, 0, 0, 0, 6]);
            w.put(&a.octets());
        }
    }
}

fn read_ip(r: &mut Reader<'_>) -> Result<IpAddr, DecodeError> {
    let v4 = Ipv4Addr::from(r.array::<4>("CONNECTED address")?);
    if !v4.is_unspecified() {
        return Ok(v4.into());
    }
    if r.u8("CONNECTED address type")? != 6 {
        return Err(DecodeError::invalid("CONNECTED", "unknown address type"));
    }
    Ok(Ipv6Addr::from(r.array::<16>("CONNECTED IPv6")?).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host() -> impl Strategy<Value = TargetHost> {
        prop_oneof![
            "[a-z][a-z0-9.-]{0,60}".prop_map(TargetHost::Name),
            any::<[u8; 4]>()
                .prop_filter("not unspecified", |b| b != &[0, 0, 0, 0])
                .prop_map(|b| TargetHost::Ip(Ipv4Addr::from(b).into())),
            any::<[u8; 16]>().prop_map(|b| TargetHost::Ip(Ipv6Addr::from(b).into())),
        ]
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>()
                .prop_filter("not unspecified", |b| b != &[0, 0, 0, 0])
                .prop_map(|b| Ipv4Addr::from(b).into()),
            any::<[u8; 16]>().prop_map(|b| Ipv6Addr::from(b).into()),
        ]
    }

    fn msg() -> impl Strategy<Value = RelayMsg> {
        prop_oneof![
            (host(), any::<u16>(), any::<u32>()).prop_map(|(host, port, flags)| RelayMsg::Begin {
                target: Target { host, port },
                flags
            }),
            proptest::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN).prop_map(RelayMsg::Data),
            (1u8..=255).prop_map(|v| RelayMsg::End(EndReason::from_u8(v))),
            proptest::option::of((ip(), any::<u32>())).prop_map(RelayMsg::Connected),
            Just(RelayMsg::Sendme),
            Just(RelayMsg::Truncate),
            any::<u8>().prop_map(RelayMsg::Truncated),
            Just(RelayMsg::Drop),
            "[a-z0-9][a-z0-9.-]{0,60}".prop_map(RelayMsg::Resolve),
            proptest::collection::vec(
                prop_oneof![
                    (ip(), any::<u32>()).prop_map(|(a, t)| ResolvedAnswer::Addr(a, t)),
                    ("[a-z]{1,30}", any::<u32>()).prop_map(|(h, t)| ResolvedAnswer::Hostname(h, t)),
                    Just(ResolvedAnswer::TransientError),
                    Just(ResolvedAnswer::NonTransientError),
                ],
                0..8
            )
            .prop_map(RelayMsg::Resolved),
            (
                any::<[u8; 4]>(),
                any::<u16>(),
                any::<[u8; 32]>(),
                proptest::collection::vec(any::<u8>(), 0..100)
            )
                .prop_map(|(a, p, id, hdata)| {
                    RelayMsg::Extend2(Extend2 {
                        addr: SocketAddr::new(Ipv4Addr::from(a).into(), p),
                        identity: id,
                        create: Create2 { htype: 3, hdata },
                    })
                }),
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(|hdata| RelayMsg::Extended2(Created2 { hdata })),
        ]
    }

    #[test]
    fn begin_uses_tor_text_form() {
        let c = RelayCell::new(
            5,
            RelayMsg::Begin {
                target: Target {
                    host: TargetHost::Name("example.org".into()),
                    port: 80,
                },
                flags: 0,
            },
        );
        let body = c.encode().unwrap();
        assert_eq!(&body[5..20], b"example.org:80\0");
        let v6 = RelayCell::new(
            5,
            RelayMsg::Begin {
                target: Target {
                    host: TargetHost::parse("[::1]").unwrap(),
                    port: 443,
                },
                flags: 0,
            },
        );
        assert_eq!(&v6.encode().unwrap()[5..15], b"[::1]:443\0");
    }

    #[test]
    fn hostile_bodies_are_errors() {
        let mut body = [0u8; RELAY_BODY_LEN];
        body[0] = 2;
        body[3..5].copy_from_slice(&1000u16.to_be_bytes());
        assert!(RelayCell::decode(&body).is_err());
        body[0] = 99;
        body[3..5].copy_from_slice(&0u16.to_be_bytes());
        assert!(RelayCell::decode(&body).is_err());
        let bad_host = RelayCell::new(1, RelayMsg::Data(b"evil host\0:80\0".to_vec()))
            .encode()
            .unwrap();
        let mut b = bad_host;
        b[0] = 1;
        assert!(RelayCell::decode(&b).is_err());
    }

    #[test]
    fn debug_output_scrubs_destinations() {
        let t = Target {
            host: TargetHost::Name("secret.example".into()),
            port: 80,
        };
        assert!(!format!("{t:?}").contains("secret"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = RelayCell::decode(&bytes);
        }

        #[test]
        fn round_trip(stream_id in any::<u16>(), msg in msg()) {
            let cell = RelayCell::new(stream_id, msg);
            let body = cell.encode().unwrap();
            prop_assert_eq!(RelayCell::decode(&body).unwrap(), cell);
        }
    }
}
