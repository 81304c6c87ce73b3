//! The simulated Mainline DHT of a measurement testbed (`testbed: dht:`): the crawler's
//! loopback simulator with Sybils planted near a target key and poisoners answering
//! `get_peers` for it with fake peers, and the score of a crawl's Sybil and poisoning flags
//! against what was planted.
//!
//! The published reference: Wang and Kangasharju ("Real-world Sybil attacks in BitTorrent
//! Mainline DHT", IEEE Globecom 2012) found Sybils by ids concentrated near keys and many ids
//! per IP, the signals the crawler's Sybil analysis uses; a census is only as good as its
//! precision and recall against a known truth, which only a testbed gives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use onionlab_crawler::analysis::Score;
use onionlab_crawler::analysis::sybil::common_prefix_len;
use onionlab_crawler::campaign::Summary;
use onionlab_crawler::campaign::config::Targets;
use onionlab_crawler::dht::sim::{
    PoisonConfig, Role, SimConfig, SimNetwork, SybilConfig, SybilPlacement, default_target,
};
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::krpc::NodeId;
use serde::Deserialize;

use super::{MeasureError, Scored, precision_recall};
use crate::outcome::{Figure, Series, SeriesStyle, Table};
use crate::sim::measurement;

/// What to start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhtTestbed {
    /// Honest simulated nodes.
    pub nodes: usize,
    /// Sybils planted near the target.
    pub sybils: usize,
    /// Sybils all on one IP (`one_ip`) or one per address of one range (`range`).
    pub placement: SybilPlacement,
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
    /// Every node's UDP port (fixed, so a resumed campaign finds the same network again).
    pub port: u16,
}

impl Default for DhtTestbed {
    /// 2,000 honest nodes, 30 Sybils on one IP sharing 20 bits with the target, 10 poisoners
    /// with 30 fake peers each sharing 24 bits with the target, from 127.110.0.0 port 6881.
    fn default() -> Self {
        DhtTestbed {
            nodes: 2000,
            sybils: 30,
            placement: SybilPlacement::OneIp,
            sybil_bits: 20,
            poisoners: 10,
            fake_peers: 30,
            poisoner_bits: 24,
            base_ip: Ipv4Addr::new(127, 110, 0, 0),
            port: 6881,
        }
    }
}

/// The running DHT and what was planted in it.
#[derive(Debug)]
pub struct RunningDht {
    params: DhtTestbed,
    net: SimNetwork,
    target: InfoHash,
}

impl DhtTestbed {
    /// The key the adversaries gather around, from the campaign's seed.
    pub fn target(seed: u64) -> InfoHash {
        default_target(seed)
    }

    /// Starts every node (each a real KRPC responder on its own address).
    pub async fn start(&self, seed: u64) -> Result<RunningDht, MeasureError> {
        let target = Self::target(seed);
        let net = SimNetwork::start(SimConfig {
            nodes: self.nodes,
            seed,
            base_ip: self.base_ip,
            port: self.port,
            sybils: SybilConfig::planted(self.sybils, self.placement, target, self.sybil_bits),
            poisoners: PoisonConfig::planted(self.poisoners, target, self.fake_peers, self.poisoner_bits),
            ..SimConfig::default()
        })
        .await
        .map_err(|e| MeasureError::Testbed(format!("the simulated DHT did not start: {e}")))?;
        Ok(RunningDht {
            params: self.clone(),
            net,
            target,
        })
    }
}

impl RunningDht {
    /// What the crawl starts from: one node to bootstrap from, and the target key (so that
    /// `get_peers` lookups for it meet the poisoners).
    pub fn add_targets(&self, targets: &mut Targets) {
        targets.dht_bootstrap.push(self.net.bootstrap());
        targets.info_hashes.push(self.target.to_hex());
    }

    /// One line for the report's summary.
    pub fn describe(&self) -> String {
        let p = &self.params;
        format!(
            "a loopback Mainline DHT of {} honest nodes with {} Sybils ({:?}, ids sharing {} bits with a target key) \
             and {} poisoners answering get_peers for the target with {} fake peers each",
            p.nodes, p.sybils, p.placement, p.sybil_bits, p.poisoners, p.fake_peers
        )
    }

    /// The crawl's flags and counts against the planted truth; `ids_answered` are the DHT ids
    /// that answered the crawl.
    pub fn score(&self, summary: &Summary, ids_answered: &BTreeSet<NodeId>) -> Scored {
        let nodes = self.net.nodes();
        // Every identity planted near the target is what the cluster signal looks for: the
        // poisoners sit there too, so that lookups for the key reach them.
        let sybil_ids: BTreeSet<NodeId> = nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Sybil | Role::Poisoner))
            .map(|n| n.answers_with)
            .collect();
        let responsive = nodes.iter().filter(|n| n.role.responds()).count();
        let flagged_ids = summary
            .sybil
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|r| r.ids())
            .unwrap_or_default();
        let sybil_score = Score::of(&flagged_ids, &sybil_ids);
        let poison_truth: BTreeSet<String> = nodes
            .iter()
            .filter(|n| n.role == Role::Poisoner)
            .map(|n| format!("dht:{}", n.addr))
            .collect();
        let flagged_sources = summary
            .poisoning
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|r| r.flagged_sources())
            .unwrap_or_default();
        let poison_score = Score::of(&flagged_sources, &poison_truth);
        let size = summary
            .size
            .as_ref()
            .and_then(|s| s.as_ref().ok())
            .map(|s| s.density_estimate);
        let p = &self.params;
        let planted = "the simulator's ground truth (every planted node)";
        let mut measurements = vec![
            measurement(
                "nodes_found",
                "responsive DHT nodes found by the crawl (fraction)",
                ids_answered.len() as f64 / responsive.max(1) as f64,
                "",
                Some((1.0, planted)),
            ),
            measurement(
                "size_estimate",
                "DHT size estimated from the crawl",
                size.unwrap_or(0.0),
                "nodes",
                Some(((p.nodes + p.sybils + p.poisoners) as f64, planted)),
            ),
        ];
        measurements.extend(precision_recall("sybil", "Sybil flags", &sybil_score, planted));
        measurements.extend(precision_recall(
            "poisoner",
            "DHT poisoning sources",
            &poison_score,
            planted,
        ));
        // How close to the target each kind of node answered: the Sybils' cluster, visible.
        let mut near: BTreeMap<(bool, u32), usize> = BTreeMap::new();
        for id in ids_answered {
            let bits = common_prefix_len(&id.0, &self.target.0).min(32);
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
        let table = Table {
            id: "census".into(),
            title: "What the crawl saw of the DHT".into(),
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
        Scored {
            measurements,
            figures: vec![Figure {
                id: "near-target".into(),
                title: "DHT nodes by bits shared with the target key".into(),
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
        }
    }
}
