//! `onionlab-crawl swarm`: monitor one swarm over rounds and check what its peers serve.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use onionlab_crawler::engine::Engine;
use onionlab_crawler::magnet::Magnet;
use onionlab_crawler::swarm::{RoundSummary, SwarmConfig, SwarmMonitor, SwarmTarget};

use super::announce::TrackerOpts;
use super::info::read_torrent;
use super::parse_duration;
use super::peer::PeerOpts;
use super::torrent::{printable, write_file};

/// `--torrent FILE` or `--magnet URI`, exactly one.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct SwarmSource {
    /// The .torrent file (trackers from `announce` and `announce-list`).
    #[arg(long, value_name = "FILE")]
    torrent: Option<PathBuf>,
    /// A magnet link (trackers from `tr`, peers from `x.pe`; the metadata is fetched from peers).
    #[arg(long, value_name = "URI")]
    magnet: Option<String>,
}

/// Arguments of `swarm`.
#[derive(Args)]
pub(crate) struct SwarmArgs {
    #[command(flatten)]
    source: SwarmSource,
    /// Rounds to run (default 1, or as many as fit in --duration).
    #[arg(long)]
    rounds: Option<u32>,
    /// Run rounds for this long, e.g. 10m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// From the start of one round to the start of the next.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    interval: Duration,
    /// Pieces to download and verify from each peer (once per peer; 0: none).
    #[arg(long, default_value_t = 1)]
    sample_pieces: u32,
    /// How long each session listens after the handshake for `have`s and PEX peers.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    linger: Duration,
    /// A peer to visit besides those the trackers and PEX give (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
    /// Most peer addresses kept.
    #[arg(long, default_value_t = 500)]
    max_peers: usize,
    /// Forget a peer that failed this many rounds in a row (until named again; 0: never).
    #[arg(long, default_value_t = 3)]
    forget_after: u32,
    /// The port announced to trackers (nothing listens there).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// Write the metadata fetched from peers as a .torrent file (with --magnet).
    #[arg(long, value_name = "FILE")]
    save_torrent: Option<PathBuf>,
    #[command(flatten)]
    tracker: TrackerOpts,
    #[command(flatten)]
    peer: PeerOpts,
}

pub(crate) async fn run(args: SwarmArgs, engine: Engine) -> anyhow::Result<()> {
    let mut target = match (&args.source.torrent, &args.source.magnet) {
        (Some(path), _) => SwarmTarget::from_metainfo(&read_torrent(path)?),
        (None, Some(uri)) => SwarmTarget::from_magnet(&Magnet::parse(uri)?),
        (None, None) => anyhow::bail!("give --torrent or --magnet"),
    };
    target.peers.extend(&args.peers);
    println!("swarm:  {}", target.info_hash.to_hex());
    for t in &target.trackers {
        println!("tracker: {t}");
    }
    let cfg = SwarmConfig {
        rounds: args.rounds,
        duration: args.duration,
        interval: args.interval,
        sample_pieces: args.sample_pieces,
        linger: args.linger,
        max_peers: args.max_peers,
        forget_after: args.forget_after,
        announce_port: args.port,
        peer: args.peer.config(),
        trackers: args.tracker.config(),
        ..SwarmConfig::default()
    };
    let monitor = SwarmMonitor::new(engine, cfg, target);
    let mut first_at = None;
    let report = monitor
        .run(|round| {
            let start = *first_at.get_or_insert(round.at);
            print_round(round, start);
        })
        .await;
    println!("rounds: {}, peers known: {}", report.rounds, report.peers_known);
    if let (Some(path), Some(m)) = (&args.save_torrent, &report.metadata) {
        write_file(path, &m.to_torrent(None))?;
        println!("metadata written: {}", path.display());
    }
    Ok(())
}

fn print_round(r: &RoundSummary, start: i64) {
    let (ok, bad) = r.pieces();
    println!(
        "round {} (+{:.1} s): known {}, reached {}, failed {}, arrivals {}, departures {}, pieces ok {} bad {}, metadata {}",
        r.round,
        (r.at - start) as f64 / 1e6,
        r.known,
        r.reached(),
        r.peers.len() - r.reached(),
        r.arrivals.len(),
        r.departures.len(),
        ok,
        bad,
        if r.metadata_known { "known" } else { "unknown" },
    );
    for t in &r.trackers {
        match &t.result {
            Ok((seeders, leechers, peers)) => {
                let n = |c: &Option<u64>| c.map_or_else(|| "-".to_string(), |c| c.to_string());
                println!(
                    "  tracker {}: seeders {}, leechers {}, peers {peers}",
                    t.url,
                    n(seeders),
                    n(leechers)
                );
            }
            Err(e) => println!("  tracker {}: {e}", t.url),
        }
    }
    for a in &r.arrivals {
        println!("  + {a}");
    }
    for d in &r.departures {
        println!("  - {d}");
    }
    for p in &r.peers {
        match &p.answer {
            Ok(seen) => {
                let pieces = match (seen.pieces_have, seen.pieces_total) {
                    (Some(h), Some(t)) => format!("{h}/{t}"),
                    (Some(h), None) => h.to_string(),
                    (None, _) => "?".to_string(),
                };
                let client = seen.client.as_deref().map_or_else(|| "-".to_string(), printable);
                println!(
                    "  {} ok client {client:?} pieces {pieces} checked ok {} bad {} pex +{}",
                    p.addr, p.pieces_ok, p.pieces_bad, p.pex_peers
                );
            }
            Err((outcome, e)) => println!("  {} {}: {e}", p.addr, outcome.as_str()),
        }
    }
}
