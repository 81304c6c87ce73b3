//! `onionlab-crawl info`: what a .torrent file says, and the non-canonical forms it uses.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use onionlab_crawler::magnet::Magnet;
use onionlab_crawler::metainfo::{Layout, Metainfo};

/// Arguments of `info`.
#[derive(Args)]
pub(crate) struct InfoArgs {
    /// The .torrent file.
    torrent: PathBuf,
}

/// Largest .torrent file read (the metainfo parser has its own limits below this).
const MAX_TORRENT_FILE: u64 = 64 << 20;

/// Read a .torrent file, bounded in size.
pub(crate) fn read_torrent(path: &std::path::Path) -> anyhow::Result<Metainfo> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    anyhow::ensure!(
        len <= MAX_TORRENT_FILE,
        "{} is {len} bytes, over the {MAX_TORRENT_FILE}-byte limit",
        path.display()
    );
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Metainfo::parse(&bytes).with_context(|| format!("{} is not a usable .torrent file", path.display()))
}

pub(crate) fn run(args: InfoArgs) -> anyhow::Result<()> {
    let m = read_torrent(&args.torrent)?;
    println!("name:         {}", String::from_utf8_lossy(&m.info.name));
    println!("info-hash:    {}", m.info_hash.to_hex());
    println!("size:         {} bytes", m.info.total_length());
    println!("pieces:       {} of {} bytes", m.info.pieces.len(), m.info.piece_length);
    if let Layout::Multi { files } = &m.info.layout {
        println!("files:        {}", files.len());
    }
    if let Some(a) = &m.announce {
        println!("announce:     {a}");
    }
    for tier in &m.announce_list {
        println!("tier:         {}", tier.join(" "));
    }
    let mut magnet = Magnet::new(m.info_hash);
    magnet.display_name = Some(String::from_utf8_lossy(&m.info.name).into_owned());
    magnet.trackers = m.announce.iter().cloned().collect();
    println!("magnet:       {magnet}");
    for d in &m.deviations {
        println!("non-canonical: {d}");
    }
    Ok(())
}
