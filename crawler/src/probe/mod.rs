//! The tokio drivers: the codecs of [`crate::tracker`] and [`crate::peerwire`] spoken over real
//! sockets, every exchange run as an [`Engine`] probe so that it is polite, bounded in time and
//! recorded as [`Visit`](crate::observe::Visit)s.
//!
//! - [`http`]: a minimal HTTP/1.1 GET client (IP literals and host names, `Content-Length`,
//!   chunked and close-delimited bodies, every read capped).
//! - [`http_tracker`] and [`udp_tracker`]: announce and scrape over HTTP (BEP 3/23/48) and UDP
//!   (BEP 15, with cached connection ids and the `15 * 2^n` retransmission schedule);
//!   [`tracker`] picks one by the URL's scheme. Every announce records a
//!   [`Sighting`](crate::observe::Sighting) per peer it returns.
//! - [`peer`]: one peer wire session (handshake, BEP 10 extension handshake, pieces held, PEX),
//!   with its operations in [`metadata`] (BEP 9 `ut_metadata` fetch) and [`piece`] (a verified
//!   piece download).
//! - [`onion_directory`]: an onion directory authority's view of the consensus (a relay
//!   census), recorded as a sighting per relay listed or left out.
//!
//! A driver never trusts the remote: every read has a size limit and runs under the engine's
//! per-attempt timeout (or a shorter one of its own); malformed input ends the attempt as
//! [`Outcome::ProtocolError`](crate::observe::Outcome::ProtocolError), never as a panic.

pub mod http;
pub mod http_tracker;
pub mod metadata;
pub mod onion_directory;
pub mod peer;
pub mod piece;
pub mod tracker;
pub mod udp_tracker;

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use crate::engine::{ProbeError, Recorder};
use crate::infohash::InfoHash;
use crate::observe::{Observation, Outcome, Sighting, SourceKind, now_micros};
use crate::tracker::PeerId;
use crate::tracker::http::{Peer, PeerAddr};

/// Why a driver call did not produce its answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be made at all: an unusable URL or scheme, an operation the peer
    /// did not offer, a piece it does not hold. Nothing was sent and no visit was recorded.
    #[error("{0}")]
    Unusable(String),
    /// The probe ran and failed; each attempt is recorded as a visit.
    #[error("{0}")]
    Probe(#[from] ProbeError),
    /// A piece arrived whole but failed its SHA-1 check: its visit says `protocol_error` and
    /// its [`PieceCheck`](crate::observe::PieceCheck) says `ok: false`.
    #[error("piece {piece} failed its SHA-1 check")]
    BadPiece {
        /// The piece index.
        piece: u32,
    },
}

impl Error {
    /// The outcome recorded for the last attempt, if a probe ran.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Error::Unusable(_) => None,
            Error::Probe(e) => Some(e.outcome),
            Error::BadPiece { .. } => Some(Outcome::ProtocolError),
        }
    }
}

/// 64 unpredictable bits (SipHash of a counter under the process's random key): transaction
/// ids, peer ids and piece sampling need no more than that.
pub(crate) fn random_u64() -> u64 {
    static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    KEY.get_or_init(std::hash::RandomState::new)
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh Azureus-style peer id, `-OL0001-` and 12 random alphanumerics.
pub fn random_peer_id() -> PeerId {
    const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut id = *b"-OL0001-000000000000";
    for b in &mut id[8..] {
        // 62 does not divide 2^64 evenly; the bias is below 2^-58.
        *b = ALPHABET[(random_u64() % 62) as usize];
    }
    id
}

/// Resolves a tracker host name (or parses an IP literal) to its first address.
///
/// The crawler may resolve tracker names, unlike the onion client (whose policy the
/// workspace's `disallowed-methods` lint encodes). Peer addresses are never resolved.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ProbeError> {
    if let Ok(ip) = host.parse() {
        return Ok(SocketAddr::new(ip, port));
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "the crawler resolves tracker host names; the no-local-DNS rule is the onion client's"
    )]
    let found = tokio::net::lookup_host((host, port)).await;
    found
        .map_err(|e| ProbeError::new(Outcome::Unreachable, format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| ProbeError::new(Outcome::Unreachable, format!("{host} has no address")))
}

/// Records one [`SourceKind::Tracker`] sighting per IP peer of an announce reply (peers given
/// by host name are not resolved and not recorded).
pub(crate) async fn record_tracker_sightings(recorder: &Recorder, url: &str, info_hash: InfoHash, peers: &[Peer]) {
    let at = now_micros();
    for p in peers {
        if let PeerAddr::Ip(addr) = p.addr {
            recorder
                .record(Observation::Sighting(Sighting {
                    at,
                    source_kind: SourceKind::Tracker,
                    source: url.to_string(),
                    source_id: None,
                    info_hash: Some(info_hash),
                    addr,
                    id: p.peer_id,
                }))
                .await;
        }
    }
}

/// Lower-case hex of raw bytes (peer ids and the like).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_azureus_style_and_differ() {
        let a = random_peer_id();
        let b = random_peer_id();
        assert_eq!(&a[..8], b"-OL0001-");
        assert!(a[8..].iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn ip_literals_resolve_without_dns() {
        assert_eq!(
            resolve("127.0.0.9", 80).await.unwrap(),
            "127.0.0.9:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve("::1", 6969).await.unwrap(),
            "[::1]:6969".parse::<SocketAddr>().unwrap()
        );
    }
}
