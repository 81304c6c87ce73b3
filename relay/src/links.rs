//! Links: accepting them, opening them for EXTEND2, and handing their cells to circuits.
//!
//! Each link has a reader task that owns the table of circuits on that link. CREATE2 on an
//! inbound link runs the ntor handshake and starts a circuit task; every other circuit cell
//! goes to its circuit's inbox. The inbox is bounded well above what SENDME windows allow in
//! flight, so only a peer that ignores flow control fills it, and that closes its circuit
//! (DESTROY with RESOURCELIMIT), not the link or the relay. When a link dies, every circuit
//! on it hears so and tears itself down in the other direction.

use crate::circuit::{self, CircEvent, LinkEnd, Side};
use crate::relay::Relay;
use crate::stats::RelayStats;
use onionlab_link::channel::{CellReader, ChannelAcceptor, LinkError};
use onionlab_link::registry::LinkHandle;
use onionlab_proto::cell::{Cell, CellCommand, Create2, Created2, DestroyReason, HTYPE_ONIONLAB_NTOR};
use onionlab_proto::codec::Reader;
use onionlab_proto::keys::{IdentityBytes, fresh_x25519};
use onionlab_proto::layer::{HopKeys, RelayHop};
use onionlab_proto::ntor::{NtorParams, server_respond};
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
    /// Wakes the circuit to die at once (used when its inbox overflowed).
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
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let relay = relay.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(channel) => {
                    let (reader, sender) = channel.split();
                    read_loop(reader, Link::new(sender), relay, true).await;
                }
                Err(e) => tracing::debug!("inbound link handshake failed: {e}"),
            }
        });
    }
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
    loop {
        let cell = match reader.next().await {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("link closed: {e}");
                break;
            }
        };
        match cell.command {
            CellCommand::Create2 if inbound => on_create2(cell, &link, &relay).await,
            CellCommand::Relay | CellCommand::Destroy | CellCommand::Created2 => {
                let target = link.circuits.get(cell.circ_id);
                let Some(target) = target else { continue };
                let circ_id = cell.circ_id;
                if target
                    .tx
                    .try_send(CircEvent::Cell(target.side, Box::new(cell)))
                    .is_err()
                {
                    // Flooded beyond any window: this circuit goes, nothing else.
                    RelayStats::bump(&relay.stats.protocol_violations);
                    link.circuits.remove(circ_id);
                    target.kill.notify_one();
                    let _ = link.sender.send(DestroyReason::ResourceLimit.to_cell(circ_id)).await;
                }
            }
            _ => {
                tracing::debug!(command = ?cell.command, "unexpected cell on link; closing it");
                break;
            }
        }
    }
    for c in link.circuits.drain() {
        let _ = c.tx.send(CircEvent::LinkClosed(c.side)).await;
    }
}

async fn on_create2(cell: Cell, link: &Link, relay: &Arc<Relay>) {
    let circ_id = cell.circ_id;
    let exists = link.circuits.contains(circ_id);
    let handshake = Create2::read(&mut Reader::new(&cell.payload))
        .ok()
        .filter(|c| c.htype == HTYPE_ONIONLAB_NTOR && !exists && circ_id != 0)
        .and_then(|c| {
            server_respond(
                NtorParams::ONIONLAB,
                &relay.identity,
                &relay.onion_secret,
                &c.hdata,
                fresh_x25519(),
            )
            .ok()
        });
    let Some((reply, keys)) = handshake else {
        RelayStats::bump(&relay.stats.handshake_failures);
        let _ = link.sender.send(DestroyReason::Protocol.to_cell(circ_id)).await;
        return;
    };
    let Ok(created) = (Created2 { hdata: reply }).to_cell(circ_id) else {
        return;
    };
    let (tx, rx) = mpsc::channel(CIRCUIT_INBOX);
    let kill = Arc::new(Notify::new());
    link.circuits.insert(
        circ_id,
        CircuitRef {
            tx: tx.clone(),
            side: Side::Prev,
            kill: kill.clone(),
        },
    );
    if link.sender.send(created).await.is_err() {
        link.circuits.remove(circ_id);
        return;
    }
    RelayStats::bump(&relay.stats.circuits_created);
    let prev = LinkEnd {
        link: link.clone(),
        circ_id,
    };
    tokio::spawn(circuit::run(
        relay.clone(),
        prev,
        RelayHop::new(HopKeys::from_material(&keys)),
        tx,
        rx,
        kill,
    ));
}
