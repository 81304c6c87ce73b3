//! The command line: global options shared by every probe, and one module per subcommand group.

mod announce;
mod dht;
mod export;
mod gnutella;
mod info;
mod metadata;
mod peer;
mod piece;
mod progress;
mod run;
mod scrape;
mod swarm;
mod torrent;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::store::{CrawlEnd, CrawlId, Recording, Store};

/// onionlab-crawl: measure BitTorrent trackers, peers, the Mainline DHT and Gnutella, byte for byte.
///
/// Every probe goes through one engine: at most --concurrency attempts at once, at most one
/// attempt per --per-ip-interval to any one IP address, a --timeout per attempt, and retries with
/// doubling backoff for attempts that got no answer.
#[derive(Parser)]
#[command(name = "onionlab-crawl", version, about, long_about)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options of every subcommand.
#[derive(ClapArgs)]
pub(crate) struct Common {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Attempts in flight at once.
    #[arg(long, global = true, default_value_t = 256)]
    concurrency: usize,
    /// Minimum time between two attempts to one IP address (politeness), e.g. 1s, 250ms.
    #[arg(long, global = true, default_value = "1s", value_parser = parse_duration)]
    per_ip_interval: Duration,
    /// Deadline of one attempt, e.g. 5s.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Attempts in all for a probe that gets no answer (1 = no retry).
    #[arg(long, global = true, default_value_t = 2)]
    attempts: u32,
    /// Record every observation in this store (SQLite; created if needed). Without it, probes
    /// only print.
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Continue an unfinished crawl instead of starting a new one: `--db FILE --resume ID` for
    /// a probe or crawl, plain `--resume` for `run` (its newest unfinished run).
    #[arg(long, global = true, value_name = "ID", num_args = 0..=1)]
    resume: Option<Option<CrawlId>>,
}

impl Common {
    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            concurrency: self.concurrency,
            per_ip_interval: self.per_ip_interval,
            timeout: self.timeout,
            attempts: self.attempts,
            ..EngineConfig::default()
        }
    }

    /// An engine under these options, recording to `recorder`.
    fn engine(&self, recorder: Recorder) -> Engine {
        Engine::new(self.engine_config(), recorder)
    }

    /// Where a crawl of `kind` (configured by `config`) records: a new or resumed crawl of --db,
    /// whose [`Recording::finish`] the caller awaits at the end; or nowhere without --db.
    fn recorder(&self, kind: &str, config: &str) -> anyhow::Result<(Recorder, Option<Recording>)> {
        let Some(db) = &self.db else {
            anyhow::ensure!(
                self.resume.is_none(),
                "--resume ID continues a crawl of --db FILE: give --db"
            );
            return Ok((Recorder::discard(), None));
        };
        let (recorder, recording) = match self.resume {
            Some(None) => anyhow::bail!("--resume needs the crawl id here (--db {} --resume ID)", db.display()),
            Some(Some(id)) => {
                let was = Store::open(db)?.crawl(id)?.kind;
                anyhow::ensure!(
                    was == kind,
                    "crawl {id} of {} is a {was:?} crawl, not {kind:?}",
                    db.display()
                );
                Recording::resume(db, id)?
            }
            None => Recording::begin(db, kind, config)?,
        };
        Ok((recorder, Some(recording)))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Show a .torrent file: name, size, pieces, info-hash, magnet link, non-canonical forms.
    Info(info::InfoArgs),
    /// Export a store's tables to Parquet and/or CSV, one file per table.
    Export(export::ExportArgs),
    /// Announce to a tracker (http:// or udp://) and print its interval, counts and peers.
    ///
    /// The crawler announces as a leecher that listens on --port (nothing listens there): the
    /// tracker will count it until an announce with --event stopped. UDP trackers get a connect
    /// first; HTTP trackers a plain HTTP/1.1 GET with compact=1.
    Announce(announce::AnnounceArgs),
    /// Ask a tracker for seeders, completed downloads and leechers of info-hashes (BEP 48, BEP 15).
    ///
    /// Prints one line per hash: `HASH seeders N completed N leechers N`.
    Scrape(scrape::ScrapeArgs),
    /// Handshake with a peer: peer id, client name (BEP 10 `v`), extensions, pieces held.
    ///
    /// Sends a BEP 3 handshake with the extension and DHT bits, checks that the peer answers
    /// for the same info-hash, exchanges BEP 10 handshakes and waits up to --settle for the
    /// peer's bitfield (or have_all/have_none).
    Peer(peer::PeerArgs),
    /// Fetch a torrent's metadata from a peer over ut_metadata (BEP 9) and check its info-hash.
    ///
    /// The info dictionary arrives in 16 KiB pieces; its SHA-1 must equal --info-hash. With
    /// --out it is written as a .torrent file, byte for byte.
    Metadata(metadata::MetadataArgs),
    /// Download one piece from a peer and check it against the .torrent's SHA-1.
    ///
    /// Sends `interested`, waits for `unchoke` and requests 16 KiB blocks, 16 at a time (or
    /// the peer's reqq). Exits with an error if the piece does not hash right. Peers may take
    /// a while to unchoke: raise --timeout if needed.
    Piece(piece::PieceArgs),
    /// Monitor a swarm: peers from trackers and PEX, visited every --interval, pieces checked.
    ///
    /// Each round announces to the trackers that are due, handshakes with every known peer
    /// (client, pieces held), listens --linger for PEX, and downloads --sample-pieces random
    /// pieces from each peer not checked yet. With --magnet the metadata is fetched from a peer
    /// first. Prints a summary per round: arrivals (+), departures (-) and each peer's state.
    Swarm(swarm::SwarmArgs),
    /// Mainline DHT: KRPC probes, a crawl, a loopback simulator and its benchmark.
    Dht(dht::DhtArgs),
    /// Run a measurement campaign from a YAML file: probes on schedules, one store, analyses.
    ///
    /// The campaign names its targets (DHT bootstrap nodes, torrents, magnets, info-hashes,
    /// trackers), its probes (dht_crawl, tracker, swarm) with their schedules, its duration, its
    /// output folder and its analyses (sessions, sybil, poisoning, size). Every probe runs
    /// through one engine under the campaign's `engine:` rules (politeness holds across probes).
    /// The output folder gets crawl.sqlite (every observation), summary.txt, parquet/ and csv/.
    /// Ctrl-C stops cleanly and writes what was measured; `run FILE --resume` continues for the
    /// time left. --dry-run prints the schedule and the first contacts without sending anything.
    /// The global engine options do not apply here: the campaign's `engine:` section does.
    Run(run::RunArgs),
    /// Print the summary (and rebuild the sessions) of a crawl in a store.
    Summary(run::SummaryArgs),
    /// Gnutella 0.6: topology snapshots with the crawler handshake, and a query as a leaf.
    Gnutella(gnutella::GnutellaArgs),
}

impl Command {
    /// The crawl kind this command records under --db; `None` for commands that record nothing.
    fn recorded_kind(&self) -> Option<&'static str> {
        match self {
            Command::Info(_) | Command::Export(_) | Command::Summary(_) | Command::Run(_) => None,
            Command::Announce(_) => Some("announce"),
            Command::Scrape(_) => Some("scrape"),
            Command::Peer(_) => Some("peer"),
            Command::Metadata(_) => Some("metadata"),
            Command::Piece(_) => Some("piece"),
            Command::Swarm(_) => Some("swarm"),
            Command::Dht(a) => a.recorded_kind(),
            Command::Gnutella(a) => a.recorded_kind(),
        }
    }
}

/// Run the chosen subcommand. With --db, its observations go to a crawl in the store, marked
/// finished at the end, or interrupted (and resumable with --resume) on Ctrl-C.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let Args { common, command } = args;
    if let Command::Run(a) = command {
        anyhow::ensure!(
            common.db.is_none(),
            "a campaign records into its own output folder; --db is not used with run"
        );
        return run::run(a, common.resume.is_some()).await;
    }
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let (recorder, recording) = match command.recorded_kind() {
        Some(kind) => common.recorder(kind, &command_line)?,
        None => (Recorder::discard(), None),
    };
    let engine = || common.engine(recorder.clone());
    let work = async {
        match command {
            Command::Info(a) => info::run(a),
            Command::Export(a) => export::run(a),
            Command::Summary(a) => run::summary(a),
            Command::Run(_) => unreachable!("run is handled above"),
            Command::Announce(a) => announce::run(a, engine()).await,
            Command::Scrape(a) => scrape::run(a, engine()).await,
            Command::Peer(a) => peer::run(a, engine()).await,
            Command::Metadata(a) => metadata::run(a, engine()).await,
            Command::Piece(a) => piece::run(a, engine()).await,
            Command::Swarm(a) => swarm::run(a, engine()).await,
            Command::Dht(a) => dht::run(a, &common, engine(), recording.as_ref()).await,
            Command::Gnutella(a) => gnutella::run(a, &common, recorder.clone()).await,
        }
    };
    let (result, end) = tokio::select! {
        r = work => (r, CrawlEnd::Finished),
        _ = tokio::signal::ctrl_c() => (Err(anyhow::anyhow!("interrupted (Ctrl-C)")), CrawlEnd::Interrupted),
    };
    if let Some(recording) = recording {
        let id = recording.crawl().id;
        let counts = recording.finish(end).await?;
        let db = common
            .db
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        eprintln!("recorded {} rows as crawl {id} in {db}", counts.total());
        if end == CrawlEnd::Interrupted {
            eprintln!("continue it with: --db {db} --resume {id}");
        }
    }
    result
}

/// `tracing` to stderr: warnings, plus the crawler's own info lines; `-v` debug, `-vv` trace.
pub(crate) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,onionlab_crawler=info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub(crate) use onionlab_crawler::campaign::parse_duration;

#[cfg(test)]
mod tests;
