//! `onionlab run CAMPAIGN.yaml`: one file names an experiment, its parameters and seed, the
//! output folder, and the checks its result must pass; the runner runs it (a seeded simulation,
//! or a loopback testbed it starts itself), compares, and leaves the report.
//!
//! - [`schema`]: the campaign file, parsed with line/column errors, unknown fields refused,
//!   hostile YAML refused within limits.
//! - [`checks`]: expected values with tolerances, compared against an outcome's measurements.
//! - [`progress`]: the progress line long experiments report their stages and steps to.
//! - [`runner`]: runs the experiment, evaluates the checks, writes `results.json` and
//!   `report.html`; a finished run is kept, so `--resume` after Ctrl-C skips nothing twice.
//!
//! Measurement campaigns against real networks are the crawler's (`onionlab-crawl run`); the
//! experiments here that crawl a testbed run such a campaign through its library.

pub mod checks;
pub mod progress;
pub mod runner;
pub mod schema;

pub use checks::{Check, Tolerance};
pub use progress::Progress;
pub use runner::{RunError, RunOptions, run};
pub use schema::{Campaign, CampaignError, Experiment};
