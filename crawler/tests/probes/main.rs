//! The tokio drivers and the swarm monitor against loopback counterparts built from the crate's
//! own codecs ([`support`]): trackers that answer, drop packets, fail or stay silent; peers that
//! seed a real torrent, serve corrupt pieces or bad metadata, send garbage, claim huge lengths or
//! never answer; whole campaigns over all of them. Every test is bounded in time.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod campaign;
mod peers;
mod support;
mod swarm;
mod trackers;
