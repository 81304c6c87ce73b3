//! Running a campaign: the experiment (a simulation, or a loopback testbed and a measurement
//! of it) or the measurement ([`crate::measure`]: a testbed and/or real targets crawled by
//! the probes), its checks, then `results.json` and `report.html` in the output folder.
//!
//! Ctrl-C (the caller's `stop`) ends a run without a report; `--resume` then keeps what the
//! interrupted run had recorded where it can continue (a measurement's crawl resumes in its
//! store), and a run whose `results.json` is already there is not repeated: only its report
//! is rebuilt. Every run leaves the campaign text it ran as `campaign.yaml` in the folder;
//! `--resume` refuses a folder whose copy differs from the campaign given (its results or
//! crawl belong to another campaign), and a run without `--resume` first removes the
//! `results.json` an earlier run left, so an interrupted run never leaves old results behind.

use std::future::Future;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::progress::Progress;
use super::schema::{Campaign, Experiment, Job};
use crate::lab::onion_sybil::{self, SybilRelaysError};
use crate::lab::onionperf::{self, OnionPerfError};
use crate::lab::robustness::{self, RobustnessError};
use crate::lab::{choking_swarm, distribution_swarm};
use crate::measure::{self, MeasureError};
use crate::outcome::Outcome;
use crate::report::{self, CheckResult, ReportError, ReportInput};
use crate::sim;
use crate::swarm::runner::SwarmError;

/// How to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Keep what an earlier run of the same campaign left in the output folder.
    pub resume: bool,
}

/// What a run left.
#[derive(Debug)]
pub struct RunReport {
    /// The experiment's outcome.
    pub outcome: Outcome,
    /// The checks, evaluated.
    pub checks: Vec<CheckResult>,
    /// The report written.
    pub report: PathBuf,
    /// The outcome came from an earlier run (`--resume` after it had finished).
    pub reused: bool,
}

impl RunReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Why a campaign run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The output folder, or a file of it, could not be made, read or removed.
    #[error("{path}: {source}")]
    Output {
        /// The folder or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The measurement failed.
    #[error(transparent)]
    Measure(MeasureError),
    /// The robustness experiment failed.
    #[error(transparent)]
    Robustness(#[from] RobustnessError),
    /// The OnionPerf experiment failed.
    #[error(transparent)]
    OnionPerf(#[from] OnionPerfError),
    /// The onion Sybil-relay experiment failed.
    #[error(transparent)]
    SybilRelays(#[from] SybilRelaysError),
    /// A loopback swarm did not start.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// The report could not be written or read back.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// `--resume` on a folder left by a different campaign text.
    #[error(
        "{copy} differs from the campaign given: the folder holds another campaign's run; run without \
         --resume to start over there"
    )]
    Changed {
        /// The copy of the campaign the folder's run was started from.
        copy: PathBuf,
    },
    /// `--resume` on a folder whose run has no copy of its campaign to compare with.
    #[error("{copy} is missing: nothing in this folder is known to come from this campaign; run without --resume")]
    Unknown {
        /// Where the copy should be.
        copy: PathBuf,
    },
    /// Stopped (Ctrl-C) before the experiment finished.
    #[error("interrupted before the experiment finished; `onionlab run FILE --resume` continues it")]
    Interrupted,
}

/// The checks of `campaign` against `outcome`.
pub fn evaluate(campaign: &Campaign, outcome: &Outcome) -> Vec<CheckResult> {
    campaign
        .checks
        .iter()
        .map(|c| {
            let (measured, passed) = c.evaluate(outcome);
            let (expected, tolerance) = c.shown();
            CheckResult {
                measurement: c.measurement.clone(),
                expected,
                tolerance,
                measured,
                passed,
            }
        })
        .collect()
}

/// Run `campaign` until done or until `stop` completes.
pub async fn run(
    campaign: &Campaign,
    options: RunOptions,
    stop: impl Future<Output = ()>,
) -> Result<RunReport, RunError> {
    let folder = campaign.output.clone();
    std::fs::create_dir_all(&folder).map_err(|source| RunError::Output {
        path: folder.clone(),
        source,
    })?;
    if options.resume {
        check_copy(campaign, &folder)?;
        if let Ok(earlier) = report::read_results(&folder)
            && earlier.campaign == campaign.name
            && let [outcome] = earlier.outcomes.as_slice()
        {
            let outcome = outcome.clone();
            return finish(campaign, outcome, true);
        }
    } else {
        start_afresh(campaign, &folder)?;
    }
    let progress = Progress::new(&campaign.name);
    progress.stage(campaign.key());
    let experiment = match campaign.job() {
        Job::Experiment(experiment) => experiment,
        Job::Measurement => {
            let outcome = measure::run(campaign, options.resume, &progress, stop)
                .await
                .map_err(|e| match e {
                    MeasureError::Interrupted => RunError::Interrupted,
                    e => RunError::Measure(e),
                })?;
            return finish(campaign, outcome, false);
        }
    };
    let run = async {
        let seed = campaign.seed;
        Ok::<_, RunError>(match experiment {
            Experiment::Distribution(p) => sim::distribution::run(p, seed),
            Experiment::DistributionSwarm(p) => distribution_swarm::run(p, seed, &progress).await?,
            Experiment::ChokingSwarm(p) => choking_swarm::run(p, seed, &progress).await?,
            Experiment::PieceSelection(p) => sim::piece_selection::run(p, seed),
            Experiment::Choking(p) => sim::choking::run(p, seed),
            Experiment::Search(p) => sim::search::run(p, seed),
            Experiment::Robustness(p) => robustness::run(p, seed, &progress).await?,
            Experiment::Chord(p) => sim::chord::run(p, seed),
            Experiment::LifetimeBias(p) => sim::lifetime_bias::run(p, seed),
            Experiment::OnionSybil(p) => onion_sybil::run(p, &progress).await?,
            Experiment::Onionperf(p) => onionperf::run(p, seed, &progress).await?,
        })
    };
    let outcome = tokio::select! {
        done = run => done?,
        () = stop => return Err(RunError::Interrupted),
    };
    finish(campaign, outcome, false)
}

/// The file, in a run's output folder, holding the campaign text it was started from.
pub const CAMPAIGN_COPY: &str = "campaign.yaml";

/// `--resume`: the folder's run must have been started from the same campaign text.
fn check_copy(campaign: &Campaign, folder: &Path) -> Result<(), RunError> {
    let copy = folder.join(CAMPAIGN_COPY);
    match std::fs::read_to_string(&copy) {
        Ok(text) if text == campaign.source => Ok(()),
        Ok(_) => Err(RunError::Changed { copy }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(RunError::Unknown { copy }),
        Err(source) => Err(RunError::Output { path: copy, source }),
    }
}

/// A run without `--resume`: drop an earlier run's results, record the campaign text.
fn start_afresh(campaign: &Campaign, folder: &Path) -> Result<(), RunError> {
    let results = folder.join(report::RESULTS_FILE);
    report::remove_if_present(&results).map_err(|source| RunError::Output { path: results, source })?;
    let copy = folder.join(CAMPAIGN_COPY);
    std::fs::write(&copy, &campaign.source).map_err(|source| RunError::Output { path: copy, source })
}

fn finish(campaign: &Campaign, outcome: Outcome, reused: bool) -> Result<RunReport, RunError> {
    let checks = evaluate(campaign, &outcome);
    let report = report::write_report(
        &campaign.output,
        &ReportInput {
            campaign: &campaign.name,
            description: &campaign.description,
            seed: Some(campaign.seed),
            outcomes: std::slice::from_ref(&outcome),
            checks: &checks,
        },
    )?;
    Ok(RunReport {
        outcome,
        checks,
        report,
        reused,
    })
}
