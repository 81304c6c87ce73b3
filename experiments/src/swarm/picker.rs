//! Which block to ask a peer for next, sans I/O: rarest first (Cohen's BitTorrent), with a
//! random first piece and strict priority for pieces already started, and an optional endgame.
//!
//! 1. **Strict priority**: a block of a piece already started (oldest first), so pieces
//!    complete and can be shared instead of many being half done.
//! 2. **Random first piece**: until [`Picker::random_first`] pieces are held, a random piece the
//!    peer has: the rarest ones are slow to fetch, and a newcomer needs something to trade soon.
//! 3. **Rarest first**: the piece fewest connected peers have (ties broken at random).
//! 4. **Endgame** (when enabled): once every missing block is requested, a block already
//!    requested from someone else (at most [`ENDGAME_COPIES`] requests per block); the caller
//!    cancels the others when one copy arrives.
//!
//! The picker counts availability from the bitfields and `have`s it is told about; it never
//! sees sockets, and its random choices come from a seeded generator.

use onionlab_crawler::dht::space::SplitMix64;

use super::bitfield::Bitfield;
use super::torrent::{BlockRef, Geometry};

/// The most requests outstanding for one block in endgame.
pub const ENDGAME_COPIES: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Free,
    Requested(u8),
    Received,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Missing,
    Started(Vec<Block>),
    Held,
}

/// The piece picker of one client.
#[derive(Debug, Clone)]
pub struct Picker {
    geometry: Geometry,
    availability: Vec<u32>,
    pieces: Vec<Piece>,
    /// Started pieces, oldest first.
    started: Vec<u32>,
    held: u32,
    random_first: u32,
    endgame: bool,
    rng: SplitMix64,
}

impl Picker {
    /// A picker for a client holding `have`, picking at random until `random_first` pieces are
    /// held, with or without endgame.
    pub fn new(geometry: Geometry, have: &Bitfield, random_first: u32, endgame: bool, seed: u64) -> Self {
        Picker {
            geometry,
            availability: vec![0; geometry.pieces as usize],
            pieces: (0..geometry.pieces)
                .map(|i| if have.has(i) { Piece::Held } else { Piece::Missing })
                .collect(),
            started: Vec::new(),
            held: have.count(),
            random_first,
            endgame,
            rng: SplitMix64::new(seed),
        }
    }

    /// Pieces picked at random before rarest first takes over.
    pub fn random_first(&self) -> u32 {
        self.random_first
    }

    /// How many connected peers have piece `i`.
    pub fn availability(&self, i: u32) -> u32 {
        self.availability.get(i as usize).copied().unwrap_or(0)
    }

    /// A peer with `has` joined (or sent its bitfield).
    pub fn add_peer(&mut self, has: &Bitfield) {
        for i in has.ones() {
            self.availability[i as usize] += 1;
        }
    }

    /// A peer with `has` left.
    pub fn remove_peer(&mut self, has: &Bitfield) {
        for i in has.ones() {
            let a = &mut self.availability[i as usize];
            *a = a.saturating_sub(1);
        }
    }

    /// A peer announced piece `i` (the caller counts each peer's piece once).
    pub fn add_have(&mut self, i: u32) {
        if let Some(a) = self.availability.get_mut(i as usize) {
            *a += 1;
        }
    }

    /// Whether every missing block has been requested (or received): the endgame.
    pub fn all_requested(&self) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Missing => false,
            Piece::Started(blocks) => blocks.iter().all(|b| *b != Block::Free),
            Piece::Held => true,
        })
    }

    /// The next block to request from a peer that has `has`; `asked(b)` says whether this peer
    /// was already asked for `b` (only endgame asks twice). The block counts as requested.
    pub fn pick(&mut self, has: &Bitfield, asked: impl Fn(&BlockRef) -> bool) -> Option<BlockRef> {
        for &i in &self.started {
            if !has.has(i) {
                continue;
            }
            if let Piece::Started(blocks) = &self.pieces[i as usize]
                && let Some(b) = blocks.iter().position(|s| *s == Block::Free)
            {
                return Some(self.request(i, b as u32));
            }
        }
        let candidates = (0..self.geometry.pieces).filter(|&i| has.has(i) && self.pieces[i as usize] == Piece::Missing);
        let chosen = if self.held < self.random_first {
            let all: Vec<u32> = candidates.collect();
            (!all.is_empty()).then(|| all[self.rng.below(all.len() as u64) as usize])
        } else {
            // Reservoir sampling among the rarest: one pass, uniform among ties.
            let (mut best, mut ties, mut pick) = (u32::MAX, 0u64, None);
            for i in candidates {
                let a = self.availability[i as usize];
                if a < best {
                    (best, ties, pick) = (a, 1, Some(i));
                } else if a == best {
                    ties += 1;
                    if self.rng.below(ties) == 0 {
                        pick = Some(i);
                    }
                }
            }
            pick
        };
        if let Some(i) = chosen {
            self.pieces[i as usize] = Piece::Started(vec![Block::Free; self.geometry.blocks(i) as usize]);
            self.started.push(i);
            return Some(self.request(i, 0));
        }
        if self.endgame && self.all_requested() {
            for &i in &self.started {
                if !has.has(i) {
                    continue;
                }
                let Piece::Started(blocks) = &self.pieces[i as usize] else {
                    continue;
                };
                for (b, state) in blocks.iter().enumerate() {
                    let block = self.geometry.block(i, b as u32);
                    if matches!(state, Block::Requested(n) if *n < ENDGAME_COPIES) && !asked(&block) {
                        return Some(self.request(i, b as u32));
                    }
                }
            }
        }
        None
    }

    fn request(&mut self, piece: u32, b: u32) -> BlockRef {
        if let Piece::Started(blocks) = &mut self.pieces[piece as usize] {
            blocks[b as usize] = match blocks[b as usize] {
                Block::Free => Block::Requested(1),
                Block::Requested(n) => Block::Requested(n.saturating_add(1)),
                Block::Received => Block::Received,
            };
        }
        self.geometry.block(piece, b)
    }

    fn state(&mut self, block: &BlockRef) -> Option<&mut Block> {
        if !block.begin.is_multiple_of(super::torrent::BLOCK) {
            return None;
        }
        match self.pieces.get_mut(block.piece as usize)? {
            Piece::Started(blocks) => blocks.get_mut((block.begin / super::torrent::BLOCK) as usize),
            _ => None,
        }
    }

    /// A request for `block` ended without data (choke, cancel, timeout, disconnect).
    pub fn unrequest(&mut self, block: &BlockRef) {
        if let Some(s) = self.state(block) {
            *s = match *s {
                Block::Requested(n) if n > 1 => Block::Requested(n - 1),
                Block::Requested(_) => Block::Free,
                other => other,
            };
        }
    }

    /// `block` arrived: `Some(true)` when it completed its piece (now to be verified),
    /// `Some(false)` when the piece needs more, `None` when it was not wanted (already here).
    pub fn received(&mut self, block: &BlockRef) -> Option<bool> {
        let s = self.state(block)?;
        if *s == Block::Received {
            return None;
        }
        *s = Block::Received;
        let Piece::Started(blocks) = &self.pieces[block.piece as usize] else {
            return None;
        };
        Some(blocks.iter().all(|b| *b == Block::Received))
    }

    /// Piece `i` passed its hash check.
    pub fn passed(&mut self, i: u32) {
        if let Some(p) = self.pieces.get_mut(i as usize)
            && *p != Piece::Held
        {
            *p = Piece::Held;
            self.held += 1;
            self.started.retain(|&s| s != i);
        }
    }

    /// Piece `i` failed its hash check: every block is to be fetched again.
    pub fn failed(&mut self, i: u32) {
        if let Some(p) = self.pieces.get_mut(i as usize)
            && *p != Piece::Held
        {
            *p = Piece::Missing;
            self.started.retain(|&s| s != i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(pieces: u32, blocks: u32) -> Geometry {
        let piece_length = blocks * super::super::torrent::BLOCK;
        Geometry {
            total: u64::from(pieces) * u64::from(piece_length),
            piece_length,
            pieces,
        }
    }

    fn bits(len: u32, ones: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &i in ones {
            b.set(i);
        }
        b
    }

    #[test]
    fn rarest_first_after_a_random_first_piece_and_started_pieces_first() {
        let g = geometry(6, 2);
        let mut p = Picker::new(g, &Bitfield::new(6), 1, false, 7);
        // Availability: piece 0 ×3, 1 ×2, 2 ×1, 3 ×3, 4 ×2, 5 ×3.
        for peer in [&[0, 1, 3, 4, 5][..], &[0, 1, 3, 4, 5], &[0, 2, 3, 5]] {
            p.add_peer(&bits(6, peer));
        }
        let all = Bitfield::full(6);
        // Nothing held: the first piece is random, then its second block (strict priority).
        let first = p.pick(&all, |_| false).unwrap();
        assert_eq!(first.begin, 0);
        let second = p.pick(&all, |_| false).unwrap();
        assert_eq!(
            (second.piece, second.begin),
            (first.piece, super::super::torrent::BLOCK)
        );
        assert_eq!(p.received(&first), Some(false));
        assert_eq!(p.received(&second), Some(true));
        assert_eq!(p.received(&second), None, "a duplicate is not wanted");
        p.passed(first.piece);
        // Now rarest first: the remaining pieces by availability, each started piece finished
        // before the next is begun.
        let mut order = Vec::new();
        while let Some(b) = p.pick(&all, |_| false) {
            if b.begin == 0 {
                order.push(b.piece);
            }
            let rest = p.pick(&all, |_| false).unwrap();
            assert_eq!(rest.piece, b.piece, "strict priority");
            p.received(&b);
            p.received(&rest);
            p.passed(b.piece);
        }
        let avail: Vec<u32> = order.iter().map(|&i| p.availability(i)).collect();
        assert!(avail.windows(2).all(|w| w[0] <= w[1]), "{order:?} {avail:?}");
        assert_eq!(order.len(), 5);
        // Only pieces the peer has are picked.
        let mut q = Picker::new(g, &Bitfield::new(6), 0, false, 1);
        q.add_peer(&bits(6, &[4]));
        assert_eq!(q.pick(&bits(6, &[4]), |_| false).map(|b| b.piece), Some(4));
        assert_eq!(q.pick(&Bitfield::new(6), |_| false), None);
    }

    #[test]
    fn failed_pieces_and_lost_requests_are_asked_again() {
        let g = geometry(1, 2);
        let mut p = Picker::new(g, &Bitfield::new(1), 0, false, 1);
        let all = Bitfield::full(1);
        let a = p.pick(&all, |_| false).unwrap();
        let b = p.pick(&all, |_| false).unwrap();
        assert_eq!(p.pick(&all, |_| false), None, "no endgame: nothing left to ask");
        p.unrequest(&b);
        assert_eq!(p.pick(&all, |_| false), Some(b));
        p.received(&a);
        assert_eq!(p.received(&b), Some(true));
        p.failed(0);
        assert_eq!(p.pick(&all, |_| false), Some(a), "a bad piece starts over");
    }

    #[test]
    fn endgame_asks_a_second_peer_once() {
        let g = geometry(1, 1);
        let mut p = Picker::new(g, &Bitfield::new(1), 0, true, 1);
        let all = Bitfield::full(1);
        let a = p.pick(&all, |_| false).unwrap();
        assert!(p.all_requested());
        assert_eq!(p.pick(&all, |b| *b == a), None, "not the same peer twice");
        assert_eq!(p.pick(&all, |_| false), Some(a));
        assert_eq!(p.pick(&all, |_| false), None, "at most two copies");
    }
}
