//! Experiment 8, Sybil relays in the onion network: an adversary adds relays holding a fraction
//! c of the bandwidth to the loopback testbed, and real clients build real circuits (the
//! client's own path selection and circuit pool, an ntor handshake with each of the three
//! relays); a circuit whose entry and exit are both the adversary's is compromised (end-to-end
//! timing links its two ends). The experiment owns the testbed settings, the clients it starts
//! and the scoring; path selection is the client's and the prediction uses its candidate rules
//! (`onionlab_proto::path`).
//!
//! The published reference: with entry and exit drawn by bandwidth, a fraction c of the
//! bandwidth sees both ends of a fraction c² of circuits (Syverson, Tsudik, Reed and Landwehr,
//! PET 2000; Johnson et al., CCS 2013). Here the relays of one path are distinct, so the exact
//! expectation ([`Prediction`]) is a little below c²: an adversary's entry cannot also be its
//! exit. Entry guards leave the mean unchanged but make it bimodal: a client whose guard is
//! honest is never compromised, one whose guard is the adversary's (probability c) about a
//! fraction c of the time (Øverlier and Syverson, IEEE S&P 2006), where a client without guards
//! is eventually compromised almost surely (Wright et al., NDSS 2002). The directory's per-IP
//! cap (Tor's AuthDirMaxServersPerAddr) lists only `max_relays_per_ip` relays of an adversary
//! on one address, so its share collapses.
//!
//! Settings that make the weights known in advance: the bandwidth scanner is off and the cap
//! on unmeasured bandwidth lifted, so each relay's consensus weight is what it advertises (the
//! adversary is assumed to really have the bandwidth it claims; measuring it is the scanner's
//! job, tested elsewhere). Each fraction and cap setting gets its own testbed; clients (fresh
//! state each, so a fresh guard sample) are started for each entry mode.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use onionlab_client::Client;
use onionlab_client::pool::IsolationKey;
use onionlab_directory::AuthorityConfig;
use onionlab_proto::consensus::{Consensus, ConsensusRelay};
use onionlab_proto::keys::IdentityBytes;
use onionlab_proto::path::{PathRules, exit_candidates, selection_weight, usable_guard};
use serde::Deserialize;
use thiserror::Error;
use tokio::task::JoinSet;

use crate::campaign::Progress;
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};
use crate::sim::{ParamsError, measurement, require};
use crate::testbed::{MAX_RELAYS, Testbed, TestbedConfig, TestbedError};

/// How long a testbed may take to start.
const START_WITHIN: Duration = Duration::from_secs(60);
/// How long a client may take to get a usable consensus.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Most honest relays (their addresses 127.0.i.1 stay below the Sybils' 127.0.200.1).
const MAX_HONEST: usize = 100;
/// Most Sybil relays (one port each on one address).
const MAX_SYBILS: usize = 100;
/// Most circuits in one campaign, over every testbed and entry mode.
const MAX_CIRCUITS: usize = 1_000_000;

const C2_SOURCE: &str = "c² (Syverson, Tsudik, Reed and Landwehr, PET 2000; Johnson et al., CCS 2013)";
const CAP_SOURCE: &str = "c_eff², c_eff the share the per-IP cap leaves the adversary (Tor's AuthDirMaxServersPerAddr)";
const Z_SOURCE: &str = "0: binomial noise around the exact expectation under the client's path rules (distinct relays)";
const NO_GUARDS_SOURCE: &str = "1 − (1 − c²)^k over k circuits (Wright et al., NDSS 2002)";
const GUARDS_SOURCE: &str =
    "c·(1 − (1 − c)^k): only clients whose guard is the adversary's (Øverlier and Syverson, IEEE S&P 2006)";
const SHARE_SOURCE: &str = "the adversary's share of the advertised bandwidth, as configured";
const CAPPED_SHARE_SOURCE: &str = "what the per-IP cap leaves: max_relays_per_ip of the adversary's relays";

/// The experiment's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The adversary's shares c of the advertised bandwidth (one testbed per share and cap
    /// setting).
    pub fractions: Vec<f64>,
    /// Honest relays, each on its own address.
    pub honest_relays: usize,
    /// The adversary's relays, all on one address; they share c/(1 − c) of the honest total.
    pub sybil_relays: usize,
    /// Bandwidth each honest relay advertises (bytes/s).
    pub honest_bandwidth: u64,
    /// Run each share with the directory's per-IP cap off, on, or both.
    pub per_ip_cap: Vec<Cap>,
    /// The cap when it is on (the directory's default is 2).
    pub max_relays_per_ip: usize,
    /// Clients per testbed and entry mode, each with fresh state (so a fresh guard sample).
    pub clients: usize,
    /// Circuits each client builds (k).
    pub circuits_per_client: usize,
    /// Clients running at once.
    pub parallel: usize,
}

/// The directory's per-IP cap in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    /// Every relay is listed, however many share an address.
    Off,
    /// At most `max_relays_per_ip` relays per address are listed.
    On,
}

impl Default for Params {
    /// Shares 0.1, 0.2, 0.3 and 0.5; 10 honest relays of 1 MiB/s and 10 Sybils; the cap off and
    /// on (2 per IP); 200 clients of 15 circuits per testbed and entry mode, 4 at a time.
    fn default() -> Self {
        Params {
            fractions: vec![0.1, 0.2, 0.3, 0.5],
            honest_relays: 10,
            sybil_relays: 10,
            honest_bandwidth: 1 << 20,
            per_ip_cap: vec![Cap::Off, Cap::On],
            max_relays_per_ip: 2,
            clients: 200,
            circuits_per_client: 15,
            parallel: 4,
        }
    }
}

/// The bandwidth a relay needs for the Fast flag (and so for Guard).
fn fast_min() -> u64 {
    AuthorityConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), Default::default()).fast_min_bandwidth
}

impl Params {
    /// Checks the parameters; the error names the field.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(
            !self.fractions.is_empty() && self.fractions.len() <= 20,
            "fractions",
            "give 1 to 20 shares",
        )?;
        require(
            self.fractions.iter().all(|c| c.is_finite() && *c > 0.0 && *c < 1.0),
            "fractions",
            "every share must be strictly between 0 and 1",
        )?;
        require(
            (3..=MAX_HONEST.min(MAX_RELAYS)).contains(&self.honest_relays),
            "honest_relays",
            format!("must be between 3 and {MAX_HONEST}"),
        )?;
        require(
            (1..=MAX_SYBILS).contains(&self.sybil_relays),
            "sybil_relays",
            format!("must be between 1 and {MAX_SYBILS}"),
        )?;
        let fast = fast_min();
        require(
            (fast..=1 << 40).contains(&self.honest_bandwidth),
            "honest_bandwidth",
            format!("must be between {fast} (the Fast flag, needed for Guard) and 2^40 bytes/s"),
        )?;
        for &c in &self.fractions {
            let w = self.sybil_bandwidth(c);
            require(
                (fast..=1 << 50).contains(&w),
                "fractions",
                format!(
                    "a share of {c} gives each Sybil {w} bytes/s, outside {fast} (the Fast flag) to 2^50; \
                     change honest_bandwidth or sybil_relays"
                ),
            )?;
        }
        require(
            !self.per_ip_cap.is_empty() && self.per_ip_cap.len() <= 2,
            "per_ip_cap",
            "give off, on, or both",
        )?;
        require(self.max_relays_per_ip >= 1, "max_relays_per_ip", "must be at least 1")?;
        require(
            (1..=10_000).contains(&self.clients),
            "clients",
            "must be between 1 and 10000",
        )?;
        require(
            (1..=1000).contains(&self.circuits_per_client),
            "circuits_per_client",
            "must be between 1 and 1000",
        )?;
        require(
            (1..=64).contains(&self.parallel),
            "parallel",
            "must be between 1 and 64",
        )?;
        let total = self.fractions.len() * self.per_ip_cap.len() * 2 * self.clients * self.circuits_per_client;
        require(
            total <= MAX_CIRCUITS,
            "clients",
            format!("{total} circuits in all is more than {MAX_CIRCUITS}"),
        )?;
        Ok(())
    }

    /// Each Sybil's advertised bandwidth for share `c`: together c/(1 − c) of the honest total.
    fn sybil_bandwidth(&self, c: f64) -> u64 {
        let honest = self.honest_relays as f64 * self.honest_bandwidth as f64;
        (c / (1.0 - c) * honest / self.sybil_relays.max(1) as f64).round() as u64
    }

    /// The adversary's share of the weight when only `listed` of its relays are listed.
    fn share_with(&self, c: f64, listed: usize) -> f64 {
        let sybils = listed as f64 * self.sybil_bandwidth(c) as f64;
        sybils / (sybils + self.honest_relays as f64 * self.honest_bandwidth as f64)
    }

    /// The cap's value in a run (`usize::MAX` when off).
    fn cap_value(&self, cap: Cap) -> usize {
        match cap {
            Cap::Off => usize::MAX,
            Cap::On => self.max_relays_per_ip,
        }
    }
}

/// Why the experiment could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SybilRelaysError {
    /// The parameters are unusable.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A testbed did not start.
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    /// The testbed published no consensus.
    #[error("the testbed published no consensus")]
    NoConsensus,
    /// A client could not start or get a consensus.
    #[error("client {index}: {reason}")]
    Client {
        /// Which client (0-based, within its run and entry mode).
        index: usize,
        /// What went wrong.
        reason: String,
    },
    /// A client's task ended abnormally.
    #[error("a client task failed: {0}")]
    Task(String),
    /// The clients' state directory could not be made.
    #[error("clients' state directory: {0}")]
    Scratch(std::io::Error),
}

/// What the client's path rules predict for one consensus and one adversary.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// For each of the adversary's relays that can be an entry: the probability that a fresh
    /// entry (or a client's first guard) is it, and the probability that a circuit through it
    /// exits through the adversary too.
    entries: Vec<(f64, f64)>,
}

impl Prediction {
    /// The prediction for circuits built from `consensus` under `rules` to any web exit (the
    /// client's circuits for no particular target), `adversary` owning the listed relays.
    pub fn of(consensus: &Consensus, adversary: &BTreeSet<IdentityBytes>, rules: PathRules) -> Self {
        let guards: Vec<&ConsensusRelay> = consensus.relays.iter().filter(|r| usable_guard(r)).collect();
        let total = guards.iter().map(|r| selection_weight(r) as f64).sum::<f64>();
        let entries = guards
            .iter()
            .filter(|g| adversary.contains(&g.info.identity))
            .map(|g| {
                let exits = exit_candidates(consensus, g, None, rules);
                let all = exits.iter().map(|r| selection_weight(r) as f64).sum::<f64>();
                let bad = exits
                    .iter()
                    .filter(|r| adversary.contains(&r.info.identity))
                    .map(|r| selection_weight(r) as f64)
                    .sum::<f64>();
                (
                    selection_weight(g) as f64 / total.max(1.0),
                    if all > 0.0 { bad / all } else { 0.0 },
                )
            })
            .collect();
        Prediction { entries }
    }

    /// The probability that an entry (or a first guard) is the adversary's.
    pub fn entry_share(&self) -> f64 {
        self.entries.iter().map(|(p, _)| p).sum()
    }

    /// The probability that a circuit's entry and exit are both the adversary's: for a fresh
    /// entry per circuit, and also the mean over clients with guards.
    pub fn both_ends(&self) -> f64 {
        self.entries.iter().map(|(p, q)| p * q).sum()
    }

    /// The standard deviation of the fraction of compromised circuits among `clients` clients
    /// of `k` circuits each, with a fresh entry per circuit (independent circuits) or with
    /// guards (each client's circuits share its guard).
    pub fn sd(&self, guards: bool, clients: usize, k: usize) -> f64 {
        let (n, k) = (clients.max(1) as f64, k.max(1) as f64);
        let p = self.both_ends();
        if !guards {
            return (p * (1.0 - p) / (n * k)).sqrt();
        }
        // A client's fraction X: 0 through an honest guard, Binomial(k, q)/k through guard g.
        let second: f64 = self
            .entries
            .iter()
            .map(|(pg, q)| pg * (q * (1.0 - q) / k + q * q))
            .sum();
        ((second - p * p).max(0.0) / n).sqrt()
    }

    /// The probability that a client of `k` circuits has at least one compromised.
    pub fn client_compromised(&self, guards: bool, k: usize) -> f64 {
        let k = k as i32;
        if guards {
            self.entries.iter().map(|(p, q)| p * (1.0 - (1.0 - q).powi(k))).sum()
        } else {
            1.0 - (1.0 - self.both_ends()).powi(k)
        }
    }
}

/// One client's circuits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Each circuit built, its relays entry first.
    pub paths: Vec<[IdentityBytes; 3]>,
    /// Circuits that could not be built.
    pub failed: usize,
    /// The client's consensus lists the same relays, flags and weights as the run's.
    pub same_consensus: bool,
}

impl ClientRecord {
    fn compromised(&self, adversary: &BTreeSet<IdentityBytes>) -> usize {
        self.paths
            .iter()
            .filter(|p| adversary.contains(&p[0]) && adversary.contains(&p[2]))
            .count()
    }
}

/// One testbed: one share, the cap on or off, clients without and with guards.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The adversary's share of the advertised bandwidth.
    pub fraction: f64,
    /// The per-IP cap setting.
    pub cap: Cap,
    /// The consensus published when the testbed was ready.
    pub consensus: Consensus,
    /// Every Sybil relay started (listed or not).
    pub sybils: BTreeSet<IdentityBytes>,
    /// The path rules the clients used.
    pub rules: PathRules,
    /// Clients with a fresh entry per circuit.
    pub without_guards: Vec<ClientRecord>,
    /// Clients with guards.
    pub with_guards: Vec<ClientRecord>,
}

impl RunResult {
    /// The Sybils the consensus lists.
    pub fn sybils_listed(&self) -> usize {
        self.consensus
            .relays
            .iter()
            .filter(|r| self.sybils.contains(&r.info.identity))
            .count()
    }

    /// The adversary's share of the consensus weight.
    pub fn consensus_share(&self) -> f64 {
        let weight = |r: &&ConsensusRelay| selection_weight(r) as f64;
        let all: f64 = self.consensus.relays.iter().map(|r| weight(&r)).sum();
        let bad: f64 = self
            .consensus
            .relays
            .iter()
            .filter(|r| self.sybils.contains(&r.info.identity))
            .map(|r| weight(&r))
            .sum();
        if all > 0.0 { bad / all } else { 0.0 }
    }

    /// What the path rules predict for this consensus.
    pub fn prediction(&self) -> Prediction {
        Prediction::of(&self.consensus, &self.sybils, self.rules)
    }

    /// The clients of one entry mode.
    pub fn clients(&self, guards: bool) -> &[ClientRecord] {
        if guards {
            &self.with_guards
        } else {
            &self.without_guards
        }
    }

    /// Circuits built, and those compromised, in one entry mode.
    pub fn circuits(&self, guards: bool) -> (usize, usize) {
        let clients = self.clients(guards);
        (
            clients.iter().map(|c| c.paths.len()).sum(),
            clients.iter().map(|c| c.compromised(&self.sybils)).sum(),
        )
    }

    /// The fraction of circuits compromised in one entry mode.
    pub fn both_ends(&self, guards: bool) -> f64 {
        let (built, bad) = self.circuits(guards);
        bad as f64 / built.max(1) as f64
    }

    /// The fraction of clients with at least one compromised circuit.
    pub fn clients_compromised(&self, guards: bool) -> f64 {
        let clients = self.clients(guards);
        let bad = clients.iter().filter(|c| c.compromised(&self.sybils) > 0).count();
        bad as f64 / clients.len().max(1) as f64
    }

    /// The fraction of clients whose first circuit entered through the adversary.
    pub fn adversary_entry_clients(&self, guards: bool) -> f64 {
        let clients = self.clients(guards);
        let bad = clients
            .iter()
            .filter(|c| c.paths.first().is_some_and(|p| self.sybils.contains(&p[0])))
            .count();
        bad as f64 / clients.len().max(1) as f64
    }
}

/// Starts a testbed for share `c` with the cap set as `cap`, runs the clients of both entry
/// modes against it, and returns what they built.
pub async fn run_one(params: &Params, c: f64, cap: Cap) -> Result<RunResult, SybilRelaysError> {
    params.validate()?;
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = params.honest_relays;
    cfg.sybil_relays = params.sybil_relays;
    cfg.relay_bandwidth = Some(params.honest_bandwidth);
    cfg.sybil_bandwidth = params.sybil_bandwidth(c);
    cfg.max_relays_per_ip = Some(params.cap_value(cap));
    cfg.unmeasured_bandwidth_cap = Some(u64::MAX);
    cfg.measure_bandwidth = false;
    cfg.large_file = 1024;
    let tb = Testbed::start(cfg, START_WITHIN).await?;
    let consensus = tb
        .authority()
        .authority
        .published()
        .ok_or(SybilRelaysError::NoConsensus)?
        .signed
        .consensus
        .clone();
    let sybils: BTreeSet<IdentityBytes> = tb.sybils().iter().map(|r| r.identity()).collect();
    let scratch = tempfile::Builder::new()
        .prefix("onionlab-sybil-clients-")
        .tempdir()
        .map_err(SybilRelaysError::Scratch)?;
    let reference = Arc::new(consensus.relays.clone());
    let without_guards = run_clients(&tb, scratch.path(), false, params, &reference).await?;
    let with_guards = run_clients(&tb, scratch.path(), true, params, &reference).await?;
    let rules = PathRules {
        enforce_distinct_subnets: tb.client_config(scratch.path().into()).enforce_distinct_subnets,
    };
    Ok(RunResult {
        fraction: c,
        cap,
        consensus,
        sybils,
        rules,
        without_guards,
        with_guards,
    })
}

/// Runs `params.clients` clients of one entry mode, `params.parallel` at a time, each with
/// fresh state under `scratch`, and returns their records in client order.
async fn run_clients(
    tb: &Testbed,
    scratch: &Path,
    guards: bool,
    params: &Params,
    reference: &Arc<Vec<ConsensusRelay>>,
) -> Result<Vec<ClientRecord>, SybilRelaysError> {
    let mode = if guards { "guards" } else { "no-guards" };
    let mut records: Vec<Option<ClientRecord>> = vec![None; params.clients];
    let mut running = JoinSet::new();
    let mut next = 0;
    loop {
        while next < params.clients && running.len() < params.parallel {
            let mut config = tb.client_config(scratch.join(format!("{mode}-{next}")));
            config.use_entry_guards = guards;
            config.preemptive_ports = Vec::new();
            let (index, k, reference) = (next, params.circuits_per_client, reference.clone());
            running.spawn(async move { (index, one_client(config, k, &reference).await) });
            next += 1;
        }
        let Some(done) = running.join_next().await else { break };
        let (index, record) = done.map_err(|e| SybilRelaysError::Task(e.to_string()))?;
        records[index] = Some(record.map_err(|reason| SybilRelaysError::Client { index, reason })?);
    }
    Ok(records.into_iter().flatten().collect())
}

/// Starts one client, builds `k` fresh circuits through its pool, and stops it.
async fn one_client(
    config: onionlab_client::ClientConfig,
    k: usize,
    reference: &[ConsensusRelay],
) -> Result<ClientRecord, String> {
    let client = Client::start(config).await.map_err(|e| e.to_string())?;
    if !client.ready(READY_WITHIN).await {
        return Err(format!("no usable consensus within {READY_WITHIN:?}"));
    }
    let consensus = client.pool.consensus(READY_WITHIN).await.map_err(|e| e.to_string())?;
    let mut record = ClientRecord {
        paths: Vec::with_capacity(k),
        failed: 0,
        same_consensus: consensus.relays == reference,
    };
    for _ in 0..k {
        match client.pool.get(&IsolationKey::default(), None, true).await {
            Ok(c) => record
                .paths
                .push([&c.path.guard, &c.path.middle, &c.path.exit].map(|r| r.info.identity)),
            Err(e) => {
                tracing::warn!("circuit build failed: {e}");
                record.failed += 1;
            }
        }
    }
    Ok(record)
}

/// Runs every share and cap setting and scores them.
pub async fn run(params: &Params, progress: &Progress) -> Result<Outcome, SybilRelaysError> {
    params.validate()?;
    let mut runs = Vec::new();
    progress.counted(
        "testbeds (a share c of the bandwidth, cap on or off)",
        (params.per_ip_cap.len() * params.fractions.len()) as u64,
    );
    for &cap in &params.per_ip_cap {
        for &c in &params.fractions {
            let run = run_one(params, c, cap).await?;
            progress.step();
            tracing::info!(
                c,
                ?cap,
                both_ends = run.both_ends(false),
                both_ends_guards = run.both_ends(true),
                "Sybil relays: run done"
            );
            runs.push(run);
        }
    }
    Ok(outcome(params, &runs))
}

/// The measurement-name suffix of a run: `c0.3`, `c0.3_cap`.
fn suffix(c: f64, cap: Cap) -> String {
    match cap {
        Cap::Off => format!("c{c}"),
        Cap::On => format!("c{c}_cap"),
    }
}

/// The z-score of `measured` against `expected` with standard deviation `sd` (finite).
fn z(measured: f64, expected: f64, sd: f64) -> f64 {
    (measured - expected) / sd.max(1e-9)
}

/// The outcome of `runs` (the measurements, figures and table).
pub fn outcome(params: &Params, runs: &[RunResult]) -> Outcome {
    let k = params.circuits_per_client;
    let mut measurements = Vec::new();
    let mut rows = Vec::new();
    let mut all_paths = 0usize;
    let (mut distinct, mut failed, mut clients, mut agreeing) = (0usize, 0usize, 0usize, 0usize);
    for run in runs {
        let (c, cap) = (run.fraction, run.cap);
        let s = suffix(c, cap);
        let prediction = run.prediction();
        let listed_expected = params.sybil_relays.min(params.cap_value(cap));
        // What the design predicts: c itself, or the share the cap leaves.
        let share = match cap {
            Cap::Off => c,
            Cap::On => params.share_with(c, listed_expected),
        };
        let at = |what: &str| match cap {
            Cap::Off => format!("{what}, c = {c}"),
            Cap::On => format!("{what}, c = {c}, at most {} per IP", params.max_relays_per_ip),
        };
        let square_source = match cap {
            Cap::Off => C2_SOURCE,
            Cap::On => CAP_SOURCE,
        };
        measurements.push(measurement(
            format!("sybils_listed_{s}"),
            at("Sybil relays in the consensus"),
            run.sybils_listed() as f64,
            "relays",
            Some((
                listed_expected as f64,
                match cap {
                    Cap::Off => "every Sybil started (no cap)",
                    Cap::On => CAPPED_SHARE_SOURCE,
                },
            )),
        ));
        measurements.push(measurement(
            format!("attacker_weight_{s}"),
            at("the adversary's share of the consensus weight"),
            run.consensus_share(),
            "",
            Some((
                share,
                match cap {
                    Cap::Off => SHARE_SOURCE,
                    Cap::On => CAPPED_SHARE_SOURCE,
                },
            )),
        ));
        for guards in [false, true] {
            let mode = if guards { "_guards" } else { "" };
            let label = if guards { "with guards" } else { "without guards" };
            let (built, _) = run.circuits(guards);
            let measured = run.both_ends(guards);
            measurements.push(measurement(
                format!("both_ends{mode}_{s}"),
                at(&format!("circuits with entry and exit both the adversary's, {label}")),
                measured,
                "",
                Some((share * share, square_source)),
            ));
            let sd = prediction.sd(guards, run.clients(guards).len(), k);
            measurements.push(measurement(
                format!("both_ends{mode}_z_{s}"),
                at(&format!("(measured − exact expectation) / standard deviation, {label}")),
                z(measured, prediction.both_ends(), sd),
                "σ",
                Some((0.0, Z_SOURCE)),
            ));
            let formula = if guards {
                share * (1.0 - (1.0 - share).powi(k as i32))
            } else {
                1.0 - (1.0 - share * share).powi(k as i32)
            };
            measurements.push(measurement(
                format!("clients_compromised{mode}_{s}"),
                at(&format!(
                    "clients with at least one of {k} circuits compromised, {label}"
                )),
                run.clients_compromised(guards),
                "",
                Some((formula, if guards { GUARDS_SOURCE } else { NO_GUARDS_SOURCE })),
            ));
            rows.push(vec![
                c.to_string(),
                match cap {
                    Cap::Off => "off".into(),
                    Cap::On => params.max_relays_per_ip.to_string(),
                },
                label.into(),
                format!("{} of {}", run.sybils_listed(), run.sybils.len()),
                format!("{:.4}", run.consensus_share()),
                built.to_string(),
                format!("{measured:.4}"),
                format!("{:.4}", prediction.both_ends()),
                format!("{:.4}", share * share),
                format!("{:.3}", run.adversary_entry_clients(guards)),
                format!("{:.3}", run.clients_compromised(guards)),
                format!("{:.3}", prediction.client_compromised(guards, k)),
            ]);
            for client in run.clients(guards) {
                clients += 1;
                agreeing += usize::from(client.same_consensus);
                failed += client.failed;
                all_paths += client.paths.len();
                distinct += client
                    .paths
                    .iter()
                    .filter(|p| p[0] != p[1] && p[1] != p[2] && p[0] != p[2])
                    .filter(|p| p.iter().all(|id| run.consensus.relay(id).is_some()))
                    .count();
            }
        }
    }
    measurements.push(measurement(
        "paths_distinct_and_listed",
        "circuits whose three relays are distinct and listed in the consensus",
        distinct as f64 / all_paths.max(1) as f64,
        "",
        Some((1.0, "the client's path rules")),
    ));
    measurements.push(measurement(
        "circuits_failed",
        "circuit builds that failed (after the pool's retries)",
        failed as f64 / (failed + all_paths).max(1) as f64,
        "",
        None,
    ));
    measurements.push(measurement(
        "clients_on_the_consensus",
        "clients whose consensus has the relays, flags and weights the scores use",
        agreeing as f64 / clients.max(1) as f64,
        "",
        Some((1.0, "the testbed's published consensus")),
    ));
    Outcome {
        experiment: "onion-sybil-relays".into(),
        title: "Sybil relays: circuits with both ends compromised".into(),
        summary: format!(
            "For each share c of the bandwidth in {:?}, a loopback onion testbed (3 voting authorities, {} honest \
             relays of {} B/s on their own addresses, {} Sybil relays on one address sharing c/(1 − c) of the honest \
             total; every relay a guard and an exit; bandwidth scanner off and unmeasured cap lifted, so weights are \
             the advertised bandwidths), the directory's per-IP cap {}. Per testbed, {} fresh clients without guards \
             and {} with guards each built {k} real circuits through the client's own pool (an ntor handshake per \
             hop); a circuit is compromised when its entry and exit are both Sybils. Paths are drawn from the \
             operating system's randomness, as a real client's must be, so the seed does not apply.",
            params.fractions,
            params.honest_relays,
            params.honest_bandwidth,
            params.sybil_relays,
            params
                .per_ip_cap
                .iter()
                .map(|cap| match cap {
                    Cap::Off => "off".to_owned(),
                    Cap::On => format!("on ({} per IP)", params.max_relays_per_ip),
                })
                .collect::<Vec<_>>()
                .join(", then "),
            params.clients,
            params.clients,
        ),
        measurements,
        figures: figures(params, runs),
        tables: vec![Table {
            id: "runs".into(),
            title: "Each testbed and entry mode".into(),
            columns: [
                "c",
                "per-IP cap",
                "entry",
                "Sybils listed",
                "adversary's weight",
                "circuits",
                "both ends",
                "exact expectation",
                "c² (or c_eff²)",
                "clients entering via a Sybil",
                "clients compromised",
                "expected",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }],
    }
}

fn figures(params: &Params, runs: &[RunResult]) -> Vec<Figure> {
    let k = params.circuits_per_client;
    let top = params.fractions.iter().copied().fold(0.0, f64::max);
    let curve = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        (0..=50)
            .map(|i| {
                let c = top * f64::from(i) / 50.0;
                (c, f(c))
            })
            .collect()
    };
    let measured = |cap: Cap, f: &dyn Fn(&RunResult) -> f64| -> Vec<(f64, f64)> {
        runs.iter()
            .filter(|r| r.cap == cap)
            .map(|r| (r.fraction, f(r)))
            .collect()
    };
    let series = |name: String, style: SeriesStyle, points: Vec<(f64, f64)>| Series { name, style, points };
    let has = |cap: Cap| params.per_ip_cap.contains(&cap);
    let mut both = vec![series("c²".into(), SeriesStyle::Reference, curve(&|c| c * c))];
    let mut clients = vec![
        series(
            format!("1 − (1 − c²)^{k} (without guards)"),
            SeriesStyle::Reference,
            curve(&|c| 1.0 - (1.0 - c * c).powi(k as i32)),
        ),
        series(
            format!("c·(1 − (1 − c)^{k}) (with guards)"),
            SeriesStyle::Reference,
            curve(&|c| c * (1.0 - (1.0 - c).powi(k as i32))),
        ),
    ];
    let mut weight = vec![series("c".into(), SeriesStyle::Reference, curve(&|c| c))];
    for cap in [Cap::Off, Cap::On].into_iter().filter(|c| has(*c)) {
        let tag = match cap {
            Cap::Off => "cap off".to_owned(),
            Cap::On => format!("at most {} per IP", params.max_relays_per_ip),
        };
        for guards in [false, true] {
            let label = if guards { "with guards" } else { "without guards" };
            both.push(series(
                format!("{label}, {tag}"),
                SeriesStyle::Line,
                measured(cap, &|r| r.both_ends(guards)),
            ));
            if cap == Cap::Off {
                clients.push(series(
                    format!("measured, {label}"),
                    SeriesStyle::Line,
                    measured(cap, &|r| r.clients_compromised(guards)),
                ));
            }
        }
        weight.push(series(tag, SeriesStyle::Line, measured(cap, &|r| r.consensus_share())));
    }
    vec![
        Figure {
            id: "both-ends".into(),
            title: "Circuits whose entry and exit are both the adversary's".into(),
            x_label: "the adversary's share c of the advertised bandwidth".into(),
            y_label: "fraction of circuits".into(),
            x_log: false,
            y_log: false,
            series: both,
        },
        Figure {
            id: "clients-compromised".into(),
            title: format!("Clients with at least one of {k} circuits compromised (cap off)"),
            x_label: "the adversary's share c of the advertised bandwidth".into(),
            y_label: "fraction of clients".into(),
            x_log: false,
            y_log: false,
            series: clients,
        },
        Figure {
            id: "consensus-share".into(),
            title: "The adversary's share of the consensus weight".into(),
            x_label: "the adversary's share c of the advertised bandwidth".into(),
            y_label: "share of the consensus weight".into(),
            x_log: false,
            y_log: false,
            series: weight,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use onionlab_proto::consensus::Flags;
    use onionlab_proto::descriptor::RelayInfo;
    use onionlab_proto::exit_policy::ExitPolicy;
    use onionlab_proto::path::{choose_guard, choose_path};
    use onionlab_proto::random::ThreadRandom;

    fn relay(i: u8, bandwidth: u64) -> ConsensusRelay {
        let mut flags = Flags::RUNNING;
        for f in [Flags::VALID, Flags::GUARD, Flags::EXIT, Flags::FAST] {
            flags.insert(f);
        }
        ConsensusRelay {
            info: RelayInfo {
                nickname: format!("r{i}"),
                identity: [i; 32],
                onion_key: [i; 32],
                or_addr: format!("127.0.{i}.1:9001").parse().unwrap(),
                bandwidth,
                exit_policy: ExitPolicy::default_exit(),
                family: Vec::new(),
            },
            flags,
        }
    }

    /// `honest` relays of weight 10,000 and `sybils` sharing c/(1 − c) of their total.
    fn network(honest: u8, sybils: u8, c: f64) -> (Consensus, BTreeSet<IdentityBytes>) {
        let w = (c / (1.0 - c) * f64::from(honest) * 10_000.0 / f64::from(sybils)).round() as u64;
        let relays: Vec<_> = (1..=honest)
            .map(|i| relay(i, 10_000))
            .chain((1..=sybils).map(|j| relay(100 + j, w)))
            .collect();
        let adversary = relays[usize::from(honest)..].iter().map(|r| r.info.identity).collect();
        let consensus = Consensus {
            valid_after: 0,
            fresh_until: 1,
            valid_until: 2,
            relays,
        };
        (consensus, adversary)
    }

    const RULES: PathRules = PathRules {
        enforce_distinct_subnets: false,
    };

    #[test]
    fn the_prediction_is_c_squared_less_the_entry_that_cannot_exit() {
        for (sybils, c) in [(10u8, 0.3), (4, 0.5), (1, 0.2), (40, 0.1)] {
            let (consensus, adversary) = network(10, sybils, c);
            let p = Prediction::of(&consensus, &adversary, RULES);
            assert!((p.entry_share() - c).abs() < 1e-3, "{}", p.entry_share());
            // Each Sybil holds c/S of the weight; through one, the others hold c − c/S of the rest.
            let each = c / f64::from(sybils);
            let exact = c * (c - each) / (1.0 - each);
            assert!((p.both_ends() - exact).abs() < 1e-3, "{} vs {exact}", p.both_ends());
            assert!(p.both_ends() < c * c);
        }
        // One Sybil alone can never be both ends.
        let (consensus, adversary) = network(10, 1, 0.4);
        assert_eq!(Prediction::of(&consensus, &adversary, RULES).both_ends(), 0.0);
    }

    #[test]
    fn the_prediction_matches_the_clients_path_selection() {
        let (consensus, adversary) = network(8, 6, 0.3);
        let p = Prediction::of(&consensus, &adversary, RULES);
        let n = 20_000;
        let mut bad = 0;
        for _ in 0..n {
            let guard = choose_guard(&consensus, &mut ThreadRandom).unwrap();
            let path = choose_path(&consensus, guard, None, RULES, &mut ThreadRandom).unwrap();
            if adversary.contains(&path.guard.info.identity) && adversary.contains(&path.exit.info.identity) {
                bad += 1;
            }
        }
        let measured = f64::from(bad) / f64::from(n);
        let sd = p.sd(false, n as usize, 1);
        assert!(
            z(measured, p.both_ends(), sd).abs() < 6.0,
            "{measured} vs {}",
            p.both_ends()
        );
        // Uniform choice (weights ignored) would be far away: 6/14 · 5/13.
        let uniform = 6.0 / 14.0 * 5.0 / 13.0;
        assert!(z(uniform, p.both_ends(), sd).abs() > 20.0);
    }

    #[test]
    fn guards_spread_the_outcome_and_spare_most_clients() {
        let (consensus, adversary) = network(10, 10, 0.3);
        let p = Prediction::of(&consensus, &adversary, RULES);
        assert!(p.sd(true, 100, 20) > 2.0 * p.sd(false, 100, 20));
        assert!(p.client_compromised(true, 20) < 0.31);
        assert!(p.client_compromised(false, 20) > 0.8);
        assert_eq!(
            p.sd(false, 100, 1),
            p.sd(true, 100, 1),
            "one circuit per client: the same"
        );
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let bad = |p: Params| p.validate().unwrap_err().field;
        let ok = Params::default();
        assert!(ok.validate().is_ok());
        assert_eq!(
            bad(Params {
                fractions: vec![0.3, 1.0],
                ..ok.clone()
            }),
            "fractions"
        );
        assert_eq!(
            bad(Params {
                fractions: vec![0.001],
                ..ok.clone()
            }),
            "fractions",
            "Sybils below the Fast flag would never be guards"
        );
        assert_eq!(
            bad(Params {
                honest_relays: 2,
                ..ok.clone()
            }),
            "honest_relays"
        );
        assert_eq!(
            bad(Params {
                sybil_relays: 0,
                ..ok.clone()
            }),
            "sybil_relays"
        );
        assert_eq!(
            bad(Params {
                clients: 10_000,
                circuits_per_client: 1000,
                ..ok.clone()
            }),
            "clients"
        );
        assert_eq!(bad(Params { parallel: 0, ..ok }), "parallel");
    }

    #[test]
    fn sybil_bandwidths_give_the_share() {
        let p = Params::default();
        for &c in &p.fractions {
            assert!((p.share_with(c, p.sybil_relays) - c).abs() < 1e-6);
        }
        assert!(p.share_with(0.5, 2) < 0.2, "two of ten Sybils at c = 0.5: 1/6");
    }
}
