//! The onion network's relay list as a measurement target: the JSON view of the consensus that
//! every onionlab directory authority serves at [`CONSENSUS_VIEW_PATH`], parsed with limits.
//!
//! This is the census input of relay studies (Tor Metrics' consensus archives, Onionoo,
//! Winter et al.'s *sybilhunter*): which relays the network lists, at which addresses, with
//! which flags and bandwidths, and which relays an authority left out and why. The crawler
//! speaks it like any other public protocol and depends on no onion crate: it records what each
//! authority says and does not check the consensus signatures (the onion client does that on
//! the binary consensus before it builds a circuit).
//!
//! [`ConsensusView::parse`] refuses documents over [`MAX_VIEW_LEN`] bytes or with more than
//! [`MAX_RELAYS`] relays, malformed fingerprints and addresses, validity times out of order and
//! relays listed twice, each with a [`ViewError`], never a panic. Unknown fields are ignored
//! (a newer authority may add some). [`ConsensusView::encode`] writes the same shape back, so
//! `parse(encode(v)) == v`.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Where an authority serves the view.
pub const CONSENSUS_VIEW_PATH: &str = "/onionlab/v1/consensus.json";
/// Largest view accepted (a pretty-printed relay takes about 400 bytes).
pub const MAX_VIEW_LEN: usize = 8 << 20;
/// Most relays (listed and left out together) in one view, as in the binary consensus.
pub const MAX_RELAYS: usize = 10_000;

/// A relay's identity: its 32-byte Ed25519 key, written as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses 64 hex digits (either case).
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            *o = (hi * 16 + lo) as u8;
        }
        Some(Fingerprint(out))
    }

    /// The first 20 bytes: the id the crawler's stores and analyses keep (like Tor's 20-byte
    /// fingerprints; 160 bits tell relays apart).
    pub fn short_id(&self) -> [u8; 20] {
        let mut id = [0u8; 20];
        id.copy_from_slice(&self.0[..20]);
        id
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Fingerprint::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a fingerprint (64 hex digits)")))
    }
}

/// One relay as the view lists it (or leaves it out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    /// The operator's name for it (not unique).
    pub nickname: String,
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// Where it accepts onion connections.
    pub or_address: SocketAddr,
    /// Bandwidth it advertises (bytes/s).
    pub bandwidth: u64,
    /// Its exit policy, one rule per line.
    #[serde(default)]
    pub exit_policy: Vec<String>,
    /// Relays its operator declares as run by them too.
    #[serde(default)]
    pub family: Vec<Fingerprint>,
    /// Its consensus flags (listed relays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Why the authority left it out (left-out relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A cluster of new relays in one network prefix that the authority itself raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterAlert {
    /// The prefix (`a.b.c.0/24` or an IPv6 /48).
    pub prefix: String,
    /// New relays seen in it within the authority's window.
    pub new_relays: u64,
}

/// One authority's view of the current consensus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusView {
    /// Start of the validity period (Unix seconds).
    pub valid_after: u64,
    /// When a newer consensus is expected.
    pub fresh_until: u64,
    /// End of the validity period.
    pub valid_until: u64,
    /// Authorities whose signatures the consensus carries.
    #[serde(default)]
    pub signed_by: Vec<Fingerprint>,
    /// The authority that served this view.
    pub served_by: Fingerprint,
    /// Authorities whose votes it was computed from.
    #[serde(default)]
    pub votes_from: Vec<Fingerprint>,
    /// The authority's own Sybil alerts.
    #[serde(default)]
    pub suspicious_clusters: Vec<ClusterAlert>,
    /// The relays listed, as clients see them.
    pub relays: Vec<Relay>,
    /// Relays this authority left out, each with its reason.
    #[serde(default)]
    pub excluded: Vec<Relay>,
}

/// Why a view was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ViewError {
    /// Longer than [`MAX_VIEW_LEN`].
    #[error("consensus view of {0} bytes is over the {MAX_VIEW_LEN}-byte limit")]
    TooLong(usize),
    /// Not JSON of the view's shape (with serde_json's line and column).
    #[error("malformed consensus view: {0}")]
    Malformed(String),
    /// More relays than [`MAX_RELAYS`].
    #[error("consensus view lists {0} relays, over the limit of {MAX_RELAYS}")]
    TooManyRelays(usize),
    /// `valid_after <= fresh_until <= valid_until` does not hold.
    #[error("validity times out of order ({valid_after}, {fresh_until}, {valid_until})")]
    TimesOutOfOrder {
        /// As given.
        valid_after: u64,
        /// As given.
        fresh_until: u64,
        /// As given.
        valid_until: u64,
    },
    /// One identity listed twice.
    #[error("relay {0} is listed twice")]
    Duplicate(Fingerprint),
}

impl ConsensusView {
    /// Parses a view within the limits of this module.
    pub fn parse(bytes: &[u8]) -> Result<ConsensusView, ViewError> {
        if bytes.len() > MAX_VIEW_LEN {
            return Err(ViewError::TooLong(bytes.len()));
        }
        let view: ConsensusView = serde_json::from_slice(bytes).map_err(|e| ViewError::Malformed(e.to_string()))?;
        let n = view.relays.len() + view.excluded.len();
        if n > MAX_RELAYS {
            return Err(ViewError::TooManyRelays(n));
        }
        if !(view.valid_after <= view.fresh_until && view.fresh_until <= view.valid_until) {
            return Err(ViewError::TimesOutOfOrder {
                valid_after: view.valid_after,
                fresh_until: view.fresh_until,
                valid_until: view.valid_until,
            });
        }
        let mut seen = BTreeSet::new();
        if let Some(r) = view.relays.iter().find(|r| !seen.insert(r.fingerprint)) {
            return Err(ViewError::Duplicate(r.fingerprint));
        }
        Ok(view)
    }

    /// The view as JSON, in the shape [`ConsensusView::parse`] reads.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs, strings and integers into memory cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
