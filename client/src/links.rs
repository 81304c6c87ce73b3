//! TLS links from the client to guards, shared by every circuit through that guard.
//!
//! A reader task per link hands each cell to its circuit's inbox. A circuit whose inbox is
//! full has a peer ignoring flow control; it is destroyed, and the link stays up.

use crate::circuit::Ev;
use onionlab_link::channel::{CellReader, ChannelConnector, LinkError};
use onionlab_link::registry::{LinkHandle, LinkTable};
use onionlab_proto::cell::{CellCommand, DestroyReason};
use onionlab_proto::keys::IdentityBytes;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// One link to a guard; circuits are reached through their inboxes.
pub type GuardLink = LinkHandle<mpsc::Sender<Ev>>;

/// Open links by guard identity.
pub struct GuardLinks {
    table: LinkTable<mpsc::Sender<Ev>>,
}

impl GuardLinks {
    /// An empty table using `connector`.
    pub fn new(connector: ChannelConnector) -> Self {
        GuardLinks {
            table: LinkTable::new(connector),
        }
    }

    /// The open link to `identity`, opening one if needed.
    pub async fn get(&self, addr: SocketAddr, identity: &IdentityBytes) -> Result<GuardLink, LinkError> {
        self.table
            .get(addr, identity, |reader, link| {
                tokio::spawn(read_loop(reader, link));
            })
            .await
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
        let Some(tx) = link.circuits.get(circ_id) else { continue };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Ev::Cell(cell)) {
            link.circuits.remove(circ_id);
            let _ = link.sender.send(DestroyReason::ResourceLimit.to_cell(circ_id)).await;
            tokio::spawn(async move {
                let _ = tx.send(Ev::LinkClosed).await;
            });
        }
    }
    for tx in link.circuits.drain() {
        let _ = tx.send(Ev::LinkClosed).await;
    }
}
