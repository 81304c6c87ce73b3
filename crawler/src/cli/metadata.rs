//! `onionlab-crawl metadata`: fetch a torrent's info dictionary from a peer (BEP 9).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use onionlab_crawler::engine::Engine;
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::probe::peer::PeerSession;

use super::peer::PeerOpts;
use super::torrent::{parse_info_hash, printable, write_file};

/// Arguments of `metadata`.
#[derive(Args)]
pub(crate) struct MetadataArgs {
    /// The peer, ip:port.
    addr: SocketAddr,
    /// The info-hash, 40 hex or 32 base32 characters.
    #[arg(long, value_name = "HASH", value_parser = parse_info_hash)]
    info_hash: InfoHash,
    /// Write a .torrent file (the info dictionary byte for byte, so the info-hash holds).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The tracker to name in the .torrent file's `announce`.
    #[arg(long, value_name = "URL", requires = "out")]
    announce: Option<String>,
    #[command(flatten)]
    peer: PeerOpts,
}

pub(crate) async fn run(args: MetadataArgs, engine: Engine) -> anyhow::Result<()> {
    let mut session = PeerSession::open(&engine, &args.peer.config(), args.addr, args.info_hash, None).await?;
    let metadata = session.fetch_metadata(&engine).await?;
    let m = metadata.metainfo()?;
    println!("peer:          {}", args.addr);
    println!("info-hash:     {} (verified)", m.info_hash.to_hex());
    println!("metadata size: {} bytes", metadata.info.len());
    println!("name:          {}", printable(&m.info.name));
    println!("size:          {} bytes", m.info.total_length());
    println!(
        "pieces:        {} of {} bytes",
        m.info.pieces.len(),
        m.info.piece_length
    );
    if let Some(path) = &args.out {
        write_file(path, &metadata.to_torrent(args.announce.as_deref()))?;
        println!("written:       {}", path.display());
    }
    Ok(())
}
