//! # onionlab-crawler: measurement probes for real P2P overlays
//!
//! The BitTorrent side of the toolkit; the crawler depends on no onion crate. Codecs are sans I/O;
//! the probes that drive them over tokio sockets all run through one [`engine`] and record
//! [`observe`] rows.
//!
//! - [`bencode`]: a lenient, bounded decoder that records every non-canonical form it accepts
//!   (with byte offsets) and keeps raw byte spans; a canonical encoder.
//! - [`infohash`]: the 20-byte v1 info-hash, in hex and base32.
//! - [`metainfo`]: `.torrent` v1 files (single- and multi-file), info-hash over the raw `info` bytes.
//! - [`magnet`]: magnet links (BEP 9): parse and format.
//! - [`krpc`]: Mainline DHT messages (BEP 5, BEP 51 `sample_infohashes`): decode, canonical encode,
//!   BEP 42 node-id checks.
//! - [`peerwire`]: the peer wire protocol (BEP 3): handshake, length-prefixed messages with a
//!   streaming decoder, the BEP 10 extension handshake and BEP 9 `ut_metadata`.
//! - [`tracker`]: tracker protocols, HTTP (BEP 3, 23, 48) and UDP (BEP 15): requests, replies, timers.
//! - [`gnutella`]: Gnutella 0.6: the handshake with the crawler extension (`Crawler:` answered by
//!   `Peers:` and `Leaves:`) and the descriptors, with incremental decoders for both.
//! - [`observe`]: the rows every probe records (visits, sightings, peer states, piece checks).
//! - [`campaign`]: campaign files (targets, probes with schedules, analyses, exports).
//! - [`engine`]: bounded concurrency, per-IP politeness, timeouts, retries with backoff, one
//!   recorded visit per attempt.
#![forbid(unsafe_code)]

pub mod bencode;
pub mod campaign;
pub mod engine;
pub mod gnutella;
pub mod infohash;
pub mod krpc;
pub mod magnet;
pub mod metainfo;
pub mod observe;
pub mod peerwire;
pub mod tracker;
