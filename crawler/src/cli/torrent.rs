//! What a peer or tracker command is about: a `.torrent` file or a bare info-hash.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::metainfo::Metainfo;

use super::info::read_torrent;

/// `--torrent FILE` or `--info-hash HEX`, exactly one.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct TorrentArg {
    /// The .torrent file (gives the info-hash, and the piece count and hashes).
    #[arg(long, value_name = "FILE")]
    torrent: Option<PathBuf>,
    /// The info-hash, 40 hex or 32 base32 characters.
    #[arg(long, value_name = "HASH", value_parser = parse_info_hash)]
    info_hash: Option<InfoHash>,
}

/// The info-hash, and the torrent when a file was given.
pub(crate) struct Torrent {
    pub(crate) info_hash: InfoHash,
    pub(crate) metainfo: Option<Metainfo>,
}

impl TorrentArg {
    /// Reads the file if one was given.
    pub(crate) fn load(&self) -> anyhow::Result<Torrent> {
        match (&self.torrent, self.info_hash) {
            (Some(path), _) => {
                let m = read_torrent(path)?;
                Ok(Torrent {
                    info_hash: m.info_hash,
                    metainfo: Some(m),
                })
            }
            (None, Some(info_hash)) => Ok(Torrent {
                info_hash,
                metainfo: None,
            }),
            (None, None) => anyhow::bail!("give --torrent or --info-hash"),
        }
    }
}

/// An info-hash argument.
pub(crate) fn parse_info_hash(text: &str) -> Result<InfoHash, String> {
    InfoHash::parse(text).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path`, saying what it was.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Raw bytes from a peer (ids, client names) for a terminal: printable ASCII kept, the rest
/// as `\xNN`.
pub(crate) fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}
