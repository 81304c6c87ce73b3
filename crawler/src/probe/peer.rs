//! One peer wire session over TCP: connect, BEP 3 handshake (with the extension and DHT
//! reserved bits), BEP 10 extension handshake, then whatever the peer tells us while we are
//! connected (pieces held, choke state, `ut_pex` peers). Its operations live beside it:
//! [`super::metadata`] (BEP 9) and [`super::piece`] (a verified piece).
//!
//! [`PeerSession::open`] is one [`ProbeKind::PeerHandshake`] probe: each attempt connects,
//! sends our handshake, checks that the peer's echoes the info-hash, exchanges extension
//! handshakes when the peer set the BEP 10 bit, and then *settles*: it reads for at most
//! [`PeerConfig::settle`] until the peer has sent its extension handshake (if it offered one)
//! and said what it holds (`bitfield`, `have`, or the BEP 6 `have_all`/`have_none`, ids 14/15,
//! which arrive as [`Message::Unknown`]). A peer that sends another message first holds nothing
//! (BEP 3 lets a peer without pieces skip the bitfield); one that sends nothing in time leaves
//! [`PiecesHeld::Unknown`]. The session then records a [`PeerState`].
//!
//! Every later operation is its own probe on the open connection. An attempt that did not end
//! cleanly (timed out mid-exchange, bad input) leaves the connection in an unknown state, so the
//! next attempt (an engine retry or the next operation) connects and handshakes again first,
//! within that attempt.
//!
//! Limits: messages over [`PeerConfig::max_message`] are refused before they are buffered; a
//! bitfield must have the torrent's size when the piece count is known (otherwise at most
//! [`MAX_UNKNOWN_PIECES`] pieces are tracked); at most [`PeerConfig::max_pex_peers`] PEX peers
//! are kept per session. Every read runs under the engine's attempt timeout or the settle or
//! linger deadline.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::engine::{Engine, ProbeError, Recorder, Reply, Target};
use crate::infohash::InfoHash;
use crate::observe::{Observation, Outcome, PeerState, ProbeKind, Sighting, SourceKind, Visit, now_micros};
use crate::peerwire::{ExtHandshake, HANDSHAKE_LEN, Handshake, Limits, Message, MessageDecoder, PexMessage};
use crate::tracker::PeerId;

use super::Error;

/// Our extended message id for `ut_pex` (what peers send PEX messages to us as).
pub const UT_PEX_ID: u8 = 1;
/// Our extended message id for `ut_metadata`.
pub const UT_METADATA_ID: u8 = 2;
/// BEP 6 `have_all`.
const HAVE_ALL: u8 = 14;
/// BEP 6 `have_none`.
const HAVE_NONE: u8 = 15;
/// Most pieces tracked for a torrent whose piece count is not known (a 1 MiB bitfield).
pub const MAX_UNKNOWN_PIECES: u32 = 1 << 23;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;

/// How sessions behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our BEP 10 `v`.
    pub client: Vec<u8>,
    /// After the handshake, how long to wait for the extension handshake and the pieces held.
    pub settle: Duration,
    /// Largest message accepted (length prefix).
    pub max_message: u32,
    /// Largest `metadata_size` fetched over `ut_metadata`.
    pub max_metadata: u32,
    /// Largest piece downloaded.
    pub max_piece: u64,
    /// Block requests kept outstanding (lowered to the peer's `reqq` if smaller).
    pub pipeline: usize,
    /// Most PEX peers kept per session.
    pub max_pex_peers: usize,
}

impl Default for PeerConfig {
    /// A random peer id, 2 s to settle, 1 MiB messages, 16 MiB metadata, 32 MiB pieces,
    /// 16 outstanding requests, 1,000 PEX peers.
    fn default() -> Self {
        PeerConfig {
            peer_id: super::random_peer_id(),
            client: concat!("onionlab-crawl ", env!("CARGO_PKG_VERSION"))
                .as_bytes()
                .to_vec(),
            settle: Duration::from_secs(2),
            max_message: Limits::default().max_message,
            max_metadata: 16 << 20,
            max_piece: 32 << 20,
            pipeline: 16,
            max_pex_peers: 1000,
        }
    }
}

/// What the peer said about itself when we connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// Its BEP 3 handshake (reserved bits, peer id).
    pub handshake: Handshake,
    /// Its BEP 10 handshake (merged with any later update), if it sent one.
    pub ext: Option<ExtHandshake>,
    /// The payload of its first BEP 10 handshake, as received.
    pub ext_raw: Option<Vec<u8>>,
    /// Non-canonical bencode forms in that payload.
    pub ext_deviations: u32,
}

impl PeerHello {
    /// Its BEP 10 `v`, if any.
    pub fn client(&self) -> Option<&[u8]> {
        self.ext.as_ref().and_then(|e| e.v.as_deref())
    }

    /// The id it wants extension `name` sent as, if it offers it (id 0 means disabled).
    pub fn extension_id(&self, name: &[u8]) -> Option<u8> {
        self.ext
            .as_ref()
            .and_then(|e| e.m.get(name).copied())
            .filter(|&id| id != 0)
    }

    /// Its `yourip` as an address, if it sent a 4- or 16-byte one.
    pub fn yourip(&self) -> Option<IpAddr> {
        let raw = self.ext.as_ref()?.yourip.as_deref()?;
        if let Ok(v4) = <[u8; 4]>::try_from(raw) {
            return Some(IpAddr::from(v4));
        }
        <[u8; 16]>::try_from(raw).ok().map(IpAddr::from)
    }
}

/// What a peer has said it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PiecesHeld {
    /// Nothing said yet.
    Unknown,
    /// No pieces (`have_none`, or another message where the bitfield would be).
    Nothing,
    /// Every piece (`have_all`).
    All,
    /// A bitfield, high bit first, updated by `have`s.
    Bits(Vec<u8>),
}

impl PiecesHeld {
    /// Pieces held (of `total`, when known); `None` when unknown, or for `All` without a total.
    pub fn count(&self, total: Option<u32>) -> Option<u32> {
        match self {
            PiecesHeld::Unknown => None,
            PiecesHeld::Nothing => Some(0),
            PiecesHeld::All => total,
            PiecesHeld::Bits(bits) => {
                let limit = total.map_or(usize::MAX, |t| t as usize);
                let n = (0..bits.len() * 8)
                    .take(limit)
                    .filter(|&i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
                    .count();
                Some(u32::try_from(n).unwrap_or(u32::MAX))
            }
        }
    }

    /// Whether the peer said it holds `piece`.
    pub fn has(&self, piece: u32) -> bool {
        match self {
            PiecesHeld::All => true,
            PiecesHeld::Bits(bits) => {
                let i = piece as usize;
                bits.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
            }
            PiecesHeld::Unknown | PiecesHeld::Nothing => false,
        }
    }

    /// Records a `have`.
    fn set(&mut self, piece: u32, total: Option<u32>) -> Result<(), String> {
        let limit = total.unwrap_or(MAX_UNKNOWN_PIECES);
        if piece >= limit {
            return Err(format!("have for piece {piece}, beyond the {limit} pieces"));
        }
        let i = piece as usize;
        match self {
            PiecesHeld::All => {}
            PiecesHeld::Unknown | PiecesHeld::Nothing => {
                let mut bits = vec![0u8; total.map_or(i / 8 + 1, |t| (t as usize).div_ceil(8))];
                bits[i / 8] |= 0x80 >> (i % 8);
                *self = PiecesHeld::Bits(bits);
            }
            PiecesHeld::Bits(bits) => {
                if bits.len() <= i / 8 {
                    bits.resize(i / 8 + 1, 0);
                }
                bits[i / 8] |= 0x80 >> (i % 8);
            }
        }
        Ok(())
    }
}

/// An open TCP connection and its read state.
struct Conn {
    stream: TcpStream,
    decoder: MessageDecoder,
    buf: Vec<u8>,
    /// An operation started and has not finished cleanly: the stream may be mid-exchange.
    busy: bool,
}

/// A session with one peer about one torrent.
pub struct PeerSession {
    addr: SocketAddr,
    info_hash: InfoHash,
    cfg: PeerConfig,
    pieces_total: Option<u32>,
    conn: Option<Conn>,
    hello: PeerHello,
    held: PiecesHeld,
    pub(super) peer_choking: bool,
    pub(super) am_interested: bool,
    pex_seen: HashSet<SocketAddr>,
    pex_new: Vec<SocketAddr>,
    /// The last piece downloaded whole and whether it matched its hash.
    pub(super) last_check: Option<(u32, bool)>,
    /// Rows waiting to be recorded (recording awaits, which reads must not).
    pending: Vec<Observation>,
}

impl std::fmt::Debug for PeerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSession")
            .field("addr", &self.addr)
            .field("info_hash", &self.info_hash)
            .field("connected", &self.conn.is_some())
            .field("hello", &self.hello)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl Reply for PeerSession {
    fn describe(&self, visit: &mut Visit) {
        visit.remote_id = Some(self.hello.handshake.peer_id);
        visit.client = self.hello.client().map(<[u8]>::to_vec);
        visit.raw.clone_from(&self.hello.ext_raw);
        visit.deviations = self.hello.ext_deviations;
    }
}

fn closed() -> ProbeError {
    ProbeError::new(Outcome::Unreachable, "the peer closed the connection")
}

impl PeerSession {
    /// Connects to `addr` about `info_hash` as one [`ProbeKind::PeerHandshake`] probe, then
    /// records the peer's [`PeerState`] (with `pieces_total` when the torrent is known).
    pub async fn open(
        engine: &Engine,
        cfg: &PeerConfig,
        addr: SocketAddr,
        info_hash: InfoHash,
        pieces_total: Option<u32>,
    ) -> Result<PeerSession, Error> {
        let target = Target::addr(ProbeKind::PeerHandshake, addr).about(info_hash);
        let mut session = engine
            .probe(&target, move || async move {
                let mut s = PeerSession {
                    addr,
                    info_hash,
                    cfg: cfg.clone(),
                    pieces_total,
                    conn: None,
                    hello: PeerHello {
                        handshake: Handshake::new(info_hash, [0; 20]),
                        ext: None,
                        ext_raw: None,
                        ext_deviations: 0,
                    },
                    held: PiecesHeld::Unknown,
                    peer_choking: true,
                    am_interested: false,
                    pex_seen: HashSet::new(),
                    pex_new: Vec::new(),
                    last_check: None,
                    pending: Vec::new(),
                };
                s.establish().await?;
                Ok(s)
            })
            .await?;
        let state = session.state();
        session.pending.push(Observation::PeerState(state));
        session.flush(engine.recorder()).await;
        Ok(session)
    }

    /// The peer.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The torrent.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// What the peer said when we connected (the latest connection, after a reconnect).
    pub fn hello(&self) -> &PeerHello {
        &self.hello
    }

    /// What the peer has said it holds.
    pub fn held(&self) -> &PiecesHeld {
        &self.held
    }

    /// The torrent's piece count, if known.
    pub fn pieces_total(&self) -> Option<u32> {
        self.pieces_total
    }

    /// Sets the piece count once it is known (after a metadata fetch).
    pub fn set_pieces_total(&mut self, total: u32) {
        self.pieces_total = Some(total);
    }

    /// The peer's state now, as recorded by [`PeerSession::open`].
    pub fn state(&self) -> PeerState {
        PeerState {
            at: now_micros(),
            addr: self.addr,
            info_hash: self.info_hash,
            peer_id: self.hello.handshake.peer_id,
            client: self.hello.client().map(<[u8]>::to_vec),
            pieces_have: self.held.count(self.pieces_total),
            pieces_total: self.pieces_total,
        }
    }

    /// PEX peers received since the last call (each address once per session).
    pub fn take_pex_peers(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.pex_new)
    }

    /// Keeps reading for `duration` (or until the peer closes) to collect `have`s and PEX
    /// messages; nothing is sent. A read error closes the connection.
    pub async fn linger(&mut self, duration: Duration, recorder: &Recorder) {
        if self.conn.as_ref().is_some_and(|c| !c.busy) {
            let deadline = tokio::time::Instant::now() + duration;
            loop {
                match tokio::time::timeout_at(deadline, self.recv()).await {
                    Err(_) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.addr, "linger ended: {e}");
                        self.conn = None;
                        break;
                    }
                }
            }
        }
        self.flush(recorder).await;
    }

    /// Hands the pending rows (PEX sightings, piece checks, peer states) to `recorder`.
    pub(super) async fn flush(&mut self, recorder: &Recorder) {
        for obs in std::mem::take(&mut self.pending) {
            recorder.record(obs).await;
        }
    }

    pub(super) fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    pub(super) fn record(&mut self, obs: Observation) {
        self.pending.push(obs);
    }

    /// Runs `op` on this session as one probe of `kind`: each attempt gets exclusive use of
    /// the session. Pending rows are recorded afterwards.
    pub(super) async fn probe_op<T, F>(&mut self, engine: &Engine, kind: ProbeKind, op: F) -> Result<T, Error>
    where
        T: Reply,
        F: for<'s> Fn(
            &'s mut PeerSession,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<T, ProbeError>> + Send + 's>>,
    {
        let target = Target::addr(kind, self.addr).about(self.info_hash);
        let result = {
            let cell = tokio::sync::Mutex::new(&mut *self);
            let (cell, op) = (&cell, &op);
            engine
                .probe(&target, move || async move {
                    let mut session = cell.lock().await;
                    op(&mut session).await
                })
                .await
        };
        self.flush(engine.recorder()).await;
        result.map_err(Error::Probe)
    }

    /// Starts an operation: reconnects first if the connection is gone or an earlier attempt
    /// left it mid-exchange.
    pub(super) async fn begin_op(&mut self) -> Result<(), ProbeError> {
        if self.conn.as_ref().is_none_or(|c| c.busy) {
            self.establish().await?;
        }
        if let Some(c) = &mut self.conn {
            c.busy = true;
        }
        Ok(())
    }

    /// Ends an operation that left the stream in a known state.
    pub(super) fn end_op(&mut self) {
        if let Some(c) = &mut self.conn {
            c.busy = false;
        }
    }

    /// Connects and handshakes (again), resetting what the peer had told us.
    async fn establish(&mut self) -> Result<(), ProbeError> {
        self.conn = None;
        self.held = PiecesHeld::Unknown;
        self.peer_choking = true;
        self.am_interested = false;
        let mut stream = TcpStream::connect(self.addr).await.map_err(|e| ProbeError::io(&e))?;
        stream.set_nodelay(true).map_err(|e| ProbeError::io(&e))?;
        let mut ours = Handshake::new(self.info_hash, self.cfg.peer_id);
        ours.set_extensions(true);
        ours.set_dht(true);
        stream.write_all(&ours.encode()).await.map_err(|e| ProbeError::io(&e))?;
        let mut theirs = [0u8; HANDSHAKE_LEN];
        stream.read_exact(&mut theirs).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ProbeError::new(
                    Outcome::Unreachable,
                    "the peer closed the connection before its handshake",
                )
            } else {
                ProbeError::io(&e)
            }
        })?;
        let handshake = Handshake::decode(&theirs)
            .map_err(|e| ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(theirs.to_vec()))?;
        if handshake.info_hash != self.info_hash {
            return Err(ProbeError::new(
                Outcome::ProtocolError,
                format!(
                    "the handshake names another info-hash, {}",
                    handshake.info_hash.to_hex()
                ),
            )
            .with_raw(theirs.to_vec()));
        }
        self.hello = PeerHello {
            handshake,
            ext: None,
            ext_raw: None,
            ext_deviations: 0,
        };
        self.conn = Some(Conn {
            stream,
            decoder: MessageDecoder::with_limits(Limits {
                max_message: self.cfg.max_message,
            }),
            buf: vec![0; READ_CHUNK],
            busy: false,
        });
        if handshake.supports_extensions() {
            let mut m = std::collections::BTreeMap::new();
            m.insert(b"ut_metadata".to_vec(), UT_METADATA_ID);
            m.insert(b"ut_pex".to_vec(), UT_PEX_ID);
            let yourip = match self.addr.ip() {
                IpAddr::V4(ip) => ip.octets().to_vec(),
                IpAddr::V6(ip) => ip.octets().to_vec(),
            };
            let ext = ExtHandshake {
                m,
                v: Some(self.cfg.client.clone()),
                yourip: Some(yourip),
                ..ExtHandshake::default()
            };
            self.send(&Message::Extended {
                id: 0,
                payload: ext.encode(),
            })
            .await?;
        }
        self.settle().await
    }

    /// Reads until the peer has sent its extension handshake (if it offered one) and said what
    /// it holds, or [`PeerConfig::settle`] passed.
    async fn settle(&mut self) -> Result<(), ProbeError> {
        let deadline = tokio::time::Instant::now() + self.cfg.settle;
        loop {
            let ext_done = !self.hello.handshake.supports_extensions() || self.hello.ext.is_some();
            if ext_done && self.held != PiecesHeld::Unknown {
                return Ok(());
            }
            let msg = match tokio::time::timeout_at(deadline, self.recv()).await {
                Err(_) => return Ok(()),
                Ok(msg) => msg?,
            };
            let says_nothing_of_pieces = matches!(
                msg,
                Message::KeepAlive | Message::Port(_) | Message::Extended { .. } | Message::Unknown { .. }
            );
            if self.held == PiecesHeld::Unknown && !says_nothing_of_pieces {
                self.held = PiecesHeld::Nothing;
            }
        }
    }

    /// Sends one message.
    pub(super) async fn send(&mut self, msg: &Message) -> Result<(), ProbeError> {
        let conn = self.conn.as_mut().ok_or_else(closed)?;
        conn.stream
            .write_all(&msg.encode())
            .await
            .map_err(|e| ProbeError::io(&e))
    }

    /// The next message, after updating the session with what it says. Cancel-safe: a message
    /// is never half-consumed.
    pub(super) async fn recv(&mut self) -> Result<Message, ProbeError> {
        loop {
            let conn = self.conn.as_mut().ok_or_else(closed)?;
            let next = conn
                .decoder
                .next_message()
                .map_err(|e| ProbeError::new(Outcome::ProtocolError, e.to_string()))?;
            if let Some(msg) = next {
                self.absorb(&msg)?;
                return Ok(msg);
            }
            let n = conn.stream.read(&mut conn.buf).await.map_err(|e| ProbeError::io(&e))?;
            if n == 0 {
                return Err(closed());
            }
            conn.decoder.feed(&conn.buf[..n]);
        }
    }

    /// Updates the session with what `msg` says: choke state, pieces held, extension handshake
    /// updates, PEX peers.
    fn absorb(&mut self, msg: &Message) -> Result<(), ProbeError> {
        let protocol = |what: String| ProbeError::new(Outcome::ProtocolError, what);
        match msg {
            Message::Choke => self.peer_choking = true,
            Message::Unchoke => self.peer_choking = false,
            Message::Have { piece } => self.held.set(*piece, self.pieces_total).map_err(protocol)?,
            Message::Bitfield(bits) => {
                if let Some(total) = self.pieces_total {
                    let want = (total as usize).div_ceil(8);
                    if bits.len() != want {
                        return Err(protocol(format!(
                            "bitfield of {} bytes for {total} pieces ({want} bytes)",
                            bits.len()
                        )));
                    }
                }
                self.held = PiecesHeld::Bits(bits.clone());
            }
            Message::Unknown { id: HAVE_ALL, payload } if payload.is_empty() => self.held = PiecesHeld::All,
            Message::Unknown { id: HAVE_NONE, payload } if payload.is_empty() => self.held = PiecesHeld::Nothing,
            Message::Extended { id: 0, payload } => {
                let d = ExtHandshake::decode(payload).map_err(|e| {
                    ProbeError::new(Outcome::ProtocolError, format!("extension handshake: {e}"))
                        .with_raw(payload.clone())
                })?;
                match &mut self.hello.ext {
                    None => {
                        self.hello.ext = Some(d.value);
                        self.hello.ext_raw = Some(payload.clone());
                        self.hello.ext_deviations = u32::try_from(d.deviations.len()).unwrap_or(u32::MAX);
                    }
                    Some(ext) => merge(ext, d.value),
                }
            }
            Message::Extended { id: UT_PEX_ID, payload } => {
                let pex = PexMessage::decode(payload).map_err(|e| {
                    ProbeError::new(Outcome::ProtocolError, format!("ut_pex: {e}")).with_raw(payload.clone())
                })?;
                let at = now_micros();
                for p in pex.value.added {
                    if self.pex_seen.len() >= self.cfg.max_pex_peers || !self.pex_seen.insert(p.addr) {
                        continue;
                    }
                    self.pex_new.push(p.addr);
                    self.pending.push(Observation::Sighting(Sighting {
                        at,
                        source_kind: SourceKind::Pex,
                        source: self.addr.to_string(),
                        source_id: None,
                        info_hash: Some(self.info_hash),
                        addr: p.addr,
                        id: None,
                    }));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A later BEP 10 handshake updates the first: `m` entries replace (id 0 disables), other
/// fields replace when present.
fn merge(ext: &mut ExtHandshake, update: ExtHandshake) {
    for (name, id) in update.m {
        if id == 0 {
            ext.m.remove(&name);
        } else {
            ext.m.insert(name, id);
        }
    }
    ext.v = update.v.or(ext.v.take());
    ext.yourip = update.yourip.or(ext.yourip.take());
    ext.reqq = update.reqq.or(ext.reqq);
    ext.metadata_size = update.metadata_size.or(ext.metadata_size);
    ext.p = update.p.or(ext.p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_held_counts_and_bounds() {
        let mut h = PiecesHeld::Unknown;
        assert_eq!(h.count(Some(10)), None);
        h.set(9, Some(10)).unwrap();
        assert_eq!(h, PiecesHeld::Bits(vec![0, 0x40]));
        assert!(h.has(9) && !h.has(8) && !h.has(1000));
        assert!(h.set(10, Some(10)).is_err());
        h.set(0, Some(10)).unwrap();
        assert_eq!(h.count(Some(10)), Some(2));
        // Spare bits past the piece count are not counted.
        assert_eq!(PiecesHeld::Bits(vec![0xff, 0xff]).count(Some(10)), Some(10));
        assert_eq!(PiecesHeld::Bits(vec![0xff, 0xff]).count(None), Some(16));
        assert_eq!(PiecesHeld::All.count(Some(7)), Some(7));
        assert_eq!(PiecesHeld::All.count(None), None);
        assert_eq!(PiecesHeld::Nothing.count(None), Some(0));
        // Without a piece count, haves grow the bitfield up to a bound.
        let mut h = PiecesHeld::Nothing;
        h.set(20, None).unwrap();
        assert_eq!(h.count(None), Some(1));
        assert!(h.set(MAX_UNKNOWN_PIECES, None).is_err());
        assert!(h.set(u32::MAX, None).is_err());
    }

    #[test]
    fn later_extension_handshakes_update_the_first() {
        let mut first = ExtHandshake {
            v: Some(b"A".to_vec()),
            metadata_size: Some(5),
            ..ExtHandshake::default()
        };
        first.m.insert(b"ut_pex".to_vec(), 1);
        first.m.insert(b"ut_metadata".to_vec(), 2);
        let mut update = ExtHandshake {
            metadata_size: Some(9),
            ..ExtHandshake::default()
        };
        update.m.insert(b"ut_pex".to_vec(), 0);
        merge(&mut first, update);
        assert_eq!(first.v.as_deref(), Some(&b"A"[..]));
        assert_eq!(first.metadata_size, Some(9));
        assert_eq!(first.m.keys().collect::<Vec<_>>(), [&b"ut_metadata".to_vec()]);
    }
}
