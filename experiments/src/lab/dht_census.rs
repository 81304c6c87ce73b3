//! Experiment 9, a DHT Sybil census and index poisoning on the loopback DHT simulator: plant
//! Sybils near a target key and poisoners answering `get_peers` for it with fake peers, run a
//! real crawl campaign against them (the crawler's own runner: DHT crawl with `get_peers`, the
//! swarm monitor trying every peer it is given, the summary's Sybil and poisoning signals), and
//! score the flags against the simulator's ground truth.
//!
//! The published reference: Wang and Kangasharju ("Real-world Sybil attacks in BitTorrent
//! Mainline DHT", IEEE Globecom 2012) found Sybils by ids concentrated near keys and many ids
//! per IP — the signals used here; a census is only as good as its precision and recall
//! against a known truth, which only a testbed gives. The checks ask for the planted truth.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use onionlab_crawler::analysis::Score;
use onionlab_crawler::analysis::sybil::common_prefix_len;
use onionlab_crawler::campaign::config::{
    AnalysisKind, DhtCrawlSpec, EngineSection, ExportFormat, ProbeSpec, SwarmSpec, SybilSection, Targets,
};
use onionlab_crawler::campaign::{Campaign as CrawlCampaign, CampaignRun, RunError};
use onionlab_crawler::dht::sim::{PoisonConfig, Role, SimConfig, SimNetwork, SybilConfig, SybilPlacement};
use onionlab_crawler::dht::space::SplitMix64;
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::krpc::NodeId;
use onionlab_crawler::store::StoreError;
use serde::Deserialize;
use thiserror::Error;

use crate::campaign::Progress;
use crate::outcome::{Figure, Measurement, Outcome, Published, Series, SeriesStyle, Table};

/// The census' parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Honest simulated nodes.
    pub nodes: usize,
    /// Sybils planted near the target.
    pub sybils: usize,
    /// Sybils all on one IP (`one_ip`) or one per address of one range (`range`).
    pub placement: Placement,
    /// Leading bits the Sybil ids share with the target.
    pub sybil_bits: u32,
    /// Poisoners answering `get_peers` for the target with fake peers.
    pub poisoners: usize,
    /// Fake peers per poisoned reply.
    pub fake_peers: usize,
    /// Leading bits the poisoner ids share with the target (so lookups for it reach them).
    pub poisoner_bits: u32,
    /// The first honest node's address (Sybils, poisoners and fake peers take the next /16s).
    pub base_ip: Ipv4Addr,
    /// Every node's UDP port (fixed, so a resumed census finds the same network again).
    pub port: u16,
    /// Politeness of the crawl (our own simulator: far below the 1 s used on real networks).
    #[serde(deserialize_with = "super::duration")]
    pub per_ip_interval: Duration,
    /// How long the crawl campaign runs: the DHT crawl and its lookups, while the swarm
    /// monitor tries every peer the lookups hand out.
    #[serde(deserialize_with = "super::duration")]
    pub duration: Duration,
}

/// Where the Sybils live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// All on one IP, one port each.
    OneIp,
    /// One per address of one range.
    Range,
}

impl Default for Params {
    /// 2,000 honest nodes, 30 Sybils on one IP sharing 20 bits with the target, 10 poisoners
    /// with 30 fake peers each sharing 24 bits with the target, from 127.110.0.0 port 6881, 20 ms
    /// politeness, 15 s.
    fn default() -> Self {
        Params {
            nodes: 2000,
            sybils: 30,
            placement: Placement::OneIp,
            sybil_bits: 20,
            poisoners: 10,
            fake_peers: 30,
            poisoner_bits: 24,
            base_ip: Ipv4Addr::new(127, 110, 0, 0),
            port: 6881,
            per_ip_interval: Duration::from_millis(20),
            duration: Duration::from_secs(15),
        }
    }
}

/// Why the census could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CensusError {
    /// The simulator did not start (addresses, file descriptors).
    #[error("cannot start the simulated DHT: {0}")]
    Simulator(String),
    /// The crawl campaign failed.
    #[error(transparent)]
    Crawl(#[from] RunError),
    /// Its store could not be read back.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Run the census, recording into `folder/crawl/` (the crawler campaign's output folder); with
/// `resume`, an interrupted crawl there is continued for the time it had left.
pub async fn run(
    params: &Params,
    seed: u64,
    folder: &Path,
    resume: bool,
    progress: &Progress,
) -> Result<Outcome, CensusError> {
    progress.stage(&format!("starting {} simulated DHT nodes", params.nodes));
    let target = InfoHash(SplitMix64::new(seed ^ 0x7a76_6574).node_id().0);
    let net = SimNetwork::start(SimConfig {
        nodes: params.nodes,
        seed,
        base_ip: params.base_ip,
        port: params.port,
        sybils: (params.sybils > 0).then_some(SybilConfig {
            count: params.sybils,
            placement: match params.placement {
                Placement::OneIp => SybilPlacement::OneIp,
                Placement::Range => SybilPlacement::Range,
            },
            target,
            shared_bits: params.sybil_bits,
        }),
        poisoners: (params.poisoners > 0).then_some(PoisonConfig {
            count: params.poisoners,
            target,
            fake_peers: params.fake_peers,
            shared_bits: params.poisoner_bits,
        }),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| CensusError::Simulator(e.to_string()))?;

    let crawl = CrawlCampaign {
        name: "dht-census".into(),
        description: "Sybil census and index poisoning on the simulated DHT".into(),
        duration: params.duration,
        output: folder.join("crawl"),
        engine: EngineSection {
            per_ip_interval: Some(params.per_ip_interval),
            timeout: Some(Duration::from_millis(500)),
            attempts: Some(2),
            backoff: Some(Duration::from_millis(50)),
            ..EngineSection::default()
        },
        targets: Targets {
            dht_bootstrap: vec![net.bootstrap()],
            info_hashes: vec![target.to_hex()],
            ..Targets::default()
        },
        probes: vec![
            ProbeSpec::DhtCrawl(DhtCrawlSpec {
                every: None,
                max_duration: params.duration,
                max_nodes: 1_000_000,
                get_peers: true,
                sample_infohashes: false,
                bind: vec![SocketAddr::from(([127, 0, 0, 3], 0))],
            }),
            ProbeSpec::Swarm(SwarmSpec {
                every: Some(Duration::from_millis(500)),
                sample_pieces: 0,
                pex: false,
                linger: Duration::from_millis(50),
            }),
        ],
        analyses: vec![AnalysisKind::Sybil, AnalysisKind::Poisoning, AnalysisKind::Size],
        // 256 honest simulated nodes share each loopback /24: that signal means nothing here.
        sybil: SybilSection {
            max_ids_per_subnet: Some(0),
            ..SybilSection::default()
        },
        export: vec![ExportFormat::Parquet],
        source: String::new(),
    };
    let prepared = match CampaignRun::prepare(crawl.clone(), resume) {
        Err(RunError::NothingToResume { .. }) => CampaignRun::prepare(crawl, false),
        other => other,
    }?;
    progress.stage(&format!("crawling for {:?}", params.duration));
    let outcome = prepared.run(std::future::pending()).await?;
    let summary = &outcome.summary;

    let truth_of = |role: Role| -> BTreeSet<SocketAddr> {
        net.nodes().iter().filter(|n| n.role == role).map(|n| n.addr).collect()
    };
    // Every identity planted near the target is what the cluster signal looks for: the
    // poisoners sit there too, so that lookups for the key reach them.
    let sybil_ids: BTreeSet<NodeId> = net
        .nodes()
        .iter()
        .filter(|n| matches!(n.role, Role::Sybil | Role::Poisoner))
        .map(|n| n.answers_with)
        .collect();
    let responsive: BTreeSet<SocketAddr> = net
        .nodes()
        .iter()
        .filter(|n| n.role.responds())
        .map(|n| n.addr)
        .collect();
    let flagged_ids = summary
        .sybil
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map(|r| r.ids())
        .unwrap_or_default();
    let sybil_score = Score::of(&flagged_ids, &sybil_ids);
    let poison_truth: BTreeSet<String> = truth_of(Role::Poisoner).iter().map(|a| format!("dht:{a}")).collect();
    let flagged_sources = summary
        .poisoning
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map(|r| r.flagged_sources())
        .unwrap_or_default();
    let poison_score = Score::of(&flagged_sources, &poison_truth);
    let found = summary.addrs.1;
    let size = summary
        .size
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .map(|s| s.density_estimate);
    drop(net);

    // How close to the target each kind of node answered: the Sybils' cluster, visible.
    let mut near: BTreeMap<(bool, u32), usize> = BTreeMap::new();
    let ids_answered = crate::lab::answered_ids(&folder.join("crawl"), outcome.crawl)?;
    for id in &ids_answered {
        let bits = common_prefix_len(&id.0, &target.0).min(32);
        *near.entry((sybil_ids.contains(id), bits)).or_default() += 1;
    }
    let series = |sybil: bool, name: &str| Series {
        name: name.into(),
        style: SeriesStyle::Points,
        points: near
            .iter()
            .filter(|((s, _), _)| *s == sybil)
            .map(|((_, bits), n)| (f64::from(*bits), *n as f64))
            .collect(),
    };
    let measurement = |name: &str, label: &str, value: f64, unit: &str, published: Option<(f64, &str)>| Measurement {
        name: name.into(),
        label: label.into(),
        value,
        unit: unit.into(),
        published: published.map(|(value, source)| Published {
            value,
            source: source.into(),
        }),
    };
    let planted = "the simulator's ground truth (every planted node)";
    let measurements = vec![
        measurement(
            "nodes_found",
            "responsive nodes found by the crawl (fraction)",
            found as f64 / responsive.len().max(1) as f64,
            "",
            Some((1.0, planted)),
        ),
        measurement(
            "size_estimate",
            "network size estimated from the crawl",
            size.unwrap_or(0.0),
            "nodes",
            Some(((params.nodes + params.sybils + params.poisoners) as f64, planted)),
        ),
        measurement(
            "sybil_precision",
            "Sybil flags: precision",
            sybil_score.precision().unwrap_or(0.0),
            "",
            Some((1.0, planted)),
        ),
        measurement(
            "sybil_recall",
            "Sybil flags: recall",
            sybil_score.recall().unwrap_or(0.0),
            "",
            Some((1.0, planted)),
        ),
        measurement(
            "poisoner_precision",
            "poisoning sources: precision",
            poison_score.precision().unwrap_or(0.0),
            "",
            Some((1.0, planted)),
        ),
        measurement(
            "poisoner_recall",
            "poisoning sources: recall",
            poison_score.recall().unwrap_or(0.0),
            "",
            Some((1.0, planted)),
        ),
    ];
    let table = Table {
        id: "census".into(),
        title: "What the crawl saw".into(),
        columns: vec!["".into(), "planted".into(), "flagged".into(), "correct".into()],
        rows: vec![
            vec![
                "ids planted near the key".into(),
                sybil_ids.len().to_string(),
                flagged_ids.len().to_string(),
                flagged_ids.intersection(&sybil_ids).count().to_string(),
            ],
            vec![
                "poisoning sources".into(),
                poison_truth.len().to_string(),
                flagged_sources.len().to_string(),
                flagged_sources.intersection(&poison_truth).count().to_string(),
            ],
        ],
    };
    Ok(Outcome {
        experiment: "dht-census".into(),
        title: "DHT Sybil census and index poisoning".into(),
        summary: format!(
            "A loopback Mainline DHT of {} honest nodes with {} Sybils ({:?}, ids sharing {} bits with a \
             target key) and {} poisoners answering get_peers for the target with {} fake peers each, seed \
             {seed}, crawled by onionlab-crawl's campaign runner (DHT crawl with get_peers, every peer tried \
             by the swarm monitor); flags from the summary's Sybil and poisoning signals, scored against the \
             simulator's truth.",
            params.nodes, params.sybils, params.placement, params.sybil_bits, params.poisoners, params.fake_peers
        ),
        measurements,
        figures: vec![Figure {
            id: "near-target".into(),
            title: "Nodes by bits shared with the target key".into(),
            x_label: "leading bits shared with the target".into(),
            y_label: "nodes that answered".into(),
            x_log: false,
            y_log: true,
            series: vec![
                series(false, "honest nodes"),
                series(true, "planted Sybils and poisoners"),
            ],
        }],
        tables: vec![table],
    })
}
