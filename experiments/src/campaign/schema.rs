//! The campaign file of `onionlab run`. A campaign is either a teaching **experiment** with
//! its parameters:
//!
//! ```yaml
//! name: chord-lookups
//! description: Chord lookups, path length and successor lists under failures.
//! seed: 7                       # every simulation and testbed draws from it
//! output: results/chord         # relative to this file: results.json, report.html, csv/
//! experiment:                   # exactly one, with its parameters (all optional)
//!   chord: { nodes: [64, 1024] }
//! checks:                       # against the outcome's named measurements
//!   - { measurement: mean_path_length_n1024, expected: 5, tolerance: 10% }
//! ```
//!
//! or a **measurement**: a testbed started on loopback and/or real targets, measured by the
//! crawler's probes on schedules, at the engine's rates, for a duration:
//!
//! ```yaml
//! name: swarm-pollution
//! seed: 3
//! duration: 30s                 # how long the probes run (Ctrl-C stops; --resume continues)
//! output: results/swarm-pollution
//! testbed:                      # what to start locally (see measure::Testbed)
//!   swarm: { seeders: 1, leechers: 8, free_riders: 2, poisoners: 2 }
//!   dht: { nodes: 2000, sybils: 30, poisoners: 10 }
//! targets:                      # real addresses, as in onionlab-crawl campaigns
//!   dht_bootstrap: []
//! engine: { per_ip_interval: 50ms, timeout: 2s }   # rates and deadlines
//! probes:                       # onionlab-crawl's probes, each on its schedule
//!   - tracker: { every: 2s }
//!   - swarm: { every: 2s, sample_pieces: 2 }
//! analyses: [poisoning, sessions]
//! sybil: { max_ids_per_subnet: 0 }
//! report: { export: [csv] }     # the crawl's tables written beside the report
//! checks:
//!   - { measurement: bad_peer_recall, at_least: 1 }
//! ```
//!
//! Unknown fields are refused; syntax and type errors name the line and column; checks across
//! fields name the field (a measurement's sections are checked as the crawler checks its own
//! campaigns, with the testbed's addresses counted in). Reading and parsing are the crawler
//! campaigns' ([`parse_yaml`], [`read_campaign_text`]), errors too ([`CampaignError`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use onionlab_crawler::campaign::CampaignError;
use onionlab_crawler::campaign::ProbeSpec;
use onionlab_crawler::campaign::config::{
    AnalysisKind, EngineSection, ExportFormat, SybilSection, Targets, parse_yaml, read_campaign_text,
};
use serde::Deserialize;

use super::checks::Check;
use crate::lab::{choking_swarm, distribution_swarm, onion_sybil, onionperf, robustness};
use crate::measure::{self, Testbed};
use crate::sim::{self, choking, chord, distribution, lifetime_bias, piece_selection, search};

/// An experiment campaign.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// A short name (the report's title).
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// The seed of every random choice.
    #[serde(default = "one")]
    pub seed: u64,
    /// The output folder (relative paths are relative to the campaign file).
    pub output: PathBuf,
    /// A teaching experiment to run (or, instead, a measurement: `probes:` with a `testbed:`
    /// and/or `targets:`).
    #[serde(default)]
    pub experiment: Option<Experiment>,
    /// How long a measurement's probes run.
    #[serde(default, deserialize_with = "onionlab_crawler::campaign::duration::deserialize_opt")]
    pub duration: Option<Duration>,
    /// What a measurement starts on loopback.
    #[serde(default)]
    pub testbed: Testbed,
    /// Real addresses a measurement probes (the crawler campaigns' section).
    #[serde(default)]
    pub targets: Targets,
    /// The probe engine's rates and deadlines.
    #[serde(default)]
    pub engine: EngineSection,
    /// A measurement's probes and their schedules.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
    /// Analyses run over a measurement's crawl.
    #[serde(default)]
    pub analyses: Vec<AnalysisKind>,
    /// Thresholds of the Sybil analysis.
    #[serde(default)]
    pub sybil: SybilSection,
    /// What the report folder holds besides `report.html`, `results.json` and `csv/`.
    #[serde(default)]
    pub report: ReportSection,
    /// What its outcome must show.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The campaign text as written (recorded with a measurement's crawl).
    #[serde(skip)]
    pub source: String,
}

/// The `report:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// A measurement's crawl tables, exported into `crawl/` (default: Parquet and CSV).
    #[serde(default = "both")]
    pub export: Vec<ExportFormat>,
}

impl Default for ReportSection {
    fn default() -> Self {
        ReportSection { export: both() }
    }
}

fn both() -> Vec<ExportFormat> {
    vec![ExportFormat::Parquet, ExportFormat::Csv]
}

/// What a campaign runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Job<'a> {
    /// A teaching experiment.
    Experiment(&'a Experiment),
    /// A measurement of a testbed and/or real targets.
    Measurement,
}

fn one() -> u64 {
    1
}

/// The experiments, each with its parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Experiment {
    /// Experiment 1: client–server vs P2P distribution time against the formulas (simulation).
    Distribution(#[serde(default)] distribution::Params),
    /// Experiment 1 on loopback: the same with our own BitTorrent peers and rate limits.
    DistributionSwarm(#[serde(default)] distribution_swarm::Params),
    /// Experiment 2: rarest-first vs random piece selection when the seed leaves early.
    PieceSelection(#[serde(default)] piece_selection::Params),
    /// Experiment 3: tit-for-tat vs free riders, BitTyrant, PropShare and Sybils (simulation).
    Choking(#[serde(default)] choking::Params),
    /// Experiment 3 on loopback: tit-for-tat's reward, a free rider, BitTyrant among standard
    /// and PropShare clients, with our own BitTorrent peers.
    ChokingSwarm(#[serde(default)] choking_swarm::Params),
    /// Experiment 4: flooding with a TTL vs random walks on an unstructured overlay.
    Search(#[serde(default)] search::Params),
    /// Experiment 5: random failure vs targeted attack on random, scale-free and crawled graphs.
    Robustness(#[serde(default)] robustness::Params),
    /// Experiment 6: Chord lookups, path length and successor lists under failures.
    Chord(#[serde(default)] chord::Params),
    /// Experiment 7: peer-lifetime measurement bias, naive vs create-based.
    LifetimeBias(#[serde(default)] lifetime_bias::Params),
    /// Experiment 8: Sybil relays in the onion network, circuits with both ends compromised
    /// (loopback testbed).
    OnionSybil(#[serde(default)] onion_sybil::Params),
    /// Experiment 10: OnionPerf-style timings through the onion testbed (loopback).
    Onionperf(#[serde(default)] onionperf::Params),
}

impl Experiment {
    /// The experiment's key, as written in the file.
    pub fn key(&self) -> &'static str {
        match self {
            Experiment::Distribution(_) => "distribution",
            Experiment::DistributionSwarm(_) => "distribution_swarm",
            Experiment::PieceSelection(_) => "piece_selection",
            Experiment::Choking(_) => "choking",
            Experiment::ChokingSwarm(_) => "choking_swarm",
            Experiment::Search(_) => "search",
            Experiment::Robustness(_) => "robustness",
            Experiment::Chord(_) => "chord",
            Experiment::LifetimeBias(_) => "lifetime_bias",
            Experiment::OnionSybil(_) => "onion_sybil",
            Experiment::Onionperf(_) => "onionperf",
        }
    }

    /// Whether it starts a testbed on loopback (real sockets; not byte-deterministic, and run by
    /// `.ci/run` through the binary rather than in the test suite).
    pub fn is_loopback(&self) -> bool {
        matches!(
            self,
            Experiment::DistributionSwarm(_)
                | Experiment::ChokingSwarm(_)
                | Experiment::Robustness(_)
                | Experiment::Onionperf(_)
                | Experiment::OnionSybil(_)
        )
    }

    /// The parameters, checked where the experiment can check them before it starts.
    fn validate(&self) -> Result<(), sim::ParamsError> {
        match self {
            Experiment::Distribution(p) => p.validate(),
            Experiment::DistributionSwarm(p) => p.validate(),
            Experiment::ChokingSwarm(p) => p.validate(),
            Experiment::PieceSelection(p) => p.validate(),
            Experiment::Choking(p) => p.validate(),
            Experiment::Search(p) => p.validate(),
            Experiment::Robustness(p) => p.validate(),
            Experiment::Chord(p) => p.validate(),
            Experiment::LifetimeBias(p) => p.validate(),
            Experiment::OnionSybil(p) => p.validate(),
            Experiment::Onionperf(p) => p.validate(),
        }
    }
}

impl Campaign {
    /// What it runs.
    pub fn job(&self) -> Job<'_> {
        match &self.experiment {
            Some(e) => Job::Experiment(e),
            None => Job::Measurement,
        }
    }

    /// Whether it starts a testbed on loopback (real sockets: not byte-deterministic, and run
    /// by `.ci/run` through the binary rather than in the test suite).
    pub fn is_loopback(&self) -> bool {
        match self.job() {
            Job::Experiment(e) => e.is_loopback(),
            Job::Measurement => true,
        }
    }

    /// Its key in reports: the experiment's, or `measurement`.
    pub fn key(&self) -> &'static str {
        match self.job() {
            Job::Experiment(e) => e.key(),
            Job::Measurement => "measurement",
        }
    }

    /// Parse campaign text; `origin` names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<Campaign, CampaignError> {
        let mut campaign: Campaign = parse_yaml(yaml, origin)?;
        campaign.source = yaml.to_owned();
        let bad = |field: String, message: &str| CampaignError::Inconsistent {
            path: origin.to_owned(),
            field,
            message: message.to_owned(),
        };
        if campaign.name.trim().is_empty() {
            return Err(bad("name".into(), "must not be empty"));
        }
        match &campaign.experiment {
            Some(experiment) => {
                if let Err(e) = experiment.validate() {
                    return Err(bad(format!("experiment.{}.{}", experiment.key(), e.field), &e.reason));
                }
                let measurement_only = [
                    ("duration", campaign.duration.is_some()),
                    ("testbed", !campaign.testbed.is_empty()),
                    ("targets", campaign.targets != Targets::default()),
                    ("engine", campaign.engine != EngineSection::default()),
                    ("probes", !campaign.probes.is_empty()),
                    ("analyses", !campaign.analyses.is_empty()),
                    ("sybil", campaign.sybil != SybilSection::default()),
                    ("report", campaign.report != ReportSection::default()),
                ];
                if let Some((field, _)) = measurement_only.iter().find(|(_, set)| *set) {
                    return Err(bad(
                        (*field).into(),
                        "belongs to measurement campaigns (probes:), not to an experiment (which starts what it \
                         needs from its own parameters)",
                    ));
                }
            }
            None => campaign.validate_measurement(origin)?,
        }
        for (i, check) in campaign.checks.iter().enumerate() {
            if let Some(problem) = check.problem() {
                return Err(bad(format!("checks[{i}]"), problem));
            }
        }
        Ok(campaign)
    }

    /// A measurement's sections, checked as the crawler checks its campaigns (with the
    /// testbed's addresses promised), and the testbed's parameters.
    fn validate_measurement(&self, origin: &str) -> Result<(), CampaignError> {
        let bad = |field: String, message: String| CampaignError::Inconsistent {
            path: origin.to_owned(),
            field,
            message,
        };
        if self.probes.is_empty() {
            return Err(bad(
                "experiment".into(),
                "a campaign runs an experiment, or measures with probes: (a testbed: and/or targets:)".into(),
            ));
        }
        if self.duration.is_none() {
            return Err(bad(
                "duration".into(),
                "a measurement says how long its probes run".into(),
            ));
        }
        if let Some(swarm) = &self.testbed.swarm
            && let Err(e) = swarm.validate()
        {
            return Err(bad(format!("testbed.swarm.{}", e.field), e.reason));
        }
        if let Some(overlay) = &self.testbed.gnutella
            && let Err(e) = overlay.validate()
        {
            return Err(bad("testbed.gnutella".into(), e.0));
        }
        let mut targets = self.targets.clone();
        self.testbed.promised_targets(&mut targets);
        measure::crawl_campaign(self, targets, Path::new("crawl")).validate(origin)
    }

    /// Read and parse a campaign file; its output folder and torrent files are made relative
    /// to the file's folder.
    pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = read_campaign_text(path)?;
        let mut campaign = Campaign::parse(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        campaign.output = dir.join(&campaign.output);
        for t in &mut campaign.targets.torrents {
            *t = dir.join(&*t);
        }
        Ok(campaign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "name: c\noutput: out\nexperiment:\n  distribution_swarm: { file_kib: 512 }\nchecks:\n  - { measurement: runs_below_bound, at_most: 0 }\n";

    const MEASURE: &str = "name: m\noutput: out\nduration: 20s\ntestbed:\n  swarm: { leechers: 4, poisoners: 1 }\n\
                           probes:\n  - tracker: { every: 2s }\n  - swarm: { every: 2s, sample_pieces: 1 }\n\
                           analyses: [poisoning]\nchecks:\n  - { measurement: bad_peer_recall, at_least: 1 }\n";

    #[test]
    fn a_campaign_parses_with_defaults() {
        let c = Campaign::parse(OK, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.seed, 1);
        let Some(Experiment::DistributionSwarm(p)) = &c.experiment else {
            panic!("{:?}", c.experiment)
        };
        assert_eq!(p.file_kib, 512);
        assert_eq!(p.peer_counts, distribution_swarm::Params::default().peer_counts);
        assert_eq!(c.key(), "distribution_swarm");
        assert!(c.is_loopback());
    }

    #[test]
    fn lab_durations_are_read_as_written_or_as_seconds() {
        for (written, millis) in [("250ms", 250), ("2s", 2000), ("1.5", 1500)] {
            let text = OK.replace("{ file_kib: 512 }", &format!("{{ choke_interval: {written} }}"));
            let c = Campaign::parse(&text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
            let Some(Experiment::DistributionSwarm(p)) = &c.experiment else {
                panic!("{:?}", c.experiment)
            };
            assert_eq!(p.choke_interval, Duration::from_millis(millis));
        }
        let bad = OK.replace("{ file_kib: 512 }", "{ choke_interval: 3 parsecs }");
        assert!(Campaign::parse(&bad, "c.yaml").is_err());
    }

    #[test]
    fn errors_name_the_line_and_column_or_the_field() {
        let typo = OK.replace("file_kib: 512", "file_kob: 512");
        let e = Campaign::parse(&typo, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("file_kob") && e.contains("line 4"), "{e}");
        let unknown = OK.replace("distribution_swarm", "distribution_swam");
        let e = Campaign::parse(&unknown, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("distribution_swam"), "{e}");
        let wrong_type = OK.replace("file_kib: 512", "file_kib: many");
        let e = Campaign::parse(&wrong_type, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        let malformed = OK.replace("at_most: 0", "expected: 0");
        let e = Campaign::parse(&malformed, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("checks[0]") && e.contains("tolerance"), "{e}");
    }

    #[test]
    fn a_measurement_parses_with_its_testbed_probes_and_analyses() {
        let c = Campaign::parse(MEASURE, "m.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.job(), Job::Measurement);
        assert_eq!(c.key(), "measurement");
        assert!(c.is_loopback());
        assert_eq!(c.duration, Some(Duration::from_secs(20)));
        let swarm = c.testbed.swarm.as_ref().unwrap_or_else(|| panic!("{:?}", c.testbed));
        assert_eq!((swarm.leechers, swarm.poisoners, swarm.seeders), (4, 1, 1));
        assert_eq!(c.probes.len(), 2);
        assert_eq!(c.analyses, vec![AnalysisKind::Poisoning]);
        assert_eq!(c.report, ReportSection::default());
        assert_eq!(c.source, MEASURE);
    }

    #[test]
    fn a_measurement_is_checked_across_its_sections() {
        let refused = |text: &str, expect: &[&str]| {
            let e = Campaign::parse(text, "m.yaml").unwrap_err().to_string();
            assert!(expect.iter().all(|x| e.contains(x)), "{e}");
        };
        refused(&MEASURE.replace("duration: 20s\n", ""), &["duration", "how long"]);
        refused(
            &MEASURE.replace(
                "probes:\n  - tracker: { every: 2s }\n  - swarm: { every: 2s, sample_pieces: 1 }\n",
                "",
            ),
            &["experiment", "probes"],
        );
        // Without the swarm testbed nothing names a swarm: the crawler's own rule.
        refused(
            &MEASURE.replace("testbed:\n  swarm: { leechers: 4, poisoners: 1 }\n", ""),
            &["probes[0].tracker", "targets.info_hashes"],
        );
        refused(
            &MEASURE.replace("probes:\n", "probes:\n  - dht_crawl: {}\n"),
            &["probes[0].dht_crawl", "dht_bootstrap"],
        );
        refused(
            &MEASURE.replace("leechers: 4", "seeders: 0"),
            &["testbed.swarm.seeders"],
        );
        refused(
            &MEASURE.replace("swarm: { leechers", "onion: { leechers"),
            &["onion", "line 5"],
        );
        refused(
            &MEASURE.replace("every: 2s }\n  - swarm", "every: 0s }\n  - swarm"),
            &["probes[0].tracker.every"],
        );
        refused(
            &format!("{MEASURE}experiment:\n  chord: {{}}\n").replace("name: m\n", "name: m\n"),
            &["duration", "belongs to measurement campaigns"],
        );
        // The DHT testbed brings the bootstrap node and the key that dht_crawl needs.
        let dht = MEASURE
            .replace("swarm: { leechers: 4, poisoners: 1 }", "dht: { nodes: 100 }")
            .replace("probes:\n", "probes:\n  - dht_crawl: { get_peers: true }\n");
        Campaign::parse(&dht, "m.yaml").unwrap_or_else(|e| panic!("{e}"));
        // The Gnutella testbed brings the bootstrap servents gnutella_crawl needs, and its
        // overlay's own checks name the section.
        let gnutella = MEASURE
            .replace(
                "swarm: { leechers: 4, poisoners: 1 }",
                "gnutella: { ultrapeers: 5, leaves: 20 }",
            )
            .replace(
                "  - tracker: { every: 2s }\n  - swarm: { every: 2s, sample_pieces: 1 }\n",
                "  - gnutella_crawl: { every: 2s }\n",
            );
        let c = Campaign::parse(&gnutella, "m.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.testbed.gnutella.as_ref().map(|g| (g.ultrapeers, g.leaves)),
            Some((5, 20))
        );
        refused(
            &gnutella.replace("ultrapeers: 5", "ultrapeers: 0"),
            &["testbed.gnutella", "ultrapeer"],
        );
        refused(
            &gnutella.replace("gnutella: {", "gnutella: { ultrapeerz: 3,"),
            &["ultrapeerz", "line 5"],
        );
    }

    #[test]
    fn onion_sybil_parameters_are_checked_when_parsed() {
        let ok = "name: s\noutput: out\nexperiment:\n  onion_sybil: { fractions: [0.2], per_ip_cap: [on] }\n";
        let c = Campaign::parse(ok, "s.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.key(), "onion_sybil");
        let e = Campaign::parse(&ok.replace("0.2", "1.5"), "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("experiment.onion_sybil.fractions"), "{e}");
        let e = Campaign::parse(&ok.replace("[on]", "[sometimes]"), "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sometimes"), "{e}");
    }

    /// The schema reads YAML through the crawler's `parse_yaml`, whose alias and nesting limits
    /// its own tests prove; the size limit is checked here, before any parsing.
    #[test]
    fn a_huge_campaign_is_refused_before_parsing() {
        let huge = format!("name: c\ndescription: \"{}\"\n", "x".repeat(2 << 20));
        assert!(matches!(
            Campaign::parse(&huge, "huge.yaml"),
            Err(CampaignError::TooLarge(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn a_cut_or_corrupted_campaign_is_read_or_refused(
            file in 0usize..3,
            cut in 0usize..2000,
            at in 0usize..2000,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let text = [
                OK,
                MEASURE,
                include_str!("../../campaigns/onion-sybil-relays.yaml"),
            ][file];
            let mut bytes = text.as_bytes().to_vec();
            if let Some(b) = bytes.get_mut(at) {
                *b = byte;
            }
            bytes.truncate(cut);
            let _ = Campaign::parse(&String::from_utf8_lossy(&bytes), "fuzzed.yaml");
        }
    }
}
