//! Relay descriptors: what a relay says about itself, signed with its identity key.
//!
//! Wire form (deterministic, big-endian): `body | signature(64)`, where the signature is
//! Ed25519 over `"onionlab relay descriptor v1\0" | body` by the identity inside the body.
//! The body is `version(1)=1`, the [`RelayInfo`] fields, `published(8)` (Unix seconds) and
//! `contact`. Authorities keep the exact bytes they verified.

use crate::codec::{DecodeError, Reader, Writer, put_socket_addr, read_socket_addr};
use crate::exit_policy::{ExitPolicy, PolicyRule};
use crate::keys::{IdentityBytes, KeyError, Signer, SigningKey, verify};
use std::net::SocketAddr;
use thiserror::Error;

/// Largest descriptor an authority accepts.
pub const MAX_DESCRIPTOR_LEN: usize = 8192;
/// Most exit-policy rules in a descriptor or consensus entry.
pub const MAX_POLICY_RULES: usize = 64;
/// Most family members a relay may declare.
pub const MAX_FAMILY: usize = 16;
/// Longest contact line.
pub const MAX_CONTACT_LEN: usize = 200;
const SIGNATURE_CONTEXT: &[u8] = b"onionlab relay descriptor v1\0";
const VERSION: u8 = 1;

/// What a relay is, as both its descriptor and its consensus entry carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayInfo {
    /// A name for people, 1–19 letters and digits (Tor's rule). Not unique.
    pub nickname: String,
    /// Ed25519 identity key.
    pub identity: IdentityBytes,
    /// x25519 onion key (ntor's `B`).
    pub onion_key: [u8; 32],
    /// Where the relay accepts links.
    pub or_addr: SocketAddr,
    /// Bytes per second: advertised in descriptors, the weight in the consensus.
    pub bandwidth: u64,
    /// Destinations the relay will exit to.
    pub exit_policy: ExitPolicy,
    /// Identities of relays run by the same operator (never on one path together).
    pub family: Vec<IdentityBytes>,
}

/// Checks Tor's nickname rule.
pub fn valid_nickname(n: &str) -> bool {
    (1..=19).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl RelayInfo {
    /// Appends the fields.
    pub fn encode_into(&self, w: &mut Vec<u8>) {
        w.put_string_u8(&self.nickname);
        w.put(&self.identity);
        w.put(&self.onion_key);
        put_socket_addr(w, &self.or_addr);
        w.put_u64(self.bandwidth);
        w.put_u16(self.exit_policy.rules.len() as u16);
        for r in &self.exit_policy.rules {
            w.put_string_u8(&r.to_string());
        }
        w.put_u8(self.family.len() as u8);
        for f in &self.family {
            w.put(f);
        }
    }

    /// Reads the fields, enforcing every limit.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let nickname = r.string_u8(19, "nickname")?;
        if !valid_nickname(&nickname) {
            return Err(DecodeError::invalid("nickname", "must be 1-19 letters and digits"));
        }
        let identity = r.array("identity")?;
        let onion_key = r.array("onion key")?;
        let or_addr = read_socket_addr(r)?;
        let bandwidth = r.u64("bandwidth")?;
        let n_rules = usize::from(r.u16("policy length")?);
        if n_rules > MAX_POLICY_RULES {
            return Err(DecodeError::TooLong {
                field: "exit policy",
                len: n_rules,
                max: MAX_POLICY_RULES,
            });
        }
        let mut rules = Vec::with_capacity(n_rules);
        for _ in 0..n_rules {
            let text = r.string_u8(80, "policy rule")?;
            let rule = text
                .parse::<PolicyRule>()
                .map_err(|_| DecodeError::invalid("policy rule", "unparseable"))?;
            // One rule, one spelling: documents have exactly one encoding.
            if rule.to_string() != text {
                return Err(DecodeError::invalid("policy rule", "not in canonical form"));
            }
            rules.push(rule);
        }
        let n_family = usize::from(r.u8("family length")?);
        if n_family > MAX_FAMILY {
            return Err(DecodeError::TooLong {
                field: "family",
                len: n_family,
                max: MAX_FAMILY,
            });
        }
        let family = (0..n_family)
            .map(|_| r.array("family member"))
            .collect::<Result<_, _>>()?;
        Ok(RelayInfo {
            nickname,
            identity,
            onion_key,
            or_addr,
            bandwidth,
            exit_policy: ExitPolicy { rules },
            family,
        })
    }

    /// Declared family in either direction (Tor requires both; either is enough to avoid).
    pub fn same_family(&self, other: &RelayInfo) -> bool {
        self.family.contains(&other.identity) || other.family.contains(&self.identity)
    }
}

/// A relay's self-description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayDescriptor {
    /// What the relay is.
    pub info: RelayInfo,
    /// When the descriptor was made (Unix seconds).
    pub published: u64,
    /// Operator contact, free text.
    pub contact: String,
}

/// Why a descriptor was refused. Authorities send the text back with a 4xx status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// Larger than [`MAX_DESCRIPTOR_LEN`].
    #[error("descriptor is {0} bytes, more than the {MAX_DESCRIPTOR_LEN} allowed")]
    TooLarge(usize),
    /// Could not be parsed.
    #[error("malformed descriptor: {0}")]
    Malformed(#[from] DecodeError),
    /// The signature is not by the identity in the body.
    #[error("descriptor signature: {0}")]
    Signature(#[from] KeyError),
    /// Published too long ago.
    #[error("descriptor is stale: published {age} s ago, at most {max} s allowed")]
    Stale {
        /// Seconds since publication.
        age: u64,
        /// The limit.
        max: u64,
    },
    /// Published in the future beyond the allowed clock skew.
    #[error("descriptor is published {0} s in the future")]
    FromFuture(u64),
}

impl RelayDescriptor {
    fn body(&self) -> Vec<u8> {
        let mut w = vec![VERSION];
        self.info.encode_into(&mut w);
        w.put_u64(self.published);
        w.put_string_u8(&self.contact);
        w
    }

    /// Signs with the relay's identity key. The key must be the one named in `info.identity`.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedDescriptor, KeyError> {
        if key.verifying_key().to_bytes() != self.info.identity {
            return Err(KeyError::WrongIdentity {
                expected: crate::keys::fingerprint(&self.info.identity),
                got: crate::keys::fingerprint(&key.verifying_key().to_bytes()),
            });
        }
        let mut raw = self.body();
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(&raw);
        raw.extend_from_slice(&key.sign(&msg).to_bytes());
        Ok(SignedDescriptor {
            descriptor: self.clone(),
            raw,
        })
    }
}

/// A descriptor together with the exact signed bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDescriptor {
    /// The parsed content.
    pub descriptor: RelayDescriptor,
    /// `body | signature`, as signed.
    pub raw: Vec<u8>,
}

impl SignedDescriptor {
    /// Parses and checks the signature. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DescriptorError> {
        if bytes.len() > MAX_DESCRIPTOR_LEN {
            return Err(DescriptorError::TooLarge(bytes.len()));
        }
        if bytes.len() < 64 {
            return Err(DecodeError::Truncated("descriptor").into());
        }
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let mut r = Reader::new(body);
        if r.u8("version")? != VERSION {
            return Err(DecodeError::invalid("descriptor version", "unknown").into());
        }
        let info = RelayInfo::read(&mut r)?;
        let published = r.u64("published")?;
        let contact = r.string_u8(MAX_CONTACT_LEN, "contact")?;
        r.finish()?;
        let mut msg = SIGNATURE_CONTEXT.to_vec();
        msg.extend_from_slice(body);
        let mut s = [0u8; 64];
        s.copy_from_slice(sig);
        verify(&info.identity, &msg, &s)?;
        Ok(SignedDescriptor {
            descriptor: RelayDescriptor {
                info,
                published,
                contact,
            },
            raw: bytes.to_vec(),
        })
    }

    /// Checks the publication time against `now`: no older than `max_age`, no more than
    /// `max_skew` seconds ahead.
    pub fn check_time(&self, now: u64, max_age: u64, max_skew: u64) -> Result<(), DescriptorError> {
        let p = self.descriptor.published;
        if p > now + max_skew {
            return Err(DescriptorError::FromFuture(p - now));
        }
        let age = now.saturating_sub(p);
        if age > max_age {
            return Err(DescriptorError::Stale { age, max: max_age });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::{OnionPublicKey, fresh_signing_key, fresh_x25519};
    use proptest::prelude::*;

    pub(crate) fn sample(key: &SigningKey, port: u16) -> RelayDescriptor {
        RelayDescriptor {
            info: RelayInfo {
                nickname: format!("relay{port}"),
                identity: key.verifying_key().to_bytes(),
                onion_key: OnionPublicKey::from(&fresh_x25519()).to_bytes(),
                or_addr: format!("127.0.1.1:{port}").parse().unwrap(),
                bandwidth: 1_000_000,
                exit_policy: ExitPolicy::default_exit(),
                family: vec![[9u8; 32]],
            },
            published: 1_700_000_000,
            contact: "ops@example.org".into(),
        }
    }

    #[test]
    fn signed_descriptor_round_trips() {
        let key = fresh_signing_key();
        let signed = sample(&key, 9001).sign(&key).unwrap();
        let back = SignedDescriptor::decode(&signed.raw).unwrap();
        assert_eq!(back, signed);
    }

    #[test]
    fn forged_or_wrongly_signed_descriptors_are_refused() {
        let key = fresh_signing_key();
        let other = fresh_signing_key();
        assert!(sample(&key, 1).sign(&other).is_err());
        let mut raw = sample(&key, 1).sign(&key).unwrap().raw;
        // Change the onion key (bytes 40..72 for nickname "relay1"): the signature fails.
        raw[50] ^= 1;
        assert!(matches!(
            SignedDescriptor::decode(&raw),
            Err(DescriptorError::Signature(KeyError::BadSignature))
        ));
        // Swap in another relay's identity and its own signature: still refused.
        let mut other_desc = sample(&key, 1);
        other_desc.info.identity = other.verifying_key().to_bytes();
        let mut forged = other_desc.sign(&other).unwrap().raw;
        let sig_start = forged.len() - 64;
        forged[sig_start..].copy_from_slice(&sample(&key, 1).sign(&key).unwrap().raw[sig_start..]);
        assert!(matches!(
            SignedDescriptor::decode(&forged),
            Err(DescriptorError::Signature(_))
        ));
    }

    #[test]
    fn oversized_and_stale_descriptors_are_refused() {
        assert_eq!(
            SignedDescriptor::decode(&vec![0u8; MAX_DESCRIPTOR_LEN + 1]),
            Err(DescriptorError::TooLarge(MAX_DESCRIPTOR_LEN + 1))
        );
        let key = fresh_signing_key();
        let d = sample(&key, 1).sign(&key).unwrap();
        assert!(d.check_time(1_700_000_000 + 100, 3600, 300).is_ok());
        assert!(matches!(
            d.check_time(1_700_000_000 + 7200, 3600, 300),
            Err(DescriptorError::Stale { .. })
        ));
        assert!(matches!(
            d.check_time(1_700_000_000 - 7200, 3600, 300),
            Err(DescriptorError::FromFuture(_))
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = SignedDescriptor::decode(&bytes);
        }

        #[test]
        fn round_trip_any_fields(bw in any::<u64>(), published in any::<u64>(), nick in "[A-Za-z0-9]{1,19}", contact in "[ -~]{0,100}", port in 1u16..) {
            let key = fresh_signing_key();
            let mut d = sample(&key, port);
            d.info.bandwidth = bw;
            d.info.nickname = nick;
            d.published = published;
            d.contact = contact;
            let s = d.sign(&key).unwrap();
            prop_assert_eq!(SignedDescriptor::decode(&s.raw).unwrap().descriptor, d);
        }
    }
}
