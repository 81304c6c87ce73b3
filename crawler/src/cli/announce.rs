//! `onionlab-crawl announce`: one tracker announce (HTTP or UDP), printed.

use std::time::Duration;

use clap::{Args, ValueEnum};
use onionlab_crawler::engine::Engine;
use onionlab_crawler::probe::http::HttpConfig;
use onionlab_crawler::probe::random_peer_id;
use onionlab_crawler::probe::tracker::{TrackerClient, TrackerConfig};
use onionlab_crawler::probe::udp_tracker::UdpConfig;
use onionlab_crawler::tracker::Event;
use onionlab_crawler::tracker::http::{AnnounceRequest, PeerAddr};

use super::parse_duration;
use super::torrent::{TorrentArg, printable};

/// Tracker transport options (announce, scrape, swarm).
#[derive(Args)]
pub(crate) struct TrackerOpts {
    /// UDP trackers: wait this long for the first answer, then twice as long for each
    /// retransmission (BEP 15 says 15s), until --timeout ends the attempt.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    udp_base: Duration,
    /// HTTP trackers: the largest reply body accepted, in bytes.
    #[arg(long, default_value_t = 2 << 20)]
    max_body: usize,
}

impl TrackerOpts {
    pub(crate) fn config(&self) -> TrackerConfig {
        TrackerConfig {
            http: HttpConfig {
                max_body: self.max_body,
                ..HttpConfig::default()
            },
            udp: UdpConfig {
                base_timeout: self.udp_base,
                ..UdpConfig::default()
            },
        }
    }
}

/// The `event` of an announce.
#[derive(Clone, Copy, ValueEnum)]
enum EventArg {
    /// A regular announce.
    None,
    /// The first announce of a download.
    Started,
    /// The download finished.
    Completed,
    /// Leaving the swarm.
    Stopped,
}

/// Arguments of `announce`.
#[derive(Args)]
pub(crate) struct AnnounceArgs {
    /// The announce URL: http://host[:port]/path or udp://host:port.
    url: String,
    #[command(flatten)]
    torrent: TorrentArg,
    /// The announce event.
    #[arg(long, value_enum, default_value = "none")]
    event: EventArg,
    /// The port we claim to listen on (nothing listens there: the crawler only asks).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// Peers wanted.
    #[arg(long, default_value_t = 200)]
    numwant: u32,
    /// Bytes left to download (default: the torrent's size, or 1 with --info-hash, so the
    /// tracker counts us as a leecher and not as a seeder).
    #[arg(long)]
    left: Option<u64>,
    #[command(flatten)]
    tracker: TrackerOpts,
}

pub(crate) async fn run(args: AnnounceArgs, engine: Engine) -> anyhow::Result<()> {
    let torrent = args.torrent.load()?;
    let left = args
        .left
        .or_else(|| torrent.metainfo.as_ref().map(|m| m.info.total_length()))
        .unwrap_or(1);
    let req = AnnounceRequest {
        info_hash: torrent.info_hash,
        peer_id: random_peer_id(),
        port: args.port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: match args.event {
            EventArg::None => Event::None,
            EventArg::Started => Event::Started,
            EventArg::Completed => Event::Completed,
            EventArg::Stopped => Event::Stopped,
        },
        numwant: Some(args.numwant),
        key: None,
        tracker_id: None,
    };
    let client = TrackerClient::new(engine, args.tracker.config());
    let a = client.announce(&args.url, &req).await?;
    let count = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    println!("tracker:      {}", args.url);
    println!("info-hash:    {}", torrent.info_hash.to_hex());
    println!("interval:     {} s", a.interval);
    if let Some(m) = a.min_interval {
        println!("min interval: {m} s");
    }
    println!("seeders:      {}", count(a.seeders));
    println!("leechers:     {}", count(a.leechers));
    if let Some(w) = &a.warning {
        println!("warning:      {}", printable(w));
    }
    println!("peers:        {}", a.peers.len());
    for p in &a.peers {
        let addr = match &p.addr {
            PeerAddr::Ip(a) => a.to_string(),
            PeerAddr::Name(host, port) => format!("{host}:{port}"),
        };
        match &p.peer_id {
            Some(id) => println!("peer:         {addr} {}", printable(id)),
            None => println!("peer:         {addr}"),
        }
    }
    Ok(())
}
