//! `onionlab-crawl gnutella ...`: topology snapshots of a Gnutella 0.6 overlay (the crawler
//! handshake) and a content probe (join as a leaf, query, check the hits' downloads).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use onionlab_crawler::analysis::pollution::{PollutionConfig, pollution_report};
use onionlab_crawler::analysis::topology::{
    Removal, degree_histogram, degrees, robustness, top_k_share, ultrapeer_subnets,
};
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::gnutella::churn::churn;
use onionlab_crawler::gnutella::crawl::{CrawlerProbeConfig, TopologyConfig, TopologyCrawler, USER_AGENT};
use onionlab_crawler::gnutella::leaf::{DownloadConfig, QueryConfig, QueryOutcome, query, verify_hit};
use onionlab_crawler::gnutella::snapshot::{FrontierRules, Snapshot};
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::probe::to_hex;

use super::progress::Progress;
use super::{Common, parse_duration};

/// Arguments of `gnutella`.
#[derive(Args)]
pub(crate) struct GnutellaArgs {
    #[command(subcommand)]
    command: GnutellaCommand,
}

#[derive(Subcommand)]
enum GnutellaCommand {
    /// Crawl the overlay's topology: breadth-first over ultrapeers with the crawler handshake.
    ///
    /// Each address gets `GNUTELLA CONNECT/0.6` with `Crawler: 0.1`; servents that know the
    /// extension answer with their neighbours (`Peers:`) and, ultrapeers only, their leaves
    /// (`Leaves:`), and the crawler closes without completing the handshake. Ultrapeers named
    /// by `Peers:` (and `X-Try-Ultrapeers:`) are contacted in turn; leaves only with
    /// --contact-leaves. Prints per snapshot the nodes, roles, edges, the share of leaf
    /// connections held by the top --top-k ultrapeers, the ultrapeer degree histogram and the
    /// giant component under random and highest-degree removal; with several snapshots, the
    /// peers' sessions. Real servents allow about one crawl per source every few minutes: keep
    /// --recrawl-interval at its default off the testbed.
    Crawl(CrawlArgs),
    /// Join an ultrapeer as a leaf, send one Query and list the QueryHits.
    ///
    /// Makes the full 0.6 handshake as a leaf (no compression), sends the Query with --ttl,
    /// answers Pings, and collects QueryHits for --wait (the engine's --timeout is raised to
    /// cover it). With --verify, downloads up to --verify-max hits over HTTP (by urn:sha1 when
    /// advertised) and checks their size and SHA-1; then reports pollution signals.
    Query(QueryArgs),
}

#[derive(Args)]
struct CrawlArgs {
    /// Servents to start from, as IP:PORT.
    #[arg(long, required = true, num_args = 1..)]
    bootstrap: Vec<SocketAddr>,
    /// Snapshots to take.
    #[arg(long, default_value_t = 1)]
    snapshots: usize,
    /// Time from the start of one snapshot to the start of the next.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    interval: Duration,
    /// Least time between two crawls of one address (servents rate-limit crawlers).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    recrawl_interval: Duration,
    /// Stop a snapshot after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    max_duration: Duration,
    /// Contact at most this many addresses per snapshot.
    #[arg(long, default_value_t = 1_000_000)]
    max_contacts: usize,
    /// Contact leaves too (they answer with their ultrapeers).
    #[arg(long)]
    contact_leaves: bool,
    /// Do not contact the ultrapeers of `X-Try-Ultrapeers:` (refusals' suggestions).
    #[arg(long)]
    no_try_ultrapeers: bool,
    /// The k of the top-k share of leaf connections.
    #[arg(long, default_value_t = 20)]
    top_k: usize,
    /// Flag /24s holding more ultrapeers than this (Sybil signal).
    #[arg(long, default_value_t = 4)]
    max_ultrapeers_per_subnet: usize,
    /// Our User-Agent.
    #[arg(long, default_value = USER_AGENT)]
    user_agent: String,
    /// Write nodes.csv, edges.csv (and sessions.csv with several snapshots) here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct QueryArgs {
    /// The ultrapeer to join, as IP:PORT.
    addr: SocketAddr,
    /// The search text.
    text: String,
    /// The Query's TTL.
    #[arg(long, default_value_t = 3)]
    ttl: u8,
    /// How long to collect QueryHits.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    wait: Duration,
    /// QueryHit descriptors kept.
    #[arg(long, default_value_t = 256)]
    max_hits: usize,
    /// Download hits and check their size and SHA-1.
    #[arg(long)]
    verify: bool,
    /// Hits downloaded at most with --verify.
    #[arg(long, default_value_t = 10)]
    verify_max: usize,
    /// Largest file downloaded with --verify, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_download: usize,
    /// Our User-Agent.
    #[arg(long, default_value = USER_AGENT)]
    user_agent: String,
}

impl GnutellaArgs {
    /// The crawl kind recorded under --db.
    pub(crate) fn recorded_kind(&self) -> Option<&'static str> {
        match self.command {
            GnutellaCommand::Crawl(_) => Some("gnutella_crawl"),
            GnutellaCommand::Query(_) => Some("gnutella_query"),
        }
    }
}

/// Run `gnutella ...` under the global options, recording to `recorder`.
pub(crate) async fn run(args: GnutellaArgs, common: &Common, recorder: Recorder) -> anyhow::Result<()> {
    match args.command {
        GnutellaCommand::Crawl(a) => crawl(a, common.engine(recorder)).await,
        GnutellaCommand::Query(a) => {
            // The collection runs inside one attempt: give it the wait on top of the timeout.
            let config = EngineConfig {
                timeout: common.timeout + a.wait,
                ..common.engine_config()
            };
            run_query(a, Engine::new(config, recorder)).await
        }
    }
}

async fn crawl(a: CrawlArgs, engine: Engine) -> anyhow::Result<()> {
    anyhow::ensure!(a.snapshots > 0, "--snapshots must be at least 1");
    let config = TopologyConfig {
        frontier: FrontierRules {
            contact_leaves: a.contact_leaves,
            follow_try_ultrapeers: !a.no_try_ultrapeers,
            max_contacts: a.max_contacts,
        },
        recrawl_interval: a.recrawl_interval,
        max_duration: a.max_duration,
        revisit_known: true,
        probe: CrawlerProbeConfig {
            user_agent: a.user_agent.clone(),
            ..CrawlerProbeConfig::default()
        },
    };
    let mut crawler = TopologyCrawler::new(engine.clone(), config);
    let mut snapshots = Vec::with_capacity(a.snapshots);
    let first = tokio::time::Instant::now();
    for i in 0..a.snapshots {
        let due = first + a.interval.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        tokio::time::sleep_until(due).await;
        let progress = Progress::start(
            &format!("snapshot {}/{}", i + 1, a.snapshots),
            engine.stats().clone(),
            String::new,
        );
        let snapshot = crawler.snapshot(&a.bootstrap).await;
        progress.finish();
        print!("snapshot {}/{}: {}", i + 1, a.snapshots, summary(&snapshot, &a));
        snapshots.push(snapshot);
    }
    let churn_text = if snapshots.len() > 1 {
        churn_summary(&snapshots)
    } else {
        String::new()
    };
    print!("{churn_text}");
    if let Some(dir) = &a.out {
        write_csv(dir, &snapshots).with_context(|| format!("cannot write to {}", dir.display()))?;
        println!("wrote nodes.csv and edges.csv to {}", dir.display());
    }
    Ok(())
}

/// One snapshot in words.
fn summary(s: &Snapshot, a: &CrawlArgs) -> String {
    let mut out = String::new();
    let ultrapeers = s.ultrapeers();
    let leaf_edges = s.leaf_edges();
    let up_edges = s.ultrapeer_edges();
    let refused = s
        .nodes
        .values()
        .filter(|n| {
            matches!(
                n.status,
                onionlab_crawler::gnutella::snapshot::NodeStatus::Refused { .. }
            )
        })
        .count();
    let _ = writeln!(
        out,
        "{:.2} s, {:?}, {} contacted",
        s.duration.as_secs_f64(),
        s.stop,
        s.contacted
    );
    let _ = writeln!(
        out,
        "  nodes        {} ({} ultrapeers, {} leaves, {} unknown)",
        s.nodes.len(),
        ultrapeers.len(),
        s.leaves().len(),
        s.with_role(onionlab_crawler::gnutella::snapshot::Role::Unknown).len()
    );
    let _ = writeln!(
        out,
        "  answered     {} ({} refused), {} unreachable",
        s.reached().len(),
        refused,
        s.unreachable.len()
    );
    let _ = writeln!(
        out,
        "  edges        {} ({} ultrapeer-ultrapeer, {} ultrapeer-leaf)",
        s.edges.len(),
        up_edges.len(),
        leaf_edges.len()
    );
    let top = top_k_share(&s.leaves_per_ultrapeer(), a.top_k);
    match top.share() {
        Some(share) => {
            let _ = writeln!(
                out,
                "  top-{} share {:.1} % of {} leaf connections",
                top.k,
                share * 100.0,
                top.total
            );
        }
        None => {
            let _ = writeln!(out, "  top-{} share -  (no leaf connections)", a.top_k);
        }
    }
    let hist = degree_histogram(&degrees(&ultrapeers, &up_edges));
    let hist: Vec<String> = hist.iter().map(|(d, n)| format!("{d}:{n}")).collect();
    let _ = writeln!(out, "  UP degrees   {}", hist.join(" "));
    let fractions = [0.05, 0.1, 0.2, 0.5];
    let random = robustness(&ultrapeers, &up_edges, Removal::Random { seed: 1 }, &fractions);
    let attack = robustness(&ultrapeers, &up_edges, Removal::HighestDegree, &fractions);
    for (r, t) in random.iter().zip(&attack) {
        let _ = writeln!(
            out,
            "  giant after removing {:>3.0} %: random {:.2}, highest degree {:.2}",
            r.fraction * 100.0,
            r.giant_fraction,
            t.giant_fraction
        );
    }
    let mut agents: BTreeMap<&str, usize> = BTreeMap::new();
    for n in s.nodes.values() {
        if let Some(ua) = &n.user_agent {
            *agents.entry(ua.as_str()).or_insert(0) += 1;
        }
    }
    let mut agents: Vec<(&str, usize)> = agents.into_iter().collect();
    agents.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    for (ua, n) in agents.iter().take(5) {
        let _ = writeln!(out, "  user agent   {n:>6}  {}", ua.escape_debug());
    }
    for (subnet, addrs) in &ultrapeer_subnets(&ultrapeers, a.max_ultrapeers_per_subnet).flagged {
        let _ = writeln!(out, "  crowded /24  {subnet}: {} ultrapeers", addrs.len());
    }
    out
}

fn churn_summary(snapshots: &[Snapshot]) -> String {
    let mut out = String::new();
    match churn(snapshots) {
        Ok(c) => {
            let peers: BTreeSet<SocketAddr> = c.sessions.iter().map(|s| s.peer).collect();
            let ended = c.lifetimes.iter().filter(|l| !l.censored).count();
            let _ = writeln!(
                out,
                "churn over {:.0} s: {} sessions of {} addresses; {} create-based lifetimes ({} ended, {} still up)",
                c.window.length(),
                c.sessions.len(),
                peers.len(),
                c.lifetimes.len(),
                ended,
                c.lifetimes.len() - ended
            );
        }
        Err(e) => {
            let _ = writeln!(out, "churn: {e}");
        }
    }
    out
}

/// One CSV field (RFC 4180 quoting).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn write_csv(dir: &Path, snapshots: &[Snapshot]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut nodes = String::from("snapshot,addr,role,status,user_agent,listen_addr,reported_by,rtt_ms,error\r\n");
    let mut edges = String::from("snapshot,a,b,kind\r\n");
    for (i, s) in snapshots.iter().enumerate() {
        for (addr, n) in &s.nodes {
            let _ = write!(
                nodes,
                "{i},{addr},{},{},{},{},{},{},{}\r\n",
                n.role.as_str(),
                n.status.label(),
                field(n.user_agent.as_deref().unwrap_or("")),
                n.listen_addr.map(|l| l.to_string()).unwrap_or_default(),
                n.reported_by.len(),
                n.rtt
                    .map(|r| format!("{:.3}", r.as_secs_f64() * 1000.0))
                    .unwrap_or_default(),
                field(n.error.as_deref().unwrap_or("")),
            );
        }
        for (x, y) in &s.edges {
            let kind = format!("{}-{}", s.role(*x).as_str(), s.role(*y).as_str());
            let _ = write!(edges, "{i},{x},{y},{kind}\r\n");
        }
    }
    std::fs::write(dir.join("nodes.csv"), nodes)?;
    std::fs::write(dir.join("edges.csv"), edges)?;
    if snapshots.len() > 1
        && let Ok(c) = churn(snapshots)
    {
        let mut sessions = String::from("addr,start_s,end_s,left_censored,right_censored\r\n");
        for s in &c.sessions {
            let _ = write!(
                sessions,
                "{},{:.3},{:.3},{},{}\r\n",
                s.peer, s.start, s.end, s.left_censored, s.right_censored
            );
        }
        std::fs::write(dir.join("sessions.csv"), sessions)?;
    }
    Ok(())
}

async fn run_query(a: QueryArgs, engine: Engine) -> anyhow::Result<()> {
    let cfg = QueryConfig {
        ttl: a.ttl,
        wait: a.wait,
        max_hits: a.max_hits,
        user_agent: a.user_agent.clone(),
        ..QueryConfig::new(a.text.clone())
    };
    let outcome = query(&engine, a.addr, &cfg)
        .await
        .with_context(|| format!("query of {}", a.addr))?;
    print!("{}", describe_hits(&outcome));
    if !a.verify {
        return Ok(());
    }
    let dl = DownloadConfig {
        max_size: a.max_download,
        user_agent: a.user_agent.clone(),
    };
    let mut served = Vec::new();
    let results = outcome
        .hits
        .iter()
        .flat_map(|h| h.hit.results.iter().map(move |r| (h.responder(), r)));
    for (responder, r) in results.take(a.verify_max) {
        let name = String::from_utf8_lossy(&r.name);
        match verify_hit(&engine, responder, r, &dl).await {
            Ok(check) => {
                let verdict = if check.genuine() { "genuine" } else { "MISMATCH" };
                println!(
                    "  {verdict:<8} {responder} {:?}: served {} bytes, SHA-1 {}",
                    name,
                    check.served_size,
                    InfoHash(check.served_sha1).to_base32()
                );
                served.push(check.served_file());
            }
            Err(e) => println!("  failed   {responder} {name:?}: {e}"),
        }
    }
    let report = pollution_report(&outcome.analysis_hits(), &served, &PollutionConfig::default());
    for c in &report.crowded {
        println!(
            "  crowded /24 {}: {} hits ({:.0} %) from {} responders",
            c.subnet,
            c.hits,
            c.share * 100.0,
            c.responders.len()
        );
    }
    println!(
        "pollution: {} crowded subnets, {} of {} downloads mismatched",
        report.crowded.len(),
        report.mismatched.len(),
        served.len()
    );
    Ok(())
}

/// The hits in words.
fn describe_hits(o: &QueryOutcome) -> String {
    let mut out = String::new();
    let results: usize = o.hits.iter().map(|h| h.hit.results.len()).sum();
    let _ = writeln!(
        out,
        "{} ({}): {} QueryHits, {} results, {} pings answered, {} descriptors, ended {:?}",
        o.ultrapeer,
        o.user_agent.as_deref().unwrap_or("no User-Agent").escape_debug(),
        o.hits.len(),
        results,
        o.pings_answered,
        o.messages,
        o.end
    );
    for h in &o.hits {
        let _ = writeln!(
            out,
            "  from {} servent {} ({} hops)",
            h.responder(),
            to_hex(&h.hit.servent_id.0),
            h.hops
        );
        for r in &h.hit.results {
            let sha1 = r.sha1().map_or_else(|| "-".to_owned(), |s| InfoHash(s).to_base32());
            let _ = writeln!(
                out,
                "    #{:<6} {:>12} bytes  {}  {:?}",
                r.file_index,
                r.file_size,
                sha1,
                String::from_utf8_lossy(&r.name)
            );
        }
    }
    out
}
