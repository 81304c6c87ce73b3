//! TLS links from the client to guards, shared by every circuit through that guard.
//!
//! A reader task per link hands each cell to its circuit's inbox. A circuit whose inbox is
//! full has a peer ignoring flow control; it is destroyed, and the link stays up.

use crate::circuit::Ev;
use onionlab_link::channel::{CellReader, ChannelConnector, ChannelSender, LinkError};
use onionlab_proto::cell::{CellCommand, CircId, DestroyReason};
use onionlab_proto::keys::IdentityBytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// One link to a guard.
#[derive(Clone)]
pub struct GuardLink {
    /// Sends cells.
    pub sender: ChannelSender,
    circuits: Arc<Mutex<HashMap<CircId, mpsc::Sender<Ev>>>>,
    next_id: Arc<AtomicU32>,
}

impl GuardLink {
    /// Registers a new circuit's inbox; returns its id (top bit set: we opened the link).
    pub fn register(&self, tx: mpsc::Sender<Ev>) -> Option<CircId> {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..1024 {
            let id = 0x8000_0000 | (self.next_id.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff);
            if id != 0x8000_0000 && !map.contains_key(&id) {
                map.insert(id, tx);
                return Some(id);
            }
        }
        None
    }

    /// Forgets a circuit.
    pub fn unregister(&self, id: CircId) {
        self.circuits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// Open links by guard identity.
pub struct GuardLinks {
    connector: ChannelConnector,
    links: tokio::sync::Mutex<HashMap<IdentityBytes, GuardLink>>,
}

impl GuardLinks {
    /// An empty table using `connector`.
    pub fn new(connector: ChannelConnector) -> Self {
        GuardLinks {
            connector,
            links: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The open link to `identity`, opening one if needed.
    pub async fn get(
        &self,
        addr: SocketAddr,
        identity: &IdentityBytes,
    ) -> Result<GuardLink, LinkError> {
        let mut links = self.links.lock().await;
        if let Some(l) = links.get(identity)
            && !l.sender.is_closed()
        {
            return Ok(l.clone());
        }
        let (reader, sender) = self.connector.connect(addr, identity).await?.split();
        let link = GuardLink {
            sender,
            circuits: Arc::default(),
            next_id: Arc::new(AtomicU32::new(1)),
        };
        links.insert(*identity, link.clone());
        tokio::spawn(read_loop(reader, link.clone()));
        Ok(link)
    }
}

async fn read_loop(mut reader: CellReader, link: GuardLink) {
    loop {
        let cell = match reader.next().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("guard link closed: {e}");
                break;
            }
        };
        if !matches!(
            cell.command,
            CellCommand::Relay | CellCommand::Created2 | CellCommand::Destroy
        ) {
            tracing::debug!(command = ?cell.command, "unexpected cell from guard; closing link");
            break;
        }
        let circ_id = cell.circ_id;
        let Some(tx) = link
            .circuits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&circ_id)
            .cloned()
        else {
            continue;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Ev::Cell(cell)) {
            link.unregister(circ_id);
            let _ = link
                .sender
                .send(DestroyReason::ResourceLimit.to_cell(circ_id))
                .await;
            tokio::spawn(async move {
                let _ = tx.send(Ev::LinkClosed).await;
            });
        }
    }
    let all: Vec<_> = link
        .circuits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, tx)| tx)
        .collect();
    for tx in all {
        let _ = tx.send(Ev::LinkClosed).await;
    }
}
