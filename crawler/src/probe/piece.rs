//! Downloading one piece from an open [`PeerSession`] and checking its SHA-1 against the
//! metainfo: the content check that finds peers serving bad data.
//!
//! We send `interested`, wait for `unchoke`, and keep up to
//! [`PeerConfig::pipeline`](super::peer::PeerConfig::pipeline) requests of [`BLOCK`] bytes
//! outstanding (fewer if the peer's `reqq` says so). A `choke` drops the outstanding requests
//! (BEP 3), which are asked again after the next `unchoke`. A block must answer an outstanding
//! request and have exactly the requested length; blocks nobody asked for (late ones after a
//! choke) are ignored; a BEP 6 `reject_request` (id 16) is [`Outcome::RemoteError`].
//!
//! Every complete download records a [`PieceCheck`]; a piece whose hash does not match ends the
//! probe as [`Outcome::ProtocolError`] (the check says `ok: false`) and the call returns
//! [`Error::BadPiece`].

use std::collections::VecDeque;

use sha1::{Digest, Sha1};

use crate::engine::{Engine, ProbeError, Reply};
use crate::metainfo::Info;
use crate::observe::{Observation, Outcome, PieceCheck, ProbeKind, now_micros};
use crate::peerwire::Message;

use super::Error;
use super::peer::{PeerSession, PiecesHeld};

/// The request size: 16 KiB, what every client serves.
pub const BLOCK: u32 = 16 << 10;
/// BEP 6 `reject_request`.
const REJECT_REQUEST: u8 = 16;

/// A piece whose SHA-1 matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPiece {
    /// The piece index.
    pub piece: u32,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl Reply for VerifiedPiece {}

/// What one download needs from the metainfo.
#[derive(Debug, Clone, Copy)]
struct PieceJob {
    piece: u32,
    length: u32,
    hash: [u8; 20],
}

/// The length of `piece` (the last one may be short), if the piece exists.
pub fn piece_length(info: &Info, piece: u32) -> Option<u64> {
    let hash_count = u64::try_from(info.pieces.len()).ok()?;
    let index = u64::from(piece);
    if index >= hash_count {
        return None;
    }
    let start = index.checked_mul(info.piece_length)?;
    let rest = info.total_length().checked_sub(start)?;
    Some(rest.min(info.piece_length))
}

impl PeerSession {
    /// Downloads `piece` of the torrent `info` and checks it, as one [`ProbeKind::PeerPiece`]
    /// probe. Refused without a probe when the piece does not exist, is over the configured
    /// size, or the peer said it does not hold it.
    pub async fn download_piece(&mut self, engine: &Engine, info: &Info, piece: u32) -> Result<VerifiedPiece, Error> {
        let length = piece_length(info, piece)
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::Unusable(format!("the torrent has no piece {piece}")))?;
        let max = self.config().max_piece;
        let length = u32::try_from(length)
            .ok()
            .filter(|&l| u64::from(l) <= max)
            .ok_or_else(|| Error::Unusable(format!("piece {piece} is {length} bytes, over the {max}-byte limit")))?;
        if !matches!(self.held(), PiecesHeld::Unknown) && !self.held().has(piece) {
            return Err(Error::Unusable(format!("{} does not hold piece {piece}", self.addr())));
        }
        let job = PieceJob {
            piece,
            length,
            hash: info.pieces[piece as usize],
        };
        self.last_check = None;
        let result = self
            .probe_op(engine, ProbeKind::PeerPiece, move |s| Box::pin(s.piece_attempt(job)))
            .await;
        match result {
            Err(Error::Probe(_)) if self.last_check == Some((piece, false)) => Err(Error::BadPiece { piece }),
            other => other,
        }
    }

    async fn piece_attempt(&mut self, job: PieceJob) -> Result<VerifiedPiece, ProbeError> {
        self.begin_op().await?;
        let protocol = |what: String| ProbeError::new(Outcome::ProtocolError, what);
        let blocks = job.length.div_ceil(BLOCK);
        let block_len = |b: u32| (job.length - b * BLOCK).min(BLOCK);
        let reqq = self
            .hello()
            .ext
            .as_ref()
            .and_then(|e| e.reqq)
            .map_or(usize::MAX, |r| usize::try_from(r.clamp(1, 1 << 16)).unwrap_or(1));
        let window = self.config().pipeline.clamp(1, 1 << 16).min(reqq);
        if !self.am_interested {
            self.send(&Message::Interested).await?;
            self.am_interested = true;
        }
        let mut data = vec![0u8; job.length as usize];
        let mut queue: VecDeque<u32> = (0..blocks).collect();
        let mut outstanding: Vec<u32> = Vec::new();
        let mut done = 0;
        while done < blocks {
            while !self.peer_choking && outstanding.len() < window {
                let Some(b) = queue.pop_front() else { break };
                let request = Message::Request {
                    piece: job.piece,
                    begin: b * BLOCK,
                    length: block_len(b),
                };
                self.send(&request).await?;
                outstanding.push(b);
            }
            match self.recv().await? {
                Message::Choke => {
                    for b in outstanding.drain(..).rev() {
                        queue.push_front(b);
                    }
                }
                Message::Piece { piece, begin, block } if piece == job.piece && begin % BLOCK == 0 => {
                    let b = begin / BLOCK;
                    let Some(at) = outstanding.iter().position(|&o| o == b) else {
                        continue;
                    };
                    if block.len() != block_len(b) as usize {
                        return Err(protocol(format!(
                            "block at {begin} of piece {piece} is {} bytes, {} requested",
                            block.len(),
                            block_len(b)
                        )));
                    }
                    let start = begin as usize;
                    data[start..start + block.len()].copy_from_slice(&block);
                    outstanding.swap_remove(at);
                    done += 1;
                }
                Message::Unknown {
                    id: REJECT_REQUEST,
                    payload,
                } if payload.get(..4) == Some(&job.piece.to_be_bytes()[..]) => {
                    self.end_op();
                    return Err(ProbeError::new(
                        Outcome::RemoteError,
                        format!("the peer rejected a request for piece {}", job.piece),
                    ));
                }
                _ => {}
            }
        }
        self.end_op();
        let digest: [u8; 20] = Sha1::digest(&data).into();
        let ok = digest == job.hash;
        self.last_check = Some((job.piece, ok));
        self.record(Observation::PieceCheck(PieceCheck {
            at: now_micros(),
            addr: self.addr(),
            info_hash: self.info_hash(),
            piece: job.piece,
            ok,
        }));
        if !ok {
            return Err(protocol(format!("piece {} failed its SHA-1 check", job.piece)));
        }
        Ok(VerifiedPiece { piece: job.piece, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Layout;

    #[test]
    fn piece_lengths() {
        let info = Info {
            name: b"x".to_vec(),
            piece_length: 32 << 10,
            pieces: vec![[0; 20]; 3],
            layout: Layout::Single { length: 70_000 },
            private: false,
        };
        assert_eq!(piece_length(&info, 0), Some(32 << 10));
        assert_eq!(piece_length(&info, 2), Some(70_000 - 2 * (32 << 10)));
        assert_eq!(piece_length(&info, 3), None);
    }
}
