//! Magnet links for v1 torrents (BEP 9): `magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker>&x.pe=<peer>`.
//!
//! Parsing: the info-hash is 40 hex or 32 base32 characters (either case); `xt` may be repeated
//! (also as `xt.1`, `xt.2`, …) but all `urn:btih:` values must agree, and other URNs (such as v2
//! `urn:btmh:`) are ignored. `tr` and `x.pe` may be repeated, in order. Values are
//! percent-decoded and must be UTF-8; in `dn` only, `+` also means a space (as web forms
//! write it). Parameters not listed here are ignored.
//!
//! Formatting ([`Magnet`]'s `Display`) percent-encodes every byte outside RFC 3986's unreserved
//! set, so `parse(format(m)) == m`.

use std::fmt;
use std::net::SocketAddr;

use thiserror::Error;

use crate::infohash::{InfoHash, InfoHashError};
use crate::tracker::http::percent_decode;

/// A peer address from `x.pe`: `ip:port`, `[ipv6]:port` or `hostname:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A literal IP address and port.
    Ip(SocketAddr),
    /// A host name (not resolved here) and port.
    Host {
        /// The name.
        name: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(a) => write!(f, "{a}"),
            PeerAddr::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

impl std::str::FromStr for PeerAddr {
    type Err = MagnetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(PeerAddr::Ip(a));
        }
        let bad = || MagnetError::BadPeer(s.to_string());
        let (name, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        // `SocketAddr` refuses some ports it could read (such as `06881`): the address is still an IP.
        let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
            return Ok(PeerAddr::Ip(SocketAddr::new(ip, port)));
        }
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !name_ok {
            return Err(bad());
        }
        Ok(PeerAddr::Host {
            name: name.to_string(),
            port,
        })
    }
}

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info-hash (`xt=urn:btih:`).
    pub info_hash: InfoHash,
    /// `dn`, the display name (the first one, if repeated).
    pub display_name: Option<String>,
    /// Every `tr`, in order.
    pub trackers: Vec<String>,
    /// Every `x.pe`, in order.
    pub peers: Vec<PeerAddr>,
}

/// Why a magnet link was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    #[error("not a magnet link (no `magnet:?` prefix)")]
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    #[error("no `xt=urn:btih:` info-hash")]
    MissingInfoHash,
    /// Two `urn:btih:` values that differ.
    #[error("two different `urn:btih:` info-hashes")]
    ConflictingInfoHash,
    /// The info-hash text is malformed.
    #[error("bad info-hash: {0}")]
    InfoHash(#[from] InfoHashError),
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding in parameter {0}")]
    BadPercent(String),
    /// A decoded value that is not UTF-8.
    #[error("parameter {0} is not UTF-8 once decoded")]
    NotUtf8(String),
    /// An `x.pe` value that is not `host:port`.
    #[error("bad peer address {0:?}")]
    BadPeer(String),
}

impl Magnet {
    /// A magnet link with only the info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// Parses a magnet link.
    pub fn parse(text: &str) -> Result<Self, MagnetError> {
        let query = text
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("magnet:?"))
            .and_then(|_| text.get(8..))
            .ok_or(MagnetError::NotMagnet)?;
        let mut info_hash = None;
        let mut out = Magnet::new(InfoHash([0; 20]));
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = param.split_once('=').unwrap_or((param, ""));
            let value = |plus_is_space| decode(raw, key, plus_is_space);
            match key {
                "xt" => xt(&value(false)?, &mut info_hash)?,
                k if k.starts_with("xt.") => xt(&value(false)?, &mut info_hash)?,
                "dn" => {
                    let dn = value(true)?;
                    out.display_name.get_or_insert(dn);
                }
                "tr" => out.trackers.push(value(false)?),
                "x.pe" => out.peers.push(value(false)?.parse()?),
                _ => {}
            }
        }
        out.info_hash = info_hash.ok_or(MagnetError::MissingInfoHash)?;
        Ok(out)
    }
}

fn xt(value: &str, info_hash: &mut Option<InfoHash>) -> Result<(), MagnetError> {
    let Some(hash) = value
        .get(..9)
        .filter(|p| p.eq_ignore_ascii_case("urn:btih:"))
        .and_then(|_| value.get(9..))
    else {
        return Ok(());
    };
    let hash = InfoHash::parse(hash)?;
    match info_hash {
        Some(h) if *h != hash => Err(MagnetError::ConflictingInfoHash),
        _ => {
            *info_hash = Some(hash);
            Ok(())
        }
    }
}

fn decode(raw: &str, key: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let out = percent_decode(raw, plus_is_space).ok_or_else(|| MagnetError::BadPercent(key.to_string()))?;
    String::from_utf8(out).map_err(|_| MagnetError::NotUtf8(key.to_string()))
}

fn encode(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(dn) = &self.display_name {
            f.write_str("&dn=")?;
            encode(f, dn)?;
        }
        for tr in &self.trackers {
            f.write_str("&tr=")?;
            encode(f, tr)?;
        }
        for pe in &self.peers {
            f.write_str("&x.pe=")?;
            encode(f, &pe.to_string())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Magnet::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn full_link_with_repeated_trackers_and_peers() {
        let m = Magnet::parse(
            "magnet:?xt=urn:btih:C12FE1C06BBA254A9DC9F519B335AA7C1367A88A&dn=Big+Buck%20Bunny\
             &tr=udp%3A%2F%2Ftracker.example%3A1337&tr=http://t.example/announce?x=1%26y\
             &x.pe=10.0.0.1:6881&x.pe=%5B2001%3Adb8%3A%3A1%5D%3A51413&x.pe=peer.example:6881&ws=ignored",
        )
        .unwrap();
        assert_eq!(m.info_hash.to_hex(), HEX);
        assert_eq!(m.display_name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(
            m.trackers,
            ["udp://tracker.example:1337", "http://t.example/announce?x=1&y"]
        );
        assert_eq!(
            m.peers,
            [
                PeerAddr::Ip("10.0.0.1:6881".parse().unwrap()),
                PeerAddr::Ip("[2001:db8::1]:51413".parse().unwrap()),
                PeerAddr::Host {
                    name: "peer.example".into(),
                    port: 6881
                },
            ]
        );
    }

    #[test]
    fn base32_hash_and_repeated_xt() {
        let b32 = InfoHash::parse(HEX).unwrap().to_base32();
        let m = Magnet::parse(&format!(
            "MAGNET:?xt=urn:btih:{b32}&xt.1=urn:btmh:1220abcd&xt.2=urn:btih:{HEX}"
        ))
        .unwrap();
        assert_eq!(m.info_hash.to_hex(), HEX);
        assert_eq!(m, Magnet::new(m.info_hash));
    }

    #[test]
    fn errors_are_specific() {
        use MagnetError::*;
        let other = "0".repeat(40);
        let cases = [
            ("http://x", NotMagnet),
            ("magnet:", NotMagnet),
            ("magnet:?dn=x", MissingInfoHash),
            ("magnet:?xt=urn:btmh:1220ab", MissingInfoHash),
            ("magnet:?xt=urn:btih:abc", InfoHash(InfoHashError::Length(3))),
            (
                &format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}"),
                ConflictingInfoHash,
            ),
            (&format!("magnet:?xt=urn:btih:{HEX}&dn=%4"), BadPercent("dn".into())),
            (&format!("magnet:?xt=urn:btih:{HEX}&dn=%zz"), BadPercent("dn".into())),
            (&format!("magnet:?xt=urn:btih:{HEX}&tr=%ff"), NotUtf8("tr".into())),
            (&format!("magnet:?xt=urn:btih:{HEX}&x.pe=host"), BadPeer("host".into())),
            (
                &format!("magnet:?xt=urn:btih:{HEX}&x.pe=h%20st:1"),
                BadPeer("h st:1".into()),
            ),
            (&format!("magnet:?xt=urn:btih:{HEX}&x.pe=:1"), BadPeer(":1".into())),
            (
                &format!("magnet:?xt=urn:btih:{HEX}&x.pe=h:70000"),
                BadPeer("h:70000".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Magnet::parse(text), Err(want), "{text}");
        }
        // An IP with a port `SocketAddr` refuses is still an IP (found by the fuzzer).
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=30.0.0.1:06881&x.pe=[::1]:01")).unwrap();
        assert_eq!(
            m.peers,
            [
                PeerAddr::Ip("30.0.0.1:6881".parse().unwrap()),
                PeerAddr::Ip("[::1]:1".parse().unwrap())
            ]
        );
        // A multi-byte character where the prefix would end is refused, not sliced through.
        assert_eq!(Magnet::parse("magnet:é"), Err(NotMagnet));
    }

    #[test]
    fn formats_percent_encoded() {
        let mut m = Magnet::new(InfoHash::parse(HEX).unwrap());
        m.display_name = Some("a b+c/é".into());
        m.trackers.push("udp://t:1".into());
        m.peers.push(PeerAddr::Host {
            name: "p".into(),
            port: 2,
        });
        assert_eq!(
            m.to_string(),
            format!("magnet:?xt=urn:btih:{HEX}&dn=a%20b%2Bc%2F%C3%A9&tr=udp%3A%2F%2Ft%3A1&x.pe=p%3A2")
        );
    }

    fn arb_peer() -> impl Strategy<Value = PeerAddr> {
        prop_oneof![
            (any::<std::net::IpAddr>(), any::<u16>()).prop_map(|(ip, port)| PeerAddr::Ip(SocketAddr::new(ip, port))),
            ("[a-z][a-z0-9.-]{0,20}", any::<u16>()).prop_map(|(name, port)| PeerAddr::Host { name, port }),
        ]
    }

    fn arb_magnet() -> impl Strategy<Value = Magnet> {
        (
            any::<[u8; 20]>(),
            proptest::option::of("\\PC{0,24}"),
            proptest::collection::vec("\\PC{0,24}", 0..4),
            proptest::collection::vec(arb_peer(), 0..4),
        )
            .prop_map(|(h, display_name, trackers, peers)| Magnet {
                info_hash: InfoHash(h),
                display_name,
                trackers,
                peers,
            })
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(m in arb_magnet()) {
            prop_assert_eq!(Magnet::parse(&m.to_string()), Ok(m));
        }

        #[test]
        fn parse_never_panics(s in "magnet:\\?[a-z.=&%0-9A-F:+\\PC]{0,80}") {
            let _ = Magnet::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_any_text(s in "\\PC{0,80}") {
            let _ = Magnet::parse(&s);
        }
    }
}
