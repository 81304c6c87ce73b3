//! `onionlab-crawl peer`: handshake with one peer and show what it says about itself.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use onionlab_crawler::engine::Engine;
use onionlab_crawler::probe::peer::{PeerConfig, PeerSession, PiecesHeld};
use onionlab_crawler::probe::to_hex;

use super::parse_duration;
use super::torrent::{TorrentArg, printable};

/// Peer session options (peer, metadata, piece, swarm).
#[derive(Args)]
pub(crate) struct PeerOpts {
    /// After the handshake, how long to wait for the extension handshake and the bitfield.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    settle: Duration,
}

impl PeerOpts {
    pub(crate) fn config(&self) -> PeerConfig {
        PeerConfig {
            settle: self.settle,
            ..PeerConfig::default()
        }
    }
}

/// Arguments of `peer`.
#[derive(Args)]
pub(crate) struct PeerArgs {
    /// The peer, ip:port.
    addr: SocketAddr,
    #[command(flatten)]
    torrent: TorrentArg,
    #[command(flatten)]
    peer: PeerOpts,
}

pub(crate) async fn run(args: PeerArgs, engine: Engine) -> anyhow::Result<()> {
    let torrent = args.torrent.load()?;
    let total = torrent
        .metainfo
        .as_ref()
        .and_then(|m| u32::try_from(m.info.pieces.len()).ok());
    let session = PeerSession::open(&engine, &args.peer.config(), args.addr, torrent.info_hash, total).await?;
    let hello = session.hello();
    let hs = &hello.handshake;
    println!("peer:          {}", args.addr);
    println!("peer id:       {} ({})", to_hex(&hs.peer_id), printable(&hs.peer_id));
    let mut bits = Vec::new();
    if hs.supports_extensions() {
        bits.push("extensions");
    }
    if hs.supports_dht() {
        bits.push("dht");
    }
    if hs.reserved[7] & 0x04 != 0 {
        bits.push("fast");
    }
    println!("reserved:      {} ({})", to_hex(&hs.reserved), bits.join(", "));
    println!(
        "client:        {}",
        hello.client().map_or_else(|| "-".to_string(), printable)
    );
    let held = match (session.held(), session.state().pieces_have) {
        (PiecesHeld::Unknown, _) => "not said".to_string(),
        (PiecesHeld::All, None) => "all".to_string(),
        (_, Some(n)) => match total {
            Some(t) => format!("{n}/{t}"),
            None => n.to_string(),
        },
        (_, None) => "-".to_string(),
    };
    println!("pieces:        {held}");
    if let Some(ext) = &hello.ext {
        let names: Vec<String> = ext
            .m
            .iter()
            .map(|(name, id)| format!("{}={id}", printable(name)))
            .collect();
        println!("extensions:    {}", names.join(" "));
        if let Some(ip) = hello.yourip() {
            println!("yourip:        {ip}");
        }
        if let Some(r) = ext.reqq {
            println!("reqq:          {r}");
        }
        if let Some(n) = ext.metadata_size {
            println!("metadata size: {n}");
        }
        if let Some(p) = ext.p {
            println!("listen port:   {p}");
        }
    }
    Ok(())
}
