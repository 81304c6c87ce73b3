//! # onionlab-directory: the directory authority
//!
//! An authority collects signed relay descriptors, tests that each relay really answers on
//! its OR port with the identity it claims, assigns flags, and publishes a signed consensus:
//! - [`config`]: the YAML configuration.
//! - [`flags`]: the rules that turn what the authority knows into relay flags.
//! - [`authority`]: the authority's state, the reachability tests and the consensus schedule.
//! - [`http`]: the HTTP API (upload descriptors, fetch the consensus, JSON view).
//!
//! One authority signs alone here; the consensus format already carries a list of
//! signatures, and clients require a majority of the authorities they trust.
#![forbid(unsafe_code)]

pub mod authority;
pub mod config;
pub mod flags;
pub mod http;

pub use authority::{Authority, AuthorityHandle};
pub use config::AuthorityConfig;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
