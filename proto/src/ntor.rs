//! The ntor handshake (tor-spec "The ntor handshake"), parameterised by PROTOID and identity.
//!
//! The client knows the relay's identity `ID` and onion key `B`; it sends `ID | B | X`. The
//! relay answers `Y | AUTH`. Both derive
//!
//! ```text
//! secret_input = EXP(X,y) | EXP(X,b) | ID | B | X | Y | PROTOID
//! KEY_SEED     = H(secret_input, t_key)
//! verify       = H(secret_input, t_verify)
//! auth_input   = verify | ID | B | Y | X | PROTOID | "Server"
//! AUTH         = H(auth_input, t_mac)
//! keys         = HKDF-SHA256(salt = t_key, ikm = secret_input, info = m_expand)
//! ```
//!
//! where `H(x, t)` is HMAC-SHA256 keyed with `t`. With Tor's PROTOID and a 20-byte identity
//! this reproduces Tor's ntor v1 byte for byte (see the test vector); onionlab's own instance,
//! [`NtorParams::ONIONLAB`], uses its own PROTOID and the relay's 32-byte Ed25519 key as `ID`.
//! The client rejects a reply whose AUTH does not match and any all-zero shared secret.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle_eq::ct_eq;
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Which instance of ntor: the PROTOID and the length of the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtorParams {
    /// The protocol id mixed into every hash.
    pub protoid: &'static str,
    /// Bytes in `ID`.
    pub id_len: usize,
}

impl NtorParams {
    /// Tor's ntor v1: 20-byte RSA identity digests.
    pub const TOR_V1: NtorParams = NtorParams {
        protoid: "ntor-curve25519-sha256-1",
        id_len: 20,
    };
    /// onionlab's instance: 32-byte Ed25519 identities.
    pub const ONIONLAB: NtorParams = NtorParams {
        protoid: "onionlab-ntor-x25519-ed25519-sha256-1",
        id_len: 32,
    };

    fn tweak(&self, suffix: &str) -> Vec<u8> {
        let mut t = self.protoid.as_bytes().to_vec();
        t.extend_from_slice(suffix.as_bytes());
        t
    }

    /// Bytes of the client's message.
    pub fn client_message_len(&self) -> usize {
        self.id_len + 64
    }
}

/// Bytes of the server's reply: `Y(32) | AUTH(32)`.
pub const SERVER_MESSAGE_LEN: usize = 64;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NtorError {
    /// A message had the wrong length.
    #[error("ntor message has the wrong length")]
    BadLength,
    /// The client asked for a different relay identity or onion key than ours.
    #[error("ntor request is for another relay or onion key")]
    WrongRelay,
    /// A Diffie-Hellman result was all zeros (a small-order point).
    #[error("ntor key exchange was not contributory")]
    NotContributory,
    /// The relay's AUTH did not verify.
    #[error("ntor server authentication failed")]
    BadAuth,
}

/// Secret key material shared by both ends, expanded to any length.
pub struct KeyMaterial {
    hkdf: Hkdf<Sha256>,
    info: Vec<u8>,
}

impl KeyMaterial {
    /// The first `N` bytes of the key stream (at most 8160).
    pub fn expand<const N: usize>(&self) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        // Only fails for N > 255 * 32, a compile-time constant in every caller.
        #[allow(clippy::expect_used)]
        self.hkdf
            .expand(&self.info, &mut out[..])
            .expect("HKDF output length within 255 blocks");
        out
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

struct Derived {
    keys: KeyMaterial,
    auth: [u8; 32],
}

#[allow(clippy::too_many_arguments)]
fn derive(
    p: &NtorParams,
    xy: &[u8; 32],
    xb: &[u8; 32],
    id: &[u8],
    b: &[u8; 32],
    x: &[u8; 32],
    y: &[u8; 32],
) -> Derived {
    let mut secret_input = Zeroizing::new(Vec::with_capacity(64 + id.len() + 96 + p.protoid.len()));
    for part in [&xy[..], xb, id, b, x, y, p.protoid.as_bytes()] {
        secret_input.extend_from_slice(part);
    }
    let t_key = p.tweak(":key_extract");
    let verify = hmac(&p.tweak(":verify"), &[&secret_input]);
    let auth = hmac(
        &p.tweak(":mac"),
        &[&verify, id, b, y, x, p.protoid.as_bytes(), b"Server"],
    );
    let hkdf = Hkdf::<Sha256>::new(Some(&t_key), &secret_input);
    Derived {
        keys: KeyMaterial {
            hkdf,
            info: p.tweak(":key_expand"),
        },
        auth,
    }
}

/// What the client keeps between sending its message and reading the reply.
pub struct ClientHandshake {
    params: NtorParams,
    id: Vec<u8>,
    b: PublicKey,
    x: StaticSecret,
}

impl ClientHandshake {
    /// Starts a handshake with relay `id`/`b`, using the ephemeral secret `x` (fresh from
    /// [`crate::keys::fresh_x25519`] except in tests). Returns the state and `ID | B | X`.
    pub fn start(params: NtorParams, id: &[u8], b: &PublicKey, x: StaticSecret) -> Result<(Self, Vec<u8>), NtorError> {
        if id.len() != params.id_len {
            return Err(NtorError::BadLength);
        }
        let mut msg = Vec::with_capacity(params.client_message_len());
        msg.extend_from_slice(id);
        msg.extend_from_slice(b.as_bytes());
        msg.extend_from_slice(PublicKey::from(&x).as_bytes());
        Ok((
            ClientHandshake {
                params,
                id: id.to_vec(),
                b: *b,
                x,
            },
            msg,
        ))
    }

    /// Checks the relay's `Y | AUTH` and returns the shared key material.
    pub fn finish(self, reply: &[u8]) -> Result<KeyMaterial, NtorError> {
        if reply.len() != SERVER_MESSAGE_LEN {
            return Err(NtorError::BadLength);
        }
        let mut y = [0u8; 32];
        y.copy_from_slice(&reply[..32]);
        let y_pub = PublicKey::from(y);
        let xy = self.x.diffie_hellman(&y_pub);
        let xb = self.x.diffie_hellman(&self.b);
        if !xy.was_contributory() || !xb.was_contributory() {
            return Err(NtorError::NotContributory);
        }
        let x_pub = PublicKey::from(&self.x);
        let d = derive(
            &self.params,
            xy.as_bytes(),
            xb.as_bytes(),
            &self.id,
            self.b.as_bytes(),
            x_pub.as_bytes(),
            &y,
        );
        if !ct_eq(&d.auth, &reply[32..]) {
            return Err(NtorError::BadAuth);
        }
        Ok(d.keys)
    }
}

/// The relay's side: checks the client message is for `id`/`b`, answers with ephemeral
/// secret `y`, and returns `(reply, key material)`.
pub fn server_respond(
    params: NtorParams,
    id: &[u8],
    b_secret: &StaticSecret,
    client_message: &[u8],
    y: StaticSecret,
) -> Result<(Vec<u8>, KeyMaterial), NtorError> {
    if client_message.len() != params.client_message_len() || id.len() != params.id_len {
        return Err(NtorError::BadLength);
    }
    let (their_id, rest) = client_message.split_at(params.id_len);
    let b_pub = PublicKey::from(b_secret);
    if their_id != id || &rest[..32] != b_pub.as_bytes() {
        return Err(NtorError::WrongRelay);
    }
    let mut x = [0u8; 32];
    x.copy_from_slice(&rest[32..64]);
    let x_pub = PublicKey::from(x);
    let xy = y.diffie_hellman(&x_pub);
    let xb = b_secret.diffie_hellman(&x_pub);
    if !xy.was_contributory() || !xb.was_contributory() {
        return Err(NtorError::NotContributory);
    }
    let y_pub = PublicKey::from(&y);
    let d = derive(
        &params,
        xy.as_bytes(),
        xb.as_bytes(),
        id,
        b_pub.as_bytes(),
        &x,
        y_pub.as_bytes(),
    );
    let mut reply = Vec::with_capacity(SERVER_MESSAGE_LEN);
    reply.extend_from_slice(y_pub.as_bytes());
    reply.extend_from_slice(&d.auth);
    Ok((reply, d.keys))
}

mod subtle_eq {
    /// Constant-time equality of two byte strings of equal length.
    pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Reads `shared/vectors/ntor-v1.txt`, committed beside the tests as `testdata/ntor-v1.txt`.
    fn vector() -> HashMap<String, Vec<u8>> {
        include_str!("../testdata/ntor-v1.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.trim().to_owned(), hex::decode(v.trim()).unwrap())
            })
            .collect()
    }

    fn secret(v: &[u8]) -> StaticSecret {
        let mut b = [0u8; 32];
        b.copy_from_slice(v);
        StaticSecret::from(b)
    }

    #[test]
    fn tor_ntor_v1_known_answer() {
        let v = vector();
        let b = secret(&v["b_secret"]);
        let b_pub = PublicKey::from(&b);
        assert_eq!(b_pub.as_bytes()[..], v["B_public"][..]);
        let (client, msg) =
            ClientHandshake::start(NtorParams::TOR_V1, &v["ID"], &b_pub, secret(&v["x_secret"])).unwrap();
        assert_eq!(msg, v["client_message"]);
        let (reply, server_keys) =
            server_respond(NtorParams::TOR_V1, &v["ID"], &b, &msg, secret(&v["y_secret"])).unwrap();
        assert_eq!(reply, v["server_message"]);
        let client_keys = client.finish(&reply).unwrap();
        assert_eq!(client_keys.expand::<72>()[..], v["keys_72"][..]);
        assert_eq!(server_keys.expand::<72>()[..], v["keys_72"][..]);
    }

    #[test]
    fn onionlab_instance_agrees_and_rejects_tampering() {
        let b = crate::keys::fresh_x25519();
        let b_pub = PublicKey::from(&b);
        let id = [7u8; 32];
        let (client, msg) =
            ClientHandshake::start(NtorParams::ONIONLAB, &id, &b_pub, crate::keys::fresh_x25519()).unwrap();
        let (mut reply, server_keys) =
            server_respond(NtorParams::ONIONLAB, &id, &b, &msg, crate::keys::fresh_x25519()).unwrap();
        let (client2, msg2) =
            ClientHandshake::start(NtorParams::ONIONLAB, &id, &b_pub, crate::keys::fresh_x25519()).unwrap();
        let (reply2, _) = server_respond(NtorParams::ONIONLAB, &id, &b, &msg2, crate::keys::fresh_x25519()).unwrap();
        assert_eq!(client2.finish(&reply2).unwrap().expand::<32>().len(), 32);
        reply[40] ^= 1;
        assert_eq!(client.finish(&reply).err(), Some(NtorError::BadAuth));
        assert_ne!(server_keys.expand::<32>()[..], [0u8; 32][..]);
        assert_eq!(
            server_respond(NtorParams::ONIONLAB, &[8u8; 32], &b, &msg, crate::keys::fresh_x25519()).err(),
            Some(NtorError::WrongRelay)
        );
        assert_eq!(
            server_respond(NtorParams::ONIONLAB, &id, &b, &msg[..50], crate::keys::fresh_x25519()).err(),
            Some(NtorError::BadLength)
        );
    }

    #[test]
    fn small_order_points_are_refused() {
        let b = crate::keys::fresh_x25519();
        let id = [1u8; 32];
        let mut msg = id.to_vec();
        msg.extend_from_slice(PublicKey::from(&b).as_bytes());
        msg.extend_from_slice(&[0u8; 32]);
        assert_eq!(
            server_respond(NtorParams::ONIONLAB, &id, &b, &msg, crate::keys::fresh_x25519()).err(),
            Some(NtorError::NotContributory)
        );
    }
}
