//! `onionlab`: the teaching testbed's command.

use clap::{Parser, Subcommand};
use onionlab_experiments::testbed::{Testbed, TestbedConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// onionlab: an onion-routing overlay and P2P measurement testbed.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole onion network on loopback: voting directory authorities, relays on 127.0.i.1
    /// (all exits), the SOCKS5 proxy and a demo web site. Browse through it, then Ctrl-C.
    Testbed {
        /// Number of relays (3..=199).
        #[arg(long, default_value_t = 6)]
        relays: usize,
        /// SOCKS5 listen address (loopback only).
        #[arg(long, default_value = "127.0.0.1:9050")]
        socks: SocketAddr,
        /// Demo site address.
        #[arg(long, default_value = "127.0.0.1:8000")]
        demo: SocketAddr,
        /// First directory authority's HTTP address (the k-th is on 127.0.254.k, same port).
        #[arg(long, default_value = "127.0.254.1:7000")]
        authority: SocketAddr,
        /// Number of voting directory authorities (1..=9).
        #[arg(long, default_value_t = 3)]
        authorities: usize,
        /// Extra relays run by one adversary, all on 127.0.200.1 (the authorities list at most 2).
        #[arg(long, default_value_t = 0)]
        sybil_relays: usize,
        /// Relays' OR port (0 picks free ports).
        #[arg(long, default_value_t = 9001)]
        relay_port: u16,
        /// Size of the demo site's /large.bin in MiB.
        #[arg(long, default_value_t = 64)]
        large_mib: u64,
        /// Keep keys and state here (default: a temporary directory removed at exit).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Give exits the default exit policy, which refuses loopback destinations.
        #[arg(long)]
        default_exit_policy: bool,
    },
    /// Run a Gnutella 0.6 overlay on loopback (ultrapeers and leaves on their own 127.x.y.z,
    /// QRP, HTTP downloads, optional adversaries and churn), print its addresses, then Ctrl-C.
    Gnutella {
        /// A YAML overlay configuration (the flags below override it).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Honest ultrapeers.
        #[arg(long)]
        ultrapeers: Option<usize>,
        /// Leaves.
        #[arg(long)]
        leaves: Option<usize>,
        /// PRNG seed (same seed, same overlay).
        #[arg(long)]
        seed: Option<u64>,
        /// First address of the honest /16 (Sybils take the next /16).
        #[arg(long)]
        base_ip: Option<std::net::Ipv4Addr>,
        /// Port every node listens on.
        #[arg(long)]
        port: Option<u16>,
        /// Ultrapeer graph: random or preferential.
        #[arg(long)]
        topology: Option<String>,
        /// Sybil ultrapeers.
        #[arg(long)]
        sybils: Option<usize>,
        /// Poisoning leaves.
        #[arg(long)]
        poisoners: Option<usize>,
        /// Free-riding leaves.
        #[arg(long)]
        free_riders: Option<usize>,
        /// Turn churn on with the default Weibull sessions and downtimes.
        #[arg(long)]
        churn: bool,
    },
    /// Measure a testbed on free ports: launch to first byte, circuit build p50/p99, and a
    /// bulk download through 3 hops against the same download direct (build with --release).
    Bench {
        /// Size of the bulk file in MiB.
        #[arg(long, default_value_t = 64)]
        mib: u64,
        /// Fresh circuits to build for the build-time distribution.
        #[arg(long, default_value_t = 200)]
        circuits: usize,
        /// Direct/3-hop download pairs (the best of each is kept).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Load a 3-relay testbed: many circuits and streams at once, every body checked by
    /// SHA-256, and the process's peak memory reported (build with --release).
    Loadtest {
        /// Circuits (one isolation group each).
        #[arg(long, default_value_t = 1000)]
        circuits: usize,
        /// Streams, spread over the circuits.
        #[arg(long, default_value_t = 5000)]
        streams: usize,
        /// Bytes downloaded per stream.
        #[arg(long, default_value_t = 65536)]
        bytes: u64,
        /// Streams in flight at once.
        #[arg(long, default_value_t = 500)]
        parallel: usize,
        /// Run relay 1 from this `onionlab-relay` binary, to report its memory alone
        /// (default: the one beside this program, if built).
        #[arg(long)]
        relay_binary: Option<PathBuf>,
    },
    /// Run a campaign: the experiment its file names (a seeded simulation, or a loopback
    /// testbed and a measurement of it), or a measurement (a testbed: swarm or DHT started on
    /// loopback, and/or real targets:, crawled by the probes: for the duration:), then its
    /// checks, and FOLDER/report.html with the measured values next to the published ones and
    /// the plots. Exits non-zero when a check fails. Ctrl-C stops; `--resume` keeps what an
    /// earlier run left (a finished run's results, an interrupted crawl).
    Run {
        /// The campaign file (see experiments/campaigns/ and the README for the schema).
        campaign: PathBuf,
        /// Keep what an earlier run of this campaign left in its output folder.
        #[arg(long)]
        resume: bool,
    },
    /// Our BitTorrent peer by hand (for interop with other clients, on loopback).
    Bt {
        #[command(subcommand)]
        action: BtAction,
    },
    /// Rebuild FOLDER/report.html from FOLDER/results.json (what `onionlab run` left there).
    Report {
        /// A report folder.
        folder: PathBuf,
    },
}

/// `onionlab bt ...`.
#[derive(Subcommand)]
enum BtAction {
    /// A minimal HTTP tracker (compact peers) until Ctrl-C.
    Tracker {
        /// Where it listens.
        #[arg(long, default_value = "127.0.0.1:6969")]
        listen: SocketAddr,
    },
    /// Seed FILE: write its .torrent, then serve it until Ctrl-C.
    Seed {
        /// The content.
        file: PathBuf,
        /// Where to write the .torrent.
        #[arg(long)]
        torrent: PathBuf,
        /// The tracker's announce URL.
        #[arg(long, default_value = "http://127.0.0.1:6969/announce")]
        announce: String,
        /// Our address.
        #[arg(long, default_value = "127.0.1.1")]
        ip: std::net::IpAddr,
        /// Our port.
        #[arg(long, default_value_t = 6881)]
        port: u16,
        /// Piece size in KiB.
        #[arg(long, default_value_t = 64)]
        piece_kib: u32,
        /// Upload limit in KiB/s (default: none).
        #[arg(long)]
        upload_kibps: Option<f64>,
    },
    /// Download TORRENT from its swarm, write the verified content to --out, and leave.
    Leech {
        /// The .torrent (single file, HTTP tracker).
        torrent: PathBuf,
        /// Where to write the content.
        #[arg(long)]
        out: PathBuf,
        /// Our address.
        #[arg(long, default_value = "127.0.3.1")]
        ip: std::net::IpAddr,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // An experiment starts whole testbeds in-process: their info lines would bury the progress
    // line and the results (RUST_LOG=info brings them back).
    match args.command {
        Command::Run { .. } => onionlab_link::logging::init_with_default("warn"),
        _ => onionlab_link::logging::init(),
    }
    match args.command {
        Command::Testbed {
            relays,
            socks,
            demo,
            authority,
            relay_port,
            large_mib,
            data_dir,
            default_exit_policy,
            authorities,
            sybil_relays,
        } => {
            let cfg = TestbedConfig {
                relays,
                relay_port,
                authority,
                socks,
                demo,
                large_file: large_mib * 1024 * 1024,
                data_dir,
                default_exit_policy,
                authorities,
                sybil_relays,
                ..TestbedConfig::default()
            };
            let testbed = Testbed::start(cfg, Duration::from_secs(20)).await?;
            println!("{}", testbed.banner());
            tokio::signal::ctrl_c().await?;
            println!("stopping");
            drop(testbed);
            Ok(())
        }
        Command::Loadtest {
            circuits,
            streams,
            bytes,
            parallel,
            relay_binary,
        } => {
            let beside = std::env::current_exe()?.with_file_name("onionlab-relay");
            let relay_binary = relay_binary.or_else(|| beside.exists().then_some(beside));
            let report = onionlab_experiments::perf::load(circuits, streams, bytes, parallel, relay_binary).await?;
            println!("{}", report.render());
            anyhow::ensure!(
                report.verified == streams,
                "{} of {streams} streams failed or did not verify",
                streams - report.verified
            );
            Ok(())
        }
        Command::Gnutella {
            config,
            ultrapeers,
            leaves,
            seed,
            base_ip,
            port,
            topology,
            sybils,
            poisoners,
            free_riders,
            churn,
        } => {
            use onionlab_experiments::gnutella::{ChurnConfig, Overlay, OverlayConfig, Role, TopologyModel};
            let mut cfg: OverlayConfig = match config {
                Some(path) => serde_saphyr::from_str(&std::fs::read_to_string(&path)?)?,
                None => OverlayConfig::default(),
            };
            cfg.ultrapeers = ultrapeers.unwrap_or(cfg.ultrapeers);
            cfg.leaves = leaves.unwrap_or(cfg.leaves);
            cfg.seed = seed.unwrap_or(cfg.seed);
            cfg.base_ip = base_ip.unwrap_or(cfg.base_ip);
            cfg.port = port.unwrap_or(cfg.port);
            cfg.sybils.count = sybils.unwrap_or(cfg.sybils.count);
            cfg.poisoners.count = poisoners.unwrap_or(cfg.poisoners.count);
            cfg.free_riders = free_riders.unwrap_or(cfg.free_riders);
            match topology.as_deref() {
                None => {}
                Some("random") => cfg.topology = TopologyModel::Random,
                Some("preferential") => cfg.topology = TopologyModel::Preferential,
                Some(other) => anyhow::bail!("--topology is random or preferential, not {other}"),
            }
            if churn {
                cfg.churn = Some(ChurnConfig::default());
            }
            let overlay = Overlay::start(cfg, Duration::from_secs(120)).await?;
            let truth = overlay.truth();
            for n in truth.nodes.iter().filter(|n| n.role == Role::Ultrapeer) {
                let (ups, leaves) = truth.neighbours(n.index);
                println!(
                    "ultrapeer {} {:?}: {} ultrapeers, {} leaves",
                    n.addr,
                    n.behaviour,
                    ups.len(),
                    leaves.len()
                );
            }
            let leaves = truth.nodes.iter().filter(|n| n.role == Role::Leaf).count();
            println!(
                "{leaves} leaves; {} ultrapeer links, {} leaf links; crawl any ultrapeer above, Ctrl-C to stop",
                truth.ultrapeer_edges.len(),
                truth.leaf_edges.len()
            );
            tokio::signal::ctrl_c().await?;
            println!("stopping");
            overlay.stop().await;
            Ok(())
        }
        Command::Run { campaign, resume } => {
            use onionlab_experiments::campaign::{Campaign, RunOptions, run};
            let campaign = Campaign::load(&campaign)?;
            let stop = async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let done = run(&campaign, RunOptions { resume }, stop).await?;
            if done.reused {
                println!("results of the earlier run kept (--resume); report rebuilt");
            }
            for m in &done.outcome.measurements {
                let published = m
                    .published
                    .as_ref()
                    .map(|p| format!(" (published {} — {})", p.value, p.source))
                    .unwrap_or_default();
                println!("{:<28} {} {}{published}", m.name, m.value, m.unit);
            }
            for c in &done.checks {
                let measured = c.measured.map_or_else(|| "not measured".to_owned(), |v| v.to_string());
                let verdict = if c.passed { "PASS" } else { "FAIL" };
                println!(
                    "{verdict} {} = {measured} (expected {} {})",
                    c.measurement, c.expected, c.tolerance
                );
            }
            println!("report: {}", done.report.display());
            anyhow::ensure!(done.passed(), "some checks failed");
            Ok(())
        }
        Command::Bt { action } => {
            use onionlab_experiments::swarm::{client::ClientConfig, node::NodeConfig, standalone, tracker};
            match action {
                BtAction::Tracker { listen } => {
                    let t = tracker::Tracker::start(tracker::TrackerConfig {
                        listen,
                        ..Default::default()
                    })
                    .await?;
                    println!("tracker {}", t.url());
                    tokio::signal::ctrl_c().await?;
                }
                BtAction::Seed {
                    file,
                    torrent,
                    announce,
                    ip,
                    port,
                    piece_kib,
                    upload_kibps,
                } => {
                    let mut cfg = NodeConfig::new("seed", ip, ClientConfig::default());
                    cfg.port = port;
                    cfg.upload_limit = upload_kibps.map(|k| k * 1024.0);
                    let node = standalone::seed(&file, &torrent, &announce, piece_kib * 1024, cfg).await?;
                    println!("seeding {} from {}", file.display(), node.addr());
                    tokio::signal::ctrl_c().await?;
                    let r = node.stop().await;
                    println!("uploaded {} bytes", r.stats.uploaded);
                }
                BtAction::Leech {
                    torrent,
                    out,
                    ip,
                    timeout_secs,
                } => {
                    let r = standalone::leech(&torrent, ip, &out, Duration::from_secs(timeout_secs)).await?;
                    println!(
                        "downloaded {} bytes in {:.2} s ({} hash failures, {} peers dropped)",
                        r.stats.downloaded,
                        r.completed_after.unwrap_or_default().as_secs_f64(),
                        r.stats.hash_failures,
                        r.stats.dropped.len()
                    );
                }
            }
            Ok(())
        }
        Command::Report { folder } => {
            println!("{}", onionlab_experiments::report::rebuild(&folder)?.display());
            Ok(())
        }
        Command::Bench { mib, circuits, rounds } => {
            let report = onionlab_experiments::perf::measure(mib, circuits, rounds).await?;
            println!("{}", report.render());
            Ok(())
        }
    }
}
