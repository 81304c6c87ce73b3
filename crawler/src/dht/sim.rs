//! A loopback Mainline DHT: thousands of real KRPC responders, each with its own 127.x.y.z address
//! and UDP socket, whose k-bucket routing tables are built from a global view at start. It owns the
//! simulated nodes and the ground truth about them; it never talks to anything outside 127/8.
//!
//! # The network
//!
//! [`SimConfig::nodes`] honest nodes sit at consecutive addresses from [`SimConfig::base_ip`] (by
//! default 127.1.0.0, 127.1.0.1, ...), with BEP 42 ids for their addresses. Every node's routing
//! table is what a long-lived BEP 5 node converges to: for each depth d, bucket d holds up to
//! [`SimConfig::k`] nodes (picked with the seeded PRNG) among all those sharing exactly d leading
//! bits with it. The same seed gives the same ids, roles and tables; only ephemeral ports differ
//! between runs (fix [`SimConfig::port`] for byte-identical networks).
//!
//! Each node answers `ping`, `find_node` (the k closest entries of its table), `get_peers` (a token,
//! the peers announced to it if any, and the k closest entries), `announce_peer` (token checked,
//! `implied_port` honoured) and `sample_infohashes` (BEP 51: up to 20 of the info-hashes it holds,
//! `num`, `interval` and the k closest entries). Replies carry `v` = `SM\x00\x01` and the querier's
//! `ip` (BEP 42). Torrents of [`SimConfig::torrents`] start out stored at the k nodes closest to
//! their info-hash.
//!
//! # Planted adversaries
//!
//! - **Silent nodes** ([`SimConfig::silent`]): in everyone's tables, bound, never answering.
//! - **Restarted nodes** ([`SimConfig::restarted`]): tables hold their old id; they answer with a
//!   new one (the id/address mismatch a crawler must report).
//! - **Sybils** ([`SybilConfig`]): many ids sharing [`SybilConfig::shared_bits`] leading bits with a
//!   target info-hash (so they are its closest nodes), all from one IP with many ports or from
//!   consecutive IPs of one range, ids not derived from their addresses (BEP 42 fails).
//! - **Poisoners** ([`PoisonConfig`]): answer `get_peers` for the target with many fake peers at
//!   addresses where nothing listens.
//!
//! Address plan, from `base_ip` B: honest nodes B + i, Sybils from B + 2¹⁶ (the next /16),
//! poisoners from B + 2·2¹⁶, fake peers in B + 3·2¹⁶ ... B + 4·2¹⁶ − 1.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::socket::bind_udp;
use super::space::{SplitMix64, bep42_id, cmp_distance};
use crate::infohash::InfoHash;
use crate::krpc::{self, Body, Message, NodeId, Query, RemoteError, Response};

/// The `v` simulated nodes send.
pub const SIM_VERSION: &[u8] = b"SM\x00\x01";

/// Largest number of fake peers a poisoner returns (keeps replies under 2 KiB).
pub const MAX_FAKE_PEERS: usize = 150;

/// The largest datagram a simulated node reads.
const MAX_DATAGRAM: usize = 2048;

/// How many info-hashes a `sample_infohashes` reply carries at most.
const MAX_SAMPLES: usize = 20;

/// What a simulated network looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Honest nodes (silent and restarted ones included).
    pub nodes: usize,
    /// The PRNG seed: ids, roles and routing tables follow from it.
    pub seed: u64,
    /// The first honest node's address; must leave room for 4 × 2¹⁶ addresses inside 127/8.
    pub base_ip: Ipv4Addr,
    /// The UDP port of every node (Sybils on one IP use `port`, `port + 1`, ...); 0 for ephemeral.
    pub port: u16,
    /// Bucket size k (8 in BEP 5).
    pub k: usize,
    /// Honest nodes that never answer.
    pub silent: usize,
    /// Honest nodes answering with another id than the one their neighbours hold.
    pub restarted: usize,
    /// Planted Sybils, if any.
    pub sybils: Option<SybilConfig>,
    /// Planted poisoners, if any.
    pub poisoners: Option<PoisonConfig>,
    /// Torrents stored at their k closest nodes at start.
    pub torrents: Vec<SimTorrent>,
}

impl Default for SimConfig {
    /// 1000 honest nodes from 127.1.0.0, seed 1, k = 8, ephemeral ports, no adversaries.
    fn default() -> Self {
        SimConfig {
            nodes: 1000,
            seed: 1,
            base_ip: Ipv4Addr::new(127, 1, 0, 0),
            port: 0,
            k: 8,
            silent: 0,
            restarted: 0,
            sybils: None,
            poisoners: None,
            torrents: Vec::new(),
        }
    }
}

/// Where Sybils live (`one_ip` or `range` in campaign files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SybilPlacement {
    /// All on one IP address, one port each.
    OneIp,
    /// One each on consecutive addresses of one range.
    Range,
}

/// Planted Sybils.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SybilConfig {
    /// How many.
    pub count: usize,
    /// One IP or a range.
    pub placement: SybilPlacement,
    /// The key they cluster around.
    pub target: InfoHash,
    /// Leading bits every Sybil id shares with `target`.
    pub shared_bits: u32,
}

impl SybilConfig {
    /// `count` Sybils placed so, sharing `shared_bits` with `target`; `None` for none.
    pub fn planted(count: usize, placement: SybilPlacement, target: InfoHash, shared_bits: u32) -> Option<Self> {
        (count > 0).then_some(SybilConfig {
            count,
            placement,
            target,
            shared_bits,
        })
    }
}

/// The key a network's Sybils and poisoners cluster around when none is named: drawn from
/// the network's `seed`.
pub fn default_target(seed: u64) -> InfoHash {
    InfoHash(SplitMix64::new(seed ^ 0x7a76_6574).node_id().0)
}

/// Planted poisoners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonConfig {
    /// How many.
    pub count: usize,
    /// The torrent they poison.
    pub target: InfoHash,
    /// Fake peers per `get_peers` reply for the target (at most [`MAX_FAKE_PEERS`]).
    pub fake_peers: usize,
    /// Leading bits their ids share with `target` (0: ordinary BEP 42 ids).
    pub shared_bits: u32,
}

impl PoisonConfig {
    /// `count` poisoners of `target` with `fake_peers` each, their ids sharing `shared_bits`
    /// with it; `None` for none.
    pub fn planted(count: usize, target: InfoHash, fake_peers: usize, shared_bits: u32) -> Option<Self> {
        (count > 0).then_some(PoisonConfig {
            count,
            target,
            fake_peers,
            shared_bits,
        })
    }
}

/// A torrent and its peers, known to the network from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTorrent {
    /// Its info-hash.
    pub info_hash: InfoHash,
    /// Its peers.
    pub peers: Vec<SocketAddr>,
}

/// What a simulated node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Answers truthfully.
    Honest,
    /// Never answers.
    Silent,
    /// Answers with another id than the one in its neighbours' tables.
    Restarted,
    /// One of many ids near a target, from one IP or one range.
    Sybil,
    /// Answers `get_peers` for a target with fake peers.
    Poisoner,
}

impl Role {
    /// Whether nodes of this role answer queries.
    pub fn responds(self) -> bool {
        self != Role::Silent
    }
}

/// Ground truth about one simulated node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimNode {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The id its neighbours hold for it (what `nodes` lists advertise).
    pub id: NodeId,
    /// The id it answers with (differs from `id` for restarted nodes).
    pub answers_with: NodeId,
    /// What it is.
    pub role: Role,
}

/// Why a simulated network could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration cannot be laid out.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// A node's socket could not be bound (fd limit, address in use).
    #[error("cannot bind simulated node at {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// Running totals of a simulated network.
#[derive(Debug, Default)]
pub struct SimStats {
    queries: AtomicU64,
    announces: AtomicU64,
    rejected: AtomicU64,
}

impl SimStats {
    /// Queries answered (errors included).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
    /// `announce_peer` queries accepted.
    pub fn announces(&self) -> u64 {
        self.announces.load(Ordering::Relaxed)
    }
    /// Queries refused with a KRPC error (bad token), and datagrams that are not KRPC (dropped).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// What every node task shares: the global view.
struct World {
    nodes: Vec<SimNode>,
    /// Routing tables: indices into `nodes`, `table_start[i]..table_start[i + 1]` for node i.
    tables: Vec<u32>,
    table_start: Vec<usize>,
    k: usize,
    seed: u64,
    poison: Option<(InfoHash, Vec<SocketAddr>)>,
    stats: SimStats,
}

/// A running simulated DHT. Dropping it stops every node.
pub struct SimNetwork {
    world: Arc<World>,
    tasks: Vec<AbortHandle>,
    /// Sockets of silent nodes: bound (so nothing else takes the address) and never read.
    _silent: Vec<UdpSocket>,
}

impl std::fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNetwork")
            .field("nodes", &self.world.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Drop for SimNetwork {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The address `base + offset`, if it stays inside 127/8.
fn offset_ip(base: Ipv4Addr, offset: usize) -> Option<Ipv4Addr> {
    let ip = u32::from(base).checked_add(u32::try_from(offset).ok()?)?;
    let ip = Ipv4Addr::from(ip);
    (ip.octets()[0] == 127).then_some(ip)
}

/// An id sharing `bits` leading bits with `target`, the rest random.
fn id_near(target: &InfoHash, bits: u32, rng: &mut SplitMix64) -> NodeId {
    let mut id = rng.node_id();
    for bit in 0..bits.min(160) {
        let (byte, mask) = ((bit / 8) as usize, 0x80u8 >> (bit % 8));
        id.0[byte] = (id.0[byte] & !mask) | (target.0[byte] & mask);
    }
    id
}

/// A node before its socket is bound.
struct Planned {
    addr: SocketAddr,
    id: NodeId,
    answers_with: NodeId,
    role: Role,
}

fn plan(config: &SimConfig, rng: &mut SplitMix64) -> Result<Vec<Planned>, SimError> {
    let bad = |m: &str| SimError::Config(m.to_owned());
    if config.nodes == 0 {
        return Err(bad("a network needs at least one honest node"));
    }
    if config.nodes > 1 << 16 {
        return Err(bad("at most 65536 honest nodes (one /16)"));
    }
    if config.silent + config.restarted >= config.nodes {
        return Err(bad(
            "silent and restarted nodes must leave at least one honest responder",
        ));
    }
    if config.k == 0 {
        return Err(bad("k must be at least 1"));
    }
    if config.base_ip.octets()[0] != 127 || offset_ip(config.base_ip, (4 << 16) - 1).is_none() {
        return Err(bad("base_ip must be in 127/8 with 4 × 65536 addresses after it"));
    }
    let ip_at = |offset: usize| offset_ip(config.base_ip, offset).ok_or_else(|| bad("address plan leaves 127/8"));
    let mut out = Vec::new();
    // Roles among the honest nodes: silent ones first, then restarted ones, spread by the PRNG.
    let mut roles = vec![Role::Honest; config.nodes];
    let mut assign = |count: usize, role: Role, rng: &mut SplitMix64| {
        let mut left = count;
        while left > 0 {
            // Node 0 stays honest: it is the bootstrap node.
            let i = 1 + rng.below(config.nodes as u64 - 1) as usize;
            if roles[i] == Role::Honest {
                roles[i] = role;
                left -= 1;
            }
        }
    };
    assign(config.silent, Role::Silent, rng);
    assign(config.restarted, Role::Restarted, rng);
    for (i, role) in roles.into_iter().enumerate() {
        let ip = ip_at(i)?;
        let id = bep42_id(IpAddr::V4(ip), rng);
        let answers_with = if role == Role::Restarted {
            bep42_id(IpAddr::V4(ip), rng)
        } else {
            id
        };
        out.push(Planned {
            addr: SocketAddr::V4(SocketAddrV4::new(ip, config.port)),
            id,
            answers_with,
            role,
        });
    }
    if let Some(s) = &config.sybils {
        if s.count > 1 << 16 {
            return Err(bad("at most 65536 Sybils"));
        }
        for j in 0..s.count {
            let (ip, port) = match s.placement {
                SybilPlacement::OneIp => {
                    let port = if config.port == 0 {
                        0
                    } else {
                        u16::try_from(usize::from(config.port) + j).map_err(|_| bad("Sybil ports pass 65535"))?
                    };
                    (ip_at(1 << 16)?, port)
                }
                SybilPlacement::Range => (ip_at((1 << 16) + j)?, config.port),
            };
            let id = id_near(&s.target, s.shared_bits, rng);
            out.push(Planned {
                addr: SocketAddr::V4(SocketAddrV4::new(ip, port)),
                id,
                answers_with: id,
                role: Role::Sybil,
            });
        }
    }
    if let Some(p) = &config.poisoners {
        if p.count > 1 << 16 {
            return Err(bad("at most 65536 poisoners"));
        }
        for j in 0..p.count {
            let ip = ip_at((2 << 16) + j)?;
            let id = if p.shared_bits == 0 {
                bep42_id(IpAddr::V4(ip), rng)
            } else {
                id_near(&p.target, p.shared_bits, rng)
            };
            out.push(Planned {
                addr: SocketAddr::V4(SocketAddrV4::new(ip, config.port)),
                id,
                answers_with: id,
                role: Role::Poisoner,
            });
        }
    }
    Ok(out)
}

/// Compares the first `bits` bits of `a` and `b`.
fn cmp_prefix(a: &NodeId, b: &NodeId, bits: u32) -> std::cmp::Ordering {
    let full = (bits / 8) as usize;
    match a.0[..full].cmp(&b.0[..full]) {
        std::cmp::Ordering::Equal if !bits.is_multiple_of(8) => {
            let mask = 0xffu8 << (8 - bits % 8);
            (a.0[full] & mask).cmp(&(b.0[full] & mask))
        }
        other => other,
    }
}

/// Builds every node's routing table from the global view (see the module docs).
fn build_tables(ids: &[NodeId], k: usize, rng: &mut SplitMix64) -> (Vec<u32>, Vec<usize>) {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_by(|a, b| ids[*a as usize].cmp(&ids[*b as usize]));
    let sorted: Vec<NodeId> = order.iter().map(|i| ids[*i as usize]).collect();
    // [lo, hi) of the sorted ids whose first `bits` bits equal those of `key`.
    let range = |key: &NodeId, bits: u32| {
        let lo = sorted.partition_point(|x| cmp_prefix(x, key, bits).is_lt());
        let hi = sorted.partition_point(|x| cmp_prefix(x, key, bits).is_le());
        (lo, hi)
    };
    let mut tables = Vec::new();
    let mut starts = Vec::with_capacity(ids.len() + 1);
    for (me, id) in ids.iter().enumerate() {
        starts.push(tables.len());
        let mut depth = 0;
        while depth < 160 {
            let (own_lo, own_hi) = range(id, depth + 1);
            let bucket_key = super::space::flip_bit(id, depth);
            let (lo, hi) = range(&bucket_key, depth + 1);
            let n = hi - lo;
            if n <= k {
                tables.extend(order[lo..hi].iter().copied().filter(|i| *i as usize != me));
            } else {
                // k distinct picks from the range (Floyd's algorithm keeps it O(k)).
                let mut picked: Vec<usize> = Vec::with_capacity(k);
                for j in n - k..n {
                    let t = rng.below(j as u64 + 1) as usize;
                    picked.push(if picked.contains(&t) { j } else { t });
                }
                picked.sort_unstable();
                tables.extend(picked.iter().map(|p| order[lo + p]));
            }
            // Deeper buckets are empty once no other node shares the next bit.
            if own_hi - own_lo <= 1 {
                break;
            }
            depth += 1;
        }
    }
    starts.push(tables.len());
    (tables, starts)
}

impl SimNetwork {
    /// Lays out, binds and starts the network (inside a tokio runtime).
    pub async fn start(config: SimConfig) -> Result<SimNetwork, SimError> {
        let mut rng = SplitMix64::new(config.seed);
        let planned = plan(&config, &mut rng)?;
        let mut sockets = Vec::with_capacity(planned.len());
        let mut nodes = Vec::with_capacity(planned.len());
        for p in planned {
            let udp = bind_udp(p.addr, None).map_err(|source| SimError::Bind { addr: p.addr, source })?;
            let addr = udp
                .local_addr()
                .map_err(|source| SimError::Bind { addr: p.addr, source })?;
            sockets.push(udp);
            nodes.push(SimNode {
                addr,
                id: p.id,
                answers_with: p.answers_with,
                role: p.role,
            });
        }
        let ids: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
        let (tables, table_start) = build_tables(&ids, config.k, &mut rng);
        let poison = match &config.poisoners {
            Some(p) => {
                let fakes = (0..p.fake_peers.min(MAX_FAKE_PEERS))
                    .map(|_| {
                        let ip = offset_ip(config.base_ip, (3 << 16) + rng.below(1 << 16) as usize)
                            .unwrap_or(Ipv4Addr::new(127, 255, 255, 254));
                        SocketAddr::V4(SocketAddrV4::new(ip, 1024 + rng.below(60_000) as u16))
                    })
                    .collect();
                Some((p.target, fakes))
            }
            None => None,
        };
        let world = Arc::new(World {
            nodes,
            tables,
            table_start,
            k: config.k,
            seed: config.seed,
            poison,
            stats: SimStats::default(),
        });
        // Torrents start at their k closest responsive nodes.
        let mut stored: Vec<HashMap<InfoHash, Vec<SocketAddr>>> = vec![HashMap::new(); world.nodes.len()];
        for t in &config.torrents {
            let target = NodeId(t.info_hash.0);
            let mut by_distance: Vec<usize> = (0..world.nodes.len())
                .filter(|i| world.nodes[*i].role.responds())
                .collect();
            by_distance.sort_by(|a, b| cmp_distance(&target, &world.nodes[*a].id, &world.nodes[*b].id));
            for i in by_distance.into_iter().take(config.k) {
                stored[i]
                    .entry(t.info_hash)
                    .or_default()
                    .extend(t.peers.iter().copied());
            }
        }
        let mut tasks = Vec::new();
        let mut silent = Vec::new();
        for (index, (udp, store)) in sockets.into_iter().zip(stored).enumerate() {
            if world.nodes[index].role.responds() {
                tasks.push(tokio::spawn(serve(world.clone(), index, udp, store)).abort_handle());
            } else {
                silent.push(udp);
            }
        }
        Ok(SimNetwork {
            world,
            tasks,
            _silent: silent,
        })
    }

    /// Every node, honest and planted, in layout order (honest from `base_ip`, then Sybils, then
    /// poisoners).
    pub fn nodes(&self) -> &[SimNode] {
        &self.world.nodes
    }

    /// A node to bootstrap from (always honest and responsive).
    pub fn bootstrap(&self) -> SocketAddr {
        self.world.nodes[0].addr
    }

    /// The entries of node `index`'s routing table.
    pub fn routing_table(&self, index: usize) -> impl Iterator<Item = &SimNode> + '_ {
        self.world.table(index).iter().map(|i| &self.world.nodes[*i as usize])
    }

    /// The fake peers poisoners hand out for their target (empty without poisoners).
    pub fn fake_peers(&self) -> &[SocketAddr] {
        self.world.poison.as_ref().map_or(&[], |(_, f)| f.as_slice())
    }

    /// Running totals.
    pub fn stats(&self) -> &SimStats {
        &self.world.stats
    }
}

impl World {
    fn table(&self, index: usize) -> &[u32] {
        &self.tables[self.table_start[index]..self.table_start[index + 1]]
    }

    /// The k entries of `me`'s table closest to `target`, in compact form.
    fn closest(&self, me: usize, target: &NodeId) -> Vec<(NodeId, SocketAddrV4)> {
        let mut entries: Vec<u32> = self.table(me).to_vec();
        let by_distance =
            |a: &u32, b: &u32| cmp_distance(target, &self.nodes[*a as usize].id, &self.nodes[*b as usize].id);
        if entries.len() > self.k {
            entries.select_nth_unstable_by(self.k, by_distance);
            entries.truncate(self.k);
        }
        entries.sort_unstable_by(by_distance);
        entries
            .into_iter()
            .filter_map(|i| {
                let n = &self.nodes[i as usize];
                match n.addr {
                    SocketAddr::V4(a) => Some((n.id, a)),
                    SocketAddr::V6(_) => None,
                }
            })
            .collect()
    }

    /// The token node `me` hands to `ip` (a keyed hash; never rotates in the simulator).
    fn token(&self, me: usize, ip: IpAddr) -> Vec<u8> {
        let ip_bits = match ip {
            IpAddr::V4(v4) => u64::from(u32::from(v4)),
            IpAddr::V6(v6) => {
                let o = u128::from(v6);
                (o as u64) ^ ((o >> 64) as u64)
            }
        };
        let mut rng = SplitMix64::new(self.seed ^ (me as u64).rotate_left(32) ^ ip_bits);
        rng.next_u64().to_be_bytes().to_vec()
    }

    /// The reply of node `me` (holding `store`) to `query` from `from`.
    fn answer(
        &self,
        me: usize,
        query: Query,
        from: SocketAddr,
        store: &mut HashMap<InfoHash, Vec<SocketAddr>>,
    ) -> Result<Response, RemoteError> {
        let node = &self.nodes[me];
        let mut r = Response::new(node.answers_with);
        match query {
            Query::Ping { .. } => {}
            Query::FindNode { target, .. } => r.nodes = Some(self.closest(me, &target)),
            Query::GetPeers { info_hash, .. } => {
                r.token = Some(self.token(me, from.ip()));
                r.nodes = Some(self.closest(me, &NodeId(info_hash.0)));
                match &self.poison {
                    Some((target, fakes)) if node.role == Role::Poisoner && *target == info_hash => {
                        r.values = Some(fakes.clone());
                    }
                    _ => r.values = store.get(&info_hash).cloned(),
                }
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                token,
                implied_port,
                ..
            } => {
                if token != self.token(me, from.ip()) {
                    return Err(RemoteError {
                        code: 203,
                        message: b"bad token".to_vec(),
                    });
                }
                let port = if implied_port == Some(true) { from.port() } else { port };
                let peer = SocketAddr::new(from.ip(), port);
                let peers = store.entry(info_hash).or_default();
                if !peers.contains(&peer) {
                    peers.push(peer);
                }
                self.stats.announces.fetch_add(1, Ordering::Relaxed);
            }
            Query::SampleInfohashes { target, .. } => {
                let mut held: Vec<InfoHash> = store.keys().copied().collect();
                held.sort_unstable();
                r.num = Some(held.len() as i64);
                held.truncate(MAX_SAMPLES);
                r.samples = Some(held);
                r.interval = Some(60);
                r.nodes = Some(self.closest(me, &target));
            }
        }
        Ok(r)
    }
}

/// One node's receive-answer loop; runs until aborted.
async fn serve(world: Arc<World>, me: usize, udp: UdpSocket, mut store: HashMap<InfoHash, Vec<SocketAddr>>) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, from) = match udp.recv_from(&mut buf).await {
            Ok((n, _)) if n > MAX_DATAGRAM => continue,
            Ok(x) => x,
            // ICMP errors for earlier replies, and the like: keep serving.
            Err(_) => continue,
        };
        let limits = krpc::Limits {
            max_message: MAX_DATAGRAM,
            ..krpc::Limits::default()
        };
        let Ok(decoded) = krpc::decode_with(&buf[..n], limits) else {
            world.stats.rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let Body::Query(query) = decoded.message.body else {
            continue;
        };
        let body = match world.answer(me, query, from, &mut store) {
            Ok(r) => Body::Response(r),
            Err(e) => {
                world.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Body::Error(e)
            }
        };
        let reply = Message {
            transaction_id: decoded.message.transaction_id,
            version: Some(SIM_VERSION.to_vec()),
            ip: Some(from),
            read_only: false,
            body,
        };
        world.stats.queries.fetch_add(1, Ordering::Relaxed);
        // A full send buffer or an unreachable querier loses this reply, as UDP would.
        let _ = udp.send_to(&reply.encode(), from).await;
    }
}

#[cfg(test)]
mod tests;
