//! Measurement campaigns: what `onionlab run` does with a campaign that has `probes:` instead
//! of an `experiment:`. A testbed is started on loopback (`testbed:`: a BitTorrent swarm of
//! our own peers with seeders, leechers, free riders, poisoners and churn; a simulated
//! Mainline DHT with Sybils and poisoners; a Gnutella overlay; an onion network with Sybil
//! relays), its addresses join the real ones given under
//! `targets:`, and the crawler's campaign runner measures them all with the `probes:` on their
//! schedules, at the `engine:`'s rates, then runs the `analyses:`. What the crawl found is
//! scored against what the testbed planted, and becomes an [`Outcome`] for the report and the
//! checks.
//!
//! - [`dht`]: the simulated DHT, and the score of Sybil and poisoning flags against it.
//! - [`swarm`]: the testbed swarm and its churn, and the score of peers found, bad-piece
//!   flags and measured sessions against it.
//! - [`gnutella`]: the Gnutella overlay, and the score of the crawled topology, the Sybil
//!   ultrapeers flagged and the measured sessions against it.
//! - [`onion`]: the onion network's authorities and relays, and the score of a relay census
//!   (relays found, Sybils admitted and flagged) against it.
//! - [`sessions`]: measured against true session lengths, for every testbed that churns.
//!
//! The crawl's own output (the SQLite store, `summary.txt`, Parquet and CSV tables as
//! `report: { export: [...] }` asks) is in `OUTPUT/crawl/`; Ctrl-C stops the crawl cleanly and
//! `--resume` continues it there, against a testbed started again from the same seed.

pub mod dht;
pub mod gnutella;
pub mod onion;
pub mod sessions;
pub mod swarm;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use onionlab_crawler::analysis::Score;
use onionlab_crawler::campaign::config::Targets;
use onionlab_crawler::campaign::run::STORE_FILE;
use onionlab_crawler::campaign::{Campaign as CrawlCampaign, CampaignRun, RunError, Summary};
use onionlab_crawler::krpc::NodeId;
use onionlab_crawler::observe::{Outcome as ProbeOutcome, PieceCheck, Sighting, Visit};
use onionlab_crawler::store::{CrawlEnd, SessionRow, Store, StoreError};
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::watch;

use crate::campaign::{Campaign, Progress};
use crate::gnutella::OverlayConfig;
use crate::outcome::{Figure, Measurement, Outcome, Table};
use crate::sim::measurement;
use crate::swarm::runner::SwarmError;
pub use dht::DhtTestbed;
pub use onion::OnionTestbed;
pub use swarm::SwarmTestbed;

/// The `testbed:` section: what to start on loopback before measuring.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Testbed {
    /// A simulated Mainline DHT.
    pub dht: Option<DhtTestbed>,
    /// A BitTorrent swarm of our own peers.
    pub swarm: Option<SwarmTestbed>,
    /// A Gnutella 0.6 overlay of ultrapeers and leaves.
    pub gnutella: Option<OverlayConfig>,
    /// An onion network: directory authorities, relays and Sybil relays.
    pub onion: Option<OnionTestbed>,
}

impl Testbed {
    /// Whether nothing is to be started.
    pub fn is_empty(&self) -> bool {
        self.dht.is_none() && self.swarm.is_none() && self.gnutella.is_none() && self.onion.is_none()
    }

    /// What the testbed will add to the targets, with placeholders for the addresses it only
    /// knows once started (to check a campaign before anything runs).
    pub fn promised_targets(&self, targets: &mut Targets) {
        let placeholder = "0".repeat(40);
        if self.dht.is_some() {
            targets.dht_bootstrap.push(SocketAddr::from(([127, 0, 0, 1], 1)));
            targets.info_hashes.push(placeholder.clone());
        }
        if self.swarm.is_some() {
            targets.info_hashes.push(placeholder);
        }
        if self.gnutella.is_some() {
            targets.gnutella_bootstrap.push(SocketAddr::from(([127, 0, 0, 1], 1)));
        }
        if self.onion.is_some() {
            targets.onion_authorities.push(SocketAddr::from(([127, 0, 0, 1], 1)));
        }
    }
}

/// `score` as the two measurements `{name}_precision` and `{name}_recall`, labelled with
/// `what` was flagged, each against the perfect 1 that `truth` (what was planted) allows.
pub fn precision_recall(name: &str, what: &str, score: &Score, truth: &str) -> [Measurement; 2] {
    [
        measurement(
            format!("{name}_precision"),
            format!("{what}: precision"),
            score.precision().unwrap_or(0.0),
            "",
            Some((1.0, truth)),
        ),
        measurement(
            format!("{name}_recall"),
            format!("{what}: recall"),
            score.recall().unwrap_or(0.0),
            "",
            Some((1.0, truth)),
        ),
    ]
}

/// What a testbed part measured against its truth.
#[derive(Debug, Default)]
pub struct Scored {
    /// Named values for the checks.
    pub measurements: Vec<Measurement>,
    /// Plots.
    pub figures: Vec<Figure>,
    /// Tables.
    pub tables: Vec<Table>,
}

/// The rows of one crawl the scores read.
#[derive(Debug)]
pub struct CrawlRows {
    /// Every probe attempt.
    pub visits: Vec<Visit>,
    /// Every sample piece checked.
    pub piece_checks: Vec<PieceCheck>,
    /// Peer sessions (when the sessions analysis ran).
    pub sessions: Vec<SessionRow>,
    /// Every address reported by a source (tracker, DHT node, Gnutella servent).
    pub sightings: Vec<Sighting>,
}

impl CrawlRows {
    /// The DHT ids that answered.
    pub fn answered_ids(&self) -> std::collections::BTreeSet<NodeId> {
        self.visits
            .iter()
            .filter(|v| v.outcome == ProbeOutcome::Ok && v.probe.is_dht())
            .filter_map(|v| v.remote_id.map(NodeId))
            .collect()
    }
}

/// Why a measurement campaign failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// A testbed part did not start.
    #[error("cannot start the testbed: {0}")]
    Testbed(String),
    /// The testbed swarm did not start.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// The crawl failed.
    #[error(transparent)]
    Crawl(#[from] RunError),
    /// Its store could not be read back.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stopped before the campaign's duration was over.
    #[error("interrupted")]
    Interrupted,
}

/// The crawl campaign a measurement campaign runs: its sections, `targets` (the real ones and
/// the testbed's) and the output folder `folder`.
pub fn crawl_campaign(campaign: &Campaign, targets: Targets, folder: &Path) -> CrawlCampaign {
    CrawlCampaign {
        name: campaign.name.clone(),
        description: campaign.description.clone(),
        duration: campaign.duration.unwrap_or(Duration::ZERO),
        output: folder.to_path_buf(),
        engine: campaign.engine.clone(),
        targets,
        probes: campaign.probes.clone(),
        analyses: campaign.analyses.clone(),
        sybil: campaign.sybil.clone(),
        export: campaign.report.export.clone(),
        source: campaign.source.clone(),
    }
}

/// Run a measurement campaign: start its testbed, crawl it (and its real targets) until the
/// duration is over or `stop` completes, and score what was found.
pub async fn run(
    campaign: &Campaign,
    resume: bool,
    progress: &Progress,
    stop: impl Future<Output = ()>,
) -> Result<Outcome, MeasureError> {
    let folder = &campaign.output;
    let seed = campaign.seed;
    let duration = campaign.duration.unwrap_or(Duration::ZERO);
    let mut targets = campaign.targets.clone();
    let dht = match &campaign.testbed.dht {
        Some(p) => {
            progress.stage(&format!("starting {} simulated DHT nodes", p.nodes));
            let dht = p.start(seed).await?;
            dht.add_targets(&mut targets);
            Some(dht)
        }
        None => None,
    };
    let mut swarm = match &campaign.testbed.swarm {
        Some(p) => {
            progress.stage("starting the testbed swarm");
            let swarm = p.start(seed, duration).await?;
            swarm.add_targets(&folder.join("testbed"), &mut targets)?;
            Some(swarm)
        }
        None => None,
    };
    let overlay = match &campaign.testbed.gnutella {
        Some(config) => {
            progress.stage(&format!(
                "starting a Gnutella overlay of {} ultrapeers and {} leaves",
                config.ultrapeers + config.sybils.count,
                config.leaves
            ));
            let overlay = gnutella::start(config).await?;
            overlay.add_targets(&mut targets);
            Some(overlay)
        }
        None => None,
    };
    let onion = match &campaign.testbed.onion {
        Some(config) => {
            progress.stage(&format!(
                "starting an onion network of {} authorities, {} relays and {} Sybil relays",
                config.authorities, config.relays, config.sybils.relays
            ));
            let onion = config.start().await?;
            onion.add_targets(&mut targets);
            Some(onion)
        }
        None => None,
    };
    let crawl = crawl_campaign(campaign, targets, &folder.join("crawl"));
    let prepared = match CampaignRun::prepare(crawl.clone(), resume) {
        Err(RunError::NothingToResume { .. }) => CampaignRun::prepare(crawl, false),
        other => other,
    }?;
    let shown = prepared.progress();
    progress.counted("measuring, seconds", shown.budget().as_secs());
    let (done, watch_done) = watch::channel(false);
    let mut ticker_done = watch_done.clone();
    let ticker = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let rounds: Vec<String> = shown.rounds().iter().map(|(p, n)| format!("{p} {n}")).collect();
                    progress.at(shown.elapsed().as_secs(), &format!("measuring (probe rounds: {}), seconds", rounds.join(", ")));
                }
                // Done, or the measurement gone (its sender dropped).
                _ = ticker_done.wait_for(|done| *done) => break,
            }
        }
    };
    let measured = async {
        let outcome = prepared.run(stop).await;
        done.send_replace(true);
        outcome
    };
    let churn = async {
        if let Some(s) = swarm.as_mut() {
            s.churn(watch_done).await;
        }
    };
    let (outcome, (), ()) = tokio::join!(measured, churn, ticker);
    let outcome = outcome?;
    if outcome.end == CrawlEnd::Interrupted {
        return Err(MeasureError::Interrupted);
    }
    let store = Store::open(folder.join("crawl").join(STORE_FILE))?;
    let rows = CrawlRows {
        visits: store.visits(outcome.crawl)?,
        piece_checks: store.piece_checks(outcome.crawl)?,
        sessions: store.sessions(outcome.crawl)?,
        sightings: store.sightings(outcome.crawl)?,
    };
    let summary = &outcome.summary;
    let mut scored = vec![general(summary)];
    let mut parts = Vec::new();
    if let Some(dht) = &dht {
        scored.push(dht.score(summary, &rows.answered_ids()));
        parts.push(dht.describe());
    }
    if let Some(swarm) = swarm {
        parts.push(swarm.describe());
        scored.push(swarm.score(summary, &rows).await);
    }
    if let Some(overlay) = overlay {
        parts.push(overlay.describe());
        scored.push(
            overlay
                .score(&rows, campaign.sybil.to_config().max_ids_per_subnet)
                .await,
        );
    }
    if let Some(onion) = onion {
        parts.push(onion.describe());
        scored.push(onion.score(summary, &rows, campaign.sybil.to_config().max_ids_per_subnet));
    }
    let measured_what = if parts.is_empty() {
        "real targets".to_string()
    } else if campaign.targets == Targets::default() {
        parts.join(" and ")
    } else {
        format!("{} and real targets", parts.join(" and "))
    };
    let probes: Vec<&str> = campaign.probes.iter().map(|p| p.name()).collect();
    let mut result = Outcome {
        experiment: "measurement".into(),
        title: campaign.name.clone(),
        summary: format!(
            "{measured_what}, measured for {duration:?} by onionlab-crawl's campaign runner (probes: {}; \
             analyses: {:?}; seed {seed}); the crawl's store, summary and tables are in crawl/.",
            probes.join(", "),
            campaign.analyses
        ),
        measurements: Vec::new(),
        figures: Vec::new(),
        tables: Vec::new(),
    };
    for s in scored {
        result.measurements.extend(s.measurements);
        result.figures.extend(s.figures);
        result.tables.extend(s.tables);
    }
    Ok(result)
}

/// What every crawl has: attempts per probe kind, addresses answered, and the analyses' own
/// numbers.
fn general(summary: &Summary) -> Scored {
    let mut measurements = vec![
        measurement(
            "addresses_probed",
            "distinct addresses probed",
            summary.addrs.0 as f64,
            "",
            None,
        ),
        measurement(
            "addresses_answered",
            "distinct addresses that answered at least once",
            summary.addrs.1 as f64,
            "",
            None,
        ),
    ];
    if let Some(s) = &summary.sessions {
        measurements.push(measurement(
            "sessions",
            "peer sessions measured (every address)",
            s.sessions as f64,
            "",
            None,
        ));
    }
    let rows = summary
        .visits
        .iter()
        .map(|(kind, (all, ok))| vec![kind.as_str().to_string(), all.to_string(), ok.to_string()])
        .collect();
    Scored {
        measurements,
        figures: Vec::new(),
        tables: vec![Table {
            id: "probes".into(),
            title: "Probe attempts".into(),
            columns: vec!["probe".into(), "attempts".into(), "answered well".into()],
            rows,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_recall_are_scored_against_the_planted_truth() {
        let flagged = std::collections::BTreeSet::from([1, 2, 3, 4]);
        let planted = std::collections::BTreeSet::from([2, 3, 4, 5, 6]);
        let [precision, recall] =
            precision_recall("sybil", "Sybils flagged", &Score::of(&flagged, &planted), "5 planted");
        assert_eq!((precision.name.as_str(), precision.value), ("sybil_precision", 0.75));
        assert_eq!((recall.name.as_str(), recall.value), ("sybil_recall", 0.6));
        for m in [&precision, &recall] {
            let published = m.published.as_ref().expect("the perfect score");
            assert_eq!((published.value, published.source.as_str()), (1.0, "5 planted"));
        }
        // Nothing flagged: precision is undefined and shown as 0, never NaN.
        let none = Score::of(&std::collections::BTreeSet::new(), &planted);
        let [precision, recall] = precision_recall("sybil", "Sybils flagged", &none, "5 planted");
        assert_eq!((precision.value, recall.value), (0.0, 0.0));
    }
}
