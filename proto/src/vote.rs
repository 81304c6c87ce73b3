//! Votes: what one directory authority believes about the relays, and how several
//! authorities' votes become one consensus.
//!
//! Each voting period (identified by its `valid_after` time) every authority signs a vote: the
//! relays *it* found reachable, with the flags it would give and, where its bandwidth scanner
//! measured one, the measured bandwidth. Wire form: `body | signature(64)`, the signature by
//! the authority named in the body over `"onionlab vote v1\0" | body`; relays in strictly
//! ascending identity order, so a vote has exactly one encoding.
//!
//! [`compute_consensus`] is a pure function of the set of votes, so every authority that holds
//! the same votes computes the same consensus, byte for byte, and their signatures add up:
//! - a relay is listed if more than half of the votes list it;
//! - its descriptor fields come from the most recently published descriptor among those votes
//!   (ties broken by the smallest encoding);
//! - a flag is set if more than half of the votes listing the relay set it;
//! - its weight is the median of the measured bandwidths if any vote measured it, otherwise the
//!   median advertised bandwidth capped at the unmeasured cap (so claiming a huge bandwidth
//!   gains nothing).

use crate::codec::{DecodeError, Reader, Writer};
use crate::consensus::{Consensus, ConsensusRelay, Flags};
use crate::descriptor::RelayInfo;
use crate::keys::{IdentityBytes, KeyError, Signer, SigningKey, verify};
use thiserror::Error;

const SIGNATURE_CONTEXT: &[u8] = b"onionlab vote v1\0";
const VERSION: u8 = 1;
/// Largest encoded vote accepted.
pub const MAX_VOTE_LEN: usize = 8 * 1024 * 1024;

/// One relay as one authority sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRelay {
    /// The relay's descriptor fields (bandwidth: as advertised).
    pub info: RelayInfo,
    /// When that descriptor was published.
    pub published: u64,
    /// Flags this authority would assign.
    pub flags: Flags,
    /// Bandwidth this authority's scanner measured (bytes/s), if any.
    pub measured: Option<u64>,
}

/// One authority's vote for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The voting authority.
    pub authority: IdentityBytes,
    /// The period: `valid_after` of the consensus being voted on.
    pub valid_after: u64,
    /// Relays, ascending by identity.
    pub relays: Vec<VoteRelay>,
}

/// Why a vote was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VoteError {
    /// Could not be parsed.
    #[error("malformed vote: {0}")]
    Malformed(#[from] DecodeError),
    /// Larger than [`MAX_VOTE_LEN`].
    #[error("vote is {0} bytes, too large")]
    TooLarge(usize),
    /// Not signed by the authority it names.
    #[error("vote signature: {0}")]
    Signature(#[from] KeyError),
}

impl Vote {
    fn body(&self) -> Vec<u8> {
        let mut relays: Vec<&VoteRelay> = self.relays.iter().collect();
        relays.sort_by_key(|r| r.info.identity);
        let mut w = vec![VERSION];
        w.put(&self.authority);
        w.put_u64(self.valid_after);
        w.put_u32(relays.len() as u32);
        for r in relays {
            r.info.encode_into(&mut w);
            w.put_u64(r.published);
            w.put_u16(r.flags.0);
            match r.measured {
                Some(m) => {
                    w.put_u8(1);
                    w.put_u64(m);
                }
                None => w.put_u8(0),
            }
        }
        w
    }

    /// Signs the vote; the key must be the authority's.
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        let mut raw = self.body();
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(&raw);
        raw.extend_from_slice(&key.sign(&msg).to_bytes());
        raw
    }

    /// Parses a signed vote and checks that the authority it names signed it. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Vote, VoteError> {
        if bytes.len() > MAX_VOTE_LEN {
            return Err(VoteError::TooLarge(bytes.len()));
        }
        if bytes.len() < 64 {
            return Err(DecodeError::Truncated("vote").into());
        }
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let mut r = Reader::new(body);
        if r.u8("version")? != VERSION {
            return Err(DecodeError::invalid("vote version", "unknown").into());
        }
        let authority: IdentityBytes = r.array("authority")?;
        let valid_after = r.u64("valid-after")?;
        let n = r.u32("relay count")? as usize;
        if n > crate::consensus::MAX_RELAYS {
            return Err(DecodeError::TooLong {
                field: "vote relays",
                len: n,
                max: crate::consensus::MAX_RELAYS,
            }
            .into());
        }
        let mut relays: Vec<VoteRelay> = Vec::with_capacity(n);
        for _ in 0..n {
            let info = RelayInfo::read(&mut r)?;
            let published = r.u64("published")?;
            let flags = Flags(r.u16("flags")?);
            let measured = match r.u8("measured marker")? {
                0 => None,
                1 => Some(r.u64("measured")?),
                _ => return Err(DecodeError::invalid("measured marker", "not 0 or 1").into()),
            };
            if relays.last().is_some_and(|p| p.info.identity >= info.identity) {
                return Err(DecodeError::invalid("vote relays", "out of order or repeated").into());
            }
            relays.push(VoteRelay {
                info,
                published,
                flags,
                measured,
            });
        }
        r.finish()?;
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(body);
        let mut s = [0u8; 64];
        s.copy_from_slice(sig);
        verify(&authority, &msg, &s)?;
        Ok(Vote {
            authority,
            valid_after,
            relays,
        })
    }
}

/// Knobs of consensus computation every authority must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusParams {
    /// `valid_after` of the consensus.
    pub valid_after: u64,
    /// Seconds until `fresh_until`.
    pub fresh_for: u64,
    /// Seconds until `valid_until`.
    pub valid_for: u64,
    /// Weight given to relays no authority measured, at most.
    pub unmeasured_cap: u64,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    // The lower median: deterministic and never above what a majority reported.
    v.get((v.len().saturating_sub(1)) / 2).copied().unwrap_or(0)
}

/// Combines the votes for one period into the consensus (see the module docs). Votes for
/// another period and repeated votes by one authority must be filtered out by the caller.
pub fn compute_consensus(votes: &[Vote], p: ConsensusParams) -> Consensus {
    use std::collections::BTreeMap;
    let mut by_relay: BTreeMap<IdentityBytes, Vec<&VoteRelay>> = BTreeMap::new();
    for v in votes {
        for r in &v.relays {
            by_relay.entry(r.info.identity).or_default().push(r);
        }
    }
    let majority = votes.len() / 2 + 1;
    let mut relays = Vec::new();
    for (_, entries) in by_relay {
        if entries.len() < majority {
            continue;
        }
        let newest = entries
            .iter()
            .max_by(|a, b| {
                a.published.cmp(&b.published).then_with(|| {
                    let (mut ea, mut eb) = (Vec::new(), Vec::new());
                    a.info.encode_into(&mut ea);
                    b.info.encode_into(&mut eb);
                    eb.cmp(&ea)
                })
            })
            .map(|r| r.info.clone());
        let Some(mut info) = newest else { continue };
        let mut flags = Flags::default();
        for (flag, _) in Flags::ALL {
            if entries.iter().filter(|r| r.flags.contains(flag)).count() * 2 > entries.len() {
                flags.insert(flag);
            }
        }
        let measured: Vec<u64> = entries.iter().filter_map(|r| r.measured).collect();
        info.bandwidth = if measured.is_empty() {
            median(entries.iter().map(|r| r.info.bandwidth).collect()).min(p.unmeasured_cap)
        } else {
            median(measured)
        };
        relays.push(ConsensusRelay { info, flags });
    }
    Consensus {
        valid_after: p.valid_after,
        fresh_until: p.valid_after + p.fresh_for,
        valid_until: p.valid_after + p.valid_for,
        relays,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::tests::sample;
    use crate::keys::fresh_signing_key;
    use proptest::prelude::*;

    const P: ConsensusParams = ConsensusParams {
        valid_after: 1000,
        fresh_for: 60,
        valid_for: 180,
        unmeasured_cap: 50_000,
    };

    fn relay(key: &SigningKey, bw: u64, flags: u16, measured: Option<u64>) -> VoteRelay {
        let mut info = sample(key, 9001).info;
        info.bandwidth = bw;
        VoteRelay {
            info,
            published: 500,
            flags: Flags(flags),
            measured,
        }
    }

    fn vote(auth: &SigningKey, relays: Vec<VoteRelay>) -> Vote {
        Vote {
            authority: auth.verifying_key().to_bytes(),
            valid_after: 1000,
            relays,
        }
    }

    #[test]
    fn votes_round_trip_and_forgeries_fail() {
        let auth = fresh_signing_key();
        let v = vote(
            &auth,
            vec![
                relay(&fresh_signing_key(), 1, 3, Some(9)),
                relay(&fresh_signing_key(), 2, 1, None),
            ],
        );
        let raw = v.sign(&auth);
        let mut back = Vote::decode(&raw).unwrap();
        back.relays.sort_by_key(|r| r.info.identity);
        let mut want = v.clone();
        want.relays.sort_by_key(|r| r.info.identity);
        assert_eq!(back, want);
        // Signed by someone else than the authority it names.
        let forged = v.sign(&fresh_signing_key());
        assert!(matches!(Vote::decode(&forged), Err(VoteError::Signature(_))));
        let mut tampered = raw.clone();
        tampered[40] ^= 1;
        assert!(Vote::decode(&tampered).is_err());
    }

    #[test]
    fn majority_rules_listing_flags_and_weights() {
        let auths: Vec<_> = (0..3).map(|_| fresh_signing_key()).collect();
        let (a, b, liar) = (fresh_signing_key(), fresh_signing_key(), fresh_signing_key());
        let votes = vec![
            vote(
                &auths[0],
                vec![
                    relay(&a, 100, 0b11, Some(70)),
                    relay(&b, 100, 1, None),
                    relay(&liar, 1 << 40, 1, Some(10)),
                ],
            ),
            vote(
                &auths[1],
                vec![relay(&a, 100, 0b01, Some(80)), relay(&liar, 1 << 40, 1, Some(12))],
            ),
            vote(
                &auths[2],
                vec![relay(&a, 100, 0b11, Some(90)), relay(&liar, 1 << 40, 1, None)],
            ),
        ];
        let c = compute_consensus(&votes, P);
        // b is known to one authority of three: left out.
        assert!(c.relay(&b.verifying_key().to_bytes()).is_none());
        let ra = c.relay(&a.verifying_key().to_bytes()).unwrap();
        assert_eq!(ra.flags, Flags(0b11), "2 of 3 votes set the second flag");
        assert_eq!(ra.info.bandwidth, 80, "median of measurements");
        let rl = c.relay(&liar.verifying_key().to_bytes()).unwrap();
        assert_eq!(
            rl.info.bandwidth, 10,
            "a liar gets what was measured (lower median), not what it claims"
        );
        // The same votes in any order give the same bytes.
        let mut shuffled = votes.clone();
        shuffled.reverse();
        assert_eq!(compute_consensus(&shuffled, P).encode_body(), c.encode_body());
    }

    #[test]
    fn unmeasured_relays_are_capped() {
        let auth = fresh_signing_key();
        let r = fresh_signing_key();
        let c = compute_consensus(&[vote(&auth, vec![relay(&r, 1 << 30, 1, None)])], P);
        assert_eq!(c.relays[0].info.bandwidth, P.unmeasured_cap);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Vote::decode(&bytes);
        }

        #[test]
        fn round_trip(n in 0usize..5, measured in proptest::option::of(any::<u64>()), flags in any::<u16>(), va in any::<u64>()) {
            let auth = fresh_signing_key();
            let mut v = vote(&auth, (0..n).map(|_| relay(&fresh_signing_key(), 7, flags, measured)).collect());
            v.valid_after = va;
            v.relays.sort_by_key(|r| r.info.identity);
            prop_assert_eq!(Vote::decode(&v.sign(&auth)).unwrap(), v);
        }
    }
}
