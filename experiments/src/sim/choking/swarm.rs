//! The round-based swarm of [`super`]: peers with upload and download capacities, a file of
//! pieces, links that carry one piece at a time, and a ledger of every kilobyte sent. Each
//! round is one second: every rechoke period the peers' unchokers ([`super::choker`]) set the
//! share of upload each link gets; each round an uploader splits its capacity over the
//! unchoked links that can carry something (work-conserving), a downloader's incoming total is
//! cut to its download capacity (the cut is not offered elsewhere), and the data fills pieces
//! the downloader lacks, rarest in the swarm first (ties at random), from what the uploader
//! held when the round began. A piece goes over one link at a time, except in end-game mode
//! (everything missing is under way), when the first copy to finish cancels the others. A
//! leecher that completes leaves and an empty newcomer with a fresh capacity takes its place
//! and its links (a swarm in steady state); seeds stay. The run ends when the observed user
//! completes. Never: latency, TCP dynamics, blocks within pieces or pieces that fail their hash.

use onionlab_crawler::dht::space::SplitMix64;

use super::super::shuffle;
use super::draw::{Draw, capacity};
use super::{Params, choker};

/// The unchoker a peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Client {
    /// Tit-for-tat: the `upload_slots` peers that uploaded to it fastest, one optimistic
    /// unchoke, equal split.
    Standard,
    /// Piatek et al.'s: the best estimated download/upload ratios until its capacity is used,
    /// each at its estimated reciprocation rate.
    Tyrant,
    /// Levin et al.'s: upload in proportion to what each peer gave in the last period.
    PropShare,
    /// BitThief: uploads nothing, announces nothing.
    FreeRider,
    /// A seed: the peers it sends to fastest, one optimistic unchoke, equal split.
    Seed,
}

/// Who the observed user is: one peer with a client, or a Sybil attacker's identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Observer {
    /// One peer running this client, with `neighbours` links.
    Client(Client),
    /// BitThief with this many links.
    FreeRider(usize),
    /// This many identities running the swarm's client, sharing one capacity and every piece.
    Sybils(usize),
}

/// One direction of a connection, as its sender sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct Link {
    /// The peer at the other end.
    pub(super) to: usize,
    /// This connection's index in `to`'s links.
    back: usize,
    /// Relative share of the sender's upload set at the last rechoke (0: choked).
    pub(super) weight: f64,
    /// KB received from `to` in this period, and in the last.
    got: f64,
    pub(super) got_prev: f64,
    /// KB sent to `to` in this period, and in the last.
    sent: f64,
    pub(super) sent_prev: f64,
    /// The piece under way to `to`, and the KB of it sent so far.
    piece: Option<(usize, f64)>,
}

/// BitTyrant's estimates for one link (Piatek et al., NSDI 2007, §4.1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Estimate {
    /// u_p: the upload rate that earns reciprocation, KB/s.
    pub(super) up: f64,
    /// d_p: the download rate reciprocation brings, KB/s.
    pub(super) down: f64,
    /// Consecutive periods in which the peer reciprocated.
    pub(super) streak: u32,
}

/// A peer (one identity).
pub(super) struct Peer {
    pub(super) client: Client,
    /// Upload and download capacities, KB/s.
    pub(super) up: f64,
    down: f64,
    /// The bitfield this identity shares (Sybils of one attacker share one).
    pub(super) group: usize,
    pub(super) links: Vec<Link>,
    /// Links unchoked optimistically.
    pub(super) optimistic: Vec<usize>,
    /// BitTyrant's estimates, per link (empty for other clients).
    pub(super) estimates: Vec<Estimate>,
    /// KB received in all.
    received: f64,
}

/// A bitfield and its owner's progress.
struct Group {
    held: usize,
    seed: bool,
    /// Pretends to have nothing (BitThief): it announces nothing and nobody wants its pieces.
    hides: bool,
    /// KB of pieces completed (announced) in this period, and in the last.
    announced: f64,
    announced_prev: f64,
}

/// Where every kilobyte went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Ledger {
    /// KB sent over all links.
    pub(super) sent: f64,
    /// KB of pieces completed.
    pub(super) delivered: f64,
    /// KB of unfinished pieces dropped (choked, an end left, or a copy lost the end game).
    pub(super) discarded: f64,
    /// KB of unfinished pieces under way when the run stopped.
    pub(super) in_flight: f64,
    /// The most any one peer received.
    pub(super) max_received: f64,
    /// Peer-rounds that sent above upload capacity or received above download capacity.
    pub(super) over_capacity: usize,
}

impl Ledger {
    /// |sent − delivered − discarded − in flight|, KB: 0 up to rounding if bytes are conserved.
    pub(super) fn unaccounted(&self) -> f64 {
        (self.sent - self.delivered - self.discarded - self.in_flight).abs()
    }
}

/// What one run found.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RunResult {
    /// When the observed user completed, seconds (`None`: not within `max_secs`).
    pub(super) time: Option<u32>,
    /// KB the observed user's identities received.
    pub(super) observer_kb: f64,
    pub(super) ledger: Ledger,
}

/// The swarm during a run.
pub(super) struct Swarm<'a> {
    pub(super) params: &'a Params,
    pub(super) peers: Vec<Peer>,
    groups: Vec<Group>,
    words: usize,
    /// Bitfields, `words` per group: pieces held, pieces under way, held at the round's start.
    have: Vec<u64>,
    pending: Vec<u64>,
    offer: Vec<u64>,
    /// Links carrying each piece to each group (`pieces` per group; > 0 iff `pending`).
    under_way: Vec<u32>,
    /// The identities of each group.
    members: Vec<Vec<usize>>,
    /// Copies of each piece among the leechers.
    copies: Vec<u32>,
    pub(super) rng: SplitMix64,
    newcomers: SplitMix64,
    ledger: Ledger,
}

impl Swarm<'_> {
    fn set(bits: &mut [u64], words: usize, group: usize, piece: usize, on: bool) {
        let (w, b) = (group * words + piece / 64, piece % 64);
        if on {
            bits[w] |= 1 << b;
        } else {
            bits[w] &= !(1 << b);
        }
    }

    /// Whether the peer at the end of `u`'s link `li` wants a piece `u` holds: interest.
    pub(super) fn interested(&self, u: usize, li: usize) -> bool {
        let link = &self.peers[u].links[li];
        self.wants(link.to, link.back)
    }

    /// Whether `u` wants a piece the peer at the end of its link `li` shows it holds (BitThief
    /// shows none).
    pub(super) fn wants(&self, u: usize, li: usize) -> bool {
        let (from, to) = (self.peers[self.peers[u].links[li].to].group, self.peers[u].group);
        let w = self.words;
        !self.groups[from].hides && (0..w).any(|i| self.have[from * w + i] & !self.have[to * w + i] != 0)
    }

    /// Whether the peer at the end of `u`'s link `li` unchoked `u` at its last rechoke.
    pub(super) fn unchoked_by(&self, u: usize, li: usize) -> bool {
        let link = &self.peers[u].links[li];
        self.peers[link.to].links[link.back].weight > 0.0
    }

    /// KB per second of pieces the group behind peer `v` announced in the last period.
    pub(super) fn announced_rate(&self, v: usize) -> f64 {
        self.groups[self.peers[v].group].announced_prev / f64::from(self.params.rechoke_secs)
    }

    /// One link fewer carries `piece` to group `g`.
    fn release(&mut self, g: usize, piece: usize) {
        let n = &mut self.under_way[g * self.params.pieces + piece];
        *n = n.saturating_sub(1);
        if *n == 0 {
            Self::set(&mut self.pending, self.words, g, piece, false);
        }
    }

    /// Drop the unfinished piece on `u`'s link `li`.
    pub(super) fn discard(&mut self, u: usize, li: usize) {
        let to = self.peers[u].links[li].to;
        if let Some((piece, done)) = self.peers[u].links[li].piece.take() {
            self.release(self.peers[to].group, piece);
            self.ledger.discarded += done;
        }
    }

    /// Whether group `g` is in end-game mode: every piece it lacks is under way.
    fn end_game(&self, g: usize) -> bool {
        let w = self.words;
        (0..w).all(|i| {
            let bits = self.params.pieces - i * 64;
            let exists = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
            !self.have[g * w + i] & !self.pending[g * w + i] & exists == 0
        })
    }

    /// Word `i` of the pieces `u` may send on link `li`: held by `u` when the round began,
    /// lacked by the other end, and not under way to it unless in end-game mode.
    fn sendable(&self, from: usize, to: usize, end_game: bool, i: usize) -> u64 {
        let w = self.words;
        let skip = if end_game { 0 } else { self.pending[to * w + i] };
        self.offer[from * w + i] & !self.have[to * w + i] & !skip
    }

    /// The piece `u` sends next on link `li`: rarest first, ties at random; in end-game mode a
    /// piece under way on another link, at random (the first copy to finish cancels the rest).
    fn pick(&mut self, u: usize, li: usize) -> Option<usize> {
        let (from, to) = (self.peers[u].group, self.peers[self.peers[u].links[li].to].group);
        let end_game = self.end_game(to);
        let (mut best, mut ties) = (None::<(u32, usize)>, 0u64);
        for i in 0..self.words {
            let mut bits = self.sendable(from, to, end_game, i);
            while bits != 0 {
                let piece = i * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let c = if end_game { 0 } else { self.copies[piece] };
                match best {
                    Some((b, _)) if c > b => continue,
                    Some((b, _)) if c == b => ties += 1,
                    _ => ties = 1,
                }
                if ties == 1 || self.rng.below(ties) == 0 {
                    best = Some((c, piece));
                }
            }
        }
        best.map(|(_, piece)| piece)
    }

    /// Whether `u`'s link `li` could carry data this round (`end_game`: the other end's mode).
    fn can_send(&self, u: usize, li: usize, end_game: bool) -> bool {
        let link = &self.peers[u].links[li];
        if link.piece.is_some() {
            return true;
        }
        let (from, to) = (self.peers[u].group, self.peers[link.to].group);
        (0..self.words).any(|i| self.sendable(from, to, end_game, i) != 0)
    }

    /// Send up to `amount` KB on `u`'s link `li`; returns what went.
    fn send(&mut self, u: usize, li: usize, amount: f64) -> f64 {
        let piece_kb = self.params.piece_kb;
        let (v, back) = (self.peers[u].links[li].to, self.peers[u].links[li].back);
        let g = self.peers[v].group;
        let (mut left, mut sent) = (amount, 0.0);
        while left > 0.0 {
            let (piece, done) = match self.peers[u].links[li].piece {
                Some(p) => p,
                None => match self.pick(u, li) {
                    Some(p) => {
                        Self::set(&mut self.pending, self.words, g, p, true);
                        self.under_way[g * self.params.pieces + p] += 1;
                        (p, 0.0)
                    }
                    None => break,
                },
            };
            let need = piece_kb - done;
            if left < need {
                self.peers[u].links[li].piece = Some((piece, done + left));
                sent += left;
                break;
            }
            self.peers[u].links[li].piece = None;
            (sent, left) = (sent + need, left - need);
            self.release(g, piece);
            self.cancel_copies(g, piece);
            Self::set(&mut self.have, self.words, g, piece, true);
            self.copies[piece] += 1;
            self.ledger.delivered += piece_kb;
            let group = &mut self.groups[g];
            group.held += 1;
            if !group.hides {
                group.announced += piece_kb;
            }
        }
        self.peers[u].links[li].sent += sent;
        self.peers[v].links[back].got += sent;
        self.peers[v].received += sent;
        self.ledger.sent += sent;
        sent
    }

    /// Drop every other copy of `piece` under way to group `g` (end game).
    fn cancel_copies(&mut self, g: usize, piece: usize) {
        if self.under_way[g * self.params.pieces + piece] == 0 {
            return;
        }
        for m in 0..self.members[g].len() {
            let v = self.members[g][m];
            for i in 0..self.peers[v].links.len() {
                let (w, back) = (self.peers[v].links[i].to, self.peers[v].links[i].back);
                if self.peers[w].links[back].piece.is_some_and(|(p, _)| p == piece) {
                    self.discard(w, back);
                }
            }
        }
    }

    /// Group `g` (one leecher) left complete: an empty newcomer takes its peer's place.
    fn replace(&mut self, g: usize) {
        let w = self.words;
        for piece in 0..self.params.pieces {
            if self.have[g * w + piece / 64] >> (piece % 64) & 1 == 1 {
                self.copies[piece] -= 1;
            }
        }
        self.have[g * w..(g + 1) * w].fill(0);
        self.groups[g].held = 0;
        let up = capacity(self.params, &mut self.newcomers);
        for u in self.members[g].clone() {
            self.peers[u].up = up;
            self.peers[u].down = up * self.params.download_factor;
            self.peers[u].optimistic.clear();
            if self.peers[u].client == Client::Tyrant {
                let fresh = choker::first_estimate(self.params, up);
                self.peers[u].estimates.fill(fresh);
            }
            for li in 0..self.peers[u].links.len() {
                let (v, back) = (self.peers[u].links[li].to, self.peers[u].links[li].back);
                self.discard(u, li);
                self.discard(v, back);
                self.peers[u].links[li] = Link {
                    to: v,
                    back,
                    ..Link::default()
                };
                self.peers[v].links[back] = Link {
                    to: u,
                    back: li,
                    ..Link::default()
                };
                self.peers[v].optimistic.retain(|&o| o != back);
                if self.peers[v].client == Client::Tyrant {
                    self.peers[v].estimates[back] = choker::first_estimate(self.params, self.peers[v].up);
                }
            }
        }
    }

    /// End a rechoke period: this period's counters become the last period's.
    fn roll_period(&mut self) {
        for link in self.peers.iter_mut().flat_map(|p| p.links.iter_mut()) {
            link.got_prev = std::mem::take(&mut link.got);
            link.sent_prev = std::mem::take(&mut link.sent);
        }
        for g in &mut self.groups {
            g.announced_prev = std::mem::take(&mut g.announced);
        }
    }

    /// One round: offers by weight, cut to download capacities, then sent in a random order.
    fn round(&mut self, scratch: &mut Scratch) {
        self.offer.copy_from_slice(&self.have);
        let Scratch {
            offers,
            incoming,
            sent,
            got,
            end_game,
        } = scratch;
        offers.clear();
        incoming.fill(0.0);
        sent.fill(0.0);
        got.fill(0.0);
        end_game.clear();
        end_game.extend((0..self.groups.len()).map(|g| self.end_game(g)));
        for u in 0..self.peers.len() {
            let first = offers.len();
            let mut total = 0.0;
            for (li, link) in self.peers[u].links.iter().enumerate() {
                if link.weight > 0.0 && self.can_send(u, li, end_game[self.peers[link.to].group]) {
                    total += link.weight;
                    offers.push((u, li, link.weight));
                }
            }
            for offer in &mut offers[first..] {
                offer.2 *= self.peers[u].up / total;
                incoming[self.peers[u].links[offer.1].to] += offer.2;
            }
        }
        shuffle(offers, &mut self.rng);
        for &(u, li, amount) in offers.iter() {
            let v = self.peers[u].links[li].to;
            let cut = if incoming[v] > self.peers[v].down {
                self.peers[v].down / incoming[v]
            } else {
                1.0
            };
            let went = self.send(u, li, amount * cut);
            sent[u] += went;
            got[v] += went;
        }
        let slack = 1e-9;
        self.ledger.over_capacity += (0..self.peers.len())
            .filter(|&p| {
                sent[p] > self.peers[p].up * (1.0 + slack) + slack
                    || got[p] > self.peers[p].down * (1.0 + slack) + slack
            })
            .count();
    }
}

/// Buffers one round reuses from the last.
#[derive(Default)]
struct Scratch {
    /// (uploader, link, KB) offered this round.
    offers: Vec<(usize, usize, f64)>,
    /// Per peer: KB offered to it, KB it sent, KB it received.
    incoming: Vec<f64>,
    sent: Vec<f64>,
    got: Vec<f64>,
    /// Per group: in end-game mode at the round's start.
    end_game: Vec<bool>,
}

/// Run the swarm of `draw`, the other leechers on `swarm`'s client, with the observed user
/// (upload capacity `kbps`) as `observer`, until the observed user completes or `max_secs`.
pub(super) fn simulate(params: &Params, draw: &Draw, swarm: Client, observer: Observer, kbps: f64) -> RunResult {
    let (client, identities, view) = match observer {
        Observer::FreeRider(view) => (Client::FreeRider, 1, view),
        Observer::Client(c) => (c, 1, params.neighbours),
        Observer::Sybils(k) => (swarm, k.max(1), params.neighbours),
    };
    let (leechers, others) = (params.leechers, params.leechers + params.seeds);
    let share = kbps / identities as f64;
    let peer = |client, up: f64, group| Peer {
        client,
        up,
        down: up * params.download_factor,
        group,
        links: Vec::new(),
        optimistic: Vec::new(),
        estimates: Vec::new(),
        received: 0.0,
    };
    let mut peers: Vec<Peer> = (0..identities).map(|_| peer(client, share, 0)).collect();
    for o in 0..others {
        let (c, up) = if o < leechers {
            (swarm, draw.capacities[o])
        } else {
            (Client::Seed, params.seed_kbps)
        };
        peers.push(peer(c, up, 1 + o));
    }
    let mut connect = |a: usize, b: usize| {
        let (ia, ib) = (peers[a].links.len(), peers[b].links.len());
        peers[a].links.push(Link {
            to: b,
            back: ib,
            ..Link::default()
        });
        peers[b].links.push(Link {
            to: a,
            back: ia,
            ..Link::default()
        });
    };
    for (a, list) in draw.links.iter().enumerate() {
        for &b in list.iter().filter(|&&b| b > a) {
            connect(identities + a, identities + b);
        }
    }
    for &o in draw.order.iter().take(view.min(others)) {
        for i in 0..identities {
            connect(i, identities + o);
        }
    }
    for p in peers.iter_mut().filter(|p| p.client == Client::Tyrant) {
        p.estimates = vec![choker::first_estimate(params, p.up); p.links.len()];
    }
    let words = params.pieces.div_ceil(64);
    let group = |held, seed, hides| Group {
        held,
        seed,
        hides,
        announced: 0.0,
        announced_prev: 0.0,
    };
    let mut groups = vec![group(0, false, client == Client::FreeRider)];
    groups.extend((0..others).map(|o| group(0, o >= leechers, false)));
    let mut s = Swarm {
        params,
        peers,
        groups,
        words,
        have: vec![0; (1 + others) * words],
        pending: vec![0; (1 + others) * words],
        under_way: vec![0; (1 + others) * params.pieces],
        members: std::iter::once((0..identities).collect())
            .chain((0..others).map(|o| vec![identities + o]))
            .collect(),
        offer: vec![0; (1 + others) * words],
        copies: vec![0; params.pieces],
        rng: SplitMix64::new(draw.choices),
        newcomers: draw.newcomers.clone(),
        ledger: Ledger::default(),
    };
    for o in 0..others {
        let pieces: Vec<usize> = if o < leechers {
            draw.initial[o].clone()
        } else {
            (0..params.pieces).collect()
        };
        for &piece in &pieces {
            Swarm::set(&mut s.have, words, 1 + o, piece, true);
            if o < leechers {
                s.copies[piece] += 1;
            }
        }
        s.groups[1 + o].held = pieces.len();
    }
    let n = s.peers.len();
    let mut scratch = Scratch {
        incoming: vec![0.0; n],
        sent: vec![0.0; n],
        got: vec![0.0; n],
        ..Scratch::default()
    };
    let mut time = None;
    for t in 0..params.max_secs {
        if t % params.rechoke_secs == 0 {
            s.roll_period();
            let rotate = t % params.optimistic_secs == 0;
            // BitTyrant last: it judges reciprocation by the choices its neighbours have just
            // made, which answer what it sent them in the period that ended.
            let (tyrants, rest): (Vec<usize>, Vec<usize>) =
                (0..s.peers.len()).partition(|&u| s.peers[u].client == Client::Tyrant);
            for u in rest.into_iter().chain(tyrants) {
                choker::rechoke(&mut s, u, rotate);
            }
        }
        s.round(&mut scratch);
        if s.groups[0].held == params.pieces {
            time = Some(t + 1);
            break;
        }
        for g in 1..s.groups.len() {
            if !s.groups[g].seed && s.groups[g].held == params.pieces {
                s.replace(g);
            }
        }
    }
    let mut ledger = s.ledger;
    ledger.in_flight = s
        .peers
        .iter()
        .flat_map(|p| p.links.iter())
        .filter_map(|l| l.piece.map(|(_, done)| done))
        .sum();
    ledger.max_received = s.peers.iter().map(|p| p.received).fold(0.0, f64::max);
    RunResult {
        time,
        observer_kb: s.peers[..identities].iter().map(|p| p.received).sum(),
        ledger,
    }
}
