//! # onionlab-proto: the onion wire, without I/O
//!
//! Everything two onionlab nodes must agree on byte for byte lives here as pure data types,
//! codecs and state machines: no sockets, no clock (time is passed in), no async runtime.
//! The daemons (`onionlab-relay`, `onionlab-client`, `onionlab-dirauth`) are thin tokio drivers
//! around these pieces, and the simulator can drive them directly.
//!
//! Bytes to meaning, bottom up:
//! - [`codec`]: the bounds-checked reader and writer every decoder is built on.
//! - [`cell`]: fixed 514-byte link cells and the CREATE2/CREATED2/DESTROY bodies.
//! - [`relay_msg`]: the relay messages carried, encrypted, inside RELAY cells.
//! - [`ntor`]: the ntor handshake (Tor's construction, parameterised by PROTOID and identity).
//! - [`layer`]: per-hop onion layers (ChaCha20-Poly1305 at the target hop, ChaCha20 outside).
//! - [`flow`]: SENDME circuit and stream windows.
//! - [`keys`]: relay identity (Ed25519) and onion (x25519) keys, and the link-authentication message.
//! - [`exit_policy`], [`descriptor`], [`consensus`]: signed directory documents and what they say.
//! - [`vote`]: one authority's signed view, and the deterministic vote → consensus rule.
//! - [`path`]: bandwidth-weighted path selection with its distinctness rules.
#![forbid(unsafe_code)]

pub mod cell;
pub mod codec;
pub mod consensus;
pub mod descriptor;
pub mod exit_policy;
pub mod flow;
pub mod keys;
pub mod layer;
pub mod ntor;
pub mod path;
pub mod random;
pub mod relay_msg;
pub mod vote;
