//! BEP 42 node-id checks: a node id must start with 21 bits of CRC-32C over the node's masked IP
//! address and a random 3-bit `r`, and its last byte is the random byte whose low bits are `r`.

use std::net::IpAddr;

use super::NodeId;

/// The outcome of [`bep42_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bep42 {
    /// The id's first 21 bits match the address and the id's last byte.
    Valid,
    /// They do not: the id was not derived from this address (a Sybil signal, or an old client).
    Invalid,
    /// The address is exempt from the check (see [`bep42_exempt`]).
    Exempt,
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Whether BEP 42 exempts `ip`: the IPv4 ranges it lists (10/8, 172.16/12, 192.168/16,
/// 169.254/16, 127/8), and their IPv6 counterparts (loopback, fe80::/10 link-local,
/// fc00::/7 unique local), plus the unspecified addresses.
pub fn bep42_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || (first & 0xffc0) == 0xfe80 || (first & 0xfe00) == 0xfc00
        }
    }
}

/// The first three bytes a valid id for `ip` with random byte `rand` starts with; only the top
/// 5 bits of the third byte are fixed (its low 3 bits are random and are returned as 0).
pub fn bep42_prefix(ip: IpAddr, rand: u8) -> [u8; 3] {
    const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
    const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];
    let mut buf = [0u8; 8];
    let n = match ip {
        IpAddr::V4(v4) => {
            for (i, (o, m)) in v4.octets().iter().zip(V4_MASK).enumerate() {
                buf[i] = o & m;
            }
            4
        }
        IpAddr::V6(v6) => {
            for (i, (o, m)) in v6.octets().iter().zip(V6_MASK).enumerate() {
                buf[i] = o & m;
            }
            8
        }
    };
    buf[0] |= (rand & 0x7) << 5;
    let crc = crc32c(&buf[..n]).to_be_bytes();
    [crc[0], crc[1], crc[2] & 0xf8]
}

/// Checks `id` against the address `ip` it was seen at. The random byte is the id's last byte.
pub fn bep42_check(ip: IpAddr, id: &NodeId) -> Bep42 {
    if bep42_exempt(ip) {
        return Bep42::Exempt;
    }
    let want = bep42_prefix(ip, id.0[19]);
    if id.0[0] == want[0] && id.0[1] == want[1] && id.0[2] & 0xf8 == want[2] {
        Bep42::Valid
    } else {
        Bep42::Invalid
    }
}
