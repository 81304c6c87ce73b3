//! Compact peer addresses, the one binary form BitTorrent uses everywhere (BEP 23 tracker
//! `peers`, BEP 7 `peers6`, BEP 5 `values` and `ip`, BEP 11 `added`): the IPv4 (4 bytes) or IPv6
//! (16 bytes) address, then the port, big-endian. 6 or 18 bytes in all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes of a compact IPv4 address with its port.
pub const V4_LEN: usize = 6;
/// Bytes of a compact IPv6 address with its port.
pub const V6_LEN: usize = 18;

/// The address in a 6- or 18-byte entry; `None` for any other length.
pub fn decode_addr(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = entry.split_at_checked(entry.len().checked_sub(2)?)?;
    let ip = match ip.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
}

/// Append the compact form of `addr` (6 bytes for IPv4, 18 for IPv6; IPv6 flow info and scope id
/// are dropped) to `out`.
pub fn encode_addr_into(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_layouts() {
        let v4: SocketAddr = "1.2.3.4:6881".parse().unwrap();
        let mut out = Vec::new();
        encode_addr_into(&v4, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 0x1a, 0xe1]);
        assert_eq!(decode_addr(&out), Some(v4));
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        out.clear();
        encode_addr_into(&v6, &mut out);
        assert_eq!(out.len(), V6_LEN);
        assert_eq!(decode_addr(&out), Some(v6));
        for len in [0, 1, 2, 5, 7, 17, 19] {
            assert_eq!(decode_addr(&vec![0; len]), None, "{len}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(a in any::<SocketAddr>()) {
            let mut out = Vec::new();
            encode_addr_into(&a, &mut out);
            let back = decode_addr(&out).unwrap();
            prop_assert_eq!((back.ip(), back.port()), (a.ip(), a.port()));
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_addr(&b);
        }
    }
}
