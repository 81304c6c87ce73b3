//! The Mainline DHT side of the crawler: a KRPC socket driver on tokio UDP, a crawl of the whole
//! node-id space, and a loopback DHT simulator with planted adversaries to test both against.
//!
//! - [`space`]: the XOR metric (distances, shared prefixes, bucket targets) and the seeded PRNG
//!   the simulator and the crawl draw ids from.
//! - [`socket`]: [`socket::KrpcSocket`] sends queries (as a read-only node, BEP 43) and matches
//!   replies to them by remote address and transaction id; each query can run through the
//!   [`crate::engine::Engine`] and records a [`crate::observe::Visit`].
//! - [`crawl`]: [`crawl::crawl`] visits every node it can find from a few bootstrap nodes, records
//!   the neighbour graph as [`crate::observe::Sighting`]s, separates responsive from silent nodes,
//!   flags id/address mismatches, estimates the network size, and can resume from recorded rows.
//! - [`sim`]: [`sim::SimNetwork`], thousands of real KRPC responders on 127.x.y.z with static
//!   k-bucket routing tables, Sybils, poisoners and silent nodes, and the ground truth about them.
//!
//! The DHT code never resolves host names: every address is a socket address.

pub mod crawl;
pub mod sim;
pub mod socket;
pub mod space;
