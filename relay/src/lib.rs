//! # onionlab-relay: the relay daemon
//!
//! A relay accepts TLS links, answers CREATE2 with the ntor handshake, extends circuits to
//! the next relay on EXTEND2, passes relay cells forward and backward with its onion layer,
//! and, if it is an exit, carries streams out to their destinations under its exit policy.
//! - [`config`]: the YAML configuration, its checks, and what a reload may change.
//! - [`relay`]: start-up, the shared state ([`Relay`]), reload and graceful shutdown ([`RelayHandle`]).
//! - [`links`]: accepted and opened links, and the dispatch of their cells to circuits.
//! - [`create`]: CREATE2 admission and the ntor handshake that starts a circuit.
//! - [`circuit`]: one task per circuit: layer crypto, EXTEND2, DESTROY propagation, streams.
//! - [`exit`]: resolving and connecting for BEGIN and RESOLVE, exit policy enforcement.
//! - [`publish`]: descriptor upload to the authorities at start, periodically and on change.
//! - [`onion_keys`]: the onion key, its rotation and the previous key's grace period.
//! - [`traffic`]: the meter every relayed cell passes: rate limit, accounting, hibernation,
//!   built on the sans-I/O [`token_bucket`] and [`accounting`].
//! - [`limits`]: DoS limits: circuits per address, pending handshakes, queued cells.
//! - [`state_file`]: small state files in `data_dir`, written atomically.
//! - [`stats`]: counters (no destinations or addresses in them).
//!
//! A misbehaving peer costs at most its own circuits: unparseable or unrecognized cells,
//! flow-control violations, floods and hoarded queues close those circuits, never the relay.
//!
//! Operating a relay: `bandwidth_rate`/`bandwidth_burst` cap relayed bytes per second;
//! `accounting_max_bytes` caps bytes per month (`accounting_start_day`), after which the relay
//! hibernates (new circuits get DESTROY(HIBERNATING), new streams END(HIBERNATING)) until the
//! next period; the onion key rotates every `onion_key_lifetime_secs` with the previous key
//! accepted for `onion_key_grace_secs`; SIGHUP reloads the configuration and SIGTERM drains
//! streams for up to `shutdown_grace_secs` before exiting. See `contrib/relay.yaml`.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod circuit;
pub mod config;
pub mod create;
pub mod exit;
pub mod limits;
pub mod links;
pub mod onion_keys;
pub mod publish;
pub mod relay;
pub mod state_file;
pub mod stats;
pub mod token_bucket;
pub mod traffic;

pub use config::{AuthorityEntry, RelayConfig};
pub use relay::{Relay, RelayHandle};
