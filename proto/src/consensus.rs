//! The consensus: the authorities' signed list of relays, with flags and weights.
//!
//! Wire form (deterministic): `body | count(1) | (authority identity(32) | signature(64))*`.
//! Each authority signs `"onionlab consensus v1\0" | body` with Ed25519. The body is
//! `version(1)=1 valid_after(8) fresh_until(8) valid_until(8) count(2)` then each relay as a
//! [`RelayInfo`] plus `flags(2)`, relays in strictly ascending identity order (so one set of
//! relays has exactly one encoding and no relay appears twice).
//!
//! A client accepts a consensus only if it is within its validity period and carries valid
//! signatures from **more than half** of the authorities the client trusts. Signatures by
//! unknown keys are ignored; two signatures by one authority count once.

use crate::codec::{DecodeError, Reader, Writer};
use crate::descriptor::RelayInfo;
use crate::keys::{IdentityBytes, Signer, SigningKey, fingerprint, verify};
use thiserror::Error;

const SIGNATURE_CONTEXT: &[u8] = b"onionlab consensus v1\0";
const VERSION: u8 = 1;
/// Most relays in one consensus.
pub const MAX_RELAYS: usize = 10_000;
/// Most signatures on one consensus.
pub const MAX_SIGNATURES: usize = 32;
/// Largest encoded consensus a client downloads.
pub const MAX_CONSENSUS_LEN: usize = 8 * 1024 * 1024;
/// Clock skew tolerated before `valid_after`.
pub const CLOCK_SKEW: u64 = 60;

/// Relay flags, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u16);

impl Flags {
    /// Reachable at the last test.
    pub const RUNNING: Flags = Flags(1);
    /// Descriptor verified, relay not rejected.
    pub const VALID: Flags = Flags(2);
    /// Enough bandwidth for general use.
    pub const FAST: Flags = Flags(4);
    /// Long uptime.
    pub const STABLE: Flags = Flags(8);
    /// Suitable as a first hop.
    pub const GUARD: Flags = Flags(16);
    /// Exit policy allows common ports.
    pub const EXIT: Flags = Flags(32);
    /// Known bad as an exit (operator-set).
    pub const BAD_EXIT: Flags = Flags(64);

    /// Every flag with its name, in bit order.
    pub const ALL: [(Flags, &'static str); 7] = [
        (Self::RUNNING, "Running"),
        (Self::VALID, "Valid"),
        (Self::FAST, "Fast"),
        (Self::STABLE, "Stable"),
        (Self::GUARD, "Guard"),
        (Self::EXIT, "Exit"),
        (Self::BAD_EXIT, "BadExit"),
    ];

    /// True if every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// The names of the set flags.
    pub fn names(self) -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }
}

/// One relay as the consensus lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusRelay {
    /// What the relay is (bandwidth is the path-selection weight).
    pub info: RelayInfo,
    /// What the authorities say of it.
    pub flags: Flags,
}

/// The content the authorities agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consensus {
    /// Start of validity (Unix seconds).
    pub valid_after: u64,
    /// Clients should fetch a newer one after this.
    pub fresh_until: u64,
    /// Clients must not use it after this.
    pub valid_until: u64,
    /// Relays in ascending identity order.
    pub relays: Vec<ConsensusRelay>,
}

/// One authority's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoritySignature {
    /// The authority's Ed25519 identity.
    pub authority: IdentityBytes,
    /// Its signature over the body.
    pub signature: [u8; 64],
}

/// A consensus with its signatures and exact body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedConsensus {
    /// The content.
    pub consensus: Consensus,
    /// The encoded body the signatures cover.
    pub body: Vec<u8>,
    /// Signatures, in the order collected.
    pub signatures: Vec<AuthoritySignature>,
}

/// Why a consensus was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// Could not be parsed.
    #[error("malformed consensus: {0}")]
    Malformed(#[from] DecodeError),
    /// Larger than [`MAX_CONSENSUS_LEN`].
    #[error("consensus is {0} bytes, too large")]
    TooLarge(usize),
    /// Before `valid_after` (beyond clock skew).
    #[error("consensus not valid until {valid_after}, now {now}")]
    NotYetValid {
        /// Its start.
        valid_after: u64,
        /// Our clock.
        now: u64,
    },
    /// After `valid_until`.
    #[error("consensus expired at {valid_until}, now {now}")]
    Expired {
        /// Its end.
        valid_until: u64,
        /// Our clock.
        now: u64,
    },
    /// Not enough valid signatures from trusted authorities.
    #[error(
        "consensus has {valid} valid signatures from trusted authorities, needs {needed} ({unknown} by unknown keys, {bad} invalid, {duplicate} duplicate)"
    )]
    NotEnoughSignatures {
        /// Distinct trusted authorities whose signature verified.
        valid: usize,
        /// More than half of the trusted authorities.
        needed: usize,
        /// Signatures by keys not in the trusted list.
        unknown: usize,
        /// Signatures by trusted keys that did not verify.
        bad: usize,
        /// Repeated signatures by one authority.
        duplicate: usize,
    },
    /// Relays out of order or repeated.
    #[error("relay {0} is out of order or listed twice")]
    Unsorted(String),
}

impl Consensus {
    /// The deterministic body encoding (relays are sorted here).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut relays: Vec<&ConsensusRelay> = self.relays.iter().collect();
        relays.sort_by_key(|r| r.info.identity);
        let mut w = vec![VERSION];
        w.put_u64(self.valid_after);
        w.put_u64(self.fresh_until);
        w.put_u64(self.valid_until);
        w.put_u16(relays.len() as u16);
        for r in relays {
            r.info.encode_into(&mut w);
            w.put_u16(r.flags.0);
        }
        w
    }

    fn decode_body(body: &[u8]) -> Result<Self, ConsensusError> {
        let mut r = Reader::new(body);
        if r.u8("version")? != VERSION {
            return Err(DecodeError::invalid("consensus version", "unknown").into());
        }
        let valid_after = r.u64("valid-after")?;
        let fresh_until = r.u64("fresh-until")?;
        let valid_until = r.u64("valid-until")?;
        if !(valid_after <= fresh_until && fresh_until <= valid_until) {
            return Err(DecodeError::invalid("consensus lifetime", "valid-after <= fresh-until <= valid-until").into());
        }
        let n = usize::from(r.u16("relay count")?);
        if n > MAX_RELAYS {
            return Err(DecodeError::TooLong {
                field: "relays",
                len: n,
                max: MAX_RELAYS,
            }
            .into());
        }
        let mut relays: Vec<ConsensusRelay> = Vec::with_capacity(n);
        for _ in 0..n {
            let info = RelayInfo::read(&mut r)?;
            let flags = Flags(r.u16("flags")?);
            if relays.last().is_some_and(|prev| prev.info.identity >= info.identity) {
                return Err(ConsensusError::Unsorted(fingerprint(&info.identity)));
            }
            relays.push(ConsensusRelay { info, flags });
        }
        r.finish()?;
        Ok(Consensus {
            valid_after,
            fresh_until,
            valid_until,
            relays,
        })
    }

    /// The relay with this identity, if listed.
    pub fn relay(&self, id: &IdentityBytes) -> Option<&ConsensusRelay> {
        self.relays
            .binary_search_by_key(id, |r| r.info.identity)
            .ok()
            .map(|i| &self.relays[i])
    }
}

impl SignedConsensus {
    /// Wraps a consensus with no signatures yet (relays are sorted).
    pub fn new(mut consensus: Consensus) -> Self {
        consensus.relays.sort_by_key(|r| r.info.identity);
        let body = consensus.encode_body();
        SignedConsensus {
            consensus,
            body,
            signatures: Vec::new(),
        }
    }

    /// Adds a signature by `key`.
    pub fn add_signature(&mut self, key: &SigningKey) {
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(&self.body);
        self.signatures.push(AuthoritySignature {
            authority: key.verifying_key().to_bytes(),
            signature: key.sign(&msg).to_bytes(),
        });
    }

    /// This authority's signature over the body, to hand to the other authorities.
    pub fn signature_by(&self, key: &SigningKey) -> AuthoritySignature {
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(&self.body);
        AuthoritySignature {
            authority: key.verifying_key().to_bytes(),
            signature: key.sign(&msg).to_bytes(),
        }
    }

    /// Adds another authority's signature if it is valid over this very body and not yet
    /// present; returns whether it was added.
    pub fn add_verified(&mut self, sig: AuthoritySignature) -> bool {
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(&self.body);
        if self.signatures.iter().any(|s| s.authority == sig.authority)
            || verify(&sig.authority, &msg, &sig.signature).is_err()
        {
            return false;
        }
        self.signatures.push(sig);
        true
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(self.body.len() + 4 + 96 * self.signatures.len());
        w.put_u32(self.body.len() as u32);
        w.put(&self.body);
        w.put_u8(self.signatures.len() as u8);
        for s in &self.signatures {
            w.put(&s.authority);
            w.put(&s.signature);
        }
        w
    }

    /// Parses the wire form (signatures are checked by [`SignedConsensus::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, ConsensusError> {
        if bytes.len() > MAX_CONSENSUS_LEN {
            return Err(ConsensusError::TooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let len = r.u32("body length")? as usize;
        let body = r.take(len, "consensus body")?.to_vec();
        let consensus = Consensus::decode_body(&body)?;
        let n = usize::from(r.u8("signature count")?);
        if n > MAX_SIGNATURES {
            return Err(DecodeError::TooLong {
                field: "signatures",
                len: n,
                max: MAX_SIGNATURES,
            }
            .into());
        }
        let signatures = (0..n)
            .map(|_| {
                Ok(AuthoritySignature {
                    authority: r.array("authority")?,
                    signature: r.array("signature")?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        r.finish()?;
        Ok(SignedConsensus {
            consensus,
            body,
            signatures,
        })
    }

    /// Accepts the consensus at time `now` if more than half of `trusted` signed it validly.
    pub fn verify(&self, trusted: &[IdentityBytes], now: u64) -> Result<&Consensus, ConsensusError> {
        let c = &self.consensus;
        if now + CLOCK_SKEW < c.valid_after {
            return Err(ConsensusError::NotYetValid {
                valid_after: c.valid_after,
                now,
            });
        }
        if now > c.valid_until {
            return Err(ConsensusError::Expired {
                valid_until: c.valid_until,
                now,
            });
        }
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(&self.body);
        let (mut seen, mut unknown, mut bad, mut duplicate) = (Vec::new(), 0, 0, 0);
        for s in &self.signatures {
            if !trusted.contains(&s.authority) {
                unknown += 1;
            } else if seen.contains(&s.authority) {
                duplicate += 1;
            } else if verify(&s.authority, &msg, &s.signature).is_ok() {
                seen.push(s.authority);
            } else {
                bad += 1;
            }
        }
        let needed = trusted.len() / 2 + 1;
        if seen.len() < needed {
            return Err(ConsensusError::NotEnoughSignatures {
                valid: seen.len(),
                needed,
                unknown,
                bad,
                duplicate,
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::tests::sample;
    use crate::keys::fresh_signing_key;
    use proptest::prelude::*;

    fn consensus(n: usize) -> Consensus {
        let relays = (0..n)
            .map(|i| {
                let k = fresh_signing_key();
                ConsensusRelay {
                    info: sample(&k, 9000 + i as u16).info,
                    flags: Flags(i as u16 & 0x7f),
                }
            })
            .collect();
        Consensus {
            valid_after: 1000,
            fresh_until: 2000,
            valid_until: 4000,
            relays,
        }
    }

    #[test]
    fn majority_of_trusted_authorities_is_required() {
        let auths: Vec<_> = (0..3).map(|_| fresh_signing_key()).collect();
        let trusted: Vec<_> = auths.iter().map(|k| k.verifying_key().to_bytes()).collect();
        let mut sc = SignedConsensus::new(consensus(5));
        sc.add_signature(&auths[0]);
        let decoded = SignedConsensus::decode(&sc.encode()).unwrap();
        assert!(matches!(
            decoded.verify(&trusted, 1500),
            Err(ConsensusError::NotEnoughSignatures {
                valid: 1,
                needed: 2,
                ..
            })
        ));
        // The same authority twice is still one.
        sc.add_signature(&auths[0]);
        assert!(matches!(
            sc.verify(&trusted, 1500),
            Err(ConsensusError::NotEnoughSignatures { duplicate: 1, .. })
        ));
        // An unknown key does not count.
        sc.add_signature(&fresh_signing_key());
        assert!(matches!(
            sc.verify(&trusted, 1500),
            Err(ConsensusError::NotEnoughSignatures { unknown: 1, .. })
        ));
        sc.add_signature(&auths[2]);
        let decoded = SignedConsensus::decode(&sc.encode()).unwrap();
        assert_eq!(decoded.verify(&trusted, 1500).unwrap(), &sc.consensus);
        // One authority alone is enough only if it is the only one trusted.
        let mut single = SignedConsensus::new(consensus(2));
        single.add_signature(&auths[1]);
        assert!(single.verify(&trusted[1..2], 1500).is_ok());
    }

    #[test]
    fn forged_signatures_and_tampered_bodies_are_refused() {
        let auth = fresh_signing_key();
        let trusted = [auth.verifying_key().to_bytes()];
        let mut sc = SignedConsensus::new(consensus(3));
        sc.add_signature(&auth);
        let mut wire = sc.encode();
        wire[30] ^= 1;
        if let Ok(c) = SignedConsensus::decode(&wire) {
            assert!(c.verify(&trusted, 1500).is_err())
        }
        // A signature copied onto another consensus.
        let mut other = SignedConsensus::new(consensus(3));
        other.signatures = sc.signatures.clone();
        assert!(matches!(
            other.verify(&trusted, 1500),
            Err(ConsensusError::NotEnoughSignatures { bad: 1, .. })
        ));
    }

    #[test]
    fn lifetime_is_enforced() {
        let auth = fresh_signing_key();
        let trusted = [auth.verifying_key().to_bytes()];
        let mut sc = SignedConsensus::new(consensus(1));
        sc.add_signature(&auth);
        assert!(matches!(
            sc.verify(&trusted, 10),
            Err(ConsensusError::NotYetValid { .. })
        ));
        assert!(matches!(sc.verify(&trusted, 5000), Err(ConsensusError::Expired { .. })));
        assert!(sc.verify(&trusted, 4000).is_ok());
    }

    #[test]
    fn encoding_is_deterministic_and_sorted() {
        let c = consensus(6);
        let mut reversed = c.clone();
        reversed.relays.reverse();
        assert_eq!(c.encode_body(), reversed.encode_body());
        let sc = SignedConsensus::new(c);
        assert!(
            sc.consensus
                .relays
                .windows(2)
                .all(|w| w[0].info.identity < w[1].info.identity)
        );
        let id = sc.consensus.relays[3].info.identity;
        assert_eq!(sc.consensus.relay(&id).unwrap().info.identity, id);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SignedConsensus::decode(&bytes);
        }

        #[test]
        fn round_trip(n in 0usize..6, sigs in 0usize..4) {
            let mut sc = SignedConsensus::new(consensus(n));
            for _ in 0..sigs { sc.add_signature(&fresh_signing_key()); }
            prop_assert_eq!(SignedConsensus::decode(&sc.encode()).unwrap(), sc);
        }
    }
}
