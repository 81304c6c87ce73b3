//! The tokio driver around one [`Client`]: a listener on its own 127.x.y.z, outgoing
//! connections bound to that address, the BEP 3 handshake, a reader and a writer per
//! connection, the upload (and optional download) token buckets, the timer that runs the
//! choker, and announces to the tracker. The protocol decisions are all the client's.
//!
//! Every read has a size limit (the client's [`Client::limits`] for messages, 68 bytes for the
//! handshake) and a timeout ([`NodeConfig::handshake_timeout`], [`NodeConfig::idle_timeout`]);
//! every write has [`NodeConfig::write_timeout`]. A peer that misbehaves is dropped with its
//! reason logged at `info`; nothing a peer sends can panic the node.
//!
//! Upload pacing: every block sent draws on the node's bucket ([`NodeConfig::upload_limit`],
//! the u_i of the distribution formulas) and, when the strategy divides bandwidth (BitTyrant,
//! PropShare), on a bucket of its own connection at the rate the choker gave it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::peerwire::{HANDSHAKE_LEN, Handshake, Message, MessageDecoder};
use onionlab_crawler::probe::http::HttpConfig;
use onionlab_crawler::tracker::Event;
use onionlab_crawler::tracker::http::{AnnounceRequest, PeerAddr};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use super::bitfield::Bitfield;
use super::choker::Strategy;
use super::client::{Client, ClientConfig, ClientStats, ConnId};
use super::rate::TokenBucket;
use super::torrent::PieceStore;

/// How far ahead of its rate a node's token buckets let it be: enough to absorb a sleep that
/// wakes a timer tick late, too little to matter (an interval of t carries at most
/// rate × (t + this)).
pub const PACING_TOLERANCE: Duration = Duration::from_millis(2);

fn paced(rate: f64, now: Instant) -> TokenBucket {
    TokenBucket::new(rate, rate * PACING_TOLERANCE.as_secs_f64(), now)
}

/// How a node runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// A name for logs and reports.
    pub name: String,
    /// Its address (listening and connecting from).
    pub ip: IpAddr,
    /// Its listening port (0: any).
    pub port: u16,
    /// The protocol client.
    pub client: ClientConfig,
    /// Upload rate limit, bytes per second (`None`: unlimited).
    pub upload_limit: Option<f64>,
    /// Download rate limit, bytes per second (`None`: unlimited).
    pub download_limit: Option<f64>,
    /// Deadline to connect.
    pub connect_timeout: Duration,
    /// Deadline for the peer's handshake.
    pub handshake_timeout: Duration,
    /// A connection silent this long is closed (keep-alives count).
    pub idle_timeout: Duration,
    /// Deadline for one write.
    pub write_timeout: Duration,
    /// How often the client's timers run (choker, request timeouts, new connections).
    pub tick: Duration,
    /// Announce at least this often (more often than the tracker asks, for short runs).
    pub announce_interval: Duration,
    /// Peers asked of the tracker.
    pub numwant: u32,
    /// Handshakes in progress at once.
    pub max_handshakes: usize,
}

impl NodeConfig {
    /// A node at `ip` with the given client and defaults for the rest: no rate limits, 5 s to
    /// connect and handshake, 120 s idle, 30 s writes, 100 ms ticks, announces every 30 s
    /// asking for 50 peers (every peer there is for BitThief), 64 handshakes at once.
    pub fn new(name: impl Into<String>, ip: IpAddr, client: ClientConfig) -> Self {
        let numwant = if client.strategy == Strategy::BitThief {
            1000
        } else {
            50
        };
        NodeConfig {
            name: name.into(),
            ip,
            port: 0,
            client,
            upload_limit: None,
            download_limit: None,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            tick: Duration::from_millis(100),
            announce_interval: Duration::from_secs(30),
            numwant,
            max_handshakes: 64,
        }
    }
}

/// Why a node did not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Its address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// What a node did, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    /// Its name.
    pub name: String,
    /// Its listening address.
    pub addr: SocketAddr,
    /// Its strategy.
    pub strategy: Strategy,
    /// It started with the whole torrent.
    pub started_complete: bool,
    /// Time from its start to its last verified piece.
    pub completed_after: Option<Duration>,
    /// Its protocol totals (bytes up and down, hash failures, peers dropped).
    pub stats: ClientStats,
}

impl NodeReport {
    /// This report (a node's later session at the same address) with an earlier session's
    /// totals added: bytes, failures and drops summed, the larger peak; the completion time
    /// stays this session's.
    pub fn after(mut self, earlier: NodeReport) -> NodeReport {
        let (s, e) = (&mut self.stats, earlier.stats);
        s.uploaded += e.uploaded;
        s.downloaded += e.downloaded;
        s.wasted += e.wasted;
        s.hash_failures += e.hash_failures;
        s.dropped.splice(0..0, e.dropped);
        s.peak_connections = s.peak_connections.max(e.peak_connections);
        self.started_complete = earlier.started_complete;
        self
    }
}

/// What one connection's tasks share with the rest of the node.
#[derive(Debug)]
struct Link {
    wake: Notify,
    close: watch::Sender<bool>,
}

#[derive(Debug)]
struct State {
    client: Client,
    links: BTreeMap<ConnId, Arc<Link>>,
}

#[derive(Debug)]
struct Shared {
    cfg: NodeConfig,
    addr: SocketAddr,
    info_hash: InfoHash,
    state: Mutex<State>,
    up: Option<Mutex<TokenBucket>>,
    down: Option<Mutex<TokenBucket>>,
    started: Instant,
    started_complete: bool,
    complete: watch::Sender<bool>,
    announced: watch::Sender<bool>,
    /// The tracker named peers: connect now rather than at the next tick.
    news: Notify,
    stop: watch::Sender<bool>,
    handshakes: Arc<Semaphore>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Runs `f` on the client, then wakes the writers with news and closes what it dropped.
    fn with_client<R>(&self, f: impl FnOnce(&mut Client) -> R) -> R {
        let mut state = lock(&self.state);
        let r = f(&mut state.client);
        for (id, reason) in state.client.take_closing() {
            if reason.is_misbehaviour() {
                tracing::info!(node = %self.cfg.name, conn = id, "dropping a peer: {reason}");
            } else {
                tracing::debug!(node = %self.cfg.name, conn = id, "closing: {reason}");
            }
            if let Some(link) = state.links.get(&id) {
                link.close.send_replace(true);
            }
        }
        for id in state.client.take_dirty() {
            if let Some(link) = state.links.get(&id) {
                link.wake.notify_one();
            }
        }
        if state.client.is_complete() {
            self.complete.send_if_modified(|c| !std::mem::replace(c, true));
        }
        r
    }

    async fn pace(bucket: &Option<Mutex<TokenBucket>>, bytes: usize) {
        let wait = Shared::reserve(bucket, bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes `bytes` from the node's bucket at `now`; returns how long to wait for them.
    fn reserve(bucket: &Option<Mutex<TokenBucket>>, bytes: usize, now: Instant) -> Duration {
        bucket.as_ref().map_or(Duration::ZERO, |b| lock(b).reserve(bytes, now))
    }
}

/// A running node; stops when dropped.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts a node for the torrent `info_hash` (announced to `announce`) with the content in
    /// `store`: it listens, announces, connects to the peers it hears of and trades.
    pub async fn start(
        cfg: NodeConfig,
        info_hash: InfoHash,
        announce: &str,
        store: PieceStore,
    ) -> Result<Node, NodeError> {
        let want = SocketAddr::new(cfg.ip, cfg.port);
        let listener = TcpListener::bind(want)
            .await
            .map_err(|source| NodeError::Bind { addr: want, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| NodeError::Bind { addr: want, source })?;
        let now = Instant::now();
        let mut client = Client::new(cfg.client.clone(), info_hash, store);
        client.add_own_addr(addr);
        let started_complete = client.is_complete();
        let bucket = |rate: Option<f64>| rate.map(|r| Mutex::new(paced(r, now)));
        let shared = Arc::new(Shared {
            up: bucket(cfg.upload_limit),
            down: bucket(cfg.download_limit),
            handshakes: Arc::new(Semaphore::new(cfg.max_handshakes.max(1))),
            cfg,
            addr,
            info_hash,
            state: Mutex::new(State {
                client,
                links: BTreeMap::new(),
            }),
            started: now,
            started_complete,
            complete: watch::channel(started_complete).0,
            announced: watch::channel(false).0,
            news: Notify::new(),
            stop: watch::channel(false).0,
        });
        let tasks = vec![
            tokio::spawn(accept_loop(shared.clone(), listener)),
            tokio::spawn(tick_loop(shared.clone())),
            tokio::spawn(announce_loop(shared.clone(), announce.to_string())),
        ];
        Ok(Node { shared, tasks })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// When it started.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// Waits until the first announce was answered.
    pub async fn announced(&self) {
        let mut rx = self.shared.announced.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Waits until the node holds the whole torrent.
    pub async fn complete(&self) {
        let mut rx = self.shared.complete.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Whether it holds the whole torrent.
    pub fn is_complete(&self) -> bool {
        *self.shared.complete.borrow()
    }

    /// The content, once complete.
    pub fn content(&self) -> Option<Vec<u8>> {
        lock(&self.shared.state).client.content().map(<[u8]>::to_vec)
    }

    /// The pieces it holds (verified).
    pub fn held(&self) -> Bitfield {
        lock(&self.shared.state).client.have().clone()
    }

    /// What it did so far.
    pub fn report(&self) -> NodeReport {
        let state = lock(&self.shared.state);
        let c = &state.client;
        let stats = c.stats();
        NodeReport {
            name: self.shared.cfg.name.clone(),
            addr: self.shared.addr,
            strategy: c.config().strategy,
            started_complete: self.shared.started_complete,
            completed_after: c
                .completed_at()
                .map(|t| t.saturating_duration_since(self.shared.started)),
            stats: stats.clone(),
        }
    }

    /// Stops: a `stopped` announce (briefly), every connection closed.
    pub async fn stop(mut self) -> NodeReport {
        self.shared.stop.send_replace(true);
        for t in self.tasks.drain(..) {
            // The announce task sends `stopped` within its own short deadline.
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        self.report()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn stopped(shared: &Shared) {
    let mut rx = shared.stop.subscribe();
    let _ = rx.wait_for(|s| *s).await;
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stopped(&shared) => return,
        };
        let Ok((stream, from)) = accepted else { continue };
        if !shared.with_client(|c| c.may_accept(from)) {
            continue;
        }
        let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
            continue;
        };
        tokio::spawn(connection(shared.clone(), stream, from, false, permit));
    }
}

async fn tick_loop(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.cfg.tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shared.news.notified() => {}
            () = stopped(&shared) => return,
        }
        let now = Instant::now();
        let targets = shared.with_client(|c| {
            c.tick(now);
            c.connect_candidates(now)
        });
        for addr in targets {
            let shared = shared.clone();
            tokio::spawn(async move {
                let Ok(permit) = shared.handshakes.clone().acquire_owned().await else {
                    return;
                };
                match connect(&shared, addr).await {
                    Ok(stream) => connection(shared, stream, addr, true, permit).await,
                    Err(e) => {
                        tracing::debug!(node = %shared.cfg.name, peer = %addr, "connect failed: {e}");
                        shared.with_client(|c| c.connect_failed(addr, Instant::now()));
                    }
                }
            });
        }
    }
}

async fn connect(shared: &Shared, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(shared.cfg.ip, 0))?;
    tokio::time::timeout(shared.cfg.connect_timeout, socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The BEP 3 handshake: the opener speaks first; the acceptor checks the info-hash first.
async fn handshake(stream: &mut TcpStream, ours: Handshake, outgoing: bool) -> Result<Handshake, String> {
    if outgoing {
        stream.write_all(&ours.encode()).await.map_err(|e| e.to_string())?;
    }
    let mut theirs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut theirs).await.map_err(|e| e.to_string())?;
    let theirs = Handshake::decode(&theirs).map_err(|e| e.to_string())?;
    if theirs.info_hash != ours.info_hash {
        return Err(format!("handshake for another torrent, {}", theirs.info_hash.to_hex()));
    }
    if !outgoing {
        stream.write_all(&ours.encode()).await.map_err(|e| e.to_string())?;
    }
    Ok(theirs)
}

/// One connection from handshake to close.
async fn connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    addr: SocketAddr,
    outgoing: bool,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let ours = shared.with_client(|c| c.handshake());
    let theirs = match tokio::time::timeout(shared.cfg.handshake_timeout, handshake(&mut stream, ours, outgoing)).await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return failed_handshake(&shared, addr, outgoing, &e),
        Err(_) => return failed_handshake(&shared, addr, outgoing, "handshake timed out"),
    };
    drop(permit);
    let (close_tx, close_rx) = watch::channel(false);
    let link = Arc::new(Link {
        wake: Notify::new(),
        close: close_tx,
    });
    let registered = {
        let mut state = lock(&shared.state);
        let id = state.client.new_conn_id();
        state.links.insert(id, link.clone());
        drop(state);
        let r = shared.with_client(|c| c.connected(id, addr, outgoing, &theirs, Instant::now()));
        match r {
            Ok(()) => Ok(id),
            Err(reason) => {
                lock(&shared.state).links.remove(&id);
                Err(reason)
            }
        }
    };
    let id = match registered {
        Ok(id) => id,
        Err(reason) => {
            tracing::debug!(node = %shared.cfg.name, peer = %addr, "not connected: {reason}");
            return;
        }
    };
    let (rd, wr) = stream.into_split();
    let mut close_rx = close_rx;
    let ended = tokio::select! {
        r = read_loop(&shared, id, rd) => r,
        w = write_loop(&shared, id, wr, &link) => w,
        _ = close_rx.wait_for(|c| *c) => "closed by us".to_string(),
        () = stopped(&shared) => "node stopped".to_string(),
    };
    tracing::debug!(node = %shared.cfg.name, peer = %addr, "connection ended: {ended}");
    lock(&shared.state).links.remove(&id);
    shared.with_client(|c| c.disconnected(id));
}

fn failed_handshake(shared: &Shared, addr: SocketAddr, outgoing: bool, why: &str) {
    tracing::debug!(node = %shared.cfg.name, peer = %addr, "handshake failed: {why}");
    if outgoing {
        shared.with_client(|c| c.connect_failed(addr, Instant::now()));
    }
}

/// Reads messages (bounded by the client's limits, each read by the idle timeout) into the
/// client until the connection ends; returns why it did.
async fn read_loop(shared: &Shared, id: ConnId, mut rd: OwnedReadHalf) -> String {
    let mut decoder = MessageDecoder::with_limits(shared.with_client(|c| c.limits()));
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match tokio::time::timeout(shared.cfg.idle_timeout, rd.read(&mut buf)).await {
            Err(_) => return "idle timeout".into(),
            Ok(Err(e)) => return e.to_string(),
            Ok(Ok(0)) => return "closed by the peer".into(),
            Ok(Ok(n)) => n,
        };
        Shared::pace(&shared.down, n).await;
        decoder.feed(&buf[..n]);
        loop {
            match decoder.next_message() {
                Ok(None) => break,
                Ok(Some(msg)) => {
                    if let Err(reason) = shared.with_client(|c| c.receive(id, msg, Instant::now())) {
                        return reason.to_string();
                    }
                }
                Err(e) => {
                    let reason = shared.with_client(|c| c.drop_peer(id, e.to_string()));
                    return reason.to_string();
                }
            }
        }
    }
}

/// Sends what the client has for this connection whenever it is woken: control messages in
/// one write, each block after the rate limits allow it.
async fn write_loop(shared: &Shared, id: ConnId, mut wr: OwnedWriteHalf, link: &Link) -> String {
    let mut own: Option<TokenBucket> = None;
    let mut out = Vec::new();
    loop {
        loop {
            let next = shared.with_client(|c| {
                let now = Instant::now();
                c.poll_transmit(id, now).map(|m| (m, c.upload_share(id)))
            });
            let Some((msg, share)) = next else { break };
            let block = matches!(msg, Message::Piece { .. });
            out.clear();
            msg.encode_into(&mut out);
            if block {
                // The connection's share and the node's limit are paid at the same instant: the
                // block waits for the later of the two, not for their sum (which would send it
                // below its share whenever the node is busy).
                let now = Instant::now();
                let own_wait = share.map_or(Duration::ZERO, |rate| {
                    let bucket = own.get_or_insert_with(|| paced(rate, now));
                    bucket.set_rate(rate);
                    bucket.reserve(out.len(), now)
                });
                let wait = own_wait.max(Shared::reserve(&shared.up, out.len(), now));
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            match tokio::time::timeout(shared.cfg.write_timeout, wr.write_all(&out)).await {
                Err(_) => return "write timed out".into(),
                Ok(Err(e)) => return e.to_string(),
                Ok(Ok(())) => {}
            }
        }
        link.wake.notified().await;
    }
}

async fn announce_loop(shared: Arc<Shared>, announce: String) {
    let engine = Engine::new(
        EngineConfig {
            concurrency: 4,
            per_ip_interval: Duration::ZERO,
            timeout: Duration::from_secs(5),
            attempts: 2,
            backoff: Duration::from_millis(100),
        },
        Recorder::discard(),
    );
    let http = HttpConfig::default();
    let sep = if announce.contains('?') { '&' } else { '?' };
    let url = format!("{announce}{sep}ip={}", shared.addr.ip());
    let (peer_id, port) = (shared.cfg.client.peer_id, shared.addr.port());
    let mut complete = shared.complete.subscribe();
    let mut told_complete = *complete.borrow_and_update();
    let mut event = Event::Started;
    loop {
        let (uploaded, downloaded, left) = shared.with_client(|c| (c.stats().uploaded, c.stats().downloaded, c.left()));
        let req = AnnounceRequest {
            info_hash: shared.info_hash,
            peer_id,
            port,
            uploaded,
            downloaded,
            left,
            event,
            numwant: Some(shared.cfg.numwant),
            key: None,
            tracker_id: None,
        };
        if event == Event::Stopped {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                onionlab_crawler::probe::http_tracker::announce(&engine, &http, &url, &req),
            )
            .await;
            return;
        }
        let mut wait = shared.cfg.announce_interval;
        match onionlab_crawler::probe::http_tracker::announce(&engine, &http, &url, &req).await {
            Ok(reply) => {
                let now = Instant::now();
                let peers = reply.peers.iter().filter_map(|p| match p.addr {
                    PeerAddr::Ip(a) => Some(a),
                    PeerAddr::Name(..) => None,
                });
                shared.with_client(|c| c.add_peers(peers, now));
                shared.news.notify_one();
                wait = wait.min(Duration::from_secs(reply.interval.max(1).into()));
                shared.announced.send_replace(true);
            }
            Err(e) => tracing::warn!(node = %shared.cfg.name, "announce failed: {e}"),
        }
        event = Event::None;
        let mut stop = shared.stop.subscribe();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = complete.wait_for(|c| *c), if !told_complete => {
                told_complete = true;
                event = Event::Completed;
            }
            _ = stop.wait_for(|s| *s) => event = Event::Stopped,
        }
    }
}
