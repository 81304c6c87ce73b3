//! One peer run by hand (`onionlab bt seed`, `onionlab bt leech`, `onionlab bt tracker`), so
//! that other BitTorrent clients can trade with ours: a seed that writes the `.torrent` it
//! serves, a leecher that reads any single-file `.torrent` and writes the verified content.
//! Files are read with a size limit ([`MAX_CONTENT`] for content, [`MAX_TORRENT`] for
//! metainfo).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use onionlab_crawler::metainfo::{Metainfo, MetainfoError};
use thiserror::Error;

use super::client::ClientConfig;
use super::node::{Node, NodeConfig, NodeError, NodeReport};
use super::torrent::{MAX_CONTENT, PieceStore, TorrentError, make_torrent};

/// The largest `.torrent` read.
pub const MAX_TORRENT: u64 = 16 << 20;

/// Why a standalone peer could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StandaloneError {
    /// A file could not be read or written (or is over its size limit).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The content cannot be a torrent.
    #[error(transparent)]
    Torrent(#[from] TorrentError),
    /// The `.torrent` does not parse.
    #[error(transparent)]
    Metainfo(#[from] MetainfoError),
    /// The `.torrent` names no HTTP tracker.
    #[error("the torrent has no announce URL")]
    NoTracker,
    /// The node did not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The download did not finish in time.
    #[error("not complete after {0:?}")]
    Timeout(Duration),
}

fn read(path: &Path, max: u64) -> Result<Vec<u8>, StandaloneError> {
    let bad = |message: String| StandaloneError::File {
        path: path.to_path_buf(),
        message,
    };
    let len = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
    if len > max {
        return Err(bad(format!("{len} bytes, over the {max}-byte limit")));
    }
    std::fs::read(path).map_err(|e| bad(e.to_string()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), StandaloneError> {
    std::fs::write(path, bytes).map_err(|e| StandaloneError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Seeds `file` from `ip:port`: writes its `.torrent` (announcing to `announce`, pieces of
/// `piece_length`) to `torrent`, then serves it until the node is dropped.
pub async fn seed(
    file: &Path,
    torrent: &Path,
    announce: &str,
    piece_length: u32,
    cfg: NodeConfig,
) -> Result<Node, StandaloneError> {
    let content = read(file, MAX_CONTENT)?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("payload.bin");
    let made = make_torrent(name, &content, piece_length, announce)?;
    write(torrent, &made.bytes)?;
    let store = PieceStore::with_content(&made.metainfo.info, &content, |_| true)?;
    Ok(Node::start(cfg, made.metainfo.info_hash, announce, store).await?)
}

/// Downloads the single-file torrent `torrent` from its swarm as a peer at `ip` (standard
/// strategy), writes the content to `out` once every piece has passed its check, and leaves.
pub async fn leech(torrent: &Path, ip: IpAddr, out: &Path, deadline: Duration) -> Result<NodeReport, StandaloneError> {
    let meta = Metainfo::parse(&read(torrent, MAX_TORRENT)?)?;
    let announce = meta
        .announce
        .clone()
        .or_else(|| meta.announce_list.iter().flatten().next().cloned())
        .filter(|u| u.starts_with("http://"))
        .ok_or(StandaloneError::NoTracker)?;
    let store = PieceStore::empty(&meta.info)?;
    let node = Node::start(
        NodeConfig::new("leecher", ip, ClientConfig::default()),
        meta.info_hash,
        &announce,
        store,
    )
    .await?;
    if tokio::time::timeout(deadline, node.complete()).await.is_err() {
        node.stop().await;
        return Err(StandaloneError::Timeout(deadline));
    }
    if let Some(content) = node.content() {
        write(out, &content)?;
    }
    Ok(node.stop().await)
}
