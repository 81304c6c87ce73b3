//! The Gnutella 0.6 overlay of a measurement testbed (`testbed: gnutella:`, an
//! [`OverlayConfig`]: ultrapeers, leaves, Sybil ultrapeers, churn), started on loopback, and
//! the score of what a `gnutella_crawl` probe mapped against the overlay's true topology.
//!
//! Without churn the topology stands still, and every snapshot should map all of it: the
//! ultrapeers and leaves found and the edges found (recall) and right (precision) are scored
//! against the live overlay at the end, from the crawl's visits and sightings in the store.
//! Sybil ultrapeers are flagged as the crawler's topology analysis flags them, by /24s with
//! more ultrapeers than `sybil.max_ids_per_subnet` (Cruiser-style snapshots, Stutzbach and
//! Rejaie, IMC 2005). With churn, the sessions the crawl measured of the churning nodes are
//! scored against their true sessions ([`super::sessions`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use onionlab_crawler::analysis::Score;
use onionlab_crawler::analysis::topology::{degree_histogram, degrees, ultrapeer_subnets};
use onionlab_crawler::campaign::config::Targets;
use onionlab_crawler::gnutella::snapshot::edge;
use onionlab_crawler::observe::{Outcome as ProbeOutcome, ProbeKind, SourceKind};

use super::{CrawlRows, MeasureError, Scored, precision_recall};
use crate::gnutella::{Behaviour, Overlay, OverlayConfig, Role};
use crate::outcome::{Figure, Series, SeriesStyle, Table};
use crate::sim::measurement;

/// How long the overlay may take to bring every planned link up.
const READY: Duration = Duration::from_secs(90);

/// The bootstrap ultrapeers given to the crawler.
const BOOTSTRAP: usize = 3;

/// The running overlay.
#[derive(Debug)]
pub struct RunningOverlay {
    config: OverlayConfig,
    overlay: Overlay,
}

/// Starts the overlay of `config` (its own `seed:` draws its plan) and waits until it is
/// whole.
pub async fn start(config: &OverlayConfig) -> Result<RunningOverlay, MeasureError> {
    let overlay = Overlay::start(config.clone(), READY)
        .await
        .map_err(|e| MeasureError::Testbed(format!("the Gnutella overlay: {e}")))?;
    Ok(RunningOverlay {
        config: config.clone(),
        overlay,
    })
}

impl RunningOverlay {
    /// Names the first honest ultrapeers as the crawl's Gnutella bootstrap.
    pub fn add_targets(&self, targets: &mut Targets) {
        let truth = self.overlay.truth();
        targets.gnutella_bootstrap.extend(
            truth
                .nodes
                .iter()
                .filter(|n| n.role == Role::Ultrapeer && n.behaviour == Behaviour::Honest && n.online)
                .take(BOOTSTRAP)
                .map(|n| n.addr),
        );
    }

    /// One line for the report's summary.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let churn = match &c.churn {
            Some(ch) => format!(
                ", {:.0} % of the leaves and {:.0} % of the ultrapeers churning (sessions Weibull({}, {} s))",
                100.0 * ch.leaf_fraction,
                100.0 * ch.ultrapeer_fraction,
                ch.session.shape,
                ch.session.scale
            ),
            None => String::new(),
        };
        format!(
            "a loopback Gnutella 0.6 overlay ({} ultrapeers, {} leaves, {} Sybil ultrapeers{churn}, seed {})",
            c.ultrapeers, c.leaves, c.sybils.count, c.seed
        )
    }

    /// Scores the crawl against the overlay as it is now, then stops the overlay.
    pub async fn score(self, rows: &CrawlRows, max_per_subnet: usize) -> Scored {
        let truth = self.overlay.truth();
        let sessions = self.overlay.sessions();
        let churning: BTreeSet<usize> = self
            .overlay
            .plan()
            .nodes
            .iter()
            .filter(|n| !n.sessions.is_empty())
            .map(|n| n.index)
            .collect();
        self.overlay.stop().await;
        let topology = truth.online_topology();
        let answered: BTreeSet<SocketAddr> = rows
            .visits
            .iter()
            .filter(|v| v.probe == ProbeKind::GnutellaCrawl && v.outcome == ProbeOutcome::Ok)
            .filter_map(|v| v.addr)
            .collect();
        let mut found_ups = BTreeSet::new();
        let mut found_leaves = BTreeSet::new();
        let mut found_edges = BTreeSet::new();
        for s in &rows.sightings {
            let Ok(source) = s.source.parse::<SocketAddr>() else {
                continue;
            };
            match s.source_kind {
                SourceKind::GnutellaPeer => {
                    found_ups.insert(s.addr);
                    found_edges.insert(edge(source, s.addr));
                }
                SourceKind::GnutellaLeaf => {
                    found_leaves.insert(s.addr);
                    found_edges.insert(edge(source, s.addr));
                }
                _ => {}
            }
        }
        // The servents that answered are ultrapeers, unless listed as a leaf (with
        // contact_leaves the leaves answer too).
        found_ups.extend(answered.difference(&found_leaves));
        let fraction = |found: &BTreeSet<SocketAddr>, of: &BTreeSet<SocketAddr>| {
            of.intersection(found).count() as f64 / of.len().max(1) as f64
        };
        let edges = Score::of(&found_edges, &topology.edges);
        let source = "the overlay's live topology at the end of the crawl";
        let mut measurements = Vec::new();
        let mut tables = Vec::new();
        let mut figures = Vec::new();
        if self.config.churn.is_none() {
            measurements.extend([
                measurement(
                    "ultrapeers_found",
                    "online ultrapeers the crawl found (answered or listed as a neighbour)",
                    fraction(&found_ups, &topology.ultrapeers),
                    "",
                    Some((1.0, source)),
                ),
                measurement(
                    "leaves_found",
                    "online leaves the crawl found (in an ultrapeer's Leaves:)",
                    fraction(&found_leaves, &topology.leaves),
                    "",
                    Some((1.0, source)),
                ),
            ]);
            measurements.extend(precision_recall("edge", "edges found", &edges, source));
            figures.push(degree_figure(
                &topology.ultrapeers,
                &topology.edges,
                &found_ups,
                &found_edges,
            ));
        }
        let sybils = truth.addrs_of(Behaviour::Sybil);
        if !sybils.is_empty() {
            let report = ultrapeer_subnets(&found_ups, max_per_subnet);
            let planted = "the Sybil ultrapeers the testbed planted";
            measurements.push(measurement(
                "gnutella_sybils_flagged",
                format!("ultrapeers in /24s with more than {max_per_subnet} ultrapeers"),
                report.addrs().len() as f64,
                "",
                Some((sybils.len() as f64, planted)),
            ));
            measurements.extend(precision_recall(
                "gnutella_sybil",
                "ultrapeer /24 flags",
                &report.score(&sybils),
                planted,
            ));
            tables.push(Table {
                id: "gnutella-subnets".into(),
                title: "The /24s flagged for too many ultrapeers".into(),
                columns: vec!["subnet".into(), "ultrapeers".into(), "Sybils among them".into()],
                rows: report
                    .flagged
                    .iter()
                    .map(|(subnet, addrs)| {
                        vec![
                            subnet.to_string(),
                            addrs.len().to_string(),
                            addrs.intersection(&sybils).count().to_string(),
                        ]
                    })
                    .collect(),
            });
        }
        if let Some(churn) = &self.config.churn {
            let addrs: BTreeSet<SocketAddr> = churning.iter().map(|&i| truth.nodes[i].addr).collect();
            // A true session counts once it ended within the crawl (the others are censored).
            let true_lengths: Vec<f64> = sessions
                .iter()
                .filter(|s| churning.contains(&s.node))
                .filter_map(|s| s.length())
                .collect();
            let (m, f) =
                super::sessions::session_bias(&churn.session, "Gnutella nodes", &addrs, &true_lengths, &rows.sessions);
            measurements.extend(m);
            figures.push(f);
        }
        let count = |n: usize| n.to_string();
        tables.push(Table {
            id: "gnutella-topology".into(),
            title: "The overlay's topology: true (live at the end) and crawled".into(),
            columns: vec!["".into(), "true".into(), "crawled".into(), "both".into()],
            rows: vec![
                vec![
                    "ultrapeers".into(),
                    count(topology.ultrapeers.len()),
                    count(found_ups.len()),
                    count(topology.ultrapeers.intersection(&found_ups).count()),
                ],
                vec![
                    "leaves".into(),
                    count(topology.leaves.len()),
                    count(found_leaves.len()),
                    count(topology.leaves.intersection(&found_leaves).count()),
                ],
                vec![
                    "edges".into(),
                    count(topology.edges.len()),
                    count(found_edges.len()),
                    count(topology.edges.intersection(&found_edges).count()),
                ],
            ],
        });
        Scored {
            measurements,
            figures,
            tables,
        }
    }
}

/// The ultrapeer degree distribution (ultrapeer–ultrapeer links only) of the true and the
/// crawled topology, the plot a student draws to compare a crawl with the overlay.
fn degree_figure(
    true_ups: &BTreeSet<SocketAddr>,
    true_edges: &BTreeSet<(SocketAddr, SocketAddr)>,
    found_ups: &BTreeSet<SocketAddr>,
    found_edges: &BTreeSet<(SocketAddr, SocketAddr)>,
) -> Figure {
    let series = |name: &str, style, ups: &BTreeSet<SocketAddr>, edges: &BTreeSet<(SocketAddr, SocketAddr)>| {
        let links: BTreeSet<(SocketAddr, SocketAddr)> = edges
            .iter()
            .filter(|(a, b)| ups.contains(a) && ups.contains(b))
            .copied()
            .collect();
        Series {
            name: name.into(),
            style,
            points: degree_histogram(&degrees(ups, &links))
                .into_iter()
                .map(|(d, n)| (d as f64, n as f64))
                .collect(),
        }
    };
    Figure {
        id: "gnutella-degrees".into(),
        title: "Ultrapeer degrees (links to other ultrapeers): true and crawled".into(),
        x_label: "degree".into(),
        y_label: "ultrapeers".into(),
        x_log: false,
        y_log: false,
        series: vec![
            series("true", SeriesStyle::Reference, true_ups, true_edges),
            series("crawled", SeriesStyle::Points, found_ups, found_edges),
        ],
    }
}
