//! # onionlab-crawler: measurement probes for real P2P overlays
//!
//! The measurement side of the toolkit (BitTorrent, Gnutella and onion relay censuses); the crawler depends on no onion crate. Codecs are sans I/O;
//! the probes that drive them over tokio sockets all run through one [`engine`] and record
//! [`observe`] rows.
//!
//! - [`bencode`]: a lenient, bounded decoder that records every non-canonical form it accepts
//!   (with byte offsets) and keeps raw byte spans; a canonical encoder.
//! - [`compact`]: compact peer addresses (6 or 18 bytes), shared by trackers, KRPC and PEX.
//! - [`infohash`]: the 20-byte v1 info-hash, in hex and base32.
//! - [`metainfo`]: `.torrent` v1 files (single- and multi-file), info-hash over the raw `info` bytes.
//! - [`magnet`]: magnet links (BEP 9): parse and format.
//! - [`krpc`]: Mainline DHT messages (BEP 5, BEP 51 `sample_infohashes`): decode, canonical encode,
//!   BEP 42 node-id checks.
//! - [`peerwire`]: the peer wire protocol (BEP 3): handshake, length-prefixed messages with a
//!   streaming decoder, the BEP 10 extension handshake and BEP 9 `ut_metadata`.
//! - [`tracker`]: tracker protocols, HTTP (BEP 3, 23, 48) and UDP (BEP 15): requests, replies, timers.
//! - [`dht`]: the Mainline DHT: a KRPC socket driver, a crawl of the whole id space (neighbour graph,
//!   responsive and silent nodes, id/address mismatches, size estimate), and a loopback DHT simulator
//!   with planted Sybils, poisoners and silent nodes.
//! - [`gnutella`]: Gnutella 0.6: the handshake with the crawler extension (`Crawler:` answered by
//!   `Peers:` and `Leaves:`) and the descriptors, with incremental decoders for both; the
//!   topology crawl (breadth-first snapshots over ultrapeers, churn across snapshots) and the
//!   content probe (join as a leaf, query, check the hits' downloads).
//! - [`onion`]: the onion directory authorities' public view of the consensus (JSON), the input of
//!   a relay census; read over HTTP like any other protocol, without an onion crate.
//! - [`observe`]: the rows every probe records (visits, sightings, peer states, piece checks).
//! - [`campaign`]: campaign files (targets, probes with schedules, analyses, exports).
//! - [`engine`]: bounded concurrency, per-IP politeness, timeouts, retries with backoff, one
//!   recorded visit per attempt.
//! - [`analysis`]: the measurement analyses as pure functions over plain observations: sessions and
//!   lifetimes (create-based method, Weibull fit), network size, Sybil and poisoning signals.
//! - [`store`]: the observation store (SQLite, WAL, one batching writer thread): crawls that can be
//!   resumed after a kill, typed reads for the analyses, export to Parquet and CSV.
//! - [`probe`]: the tokio drivers: HTTP and UDP tracker announce/scrape, peer wire sessions
//!   (handshake, extension handshake, pieces held, PEX), `ut_metadata` fetch, verified pieces,
//!   relay censuses.
//! - [`swarm`]: the swarm monitor: peers from trackers, PEX and a feed (for the DHT), visited
//!   every round for their state, and a content check of the pieces they serve.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod bencode;
pub mod campaign;
pub mod compact;
pub mod dht;
pub mod engine;
pub mod gnutella;
pub mod infohash;
pub mod krpc;
pub mod magnet;
pub mod metainfo;
pub mod observe;
pub mod onion;
pub mod peerwire;
pub mod probe;
pub mod store;
pub mod swarm;
pub mod tracker;
