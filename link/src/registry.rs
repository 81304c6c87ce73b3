//! Which circuits ride on a link, and which links are open to which relays.
//!
//! Shared by the relay and the client: both open links to relays by identity (reusing an open
//! one), both hand each arriving cell to the circuit its id names, and both pick ids for the
//! circuits they create. The side that opened a link sets the top bit of the ids it picks, so
//! the two ends of a link never choose the same id.

use crate::channel::{CellReader, ChannelConnector, ChannelSender, LinkError};
use onionlab_proto::cell::{CircId, DestroyReason};
use onionlab_proto::keys::IdentityBytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The circuits on one link, each with what the link's reader needs to reach it.
pub struct CircuitMap<T> {
    map: Mutex<HashMap<CircId, T>>,
    next: AtomicU32,
}

impl<T> Default for CircuitMap<T> {
    fn default() -> Self {
        CircuitMap {
            map: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
        }
    }
}

impl<T: Clone> CircuitMap<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CircId, T>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks a free id for a circuit we create on a link we opened (top bit set) and
    /// registers `value` under it.
    pub fn allocate(&self, value: T) -> Option<CircId> {
        let mut map = self.lock();
        for _ in 0..1024 {
            let id = 0x8000_0000 | (self.next.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff);
            if id != 0x8000_0000 && !map.contains_key(&id) {
                map.insert(id, value);
                return Some(id);
            }
        }
        None
    }

    /// Registers a circuit the peer created; false if the id is taken (or 0).
    pub fn insert(&self, id: CircId, value: T) -> bool {
        let mut map = self.lock();
        if id == 0 || map.contains_key(&id) {
            return false;
        }
        map.insert(id, value);
        true
    }

    /// True if `id` is in use.
    pub fn contains(&self, id: CircId) -> bool {
        self.lock().contains_key(&id)
    }

    /// The circuit registered under `id`.
    pub fn get(&self, id: CircId) -> Option<T> {
        self.lock().get(&id).cloned()
    }

    /// Forgets `id`.
    pub fn remove(&self, id: CircId) {
        self.lock().remove(&id);
    }

    /// Forgets every circuit, returning them (the link died).
    pub fn drain(&self) -> Vec<T> {
        self.lock().drain().map(|(_, v)| v).collect()
    }
}

/// A link as its users hold it: the sender and the circuits on it.
pub struct LinkHandle<T> {
    /// Sends cells on the link.
    pub sender: ChannelSender,
    /// Circuits on this link.
    pub circuits: Arc<CircuitMap<T>>,
    reader_gone: Arc<AtomicBool>,
}

impl<T> Clone for LinkHandle<T> {
    fn clone(&self) -> Self {
        LinkHandle {
            sender: self.sender.clone(),
            circuits: self.circuits.clone(),
            reader_gone: self.reader_gone.clone(),
        }
    }
}

impl<T: Clone> LinkHandle<T> {
    /// A handle for a freshly split link.
    pub fn new(sender: ChannelSender) -> Self {
        LinkHandle {
            sender,
            circuits: Arc::new(CircuitMap::default()),
            reader_gone: Arc::default(),
        }
    }

    /// Called by the link's reader when it stops: the peer is gone, so the link must not be
    /// handed out for new circuits (its writer lives on while anyone holds a sender).
    pub fn reader_stopped(&self) {
        self.reader_gone.store(true, Ordering::Relaxed);
    }

    /// Forgets circuit `id` and tells the peer it is gone (DESTROY with `reason`), waiting at
    /// most `limit` for room in the link's queue.
    pub async fn destroy(&self, id: CircId, reason: DestroyReason, limit: std::time::Duration) {
        self.circuits.remove(id);
        let _ = tokio::time::timeout(limit, self.sender.send(reason.to_cell(id))).await;
    }

    /// True while new circuits may use the link.
    pub fn is_usable(&self) -> bool {
        !self.reader_gone.load(Ordering::Relaxed) && !self.sender.is_closed()
    }
}

/// Links we opened, by the peer's identity.
pub struct LinkTable<T> {
    connector: ChannelConnector,
    links: tokio::sync::Mutex<HashMap<IdentityBytes, LinkHandle<T>>>,
}

impl<T: Clone> LinkTable<T> {
    /// An empty table opening links with `connector`.
    pub fn new(connector: ChannelConnector) -> Self {
        LinkTable {
            connector,
            links: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The open link to `identity`, or a new one to `addr` (which must prove `identity`);
    /// `spawn_reader` starts the task that reads the new link.
    pub async fn get(
        &self,
        addr: SocketAddr,
        identity: &IdentityBytes,
        spawn_reader: impl FnOnce(CellReader, LinkHandle<T>),
    ) -> Result<LinkHandle<T>, LinkError> {
        let mut links = self.links.lock().await;
        if let Some(l) = links.get(identity)
            && l.is_usable()
        {
            return Ok(l.clone());
        }
        let (reader, sender) = self.connector.connect(addr, identity).await?.split();
        let link = LinkHandle::new(sender);
        links.insert(*identity, link.clone());
        spawn_reader(reader, link.clone());
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_marked() {
        let m = CircuitMap::default();
        let a = m.allocate(1).unwrap();
        let b = m.allocate(2).unwrap();
        assert_ne!(a, b);
        assert!(a & 0x8000_0000 != 0 && b & 0x8000_0000 != 0);
        assert!(!m.insert(a, 3), "taken ids are refused");
        assert!(!m.insert(0, 3), "0 is the link itself");
        assert!(m.insert(7, 3));
        assert_eq!(m.get(7), Some(3));
        m.remove(7);
        assert!(!m.contains(7));
        let mut rest = m.drain();
        rest.sort();
        assert_eq!(rest, vec![1, 2]);
    }
}
