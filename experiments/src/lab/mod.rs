//! Experiments on loopback: real sockets, a testbed started for the occasion (the simulated
//! DHT, the Gnutella overlay, the onion network), a real crawl or real circuits, and a score
//! against the testbed's ground truth. Each returns an [`Outcome`](crate::outcome::Outcome).
//!
//! - [`distribution_swarm`]: experiment 1 with real peers, client–server vs P2P distribution
//!   time over rate-limited loopback swarms against d_cs and d_P2P.
//! - [`robustness`]: experiment 5, random failure vs attack on random, scale-free and crawled
//!   Gnutella graphs.
//! - [`onion_sybil`]: experiment 8, Sybil relays in the onion network: circuits whose entry
//!   and exit are both the adversary's, against c², with and without guards and the per-IP cap.
//! - [`dht_census`]: experiment 9, Sybils and index poisoning on the simulated DHT.
//! - [`onionperf`]: experiment 10, OnionPerf-style timings through the onion testbed.

pub mod dht_census;
pub mod distribution_swarm;
pub mod onion_sybil;
pub mod onionperf;
pub mod robustness;

use std::collections::BTreeSet;
use std::path::Path;

use onionlab_crawler::campaign::run::STORE_FILE;
use onionlab_crawler::krpc::NodeId;
use onionlab_crawler::observe::Outcome as ProbeOutcome;
use onionlab_crawler::store::{CrawlId, Store, StoreError};

/// serde helper for the labs' parameters: a duration written as text (`15s`, `500ms`), read by
/// the crawler campaigns' rule.
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    onionlab_crawler::campaign::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// The DHT ids that answered in crawl `crawl` of the campaign output folder `folder`.
pub(crate) fn answered_ids(folder: &Path, crawl: CrawlId) -> Result<BTreeSet<NodeId>, StoreError> {
    let store = Store::open(folder.join(STORE_FILE))?;
    Ok(store
        .visits(crawl)?
        .into_iter()
        .filter(|v| v.outcome == ProbeOutcome::Ok && v.probe.is_dht())
        .filter_map(|v| v.remote_id.map(NodeId))
        .collect())
}
