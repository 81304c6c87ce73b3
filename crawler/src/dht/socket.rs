//! The KRPC socket driver: queries out, replies matched back to them, over one or several tokio UDP
//! sockets. It owns the pending-query table and the receive tasks; it never retries, paces or
//! records on its own (that is the [`Engine`]'s job, through [`KrpcSocket::probe`]).
//!
//! # How a query travels
//!
//! [`KrpcSocket::query`] picks a local socket (round robin over those of the target's address
//! family), takes a fresh 2-byte transaction id from that socket's counter, registers a oneshot
//! under *(local socket, remote address, transaction id)*, sends the canonical encoding and waits
//! at most [`SocketConfig::timeout`]. One receive task per local socket reads datagrams into a
//! buffer one byte larger than [`SocketConfig::max_datagram`] (so a larger datagram is seen, and
//! refused, rather than silently truncated), decodes each once with [`krpc::decode_with`], and hands
//! the reply to the query that matches it. Dropping the waiting future (the engine's own timeout)
//! removes its table entry.
//!
//! Nothing a remote sends can stop the receive task: undecodable datagrams, replies nobody waits
//! for (late, duplicated or with a foreign transaction id) and oversized datagrams are counted in
//! [`SocketStats`] and dropped; ICMP errors surfacing as `ConnectionRefused`/`ConnectionReset` on
//! receive are counted too. A reply that matches a pending query but is not valid KRPC fails that
//! query as malformed, keeping the bytes.
//!
//! # Read-only
//!
//! The crawler is a read-only node (BEP 43): every query carries `ro=1`, so well-behaved nodes do
//! not put it into their routing tables, and incoming queries are counted and left unanswered.
//! Queries carry `v` = [`SocketConfig::version`] so operators can tell who is asking.
//!
//! Several local addresses (for example 127.0.0.2, 127.0.0.3, ... on a testbed) spread queries over
//! source IPs, for peers that rate-limit per source IP (libtorrent: about 5 queries/s).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::space::bep42_matches;
use crate::engine::{Engine, ProbeError, Reply, Target};
use crate::infohash::InfoHash;
use crate::krpc::{self, Bep42, Body, DecodeError, Deviation, Limits, Message, NodeId, Query, Response, bep42_check};
use crate::observe::{Outcome, ProbeKind, Visit};

/// The `v` the crawler sends by default: `OL` and version 0.1.
pub const DEFAULT_VERSION: &[u8] = b"OL\x00\x01";

/// How a [`KrpcSocket`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// Local addresses to bind, one UDP socket each (port 0 for any free port).
    pub bind: Vec<SocketAddr>,
    /// The node id sent in queries.
    pub node_id: NodeId,
    /// How long a query waits for its reply.
    pub timeout: Duration,
    /// The largest datagram accepted; larger ones are dropped and counted.
    pub max_datagram: usize,
    /// The receive buffer asked of the kernel per socket (capped by `net.core.rmem_max`).
    pub recv_buffer: usize,
    /// The `v` sent with each query (`None`: send none).
    pub version: Option<Vec<u8>>,
}

impl Default for SocketConfig {
    /// One socket on `0.0.0.0:0`, a random id, 5 s, 2 KiB datagrams, a 4 MiB receive buffer.
    fn default() -> Self {
        SocketConfig {
            bind: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            node_id: super::space::SplitMix64::from_entropy().node_id(),
            timeout: Duration::from_secs(5),
            max_datagram: 2048,
            recv_buffer: 4 << 20,
            version: Some(DEFAULT_VERSION.to_vec()),
        }
    }
}

/// A query to send; the socket adds its own id, the transaction id, `v` and `ro=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `ping`.
    Ping,
    /// `find_node` for `target`.
    FindNode {
        /// The id looked for.
        target: NodeId,
    },
    /// `get_peers` for `info_hash`.
    GetPeers {
        /// The torrent.
        info_hash: InfoHash,
    },
    /// `announce_peer`, with the token a `get_peers` reply of the same node gave.
    AnnouncePeer {
        /// The torrent.
        info_hash: InfoHash,
        /// The peer port announced.
        port: u16,
        /// The token.
        token: Vec<u8>,
        /// Ask the node to use the UDP source port instead of `port`.
        implied_port: bool,
    },
    /// `sample_infohashes` (BEP 51) around `target`.
    SampleInfohashes {
        /// Where in the key space to sample.
        target: NodeId,
    },
}

impl Request {
    /// The probe kind its visits are recorded under.
    pub fn probe_kind(&self) -> ProbeKind {
        match self {
            Request::Ping => ProbeKind::DhtPing,
            Request::FindNode { .. } => ProbeKind::DhtFindNode,
            Request::GetPeers { .. } => ProbeKind::DhtGetPeers,
            Request::AnnouncePeer { .. } => ProbeKind::DhtAnnounce,
            Request::SampleInfohashes { .. } => ProbeKind::DhtSampleInfohashes,
        }
    }

    /// The torrent it is about, if any.
    pub fn info_hash(&self) -> Option<InfoHash> {
        match self {
            Request::GetPeers { info_hash } | Request::AnnouncePeer { info_hash, .. } => Some(*info_hash),
            _ => None,
        }
    }

    /// The KRPC query, sent as `id`.
    pub fn to_query(&self, id: NodeId) -> Query {
        match self {
            Request::Ping => Query::Ping { id },
            Request::FindNode { target } => Query::FindNode { id, target: *target },
            Request::GetPeers { info_hash } => Query::GetPeers {
                id,
                info_hash: *info_hash,
            },
            Request::AnnouncePeer {
                info_hash,
                port,
                token,
                implied_port,
            } => Query::AnnouncePeer {
                id,
                info_hash: *info_hash,
                port: *port,
                token: token.clone(),
                implied_port: implied_port.then_some(true),
            },
            Request::SampleInfohashes { target } => Query::SampleInfohashes { id, target: *target },
        }
    }
}

/// A response that matched a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrpcReply {
    /// Who answered (the address the query went to).
    pub from: SocketAddr,
    /// The response.
    pub response: Response,
    /// Its `v`, if any.
    pub version: Option<Vec<u8>>,
    /// Its `ip` (BEP 42): where the node sees us.
    pub ip: Option<SocketAddr>,
    /// Non-canonical forms the reply used.
    pub deviations: Vec<Deviation>,
    /// The datagram as received.
    pub raw: Vec<u8>,
}

impl KrpcReply {
    /// The BEP 42 note for this reply (see [`bep42_note`]).
    pub fn bep42_note(&self) -> Option<&'static str> {
        bep42_note(self.from.ip(), &self.response.id)
    }
}

/// The note an OK visit carries when the node's id does not match its address under BEP 42.
pub const BEP42_INVALID: &str = "bep42: id does not match the address";
/// The note an OK visit carries when the id does not match an address BEP 42 exempts (private,
/// loopback): honest nodes there need not comply, but a testbed's honest nodes do.
pub const BEP42_INVALID_EXEMPT: &str = "bep42: id does not match the address (exempt range)";

/// What BEP 42 says of `id` answering from `ip`: `None` when it complies, else [`BEP42_INVALID`]
/// or [`BEP42_INVALID_EXEMPT`].
pub fn bep42_note(ip: IpAddr, id: &NodeId) -> Option<&'static str> {
    let ip = ip.to_canonical();
    match bep42_check(ip, id) {
        Bep42::Valid => None,
        Bep42::Invalid => Some(BEP42_INVALID),
        Bep42::Exempt => (!bep42_matches(ip, id)).then_some(BEP42_INVALID_EXEMPT),
    }
}

impl Reply for KrpcReply {
    /// The node's id, `v`, deviation count, the raw datagram, and (in the visit's `error` field,
    /// the one place a visit has for notes) the BEP 42 verdict when the id fails it.
    fn describe(&self, visit: &mut Visit) {
        visit.remote_id = Some(self.response.id.0);
        visit.client.clone_from(&self.version);
        visit.deviations = u32::try_from(self.deviations.len()).unwrap_or(u32::MAX);
        visit.raw = Some(self.raw.clone());
        visit.error = self.bep42_note().map(str::to_owned);
    }
}

/// A KRPC error reply (`y=e`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// Who answered.
    pub from: SocketAddr,
    /// The error code (201 generic, 202 server, 203 protocol, 204 method unknown).
    pub code: i64,
    /// The error text.
    pub message: Vec<u8>,
    /// Its `v`, if any.
    pub version: Option<Vec<u8>>,
    /// The datagram as received.
    pub raw: Vec<u8>,
}

/// Why a query got no usable response.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No reply arrived within the socket's timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The query could not be sent (no route, address family, ...).
    #[error("cannot send: {0}")]
    Send(#[source] io::Error),
    /// The node answered with a KRPC error.
    #[error("KRPC error {}: {}", .0.code, String::from_utf8_lossy(&.0.message))]
    Remote(ErrorReply),
    /// The reply matched the query but is not a valid KRPC message.
    #[error("malformed reply: {error}")]
    Malformed {
        /// What is wrong with it.
        error: DecodeError,
        /// The datagram.
        raw: Vec<u8>,
    },
    /// The socket's receive task is gone (the socket is shutting down).
    #[error("the socket is closed")]
    Closed,
}

impl From<QueryError> for ProbeError {
    fn from(e: QueryError) -> Self {
        let message = e.to_string();
        match e {
            QueryError::Timeout(_) => ProbeError::new(Outcome::Timeout, message),
            QueryError::Send(io) => ProbeError::io(&io),
            QueryError::Remote(reply) => ProbeError::new(Outcome::RemoteError, message).with_raw(reply.raw),
            QueryError::Malformed { raw, .. } => ProbeError::new(Outcome::ProtocolError, message).with_raw(raw),
            QueryError::Closed => ProbeError::new(Outcome::Unreachable, message),
        }
    }
}

/// Running totals of one [`KrpcSocket`] (all its local sockets together).
#[derive(Debug, Default)]
pub struct SocketStats {
    sent: AtomicU64,
    responses: AtomicU64,
    errors: AtomicU64,
    unmatched: AtomicU64,
    malformed: AtomicU64,
    oversized: AtomicU64,
    queries_ignored: AtomicU64,
    receive_errors: AtomicU64,
}

impl SocketStats {
    /// Queries sent.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    /// Responses (`y=r`) matched to a query.
    pub fn responses(&self) -> u64 {
        self.responses.load(Ordering::Relaxed)
    }
    /// KRPC errors (`y=e`) matched to a query.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    /// Replies no query was waiting for (unknown or late transaction id, other sender).
    pub fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }
    /// Datagrams that are not KRPC.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }
    /// Datagrams over [`SocketConfig::max_datagram`].
    pub fn oversized(&self) -> u64 {
        self.oversized.load(Ordering::Relaxed)
    }
    /// Queries from other nodes, left unanswered (we are read-only).
    pub fn queries_ignored(&self) -> u64 {
        self.queries_ignored.load(Ordering::Relaxed)
    }
    /// Errors reported by receive calls (ICMP unreachable and the like).
    pub fn receive_errors(&self) -> u64 {
        self.receive_errors.load(Ordering::Relaxed)
    }
}

/// What the receive task hands to a waiting query.
enum Answer {
    Response(KrpcReply),
    Error(ErrorReply),
    Malformed(DecodeError, Vec<u8>),
}

/// (local socket index, remote address, transaction id).
type PendingKey = (usize, SocketAddr, [u8; 2]);

struct Local {
    udp: UdpSocket,
    addr: SocketAddr,
    next_tid: AtomicU16,
}

struct Shared {
    locals: Vec<Local>,
    pending: Mutex<HashMap<PendingKey, oneshot::Sender<Answer>>>,
    next_local: AtomicUsize,
    stats: SocketStats,
    node_id: NodeId,
    timeout: Duration,
    max_datagram: usize,
    version: Option<Vec<u8>>,
}

/// Aborts the receive tasks when the last [`KrpcSocket`] clone is dropped.
struct ReceiveTasks(Vec<AbortHandle>);

impl Drop for ReceiveTasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A KRPC client over UDP (cheap to clone; clones share sockets, pending queries and totals).
#[derive(Clone)]
pub struct KrpcSocket {
    shared: Arc<Shared>,
    _tasks: Arc<ReceiveTasks>,
}

impl std::fmt::Debug for KrpcSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KrpcSocket")
            .field("local", &self.local_addrs())
            .field("node_id", &self.shared.node_id)
            .finish_non_exhaustive()
    }
}

/// A UDP socket bound to `addr` with a receive buffer of `recv_buffer` bytes (best effort), ready
/// for tokio. Must run inside a runtime.
pub(crate) fn bind_udp(addr: SocketAddr, recv_buffer: Option<usize>) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(size) = recv_buffer {
        // Best effort: the kernel caps it at net.core.rmem_max, which is fine.
        let _ = sock.set_recv_buffer_size(size);
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

impl KrpcSocket {
    /// Binds every address of `config.bind` and starts their receive tasks (inside a tokio runtime).
    pub async fn bind(config: SocketConfig) -> io::Result<KrpcSocket> {
        if config.bind.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no local address to bind"));
        }
        let mut locals = Vec::with_capacity(config.bind.len());
        for (i, addr) in config.bind.iter().enumerate() {
            let udp = bind_udp(*addr, Some(config.recv_buffer))?;
            let addr = udp.local_addr()?;
            // Different starting points make replies to one socket useless on another.
            let start = (i as u16).wrapping_mul(0x9E37) ^ (config.node_id.0[0] as u16) << 8;
            locals.push(Local {
                udp,
                addr,
                next_tid: AtomicU16::new(start),
            });
        }
        let shared = Arc::new(Shared {
            locals,
            pending: Mutex::new(HashMap::new()),
            next_local: AtomicUsize::new(0),
            stats: SocketStats::default(),
            node_id: config.node_id,
            timeout: config.timeout,
            max_datagram: config.max_datagram.max(1),
            version: config.version,
        });
        let tasks = (0..shared.locals.len())
            .map(|i| tokio::spawn(receive(shared.clone(), i)).abort_handle())
            .collect();
        Ok(KrpcSocket {
            shared,
            _tasks: Arc::new(ReceiveTasks(tasks)),
        })
    }

    /// The bound local addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared.locals.iter().map(|l| l.addr).collect()
    }

    /// The id sent in queries.
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// The running totals.
    pub fn stats(&self) -> &SocketStats {
        &self.shared.stats
    }

    /// Queries waiting for their reply now.
    pub fn pending(&self) -> usize {
        self.shared.lock_pending().len()
    }

    /// Sends `request` to `to` and waits for the matching reply (at most the configured timeout).
    pub async fn query(&self, to: SocketAddr, request: &Request) -> Result<KrpcReply, QueryError> {
        let shared = &*self.shared;
        let index = shared.pick_local(to);
        let local = &shared.locals[index];
        let (tx, rx) = oneshot::channel();
        let key = {
            let mut pending = shared.lock_pending();
            loop {
                let tid = local.next_tid.fetch_add(1, Ordering::Relaxed).to_be_bytes();
                let key = (index, to, tid);
                if let std::collections::hash_map::Entry::Vacant(v) = pending.entry(key) {
                    v.insert(tx);
                    break key;
                }
            }
        };
        let _entry = PendingEntry { shared, key };
        let message = Message {
            transaction_id: key.2.to_vec(),
            version: shared.version.clone(),
            ip: None,
            read_only: true,
            body: Body::Query(request.to_query(shared.node_id)),
        };
        local
            .udp
            .send_to(&message.encode(), to)
            .await
            .map_err(QueryError::Send)?;
        shared.stats.sent.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(shared.timeout, rx).await {
            Err(_) => Err(QueryError::Timeout(shared.timeout)),
            Ok(Err(_)) => Err(QueryError::Closed),
            Ok(Ok(Answer::Response(reply))) => Ok(reply),
            Ok(Ok(Answer::Error(reply))) => Err(QueryError::Remote(reply)),
            Ok(Ok(Answer::Malformed(error, raw))) => Err(QueryError::Malformed { error, raw }),
        }
    }

    /// [`KrpcSocket::query`] under `engine`'s rules (politeness, concurrency, timeout, retries),
    /// recording a visit per attempt with the request's probe kind and info-hash.
    pub async fn probe(&self, engine: &Engine, to: SocketAddr, request: &Request) -> Result<KrpcReply, ProbeError> {
        let target = Target {
            info_hash: request.info_hash(),
            ..Target::addr(request.probe_kind(), to)
        };
        engine
            .probe(&target, || async {
                self.query(to, request).await.map_err(ProbeError::from)
            })
            .await
    }

    /// `ping`.
    pub async fn ping(&self, to: SocketAddr) -> Result<KrpcReply, QueryError> {
        self.query(to, &Request::Ping).await
    }

    /// `find_node` for `target`.
    pub async fn find_node(&self, to: SocketAddr, target: NodeId) -> Result<KrpcReply, QueryError> {
        self.query(to, &Request::FindNode { target }).await
    }

    /// `get_peers` for `info_hash`.
    pub async fn get_peers(&self, to: SocketAddr, info_hash: InfoHash) -> Result<KrpcReply, QueryError> {
        self.query(to, &Request::GetPeers { info_hash }).await
    }

    /// `announce_peer` of `port` for `info_hash`, with `token` from the node's `get_peers` reply.
    pub async fn announce_peer(
        &self,
        to: SocketAddr,
        info_hash: InfoHash,
        port: u16,
        token: Vec<u8>,
    ) -> Result<KrpcReply, QueryError> {
        let request = Request::AnnouncePeer {
            info_hash,
            port,
            token,
            implied_port: false,
        };
        self.query(to, &request).await
    }

    /// `sample_infohashes` around `target` (BEP 51).
    pub async fn sample_infohashes(&self, to: SocketAddr, target: NodeId) -> Result<KrpcReply, QueryError> {
        self.query(to, &Request::SampleInfohashes { target }).await
    }
}

/// Removes a pending query's entry when the query ends, however it ends (reply, timeout, drop).
struct PendingEntry<'a> {
    shared: &'a Shared,
    key: PendingKey,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        self.shared.lock_pending().remove(&self.key);
    }
}

impl Shared {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<PendingKey, oneshot::Sender<Answer>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Round robin over the local sockets of `to`'s address family (any socket if none is).
    fn pick_local(&self, to: SocketAddr) -> usize {
        let n = self.next_local.fetch_add(1, Ordering::Relaxed);
        let same: usize = self.locals.iter().filter(|l| l.addr.is_ipv4() == to.is_ipv4()).count();
        if same == 0 {
            return n % self.locals.len();
        }
        let want = n % same;
        self.locals
            .iter()
            .enumerate()
            .filter(|(_, l)| l.addr.is_ipv4() == to.is_ipv4())
            .nth(want)
            .map_or(0, |(i, _)| i)
    }

    /// One received datagram.
    fn handle(&self, index: usize, data: &[u8], from: SocketAddr) {
        let limits = Limits {
            max_message: self.max_datagram,
            ..Limits::default()
        };
        let decoded = match krpc::decode_with(data, limits) {
            Ok(d) => d,
            Err(error) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                // A reply to one of our queries that is not valid KRPC fails that query.
                if let Some(tid) = bencoded_tid(data) {
                    self.deliver(index, from, tid, || Answer::Malformed(error, data.to_vec()));
                }
                return;
            }
        };
        let message = decoded.message;
        let Ok(tid) = <[u8; 2]>::try_from(message.transaction_id.as_slice()) else {
            self.count_unmatched_or_query(&message.body);
            return;
        };
        match message.body {
            Body::Query(_) => {
                self.stats.queries_ignored.fetch_add(1, Ordering::Relaxed);
            }
            Body::Response(response) => {
                let delivered = self.deliver(index, from, tid, || {
                    Answer::Response(KrpcReply {
                        from,
                        response,
                        version: message.version,
                        ip: message.ip,
                        deviations: decoded.deviations,
                        raw: data.to_vec(),
                    })
                });
                if delivered {
                    self.stats.responses.fetch_add(1, Ordering::Relaxed);
                }
            }
            Body::Error(e) => {
                let delivered = self.deliver(index, from, tid, || {
                    Answer::Error(ErrorReply {
                        from,
                        code: e.code,
                        message: e.message,
                        version: message.version,
                        raw: data.to_vec(),
                    })
                });
                if delivered {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn count_unmatched_or_query(&self, body: &Body) {
        let counter = match body {
            Body::Query(_) => &self.stats.queries_ignored,
            _ => &self.stats.unmatched,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Hands `answer()` to the query waiting under the key; false (and counted) if none is.
    fn deliver(&self, index: usize, from: SocketAddr, tid: [u8; 2], answer: impl FnOnce() -> Answer) -> bool {
        let waiting = self.lock_pending().remove(&(index, from, tid));
        match waiting {
            Some(tx) => {
                // The query may have given up just now; its reply is then simply dropped.
                let _ = tx.send(answer());
                true
            }
            None => {
                self.stats.unmatched.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The 2-byte `t` of a bencoded dictionary that is not valid KRPC, if it has one.
fn bencoded_tid(data: &[u8]) -> Option<[u8; 2]> {
    let tree = crate::bencode::decode(data).ok()?;
    <[u8; 2]>::try_from(tree.root.get(b"t")?.as_bytes()?).ok()
}

/// The receive loop of local socket `index`; runs until aborted.
async fn receive(shared: Arc<Shared>, index: usize) {
    let mut buf = vec![0u8; shared.max_datagram + 1];
    loop {
        match shared.locals[index].udp.recv_from(&mut buf).await {
            Ok((n, _)) if n > shared.max_datagram => {
                shared.stats.oversized.fetch_add(1, Ordering::Relaxed);
            }
            Ok((n, from)) => shared.handle(index, &buf[..n], from),
            Err(e) => {
                shared.stats.receive_errors.fetch_add(1, Ordering::Relaxed);
                match e.kind() {
                    // ICMP port/host unreachable for an earlier send: nothing to do here.
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {}
                    _ => {
                        tracing::debug!(error = %e, "receive error on a KRPC socket");
                        // Do not spin on an error that repeats.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
