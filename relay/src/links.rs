//! Links: accepting them, opening them for EXTEND2, and handing their cells to circuits.
//!
//! Each link has a reader task that owns the table of circuits on that link. CREATE2 on an
//! inbound link goes to [`crate::create`]; every other circuit cell goes to its circuit's
//! inbox. The inbox is bounded well above what SENDME windows allow in flight, so only a peer
//! that ignores flow control fills it, and that closes its circuit (DESTROY with
//! RESOURCELIMIT), not the link or the relay. When a link dies, every circuit on it hears so
//! and tears itself down in the other direction. Every cell read passes the traffic meter
//! first ([`crate::traffic`]): under a rate limit the reader waits, and TCP pushes back on the
//! peer. Readers stop when the relay shuts down, which closes every circuit.

use crate::circuit::{CircEvent, Side};
use crate::create;
use crate::relay::Relay;
use crate::stats::RelayStats;
use onionlab_link::channel::{CellReader, ChannelAcceptor, LinkError};
use onionlab_link::registry::LinkHandle;
use onionlab_proto::cell::{CELL_LEN, CellCommand};
use onionlab_proto::keys::IdentityBytes;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// Capacity of a circuit's inbox: above the 1000-cell windows of both directions plus SENDMEs.
pub const CIRCUIT_INBOX: usize = 4096;

/// How the link reader reaches a circuit.
#[derive(Clone)]
pub struct CircuitRef {
    /// The circuit's inbox.
    pub tx: mpsc::Sender<CircEvent>,
    /// Which side of the circuit this link is.
    pub side: Side,
    /// Wakes the circuit to die at once (its inbox overflowed, or queued cells are over the
    /// ceiling).
    pub kill: Arc<Notify>,
}

/// One link as the relay's tasks see it.
pub type Link = LinkHandle<CircuitRef>;

/// Links this relay opened, by peer identity.
pub type LinkTable = onionlab_link::registry::LinkTable<CircuitRef>;

/// Returns an open link to `identity` at `addr`, opening one if needed.
pub async fn link_to(relay: &Arc<Relay>, addr: SocketAddr, identity: &IdentityBytes) -> Result<Link, LinkError> {
    let r = relay.clone();
    relay
        .outbound
        .get(addr, identity, move |reader, link| {
            tokio::spawn(read_loop(reader, link, r, false));
        })
        .await
}

/// Accepts links until the listener fails.
pub async fn accept_loop(listener: TcpListener, acceptor: ChannelAcceptor, relay: Arc<Relay>) {
    onionlab_link::accept::accept_each(listener, "OR port", |tcp, _| {
        let acceptor = acceptor.clone();
        let relay = relay.clone();
        async move {
            match acceptor.accept(tcp).await {
                Ok(channel) => {
                    let (reader, sender) = channel.split();
                    read_loop(reader, Link::new(sender), relay, true).await;
                }
                Err(e) => tracing::debug!("inbound link handshake failed: {e}"),
            }
        }
    })
    .await
}

/// Boxed so that the future's type is nameable: circuits open links, and links start circuits.
fn read_loop(
    reader: CellReader,
    link: Link,
    relay: Arc<Relay>,
    inbound: bool,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(read_cells(reader, link, relay, inbound))
}

async fn read_cells(mut reader: CellReader, link: Link, relay: Arc<Relay>, inbound: bool) {
    let _tracked = relay.limits.track_link(link.sender.clone());
    let peer = reader.peer_addr.ip().to_canonical();
    let mut stop = relay.stop_signal();
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            _ = stop.wait_for(|stopping| *stopping) => break,
        };
        let cell = match next {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("link closed: {e}");
                break;
            }
        };
        // Every cell read is metered, and the reader waits here while the rate limit says so.
        relay.traffic.pass(CELL_LEN as u64, &relay.stats).await;
        match cell.command {
            CellCommand::Create2 if inbound => create::on_create2(cell, &link, &relay, peer).await,
            CellCommand::Relay | CellCommand::Destroy | CellCommand::Created2 => {
                let target = link.circuits.get(cell.circ_id);
                let Some(target) = target else { continue };
                let circ_id = cell.circ_id;
                if let Err(mpsc::error::TrySendError::Full(_)) =
                    target.tx.try_send(CircEvent::Cell(target.side, Box::new(cell)))
                {
                    // Flooded beyond any window: this circuit goes (DESTROY both ways), nothing else.
                    RelayStats::bump(&relay.stats.protocol_violations);
                    link.circuits.remove(circ_id);
                    target.kill.notify_one();
                }
            }
            _ => {
                tracing::debug!(command = ?cell.command, "unexpected cell on link; closing it");
                break;
            }
        }
    }
    link.reader_stopped();
    for c in link.circuits.drain() {
        let _ = c.tx.send(CircEvent::LinkClosed(c.side)).await;
    }
}
