//! Experiment 5, random failure vs targeted attack (Albert, Jeong and Barabási, "Error and
//! attack tolerance of complex networks", Nature 406, 2000): remove a growing fraction of the
//! nodes of a graph, at random (failures) or highest degree first (an attack), and follow the
//! giant component. The graphs: an Erdős–Rényi and a Barabási–Albert graph of the same size and
//! mean degree (seeded, [`crate::sim::graph`]), and the ultrapeer graph of a Gnutella overlay
//! started on loopback and mapped by the crawler's real crawl (the lecture's Gnutella picture,
//! after Saroiu, Gummadi and Gribble, MMCN 2002). The removal and the giant component are the
//! crawler's analysis ([`robustness`]), the same one `onionlab-crawl gnutella crawl` reports.
//!
//! The thresholds are compared with the published ones: for failures, the Molloy–Reed/Cohen
//! criterion f_c = 1 − 1/(κ − 1), κ = ⟨k²⟩/⟨k⟩ of the intact graph (Cohen, Erez, ben-Avraham
//! and Havlin, PRL 85, 2000; 1 − 1/⟨k⟩ for Erdős–Rényi); for an attack on a scale-free graph,
//! the f_c ≈ 0.18 Albert et al. found at N = 10,000, ⟨k⟩ = 4. A graph counts as fragmented once
//! its giant component holds less than `collapse` of the intact graph's nodes. The criterion is
//! asymptotic: at N = 10,000 a scale-free graph's giant component thins out gradually under
//! failures and falls below `collapse` some way before the predicted f_c (about 0.8 against
//! 0.92), still far beyond its attack threshold.
//!
//! The graphs are seeded and the crawled snapshot equals the overlay's plan (checked: the
//! outcome reports edges the crawl missed), so the same seed gives the same outcome.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use onionlab_crawler::analysis::topology::{Removal, RobustnessPoint, degrees, robustness};
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::gnutella::crawl::{TopologyConfig, crawl_topology};
use onionlab_crawler::gnutella::snapshot::edge;
use serde::Deserialize;
use thiserror::Error;

use crate::campaign::Progress;
use crate::gnutella::{Overlay, OverlayConfig, OverlayError, Role, TopologyModel};
use crate::outcome::{Figure, Measurement, Outcome, Series, SeriesStyle, Table};
use crate::sim::{ParamsError, graph, measurement, positive, require};

/// The experiment's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Nodes of the Erdős–Rényi and Barabási–Albert graphs.
    pub nodes: usize,
    /// Their mean degree (the Barabási–Albert graph links each new node to half of it).
    pub mean_degree: f64,
    /// Removed fractions are 0, step, 2·step, ... up to 1.
    pub step: f64,
    /// A graph is fragmented once its giant component holds less than this fraction of the
    /// intact graph's nodes.
    pub collapse: f64,
    /// The Gnutella overlay to start and crawl (its seed is the campaign's); `null` skips it.
    pub gnutella: Option<Box<OverlayConfig>>,
}

impl Default for Params {
    /// 10,000 nodes of mean degree 4 (Albert et al.'s size), steps of 1 %, fragmented below
    /// 5 %; a 300-ultrapeer overlay grown by preferential attachment (2 links per joining
    /// ultrapeer, no degree cap below 300) and 300 leaves, from 127.120.0.0.
    fn default() -> Self {
        Params {
            nodes: 10_000,
            mean_degree: 4.0,
            step: 0.01,
            collapse: 0.05,
            gnutella: Some(Box::new(OverlayConfig {
                ultrapeers: 300,
                leaves: 300,
                topology: TopologyModel::Preferential,
                ultrapeer_links: 2,
                max_ultrapeer_peers: 300,
                base_ip: Ipv4Addr::new(127, 120, 0, 0),
                ..OverlayConfig::default()
            })),
        }
    }
}

impl Params {
    /// Checks the parameters, naming the field at fault.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            (10..=1_000_000).contains(&self.nodes),
            "nodes",
            "must be in 10..=1000000",
        )?;
        require(
            positive(self.mean_degree) && self.mean_degree >= 2.0 && self.mean_degree < self.nodes as f64 / 2.0,
            "mean_degree",
            "must be at least 2 and below nodes / 2",
        )?;
        require(positive(self.step) && self.step <= 0.5, "step", "must be in (0, 0.5]")?;
        require(
            positive(self.collapse) && self.collapse < 1.0,
            "collapse",
            "must be in (0, 1)",
        )?;
        if let Some(overlay) = &self.gnutella {
            overlay.validate().map_err(|e| ParamsError {
                field: "gnutella",
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// Why the experiment could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RobustnessError {
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The overlay did not start.
    #[error("cannot start the Gnutella overlay: {0}")]
    Overlay(#[from] OverlayError),
}

/// How long the overlay may take to come up, and the crawl to map it.
const READY: Duration = Duration::from_secs(120);
const CRAWL: Duration = Duration::from_secs(120);

/// A graph as the crawler's analyses take it.
struct Graph<N> {
    nodes: BTreeSet<N>,
    edges: BTreeSet<(N, N)>,
}

impl Graph<usize> {
    fn from_adjacency(adjacency: &[Vec<usize>]) -> Self {
        Graph {
            nodes: (0..adjacency.len()).collect(),
            edges: (adjacency.iter().enumerate())
                .flat_map(|(a, list)| list.iter().filter(move |&&b| a < b).map(move |&b| (a, b)))
                .collect(),
        }
    }
}

impl<N: Ord + Copy> Graph<N> {
    /// κ = ⟨k²⟩/⟨k⟩ of the degree sequence.
    fn kappa(&self) -> f64 {
        let (sum, squares) = (degrees(&self.nodes, &self.edges).values())
            .fold((0.0, 0.0), |(s, q), &d| (s + d as f64, q + (d * d) as f64));
        if sum > 0.0 { squares / sum } else { 0.0 }
    }
}

/// One graph's two curves and thresholds.
struct Curves {
    label: &'static str,
    key: &'static str,
    nodes: usize,
    kappa: f64,
    failure: Vec<RobustnessPoint>,
    attack: Vec<RobustnessPoint>,
}

impl Curves {
    fn of<N: Ord + Copy>(label: &'static str, key: &'static str, g: &Graph<N>, fractions: &[f64], seed: u64) -> Self {
        Curves {
            label,
            key,
            nodes: g.nodes.len(),
            kappa: g.kappa(),
            failure: robustness(&g.nodes, &g.edges, Removal::Random { seed }, fractions),
            attack: robustness(&g.nodes, &g.edges, Removal::HighestDegree, fractions),
        }
    }

    /// Molloy–Reed/Cohen: random removal of f_c = 1 − 1/(κ − 1) destroys the giant component.
    fn predicted_failure_threshold(&self) -> f64 {
        if self.kappa > 2.0 {
            1.0 - 1.0 / (self.kappa - 1.0)
        } else {
            0.0
        }
    }
}

/// The first removed fraction at which the giant component holds less than `collapse` (1 when
/// it never does before everything is gone).
fn threshold(points: &[RobustnessPoint], collapse: f64) -> f64 {
    points
        .iter()
        .find(|p| p.giant_fraction < collapse)
        .map_or(1.0, |p| p.fraction)
}

/// The giant fraction at the grid point nearest `fraction`.
fn giant_at(points: &[RobustnessPoint], fraction: f64) -> f64 {
    points
        .iter()
        .min_by(|a, b| (a.fraction - fraction).abs().total_cmp(&(b.fraction - fraction).abs()))
        .map_or(0.0, |p| p.giant_fraction)
}

/// What the crawl of the overlay found.
struct Crawled {
    graph: Graph<SocketAddr>,
    leaves: usize,
    missed_edges: usize,
    extra_edges: usize,
}

/// Start the overlay, map it with the crawler and compare the map with its plan.
async fn crawl_overlay(config: &OverlayConfig, seed: u64, progress: &Progress) -> Result<Crawled, OverlayError> {
    progress.stage(&format!("starting a {}-ultrapeer Gnutella overlay", config.ultrapeers));
    let overlay = Overlay::start(OverlayConfig { seed, ..config.clone() }, READY).await?;
    let truth = overlay.truth();
    let engine = Engine::new(
        EngineConfig {
            concurrency: 64,
            per_ip_interval: Duration::ZERO,
            timeout: Duration::from_secs(5),
            attempts: 2,
            backoff: Duration::from_millis(50),
        },
        Recorder::discard(),
    );
    let topology = TopologyConfig {
        recrawl_interval: Duration::ZERO,
        max_duration: CRAWL,
        ..TopologyConfig::default()
    };
    let bootstrap = (truth.nodes.iter().find(|n| n.role == Role::Ultrapeer)).map(|n| n.addr);
    progress.stage("crawling the overlay");
    let snapshot = crawl_topology(&engine, bootstrap.as_slice(), &topology).await;
    overlay.stop().await;
    let planned: BTreeSet<_> = (truth.ultrapeer_edges.iter())
        .map(|&(a, b)| edge(truth.nodes[a].addr, truth.nodes[b].addr))
        .collect();
    let found = snapshot.ultrapeer_edges();
    Ok(Crawled {
        missed_edges: planned.difference(&found).count(),
        extra_edges: found.difference(&planned).count(),
        leaves: snapshot.leaves().len(),
        graph: Graph {
            nodes: snapshot.ultrapeers(),
            edges: found,
        },
    })
}

/// Run the experiment.
pub async fn run(params: &Params, seed: u64, progress: &Progress) -> Result<Outcome, RobustnessError> {
    params.validate()?;
    progress.stage("removing nodes from the random and scale-free graphs");
    let steps = (1.0 / params.step).round() as usize;
    let fractions: Vec<f64> = (0..=steps).map(|i| (i as f64 * params.step).min(1.0)).collect();
    let links = (params.mean_degree / 2.0).round().max(1.0) as usize;
    let er = Graph::from_adjacency(&graph::erdos_renyi(params.nodes, params.mean_degree, seed));
    let ba = Graph::from_adjacency(&graph::barabasi_albert(params.nodes, links, seed));
    let mut curves = vec![
        Curves::of("Erdős–Rényi", "er", &er, &fractions, seed),
        Curves::of("Barabási–Albert", "ba", &ba, &fractions, seed),
    ];
    let crawled = match &params.gnutella {
        Some(config) => Some(crawl_overlay(config, seed, progress).await?),
        None => None,
    };
    if let Some(c) = &crawled {
        curves.push(Curves::of(
            "Gnutella ultrapeers (crawled)",
            "gnutella",
            &c.graph,
            &fractions,
            seed,
        ));
    }
    Ok(outcome(params, seed, &curves, crawled.as_ref()))
}

fn outcome(params: &Params, seed: u64, curves: &[Curves], crawled: Option<&Crawled>) -> Outcome {
    let mut measurements: Vec<Measurement> = Vec::new();
    let mut rows = Vec::new();
    for c in curves {
        let (failure, attack) = (
            threshold(&c.failure, params.collapse),
            threshold(&c.attack, params.collapse),
        );
        measurements.push(measurement(
            format!("{}_failure_threshold", c.key),
            format!("{}: fraction removed at random that fragments it", c.label),
            failure,
            "",
            Some((
                c.predicted_failure_threshold(),
                "f_c = 1 − 1/(κ − 1), κ = ⟨k²⟩/⟨k⟩ of the intact graph (Cohen et al., PRL 85, 2000)",
            )),
        ));
        let published_attack = (c.key == "ba").then_some((
            0.18,
            "scale-free graph, N = 10,000, ⟨k⟩ = 4: f_c ≈ 0.18 (Albert, Jeong and Barabási, Nature 406, 2000, Fig. 3)",
        ));
        measurements.push(measurement(
            format!("{}_attack_threshold", c.key),
            format!("{}: fraction removed highest degree first that fragments it", c.label),
            attack,
            "",
            published_attack,
        ));
        measurements.push(measurement(
            format!("{}_attack_to_failure_ratio", c.key),
            format!("{}: attack threshold / failure threshold", c.label),
            if failure > 0.0 { attack / failure } else { 0.0 },
            "",
            None,
        ));
        rows.push(vec![
            c.label.to_string(),
            c.nodes.to_string(),
            format!("{:.2}", c.kappa),
            format!("{:.3}", c.predicted_failure_threshold()),
            format!("{failure:.2}"),
            format!("{attack:.2}"),
            format!("{:.3}", giant_at(&c.failure, 0.3)),
            format!("{:.3}", giant_at(&c.attack, 0.04)),
        ]);
    }
    if let (Some(c), Some(g)) = (crawled, curves.iter().find(|c| c.key == "gnutella")) {
        measurements.push(measurement(
            "gnutella_giant_after_random_30",
            "Gnutella ultrapeers: giant component after 30 % removed at random (of all ultrapeers)",
            giant_at(&g.failure, 0.3),
            "",
            None,
        ));
        measurements.push(measurement(
            "gnutella_giant_after_attack_4",
            "Gnutella ultrapeers: giant component after the best-connected 4 % removed",
            giant_at(&g.attack, 0.04),
            "",
            None,
        ));
        measurements.push(measurement(
            "gnutella_crawl_edge_errors",
            "ultrapeer links the crawl missed or invented, against the overlay's plan",
            (c.missed_edges + c.extra_edges) as f64,
            "links",
            Some((0.0, "a complete crawl of a static overlay maps every link")),
        ));
    }
    let figure = |id: &str, title: &str, of: &[&Curves]| Figure {
        id: id.into(),
        title: title.into(),
        x_label: "fraction of nodes removed".into(),
        y_label: "giant component / nodes of the intact graph".into(),
        x_log: false,
        y_log: false,
        series: of
            .iter()
            .flat_map(|c| {
                let line = |name: String, points: &[RobustnessPoint]| Series {
                    name,
                    style: SeriesStyle::Line,
                    points: points.iter().map(|p| (p.fraction, p.giant_fraction)).collect(),
                };
                [
                    line(format!("{}, random failure", c.label), &c.failure),
                    line(format!("{}, attack", c.label), &c.attack),
                ]
            })
            .collect(),
    };
    let synthetic: Vec<&Curves> = curves.iter().filter(|c| c.key != "gnutella").collect();
    let mut figures = vec![figure(
        "random-vs-scale-free",
        "Random failure vs attack: Erdős–Rényi and Barabási–Albert",
        &synthetic,
    )];
    if let Some(g) = curves.iter().find(|c| c.key == "gnutella") {
        figures.push(figure(
            "gnutella-snapshot",
            "Random failure vs attack: the crawled Gnutella ultrapeer graph",
            &[g],
        ));
    }
    let overlay = match (&params.gnutella, crawled) {
        (Some(o), Some(c)) => format!(
            " The Gnutella overlay: {} ultrapeers ({:?} topology, {} links per joining ultrapeer) and {} leaves on loopback, crawled breadth-first through the Gnutella 0.6 crawler handshake: {} ultrapeers, {} ultrapeer links and {} leaves found.",
            o.ultrapeers,
            o.topology,
            o.ultrapeer_links,
            o.leaves,
            c.graph.nodes.len(),
            c.graph.edges.len(),
            c.leaves
        ),
        _ => String::new(),
    };
    Outcome {
        experiment: "robustness".into(),
        title: "Random failure vs targeted attack".into(),
        summary: format!(
            "Nodes removed in steps of {:.0} % from an Erdős–Rényi and a Barabási–Albert graph of {} nodes and mean degree {} (seed {seed}), at random or highest degree first (degrees of the intact graph); fragmented once the giant component holds less than {:.0} % of the nodes.{overlay}",
            params.step * 100.0,
            params.nodes,
            params.mean_degree,
            params.collapse * 100.0
        ),
        measurements,
        figures,
        tables: vec![Table {
            id: "thresholds".into(),
            title: "Thresholds by graph".into(),
            columns: [
                "graph",
                "nodes",
                "κ = ⟨k²⟩/⟨k⟩",
                "predicted f_c (failure)",
                "f_c failure",
                "f_c attack",
                "giant after 30 % failures",
                "giant after 4 % attacked",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(nodes: usize) -> Params {
        Params {
            nodes,
            gnutella: None,
            ..Params::default()
        }
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let field = |p: Params| p.validate().map_err(|e| e.field);
        assert_eq!(
            field(Params {
                nodes: 3,
                ..synthetic(10)
            }),
            Err("nodes")
        );
        assert_eq!(
            field(Params {
                mean_degree: f64::NAN,
                ..synthetic(100)
            }),
            Err("mean_degree")
        );
        assert_eq!(
            field(Params {
                step: 0.0,
                ..synthetic(100)
            }),
            Err("step")
        );
        assert_eq!(
            field(Params {
                collapse: 1.0,
                ..synthetic(100)
            }),
            Err("collapse")
        );
        let no_ultrapeers = Params {
            gnutella: Some(Box::new(OverlayConfig {
                ultrapeers: 0,
                ..OverlayConfig::default()
            })),
            ..synthetic(100)
        };
        assert_eq!(field(no_ultrapeers), Err("gnutella"));
        assert_eq!(field(Params::default()), Ok(()));
    }

    #[test]
    fn kappa_and_thresholds_follow_their_definitions() {
        // A star of 4 leaves: degrees 4,1,1,1,1; κ = (16 + 4) / 8.
        let star = Graph {
            nodes: (0..5).collect(),
            edges: (1..5).map(|i| (0, i)).collect(),
        };
        assert!((star.kappa() - 2.5).abs() < 1e-12);
        let c = Curves::of("star", "star", &star, &[0.0, 0.2, 0.4], 1);
        // Removing the hub (20 %) leaves singletons: 1 of 5.
        assert_eq!(c.attack[1].giant, 1);
        assert_eq!(threshold(&c.attack, 0.5), 0.2);
        assert_eq!(threshold(&c.attack, 0.1), 1.0);
        assert!((c.predicted_failure_threshold() - (1.0 - 1.0 / 1.5)).abs() < 1e-12);
    }

    /// The dichotomy of Albert et al.: the scale-free graph survives failures far longer than
    /// attacks; the random graph's failure threshold is the Molloy–Reed one.
    #[tokio::test]
    async fn scale_free_graphs_survive_failures_but_not_attacks() {
        let outcome = run(&synthetic(10_000), 1, &Progress::hidden()).await.expect("runs");
        let value = |name: &str| outcome.measurement(name).map(|m| m.value).expect(name);
        let predicted = |name: &str| {
            (outcome.measurement(name))
                .and_then(|m| m.published.as_ref())
                .map(|p| p.value)
                .expect(name)
        };
        assert!((predicted("er_failure_threshold") - 0.75).abs() < 0.03);
        assert!((value("er_failure_threshold") - predicted("er_failure_threshold")).abs() < 0.08);
        // Far beyond the attack threshold, though below the asymptotic prediction: a finite
        // scale-free giant component thins out gradually and drops under `collapse` first.
        assert!(value("ba_failure_threshold") > 0.7, "{}", value("ba_failure_threshold"));
        assert!(predicted("ba_failure_threshold") > value("ba_failure_threshold"));
        assert!(
            (0.1..0.3).contains(&value("ba_attack_threshold")),
            "{}",
            value("ba_attack_threshold")
        );
        assert!(value("ba_attack_to_failure_ratio") < 0.35);
        assert!(value("er_attack_to_failure_ratio") > value("ba_attack_to_failure_ratio"));
        assert_eq!(
            outcome,
            run(&synthetic(10_000), 1, &Progress::hidden()).await.expect("runs")
        );
    }
}
