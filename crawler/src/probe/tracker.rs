//! Announce and scrape whatever the tracker's transport: [`TrackerClient`] picks the HTTP
//! ([`super::http_tracker`]) or UDP ([`super::udp_tracker`]) driver by the URL's scheme, and
//! both answer with the same [`Announce`] and [`Scrape`] values.

use std::time::Duration;

use crate::engine::{Engine, Reply, Target};
use crate::infohash::InfoHash;
use crate::observe::{ProbeKind, Visit};
use crate::tracker::http::{AnnounceRequest, Peer, ScrapeFile};

use super::http::HttpConfig;
use super::udp_tracker::{UdpConfig, UdpTracker};
use super::{Error, http_tracker, resolve};

/// An announce reply, from either transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Seconds until the next regular announce.
    pub interval: u32,
    /// Announces must not be more frequent than this (HTTP only).
    pub min_interval: Option<u32>,
    /// Peers with the whole torrent (HTTP `complete`, UDP `seeders`).
    pub seeders: Option<u64>,
    /// Peers still downloading (HTTP `incomplete`, UDP `leechers`).
    pub leechers: Option<u64>,
    /// The peers, in wire order (UDP peers never carry a peer id or a host name).
    pub peers: Vec<Peer>,
    /// A `warning message` (HTTP only).
    pub warning: Option<Vec<u8>>,
    /// A `tracker id` to send back (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
    /// The reply body or packet as received.
    pub raw: Vec<u8>,
    /// Non-canonical bencode forms in the reply (HTTP only).
    pub deviations: u32,
}

impl Reply for Announce {
    fn describe(&self, visit: &mut Visit) {
        visit.raw = Some(self.raw.clone());
        visit.deviations = self.deviations;
    }
}

/// A scrape reply, from either transport.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scrape {
    /// Counts per info-hash (UDP: in request order; HTTP: as the tracker listed them).
    pub files: Vec<(InfoHash, ScrapeFile)>,
    /// The reply as received (UDP requests of more than 74 hashes: the packets, concatenated).
    pub raw: Vec<u8>,
    /// Non-canonical bencode forms in the reply (HTTP only).
    pub deviations: u32,
}

impl Reply for Scrape {
    fn describe(&self, visit: &mut Visit) {
        visit.raw = Some(self.raw.clone());
        visit.deviations = self.deviations;
    }
}

impl Scrape {
    /// The counts for `info_hash`, if the tracker gave them.
    pub fn get(&self, info_hash: &InfoHash) -> Option<&ScrapeFile> {
        self.files.iter().find(|(h, _)| h == info_hash).map(|(_, f)| f)
    }
}

/// The settings of both transports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    /// HTTP client limits.
    pub http: HttpConfig,
    /// UDP retransmission schedule.
    pub udp: UdpConfig,
}

/// Announces and scrapes over HTTP or UDP, chosen by the URL (cheap to clone; clones share the
/// UDP connection-id cache).
#[derive(Debug, Clone)]
pub struct TrackerClient {
    engine: Engine,
    http: HttpConfig,
    udp: UdpTracker,
}

impl TrackerClient {
    /// A client running its probes on `engine`.
    pub fn new(engine: Engine, cfg: TrackerConfig) -> Self {
        TrackerClient {
            udp: UdpTracker::new(engine.clone(), cfg.udp),
            http: cfg.http,
            engine,
        }
    }

    /// Announces `req` to the tracker at `url` (`http://` or `udp://`), recording a visit per
    /// attempt and a sighting per peer returned.
    pub async fn announce(&self, url: &str, req: &AnnounceRequest) -> Result<Announce, Error> {
        match Scheme::of(url)? {
            Scheme::Http => http_tracker::announce(&self.engine, &self.http, url, req).await,
            Scheme::Udp => self.udp.announce(url, req).await,
        }
    }

    /// Scrapes `info_hashes` from the tracker whose announce URL is `url`.
    pub async fn scrape(&self, url: &str, info_hashes: &[InfoHash]) -> Result<Scrape, Error> {
        match Scheme::of(url)? {
            Scheme::Http => http_tracker::scrape(&self.engine, &self.http, url, info_hashes).await,
            Scheme::Udp => self.udp.scrape(url, info_hashes).await,
        }
    }
}

enum Scheme {
    Http,
    Udp,
}

impl Scheme {
    fn of(url: &str) -> Result<Scheme, Error> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http") => Ok(Scheme::Http),
            Some("udp") => Ok(Scheme::Udp),
            _ => Err(Error::Unusable(format!(
                "{url:?}: only http:// and udp:// trackers are supported"
            ))),
        }
    }
}

/// The target of a tracker probe: the announce URL, and the address `host` resolves to now
/// (for politeness and the visit), if it does within `engine`'s timeout. A name that does not
/// resolve leaves the address empty; each attempt then resolves again and records why it failed.
pub(crate) async fn tracker_target(engine: &Engine, probe: ProbeKind, url: &str, host: &str, port: u16) -> Target {
    let timeout: Duration = engine.config().timeout;
    let addr = tokio::time::timeout(timeout, resolve(host, port))
        .await
        .ok()
        .and_then(Result::ok);
    Target {
        probe,
        target: url.to_string(),
        addr,
        info_hash: None,
    }
}
