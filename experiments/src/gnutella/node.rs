//! One servent's state and counters, shared by its tokio tasks: the connection table (peer
//! listen address, role, bounded outgoing queue, the leaf's QRP table), the GUID tables, the
//! hits a leaf collected. It owns what a node knows; it never blocks (the lock is held for
//! in-memory work only) and never decides protocol (that is [`super::ultrapeer`] and
//! [`super::leaf`], which turn one received descriptor into descriptors to send).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use onionlab_crawler::dht::space::SplitMix64;
use onionlab_crawler::gnutella::{Guid, Message, Payload, Pong};
use serde::Serialize;
use tokio::sync::mpsc;

use super::config::OverlayConfig;
use super::files::Library;
use super::routing::{ConnId, GuidTable, reply_ttl};
use super::topology::{Behaviour, PlannedNode, Role};
use onionlab_crawler::gnutella::qrp::RouteTableReceiver;

/// What goes into a connection's queue.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// An encoded descriptor.
    Bytes(Vec<u8>),
    /// An encoded Bye: written, then the connection closes.
    Bye(Vec<u8>),
}

/// A live connection, as its node sees it.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The peer's listening address (its `Listen-IP`, or what we dialed).
    pub addr: SocketAddr,
    /// Its role.
    pub role: Role,
    /// Its outgoing queue (bounded; full means drop).
    pub queue: mpsc::Sender<Outgoing>,
    /// The QRP table it sent us (an ultrapeer's view of a leaf).
    pub qrp: RouteTableReceiver,
}

/// One hit a leaf received for a query it sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    /// The responder's address from the QueryHit (where to download).
    pub responder: SocketAddr,
    /// The responder's servent GUID, hex.
    pub servent_id: String,
    /// The file index.
    pub file_index: u32,
    /// The advertised size.
    pub file_size: u32,
    /// The advertised name.
    pub name: String,
    /// The advertised `urn:sha1`, if any.
    pub sha1: Option<[u8; 20]>,
    /// Hops the QueryHit travelled.
    pub hops: u8,
}

/// Hits per query sent, bounded in queries and hits.
#[derive(Debug, Default)]
pub(crate) struct HitStore {
    order: VecDeque<Guid>,
    hits: HashMap<Guid, Vec<SearchHit>>,
}

impl HitStore {
    /// Opens a slot for a query, dropping the oldest beyond `keep`.
    pub(crate) fn open(&mut self, guid: Guid, keep: usize) {
        while self.order.len() >= keep {
            if let Some(old) = self.order.pop_front() {
                self.hits.remove(&old);
            }
        }
        self.order.push_back(guid);
        self.hits.insert(guid, Vec::new());
    }

    /// Adds hits to an open query (up to `max` per query); false if the query is not open.
    pub(crate) fn add(&mut self, guid: &Guid, hits: impl IntoIterator<Item = SearchHit>, max: usize) -> bool {
        let Some(list) = self.hits.get_mut(guid) else {
            return false;
        };
        for h in hits {
            if list.len() < max {
                list.push(h);
            }
        }
        true
    }

    /// The hits of a query.
    pub(crate) fn get(&self, guid: &Guid) -> Vec<SearchHit> {
        self.hits.get(guid).cloned().unwrap_or_default()
    }
}

/// A node's mutable state.
#[derive(Debug)]
pub(crate) struct NodeState {
    /// Whether the node is in a session.
    pub online: bool,
    /// Live connections.
    pub conns: BTreeMap<ConnId, Peer>,
    pub next_conn: ConnId,
    /// Query GUIDs: duplicates and reverse paths.
    pub queries: GuidTable,
    /// Ping GUIDs: duplicates and reverse paths for Pongs.
    pub pings: GuidTable,
    /// GUIDs for what this node originates.
    pub rng: SplitMix64,
    /// A leaf's hits for the queries it sent.
    pub hits: HitStore,
}

impl NodeState {
    /// A fresh GUID (modern form).
    pub(crate) fn guid(&mut self) -> Guid {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b);
        Guid::modern(b)
    }

    /// Forgets the connections and routes of a session that ended (hits stay).
    pub(crate) fn end_session(&mut self) {
        self.online = false;
        self.conns.clear();
        self.queries.clear();
        self.pings.clear();
    }

    /// The listen addresses of connected peers with this role, sorted.
    pub(crate) fn peers_with(&self, role: Role) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.conns.values().filter(|p| p.role == role).map(|p| p.addr).collect();
        v.sort();
        v
    }

    /// The connection ids of connected peers with this role.
    pub(crate) fn conns_with(&self, role: Role) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, p)| p.role == role)
            .map(|(c, _)| *c)
            .collect()
    }
}

/// Counters a node keeps (monotonic over the overlay's life, sessions included).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queries_seen: AtomicU64,
    pub queries_duplicate: AtomicU64,
    pub queries_forwarded: AtomicU64,
    pub hits_sent: AtomicU64,
    pub results_sent: AtomicU64,
    pub hits_routed: AtomicU64,
    pub hits_received: AtomicU64,
    pub pongs_sent: AtomicU64,
    pub uploads_served: AtomicU64,
    pub uploads_refused: AtomicU64,
    pub queue_drops: AtomicU64,
    pub refused_503: AtomicU64,
    pub crawler_replies: AtomicU64,
    pub bad_input: AtomicU64,
}

/// A snapshot of a node's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounters {
    /// Queries received with a new GUID (a leaf counts those its ultrapeers sent it).
    pub queries_seen: u64,
    /// Query copies dropped as duplicates.
    pub queries_duplicate: u64,
    /// Query copies sent on (an ultrapeer's floods, leaves included).
    pub queries_forwarded: u64,
    /// QueryHits this node originated.
    pub hits_sent: u64,
    /// Results in them.
    pub results_sent: u64,
    /// QueryHits routed on towards their asker.
    pub hits_routed: u64,
    /// QueryHits received for this node's own queries.
    pub hits_received: u64,
    /// Pongs sent.
    pub pongs_sent: u64,
    /// Downloads served in full.
    pub uploads_served: u64,
    /// Download requests refused (404, 503, 400).
    pub uploads_refused: u64,
    /// Descriptors dropped because a connection's queue was full.
    pub queue_drops: u64,
    /// Connections refused with 503 (full, or a leaf).
    pub refused_503: u64,
    /// Crawler handshakes answered.
    pub crawler_replies: u64,
    /// Connections dropped for bad input (handshake, descriptor or QRP errors, timeouts).
    pub bad_input: u64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NodeCounters {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeCounters {
            queries_seen: r(&self.queries_seen),
            queries_duplicate: r(&self.queries_duplicate),
            queries_forwarded: r(&self.queries_forwarded),
            hits_sent: r(&self.hits_sent),
            results_sent: r(&self.results_sent),
            hits_routed: r(&self.hits_routed),
            hits_received: r(&self.hits_received),
            pongs_sent: r(&self.pongs_sent),
            uploads_served: r(&self.uploads_served),
            uploads_refused: r(&self.uploads_refused),
            queue_drops: r(&self.queue_drops),
            refused_503: r(&self.refused_503),
            crawler_replies: r(&self.crawler_replies),
            bad_input: r(&self.bad_input),
        }
    }
}

/// What does not change about a node during the overlay's life.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub index: usize,
    pub addr: SocketAddr,
    pub guid: Guid,
    pub role: Role,
    pub behaviour: Behaviour,
    pub library: Library,
    /// Whether an ultrapeer floods queries (false for a black-hole Sybil).
    pub forwards_queries: bool,
    /// The listen addresses of the nodes it dials.
    pub dials: Vec<SocketAddr>,
}

impl NodeInfo {
    /// The Pong answering a Ping `guid` that arrived with `hops`: our address and share counts.
    pub(crate) fn pong(&self, guid: Guid, hops: u8) -> Message {
        let (ip, port) = match self.addr {
            SocketAddr::V4(a) => (*a.ip(), a.port()),
            SocketAddr::V6(a) => (std::net::Ipv4Addr::UNSPECIFIED, a.port()),
        };
        let kbytes: u64 = self.library.files.iter().map(|f| u64::from(f.size)).sum::<u64>() / 1024;
        Message {
            guid,
            ttl: reply_ttl(hops),
            hops: 0,
            payload: Payload::Pong(Pong {
                port,
                ip,
                files: self.library.files.len() as u32,
                kbytes: u32::try_from(kbytes).unwrap_or(u32::MAX),
                extensions: Vec::new(),
            }),
        }
    }
}

/// One node: its fixed facts, state, counters and the overlay-wide settings.
#[derive(Debug)]
pub(crate) struct Node {
    pub info: NodeInfo,
    pub config: std::sync::Arc<OverlayConfig>,
    pub counters: Counters,
    state: Mutex<NodeState>,
}

impl Node {
    pub(crate) fn new(planned: &PlannedNode, dials: Vec<SocketAddr>, config: std::sync::Arc<OverlayConfig>) -> Node {
        let limits = &config.limits;
        let forwards_queries = planned.behaviour != Behaviour::Sybil || config.sybils.forward_queries;
        let seed = config.seed ^ (planned.index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        Node {
            info: NodeInfo {
                index: planned.index,
                addr: planned.addr,
                guid: planned.guid,
                role: planned.role,
                behaviour: planned.behaviour,
                library: planned.library.clone(),
                forwards_queries,
                dials,
            },
            counters: Counters::default(),
            state: Mutex::new(NodeState {
                online: false,
                conns: BTreeMap::new(),
                next_conn: 0,
                queries: GuidTable::new(limits.guid_table, limits.guid_ttl()),
                pings: GuidTable::new(limits.guid_table, limits.guid_ttl()),
                rng: SplitMix64::new(seed),
                hits: HitStore::default(),
            }),
            config,
        }
    }

    /// The state, locked (a poisoned lock is recovered: the state stays usable).
    pub(crate) fn state(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes and queues each descriptor; a full queue drops it (counted), a closed one is
    /// skipped (its connection is going away).
    pub(crate) fn send_all(&self, state: &NodeState, sends: Vec<(ConnId, Message)>) {
        let mut cache: Option<(FloodKey, Vec<u8>)> = None;
        for (conn, msg) in sends {
            let Some(peer) = state.conns.get(&conn) else {
                continue;
            };
            // Floods send one descriptor to many: encode each (guid, ttl, hops) once.
            let key = (msg.payload.kind(), msg.ttl, msg.hops, msg.guid);
            let bytes = match &cache {
                Some((k, b)) if *k == key && is_flood(&msg) => b.clone(),
                _ => match msg.encode() {
                    Ok(b) => {
                        cache = Some((key, b.clone()));
                        b
                    }
                    Err(e) => {
                        tracing::warn!(node = self.info.index, "cannot encode a descriptor: {e}");
                        continue;
                    }
                },
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = peer.queue.try_send(Outgoing::Bytes(bytes)) {
                Counters::bump(&self.counters.queue_drops);
            }
        }
    }

    /// Registers a connection after its handshake; `None` if the node went offline meanwhile.
    pub(crate) fn register(&self, addr: SocketAddr, role: Role, queue: mpsc::Sender<Outgoing>) -> Option<ConnId> {
        let mut s = self.state();
        if !s.online {
            return None;
        }
        let id = s.next_conn;
        s.next_conn += 1;
        s.conns.insert(
            id,
            Peer {
                addr,
                role,
                queue,
                qrp: RouteTableReceiver::new(),
            },
        );
        Some(id)
    }

    /// Forgets a closed connection and the reverse paths through it.
    pub(crate) fn unregister(&self, conn: ConnId) {
        let mut s = self.state();
        s.conns.remove(&conn);
        s.queries.forget_conn(conn);
        s.pings.forget_conn(conn);
    }

    /// Whether a connection to this listen address is up.
    pub(crate) fn connected_to(&self, addr: SocketAddr) -> bool {
        self.state().conns.values().any(|p| p.addr == addr)
    }
}

/// Payload type, TTL, hops and GUID: copies of a flood with the same key are the same bytes.
type FloodKey = (u8, u8, u8, Guid);

/// Whether a descriptor is one that goes out to many connections unchanged (Query, Ping).
fn is_flood(msg: &Message) -> bool {
    matches!(msg.payload, Payload::Query(_) | Payload::Ping { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_store_is_bounded() {
        let mut s = HitStore::default();
        let hit = |i| SearchHit {
            responder: "127.0.0.1:1".parse().unwrap(),
            servent_id: String::new(),
            file_index: i,
            file_size: 0,
            name: String::new(),
            sha1: None,
            hops: 0,
        };
        for n in 0..5u8 {
            s.open(Guid([n; 16]), 2);
        }
        assert!(!s.add(&Guid([0; 16]), [hit(1)], 3));
        assert!(s.add(&Guid([4; 16]), (0..10).map(hit), 3));
        assert_eq!(s.get(&Guid([4; 16])).len(), 3);
        assert!(s.get(&Guid([2; 16])).is_empty());
    }
}
