//! One BitTorrent client's protocol state, sans I/O (the quinn-proto habit): every connection's
//! BEP 3 state (choked/interested both ways, the peer's pieces, requests both ways), the
//! [`Picker`], the [`Choker`] and the [`PieceStore`]. The driver ([`super::node`]) hands in
//! decoded messages and the time, and takes out messages to send ([`Client::poll_transmit`])
//! and connections to close ([`Client::take_closing`]); nothing here touches a socket or a
//! clock.
//!
//! Bad input from a peer drops that peer with a [`DropReason`] (logged by the driver, counted
//! in [`ClientStats::dropped`]), never a panic: a bitfield of the wrong size, a `have` or `request` outside the torrent, a request for a piece we do
//! not have or over [`MAX_REQUEST`] bytes, more queued requests than
//! [`ClientConfig::max_queued_requests`], a block of the wrong length, too many blocks nobody
//! asked for. A piece that fails its SHA-1 is fetched again; the peer that sent all of it is
//! banned at once, peers that sent part of it after [`ClientConfig::strikes`] such pieces.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::peerwire::{Handshake, Limits, Message};
use onionlab_crawler::tracker::PeerId;
use thiserror::Error;

use super::bitfield::Bitfield;
use super::choker::{Choker, ChokerConfig, PeerKey, PeerView, Strategy};
use super::picker::Picker;
use super::rate::RateMeter;
use super::torrent::{BlockRef, Geometry, PieceStore};

/// A connection's number, given by [`Client::new_conn_id`].
pub type ConnId = PeerKey;

/// The largest block a peer may request (BEP 3: clients close connections asking for more).
pub const MAX_REQUEST: u32 = 128 << 10;

/// How a client behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Whom we upload to.
    pub strategy: Strategy,
    /// The choker's slots and periods.
    pub choker: ChokerConfig,
    /// Block requests kept outstanding per peer.
    pub pipeline: usize,
    /// A peer's requests we queue before dropping it. We send no extension handshake (BEP 10
    /// `reqq`), so a peer does not know this limit: it must be as generous as the clients'
    /// own (Transmission keeps more than 256 requests outstanding to a fast seed).
    pub max_queued_requests: usize,
    /// A request unanswered this long goes to another peer.
    pub request_timeout: Duration,
    /// A keep-alive after this long without sending.
    pub keepalive: Duration,
    /// The window rates are measured over (the choker ranks by them).
    pub rate_window: Duration,
    /// Pieces picked at random before rarest first.
    pub random_first: u32,
    /// Ask a second peer for the last outstanding blocks.
    pub endgame: bool,
    /// Connections at most (incoming and outgoing).
    pub max_connections: usize,
    /// Blocks nobody asked for that a peer may send before it is dropped.
    pub max_unrequested: u32,
    /// Failed pieces a peer may have contributed to before it is banned.
    pub strikes: u32,
    /// An adversary: every block we serve has its first byte flipped.
    pub corrupt_uploads: bool,
    /// The seed of every random choice.
    pub seed: u64,
}

impl Default for ClientConfig {
    /// A random peer id, the standard choker, 16 requests in flight, 2,000 queued (libtorrent's
    /// `max_allowed_in_request_queue`), 30 s request timeout, 60 s keep-alive, 20 s rate
    /// window, one random first piece, endgame, 50 connections, 64 unrequested blocks, 2
    /// strikes.
    fn default() -> Self {
        ClientConfig {
            peer_id: onionlab_crawler::probe::random_peer_id(),
            strategy: Strategy::Standard,
            choker: ChokerConfig::default(),
            pipeline: 16,
            max_queued_requests: 2000,
            request_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            rate_window: Duration::from_secs(20),
            random_first: 1,
            endgame: true,
            max_connections: 50,
            max_unrequested: 64,
            strikes: 2,
            corrupt_uploads: false,
            seed: 1,
        }
    }
}

/// Why a connection was closed by us.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The peer broke BEP 3.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer sent data that failed its hash check.
    #[error("bad data: {0}")]
    BadData(String),
    /// The peer went over one of our limits.
    #[error("over a limit: {0}")]
    Limit(String),
    /// The peer's address is banned.
    #[error("banned address")]
    Banned,
    /// We already have a connection to this peer id (the one the lower id opened is kept).
    #[error("a second connection to the same peer")]
    Duplicate,
    /// The peer is ourselves.
    #[error("a connection to ourselves")]
    ItsUs,
    /// Both ends hold the whole torrent.
    #[error("both ends are seeds")]
    BothSeeds,
    /// [`ClientConfig::max_connections`] reached.
    #[error("too many connections")]
    Full,
}

impl DropReason {
    /// Whether the peer misbehaved (as opposed to a connection that was simply not needed).
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            DropReason::Protocol(_) | DropReason::BadData(_) | DropReason::Limit(_)
        )
    }
}

/// A peer dropped for misbehaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Its address.
    pub addr: SocketAddr,
    /// Why.
    pub reason: String,
}

/// Running totals of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Piece data sent.
    pub uploaded: u64,
    /// Piece data received (wanted or not).
    pub downloaded: u64,
    /// Piece data received that was not wanted (duplicates, late or unasked blocks).
    pub wasted: u64,
    /// Pieces that failed their hash check.
    pub hash_failures: u32,
    /// Peers dropped for misbehaving.
    pub dropped: Vec<Dropped>,
    /// Most connections open at once.
    pub peak_connections: usize,
}

/// One connection's protocol state.
#[derive(Debug)]
struct Conn {
    addr: SocketAddr,
    peer_id: PeerId,
    outgoing: bool,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    has: Bitfield,
    ours: Vec<(BlockRef, Instant)>,
    theirs: VecDeque<BlockRef>,
    control: VecDeque<Message>,
    down: RateMeter,
    up: RateMeter,
    announced: RateMeter,
    unrequested: u32,
    last_sent: Instant,
    share: Option<f64>,
}

/// What we know of a peer address from the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Not connected; try from this instant on.
    Idle { retry_at: Instant, failures: u32 },
    /// A connection attempt is under way.
    Connecting { failures: u32 },
    /// Connected, given up on, or not needed again.
    Done,
}

/// Connection attempts to one address before giving up on it.
const MAX_CONNECT_FAILURES: u32 = 5;

/// One client's protocol state.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    info_hash: InfoHash,
    geometry: Geometry,
    store: PieceStore,
    picker: Picker,
    choker: Choker,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    known: BTreeMap<SocketAddr, Known>,
    own: BTreeSet<SocketAddr>,
    banned: BTreeSet<IpAddr>,
    strikes: BTreeMap<IpAddr, u32>,
    contributors: BTreeMap<u32, BTreeSet<IpAddr>>,
    closing: Vec<(ConnId, DropReason)>,
    dirty: BTreeSet<ConnId>,
    stats: ClientStats,
    completed_at: Option<Instant>,
}

impl Client {
    /// A client for the torrent `info_hash` whose content `store` holds (all of it for a seed).
    pub fn new(cfg: ClientConfig, info_hash: InfoHash, store: PieceStore) -> Client {
        let geometry = *store.geometry();
        let picker = Picker::new(geometry, store.have(), cfg.random_first, cfg.endgame, cfg.seed);
        let choker = Choker::new(cfg.choker, cfg.strategy, cfg.seed ^ 0xC40C_E500);
        Client {
            cfg,
            info_hash,
            geometry,
            store,
            picker,
            choker,
            conns: BTreeMap::new(),
            next_conn: 1,
            known: BTreeMap::new(),
            own: BTreeSet::new(),
            banned: BTreeSet::new(),
            strikes: BTreeMap::new(),
            contributors: BTreeMap::new(),
            closing: Vec::new(),
            dirty: BTreeSet::new(),
            stats: ClientStats::default(),
            completed_at: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Our handshake.
    pub fn handshake(&self) -> Handshake {
        Handshake::new(self.info_hash, self.cfg.peer_id)
    }

    /// The torrent.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The message size limit for this torrent: a [`MAX_REQUEST`] block or the bitfield.
    pub fn limits(&self) -> Limits {
        let bitfield = 1 + self.geometry.pieces.div_ceil(8);
        Limits {
            max_message: (1 + 8 + MAX_REQUEST).max(bitfield),
        }
    }

    /// The pieces we hold.
    pub fn have(&self) -> &Bitfield {
        self.store.have()
    }

    /// Whether we hold the whole torrent.
    pub fn is_complete(&self) -> bool {
        self.store.have().is_complete()
    }

    /// When the last piece passed its check (`None` for a client that started complete).
    pub fn completed_at(&self) -> Option<Instant> {
        self.completed_at
    }

    /// The content, once complete.
    pub fn content(&self) -> Option<&[u8]> {
        self.store.content()
    }

    /// Bytes still missing.
    pub fn left(&self) -> u64 {
        (0..self.geometry.pieces)
            .filter(|&i| !self.store.have().has(i))
            .map(|i| u64::from(self.geometry.piece_len(i)))
            .sum()
    }

    /// The totals.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Connections open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The upload rate the choker gave connection `id`, if its strategy divides bandwidth.
    pub fn upload_share(&self, id: ConnId) -> Option<f64> {
        self.conns.get(&id).and_then(|c| c.share)
    }

    /// A fresh connection number.
    pub fn new_conn_id(&mut self) -> ConnId {
        self.next_conn += 1;
        self.next_conn
    }

    /// Our own listening address: never connected to.
    pub fn add_own_addr(&mut self, addr: SocketAddr) {
        self.own.insert(addr);
    }

    /// Peers the tracker named.
    pub fn add_peers(&mut self, addrs: impl IntoIterator<Item = SocketAddr>, now: Instant) {
        for a in addrs {
            if !self.own.contains(&a) && !self.banned.contains(&a.ip()) {
                self.known.entry(a).or_insert(Known::Idle {
                    retry_at: now,
                    failures: 0,
                });
            }
        }
    }

    /// Addresses to connect to now (each marked as being connected to), within the connection
    /// limit. A seed connects too, as libtorrent and Transmission seeds do: some clients
    /// (Transmission among them) never dial a loopback address a tracker names, so on
    /// loopback they get the content only from peers that dial them. Two seeds that meet part
    /// at once ([`DropReason::BothSeeds`]) and are not dialled again.
    pub fn connect_candidates(&mut self, now: Instant) -> Vec<SocketAddr> {
        let pending = self
            .known
            .values()
            .filter(|k| matches!(k, Known::Connecting { .. }))
            .count();
        let mut room = self.cfg.max_connections.saturating_sub(self.conns.len() + pending);
        let mut out = Vec::new();
        for (addr, k) in self.known.iter_mut() {
            if room == 0 {
                break;
            }
            if let Known::Idle { retry_at, failures } = *k
                && retry_at <= now
                && !self.banned.contains(&addr.ip())
            {
                *k = Known::Connecting { failures };
                out.push(*addr);
                room -= 1;
            }
        }
        out
    }

    /// A connection attempt to `addr` failed before its handshake completed.
    pub fn connect_failed(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(k) = self.known.get_mut(&addr) {
            let failures = match *k {
                Known::Connecting { failures } | Known::Idle { failures, .. } => failures + 1,
                Known::Done => return,
            };
            *k = if failures >= MAX_CONNECT_FAILURES {
                Known::Done
            } else {
                Known::Idle {
                    retry_at: now + Duration::from_millis(250 << failures.min(8)),
                    failures,
                }
            };
        }
    }

    /// Whether an incoming connection from `addr` may be accepted.
    pub fn may_accept(&self, addr: SocketAddr) -> bool {
        !self.banned.contains(&addr.ip()) && self.conns.len() < self.cfg.max_connections
    }

    /// A connection finished its handshake with `peer`; `outgoing` if we opened it (to the
    /// tracker address `addr`). Refused for a banned address, ourselves, a duplicate or when
    /// full; a duplicate may instead replace the older connection (listed in
    /// [`Client::take_closing`]).
    pub fn connected(
        &mut self,
        id: ConnId,
        addr: SocketAddr,
        outgoing: bool,
        peer: &Handshake,
        now: Instant,
    ) -> Result<(), DropReason> {
        if outgoing && let Some(k) = self.known.get_mut(&addr) {
            *k = Known::Done;
        }
        if self.banned.contains(&addr.ip()) {
            return Err(DropReason::Banned);
        }
        if peer.peer_id == self.cfg.peer_id {
            return Err(DropReason::ItsUs);
        }
        let existing = self
            .conns
            .iter()
            .find(|(_, c)| c.peer_id == peer.peer_id)
            .map(|(&k, c)| (k, c.outgoing));
        if let Some((old, old_outgoing)) = existing {
            // Keep the connection opened by the lower peer id; both ends agree on which.
            let opener = |out: bool| if out { self.cfg.peer_id } else { peer.peer_id };
            if old_outgoing == outgoing || opener(old_outgoing) < opener(outgoing) {
                return Err(DropReason::Duplicate);
            }
            self.drop_conn(old, DropReason::Duplicate);
        }
        if self.conns.len() >= self.cfg.max_connections {
            return Err(DropReason::Full);
        }
        let window = self.cfg.rate_window;
        let mut conn = Conn {
            addr,
            peer_id: peer.peer_id,
            outgoing,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            has: Bitfield::new(self.geometry.pieces),
            ours: Vec::new(),
            theirs: VecDeque::new(),
            control: VecDeque::new(),
            down: RateMeter::new(window),
            up: RateMeter::new(window),
            announced: RateMeter::new(window),
            unrequested: 0,
            last_sent: now,
            share: None,
        };
        if self.store.have().count() > 0 {
            conn.control.push_back(Message::Bitfield(self.store.have().to_wire()));
        }
        self.conns.insert(id, conn);
        self.dirty.insert(id);
        self.stats.peak_connections = self.stats.peak_connections.max(self.conns.len());
        Ok(())
    }

    /// A connection ended on the driver's side (closed, timed out, unreadable).
    pub fn disconnected(&mut self, id: ConnId) {
        self.forget_conn(id);
    }

    /// Drops connection `id` for a violation the driver found (a message that does not decode).
    pub fn drop_peer(&mut self, id: ConnId, what: String) -> DropReason {
        let reason = DropReason::Protocol(what);
        self.drop_conn(id, reason.clone());
        reason
    }

    /// Connections to close, with the reason (the driver logs it and closes the socket).
    pub fn take_closing(&mut self) -> Vec<(ConnId, DropReason)> {
        std::mem::take(&mut self.closing)
    }

    /// Connections with something new to send.
    pub fn take_dirty(&mut self) -> BTreeSet<ConnId> {
        std::mem::take(&mut self.dirty)
    }

    /// Handles one message from connection `id`. An error means the connection is dropped (it
    /// is also in [`Client::take_closing`]).
    pub fn receive(&mut self, id: ConnId, msg: Message, now: Instant) -> Result<(), DropReason> {
        if !self.conns.contains_key(&id) {
            return Ok(());
        }
        match self.handle(id, msg, now) {
            Err(reason) => {
                self.drop_conn(id, reason.clone());
                Err(reason)
            }
            // Dropped while handling (its piece failed, or both ends became seeds).
            Ok(()) => match self.closing.iter().find(|(c, _)| *c == id) {
                Some((_, reason)) => Err(reason.clone()),
                None => Ok(()),
            },
        }
    }

    fn handle(&mut self, id: ConnId, msg: Message, now: Instant) -> Result<(), DropReason> {
        let pieces = self.geometry.pieces;
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::Extended { .. } | Message::Unknown { .. } => {}
            Message::Choke => {
                conn.peer_choking = true;
                for (b, _) in conn.ours.drain(..) {
                    self.picker.unrequest(&b);
                }
            }
            Message::Unchoke => {
                conn.peer_choking = false;
                self.fill_requests(id, now);
            }
            Message::Interested | Message::NotInterested => {
                conn.peer_interested = msg == Message::Interested;
                self.run_choker(now);
            }
            Message::Have { piece } => {
                if piece >= pieces {
                    return Err(DropReason::Protocol(format!("have for piece {piece} of {pieces}")));
                }
                if conn.has.set(piece) {
                    conn.announced.record(u64::from(self.geometry.piece_len(piece)), now);
                    self.picker.add_have(piece);
                    self.after_news(id, now)?;
                }
            }
            Message::Bitfield(bits) => {
                // BEP 3 sends it first, if at all; aria2 sends it late and more than once (after
                // `have`s, twice in a row). Each is merged in, as `have`s of the pieces it adds.
                let has = Bitfield::from_wire(&bits, pieces).map_err(|e| DropReason::Protocol(e.to_string()))?;
                for i in has.ones() {
                    if conn.has.set(i) {
                        self.picker.add_have(i);
                    }
                }
                self.after_news(id, now)?;
            }
            Message::Request { piece, begin, length } => {
                let block = BlockRef { piece, begin, length };
                if length > MAX_REQUEST || !self.geometry.contains(&block) {
                    return Err(DropReason::Protocol(format!(
                        "request {piece}/{begin}+{length} outside the torrent"
                    )));
                }
                if !self.store.have().has(piece) {
                    return Err(DropReason::Protocol(format!(
                        "request for piece {piece}, which we do not have"
                    )));
                }
                if conn.am_choking || conn.theirs.contains(&block) {
                    // BEP 3: requests from a choked peer are ignored.
                    return Ok(());
                }
                if conn.theirs.len() >= self.cfg.max_queued_requests {
                    return Err(DropReason::Limit(format!(
                        "over {} queued requests",
                        self.cfg.max_queued_requests
                    )));
                }
                conn.theirs.push_back(block);
                self.dirty.insert(id);
            }
            Message::Cancel { piece, begin, length } => {
                conn.theirs.retain(|b| *b != BlockRef { piece, begin, length });
            }
            Message::Piece { piece, begin, block } => self.on_block(id, piece, begin, block, now)?,
        }
        Ok(())
    }

    /// After a bitfield or a `have`: interest, requests, and whether both ends are seeds.
    fn after_news(&mut self, id: ConnId, now: Instant) -> Result<(), DropReason> {
        if self.is_complete() && self.conns.get(&id).is_some_and(|c| c.has.is_complete()) {
            return Err(DropReason::BothSeeds);
        }
        self.update_interest(id);
        self.fill_requests(id, now);
        Ok(())
    }

    fn on_block(&mut self, id: ConnId, piece: u32, begin: u32, data: Vec<u8>, now: Instant) -> Result<(), DropReason> {
        let len = data.len() as u64;
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        self.stats.downloaded += len;
        conn.down.record(len, now);
        let Some(at) = conn.ours.iter().position(|(b, _)| b.piece == piece && b.begin == begin) else {
            // Late (after a choke, a cancel or a timeout) or never asked for.
            self.stats.wasted += len;
            conn.unrequested += 1;
            if conn.unrequested > self.cfg.max_unrequested {
                return Err(DropReason::Limit(format!(
                    "over {} blocks nobody asked for",
                    self.cfg.max_unrequested
                )));
            }
            return Ok(());
        };
        let (block, _) = conn.ours.swap_remove(at);
        if data.len() != block.length as usize {
            return Err(DropReason::Protocol(format!(
                "block {piece}/{begin} of {} bytes, {} requested",
                data.len(),
                block.length
            )));
        }
        let ip = conn.addr.ip();
        match self.picker.received(&block) {
            None => self.stats.wasted += len,
            Some(done) => {
                self.store.write(&block, &data);
                self.contributors.entry(piece).or_default().insert(ip);
                // Endgame: nobody else need send it now.
                for (&other, c) in self.conns.iter_mut() {
                    if other != id
                        && let Some(i) = c.ours.iter().position(|(b, _)| *b == block)
                    {
                        c.ours.swap_remove(i);
                        c.control.push_back(Message::Cancel {
                            piece,
                            begin,
                            length: block.length,
                        });
                        self.dirty.insert(other);
                    }
                }
                if done {
                    self.piece_done(piece, now);
                }
            }
        }
        // Dropped while the piece was checked (bad data, or both ends now seeds): already in
        // the closing list with its reason.
        self.fill_requests(id, now);
        Ok(())
    }

    fn piece_done(&mut self, piece: u32, now: Instant) {
        let contributors = self.contributors.remove(&piece).unwrap_or_default();
        if !self.store.verify(piece) {
            self.stats.hash_failures += 1;
            self.picker.failed(piece);
            let sole = contributors.len() == 1;
            for ip in contributors {
                let strikes = self.strikes.entry(ip).or_default();
                *strikes += 1;
                if sole || *strikes >= self.cfg.strikes {
                    self.banned.insert(ip);
                    let victims: Vec<ConnId> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.addr.ip() == ip)
                        .map(|(&k, _)| k)
                        .collect();
                    for v in victims {
                        self.drop_conn(v, DropReason::BadData(format!("piece {piece} failed its hash check")));
                    }
                }
            }
            return;
        }
        self.picker.passed(piece);
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for &id in &ids {
            if let Some(c) = self.conns.get_mut(&id) {
                c.control.push_back(Message::Have { piece });
            }
            self.dirty.insert(id);
            self.update_interest(id);
        }
        if self.is_complete() {
            self.completed_at = Some(now);
            for id in ids {
                if self.conns.get(&id).is_some_and(|c| c.has.is_complete()) {
                    self.drop_conn(id, DropReason::BothSeeds);
                }
            }
        }
    }

    fn update_interest(&mut self, id: ConnId) {
        let complete = self.is_complete();
        let have = self.store.have();
        if let Some(c) = self.conns.get_mut(&id) {
            let want = !complete && have.lacks_any_of(&c.has);
            if want != c.am_interested {
                c.am_interested = want;
                c.control.push_back(if want {
                    Message::Interested
                } else {
                    Message::NotInterested
                });
                self.dirty.insert(id);
            }
        }
    }

    fn fill_requests(&mut self, id: ConnId, now: Instant) {
        let Client {
            conns,
            picker,
            dirty,
            cfg,
            ..
        } = self;
        let Some(c) = conns.get_mut(&id) else { return };
        if c.peer_choking || !c.am_interested {
            return;
        }
        while c.ours.len() < cfg.pipeline {
            let ours = &c.ours;
            let Some(b) = picker.pick(&c.has, |b| ours.iter().any(|(o, _)| o == b)) else {
                break;
            };
            c.ours.push((b, now));
            c.control.push_back(Message::Request {
                piece: b.piece,
                begin: b.begin,
                length: b.length,
            });
            dirty.insert(id);
        }
    }

    fn run_choker(&mut self, now: Instant) {
        let views: Vec<PeerView> = self
            .conns
            .iter_mut()
            .map(|(&key, c)| PeerView {
                key,
                interested: c.peer_interested,
                downloaded: c.down.total(),
                down_rate: c.down.rate(now),
                up_rate: c.up.rate(now),
                announce_rate: c.announced.rate(now),
                wanted: c.am_interested,
                unchoked_us: !c.peer_choking,
            })
            .collect();
        let seeding = self.is_complete();
        let unchoked = self.choker.tick(now, &views, seeding).clone();
        for (&id, c) in self.conns.iter_mut() {
            let unchoke = unchoked.contains(id);
            c.share = unchoked.shares.get(&id).copied();
            if unchoke == c.am_choking {
                c.am_choking = !unchoke;
                if !unchoke {
                    c.theirs.clear();
                }
                c.control
                    .push_back(if unchoke { Message::Unchoke } else { Message::Choke });
                self.dirty.insert(id);
            }
        }
    }

    /// Timers: requests unanswered too long go elsewhere, keep-alives, the choker.
    pub fn tick(&mut self, now: Instant) {
        let timeout = self.cfg.request_timeout;
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for &id in &ids {
            let Some(c) = self.conns.get_mut(&id) else { continue };
            let (late, kept): (Vec<_>, Vec<_>) = c
                .ours
                .drain(..)
                .partition(|(_, at)| now.saturating_duration_since(*at) >= timeout);
            c.ours = kept;
            for (b, _) in late {
                self.picker.unrequest(&b);
                c.control.push_back(Message::Cancel {
                    piece: b.piece,
                    begin: b.begin,
                    length: b.length,
                });
                self.dirty.insert(id);
            }
            if now.saturating_duration_since(c.last_sent) >= self.cfg.keepalive && c.control.is_empty() {
                c.control.push_back(Message::KeepAlive);
                self.dirty.insert(id);
            }
        }
        for id in ids {
            self.fill_requests(id, now);
        }
        self.run_choker(now);
    }

    /// The next message for connection `id`: control messages first, then a requested block
    /// while the peer is unchoked.
    pub fn poll_transmit(&mut self, id: ConnId, now: Instant) -> Option<Message> {
        let c = self.conns.get_mut(&id)?;
        let msg = match c.control.pop_front() {
            Some(m) => m,
            None if !c.am_choking => {
                let b = c.theirs.pop_front()?;
                let mut block = self.store.read(&b)?.to_vec();
                if self.cfg.corrupt_uploads
                    && let Some(x) = block.first_mut()
                {
                    *x ^= 0xff;
                }
                c.up.record(u64::from(b.length), now);
                self.stats.uploaded += u64::from(b.length);
                Message::Piece {
                    piece: b.piece,
                    begin: b.begin,
                    block,
                }
            }
            None => return None,
        };
        c.last_sent = now;
        Some(msg)
    }

    fn drop_conn(&mut self, id: ConnId, reason: DropReason) {
        if let Some(c) = self.conns.get(&id) {
            if reason.is_misbehaviour() {
                self.banned.insert(c.addr.ip());
                self.stats.dropped.push(Dropped {
                    addr: c.addr,
                    reason: reason.to_string(),
                });
            }
            self.forget_conn(id);
            self.closing.push((id, reason));
        }
    }

    fn forget_conn(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id) {
            for (b, _) in &c.ours {
                self.picker.unrequest(b);
            }
            self.picker.remove_peer(&c.has);
            self.choker.forget(id);
            self.dirty.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests;
