//! Measurement analyses: pure functions from plain observation structs to estimates and flags.
//!
//! Nothing here does I/O or touches the store; the store adapts its rows to these input types.
//! Every function is total: empty or odd input gives an empty result or an error, never a panic
//! or a NaN.
//!
//! - [`sessions`]: probes to per-peer sessions (an up/down state machine over a measurement
//!   window), the naive and the create-based session-length samples (Stutzbach and Rejaie,
//!   "Understanding churn in peer-to-peer networks", IMC 2006), the empirical CDF, a
//!   Kolmogorov–Smirnov distance and a maximum-likelihood Weibull fit that accepts right-censored
//!   lengths.
//! - [`size`]: the size of a DHT from a crawl: distinct ids, and a density estimate from the
//!   XOR distance of the k-th closest id to random keys.
//! - [`sybil`]: Sybil signals over DHT crawl sightings: ids per IP and per /24 or /64 (against
//!   the limits BEP 42 and libtorrent's routing table set), ids packed near a key beyond what
//!   chance allows (Poisson tail of the count of ids sharing b leading bits), and ids rotating
//!   behind one IP:port.
//! - [`poisoning`]: poisoning signals per peer source (tracker, DHT node, PEX): unreachable
//!   peers, peers serving pieces that fail their hash, and peer sets disjoint from every other
//!   source's for the same info-hash.
//! - [`topology`]: overlay graphs (a Gnutella snapshot's ultrapeers): degree distribution, the
//!   share of connections held by the top-k nodes, giant-component robustness to random and
//!   highest-degree removal (Albert, Jeong and Barabási), and many ultrapeers in one /24.
//! - [`pollution`]: Gnutella query results: many hits for one query from one /24 (index
//!   poisoning), downloads whose size or SHA-1 is not what the hit advertised (decoys).
//! - [`Score`]: precision and recall of a flagged set against planted ground truth.

pub mod poisoning;
pub mod pollution;
pub mod sessions;
pub mod size;
pub mod sybil;
pub mod topology;

mod score;
mod special;
#[cfg(test)]
mod testutil;

pub use score::Score;
