//! The overlay's configuration: how many nodes of each kind, how they link, what they share,
//! which adversaries are planted, churn, limits and timeouts. It owns the values and their
//! checks; it never starts anything. Every struct reads from YAML with unknown fields refused,
//! and every field has a default, so a campaign can embed `gnutella: { ultrapeers: 10 }`.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// The whole overlay.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverlayConfig {
    /// The PRNG seed: ids, topology, files, roles and the churn schedule follow from it.
    pub seed: u64,
    /// Honest ultrapeers.
    pub ultrapeers: usize,
    /// Leaves (free riders and poisoners included).
    pub leaves: usize,
    /// The honest nodes' /16 (spread over its /24s); Sybils and poisoners take the next /16
    /// (see [`super::topology`] for the address plan).
    pub base_ip: Ipv4Addr,
    /// The TCP port every node listens on, each on its own address (not 0: a node that leaves
    /// and rejoins must come back on the same address).
    pub port: u16,
    /// How the ultrapeer graph is drawn.
    pub topology: TopologyModel,
    /// Ultrapeer links each ultrapeer dials when it joins the plan (the graph's mean degree is
    /// about twice this).
    pub ultrapeer_links: usize,
    /// The most ultrapeer connections an ultrapeer accepts or plans (503 beyond).
    pub max_ultrapeer_peers: usize,
    /// The most leaves an ultrapeer accepts or plans (503 beyond).
    pub max_leaves: usize,
    /// Each leaf attaches to between `leaf_ultrapeers_min` and ...
    pub leaf_ultrapeers_min: usize,
    /// ... `leaf_ultrapeers_max` ultrapeers (uniform).
    pub leaf_ultrapeers_max: usize,
    /// The shared files.
    pub files: FileConfig,
    /// log2 of the QRP table size leaves send their ultrapeers (16: 65,536 slots, as LimeWire).
    pub qrp_table_bits: u8,
    /// Planted Sybil ultrapeers.
    pub sybils: SybilConfig,
    /// Planted poisoning leaves.
    pub poisoners: PoisonConfig,
    /// Leaves that share nothing, answer no query and serve nothing.
    pub free_riders: usize,
    /// Node sessions and downtimes; `None`: every node stays up.
    pub churn: Option<ChurnConfig>,
    /// Read limits, queue sizes and timeouts.
    pub limits: LimitConfig,
    /// The `User-Agent` every node sends.
    pub user_agent: String,
}

impl Default for OverlayConfig {
    /// 50 ultrapeers, 450 leaves on 127.60.0.0/16 port 6346, seed 1, a random ultrapeer graph
    /// of mean degree about 6, leaves on 1 to 3 ultrapeers, no adversaries, no churn.
    fn default() -> Self {
        OverlayConfig {
            seed: 1,
            ultrapeers: 50,
            leaves: 450,
            base_ip: Ipv4Addr::new(127, 60, 0, 0),
            port: 6346,
            topology: TopologyModel::Random,
            ultrapeer_links: 3,
            max_ultrapeer_peers: 32,
            max_leaves: 64,
            leaf_ultrapeers_min: 1,
            leaf_ultrapeers_max: 3,
            files: FileConfig::default(),
            qrp_table_bits: 16,
            sybils: SybilConfig::default(),
            poisoners: PoisonConfig::default(),
            free_riders: 0,
            churn: None,
            limits: LimitConfig::default(),
            user_agent: "onionlab-gnutella/0.1".to_owned(),
        }
    }
}

/// How ultrapeers pick the ultrapeers they link to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopologyModel {
    /// Each ultrapeer links to `ultrapeer_links` others chosen uniformly (an Erdős–Rényi-like
    /// graph with a narrow degree distribution).
    Random,
    /// Barabási–Albert preferential attachment: ultrapeers join one by one and link to
    /// `ultrapeer_links` earlier ones with probability proportional to their degree (a few hubs,
    /// a heavy-tailed degree distribution).
    Preferential,
}

/// The file catalogue and what leaves take from it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Distinct files (titles) in the catalogue.
    pub catalogue: usize,
    /// Files each sharing leaf holds (distinct titles).
    pub per_leaf: usize,
    /// Smallest file, bytes.
    pub min_size: u32,
    /// Largest file, bytes.
    pub max_size: u32,
    /// Zipf exponent of title popularity (title r is picked with weight 1/r^s).
    pub zipf_exponent: f64,
}

impl Default for FileConfig {
    /// 200 titles, 8 per leaf, 1 KiB to 64 KiB, Zipf exponent 1.
    fn default() -> Self {
        FileConfig {
            catalogue: 200,
            per_leaf: 8,
            min_size: 1024,
            max_size: 64 << 10,
            zipf_exponent: 1.0,
        }
    }
}

/// Sybil ultrapeers: many identities from one address range (consecutive addresses of the /16
/// after the honest one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SybilConfig {
    /// How many.
    pub count: usize,
    /// Honest ultrapeers each Sybil dials.
    pub links: usize,
    /// Whether Sybils flood queries like honest ultrapeers; when false they swallow them (a
    /// black hole that still answers crawlers and pings).
    pub forward_queries: bool,
}

impl Default for SybilConfig {
    /// None; when planted, 3 links each, queries swallowed.
    fn default() -> Self {
        SybilConfig {
            count: 0,
            links: 3,
            forward_queries: false,
        }
    }
}

/// Poisoning leaves: they answer queries for the most popular titles with decoys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoisonConfig {
    /// How many leaves poison (they share nothing genuine).
    pub count: usize,
    /// The most popular titles they target (catalogue ranks 0..targets).
    pub targets: usize,
    /// What their downloads serve.
    pub decoy: DecoyKind,
}

impl Default for PoisonConfig {
    /// None; when planted, the 5 most popular titles, decoys of the advertised size.
    fn default() -> Self {
        PoisonConfig {
            count: 0,
            targets: 5,
            decoy: DecoyKind::WrongContent,
        }
    }
}

/// What a poisoner's decoy serves for a hit that advertises a genuine title's name, size and
/// `urn:sha1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoyKind {
    /// Garbage of the advertised size: only the hash check catches it.
    WrongContent,
    /// Garbage of half the advertised size: the size check catches it too.
    WrongSize,
}

/// Churn: each churning node alternates sessions and downtimes drawn from two Weibulls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnConfig {
    /// The fraction of leaves that churn (picked with the seed).
    pub leaf_fraction: f64,
    /// The fraction of honest ultrapeers that churn.
    pub ultrapeer_fraction: f64,
    /// Session lengths, seconds.
    pub session: WeibullParams,
    /// Downtimes, seconds.
    pub downtime: WeibullParams,
    /// How far ahead the schedule is drawn, seconds (nodes stay as they are after it).
    pub horizon_secs: f64,
}

impl Default for ChurnConfig {
    /// All leaves, no ultrapeer; sessions Weibull(0.6, 60 s) (Stutzbach and Rejaie's shape for
    /// Gnutella), downtimes Weibull(0.6, 20 s), one hour ahead.
    fn default() -> Self {
        ChurnConfig {
            leaf_fraction: 1.0,
            ultrapeer_fraction: 0.0,
            session: WeibullParams {
                shape: 0.6,
                scale: 60.0,
            },
            downtime: WeibullParams {
                shape: 0.6,
                scale: 20.0,
            },
            horizon_secs: 3600.0,
        }
    }
}

/// A Weibull's shape k and scale λ (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeibullParams {
    /// Shape k (< 1: many short sessions, a heavy tail).
    pub shape: f64,
    /// Scale λ, seconds.
    pub scale: f64,
}

impl WeibullParams {
    /// Whether sessions can be drawn from it: a finite shape of at least 0.1 (below, lengths
    /// span more orders of magnitude than a run can hold) and a finite positive scale.
    pub fn is_usable(&self) -> bool {
        self.shape.is_finite() && self.shape >= 0.1 && self.scale.is_finite() && self.scale > 0.0
    }
}

/// Limits and timeouts, in milliseconds where they are times.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    /// Time allowed for a whole handshake (and for an HTTP request's headers).
    pub handshake_ms: u64,
    /// A connection that sends nothing for this long is dropped.
    pub idle_ms: u64,
    /// A connection we sent nothing on for this long gets a TTL-1 Ping.
    pub keepalive_ms: u64,
    /// Time allowed for one write (a descriptor, an HTTP body chunk).
    pub write_ms: u64,
    /// How often a node retries a planned connection that is down.
    pub reconnect_ms: u64,
    /// Descriptors queued per connection; more are dropped and counted.
    pub queue: usize,
    /// Largest descriptor payload accepted (bigger drops the connection).
    pub max_payload: u32,
    /// Message GUIDs remembered for duplicate suppression and reverse paths, per table.
    pub guid_table: usize,
    /// How long a GUID is remembered.
    pub guid_ttl_ms: u64,
    /// Hits a leaf keeps per query it sent, and queries it keeps hits for.
    pub hits_per_query: usize,
    /// Queries whose hits a leaf keeps.
    pub queries_kept: usize,
}

impl Default for LimitConfig {
    /// 10 s handshakes, 120 s idle, 30 s keepalive, 10 s writes, 500 ms reconnects, 256 queued
    /// descriptors, 64 KiB payloads, 10,000 GUIDs for 10 minutes, 1000 hits for 64 queries.
    fn default() -> Self {
        LimitConfig {
            handshake_ms: 10_000,
            idle_ms: 120_000,
            keepalive_ms: 30_000,
            write_ms: 10_000,
            reconnect_ms: 500,
            queue: 256,
            max_payload: 64 << 10,
            guid_table: 10_000,
            guid_ttl_ms: 600_000,
            hits_per_query: 1000,
            queries_kept: 64,
        }
    }
}

impl LimitConfig {
    /// [`LimitConfig::handshake_ms`] as a duration.
    pub fn handshake(&self) -> Duration {
        Duration::from_millis(self.handshake_ms)
    }
    /// [`LimitConfig::idle_ms`] as a duration.
    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_ms)
    }
    /// [`LimitConfig::keepalive_ms`] as a duration.
    pub fn keepalive(&self) -> Duration {
        Duration::from_millis(self.keepalive_ms)
    }
    /// [`LimitConfig::write_ms`] as a duration.
    pub fn write(&self) -> Duration {
        Duration::from_millis(self.write_ms)
    }
    /// [`LimitConfig::reconnect_ms`] as a duration.
    pub fn reconnect(&self) -> Duration {
        Duration::from_millis(self.reconnect_ms)
    }
    /// [`LimitConfig::guid_ttl_ms`] as a duration.
    pub fn guid_ttl(&self) -> Duration {
        Duration::from_millis(self.guid_ttl_ms)
    }
}

/// A configuration that cannot be planned.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("gnutella overlay configuration: {0}")]
pub struct ConfigError(pub String);

/// Honest nodes get one /16 (254 hosts in each of its 256 /24s); Sybils and poisoners half of
/// the next one each.
const MAX_NODES_PER_RANGE: usize = 256 * 254;
const MAX_ADVERSARIES: usize = (1 << 15) - 2;

impl OverlayConfig {
    /// Checks what the planner and the nodes rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if self.ultrapeers == 0 {
            return fail("at least one ultrapeer is needed".into());
        }
        if self.port == 0 {
            return fail("port must be fixed (nodes rejoin on the same address)".into());
        }
        if self.base_ip.octets()[0] != 127 || self.base_ip.octets()[1] == 255 {
            return fail(format!("base_ip {} must leave two /16s inside 127/8", self.base_ip));
        }
        if self.ultrapeers + self.leaves > MAX_NODES_PER_RANGE
            || self.sybils.count > MAX_ADVERSARIES
            || self.poisoners.count > MAX_ADVERSARIES
        {
            return fail("more nodes than the address plan holds".into());
        }
        if self.leaf_ultrapeers_min == 0 || self.leaf_ultrapeers_min > self.leaf_ultrapeers_max {
            return fail("need 1 <= leaf_ultrapeers_min <= leaf_ultrapeers_max".into());
        }
        if self.leaves > 0 && self.leaf_ultrapeers_max > self.ultrapeers {
            return fail("leaf_ultrapeers_max is more than there are ultrapeers".into());
        }
        if self.leaves * self.leaf_ultrapeers_min > self.ultrapeers * self.max_leaves {
            return fail("max_leaves leaves no room for every leaf".into());
        }
        if self.free_riders + self.poisoners.count > self.leaves {
            return fail("more free riders and poisoners than leaves".into());
        }
        if !(1..=20).contains(&self.qrp_table_bits) {
            return fail("qrp_table_bits must be in 1..=20".into());
        }
        let f = &self.files;
        if f.catalogue == 0 || f.per_leaf > f.catalogue || f.min_size == 0 || f.min_size > f.max_size {
            return fail("files: need 0 < per_leaf <= catalogue and 0 < min_size <= max_size".into());
        }
        if !(f.zipf_exponent.is_finite() && f.zipf_exponent >= 0.0) {
            return fail("files.zipf_exponent must be finite and >= 0".into());
        }
        if self.poisoners.count > 0 && (self.poisoners.targets == 0 || self.poisoners.targets > f.catalogue) {
            return fail("poisoners.targets must be in 1..=catalogue".into());
        }
        if let Some(c) = &self.churn {
            let fraction = |v: f64| (0.0..=1.0).contains(&v);
            if !fraction(c.leaf_fraction) || !fraction(c.ultrapeer_fraction) {
                return fail("churn fractions must be in [0, 1]".into());
            }
            if !(c.session.is_usable() && c.downtime.is_usable() && c.horizon_secs.is_finite() && c.horizon_secs > 0.0)
            {
                return fail("churn: Weibull shapes must be at least 0.1, scales and the horizon positive".into());
            }
        }
        let l = &self.limits;
        if l.queue == 0 || l.guid_table == 0 || l.queries_kept == 0 || l.keepalive_ms == 0 || l.idle_ms == 0 {
            return fail("limits: queue, guid_table, queries_kept, keepalive_ms and idle_ms must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_yaml_overrides_them() {
        OverlayConfig::default().validate().unwrap();
        let c: OverlayConfig =
            serde_saphyr::from_str("ultrapeers: 10\nleaves: 40\ntopology: preferential\nsybils: { count: 5 }\n")
                .unwrap();
        assert_eq!((c.ultrapeers, c.leaves, c.sybils.count, c.sybils.links), (10, 40, 5, 3));
        assert_eq!(c.topology, TopologyModel::Preferential);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(serde_saphyr::from_str::<OverlayConfig>("ultrapeerz: 3\n").is_err());
        assert!(serde_saphyr::from_str::<OverlayConfig>("files: { sise: 3 }\n").is_err());
        let bad = [
            OverlayConfig {
                port: 0,
                ..OverlayConfig::default()
            },
            OverlayConfig {
                free_riders: 451,
                ..OverlayConfig::default()
            },
            OverlayConfig {
                max_leaves: 5,
                ..OverlayConfig::default()
            },
            OverlayConfig {
                base_ip: Ipv4Addr::new(10, 0, 0, 0),
                ..OverlayConfig::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
