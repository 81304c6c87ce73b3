//! Links to the first hops of the circuits this process builds, shared by every circuit
//! through the same relay.
//!
//! A reader task per link hands each cell to its circuit's inbox. A circuit whose inbox is
//! full has a peer ignoring flow control; it is destroyed, and the link stays up.

use super::circuit::Ev;
use crate::channel::{CellReader, ChannelConnector, LinkError};
use crate::registry::{LinkHandle, LinkTable};
use onionlab_proto::cell::{CellCommand, DestroyReason};
use onionlab_proto::keys::IdentityBytes;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait for room to queue a DESTROY.
const DESTROY_WAIT: Duration = Duration::from_secs(5);

/// One link to a first hop; circuits are reached through their inboxes.
pub type EntryLink = LinkHandle<mpsc::Sender<Ev>>;

/// Open links by first-hop identity.
pub struct EntryLinks {
    table: LinkTable<mpsc::Sender<Ev>>,
}

impl EntryLinks {
    /// An empty table using `connector`.
    pub fn new(connector: ChannelConnector) -> Self {
        EntryLinks {
            table: LinkTable::new(connector),
        }
    }

    /// The open link to `identity`, opening one if needed.
    pub async fn get(&self, addr: SocketAddr, identity: &IdentityBytes) -> Result<EntryLink, LinkError> {
        self.table
            .get(addr, identity, |reader, link| {
                tokio::spawn(read_loop(reader, link));
            })
            .await
    }
}

async fn read_loop(mut reader: CellReader, link: EntryLink) {
    loop {
        let cell = match reader.next().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("entry link closed: {e}");
                break;
            }
        };
        if !matches!(
            cell.command,
            CellCommand::Relay | CellCommand::Created2 | CellCommand::Destroy
        ) {
            tracing::debug!(command = ?cell.command, "unexpected cell from first hop; closing link");
            break;
        }
        let circ_id = cell.circ_id;
        let Some(tx) = link.circuits.get(circ_id) else { continue };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Ev::Cell(Box::new(cell))) {
            link.destroy(circ_id, DestroyReason::ResourceLimit, DESTROY_WAIT).await;
            tokio::spawn(async move {
                let _ = tx.send(Ev::LinkClosed).await;
            });
        }
    }
    link.reader_stopped();
    for tx in link.circuits.drain() {
        let _ = tx.send(Ev::LinkClosed).await;
    }
}
