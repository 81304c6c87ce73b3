//! The onion network of a measurement testbed (`testbed: onion:`, an [`OnionTestbed`]):
//! voting directory authorities, honest relays each on its own /24 and an adversary's Sybil
//! relays spread over a few addresses of one /24, started on loopback as the local testbed
//! ([`crate::testbed`]) starts them, and the score of what an `onion_consensus` probe read.
//!
//! This is a relay census as Tor's researchers run one over the consensus archives (Winter et
//! al., *Identifying and characterizing Sybils in the Tor network*, USENIX Security 2016): the
//! relays found (listed or left out by some authority) are scored against the relays running;
//! the Sybils the authorities admitted are counted against what their per-address cap lets
//! through; and the crawler's Sybil analysis over the relays listed (ids per IP, per /24) is
//! scored against the Sybils admitted. An adversary that spreads its relays over enough
//! addresses slips under the per-IP cap; the /24 signal still sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use onionlab_crawler::analysis::Score;
use onionlab_crawler::analysis::sybil::Subnet;
use onionlab_crawler::campaign::Summary;
use onionlab_crawler::campaign::config::Targets;
use onionlab_crawler::krpc::NodeId;
use onionlab_crawler::observe::SourceKind;
use onionlab_crawler::onion::Fingerprint;
use onionlab_directory::config::DEFAULT_MAX_RELAYS_PER_IP;
use onionlab_relay::RelayHandle;
use serde::Deserialize;

use super::{CrawlRows, MeasureError, Scored, precision_recall};
use crate::outcome::{Figure, Series, SeriesStyle, Table};
use crate::sim::measurement;
use crate::testbed::{self, Testbed, TestbedConfig};

/// How long the network may take until every authority lists every relay it should.
const READY: Duration = Duration::from_secs(60);

/// `testbed: onion:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnionTestbed {
    /// Voting directory authorities (127.0.254.k; default 3).
    #[serde(default = "default_authorities")]
    pub authorities: usize,
    /// Honest relays (127.0.i.1, each on its own /24; 3 to 199).
    pub relays: usize,
    /// The adversary's relays.
    #[serde(default)]
    pub sybils: OnionSybils,
    /// The authorities' per-address cap (default: theirs, 2).
    #[serde(default)]
    pub max_relays_per_ip: Option<usize>,
}

/// `sybils:` of an onion testbed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnionSybils {
    /// How many.
    pub relays: usize,
    /// Over how many addresses of 127.0.200.0/24, round robin.
    pub ips: usize,
    /// Bandwidth each advertises (bytes/s; default: what the testbed gives them).
    pub bandwidth: Option<u64>,
}

impl Default for OnionSybils {
    fn default() -> Self {
        OnionSybils {
            relays: 0,
            ips: 1,
            bandwidth: None,
        }
    }
}

fn default_authorities() -> usize {
    3
}

impl OnionTestbed {
    /// The per-address cap the authorities apply.
    fn cap(&self) -> usize {
        self.max_relays_per_ip.unwrap_or(DEFAULT_MAX_RELAYS_PER_IP)
    }

    /// Starts the network and waits until every authority lists what it should.
    pub async fn start(&self) -> Result<RunningOnion, MeasureError> {
        let defaults = TestbedConfig::ephemeral();
        let cfg = TestbedConfig {
            relays: self.relays,
            authorities: self.authorities,
            sybil_relays: self.sybils.relays,
            sybil_ips: self.sybils.ips,
            sybil_bandwidth: self.sybils.bandwidth.unwrap_or(defaults.sybil_bandwidth),
            max_relays_per_ip: self.max_relays_per_ip,
            // Consensus weights do not matter to a census: no bandwidth scans.
            measure_bandwidth: false,
            large_file: 1 << 20,
            ..defaults
        };
        let testbed = Testbed::start(cfg, READY)
            .await
            .map_err(|e| MeasureError::Testbed(format!("the onion network: {e}")))?;
        Ok(RunningOnion {
            config: self.clone(),
            testbed,
        })
    }
}

/// The running onion network.
pub struct RunningOnion {
    config: OnionTestbed,
    testbed: Testbed,
}

impl RunningOnion {
    /// Names every authority's HTTP address as the census targets.
    pub fn add_targets(&self, targets: &mut Targets) {
        targets
            .onion_authorities
            .extend(self.testbed.authorities.iter().map(|a| a.http_addr));
    }

    /// One line for the report's summary.
    pub fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "a loopback onion network ({} directory authorities, {} relays, {} Sybil relays on {} addresses \
             of 127.0.200.0/24, per-address cap {})",
            c.authorities,
            c.relays,
            c.sybils.relays,
            c.sybils.ips,
            c.cap()
        )
    }

    /// Scores the census against the network, then stops it.
    pub fn score(self, summary: &Summary, rows: &CrawlRows, max_per_subnet: usize) -> Scored {
        let c = &self.config;
        let short_id = |r: &RelayHandle| Fingerprint(r.identity()).short_id();
        let sybils: BTreeSet<[u8; 20]> = self.testbed.sybils().iter().map(short_id).collect();
        let running: BTreeMap<[u8; 20], SocketAddr> =
            self.testbed.relays.iter().map(|r| (short_id(r), r.or_addr)).collect();
        let ids_of = |kind: SourceKind| -> BTreeSet<[u8; 20]> {
            rows.sightings
                .iter()
                .filter(|s| s.source_kind == kind)
                .filter_map(|s| s.id)
                .collect()
        };
        let listed = ids_of(SourceKind::OnionListed);
        let found: BTreeSet<[u8; 20]> = listed.union(&ids_of(SourceKind::OnionExcluded)).copied().collect();
        let truth: BTreeSet<[u8; 20]> = running.keys().copied().collect();
        let admitted: BTreeSet<[u8; 20]> = listed.intersection(&sybils).copied().collect();
        let expected_admitted = testbed::expected_listed(0, c.sybils.relays, c.sybils.ips, c.cap());
        let running_source = "the relays the testbed started";
        let mut measurements = Vec::new();
        measurements.extend(precision_recall(
            "relays_found",
            "relays found (listed or left out by an authority)",
            &Score::of(&found, &truth),
            running_source,
        ));
        measurements.push(measurement(
            "sybil_relays_admitted",
            "Sybil relays some authority listed",
            admitted.len() as f64,
            "",
            Some((
                expected_admitted as f64,
                "the authorities' per-address cap over the adversary's addresses",
            )),
        ));
        let report = summary.relays.as_ref().and_then(|r| r.sybil.as_ref());
        let flagged: Option<BTreeSet<[u8; 20]>> = match report {
            Some(Ok(r)) => Some(r.ids().into_iter().map(|NodeId(id)| id).collect()),
            _ => None,
        };
        if let Some(flagged) = &flagged {
            measurements.extend(precision_recall(
                "relay_sybil",
                "relays flagged by the Sybil analysis",
                &Score::of(flagged, &admitted),
                "the Sybil relays the authorities admitted",
            ));
        }
        let flagged = flagged.unwrap_or_default();
        let per_subnet = subnet_rows(&running, &listed, &sybils, &flagged);
        let table = Table {
            id: "onion-subnets".into(),
            title: "Relays per /24: running, listed by an authority, Sybils, flagged".into(),
            columns: ["/24", "running", "listed", "Sybils listed", "flagged"]
                .map(String::from)
                .to_vec(),
            rows: per_subnet
                .iter()
                .map(|(subnet, n)| {
                    let mut row = vec![subnet.to_string()];
                    row.extend(n.iter().map(usize::to_string));
                    row
                })
                .collect(),
        };
        let figure = relays_per_subnet_figure(&per_subnet, max_per_subnet);
        Scored {
            measurements,
            figures: vec![figure],
            tables: vec![table],
        }
    }
}

/// Per /24 of the running relays: [running, listed, Sybils listed, flagged].
fn subnet_rows(
    running: &BTreeMap<[u8; 20], SocketAddr>,
    listed: &BTreeSet<[u8; 20]>,
    sybils: &BTreeSet<[u8; 20]>,
    flagged: &BTreeSet<[u8; 20]>,
) -> BTreeMap<Subnet, [usize; 4]> {
    let mut rows: BTreeMap<Subnet, [usize; 4]> = BTreeMap::new();
    for (id, addr) in running {
        let row = rows.entry(Subnet::of(addr.ip())).or_default();
        row[0] += 1;
        if listed.contains(id) {
            row[1] += 1;
            row[2] += usize::from(sybils.contains(id));
        }
        row[3] += usize::from(flagged.contains(id));
    }
    rows
}

/// How many /24s hold how many listed relays, beside the /24 threshold of the Sybil analysis:
/// the honest relays sit at 1, the adversary's /24 far to the right.
fn relays_per_subnet_figure(rows: &BTreeMap<Subnet, [usize; 4]>, max_per_subnet: usize) -> Figure {
    let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
    for n in rows.values().filter(|n| n[1] > 0) {
        *histogram.entry(n[1]).or_default() += 1;
    }
    let top = histogram.values().copied().max().unwrap_or(1) as f64;
    Figure {
        id: "onion-relays-per-subnet".into(),
        title: "Relays listed per /24 (the Sybil analysis flags a /24 right of the threshold)".into(),
        x_label: "relays listed in the /24".into(),
        y_label: "/24s".into(),
        x_log: false,
        y_log: false,
        series: vec![
            Series {
                name: "listed".into(),
                style: SeriesStyle::Points,
                points: histogram.iter().map(|(k, n)| (*k as f64, *n as f64)).collect(),
            },
            Series {
                name: format!("threshold ({max_per_subnet} per /24)"),
                style: SeriesStyle::Reference,
                points: vec![(max_per_subnet as f64, 0.0), (max_per_subnet as f64, top)],
            },
        ],
    }
}
