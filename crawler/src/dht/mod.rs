//! The Mainline DHT side of the crawler: the XOR key space and a KRPC socket driver on tokio UDP.
//!
//! - [`space`]: the XOR metric (distances, shared prefixes, bucket targets) and the seeded PRNG
//!   the simulator and the crawl draw ids from.
//! - [`socket`]: [`socket::KrpcSocket`] sends queries (as a read-only node, BEP 43) and matches
//!   replies to them by remote address and transaction id; each query can run through the
//!   [`crate::engine::Engine`] and records a [`crate::observe::Visit`].
//!
//! The DHT code never resolves host names: every address is a socket address.

pub mod socket;
pub mod space;
