//! The experiment report: turns [`Outcome`]s and campaign check results into one self-contained
//! `report.html` (inline CSS and SVG plots, no script, no external resource) that a student can
//! read, and saves them as `results.json` so that `onionlab report FOLDER` rebuilds the page
//! without running anything. It never runs experiments or judges them: checks arrive decided.
//!
//! Deterministic: the page holds no time, path or host of the run; numbers are written with fixed
//! significant digits and plots in whole pixels, so the same input gives the same bytes
//! ([`render_html`]), and a rebuild from `results.json` gives the bytes of the first write.
//!
//! The numbers behind every plot and table are also written as CSV files (`csv`), and into an
//! SQLite store and Parquet files (`store`).
//!
//! Parts: `html` writes the page, `plot` draws one figure as SVG (plotters without a font
//! backend, and why), `numbers` says how numbers are written, `escape` turns text into HTML.

mod csv;
mod escape;
mod html;
mod numbers;
mod plot;
#[cfg(test)]
mod sample;
mod store;

pub use csv::CSV_FOLDER;
pub use html::render_html;
pub use store::{PARQUET_FOLDER, STORE_FILE, StoreError};

use crate::outcome::Outcome;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The page's file name in a report folder.
pub const REPORT_FILE: &str = "report.html";
/// The saved outcomes and checks in a report folder.
pub const RESULTS_FILE: &str = "results.json";

/// A campaign check, already decided: a measurement compared with its expected value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The measurement's key ([`crate::outcome::Measurement::name`]).
    pub measurement: String,
    /// The value the check expects.
    pub expected: f64,
    /// The allowed deviation as people read it (`±10 %`, `±0.5 hops`).
    pub tolerance: String,
    /// The value measured; `None` when the run did not produce the measurement.
    pub measured: Option<f64>,
    /// Whether the measured value is within the tolerance.
    pub passed: bool,
}

/// Everything a report shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReportInput<'a> {
    /// The campaign's name (the page title).
    pub campaign: &'a str,
    /// What the campaign does, for people (blank lines separate paragraphs).
    pub description: &'a str,
    /// The seed of a seeded run.
    pub seed: Option<u64>,
    /// What each experiment found, in report order.
    pub outcomes: &'a [Outcome],
    /// The campaign's checks, shown first.
    pub checks: &'a [CheckResult],
}

/// The contents of `results.json`: a [`ReportInput`] that owns its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedResults {
    /// See [`ReportInput::campaign`].
    pub campaign: String,
    /// See [`ReportInput::description`].
    pub description: String,
    /// See [`ReportInput::seed`].
    pub seed: Option<u64>,
    /// See [`ReportInput::outcomes`].
    pub outcomes: Vec<Outcome>,
    /// See [`ReportInput::checks`].
    pub checks: Vec<CheckResult>,
}

impl SavedResults {
    /// The report input borrowing from these results.
    pub fn input(&self) -> ReportInput<'_> {
        ReportInput {
            campaign: &self.campaign,
            description: &self.description,
            seed: self.seed,
            outcomes: &self.outcomes,
            checks: &self.checks,
        }
    }
}

/// Why a report could not be written or rebuilt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading or writing a file of the report folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// `results.json` is not valid JSON or does not hold saved results.
    #[error("{path}: not the results of an onionlab run: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said (with line and column).
        source: serde_json::Error,
    },
    /// The SQLite store or a Parquet file could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A number to save is NaN or infinite, which JSON cannot hold (it would come back as `null`
    /// and fail the rebuild). `report.html` was written and shows the value; `results.json` was not.
    #[error("{place} is {value}, which results.json cannot hold; {html} was written, results.json was not")]
    NotFinite {
        /// Where the number is (outcome, measurement or figure, series, point).
        place: String,
        /// The value as written (`NaN`, `inf`, `-inf`).
        value: String,
        /// The page that was written.
        html: PathBuf,
    },
}

/// Writes `report.html`, `csv/`, `results.sqlite`, `parquet/` and `results.json` (pretty JSON)
/// into `folder`, creating it if needed; returns the page's path. A stale `results.json` is
/// removed when the new one cannot be written.
pub fn write_report(folder: &Path, input: &ReportInput) -> Result<PathBuf, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let html = folder.join(REPORT_FILE);
    std::fs::write(&html, render_html(input)).map_err(io(&html))?;
    csv::write_csv(folder, input).map_err(io(&folder.join(CSV_FOLDER)))?;
    let results = folder.join(RESULTS_FILE);
    if let Some((place, value)) = first_non_finite(input) {
        remove_if_present(&results).map_err(io(&results))?;
        return Err(ReportError::NotFinite {
            place,
            value: numbers::show(value),
            html,
        });
    }
    store::write_store(folder, input)?;
    let mut json = serde_json::to_string_pretty(input).map_err(|source| ReportError::Json {
        path: results.clone(),
        source,
    })?;
    json.push('\n');
    std::fs::write(&results, json).map_err(io(&results))?;
    Ok(html)
}

/// Removes the file at `path`; one that is not there is no error.
pub(crate) fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Reads `folder/results.json` and rewrites `folder/report.html`, `csv/`, `results.sqlite` and
/// `parquet/` from it (`onionlab report`); returns the page's path.
pub fn rebuild(folder: &Path) -> Result<PathBuf, ReportError> {
    let saved = read_results(folder)?;
    let html = folder.join(REPORT_FILE);
    std::fs::write(&html, render_html(&saved.input())).map_err(|source| ReportError::Io {
        path: html.clone(),
        source,
    })?;
    csv::write_csv(folder, &saved.input()).map_err(|source| ReportError::Io {
        path: folder.join(CSV_FOLDER),
        source,
    })?;
    store::write_store(folder, &saved.input())?;
    Ok(html)
}

/// Reads `folder/results.json`.
pub fn read_results(folder: &Path) -> Result<SavedResults, ReportError> {
    let path = folder.join(RESULTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json { path, source })
}

/// The first number of `input` that JSON cannot hold, with where it is.
fn first_non_finite(input: &ReportInput) -> Option<(String, f64)> {
    for check in input.checks {
        let values = std::iter::once(check.expected).chain(check.measured);
        if let Some(v) = values.into_iter().find(|v| !v.is_finite()) {
            return Some((format!("check of “{}”", check.measurement), v));
        }
    }
    for outcome in input.outcomes {
        for m in &outcome.measurements {
            let values = std::iter::once(m.value).chain(m.published.as_ref().map(|p| p.value));
            if let Some(v) = values.into_iter().find(|v| !v.is_finite()) {
                return Some((format!("outcome “{}”, measurement “{}”", outcome.experiment, m.name), v));
            }
        }
        for figure in &outcome.figures {
            for series in &figure.series {
                for (i, &(x, y)) in series.points.iter().enumerate() {
                    if let Some(v) = [x, y].into_iter().find(|v| !v.is_finite()) {
                        let place = format!(
                            "outcome “{}”, figure “{}”, series “{}”, point {i}",
                            outcome.experiment, figure.id, series.name
                        );
                        return Some((place, v));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> SavedResults {
        SavedResults {
            campaign: "Swarm speed-up".into(),
            description: "A seeded run.".into(),
            seed: Some(7),
            outcomes: vec![sample::outcome()],
            checks: sample::checks(),
        }
    }

    #[test]
    fn results_round_trip_and_rebuild_gives_the_same_page() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("run");
        let saved = saved();
        let html = write_report(&folder, &saved.input()).expect("written");
        assert_eq!(html, folder.join(REPORT_FILE));
        let first = std::fs::read(&html).expect("page");
        let json = std::fs::read_to_string(folder.join(RESULTS_FILE)).expect("results");
        assert!(
            json.starts_with("{\n  \"campaign\": \"Swarm speed-up\","),
            "pretty JSON: {}",
            &json[..40]
        );
        let back: SavedResults = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, saved);

        std::fs::write(&html, "stale").expect("overwrite");
        assert_eq!(rebuild(&folder).expect("rebuilt"), html);
        assert_eq!(std::fs::read(&html).expect("page"), first);
    }

    #[test]
    fn non_finite_numbers_keep_the_page_but_not_the_json() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut saved = saved();
        write_report(dir.path(), &saved.input()).expect("written");
        saved.outcomes[0].figures[0].series[1].points[1].1 = f64::NAN;
        let err = write_report(dir.path(), &saved.input()).expect_err("NaN refused");
        assert!(
            err.to_string()
                .starts_with("outcome “distribution-time”, figure “styles”, series “samples”, point 1 is NaN"),
            "{err}"
        );
        assert!(dir.path().join(REPORT_FILE).exists());
        assert!(
            !dir.path().join(RESULTS_FILE).exists(),
            "the stale results.json is gone"
        );
    }

    #[test]
    fn rebuild_reports_missing_and_bad_results() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = rebuild(dir.path()).expect_err("no results.json");
        assert!(matches!(err, ReportError::Io { .. }), "{err}");
        std::fs::write(dir.path().join(RESULTS_FILE), "{\"campaign\": 3}").expect("write");
        let err = rebuild(dir.path()).expect_err("bad results.json");
        assert!(err.to_string().contains("not the results of an onionlab run"), "{err}");
        assert!(!dir.path().join(REPORT_FILE).exists());
    }
}
