//! Per-hop onion layers: how a relay cell's payload is sealed, wrapped and peeled.
//!
//! Each hop of a circuit shares four 32-byte keys with the client, expanded from its ntor key
//! material ([`HopKeys::from_material`]): for each direction, an AEAD key and a layer key.
//!
//! **Forward** (client → hop *t*): the client seals the 493-byte relay body with
//! ChaCha20-Poly1305 under hop *t*'s forward AEAD key, giving `tag(16) | ciphertext(493)` = 509
//! bytes, then wraps that in length-preserving ChaCha20 layers for hops *t-1* … 1 (outermost
//! is the first hop). Each relay first tries to open the payload with its own AEAD key: if the
//! tag verifies, the cell is for it ("recognized"); otherwise it peels its layer and passes
//! the cell on. **Backward** (hop *t* → client): hop *t* seals, each earlier hop adds its
//! backward layer, and the client peels hop by hop, trying each hop's AEAD key in turn.
//!
//! Nonces are per-hop, per-direction counters (separate for sealing and for layering), never
//! sent on the wire: both ends count the cells they process. So a replayed, dropped or
//! reordered cell opens with the wrong nonce at its target and fails, and the circuit is torn
//! down. The payload is 509 bytes at every hop in both directions.
//!
//! What this does and does not stop. A relay that flips bits in a cell (a *tagging* attack:
//! mark a cell at the guard, look for the mark at the exit) cannot make the mark readable:
//! the outer layers are a malleable stream cipher, but the change reaches the target hop's
//! AEAD, the 128-bit tag fails and the circuit dies. Tor's original relay crypto (tor1:
//! AES-CTR with a 32-bit running digest checked only at the end) has the same "tamper →
//! destroyed circuit" property but a weaker check; Counter Galois Onion (CGO) additionally
//! makes every layer a wide-block cipher, so a modification destroys the whole cell at the
//! next hop and the tag is refreshed per cell. What remains here, as in Tor: a malicious
//! guard that breaks circuits learns that the exit saw a failure (a denial-of-service
//! *signal*, the basis of selective-DoS attacks), and traffic timing and volume are visible
//! to anyone who watches both ends. A trial AEAD open costs one Poly1305 over 493 bytes per
//! hop and cell.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::cell::PAYLOAD_LEN;
use crate::ntor::KeyMaterial;
use crate::relay_msg::RELAY_BODY_LEN;

/// Bytes of the Poly1305 tag at the front of a sealed payload.
pub const TAG_LEN: usize = 16;

/// A relay cell payload as it travels: always 509 bytes.
pub type Payload = [u8; PAYLOAD_LEN];
/// A relay body in the clear: always 493 bytes.
pub type Body = [u8; RELAY_BODY_LEN];

/// The key material of one hop, in both directions.
pub struct HopKeys {
    forward: DirectionKeys,
    backward: DirectionKeys,
}

struct DirectionKeys {
    aead: ChaCha20Poly1305,
    layer_key: Zeroizing<[u8; 32]>,
    seal_counter: u64,
    layer_counter: u64,
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_le_bytes());
    n
}

/// A cell failed to open at the hop it was sealed for: tampered, replayed, reordered or lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("relay cell failed authentication at every hop (tampered, replayed, reordered or dropped)")]
pub struct NotRecognized;

impl DirectionKeys {
    fn new(aead_key: &[u8], layer_key: &[u8]) -> Self {
        let mut lk = Zeroizing::new([0u8; 32]);
        lk.copy_from_slice(layer_key);
        let mut ak = Zeroizing::new([0u8; 32]);
        ak.copy_from_slice(aead_key);
        DirectionKeys {
            aead: ChaCha20Poly1305::new(&(*ak).into()),
            layer_key: lk,
            seal_counter: 0,
            layer_counter: 0,
        }
    }

    fn seal(&mut self, body: &Body) -> Payload {
        let mut out = [0u8; PAYLOAD_LEN];
        out[TAG_LEN..].copy_from_slice(body);
        let n = nonce(self.seal_counter);
        self.seal_counter += 1;
        // ChaCha20-Poly1305 only fails for messages over 256 GiB.
        #[allow(clippy::expect_used)]
        let tag = self
            .aead
            .encrypt_inout_detached(&n.into(), &[], (&mut out[TAG_LEN..]).into())
            .expect("493 bytes always seal");
        out[..TAG_LEN].copy_from_slice(&tag);
        out
    }

    fn try_open(&mut self, payload: &Payload) -> Option<Body> {
        let mut body = [0u8; RELAY_BODY_LEN];
        body.copy_from_slice(&payload[TAG_LEN..]);
        let tag = Tag::try_from(&payload[..TAG_LEN]).ok()?;
        let n = nonce(self.seal_counter);
        self.aead
            .decrypt_inout_detached(&n.into(), &[], (&mut body[..]).into(), &tag)
            .ok()?;
        self.seal_counter += 1;
        Some(body)
    }

    fn apply_layer(&mut self, payload: &mut Payload) {
        let n = nonce(self.layer_counter);
        self.layer_counter += 1;
        ChaCha20::new(&(*self.layer_key).into(), &n.into()).apply_keystream(payload);
    }
}

impl HopKeys {
    /// Expands ntor key material into the four keys, in the order
    /// forward AEAD, forward layer, backward AEAD, backward layer.
    pub fn from_material(km: &KeyMaterial) -> Self {
        let k = km.expand::<128>();
        HopKeys {
            forward: DirectionKeys::new(&k[0..32], &k[32..64]),
            backward: DirectionKeys::new(&k[64..96], &k[96..128]),
        }
    }
}

/// What a relay does with a cell coming from the client's side.
#[derive(Debug)]
pub enum Inbound {
    /// The cell was sealed for this hop: here is the body.
    ForUs(Box<Body>),
    /// Not for this hop: the layer was peeled in place; send the payload to the next hop.
    PassOn,
}

/// A relay's view of its hop of a circuit.
pub struct RelayHop {
    keys: HopKeys,
}

impl RelayHop {
    /// A relay hop with freshly agreed keys.
    pub fn new(keys: HopKeys) -> Self {
        RelayHop { keys }
    }

    /// Processes a cell travelling away from the client.
    pub fn inbound(&mut self, payload: &mut Payload) -> Inbound {
        if let Some(body) = self.keys.forward.try_open(payload) {
            return Inbound::ForUs(Box::new(body));
        }
        self.keys.forward.apply_layer(payload);
        Inbound::PassOn
    }

    /// Seals a body this hop sends to the client.
    pub fn originate(&mut self, body: &Body) -> Payload {
        self.keys.backward.seal(body)
    }

    /// Adds this hop's layer to a cell from further along travelling to the client.
    pub fn outbound(&mut self, payload: &mut Payload) {
        self.keys.backward.apply_layer(payload);
    }
}

/// The client's view of a whole circuit: one [`HopKeys`] per hop, first hop first.
#[derive(Default)]
pub struct ClientLayers {
    hops: Vec<HopKeys>,
}

impl ClientLayers {
    /// A circuit with no hops yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the keys of a newly extended hop.
    pub fn push(&mut self, keys: HopKeys) {
        self.hops.push(keys);
    }

    /// Number of hops.
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    /// True before the first hop is added.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// Seals `body` for hop `target` (0-based) and wraps it for the hops before it.
    /// Returns `None` if there is no such hop.
    pub fn seal_for(&mut self, target: usize, body: &Body) -> Option<Payload> {
        let mut p = self.hops.get_mut(target)?.forward.seal(body);
        for hop in self.hops[..target].iter_mut().rev() {
            hop.forward.apply_layer(&mut p);
        }
        Some(p)
    }

    /// Peels a cell from the circuit: returns which hop sealed it and the body.
    pub fn open(&mut self, mut payload: Payload) -> Result<(usize, Box<Body>), NotRecognized> {
        for (i, hop) in self.hops.iter_mut().enumerate() {
            if let Some(body) = hop.backward.try_open(&payload) {
                return Ok((i, Box::new(body)));
            }
            hop.backward.apply_layer(&mut payload);
        }
        Err(NotRecognized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fresh_x25519;
    use crate::ntor::{ClientHandshake, NtorParams, server_respond};
    use x25519_dalek::PublicKey;

    /// Builds a client with `n` hops and the matching relay hops.
    fn circuit(n: usize) -> (ClientLayers, Vec<RelayHop>) {
        let mut client = ClientLayers::new();
        let mut relays = Vec::new();
        for i in 0..n {
            let b = fresh_x25519();
            let id = [i as u8; 32];
            let (hs, msg) =
                ClientHandshake::start(NtorParams::ONIONLAB, &id, &PublicKey::from(&b), fresh_x25519()).unwrap();
            let (reply, skm) = server_respond(NtorParams::ONIONLAB, &id, &b, &msg, fresh_x25519()).unwrap();
            client.push(HopKeys::from_material(&hs.finish(&reply).unwrap()));
            relays.push(RelayHop::new(HopKeys::from_material(&skm)));
        }
        (client, relays)
    }

    fn body(tag: u8) -> Body {
        [tag; RELAY_BODY_LEN]
    }

    /// Sends a forward cell through the relays; returns (hop that recognized it, body).
    fn forward(relays: &mut [RelayHop], mut p: Payload) -> Option<(usize, Body)> {
        for (i, r) in relays.iter_mut().enumerate() {
            assert_eq!(p.len(), PAYLOAD_LEN, "constant size at every hop");
            match r.inbound(&mut p) {
                Inbound::ForUs(b) => return Some((i, *b)),
                Inbound::PassOn => {}
            }
        }
        None
    }

    fn backward(relays: &mut [RelayHop], from: usize, b: &Body) -> Payload {
        let mut p = relays[from].originate(b);
        for r in relays[..from].iter_mut().rev() {
            r.outbound(&mut p);
        }
        p
    }

    #[test]
    fn each_hop_recognizes_its_own_cells_both_ways() {
        let (mut client, mut relays) = circuit(3);
        for round in 0..5u8 {
            for target in 0..3 {
                let p = client.seal_for(target, &body(round + target as u8)).unwrap();
                assert_eq!(forward(&mut relays, p), Some((target, body(round + target as u8))));
                let back = backward(&mut relays, target, &body(100 + round));
                let (hop, b) = client.open(back).unwrap();
                assert_eq!((hop, *b), (target, body(100 + round)));
            }
        }
    }

    #[test]
    fn middle_hop_sees_only_ciphertext() {
        let (mut client, mut relays) = circuit(3);
        let mut p = client.seal_for(2, &body(0x41)).unwrap();
        assert!(matches!(relays[0].inbound(&mut p), Inbound::PassOn));
        assert!(!p.windows(32).any(|w| w == [0x41; 32]));
    }

    #[test]
    fn tampered_cell_is_rejected_at_target() {
        let (mut client, mut relays) = circuit(3);
        let mut p = client.seal_for(2, &body(1)).unwrap();
        p[200] ^= 0x80; // the guard flips a bit
        assert_eq!(forward(&mut relays, p), None);
        let mut back = backward(&mut relays, 2, &body(2));
        back[300] ^= 1;
        assert!(client.open(back).is_err());
    }

    #[test]
    fn replayed_and_reordered_cells_are_rejected() {
        let (mut client, mut relays) = circuit(3);
        let first = client.seal_for(2, &body(1)).unwrap();
        let second = client.seal_for(2, &body(2)).unwrap();
        // Reordered: the second arrives first.
        assert_eq!(forward(&mut relays, second), None);
        let (mut client, mut relays) = circuit(3);
        let first_again = client.seal_for(2, &body(1)).unwrap();
        assert_eq!(forward(&mut relays, first_again), Some((2, body(1))));
        // Replayed.
        assert_eq!(forward(&mut relays, first_again), None);
        let _ = first;
        // Dropped: the client sends two, the first is lost.
        let (mut client, mut relays) = circuit(3);
        let _lost = client.seal_for(2, &body(1)).unwrap();
        let next = client.seal_for(2, &body(2)).unwrap();
        assert_eq!(forward(&mut relays, next), None);
        // Backward replay.
        let (mut client, mut relays) = circuit(3);
        let back = backward(&mut relays, 2, &body(9));
        assert!(client.open(back).is_ok());
        assert!(client.open(back).is_err());
    }

    #[test]
    fn unknown_hop_is_none() {
        let (mut client, _) = circuit(2);
        assert!(client.seal_for(2, &body(0)).is_none());
    }
}
