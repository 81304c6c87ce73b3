//! Relay keys and the proof that binds a link to a relay identity.
//!
//! A relay has a long-term Ed25519 **identity** (its name in the directory) and an x25519
//! **onion key** (the `B` of ntor). This module is the one place that names the curve crates:
//! everything else uses these re-exports, so the next crypto upgrade touches one file.
//!
//! Link binding: after the TLS handshake the responder sends a LINK_AUTH cell holding its
//! identity and an Ed25519 signature over [`link_auth_message`] of the TLS exporter value.
//! Both TLS endpoints compute the same exporter, and a man in the middle has two different
//! TLS sessions, so a relayed proof fails: a client that expected identity K talks to K or fails.

pub use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
pub use x25519_dalek::{PublicKey as OnionPublicKey, StaticSecret as OnionSecret};

use crate::cell::{Cell, CellCommand, CircId};
use crate::codec::{DecodeError, Reader};
use crate::random;
use thiserror::Error;

/// An Ed25519 public identity as 32 bytes.
pub type IdentityBytes = [u8; 32];

/// A fresh x25519 secret from the operating system's generator.
pub fn fresh_x25519() -> OnionSecret {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    random::os_fill(&mut b[..]);
    OnionSecret::from(*b)
}

/// A fresh Ed25519 signing key from the operating system's generator.
pub fn fresh_signing_key() -> SigningKey {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    random::os_fill(&mut b[..]);
    SigningKey::from_bytes(&b)
}

/// How an identity is shown to people: lowercase hex.
pub fn fingerprint(id: &IdentityBytes) -> String {
    hex::encode(id)
}

/// Parses a 64-hex-digit identity.
pub fn parse_fingerprint(s: &str) -> Result<IdentityBytes, KeyError> {
    let v = hex::decode(s.trim()).map_err(|_| KeyError::BadFingerprint)?;
    v.try_into().map_err(|_| KeyError::BadFingerprint)
}

/// Why a key or proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 64 hex digits.
    #[error("an identity is 64 hex digits")]
    BadFingerprint,
    /// The bytes are not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The peer proved a different identity than the one expected.
    #[error("link is bound to identity {got}, expected {expected}")]
    WrongIdentity {
        /// What we expected (fingerprint).
        expected: String,
        /// What the peer proved (fingerprint).
        got: String,
    },
    /// The proof could not be decoded.
    #[error("malformed link authentication: {0}")]
    Malformed(#[from] DecodeError),
}

/// Verifies an Ed25519 signature strictly (no malleable or small-order keys).
pub fn verify(identity: &IdentityBytes, message: &[u8], signature: &[u8; 64]) -> Result<(), KeyError> {
    let key = VerifyingKey::from_bytes(identity).map_err(|_| KeyError::BadPublicKey)?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| KeyError::BadSignature)
}

/// Label for the TLS exporter whose value the responder signs.
pub const LINK_EXPORTER_LABEL: &[u8] = b"EXPORTER-onionlab-link-auth-v1";
const LINK_AUTH_CONTEXT: &[u8] = b"onionlab link authentication v1\0";
const LINK_AUTH_VERSION: u8 = 1;

/// The bytes a responder signs: a context string, then the 32-byte TLS exporter value.
pub fn link_auth_message(exporter: &[u8; 32]) -> Vec<u8> {
    let mut m = LINK_AUTH_CONTEXT.to_vec();
    m.extend_from_slice(exporter);
    m
}

/// The responder's LINK_AUTH cell for this TLS session.
pub fn link_auth_cell(key: &SigningKey, exporter: &[u8; 32]) -> Cell {
    let mut body = vec![LINK_AUTH_VERSION];
    body.extend_from_slice(key.verifying_key().as_bytes());
    body.extend_from_slice(&key.sign(&link_auth_message(exporter)).to_bytes());
    // 97 bytes always fit in a cell.
    Cell::with_body(0 as CircId, CellCommand::LinkAuth, &body).unwrap_or_else(|_| unreachable!())
}

/// Checks a LINK_AUTH cell against this session's exporter value and, if given, the identity
/// the initiator expected. Returns the proven identity.
pub fn check_link_auth(
    cell: &Cell,
    exporter: &[u8; 32],
    expected: Option<&IdentityBytes>,
) -> Result<IdentityBytes, KeyError> {
    if cell.command != CellCommand::LinkAuth || cell.circ_id != 0 {
        return Err(DecodeError::invalid("link authentication", "first cell is not LINK_AUTH on circuit 0").into());
    }
    let mut r = Reader::new(&cell.payload);
    if r.u8("version")? != LINK_AUTH_VERSION {
        return Err(DecodeError::invalid("link authentication", "unknown version").into());
    }
    let id: IdentityBytes = r.array("identity")?;
    let sig: [u8; 64] = r.array("signature")?;
    if let Some(expected) = expected
        && expected != &id
    {
        return Err(KeyError::WrongIdentity {
            expected: fingerprint(expected),
            got: fingerprint(&id),
        });
    }
    verify(&id, &link_auth_message(exporter), &sig)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_auth_binds_identity_and_session() {
        let key = fresh_signing_key();
        let id = key.verifying_key().to_bytes();
        let exporter = [3u8; 32];
        let cell = link_auth_cell(&key, &exporter);
        assert_eq!(check_link_auth(&cell, &exporter, Some(&id)), Ok(id));
        assert_eq!(check_link_auth(&cell, &exporter, None), Ok(id));
        // Another TLS session (a relaying man in the middle) has another exporter value.
        assert_eq!(
            check_link_auth(&cell, &[4u8; 32], Some(&id)),
            Err(KeyError::BadSignature)
        );
        let other = fresh_signing_key().verifying_key().to_bytes();
        assert!(matches!(
            check_link_auth(&cell, &exporter, Some(&other)),
            Err(KeyError::WrongIdentity { .. })
        ));
    }

    #[test]
    fn fingerprints_round_trip() {
        let id = fresh_signing_key().verifying_key().to_bytes();
        assert_eq!(parse_fingerprint(&fingerprint(&id)), Ok(id));
        assert_eq!(parse_fingerprint("abc"), Err(KeyError::BadFingerprint));
    }
}
