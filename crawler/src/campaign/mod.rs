//! Measurement campaigns: a YAML file saying what to probe, how often, for how long, and which
//! analyses to run.
//!
//! - [`config`]: the file's schema, parsed with line/column errors and checked across fields.
//! - [`plan`]: what a campaign would contact, without contacting anything (`--dry-run`).
//! - [`run`]: the runner: probes on their schedules through one engine into one store, Ctrl-C
//!   and `--resume`, then the summary and the exports.
//! - [`summary`]: the analyses over a crawl's rows, and `summary.txt`.
//! - [`duration`]: durations as people write them (`500ms`, `2s`, `3m`), and their serde helpers.

pub mod config;
pub mod duration;
pub mod plan;
pub mod run;
pub mod summary;

pub use config::{Campaign, CampaignError, ProbeSpec};
pub use duration::parse_duration;
pub use plan::Plan;
pub use run::{CampaignRun, RunError, RunOutcome, RunProgress};
pub use summary::{Summary, SummaryRequest, summarize};
