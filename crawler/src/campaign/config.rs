//! The campaign file: what to measure, how hard, for how long, and where the results go.
//!
//! ```yaml
//! name: dht-census
//! description: Census of the lab DHT, twice a minute.
//! duration: 10m                 # stop after this long (Ctrl-C stops earlier; --resume continues)
//! output: results/dht-census    # relative to this file; holds crawl.sqlite, parquet/, csv/, summary.txt
//! engine:                       # the probe engine's rules (all optional)
//!   concurrency: 256
//!   per_ip_interval: 1s         # politeness: at most one query per second per IP address
//!   timeout: 5s
//!   attempts: 2
//!   backoff: 1s
//!   deny: [10.0.0.0/8]          # never contact these ranges (multicast and reserved always are)
//! targets:
//!   dht_bootstrap: [127.0.0.1:6881]
//!   torrents: [payload.torrent]   # relative to this file
//!   magnets: []
//!   info_hashes: []               # 40 hex digits
//!   trackers: []                  # extra announce URLs (http:// or udp://)
//!   gnutella_bootstrap: [127.0.0.1:6346]   # Gnutella 0.6 ultrapeers to start topology crawls from
//!   onion_authorities: [127.0.254.1:7000]  # onion directory authorities (HTTP) for relay censuses
//! probes:
//!   - dht_crawl: { every: 30s, max_duration: 20s, get_peers: true }   # also: max_nodes, sample_infohashes, bind
//!   - tracker: { every: 60s, scrape: true }
//!   - swarm: { every: 30s, sample_pieces: 1 }     # also: pex (default true), linger (2s)
//!   - gnutella_crawl: { every: 60s, max_duration: 30s }   # also: contact_leaves, max_contacts, recrawl_interval
//!   - onion_consensus: { every: 60s }   # every authority's view of the consensus: relays listed and left out
//! analyses: [sessions, sybil, poisoning, size]
//! sybil: { max_ids_per_ip: 2, max_ids_per_subnet: 8 }   # thresholds; 0 turns the /24 signal off
//! export: [parquet, csv]
//! ```
//!
//! Unknown fields are refused; syntax and type errors name the line and column; the checks that
//! span fields ([`Campaign::validate`]) name the field they are about.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::analysis::sybil::SybilConfig;
use crate::engine::{Cidr, DenyList, EngineConfig};
use crate::infohash::InfoHash;
use crate::magnet::Magnet;
use crate::swarm::SwarmTarget;

/// Largest campaign file read.
pub const MAX_CAMPAIGN_LEN: u64 = 1024 * 1024;

/// A measurement campaign.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// A short name, used in the store and the summary.
    pub name: String,
    /// What the campaign is for.
    #[serde(default)]
    pub description: String,
    /// How long the campaign runs.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub duration: Duration,
    /// The output folder (relative paths are relative to the campaign file).
    pub output: PathBuf,
    /// The probe engine's rules.
    #[serde(default)]
    pub engine: EngineSection,
    /// What to measure.
    #[serde(default)]
    pub targets: Targets,
    /// The probes and their schedules.
    pub probes: Vec<ProbeSpec>,
    /// Analyses run over the store at the end.
    #[serde(default)]
    pub analyses: Vec<AnalysisKind>,
    /// Thresholds of the Sybil analysis.
    #[serde(default)]
    pub sybil: SybilSection,
    /// Export formats written at the end (default: both).
    #[serde(default = "default_export")]
    pub export: Vec<ExportFormat>,
    /// The campaign text as written (recorded with each run).
    #[serde(skip)]
    pub source: String,
}

fn default_export() -> Vec<ExportFormat> {
    vec![ExportFormat::Parquet, ExportFormat::Csv]
}

/// The `engine:` section; every field is optional and defaults to [`EngineConfig::default`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Attempts in flight at once.
    pub concurrency: Option<usize>,
    /// Minimum spacing of attempts to one IP address.
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub per_ip_interval: Option<Duration>,
    /// Deadline of one attempt.
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// Attempts in all for a probe that gets no answer.
    pub attempts: Option<u32>,
    /// Wait before the first retry.
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub backoff: Option<Duration>,
    /// Address ranges never to contact, in CIDR notation, besides the default ones.
    #[serde(default)]
    pub deny: Vec<String>,
}

impl EngineSection {
    /// The engine configuration: these values over the defaults.
    pub fn to_config(&self) -> EngineConfig {
        let d = EngineConfig::default();
        EngineConfig {
            concurrency: self.concurrency.unwrap_or(d.concurrency),
            per_ip_interval: self.per_ip_interval.unwrap_or(d.per_ip_interval),
            timeout: self.timeout.unwrap_or(d.timeout),
            attempts: self.attempts.unwrap_or(d.attempts),
            backoff: self.backoff.unwrap_or(d.backoff),
        }
    }

    /// The deny-list: the default ranges plus `deny` (ranges that do not parse are refused by
    /// [`Campaign::validate`] and skipped here).
    pub fn deny_list(&self) -> DenyList {
        DenyList::with(self.deny.iter().filter_map(|r| r.parse::<Cidr>().ok()))
    }
}

/// The `targets:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// DHT nodes to start from.
    #[serde(default)]
    pub dht_bootstrap: Vec<SocketAddr>,
    /// .torrent files (relative to the campaign file).
    #[serde(default)]
    pub torrents: Vec<PathBuf>,
    /// Magnet links.
    #[serde(default)]
    pub magnets: Vec<String>,
    /// Bare info-hashes (40 hex digits or 32 base32 characters).
    #[serde(default)]
    pub info_hashes: Vec<String>,
    /// Announce URLs used for every swarm besides those of the torrents and magnets.
    #[serde(default)]
    pub trackers: Vec<String>,
    /// Gnutella 0.6 servents (ultrapeers) to start topology crawls from.
    #[serde(default)]
    pub gnutella_bootstrap: Vec<SocketAddr>,
    /// Onion directory authorities (their HTTP address) whose consensus a relay census reads.
    #[serde(default)]
    pub onion_authorities: Vec<SocketAddr>,
}

/// One probe and its schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ProbeSpec {
    /// Crawl the DHT from `targets.dht_bootstrap`.
    DhtCrawl(DhtCrawlSpec),
    /// Announce to (and scrape) every tracker of every swarm.
    Tracker(TrackerSpec),
    /// Monitor every swarm: gather peers, connect to each, verify sample pieces.
    Swarm(SwarmSpec),
    /// Snapshot the Gnutella overlay's topology from `targets.gnutella_bootstrap` (the crawler
    /// handshake, breadth first over the ultrapeers).
    GnutellaCrawl(GnutellaCrawlSpec),
    /// Read every authority of `targets.onion_authorities`' view of the consensus: a census of
    /// the relays listed and left out.
    OnionConsensus(OnionConsensusSpec),
}

impl ProbeSpec {
    /// The probe's name as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            ProbeSpec::DhtCrawl(_) => "dht_crawl",
            ProbeSpec::Tracker(_) => "tracker",
            ProbeSpec::Swarm(_) => "swarm",
            ProbeSpec::GnutellaCrawl(_) => "gnutella_crawl",
            ProbeSpec::OnionConsensus(_) => "onion_consensus",
        }
    }

    /// Time between two rounds; `None` runs once.
    pub fn every(&self) -> Option<Duration> {
        match self {
            ProbeSpec::DhtCrawl(s) => s.every,
            ProbeSpec::Tracker(s) => s.every,
            ProbeSpec::Swarm(s) => s.every,
            ProbeSpec::GnutellaCrawl(s) => s.every,
            ProbeSpec::OnionConsensus(s) => s.every,
        }
    }
}

/// `dht_crawl:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhtCrawlSpec {
    /// Time between two crawls (default: crawl once).
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub every: Option<Duration>,
    /// Longest time one crawl may take.
    #[serde(
        default = "default_crawl_duration",
        deserialize_with = "super::duration::deserialize"
    )]
    pub max_duration: Duration,
    /// Most nodes one crawl visits.
    #[serde(default = "default_max_nodes")]
    pub max_nodes: usize,
    /// Ask the nodes closest to each info-hash for its peers.
    #[serde(default)]
    pub get_peers: bool,
    /// Ask every node for a BEP 51 sample of the info-hashes it stores.
    #[serde(default)]
    pub sample_infohashes: bool,
    /// Local addresses to send from, one UDP socket each (default `0.0.0.0:0`); several spread
    /// queries over source addresses, for nodes that rate-limit per source.
    #[serde(default)]
    pub bind: Vec<SocketAddr>,
}

fn default_crawl_duration() -> Duration {
    Duration::from_secs(60)
}

fn default_max_nodes() -> usize {
    1_000_000
}

/// `gnutella_crawl:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GnutellaCrawlSpec {
    /// Time between two snapshots (default: one snapshot).
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub every: Option<Duration>,
    /// Longest time one snapshot may take.
    #[serde(
        default = "default_crawl_duration",
        deserialize_with = "super::duration::deserialize"
    )]
    pub max_duration: Duration,
    /// Contact the leaves too (by default only ultrapeers are crawled; leaves are seen in
    /// their ultrapeers' `Leaves:`).
    #[serde(default)]
    pub contact_leaves: bool,
    /// Most servents contacted per snapshot.
    #[serde(default = "default_max_nodes")]
    pub max_contacts: usize,
    /// The least time between two crawls of one servent (servents limit how often a crawler
    /// may come back); default the snapshot interval.
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub recrawl_interval: Option<Duration>,
}

/// `onion_consensus:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnionConsensusSpec {
    /// Time between two censuses (default: one census). A consensus is fresh for the
    /// authorities' voting interval (an hour in Tor; a second in the onion testbed).
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub every: Option<Duration>,
}

/// `tracker:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerSpec {
    /// Time between two announces (default: once).
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub every: Option<Duration>,
    /// Scrape as well as announce.
    #[serde(default = "yes")]
    pub scrape: bool,
}

/// `swarm:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmSpec {
    /// Time between two rounds of connections to every known peer (default: once).
    #[serde(default, deserialize_with = "super::duration::deserialize_opt")]
    pub every: Option<Duration>,
    /// Pieces to download and verify from each peer per round (0: none).
    #[serde(default)]
    pub sample_pieces: u32,
    /// Use PEX to learn more peers.
    #[serde(default = "yes")]
    pub pex: bool,
    /// How long each peer session listens after the handshake (for `have`s and PEX).
    #[serde(default = "default_linger", deserialize_with = "super::duration::deserialize")]
    pub linger: Duration,
}

fn default_linger() -> Duration {
    Duration::from_secs(2)
}

fn yes() -> bool {
    true
}

/// The `sybil:` section: thresholds of the Sybil signals (defaults: [`SybilConfig::default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SybilSection {
    /// Flag an IP with more distinct ids than this.
    pub max_ids_per_ip: Option<usize>,
    /// Flag a /24 or /64 with more distinct ids than this; `0` turns the signal off (for a
    /// loopback testbed, where hundreds of honest nodes share each /24).
    pub max_ids_per_subnet: Option<usize>,
    /// Flag an IP:port whose id changed more often than this.
    pub max_id_changes_per_addr: Option<usize>,
}

impl SybilSection {
    /// The analysis configuration: these values over the defaults.
    pub fn to_config(&self) -> SybilConfig {
        let d = SybilConfig::default();
        SybilConfig {
            max_ids_per_ip: self.max_ids_per_ip.unwrap_or(d.max_ids_per_ip),
            max_ids_per_subnet: match self.max_ids_per_subnet {
                Some(0) => usize::MAX,
                Some(n) => n,
                None => d.max_ids_per_subnet,
            },
            max_id_changes_per_addr: self.max_id_changes_per_addr.unwrap_or(d.max_id_changes_per_addr),
            ..d
        }
    }
}

/// An analysis run at the end of the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisKind {
    /// Peer sessions and lifetimes (create-based, Weibull fit).
    Sessions,
    /// Sybil signals over DHT identities (and over onion relays, when a census ran).
    Sybil,
    /// Poisoning signals over swarms and peer sources.
    Poisoning,
    /// DHT size estimate.
    Size,
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One Parquet file per table.
    Parquet,
    /// One CSV file per table.
    Csv,
}

/// Why a campaign file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CAMPAIGN_LEN`].
    #[error("{0} is larger than 1 MiB; is it really a campaign file?")]
    TooLarge(String),
    /// Not YAML, or not the campaign schema (the message has the line and column).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The parser's message, with the location and a snippet.
        message: String,
    },
    /// Fields that do not fit together.
    #[error("{path}: {field}: {message}")]
    Inconsistent {
        /// The file.
        path: String,
        /// The field concerned.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Read a campaign file of at most [`MAX_CAMPAIGN_LEN`] bytes (the size is checked before
/// reading). Shared with the experiment campaigns of `onionlab run`.
pub fn read_campaign_text(path: &Path) -> Result<String, CampaignError> {
    let shown = path.display().to_string();
    let read_err = |source| CampaignError::Read {
        path: shown.clone(),
        source,
    };
    if std::fs::metadata(path).map_err(read_err)?.len() > MAX_CAMPAIGN_LEN {
        return Err(CampaignError::TooLarge(shown));
    }
    std::fs::read_to_string(path).map_err(read_err)
}

/// Parse YAML of at most [`MAX_CAMPAIGN_LEN`] bytes into `T` with serde-saphyr's budgets
/// against hostile input; errors name the line and column. `origin` names the text in errors.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(yaml: &str, origin: &str) -> Result<T, CampaignError> {
    if yaml.len() as u64 > MAX_CAMPAIGN_LEN {
        return Err(CampaignError::TooLarge(origin.to_owned()));
    }
    serde_saphyr::from_str(yaml).map_err(|e| CampaignError::Invalid {
        path: origin.to_owned(),
        message: e.to_string(),
    })
}

impl Campaign {
    /// Parse campaign text; `origin` names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<Campaign, CampaignError> {
        let mut campaign: Campaign = parse_yaml(yaml, origin)?;
        yaml.clone_into(&mut campaign.source);
        campaign.validate(origin)?;
        Ok(campaign)
    }

    /// Read and parse a campaign file; relative paths in it are made relative to its folder.
    pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = read_campaign_text(path)?;
        let mut campaign = Campaign::parse(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        campaign.output = base.join(&campaign.output);
        for t in &mut campaign.targets.torrents {
            *t = base.join(&*t);
        }
        Ok(campaign)
    }

    /// The checks that span fields.
    pub fn validate(&self, origin: &str) -> Result<(), CampaignError> {
        let bad = |field: &str, message: &str| CampaignError::Inconsistent {
            path: origin.to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if self.duration.is_zero() {
            return Err(bad("duration", "must be longer than zero"));
        }
        if self.probes.is_empty() {
            return Err(bad(
                "probes",
                "list at least one probe (dht_crawl, tracker, swarm, gnutella_crawl or onion_consensus)",
            ));
        }
        if self.engine.concurrency == Some(0) {
            return Err(bad("engine.concurrency", "must be at least 1"));
        }
        if self.engine.attempts == Some(0) {
            return Err(bad("engine.attempts", "must be at least 1"));
        }
        for (i, range) in self.engine.deny.iter().enumerate() {
            range
                .parse::<Cidr>()
                .map_err(|e| bad(&format!("engine.deny[{i}]"), &e))?;
        }
        for (i, magnet) in self.targets.magnets.iter().enumerate() {
            Magnet::parse(magnet).map_err(|e| bad(&format!("targets.magnets[{i}]"), &e.to_string()))?;
        }
        for (i, hash) in self.targets.info_hashes.iter().enumerate() {
            InfoHash::parse(hash).map_err(|e| bad(&format!("targets.info_hashes[{i}]"), &e.to_string()))?;
        }
        for (i, url) in self.targets.trackers.iter().enumerate() {
            if !(url.starts_with("http://") || url.starts_with("udp://")) {
                return Err(bad(
                    &format!("targets.trackers[{i}]"),
                    "an announce URL starts with http:// or udp://",
                ));
            }
        }
        let has_swarm = !(self.targets.torrents.is_empty()
            && self.targets.magnets.is_empty()
            && self.targets.info_hashes.is_empty());
        for (i, probe) in self.probes.iter().enumerate() {
            let field = format!("probes[{i}].{}", probe.name());
            if probe.every().is_some_and(|d| d.is_zero()) {
                return Err(bad(&format!("{field}.every"), "must be longer than zero"));
            }
            match probe {
                ProbeSpec::DhtCrawl(s) => {
                    if self.targets.dht_bootstrap.is_empty() {
                        return Err(bad(&field, "needs targets.dht_bootstrap"));
                    }
                    if s.get_peers && !has_swarm {
                        return Err(bad(
                            &format!("{field}.get_peers"),
                            "needs torrents, magnets or info_hashes",
                        ));
                    }
                }
                ProbeSpec::Tracker(_) | ProbeSpec::Swarm(_) if !has_swarm => {
                    return Err(bad(
                        &field,
                        "needs targets.torrents, targets.magnets or targets.info_hashes",
                    ));
                }
                ProbeSpec::Tracker(_) | ProbeSpec::Swarm(_) => {}
                ProbeSpec::GnutellaCrawl(s) => {
                    if self.targets.gnutella_bootstrap.is_empty() {
                        return Err(bad(&field, "needs targets.gnutella_bootstrap"));
                    }
                    if s.max_duration.is_zero() {
                        return Err(bad(&format!("{field}.max_duration"), "must be longer than zero"));
                    }
                }
                ProbeSpec::OnionConsensus(_) if self.targets.onion_authorities.is_empty() => {
                    return Err(bad(&field, "needs targets.onion_authorities"));
                }
                ProbeSpec::OnionConsensus(_) => {}
            }
        }
        Ok(())
    }

    /// Every swarm named by the targets, with its trackers (the torrent's, the magnet's and the
    /// campaign-wide ones) and known peers, merged by info-hash. Reads the torrent files.
    pub fn swarms(&self) -> Result<Vec<SwarmTarget>, CampaignError> {
        let mut found = Vec::new();
        for path in &self.targets.torrents {
            let shown = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|source| CampaignError::Read {
                path: shown.clone(),
                source,
            })?;
            let m = crate::metainfo::Metainfo::parse(&bytes).map_err(|e| CampaignError::Invalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            found.push(SwarmTarget::from_metainfo(&m));
        }
        found.extend(
            self.targets
                .magnets
                .iter()
                .filter_map(|t| Magnet::parse(t).ok())
                .map(|m| SwarmTarget::from_magnet(&m)),
        );
        found.extend(
            self.targets
                .info_hashes
                .iter()
                .filter_map(|t| InfoHash::parse(t).ok())
                .map(|info_hash| SwarmTarget {
                    info_hash,
                    info: None,
                    trackers: Vec::new(),
                    peers: Vec::new(),
                }),
        );
        let mut out: Vec<SwarmTarget> = Vec::new();
        for mut swarm in found {
            swarm.trackers.extend(self.targets.trackers.iter().cloned());
            match out.iter_mut().find(|s| s.info_hash == swarm.info_hash) {
                Some(s) => {
                    s.trackers.append(&mut swarm.trackers);
                    s.peers.append(&mut swarm.peers);
                    s.info = s.info.take().or(swarm.info);
                }
                None => out.push(swarm),
            }
        }
        for s in &mut out {
            let mut seen = std::collections::HashSet::new();
            s.trackers.retain(|t| seen.insert(t.clone()));
            let mut seen = std::collections::HashSet::new();
            s.peers.retain(|p| seen.insert(*p));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
