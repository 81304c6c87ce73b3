//! A Gnutella 0.6 two-tier overlay on loopback, to attack and to measure: ultrapeers and
//! leaves, each on its own 127.x.y.z, speaking the real protocol through the crawler crate's
//! codecs ([`onionlab_crawler::gnutella`]; nothing here encodes a handshake or a descriptor by
//! hand), with planted adversaries, churn, and a ground truth to score crawlers against.
//!
//! # What runs
//!
//! - **Ultrapeers** listen in the base /16, one per /24 (default 127.60.0.0/16, clear of the onion
//!   testbed's 127.0/16 and the DHT simulator's 127.1–127.4 and 127.10–127.40), link to each
//!   other per the plan (random, or Barabási–Albert preferential for a scale-free graph) and
//!   take leaves up to `max_leaves`; beyond their caps they answer 503 with
//!   `X-Try-Ultrapeers`. The handshake is the 0.6 three blocks both ways with `User-Agent`,
//!   `X-Ultrapeer`, `Listen-IP`, `Remote-IP` and `X-Query-Routing`. To `Crawler: 0.1` they
//!   answer like gtk-gnutella: `Peers:` (ultrapeer neighbours) and `Leaves:`; a leaf answers
//!   with `Peers:` only (its ultrapeers) and refuses everything else with 503.
//! - **Leaves** attach to 1–3 ultrapeers and send each a real QRP table (RESET + PATCH,
//!   uncompressed 4-bit entries, the spec's hash; [`onionlab_crawler::gnutella::qrp`]); an ultrapeer forwards a query to a
//!   leaf only when the leaf's table matches every keyword (or the `urn:sha1`).
//! - **Routing** ([`routing`]): queries flood among ultrapeers with TTL decrement and hops
//!   increment, duplicates suppressed by GUID in bounded, expiring tables (a copy with more TTL
//!   re-floods, so reach is exactly the TTL ball), hits return on the reverse path, Ping/Pong
//!   likewise, keepalive Pings on idle links, Bye when a node leaves. Per-connection queues are
//!   bounded (full: drop and count), every read is size-limited and every wait timed.
//! - **Files** ([`files`]): a seeded catalogue with Zipf popularity; leaves serve
//!   `GET /get/<index>/<name>` and `GET /uri-res/N2R?urn:sha1:<base32>` on their Gnutella port
//!   (told apart by the first bytes), with `Content-Length` and `X-Gnutella-Content-URN`.
//! - **Adversaries**: Sybil ultrapeers (consecutive addresses of the next /16, each dialing
//!   honest ultrapeers; black holes for queries unless told to forward), poisoners (leaves from the
//!   middle of that /16 whose hits claim the most popular titles' names, sizes and hashes and serve garbage, of the
//!   right or half the size), free riders (no files, no hits, 503 to every download — they
//!   still search and get hits), and churn ([`churn`]: Weibull sessions and downtimes; a node
//!   that leaves says Bye, closes, and later rejoins on the same address).
//! - **Truth** ([`truth`]): the live topology at any moment (links both ends agree on), roles
//!   and behaviours, counters per node, and the log of true sessions.
//!
//! Everything follows from [`OverlayConfig::seed`]: ids, topology, files, roles and the churn
//! schedule are one [`Plan`], drawn before any socket opens. Timing is not seeded: which copy
//! of a query wins a race may differ between runs, but what the routing rules guarantee (reach,
//! reverse paths) does not.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), onionlab_experiments::gnutella::OverlayError> {
//! use onionlab_experiments::gnutella::{Overlay, OverlayConfig};
//! use std::time::Duration;
//! let overlay = Overlay::start(OverlayConfig::default(), Duration::from_secs(60)).await?;
//! let truth = overlay.truth();
//! let leaf = overlay.plan().leaf_links[0].0;
//! let guid = overlay.search(leaf, "amber river", None, 3)?;
//! // ... later
//! let hits = overlay.hits(leaf, &guid);
//! # let _ = (truth, hits); Ok(()) }
//! ```
//!
//! Not built: Push routing (every node is reachable), deflate on the link, GGEP, pong
//! caching, dynamic querying, HTTP ranges and keep-alive. Ultrapeers share no files.

pub mod churn;
pub mod config;
pub mod files;
mod leaf;
mod node;
mod overlay;
pub mod routing;
mod servent;
pub mod topology;
pub mod truth;
mod ultrapeer;

pub use config::{
    ChurnConfig, ConfigError, DecoyKind, FileConfig, LimitConfig, OverlayConfig, PoisonConfig, SybilConfig,
    TopologyModel, WeibullParams,
};
pub use leaf::route_table;
pub use node::{NodeCounters, SearchHit};
pub use overlay::{Overlay, OverlayError};
pub use servent::ConnError;
pub use topology::{Behaviour, Plan, PlannedNode, Role};
pub use truth::{AddrTopology, NodeTruth, SessionRecord, Truth};
pub use ultrapeer::{Admission, admit};
