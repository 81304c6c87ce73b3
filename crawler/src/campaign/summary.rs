//! A crawl's summary: the store's rows adapted to the [`analysis`](crate::analysis) inputs, the
//! analyses a campaign asked for, and the short text a researcher reads first (`summary.txt`).
//!
//! Everything is computed from the rows, never from what the probes held in memory, so a summary
//! rebuilt later from the same store (`onionlab-crawl summary`) says the same thing, and a
//! resumed crawl is summarised whole. Adapting the rows:
//!
//! - **Sessions**: every visit to an address is an up/down probe of it (up: the remote answered,
//!   even with an error; down: no answer at its last attempt: a timeout answered by the retry is
//!   not a departure). Sessions go to the store's `sessions` table; the summary gives the naive
//!   and the create-based mean lengths and a censored Weibull fit of the create-based sample.
//! - **Size**: the ids DHT nodes answered with, against 64 keys from a fixed seed (so the same
//!   rows give the same estimate).
//! - **Sybil**: one [`NodeSighting`] per answered DHT visit, checked for clusters near every
//!   info-hash the crawl's visits were about, with N from the size estimate.
//! - **Poisoning**: sightings with an info-hash as peer reports (source `tracker:URL`,
//!   `dht:ADDR`, `pex:ADDR`), peer handshakes as reachability, piece checks as they are.
//! - **Relays** (when the crawl read onion consensuses): the relays listed and left out, and
//!   with the Sybil analysis its per-IP, per-/24 and id-change signals over one
//!   [`NodeSighting`] per relay listed (its fingerprint's first 20 bytes at its OR address),
//!   as sybilhunter does over Tor's consensus archives.
//!
//! It never probes and never writes anything but the `sessions` rows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use crate::analysis::poisoning::{self, PeerReport, PoisoningConfig, PoisoningReport, Reach, poisoning_report};
use crate::analysis::sessions::{self, Probe, Weibull, Window, create_based_lengths, naive_lengths};
use crate::analysis::size::{SizeEstimate, estimate_size};
use crate::analysis::sybil::{NodeSighting, SybilConfig, SybilReason, SybilReport, sybil_report};
use crate::dht::space::SplitMix64;
use crate::infohash::InfoHash;
use crate::krpc::NodeId;
use crate::observe::{Micros, Outcome, ProbeKind, Sighting, SourceKind, Visit, now_micros};
use crate::store::{CrawlId, CrawlRecord, RowCounts, SessionRow, Store, StoreError};

use super::config::AnalysisKind;

/// Bucket size: the k of the size estimate.
const K: usize = 8;
/// Random keys of the size estimate.
const SIZE_KEYS: usize = 64;
/// Seed of those keys.
const SIZE_SEED: u64 = 0x5349_5a45;
/// Flagged items listed by name in the text (the rest are counted).
const LISTED: usize = 10;

/// What to summarise.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRequest {
    /// The analyses to run.
    pub analyses: Vec<AnalysisKind>,
    /// Attempts the engine made per probe (a failed visit counts as "down" only at the last).
    pub attempts: u32,
    /// Thresholds of the Sybil signals.
    pub sybil: SybilConfig,
}

/// Everything a summary holds, and its text through [`fmt::Display`].
#[derive(Debug, Clone)]
pub struct Summary {
    /// The crawl summarised.
    pub crawl: CrawlRecord,
    /// Rows per table.
    pub rows: RowCounts,
    /// Attempts per probe kind: (all, answered well).
    pub visits: BTreeMap<ProbeKind, (u64, u64)>,
    /// Distinct addresses probed, and those that answered at least once.
    pub addrs: (usize, usize),
    /// The sessions analysis, if asked.
    pub sessions: Option<SessionSummary>,
    /// The size estimate, if asked (or an explanation of why there is none).
    pub size: Option<Result<SizeEstimate, String>>,
    /// The Sybil report, if asked.
    pub sybil: Option<Result<SybilReport, String>>,
    /// The poisoning report, if asked.
    pub poisoning: Option<Result<PoisoningReport, String>>,
    /// The relay census, if the crawl read onion consensuses.
    pub relays: Option<RelaySummary>,
}

/// What the onion directory authorities listed over a crawl.
#[derive(Debug, Clone)]
pub struct RelaySummary {
    /// Authorities that served at least one consensus.
    pub authorities: usize,
    /// Distinct relays (fingerprints) listed by some authority.
    pub listed: usize,
    /// Distinct relays left out and never listed.
    pub only_excluded: usize,
    /// The Sybil signals over the relays listed, if the Sybil analysis was asked.
    pub sybil: Option<Result<SybilReport, String>>,
}

/// Sessions and lifetimes.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    /// Addresses with at least one session.
    pub peers: usize,
    /// Sessions in all.
    pub sessions: usize,
    /// Mean naive length (s), if any.
    pub naive_mean: Option<f64>,
    /// Create-based sample size and mean length (s), censored lengths included as observed.
    pub create_based: (usize, Option<f64>),
    /// Weibull fit of the create-based sample (or why there is none).
    pub weibull: Result<Weibull, String>,
}

/// Summarise crawl `id` of `store` (and replace its `sessions` rows when sessions are asked).
pub fn summarize(store: &Store, id: CrawlId, request: &SummaryRequest) -> Result<Summary, StoreError> {
    let crawl = store.crawl(id)?;
    let visits = store.visits(id)?;
    let mut by_kind: BTreeMap<ProbeKind, (u64, u64)> = BTreeMap::new();
    let mut answered: BTreeMap<SocketAddr, bool> = BTreeMap::new();
    for v in &visits {
        let e = by_kind.entry(v.probe).or_default();
        e.0 += 1;
        e.1 += u64::from(v.outcome == Outcome::Ok);
        if let Some(addr) = v.addr {
            *answered.entry(addr).or_default() |= answers(v);
        }
    }
    let addrs = (answered.len(), answered.values().filter(|a| **a).count());
    let wants = |k| request.analyses.contains(&k);

    let sessions = if wants(AnalysisKind::Sessions) {
        Some(session_summary(store, &crawl, &visits, request.attempts)?)
    } else {
        None
    };
    let dht: Vec<NodeSighting> = dht_sightings(&visits, crawl.started_at);
    let size = (wants(AnalysisKind::Size) || wants(AnalysisKind::Sybil)).then(|| size_estimate(&dht));
    let sybil = wants(AnalysisKind::Sybil).then(|| {
        let n = match &size {
            Some(Ok(s)) => s.density_estimate.max(s.distinct_ids as f64).max(1.0),
            _ => distinct_ids(&dht).max(1) as f64,
        };
        let keys: Vec<[u8; 20]> = visits
            .iter()
            .filter_map(|v| v.info_hash.map(|h| h.0))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        sybil_report(&dht, &keys, n, &request.sybil).map_err(|e| e.to_string())
    });
    let poisoning = if wants(AnalysisKind::Poisoning) {
        Some(poisoning_summary(store, id, &visits)?)
    } else {
        None
    };
    let relays = if by_kind.contains_key(&ProbeKind::OnionConsensus) {
        let sightings = store.sightings(id)?;
        Some(relay_summary(
            &visits,
            &sightings,
            crawl.started_at,
            wants(AnalysisKind::Sybil).then_some(&request.sybil),
        ))
    } else {
        None
    };
    Ok(Summary {
        rows: store.counts(id)?,
        crawl,
        visits: by_kind,
        addrs,
        sessions,
        size: size.filter(|_| wants(AnalysisKind::Size)),
        sybil,
        poisoning,
        relays,
    })
}

fn relay_summary(
    visits: &[Visit],
    sightings: &[Sighting],
    origin: Micros,
    sybil: Option<&SybilConfig>,
) -> RelaySummary {
    let authorities = visits
        .iter()
        .filter(|v| v.probe == ProbeKind::OnionConsensus && v.outcome == Outcome::Ok)
        .filter_map(|v| v.addr)
        .collect::<BTreeSet<_>>()
        .len();
    let ids_of = |kind| -> BTreeSet<[u8; 20]> {
        sightings
            .iter()
            .filter(|s| s.source_kind == kind)
            .filter_map(|s| s.id)
            .collect()
    };
    let listed = ids_of(SourceKind::OnionListed);
    let excluded = ids_of(SourceKind::OnionExcluded);
    let relays: Vec<NodeSighting> = sightings
        .iter()
        .filter(|s| s.source_kind == SourceKind::OnionListed)
        .filter_map(|s| {
            Some(NodeSighting {
                id: NodeId(s.id?),
                addr: s.addr,
                at: secs(s.at, origin),
            })
        })
        .collect();
    RelaySummary {
        authorities,
        listed: listed.len(),
        only_excluded: excluded.difference(&listed).count(),
        sybil: sybil
            .map(|config| sybil_report(&relays, &[], listed.len().max(1) as f64, config).map_err(|e| e.to_string())),
    }
}

/// The remote answered (well or with an error of its protocol or bytes we refused): it is up.
fn answers(v: &Visit) -> bool {
    !matches!(v.outcome, Outcome::Timeout | Outcome::Unreachable | Outcome::Denied)
}

fn secs(at: Micros, origin: Micros) -> f64 {
    (at - origin) as f64 / 1e6
}

fn session_summary(
    store: &Store,
    crawl: &CrawlRecord,
    visits: &[Visit],
    attempts: u32,
) -> Result<SessionSummary, StoreError> {
    let origin = crawl.started_at;
    let probes: Vec<Probe<SocketAddr>> = visits
        .iter()
        .filter(|v| v.outcome != Outcome::Denied)
        .filter(|v| answers(v) || v.attempt >= attempts)
        .filter_map(|v| {
            v.addr.map(|peer| Probe {
                peer,
                at: secs(v.at, origin),
                up: answers(v),
            })
        })
        .collect();
    let last = visits.iter().map(|v| v.at).max().unwrap_or(origin);
    let end = secs(crawl.finished_at.unwrap_or_else(now_micros).max(last), origin);
    let window = Window::new(0.0, end.max(f64::MIN_POSITIVE));
    let found = window
        .as_ref()
        .map(|w| sessions::sessions(&probes, *w))
        .unwrap_or_default();
    let rows: Vec<SessionRow> = found
        .iter()
        .map(|s| SessionRow {
            addr: s.peer,
            id: None,
            started_at: origin + (s.start * 1e6) as i64,
            ended_at: origin + (s.end * 1e6) as i64,
            left_censored: s.left_censored,
            right_censored: s.right_censored,
        })
        .collect();
    store.replace_sessions(crawl.id, &rows)?;
    let naive = naive_lengths(&found);
    let created = window.map(|w| create_based_lengths(&found, w)).unwrap_or_default();
    let created_lengths: Vec<f64> = created.iter().map(|l| l.length).collect();
    Ok(SessionSummary {
        peers: found.iter().map(|s| s.peer).collect::<BTreeSet<_>>().len(),
        sessions: found.len(),
        naive_mean: mean(&naive),
        create_based: (created.len(), mean(&created_lengths)),
        weibull: sessions::weibull_fit_censored(&created).map_err(|e| e.to_string()),
    })
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

fn dht_sightings(visits: &[Visit], origin: Micros) -> Vec<NodeSighting> {
    visits
        .iter()
        .filter(|v| v.probe.is_dht() && v.outcome == Outcome::Ok)
        .filter_map(|v| {
            Some(NodeSighting {
                id: NodeId(v.remote_id?),
                addr: v.addr?,
                at: secs(v.at, origin),
            })
        })
        .collect()
}

fn distinct_ids(dht: &[NodeSighting]) -> usize {
    dht.iter().map(|s| s.id).collect::<BTreeSet<_>>().len()
}

fn size_estimate(dht: &[NodeSighting]) -> Result<SizeEstimate, String> {
    let ids: Vec<NodeId> = dht.iter().map(|s| s.id).collect();
    let mut rng = SplitMix64::new(SIZE_SEED);
    let keys: Vec<[u8; 20]> = (0..SIZE_KEYS).map(|_| rng.node_id().0).collect();
    estimate_size(&ids, &keys, K).map_err(|e| e.to_string())
}

fn poisoning_summary(
    store: &Store,
    id: CrawlId,
    visits: &[Visit],
) -> Result<Result<PoisoningReport, String>, StoreError> {
    let reports: Vec<PeerReport> = store
        .sightings(id)?
        .into_iter()
        .filter_map(|s| {
            Some(PeerReport {
                source: format!("{}:{}", s.source_kind.as_str(), s.source),
                info_hash: s.info_hash?,
                peer: s.addr,
            })
        })
        .collect();
    let reach: Vec<Reach> = visits
        .iter()
        .filter(|v| v.probe == ProbeKind::PeerHandshake)
        .filter_map(|v| {
            Some(Reach {
                peer: v.addr?,
                info_hash: v.info_hash?,
                handshake_ok: v.outcome == Outcome::Ok,
            })
        })
        .collect();
    let pieces: Vec<poisoning::PieceCheck> = store
        .piece_checks(id)?
        .into_iter()
        .map(|p| poisoning::PieceCheck {
            peer: p.addr,
            info_hash: p.info_hash,
            piece: p.piece,
            ok: p.ok,
        })
        .collect();
    Ok(poisoning_report(&reports, &reach, &pieces, &PoisoningConfig::default()).map_err(|e| e.to_string()))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.crawl;
        let ran = secs(c.finished_at.unwrap_or_else(now_micros), c.started_at);
        writeln!(
            f,
            "crawl {} ({}), {}, {ran:.1} s from start to end",
            c.id,
            c.kind,
            c.status.as_str()
        )?;
        for line in c.notes.lines() {
            writeln!(f, "  {line}")?;
        }
        let r = &self.rows;
        writeln!(
            f,
            "rows: {} visits, {} sightings, {} peer states, {} piece checks",
            r.visits, r.sightings, r.peer_states, r.piece_checks
        )?;
        writeln!(f, "addresses probed: {}, answered: {}", self.addrs.0, self.addrs.1)?;
        for (kind, (all, ok)) in &self.visits {
            writeln!(f, "  {:<22} {all:>9} attempts, {ok:>9} ok", kind.as_str())?;
        }
        if let Some(s) = &self.sessions {
            writeln!(f, "\nsessions (create-based method, Stutzbach & Rejaie)")?;
            writeln!(f, "  peers with sessions:  {}", s.peers)?;
            writeln!(f, "  sessions:             {}", s.sessions)?;
            writeln!(f, "  naive mean length:    {}", seconds(s.naive_mean))?;
            writeln!(
                f,
                "  create-based sample:  {} sessions, mean {}",
                s.create_based.0,
                seconds(s.create_based.1)
            )?;
            match &s.weibull {
                Ok(w) => writeln!(
                    f,
                    "  Weibull fit:          shape {:.3}, scale {:.1} s, median {:.1} s",
                    w.shape(),
                    w.scale(),
                    w.median()
                )?,
                Err(e) => writeln!(f, "  Weibull fit:          none ({e})")?,
            }
        }
        if let Some(size) = &self.size {
            writeln!(f, "\nDHT size")?;
            match size {
                Ok(s) => {
                    writeln!(f, "  distinct ids:         {}", s.distinct_ids)?;
                    writeln!(f, "  density estimate:     {:.0}", s.density_estimate)?;
                }
                Err(e) => writeln!(f, "  no estimate: {e}")?,
            }
        }
        if let Some(sybil) = &self.sybil {
            writeln!(f, "\nSybil signals")?;
            match sybil {
                Ok(report) => write_sybil(f, report)?,
                Err(e) => writeln!(f, "  not computed: {e}")?,
            }
        }
        if let Some(r) = &self.relays {
            writeln!(f, "\nonion relays (census of {} authorities)", r.authorities)?;
            writeln!(f, "  listed:               {}", r.listed)?;
            writeln!(f, "  left out, never listed: {}", r.only_excluded)?;
            match &r.sybil {
                Some(Ok(report)) => {
                    writeln!(f, "  Sybil signals over the relays listed")?;
                    write_sybil(f, report)?;
                }
                Some(Err(e)) => writeln!(f, "  Sybil signals not computed: {e}")?,
                None => {}
            }
        }
        if let Some(p) = &self.poisoning {
            writeln!(f, "\npoisoning signals")?;
            match p {
                Ok(report) => write_poisoning(f, report)?,
                Err(e) => writeln!(f, "  not computed: {e}")?,
            }
        }
        Ok(())
    }
}

fn seconds(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"))
}

fn write_sybil(f: &mut fmt::Formatter<'_>, report: &SybilReport) -> fmt::Result {
    writeln!(f, "  flagged ids:          {}", report.flagged.len())?;
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for why in report.flagged.values().flatten() {
        *reasons.entry(reason_name(why)).or_default() += 1;
    }
    for (reason, n) in &reasons {
        writeln!(f, "    {reason}: {n} ids")?;
    }
    for (id, _) in report.flagged.iter().take(LISTED) {
        writeln!(f, "    {}", InfoHash(id.0).to_hex())?;
    }
    if report.flagged.len() > LISTED {
        writeln!(
            f,
            "    ... and {} more (sessions and visits are in the store)",
            report.flagged.len() - LISTED
        )?;
    }
    Ok(())
}

/// The signal behind a reason, in words.
fn reason_name(why: &SybilReason) -> &'static str {
    match why {
        SybilReason::IdsPerIp { .. } => "too many ids per IP",
        SybilReason::IdsPerSubnet { .. } => "too many ids per /24 or /64",
        SybilReason::IdChanges { .. } => "ids changing behind one IP:port",
        SybilReason::NearKey(_) => "cluster near an info-hash of the crawl",
        SybilReason::PrefixCluster(_) => "cluster found by the prefix scan",
        SybilReason::Bep42Mismatch { .. } => "BEP 42 mismatch",
    }
}

fn write_poisoning(f: &mut fmt::Formatter<'_>, report: &PoisoningReport) -> fmt::Result {
    writeln!(f, "  sources:              {}", report.sources.len())?;
    for (hash, reach) in &report.info_hashes {
        let share = reach
            .unreachable_fraction()
            .map_or_else(|| "-".to_owned(), |x| format!("{:.0} %", 100.0 * x));
        writeln!(
            f,
            "  swarm {}: {} peers, {} probed, unreachable {share}",
            hash.to_hex(),
            reach.peers,
            reach.probed
        )?;
    }
    writeln!(f, "  peers serving bad pieces: {}", report.bad_peers.len())?;
    writeln!(f, "  flagged sources:      {}", report.flagged.len())?;
    for (source, reasons) in report.flagged.iter().take(LISTED) {
        let why: Vec<String> = reasons.iter().map(|r| format!("{r:?}")).collect();
        writeln!(f, "    {source}: {}", why.join("; "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
