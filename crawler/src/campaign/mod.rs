//! Measurement campaigns: a YAML file saying what to probe, how often, for how long, and which
//! analyses to run; [`config`] parses and checks it.

pub mod config;
mod duration;

pub use config::{Campaign, CampaignError, ProbeSpec};
pub use duration::parse_duration;
