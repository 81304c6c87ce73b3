//! # onionlab-directory: the directory authority
//!
//! An authority collects signed relay descriptors, tests that each relay really answers on
//! its OR port with the identity it claims, assigns flags, and publishes a signed consensus:
//! - [`config`]: the YAML configuration.
//! - [`flags`]: the rules that turn what the authority knows into relay flags.
//! - [`authority`]: the authority's state: descriptors, reachability tests, its vote.
//! - [`voting`]: the schedule on which authorities exchange votes and signatures.
//! - [`sybil`]: the per-address cap and cluster alerts.
//! - [`scanner`]: bandwidth measurement through circuits.
//! - [`http`]: the HTTP API (descriptors, consensus, votes, signatures, JSON view, metrics).
//!
//! Several authorities vote; the consensus carries each one's signature, and clients require
//! valid signatures from more than half of the authorities they trust.
#![forbid(unsafe_code)]

pub mod authority;
pub mod config;
pub mod flags;
pub mod http;
pub mod scanner;
pub mod sybil;
pub mod voting;

pub use authority::{Authority, AuthorityHandle};
pub use config::AuthorityConfig;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
