//! `.torrent` v1 metainfo files (BEP 3, BEP 12 `announce-list`, BEP 27 `private`).
//!
//! The info-hash is SHA-1 over the raw bytes of the `info` value exactly as they appear in the
//! file ([`crate::bencode::Node::raw`]), never over a re-encoding: a file with unsorted keys keeps
//! the hash its creator computed. Non-canonical forms are accepted and kept in
//! [`Metainfo::deviations`], except a repeated `info` key or any repeated key inside `info`, which
//! are refused: two clients could read two different torrents under one info-hash.
//!
//! Names and path components are kept as bytes (many real torrents are not UTF-8). Components
//! that could escape the download folder or are meaningless are refused: empty, `.`, `..`, or
//! containing `/`, `\` or NUL. Tracker URLs must be UTF-8.

use thiserror::Error;

use crate::bencode::{self, DecodeError, Deviation, DeviationKind, Node};
use crate::infohash::InfoHash;

/// Bounds on what a metainfo file may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetainfoLimits {
    /// Limits for the bencode layer.
    pub bencode: bencode::Limits,
    /// Most files in a multi-file torrent.
    pub max_files: usize,
    /// Most components in one file path.
    pub max_path_components: usize,
    /// Largest piece length accepted, in bytes.
    pub max_piece_length: u64,
}

impl Default for MetainfoLimits {
    /// Bencode defaults, 100,000 files, 64 path components, 256 MiB pieces.
    fn default() -> Self {
        MetainfoLimits {
            bencode: bencode::Limits::default(),
            max_files: 100_000,
            max_path_components: 64,
            max_piece_length: 256 << 20,
        }
    }
}

/// Why a metainfo file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetainfoError {
    /// Not bencode at all.
    #[error("not bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field has the wrong type or an impossible value.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key repeated where it would make the torrent ambiguous.
    #[error("key repeated at byte {offset}: the torrent is ambiguous")]
    AmbiguousKey {
        /// Offset of the repeated key inside `info`; for a second `info`, of its value.
        offset: usize,
    },
    /// A limit of [`MetainfoLimits`] was exceeded.
    #[error("{field} exceeds the limit of {max}")]
    TooMany {
        /// Which field.
        field: &'static str,
        /// The limit.
        max: u64,
    },
}

fn invalid(field: &'static str, reason: &'static str) -> MetainfoError {
    MetainfoError::Invalid { field, reason }
}

/// One file of a multi-file torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Length in bytes.
    pub length: u64,
    /// Path components below the torrent's folder, each checked safe.
    pub path: Vec<Vec<u8>>,
}

/// The files a torrent describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One file named [`Info::name`].
    Single {
        /// Length in bytes.
        length: u64,
    },
    /// A folder named [`Info::name`] holding these files, in order.
    Multi {
        /// The files (at least one).
        files: Vec<FileEntry>,
    },
}

/// The `info` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Suggested file or folder name (bytes; checked like a path component).
    pub name: Vec<u8>,
    /// Bytes per piece (positive).
    pub piece_length: u64,
    /// SHA-1 of each piece, in order.
    pub pieces: Vec<[u8; 20]>,
    /// Single or multi-file layout.
    pub layout: Layout,
    /// `private` is present and non-zero (BEP 27).
    pub private: bool,
}

impl Info {
    /// Total content length.
    pub fn total_length(&self) -> u64 {
        match &self.layout {
            Layout::Single { length } => *length,
            // Checked not to overflow when parsed.
            Layout::Multi { files } => files.iter().map(|f| f.length).sum(),
        }
    }
}

/// A parsed `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 over the raw `info` bytes.
    pub info_hash: InfoHash,
    /// The `info` dictionary.
    pub info: Info,
    /// `announce`, if present.
    pub announce: Option<String>,
    /// `announce-list` tiers (BEP 12), empty tiers dropped.
    pub announce_list: Vec<Vec<String>>,
    /// Non-canonical bencode forms accepted in the file.
    pub deviations: Vec<Deviation>,
}

impl Metainfo {
    /// Parses with [`MetainfoLimits::default`].
    pub fn parse(bytes: &[u8]) -> Result<Self, MetainfoError> {
        Metainfo::parse_with(bytes, MetainfoLimits::default())
    }

    /// Parses with explicit limits.
    pub fn parse_with(bytes: &[u8], limits: MetainfoLimits) -> Result<Self, MetainfoError> {
        let decoded = bencode::decode_with(bytes, limits.bencode)?;
        let root = &decoded.root;
        if root.as_dict().is_none() {
            return Err(invalid("metainfo", "not a dictionary"));
        }
        let info_node = root.get(b"info").ok_or(MetainfoError::Missing("info"))?;
        let info_span = info_node.span();
        if let Some(d) = decoded
            .deviations
            .iter()
            .find(|d| matches!(d.kind, DeviationKind::DuplicateKey { .. }) && info_span.contains(&d.offset))
        {
            return Err(MetainfoError::AmbiguousKey { offset: d.offset });
        }
        if let Some((_, second)) = root
            .as_dict()
            .and_then(|e| e.iter().filter(|(k, _)| *k == b"info").nth(1))
        {
            return Err(MetainfoError::AmbiguousKey {
                offset: second.offset(),
            });
        }
        let info = parse_info(info_node, &limits)?;
        let announce = root.get(b"announce").map(|n| url(n, "announce")).transpose()?;
        let announce_list = match root.get(b"announce-list") {
            None => Vec::new(),
            Some(n) => announce_list(n)?,
        };
        Ok(Metainfo {
            info_hash: InfoHash::of_info_bytes(info_node.raw()),
            info,
            announce,
            announce_list,
            deviations: decoded.deviations,
        })
    }
}

fn parse_info(node: &Node<'_>, limits: &MetainfoLimits) -> Result<Info, MetainfoError> {
    if node.as_dict().is_none() {
        return Err(invalid("info", "not a dictionary"));
    }
    let name = node.get(b"name").ok_or(MetainfoError::Missing("info.name"))?;
    let name = path_component(name, "info.name")?;
    let piece_length = uint(
        node.get(b"piece length")
            .ok_or(MetainfoError::Missing("info.piece length"))?,
        "info.piece length",
    )?;
    if piece_length == 0 {
        return Err(invalid("info.piece length", "zero"));
    }
    if piece_length > limits.max_piece_length {
        return Err(MetainfoError::TooMany {
            field: "info.piece length",
            max: limits.max_piece_length,
        });
    }
    let pieces = node
        .get(b"pieces")
        .ok_or(MetainfoError::Missing("info.pieces"))?
        .as_bytes()
        .ok_or_else(|| invalid("info.pieces", "not a byte string"))?;
    let (chunks, rest) = pieces.as_chunks::<20>();
    if !rest.is_empty() {
        return Err(invalid("info.pieces", "length is not a multiple of 20"));
    }
    let pieces = chunks.to_vec();
    let layout = match (node.get(b"length"), node.get(b"files")) {
        (Some(len), None) => Layout::Single {
            length: uint(len, "info.length")?,
        },
        (None, Some(files)) => Layout::Multi {
            files: parse_files(files, limits)?,
        },
        (Some(_), Some(_)) => return Err(invalid("info", "both length and files")),
        (None, None) => return Err(MetainfoError::Missing("info.length or info.files")),
    };
    let total = match &layout {
        Layout::Single { length } => *length,
        Layout::Multi { files } => files
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.length))
            .ok_or_else(|| invalid("info.files", "total length overflows"))?,
    };
    if total.div_ceil(piece_length) != pieces.len() as u64 {
        return Err(invalid("info.pieces", "piece count does not match the total length"));
    }
    let private = match node.get(b"private") {
        None => false,
        Some(p) => p.as_int().ok_or_else(|| invalid("info.private", "not an integer"))? != 0,
    };
    Ok(Info {
        name,
        piece_length,
        pieces,
        layout,
        private,
    })
}

fn parse_files(node: &Node<'_>, limits: &MetainfoLimits) -> Result<Vec<FileEntry>, MetainfoError> {
    let list = node.as_list().ok_or_else(|| invalid("info.files", "not a list"))?;
    if list.is_empty() {
        return Err(invalid("info.files", "empty"));
    }
    if list.len() > limits.max_files {
        return Err(MetainfoError::TooMany {
            field: "info.files",
            max: limits.max_files as u64,
        });
    }
    list.iter()
        .map(|f| {
            if f.as_dict().is_none() {
                return Err(invalid("info.files", "entry is not a dictionary"));
            }
            let length = uint(
                f.get(b"length").ok_or(MetainfoError::Missing("info.files.length"))?,
                "info.files.length",
            )?;
            let path = f
                .get(b"path")
                .ok_or(MetainfoError::Missing("info.files.path"))?
                .as_list()
                .ok_or_else(|| invalid("info.files.path", "not a list"))?;
            if path.is_empty() {
                return Err(invalid("info.files.path", "empty"));
            }
            if path.len() > limits.max_path_components {
                return Err(MetainfoError::TooMany {
                    field: "info.files.path",
                    max: limits.max_path_components as u64,
                });
            }
            let path = path
                .iter()
                .map(|c| path_component(c, "info.files.path"))
                .collect::<Result<_, _>>()?;
            Ok(FileEntry { length, path })
        })
        .collect()
}

fn uint(node: &Node<'_>, field: &'static str) -> Result<u64, MetainfoError> {
    let i = node.as_int().ok_or_else(|| invalid(field, "not an integer"))?;
    u64::try_from(i).map_err(|_| invalid(field, "negative"))
}

fn path_component(node: &Node<'_>, field: &'static str) -> Result<Vec<u8>, MetainfoError> {
    let b = node.as_bytes().ok_or_else(|| invalid(field, "not a byte string"))?;
    match b {
        b"" => Err(invalid(field, "empty path component")),
        b"." | b".." => Err(invalid(field, "`.` or `..` path component")),
        _ if b.iter().any(|&c| matches!(c, b'/' | b'\\' | 0)) => {
            Err(invalid(field, "path component contains `/`, `\\` or NUL"))
        }
        _ => Ok(b.to_vec()),
    }
}

fn url(node: &Node<'_>, field: &'static str) -> Result<String, MetainfoError> {
    let b = node.as_bytes().ok_or_else(|| invalid(field, "not a byte string"))?;
    String::from_utf8(b.to_vec()).map_err(|_| invalid(field, "not UTF-8"))
}

fn announce_list(node: &Node<'_>) -> Result<Vec<Vec<String>>, MetainfoError> {
    let tiers = node.as_list().ok_or_else(|| invalid("announce-list", "not a list"))?;
    let mut out = Vec::new();
    for tier in tiers {
        let urls = tier
            .as_list()
            .ok_or_else(|| invalid("announce-list", "tier is not a list"))?;
        let urls: Vec<String> = urls.iter().map(|u| url(u, "announce-list")).collect::<Result<_, _>>()?;
        if !urls.is_empty() {
            out.push(urls);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
