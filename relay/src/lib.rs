//! # onionlab-relay: the relay daemon
//!
//! A relay accepts TLS links, answers CREATE2 with the ntor handshake, extends circuits to
//! the next relay on EXTEND2, passes relay cells forward and backward with its onion layer,
//! and, if it is an exit, carries streams out to their destinations under its exit policy.
//! - [`config`]: the YAML configuration.
//! - [`relay`]: start-up, keys and the shared state ([`Relay`], [`RelayHandle`]).
//! - [`links`]: accepted and opened links, and the dispatch of their cells to circuits.
//! - [`circuit`]: one task per circuit: layer crypto, EXTEND2, DESTROY propagation, streams.
//! - [`exit`]: resolving and connecting for BEGIN and RESOLVE, exit policy enforcement.
//! - [`publish`]: descriptor upload to the authorities at start and periodically.
//! - [`stats`]: counters (no destinations in them).
//! - [`token_bucket`], [`accounting`]: the rate limiter and the monthly byte counter, sans-I/O.
//! - [`state_file`]: small state files in `data_dir`, written atomically.
//!
//! A misbehaving peer costs at most its own circuit: unparseable or unrecognized cells,
//! flow-control violations and floods close that circuit, never the relay.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod circuit;
pub mod config;
pub mod exit;
pub mod links;
pub mod publish;
pub mod relay;
pub mod state_file;
pub mod stats;
pub mod token_bucket;

pub use config::{AuthorityEntry, RelayConfig};
pub use relay::{Relay, RelayHandle};
