//! `onionlab-crawl piece`: download one piece from a peer and check its SHA-1.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use onionlab_crawler::engine::Engine;
use onionlab_crawler::probe::peer::PeerSession;
use onionlab_crawler::probe::to_hex;
use sha1::{Digest, Sha1};

use super::info::read_torrent;
use super::peer::PeerOpts;
use super::torrent::write_file;

/// Arguments of `piece`.
#[derive(Args)]
pub(crate) struct PieceArgs {
    /// The peer, ip:port.
    addr: SocketAddr,
    /// The .torrent file (the piece hashes to check against).
    #[arg(long, value_name = "FILE")]
    torrent: PathBuf,
    /// The piece index.
    #[arg(long)]
    piece: u32,
    /// Write the verified piece to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    peer: PeerOpts,
}

pub(crate) async fn run(args: PieceArgs, engine: Engine) -> anyhow::Result<()> {
    let m = read_torrent(&args.torrent)?;
    let total = u32::try_from(m.info.pieces.len()).ok();
    let mut session = PeerSession::open(&engine, &args.peer.config(), args.addr, m.info_hash, total).await?;
    let piece = session.download_piece(&engine, &m.info, args.piece).await?;
    println!("peer:   {}", args.addr);
    println!(
        "piece:  {} ({} bytes, SHA-1 {}) ok",
        piece.piece,
        piece.data.len(),
        to_hex(&Sha1::digest(&piece.data))
    );
    if let Some(path) = &args.out {
        write_file(path, &piece.data)?;
        println!("written: {}", path.display());
    }
    Ok(())
}
