//! The running overlay: starts every node of the [`Plan`] (listeners first, then dialers),
//! waits until every planned link is up and every ultrapeer holds its leaves' QRP tables, then
//! follows the churn schedule. It owns the nodes' sessions and the session log; it is the API
//! experiments and tests call (search from a leaf, read hits, leave and rejoin a node, take a
//! [`Truth`] snapshot). Dropping it aborts everything; [`Overlay::stop`] says Bye first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onionlab_crawler::gnutella::Guid;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use super::churn::PlannedSession;
use super::config::{ConfigError, OverlayConfig};
use super::leaf;
use super::node::{Node, Outgoing, SearchHit};
use super::servent;
use super::topology::{Plan, Role};
use super::truth::{NodeTruth, SessionRecord, Truth};

/// How long a leaving node waits for its Byes to go out before it cuts its connections.
const BYE_GRACE: Duration = Duration::from_millis(500);

/// Why the overlay, or a request to it, failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OverlayError {
    /// The configuration cannot be planned.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A node could not listen on its address.
    #[error("node {node} cannot listen on {addr}: {error}")]
    Bind {
        /// The node.
        node: usize,
        /// Its address.
        addr: SocketAddr,
        /// The socket error.
        error: std::io::Error,
    },
    /// Planned links or QRP tables were still missing after the wait.
    #[error("the overlay was not ready within {0:?}: {1}")]
    NotReady(Duration, String),
    /// No node has this index.
    #[error("no node {0}")]
    NoSuchNode(usize),
    /// The node is an ultrapeer (only leaves search).
    #[error("node {0} is not a leaf")]
    NotALeaf(usize),
    /// The node is between sessions.
    #[error("node {0} is offline")]
    Offline(usize),
}

struct Inner {
    plan: Arc<Plan>,
    nodes: Vec<Arc<Node>>,
    sessions: Vec<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
    index_of: HashMap<SocketAddr, usize>,
    log: Mutex<Vec<SessionRecord>>,
    ready_at: Mutex<Option<Instant>>,
}

/// A running Gnutella overlay on loopback.
pub struct Overlay {
    inner: Arc<Inner>,
    churn: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("nodes", &self.inner.nodes.len())
            .finish()
    }
}

impl Overlay {
    /// Plans `config`, starts every node and waits (at most `ready`) until every planned link
    /// is up and every QRP table installed.
    pub async fn start(config: OverlayConfig, ready: Duration) -> Result<Overlay, OverlayError> {
        let plan = Arc::new(Plan::new(&config)?);
        let config = Arc::new(config);
        let index_of: HashMap<SocketAddr, usize> = plan.nodes.iter().map(|n| (n.addr, n.index)).collect();
        let nodes: Vec<Arc<Node>> = plan
            .nodes
            .iter()
            .map(|n| {
                let dials = plan.dials(n.index).into_iter().map(|i| plan.nodes[i].addr).collect();
                Arc::new(Node::new(n, dials, config.clone()))
            })
            .collect();
        let inner = Arc::new(Inner {
            sessions: nodes.iter().map(|_| tokio::sync::Mutex::new(None)).collect(),
            plan,
            nodes,
            index_of,
            log: Mutex::new(Vec::new()),
            ready_at: Mutex::new(None),
        });
        // Every listener first, so that no dialer meets a closed port.
        let mut listeners = Vec::with_capacity(inner.nodes.len());
        for node in &inner.nodes {
            let listener = servent::bind(node).await.map_err(|error| OverlayError::Bind {
                node: node.info.index,
                addr: node.info.addr,
                error,
            })?;
            listeners.push(listener);
        }
        for (i, listener) in listeners.into_iter().enumerate() {
            inner.nodes[i].state().online = true;
            let handle = tokio::spawn(servent::run_session(inner.nodes[i].clone(), listener));
            *inner.sessions[i].lock().await = Some(handle);
        }
        let deadline = Instant::now() + ready;
        loop {
            let missing = inner.missing();
            if missing.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(OverlayError::NotReady(ready, missing));
            }
            sleep(Duration::from_millis(50)).await;
        }
        let ready_at = Instant::now();
        *lock(&inner.ready_at) = Some(ready_at);
        lock(&inner.log).extend(inner.nodes.iter().map(|n| SessionRecord {
            node: n.info.index,
            start_secs: 0.0,
            end_secs: None,
        }));
        let churn = inner
            .plan
            .nodes
            .iter()
            .filter(|n| !n.sessions.is_empty())
            .map(|n| tokio::spawn(follow_schedule(inner.clone(), n.index, n.sessions.clone(), ready_at)))
            .collect();
        Ok(Overlay { inner, churn })
    }

    /// The plan the overlay runs.
    pub fn plan(&self) -> &Plan {
        &self.inner.plan
    }

    /// Node `index`'s listen address.
    pub fn addr(&self, index: usize) -> Option<SocketAddr> {
        self.inner.plan.nodes.get(index).map(|n| n.addr)
    }

    /// The node listening on `addr`.
    pub fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.inner.index_of.get(&addr).copied()
    }

    /// A snapshot of the live overlay.
    pub fn truth(&self) -> Truth {
        self.inner.truth()
    }

    /// Every session so far, in the order they began.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        lock(&self.inner.log).clone()
    }

    /// Sends a query from leaf `leaf` (keywords, or a `urn:sha1` when `sha1` is given) with
    /// `ttl`; its hits collect under the returned GUID.
    pub fn search(&self, leaf: usize, criteria: &str, sha1: Option<[u8; 20]>, ttl: u8) -> Result<Guid, OverlayError> {
        let node = self.inner.nodes.get(leaf).ok_or(OverlayError::NoSuchNode(leaf))?;
        if node.info.role != Role::Leaf {
            return Err(OverlayError::NotALeaf(leaf));
        }
        let mut state = node.state();
        if !state.online {
            return Err(OverlayError::Offline(leaf));
        }
        let (guid, sends) = leaf::search(node, &mut state, criteria, sha1, ttl, std::time::Instant::now());
        node.send_all(&state, sends);
        Ok(guid)
    }

    /// The hits leaf `leaf` holds for its query `guid`.
    pub fn hits(&self, leaf: usize, guid: &Guid) -> Vec<SearchHit> {
        self.inner
            .nodes
            .get(leaf)
            .map(|n| n.state().hits.get(guid))
            .unwrap_or_default()
    }

    /// Takes node `index` offline: Bye on every connection, then its sockets close.
    pub async fn leave(&self, index: usize) -> Result<(), OverlayError> {
        self.inner.leave(index).await
    }

    /// Brings node `index` back on its address; its dialers reconnect its planned links.
    pub async fn rejoin(&self, index: usize) -> Result<(), OverlayError> {
        self.inner.join(index).await
    }

    /// Stops churn, then every node says Bye and closes.
    pub async fn stop(mut self) {
        for c in self.churn.drain(..) {
            c.abort();
        }
        let inner = self.inner.clone();
        let leaving: Vec<_> = (0..inner.nodes.len())
            .map(|i| {
                let inner = inner.clone();
                tokio::spawn(async move { inner.leave(i).await })
            })
            .collect();
        for l in leaving {
            let _ = l.await;
        }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        for c in &self.churn {
            c.abort();
        }
        for s in &self.inner.sessions {
            if let Ok(mut s) = s.try_lock()
                && let Some(h) = s.take()
            {
                h.abort();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// What is still missing before the overlay counts as ready (empty when ready).
    fn missing(&self) -> String {
        let truth = self.truth();
        let plan = &self.plan;
        let ups: std::collections::BTreeSet<_> = truth.ultrapeer_edges.iter().copied().collect();
        let leaves: std::collections::BTreeSet<_> = truth.leaf_edges.iter().copied().collect();
        let missing_ups = plan
            .ultrapeer_links
            .iter()
            .filter(|&&(a, b)| !ups.contains(&(a.min(b), a.max(b))))
            .count();
        let missing_leaves = plan.leaf_links.iter().filter(|l| !leaves.contains(l)).count();
        if missing_ups + missing_leaves + truth.qrp_pending.len() == 0 {
            return String::new();
        }
        format!(
            "{missing_ups} ultrapeer links, {missing_leaves} leaf links and {} QRP tables missing",
            truth.qrp_pending.len()
        )
    }

    fn elapsed(&self) -> f64 {
        lock(&self.ready_at).map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    fn truth(&self) -> Truth {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        // (index, peer index, peer role, QRP installed) for every live connection.
        let mut halves = std::collections::BTreeSet::new();
        let mut qrp = std::collections::BTreeSet::new();
        for node in &self.nodes {
            let i = node.info.index;
            let state = node.state();
            for peer in state.conns.values() {
                if let Some(&j) = self.index_of.get(&peer.addr) {
                    halves.insert((i, j));
                    if node.info.role == Role::Ultrapeer && peer.role == Role::Leaf && peer.qrp.table().is_some() {
                        qrp.insert((j, i));
                    }
                }
            }
            nodes.push(NodeTruth {
                index: i,
                addr: node.info.addr,
                guid: hex::encode(node.info.guid.0),
                role: node.info.role,
                behaviour: node.info.behaviour,
                forwards_queries: node.info.role == Role::Ultrapeer && node.info.forwards_queries,
                online: state.online,
                counters: node.counters.snapshot(),
            });
        }
        let mut ultrapeer_edges = Vec::new();
        let mut leaf_edges = Vec::new();
        for &(i, j) in &halves {
            if !halves.contains(&(j, i)) {
                continue;
            }
            match (nodes[i].role, nodes[j].role) {
                (Role::Ultrapeer, Role::Ultrapeer) if i < j => ultrapeer_edges.push((i, j)),
                (Role::Leaf, Role::Ultrapeer) => leaf_edges.push((i, j)),
                _ => {}
            }
        }
        let qrp_pending = leaf_edges.iter().filter(|e| !qrp.contains(e)).copied().collect();
        Truth {
            elapsed_secs: self.elapsed(),
            nodes,
            ultrapeer_edges,
            leaf_edges,
            qrp_pending,
        }
    }

    async fn leave(&self, index: usize) -> Result<(), OverlayError> {
        let node = self.nodes.get(index).ok_or(OverlayError::NoSuchNode(index))?;
        let mut slot = self.sessions[index].lock().await;
        let Some(handle) = slot.take() else {
            return Ok(());
        };
        let queues: Vec<_> = {
            let mut s = node.state();
            s.online = false;
            s.conns.values().map(|p| p.queue.clone()).collect()
        };
        let bye = servent::bye();
        for q in queues {
            // A full queue gets no Bye: the connection is cut below all the same.
            let _ = q.try_send(Outgoing::Bye(bye.clone()));
        }
        let grace = Instant::now() + BYE_GRACE;
        while !node.state().conns.is_empty() && Instant::now() < grace {
            sleep(Duration::from_millis(10)).await;
        }
        handle.abort();
        let _ = handle.await;
        node.state().end_session();
        let at = self.elapsed();
        if let Some(r) = lock(&self.log)
            .iter_mut()
            .rev()
            .find(|r| r.node == index && r.end_secs.is_none())
        {
            r.end_secs = Some(at);
        }
        Ok(())
    }

    async fn join(&self, index: usize) -> Result<(), OverlayError> {
        let node = self.nodes.get(index).ok_or(OverlayError::NoSuchNode(index))?;
        let mut slot = self.sessions[index].lock().await;
        if slot.is_some() {
            return Ok(());
        }
        // The old listener is gone (its task was awaited); a few retries cover a slow close.
        let mut tries = 0;
        let listener = loop {
            match servent::bind(node).await {
                Ok(l) => break l,
                Err(error) if tries >= 20 => {
                    return Err(OverlayError::Bind {
                        node: index,
                        addr: node.info.addr,
                        error,
                    });
                }
                Err(_) => {
                    tries += 1;
                    sleep(Duration::from_millis(50)).await;
                }
            }
        };
        node.state().online = true;
        *slot = Some(tokio::spawn(servent::run_session(node.clone(), listener)));
        lock(&self.log).push(SessionRecord {
            node: index,
            start_secs: self.elapsed(),
            end_secs: None,
        });
        Ok(())
    }
}

/// Follows one node's planned sessions: it is up at the start, leaves at each session's end
/// and rejoins at the next one's start.
async fn follow_schedule(inner: Arc<Inner>, index: usize, sessions: Vec<PlannedSession>, t0: Instant) {
    let at = |secs: f64| t0 + Duration::from_secs_f64(secs.clamp(0.0, 1e9));
    for (k, s) in sessions.iter().enumerate() {
        if k > 0 {
            sleep_until(at(s.start)).await;
            if let Err(e) = inner.join(index).await {
                tracing::warn!(node = index, "rejoin failed: {e}");
            }
        }
        sleep_until(at(s.end)).await;
        let _ = inner.leave(index).await;
    }
}
