//! A BitTorrent peer of our own, for testbed swarms on 127.0.0.0/8, built on the crawler's
//! codecs (peer wire, metainfo, HTTP tracker). The protocol and choking core is sans I/O, time
//! passed in (the quinn habit); tokio drives it.
//!
//! - [`bitfield`]: which pieces a peer holds, checked on the wire.
//! - [`torrent`]: making a torrent, its geometry, the verified in-memory [`PieceStore`].
//! - [`picker`]: rarest first with a random first piece, strict priority and endgame.
//! - [`choker`]: the standard choker and the BitTyrant, PropShare and BitThief strategies.
//! - [`rate`]: token buckets and rate meters.
//! - [`client`]: one client's protocol state over all its connections.
//! - [`tracker`]: a minimal BEP 3 HTTP tracker (compact peers) run in-process.
//! - [`node`]: the tokio driver: listener, connections, rate limits, announces.
//! - [`runner`]: a seed and N leechers (and free riders), each on its own 127.x.y.z, with
//!   rate limits; completion times and bytes up and down per peer.
//! - [`standalone`]: one seed, leecher or tracker run by hand, for interop with other clients.
//!
//! [`PieceStore`]: torrent::PieceStore

pub mod bitfield;
pub mod choker;
pub mod client;
pub mod node;
pub mod picker;
pub mod rate;
pub mod runner;
pub mod standalone;
pub mod torrent;
pub mod tracker;
