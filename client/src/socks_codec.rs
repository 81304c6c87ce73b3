//! SOCKS5 requests and replies (RFC 1928 §4–6) with Tor's RESOLVE extension, without I/O.
//!
//! A request is `VER=5 CMD RSV ATYP ADDR PORT`; ADDR is 4 bytes (ATYP 1), a length-prefixed
//! name (ATYP 3) or 16 bytes (ATYP 4). Commands: CONNECT (1) and Tor's RESOLVE (0xF0), which
//! asks for a name's address and gets it back in the reply's BND.ADDR (Tor's socks-extensions).
//! Every other command (BIND, UDP ASSOCIATE, Tor's RESOLVE_PTR) is refused with reply 7: exits
//! do not do reverse lookups, and nothing here relays UDP.
//!
//! [`decode_request`] reads no further than the request's own length (the driver reads exactly
//! that much, so nothing the application sends after it is swallowed), says how many bytes it
//! still needs, and never panics. Names are kept as given: this codec does not resolve anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use thiserror::Error;

/// The SOCKS version byte.
pub const VERSION: u8 = 5;
/// Longest request: header, a 255-byte name with its length byte, port.
pub const MAX_REQUEST_LEN: usize = 4 + 1 + 255 + 2;

const CMD_CONNECT: u8 = 1;
const CMD_RESOLVE: u8 = 0xF0;
const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// What the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Open a TCP stream to the address.
    Connect,
    /// Tor's RESOLVE: answer the name's address in the reply.
    Resolve,
}

/// The address of a request, as sent.
#[derive(Clone, PartialEq, Eq)]
pub enum Address {
    /// ATYP 1 or 4.
    Ip(IpAddr),
    /// ATYP 3: a name, to be resolved by an exit (bytes as sent; at most 255).
    Name(Vec<u8>),
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destinations are private: Debug output ends up in logs.
        f.write_str("[scrubbed]")
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// The destination (or the name to resolve).
    pub address: Address,
    /// The destination port (ignored by RESOLVE).
    pub port: u16,
}

/// Reply codes (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    /// Done.
    Succeeded = 0,
    /// Anything else.
    GeneralFailure = 1,
    /// Not allowed by a ruleset (an exit policy).
    NotAllowed = 2,
    /// Network unreachable (no circuit).
    NetworkUnreachable = 3,
    /// Host unreachable (the name did not resolve).
    HostUnreachable = 4,
    /// Connection refused by the destination.
    ConnectionRefused = 5,
    /// TTL expired (used for timeouts).
    TtlExpired = 6,
    /// Command not supported.
    CommandNotSupported = 7,
    /// Address type not supported.
    AddressTypeNotSupported = 8,
}

impl Reply {
    /// From the wire byte.
    pub fn from_u8(v: u8) -> Option<Reply> {
        use Reply::*;
        [
            Succeeded,
            GeneralFailure,
            NotAllowed,
            NetworkUnreachable,
            HostUnreachable,
            ConnectionRefused,
            TtlExpired,
            CommandNotSupported,
            AddressTypeNotSupported,
        ]
        .get(usize::from(v))
        .copied()
    }
}

/// A request that cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not SOCKS5; nothing sensible can be answered.
    #[error("not a SOCKS5 request (version {0})")]
    Version(u8),
    /// A command other than CONNECT and RESOLVE.
    #[error("unsupported SOCKS command {0:#04x}")]
    Command(u8),
    /// An address type other than 1, 3, 4.
    #[error("unsupported SOCKS address type {0}")]
    AddressType(u8),
    /// A zero-length name.
    #[error("empty hostname")]
    EmptyName,
}

impl RequestError {
    /// The reply that tells the client, if any.
    pub fn reply(self) -> Option<Reply> {
        match self {
            RequestError::Version(_) => None,
            RequestError::Command(_) => Some(Reply::CommandNotSupported),
            RequestError::AddressType(_) => Some(Reply::AddressTypeNotSupported),
            RequestError::EmptyName => Some(Reply::HostUnreachable),
        }
    }
}

/// Outcome of [`decode_request`] on the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole request; it used exactly this many bytes.
    Request(Request, usize),
    /// At least this many bytes in total are needed.
    NeedMore(usize),
}

/// Decodes a request from the start of `buf`.
pub fn decode_request(buf: &[u8]) -> Result<Decoded, RequestError> {
    let Some(&[version, command, _reserved, atyp]) = buf.first_chunk::<4>() else {
        // Check what can be checked early.
        if let Some(&v) = buf.first()
            && v != VERSION
        {
            return Err(RequestError::Version(v));
        }
        return Ok(Decoded::NeedMore(4));
    };
    if version != VERSION {
        return Err(RequestError::Version(version));
    }
    let command = match command {
        CMD_CONNECT => Command::Connect,
        CMD_RESOLVE => Command::Resolve,
        other => return Err(RequestError::Command(other)),
    };
    let (addr_start, addr_len) = match atyp {
        ATYP_V4 => (4, 4),
        ATYP_V6 => (4, 16),
        ATYP_NAME => match buf.get(4) {
            None => return Ok(Decoded::NeedMore(5)),
            Some(0) => return Err(RequestError::EmptyName),
            Some(&n) => (5, usize::from(n)),
        },
        other => return Err(RequestError::AddressType(other)),
    };
    let total = addr_start + addr_len + 2;
    let Some(rest) = buf.get(addr_start..total) else {
        return Ok(Decoded::NeedMore(total));
    };
    let (addr, port) = rest.split_at(addr_len);
    let address = match atyp {
        ATYP_V4 => Address::Ip(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(addr).unwrap_or_default(),
        ))),
        ATYP_V6 => Address::Ip(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(addr).unwrap_or_default(),
        ))),
        _ => Address::Name(addr.to_vec()),
    };
    let port = u16::from_be_bytes([port[0], port[1]]);
    Ok(Decoded::Request(Request { command, address, port }, total))
}

fn put_address(out: &mut Vec<u8>, address: &Address) -> Option<()> {
    match address {
        Address::Ip(IpAddr::V4(a)) => {
            out.push(ATYP_V4);
            out.extend_from_slice(&a.octets());
        }
        Address::Ip(IpAddr::V6(a)) => {
            out.push(ATYP_V6);
            out.extend_from_slice(&a.octets());
        }
        Address::Name(n) => {
            out.push(ATYP_NAME);
            out.push(u8::try_from(n.len()).ok().filter(|l| *l > 0)?);
            out.extend_from_slice(n);
        }
    }
    Some(())
}

/// Encodes a request (None if the name is empty or longer than 255 bytes).
pub fn encode_request(request: &Request) -> Option<Vec<u8>> {
    let command = match request.command {
        Command::Connect => CMD_CONNECT,
        Command::Resolve => CMD_RESOLVE,
    };
    let mut out = vec![VERSION, command, 0];
    put_address(&mut out, &request.address)?;
    out.extend_from_slice(&request.port.to_be_bytes());
    Some(out)
}

/// Encodes a reply with `bound` as BND.ADDR and BND.PORT (the resolved address for RESOLVE,
/// `0.0.0.0:0` otherwise).
pub fn encode_reply(reply: Reply, bound: SocketAddr) -> Vec<u8> {
    let mut out = vec![VERSION, reply as u8, 0];
    // An IP address always encodes.
    let _ = put_address(&mut out, &Address::Ip(bound.ip()));
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

/// Decodes a reply with an address bound (what SOCKS clients read; for tests and tools).
/// Returns the code, the bound address and the bytes used, or None if incomplete or invalid.
pub fn decode_reply(buf: &[u8]) -> Option<(Reply, SocketAddr, usize)> {
    let &[version, code, _reserved, atyp] = buf.first_chunk::<4>()?;
    if version != VERSION {
        return None;
    }
    let reply = Reply::from_u8(code)?;
    let (ip, len) = match atyp {
        ATYP_V4 => (IpAddr::V4(Ipv4Addr::from(*buf.get(4..8)?.first_chunk::<4>()?)), 4),
        ATYP_V6 => (IpAddr::V6(Ipv6Addr::from(*buf.get(4..20)?.first_chunk::<16>()?)), 16),
        _ => return None,
    };
    let port = buf.get(4 + len..6 + len)?;
    Some((
        reply,
        SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])),
        6 + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> impl Strategy<Value = Request> {
        let address = prop_oneof![
            any::<[u8; 4]>().prop_map(|a| Address::Ip(Ipv4Addr::from(a).into())),
            any::<[u8; 16]>().prop_map(|a| Address::Ip(Ipv6Addr::from(a).into())),
            proptest::collection::vec(any::<u8>(), 1..=255).prop_map(Address::Name),
        ];
        (
            prop_oneof![Just(Command::Connect), Just(Command::Resolve)],
            address,
            any::<u16>(),
        )
            .prop_map(|(command, address, port)| Request { command, address, port })
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_request(&bytes);
            let _ = decode_reply(&bytes);
        }

        #[test]
        fn request_round_trip(req in request(), extra in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = encode_request(&req).unwrap();
            let len = bytes.len();
            prop_assert!(len <= MAX_REQUEST_LEN);
            // Every strict prefix asks for more, and never for more than the whole.
            for cut in 0..len {
                match decode_request(&bytes[..cut]).unwrap() {
                    Decoded::NeedMore(n) => prop_assert!(n > cut && n <= len),
                    other => prop_assert!(false, "prefix decoded: {other:?}"),
                }
            }
            // Bytes after the request are not consumed.
            bytes.extend_from_slice(&extra);
            prop_assert_eq!(decode_request(&bytes).unwrap(), Decoded::Request(req, len));
        }

        #[test]
        fn reply_round_trip(code in 0u8..9, ip in any::<[u8; 16]>(), v4 in any::<bool>(), port in any::<u16>()) {
            let ip: IpAddr = if v4 { Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).into() } else { Ipv6Addr::from(ip).into() };
            let reply = Reply::from_u8(code).unwrap();
            let bytes = encode_reply(reply, SocketAddr::new(ip, port));
            prop_assert_eq!(decode_reply(&bytes), Some((reply, SocketAddr::new(ip, port), bytes.len())));
        }
    }

    #[test]
    fn known_requests() {
        // curl --socks5-hostname: CONNECT example.org:80.
        let mut b = vec![5, 1, 0, 3, 11];
        b.extend_from_slice(b"example.org");
        b.extend_from_slice(&[0, 80]);
        let Ok(Decoded::Request(r, 18)) = decode_request(&b) else {
            panic!("not decoded")
        };
        assert_eq!(r.command, Command::Connect);
        assert_eq!(r.address, Address::Name(b"example.org".to_vec()));
        assert_eq!(r.port, 80);
        // tor-resolve: RESOLVE with port 0.
        b[1] = 0xF0;
        assert!(matches!(
            decode_request(&b),
            Ok(Decoded::Request(
                Request {
                    command: Command::Resolve,
                    ..
                },
                18
            ))
        ));
        // Refusals with the reply they deserve.
        assert_eq!(decode_request(&[5, 2, 0, 1]), Err(RequestError::Command(2)));
        assert_eq!(decode_request(&[5, 0xF1, 0, 1]), Err(RequestError::Command(0xF1)));
        assert_eq!(decode_request(&[5, 1, 0, 9]), Err(RequestError::AddressType(9)));
        assert_eq!(decode_request(&[5, 1, 0, 3, 0]), Err(RequestError::EmptyName));
        assert_eq!(decode_request(&[4]), Err(RequestError::Version(4)));
        assert_eq!(RequestError::Command(2).reply(), Some(Reply::CommandNotSupported));
        assert_eq!(RequestError::Version(4).reply(), None);
        // A RESOLVE answer carries the address.
        assert_eq!(
            encode_reply(Reply::Succeeded, "10.1.2.3:0".parse().unwrap()),
            vec![5, 0, 0, 1, 10, 1, 2, 3, 0, 0]
        );
        assert_eq!(Reply::from_u8(9), None);
    }
}
