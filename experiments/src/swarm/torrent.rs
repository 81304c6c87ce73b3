//! The torrent a swarm shares: making a single-file `.torrent` for some bytes (parsed back
//! through the crawler's [`Metainfo`], so the info-hash is the one any client computes), its
//! geometry (pieces, 16 KiB blocks, the short last ones), and the [`PieceStore`] that holds the
//! content in memory and checks each piece's SHA-1 before it counts as held.

use onionlab_crawler::bencode::Value;
use onionlab_crawler::metainfo::{Info, Metainfo, MetainfoError};
use sha1::{Digest, Sha1};
use thiserror::Error;

use super::bitfield::Bitfield;

/// The block size every client requests: 16 KiB.
pub const BLOCK: u32 = 16 << 10;
/// The largest torrent held in memory here.
pub const MAX_CONTENT: u64 = 1 << 30;
/// The largest piece accepted.
pub const MAX_PIECE: u64 = 16 << 20;

/// Why a torrent cannot be made or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TorrentError {
    /// The metainfo does not parse.
    #[error(transparent)]
    Metainfo(#[from] MetainfoError),
    /// Empty content, a zero or oversized piece length, or content over [`MAX_CONTENT`].
    #[error("unusable torrent: {0}")]
    Unusable(String),
    /// The content given to a seed does not match the piece hashes.
    #[error("piece {0} of the content does not match its hash")]
    Mismatch(u32),
}

/// A `.torrent` file and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentFile {
    /// The bencoded file.
    pub bytes: Vec<u8>,
    /// The file parsed back.
    pub metainfo: Metainfo,
}

/// A single-file torrent named `name` for `content`, cut into pieces of `piece_length`, with
/// one tracker.
pub fn make_torrent(
    name: &str,
    content: &[u8],
    piece_length: u32,
    announce: &str,
) -> Result<TorrentFile, TorrentError> {
    if content.is_empty() || piece_length == 0 || u64::from(piece_length) > MAX_PIECE {
        return Err(TorrentError::Unusable(format!(
            "{} bytes in pieces of {piece_length}",
            content.len()
        )));
    }
    let pieces: Vec<u8> = content
        .chunks(piece_length as usize)
        .flat_map(|p| <[u8; 20]>::from(Sha1::digest(p)))
        .collect();
    let length = i64::try_from(content.len()).map_err(|_| TorrentError::Unusable("content too large".into()))?;
    let info = Value::dict([
        ("length", Value::Int(length)),
        ("name", Value::bytes(name.as_bytes())),
        ("piece length", Value::Int(piece_length.into())),
        ("pieces", Value::Bytes(pieces)),
    ]);
    let bytes = Value::dict([("announce", Value::bytes(announce.as_bytes())), ("info", info)]).encode();
    let metainfo = Metainfo::parse(&bytes)?;
    Ok(TorrentFile { bytes, metainfo })
}

/// A block: `length` bytes at `begin` in `piece`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// Piece index.
    pub piece: u32,
    /// Offset in the piece.
    pub begin: u32,
    /// Length.
    pub length: u32,
}

/// How a torrent is cut: pieces, and blocks of [`BLOCK`] bytes in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Total bytes.
    pub total: u64,
    /// Bytes per piece (the last may be shorter).
    pub piece_length: u32,
    /// Number of pieces.
    pub pieces: u32,
}

impl Geometry {
    /// The geometry of `info`, refused over [`MAX_CONTENT`] or [`MAX_PIECE`].
    pub fn of(info: &Info) -> Result<Geometry, TorrentError> {
        let total = info.total_length();
        if total == 0 || total > MAX_CONTENT || info.piece_length > MAX_PIECE {
            return Err(TorrentError::Unusable(format!(
                "{total} bytes in pieces of {}",
                info.piece_length
            )));
        }
        let pieces = u32::try_from(info.pieces.len()).map_err(|_| TorrentError::Unusable("too many pieces".into()))?;
        Ok(Geometry {
            total,
            piece_length: u32::try_from(info.piece_length)
                .map_err(|_| TorrentError::Unusable("piece length".into()))?,
            pieces,
        })
    }

    /// The length of piece `i` (0 past the end).
    pub fn piece_len(&self, i: u32) -> u32 {
        if i >= self.pieces {
            return 0;
        }
        let start = u64::from(i) * u64::from(self.piece_length);
        // At most piece_length, so it fits.
        (self.total - start).min(u64::from(self.piece_length)) as u32
    }

    /// Blocks in piece `i`.
    pub fn blocks(&self, i: u32) -> u32 {
        self.piece_len(i).div_ceil(BLOCK)
    }

    /// Block `b` of piece `i`.
    pub fn block(&self, i: u32, b: u32) -> BlockRef {
        let begin = b * BLOCK;
        BlockRef {
            piece: i,
            begin,
            length: self.piece_len(i).saturating_sub(begin).min(BLOCK),
        }
    }

    /// Whether `block` lies inside its piece and is not empty.
    pub fn contains(&self, block: &BlockRef) -> bool {
        block.length > 0
            && block.piece < self.pieces
            && u64::from(block.begin) + u64::from(block.length) <= u64::from(self.piece_len(block.piece))
    }

    fn offset(&self, piece: u32, begin: u32) -> usize {
        (u64::from(piece) * u64::from(self.piece_length) + u64::from(begin)) as usize
    }
}

/// The content in memory, and which pieces passed their hash check.
#[derive(Debug, Clone)]
pub struct PieceStore {
    geometry: Geometry,
    hashes: Vec<[u8; 20]>,
    data: Vec<u8>,
    have: Bitfield,
}

impl PieceStore {
    /// An empty store for `info` (a leecher).
    pub fn empty(info: &Info) -> Result<PieceStore, TorrentError> {
        let geometry = Geometry::of(info)?;
        Ok(PieceStore {
            geometry,
            hashes: info.pieces.clone(),
            data: vec![0; geometry.total as usize],
            have: Bitfield::new(geometry.pieces),
        })
    }

    /// A store holding the pieces `held` of `content` (every piece: a seed), each checked.
    pub fn with_content(info: &Info, content: &[u8], held: impl Fn(u32) -> bool) -> Result<PieceStore, TorrentError> {
        let mut store = PieceStore::empty(info)?;
        if content.len() as u64 != store.geometry.total {
            return Err(TorrentError::Unusable(format!(
                "{} bytes of content for a {}-byte torrent",
                content.len(),
                store.geometry.total
            )));
        }
        for i in (0..store.geometry.pieces).filter(|&i| held(i)) {
            let at = store.geometry.offset(i, 0);
            let len = store.geometry.piece_len(i) as usize;
            store.data[at..at + len].copy_from_slice(&content[at..at + len]);
            if !store.verify(i) {
                return Err(TorrentError::Mismatch(i));
            }
        }
        Ok(store)
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The pieces held (verified).
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// The whole content, once every piece is held.
    pub fn content(&self) -> Option<&[u8]> {
        self.have.is_complete().then_some(self.data.as_slice())
    }

    /// The bytes of `block`, if its piece is held.
    pub fn read(&self, block: &BlockRef) -> Option<&[u8]> {
        if !self.geometry.contains(block) || !self.have.has(block.piece) {
            return None;
        }
        let at = self.geometry.offset(block.piece, block.begin);
        self.data.get(at..at + block.length as usize)
    }

    /// Writes a block of a piece not yet held; `false` if it does not fit.
    pub fn write(&mut self, block: &BlockRef, bytes: &[u8]) -> bool {
        if !self.geometry.contains(block) || bytes.len() != block.length as usize || self.have.has(block.piece) {
            return false;
        }
        let at = self.geometry.offset(block.piece, block.begin);
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
        true
    }

    /// Checks piece `i` against its SHA-1; on a match it is held from now on.
    pub fn verify(&mut self, i: u32) -> bool {
        let Some(hash) = self.hashes.get(i as usize) else {
            return false;
        };
        let at = self.geometry.offset(i, 0);
        let len = self.geometry.piece_len(i) as usize;
        let ok = <[u8; 20]>::from(Sha1::digest(&self.data[at..at + len])) == *hash;
        if ok {
            self.have.set(i);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torrent_parses_back_and_its_store_checks_pieces() {
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let t = make_torrent("x.bin", &content, 32 << 10, "http://127.0.0.1:1/announce").unwrap();
        let info = &t.metainfo.info;
        assert_eq!(info.total_length(), 100_000);
        assert_eq!(t.metainfo.announce.as_deref(), Some("http://127.0.0.1:1/announce"));
        let g = Geometry::of(info).unwrap();
        assert_eq!(
            (g.pieces, g.piece_len(3), g.blocks(0), g.blocks(3)),
            (4, 100_000 - 3 * 32768, 2, 1)
        );
        assert_eq!(g.block(3, 0).length, 100_000 - 3 * 32768);
        assert!(!g.contains(&BlockRef {
            piece: 0,
            begin: 30 << 10,
            length: 4 << 10
        }));

        let seed = PieceStore::with_content(info, &content, |_| true).unwrap();
        assert_eq!(seed.content(), Some(&content[..]));
        let mut bad = content.clone();
        bad[40_000] ^= 1;
        assert_eq!(
            PieceStore::with_content(info, &bad, |_| true).unwrap_err(),
            TorrentError::Mismatch(1)
        );

        let mut leech = PieceStore::empty(info).unwrap();
        let b = g.block(0, 0);
        assert!(leech.read(&b).is_none());
        assert!(leech.write(&b, seed.read(&b).unwrap()));
        assert!(!leech.verify(0), "half a piece");
        let b1 = g.block(0, 1);
        assert!(leech.write(&b1, seed.read(&b1).unwrap()));
        assert!(leech.verify(0) && leech.have().has(0));
        assert!(!leech.write(&b, &[0; 5]) && leech.content().is_none());
        assert!(make_torrent("x", &[], 16, "u").is_err());
    }
}
