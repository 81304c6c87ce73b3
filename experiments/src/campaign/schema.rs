//! The campaign file of `onionlab run`:
//!
//! ```yaml
//! name: dht-sybil-census
//! description: Sybils and index poisoning on the simulated DHT.
//! seed: 7                       # every simulation and testbed draws from it
//! output: results/dht-sybil-census   # relative to this file: results.json, report.html, ...
//! experiment:                   # exactly one, with its parameters (all optional)
//!   dht_census: { nodes: 2000, sybils: 30, poisoners: 10 }
//! checks:                       # against the outcome's named measurements
//!   - { measurement: sybil_recall, at_least: 0.95 }
//!   - { measurement: size_estimate, expected: 2040, tolerance: 15% }
//! ```
//!
//! The testbed an experiment needs (a simulated DHT, a Gnutella overlay, an onion network) is
//! described by that experiment's parameters and started by it, not by a separate section.
//! Unknown fields are refused; syntax and type errors name the line and column; checks across
//! fields name the field. Reading and parsing are the crawler campaigns' ([`parse_yaml`],
//! [`read_campaign_text`]), errors too ([`CampaignError`]).

use std::path::{Path, PathBuf};

pub use onionlab_crawler::campaign::CampaignError;
use onionlab_crawler::campaign::config::{parse_yaml, read_campaign_text};
use serde::Deserialize;

use super::checks::Check;
use crate::lab::{dht_census, distribution_swarm, onion_sybil, onionperf, robustness};
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
    /// What to run.
    pub experiment: Experiment,
    /// What its outcome must show.
    #[serde(default)]
    pub checks: Vec<Check>,
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
    /// Experiment 9: Sybil census and index poisoning on the simulated DHT (loopback).
    DhtCensus(#[serde(default)] dht_census::Params),
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
            Experiment::Search(_) => "search",
            Experiment::Robustness(_) => "robustness",
            Experiment::Chord(_) => "chord",
            Experiment::LifetimeBias(_) => "lifetime_bias",
            Experiment::OnionSybil(_) => "onion_sybil",
            Experiment::DhtCensus(_) => "dht_census",
            Experiment::Onionperf(_) => "onionperf",
        }
    }

    /// Whether it starts a testbed on loopback (real sockets; not byte-deterministic, and run by
    /// `.ci/run` through the binary rather than in the test suite).
    pub fn is_loopback(&self) -> bool {
        matches!(
            self,
            Experiment::DistributionSwarm(_)
                | Experiment::DhtCensus(_)
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
            Experiment::PieceSelection(p) => p.validate(),
            Experiment::Choking(p) => p.validate(),
            Experiment::Search(p) => p.validate(),
            Experiment::Robustness(p) => p.validate(),
            Experiment::Chord(p) => p.validate(),
            Experiment::LifetimeBias(p) => p.validate(),
            Experiment::OnionSybil(p) => p.validate(),
            Experiment::DhtCensus(_) => Ok(()),
            Experiment::Onionperf(p) => p.validate(),
        }
    }
}

impl Campaign {
    /// Parse campaign text; `origin` names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<Campaign, CampaignError> {
        let campaign: Campaign = parse_yaml(yaml, origin)?;
        let bad = |field: String, message: &str| CampaignError::Inconsistent {
            path: origin.to_owned(),
            field,
            message: message.to_owned(),
        };
        if campaign.name.trim().is_empty() {
            return Err(bad("name".into(), "must not be empty"));
        }
        if let Err(e) = campaign.experiment.validate() {
            return Err(bad(
                format!("experiment.{}.{}", campaign.experiment.key(), e.field),
                &e.reason,
            ));
        }
        for (i, check) in campaign.checks.iter().enumerate() {
            if let Some(problem) = check.problem() {
                return Err(bad(format!("checks[{i}]"), problem));
            }
        }
        Ok(campaign)
    }

    /// Read and parse a campaign file; its output folder is made relative to the file's folder.
    pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = read_campaign_text(path)?;
        let mut campaign = Campaign::parse(&text, &path.display().to_string())?;
        campaign.output = path.parent().unwrap_or(Path::new(".")).join(&campaign.output);
        Ok(campaign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "name: c\noutput: out\nexperiment:\n  dht_census: { nodes: 300 }\nchecks:\n  - { measurement: sybil_recall, at_least: 0.9 }\n";

    #[test]
    fn a_campaign_parses_with_defaults() {
        let c = Campaign::parse(OK, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.seed, 1);
        let Experiment::DhtCensus(p) = &c.experiment else {
            panic!("{:?}", c.experiment)
        };
        assert_eq!(p.nodes, 300);
        assert_eq!(p.sybils, dht_census::Params::default().sybils);
        assert_eq!(c.experiment.key(), "dht_census");
    }

    #[test]
    fn lab_durations_are_read_as_written() {
        let text = OK.replace("{ nodes: 300 }", "{ nodes: 300, duration: 3s, per_ip_interval: 5ms }");
        let c = Campaign::parse(&text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        let Experiment::DhtCensus(p) = &c.experiment else {
            panic!("{:?}", c.experiment)
        };
        assert_eq!(p.duration, std::time::Duration::from_secs(3));
        assert_eq!(p.per_ip_interval, std::time::Duration::from_millis(5));
        let bad = OK.replace("{ nodes: 300 }", "{ nodes: 300, duration: 3 parsecs }");
        assert!(Campaign::parse(&bad, "c.yaml").is_err());
    }

    #[test]
    fn errors_name_the_line_and_column_or_the_field() {
        let typo = OK.replace("nodes: 300", "nodez: 300");
        let e = Campaign::parse(&typo, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("nodez") && e.contains("line 4"), "{e}");
        let unknown = OK.replace("dht_census", "dht_censuz");
        let e = Campaign::parse(&unknown, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("dht_censuz"), "{e}");
        let wrong_type = OK.replace("nodes: 300", "nodes: many");
        let e = Campaign::parse(&wrong_type, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        let malformed = OK.replace("at_least: 0.9", "expected: 0.9");
        let e = Campaign::parse(&malformed, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("checks[0]") && e.contains("tolerance"), "{e}");
    }

    #[test]
    fn onion_sybil_parameters_are_checked_when_parsed() {
        let ok = "name: s\noutput: out\nexperiment:\n  onion_sybil: { fractions: [0.2], per_ip_cap: [on] }\n";
        let c = Campaign::parse(ok, "s.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.experiment.key(), "onion_sybil");
        let e = Campaign::parse(&ok.replace("0.2", "1.5"), "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("experiment.onion_sybil.fractions"), "{e}");
        let e = Campaign::parse(&ok.replace("[on]", "[sometimes]"), "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sometimes"), "{e}");
    }

    #[test]
    fn hostile_yaml_is_refused_within_limits() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 1 { "a".to_string() } else { format!("b{}", i - 1) }
            ));
        }
        assert!(Campaign::parse(&bomb, "bomb.yaml").is_err());
        let deep = format!("name: {}x{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(Campaign::parse(&deep, "deep.yaml").is_err());
        let huge = format!("name: c\ndescription: \"{}\"\n", "x".repeat(2 << 20));
        assert!(matches!(
            Campaign::parse(&huge, "huge.yaml"),
            Err(CampaignError::TooLarge(_))
        ));
    }
}
