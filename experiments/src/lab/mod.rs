//! Experiments on loopback: real sockets, a testbed started for the occasion (the simulated
//! DHT, the Gnutella overlay, the onion network), a real crawl or real circuits, and a score
//! against the testbed's ground truth. Each returns an [`Outcome`](crate::outcome::Outcome).
//!
//! - [`distribution_swarm`]: experiment 1 with real peers, client–server vs P2P distribution
//!   time over rate-limited loopback swarms against d_cs and d_P2P.
//! - [`choking_swarm`]: experiment 3 with real peers: tit-for-tat's reward for capacity, a
//!   free rider, BitTyrant among standard and among PropShare clients.
//! - [`robustness`]: experiment 5, random failure vs attack on random, scale-free and crawled
//!   Gnutella graphs.
//! - [`onion_sybil`]: experiment 8, Sybil relays in the onion network: circuits whose entry
//!   and exit are both the adversary's, against c², with and without guards and the per-IP cap.
//! - [`onionperf`]: experiment 10, OnionPerf-style timings through the onion testbed.

pub mod choking_swarm;
pub mod distribution_swarm;
pub mod onion_sybil;
pub mod onionperf;
pub mod robustness;

/// serde helper for the labs' parameters: a duration written as text (`15s`, `500ms`) or as a
/// number of seconds, by the crawler campaigns' rule.
pub(crate) use onionlab_crawler::campaign::duration::deserialize as duration;
