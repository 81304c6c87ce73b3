//! # onionlab-experiments: the `onionlab` command
//!
//! Where the pieces meet: the local testbed that runs a whole onion network on loopback.
//! - [`testbed`]: authority, relays, client and demo site in one process.
//! - [`demo_site`]: the web site to browse through it, with checkable large files.
//! - [`perf`]: OnionPerf-style timings of the testbed (`onionlab bench`).
//! - [`socks_client`]: a minimal SOCKS5 client and HTTP fetcher for measurements and tests.
//! - [`gnutella`]: a Gnutella 0.6 two-tier overlay (ultrapeers, leaves, QRP, files, adversaries,
//!   churn) with its ground truth.
//! - [`campaign`]: `onionlab run CAMPAIGN.yaml`: an experiment, its checks, its report.
//! - [`lab`]: experiments on loopback against a testbed started for them, scored against its truth.
//! - [`measure`]: measurement campaigns: a loopback testbed (swarm, DHT) and real targets crawled
//!   by onionlab-crawl's probes, scored against what the testbed planted.
//! - [`outcome`]: what an experiment produces (measurements next to published values, figures,
//!   tables), rendered by the report and compared by campaign checks.
//! - [`report`]: the experiment report (`report.html` with SVG plots, `results.json`) and its
//!   rebuild (`onionlab report`).
//! - [`swarm`]: a BitTorrent peer of our own (seed and leech, rarest first, the standard
//!   choker and BitTyrant, PropShare and BitThief strategies, rate limits), a minimal HTTP
//!   tracker, and the runner of loopback swarms.
//! - [`sim`]: seeded, deterministic simulations of the teaching experiments (distribution time,
//!   piece selection, search, Chord, lifetime bias), each producing an [`outcome::Outcome`].
#![forbid(unsafe_code)]

pub mod campaign;
pub mod demo_site;
pub mod gnutella;
pub mod lab;
pub mod measure;
pub mod outcome;
pub mod perf;
pub mod report;
pub mod sim;
pub mod socks_client;
pub mod swarm;
pub mod testbed;
