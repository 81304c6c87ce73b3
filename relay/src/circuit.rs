//! One relay circuit: a task that owns this hop's keys and everything on the circuit.
//!
//! Cells from the client's side (`Prev`) are tried against this hop's key: recognized ones are
//! handled here (EXTEND2, BEGIN, DATA, ...), the rest lose one layer and go to the next hop.
//! Cells from the next hop get this hop's backward layer and go towards the client. A DESTROY
//! or a dead link on either side tears the circuit down on the other side too. Anything
//! malformed, unrecognized at the last hop, or against flow control closes this circuit.
//! So does its kill switch, pulled by the link reader when the inbox overflows or by the
//! queued-cell ceiling ([`crate::limits`]): then both sides get DESTROY(RESOURCELIMIT), even if
//! the circuit was stuck sending to a peer that stopped reading.

use crate::exit;
use crate::limits::AddressSlot;
use crate::links::{CIRCUIT_INBOX, CircuitRef, Link, link_to};
use crate::relay::Relay;
use crate::stats::RelayStats;
use onionlab_link::streams::{PumpEvent, StreamMux};
use onionlab_proto::cell::{CELL_LEN, Cell, CellCommand, CircId, Created2, DestroyReason};
use onionlab_proto::codec::Reader;
use onionlab_proto::layer::{Inbound, RelayHop};
use onionlab_proto::relay_msg::{EndReason, RelayCell, RelayMsg, ResolvedAnswer, StreamId};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

/// Most streams (open or connecting) on one circuit.
pub const MAX_STREAMS_PER_CIRCUIT: usize = 512;
/// Longest a DESTROY waits for room in a link's queue (the peer may have stopped reading).
pub const DESTROY_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Which side of the circuit a link is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Towards the client.
    Prev,
    /// Away from the client.
    Next,
}

/// A circuit's end on one link.
#[derive(Clone)]
pub struct LinkEnd {
    /// The link.
    pub link: Link,
    /// The circuit's id on it.
    pub circ_id: CircId,
}

impl LinkEnd {
    async fn send(&self, command: CellCommand, payload: [u8; onionlab_proto::cell::PAYLOAD_LEN]) -> bool {
        self.link
            .sender
            .send(Cell {
                circ_id: self.circ_id,
                command,
                payload,
            })
            .await
            .is_ok()
    }

    async fn destroy(&self, reason: DestroyReason) {
        self.link.destroy(self.circ_id, reason, DESTROY_SEND_TIMEOUT).await;
    }
}

/// A circuit's inbox and kill switch, made before its handshake so that the link reader can
/// reach it at once.
pub struct Inbox {
    tx: mpsc::Sender<CircEvent>,
    rx: mpsc::Receiver<CircEvent>,
    kill: Arc<Notify>,
}

impl Default for Inbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(CIRCUIT_INBOX);
        Inbox {
            tx,
            rx,
            kill: Arc::new(Notify::new()),
        }
    }
}

impl Inbox {
    /// How the reader of the link on `side` reaches this circuit.
    pub fn reference(&self, side: Side) -> CircuitRef {
        CircuitRef {
            tx: self.tx.clone(),
            side,
            kill: self.kill.clone(),
        }
    }
}

/// Keeps the relay's count of open exit streams in step with one circuit's.
#[derive(Default)]
struct StreamGauge {
    counted: u64,
}

impl StreamGauge {
    fn update(&mut self, stats: &RelayStats, now: usize) {
        let now = now as u64;
        if now > self.counted {
            stats.streams_open.fetch_add(now - self.counted, Ordering::Relaxed);
        } else {
            stats.streams_open.fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
    }
}

/// What a circuit task reacts to.
pub enum CircEvent {
    /// A cell from one side (boxed: a thousand idle circuits' inboxes stay small).
    Cell(Side, Box<Cell>),
    /// The link on one side died.
    LinkClosed(Side),
    /// One of our exit streams' pumps reported.
    Pump(PumpEvent),
    /// An exit connection attempt finished.
    Connected(StreamId, Result<TcpStream, EndReason>),
    /// A RESOLVE finished.
    Resolved(StreamId, Vec<ResolvedAnswer>),
    /// The link for EXTEND2 is open (or could not be opened).
    NextLink(Result<Link, DestroyReason>),
}

impl From<PumpEvent> for CircEvent {
    fn from(e: PumpEvent) -> Self {
        CircEvent::Pump(e)
    }
}

struct Circuit {
    relay: Arc<Relay>,
    prev: LinkEnd,
    next: Option<LinkEnd>,
    extending: Option<onionlab_proto::relay_msg::Extend2>,
    hop: RelayHop,
    mux: StreamMux<CircEvent>,
    connecting: HashSet<StreamId>,
    inbox_tx: mpsc::Sender<CircEvent>,
    kill: Arc<Notify>,
}

/// Why the circuit ends.
#[derive(Clone, Copy)]
enum Close {
    /// Tear down both sides with this reason.
    Destroy(DestroyReason),
    /// One side is already gone: destroy the other.
    From(Side, DestroyReason),
}

/// Runs a circuit until it is destroyed. `slot` counts it against its client's address.
pub async fn run(relay: Arc<Relay>, prev: LinkEnd, hop: RelayHop, inbox: Inbox, slot: AddressSlot) {
    let Inbox {
        tx: inbox_tx,
        rx: mut inbox,
        kill,
    } = inbox;
    let _tracked = relay
        .limits
        .track_circuit(inbox_tx.clone(), prev.link.sender.clone(), kill.clone());
    relay.stats.circuits_open.fetch_add(1, Ordering::Relaxed);
    let mut streams = StreamGauge::default();
    let mut c = Circuit {
        mux: StreamMux::new(inbox_tx.clone()),
        relay,
        prev,
        next: None,
        extending: None,
        hop,
        connecting: HashSet::new(),
        inbox_tx,
        kill: kill.clone(),
    };
    let killed = Close::Destroy(DestroyReason::ResourceLimit);
    let close = loop {
        let ev = tokio::select! {
            ev = inbox.recv() => ev,
            _ = kill.notified() => break killed,
        };
        let Some(ev) = ev else {
            break Close::Destroy(DestroyReason::Internal);
        };
        // The kill switch also interrupts a send stuck on a peer that stopped reading.
        let handled = tokio::select! {
            r = c.handle(ev) => r,
            _ = kill.notified() => Err(killed),
        };
        if let Err(close) = handled {
            break close;
        }
        streams.update(&c.relay.stats, c.mux.len() + c.connecting.len());
    };
    // Free the queued cells and the streams before waiting to send DESTROYs.
    drop(inbox);
    c.mux.close_all();
    streams.update(&c.relay.stats, 0);
    match close {
        Close::Destroy(reason) => {
            c.prev.destroy(reason).await;
            if let Some(n) = &c.next {
                n.destroy(reason).await;
            }
        }
        Close::From(Side::Prev, reason) => {
            c.prev.link.circuits.remove(c.prev.circ_id);
            if let Some(n) = &c.next {
                n.destroy(reason).await;
            }
        }
        Close::From(Side::Next, reason) => {
            if let Some(n) = &c.next {
                n.link.circuits.remove(n.circ_id);
            }
            c.prev.destroy(reason).await;
        }
    }
    c.relay.stats.circuits_open.fetch_sub(1, Ordering::Relaxed);
    drop(slot);
}

fn violation(relay: &Relay) -> Close {
    RelayStats::bump(&relay.stats.protocol_violations);
    Close::Destroy(DestroyReason::Protocol)
}

impl Circuit {
    async fn handle(&mut self, ev: CircEvent) -> Result<(), Close> {
        match ev {
            CircEvent::Cell(Side::Prev, cell) => match cell.command {
                CellCommand::Relay => {
                    RelayStats::bump(&self.relay.stats.cells_forward);
                    let mut payload = cell.payload;
                    match self.hop.inbound(&mut payload) {
                        Inbound::ForUs(body) => {
                            let msg = RelayCell::decode(&body[..]).map_err(|_| violation(&self.relay))?;
                            self.on_message(msg).await
                        }
                        Inbound::PassOn => match &self.next {
                            Some(next) if next.send(CellCommand::Relay, payload).await => Ok(()),
                            Some(_) => Err(Close::From(Side::Next, DestroyReason::ChannelClosed)),
                            // The last hop could not open it: tampered, replayed or reordered.
                            None => Err(violation(&self.relay)),
                        },
                    }
                }
                CellCommand::Destroy => Err(Close::From(Side::Prev, DestroyReason::from_u8(cell.payload[0]))),
                _ => Err(violation(&self.relay)),
            },
            CircEvent::Cell(Side::Next, cell) => match cell.command {
                CellCommand::Relay => {
                    let mut payload = cell.payload;
                    self.hop.outbound(&mut payload);
                    self.to_prev(payload).await
                }
                CellCommand::Created2 if self.extending.is_some() => {
                    self.extending = None;
                    let created = Created2::read(&mut Reader::new(&cell.payload))
                        .map_err(|_| Close::Destroy(DestroyReason::Protocol))?;
                    RelayStats::bump(&self.relay.stats.extends);
                    self.send_back(0, RelayMsg::Extended2(created)).await
                }
                CellCommand::Destroy => Err(Close::From(Side::Next, DestroyReason::Destroyed)),
                _ => Err(Close::Destroy(DestroyReason::Protocol)),
            },
            CircEvent::LinkClosed(side) => Err(Close::From(side, DestroyReason::ChannelClosed)),
            CircEvent::Pump(ev) => {
                if matches!(ev, PumpEvent::Data(..)) {
                    // Bytes from a destination enter the relay here (see crate::traffic).
                    self.relay.traffic.pass(CELL_LEN as u64, &self.relay.stats).await;
                }
                let cells = self.mux.on_pump(ev).map_err(|_| violation(&self.relay))?;
                self.send_all_back(cells).await
            }
            CircEvent::Connected(id, result) => {
                if !self.connecting.remove(&id) {
                    return Ok(()); // The client gave up (END) meanwhile.
                }
                match result {
                    Ok(tcp) => {
                        let peer = tcp.peer_addr().ok().map(|a| (a.ip(), 300));
                        self.mux.attach(id, tcp);
                        RelayStats::bump(&self.relay.stats.streams_connected);
                        self.send_back(id, RelayMsg::Connected(peer)).await
                    }
                    Err(reason) => self.send_back(id, RelayMsg::End(reason)).await,
                }
            }
            CircEvent::Resolved(id, answers) => {
                self.connecting.remove(&id);
                self.send_back(id, RelayMsg::Resolved(answers)).await
            }
            CircEvent::NextLink(Ok(link)) => {
                let Some(ext) = self.extending.clone() else {
                    return Ok(());
                };
                let r = CircuitRef {
                    tx: self.inbox_tx.clone(),
                    side: Side::Next,
                    kill: self.kill.clone(),
                };
                let Some(circ_id) = link.circuits.allocate(r) else {
                    return self.truncated(DestroyReason::ResourceLimit).await;
                };
                let next = LinkEnd { link, circ_id };
                let Ok(create) = ext.create.to_cell(circ_id) else {
                    return Err(violation(&self.relay));
                };
                if next.link.sender.send(create).await.is_err() {
                    next.link.circuits.remove(circ_id);
                    return self.truncated(DestroyReason::ChannelClosed).await;
                }
                self.next = Some(next);
                Ok(())
            }
            CircEvent::NextLink(Err(reason)) => self.truncated(reason).await,
        }
    }

    async fn truncated(&mut self, reason: DestroyReason) -> Result<(), Close> {
        self.extending = None;
        self.send_back(0, RelayMsg::Truncated(reason.to_u8())).await
    }

    async fn on_message(&mut self, cell: RelayCell) -> Result<(), Close> {
        let id = cell.stream_id;
        match cell.msg {
            RelayMsg::Extend2(ext) => {
                if self.next.is_some() || self.extending.is_some() || id != 0 {
                    return Err(violation(&self.relay));
                }
                if ext.identity == self.relay.identity {
                    return self.truncated(DestroyReason::Protocol).await;
                }
                self.extending = Some(ext.clone());
                let (relay, tx) = (self.relay.clone(), self.inbox_tx.clone());
                tokio::spawn(async move {
                    let result = link_to(&relay, ext.addr, &ext.identity).await.map_err(|e| {
                        tracing::debug!("extend failed: {e}");
                        DestroyReason::ConnectFailed
                    });
                    let _ = tx.send(CircEvent::NextLink(result)).await;
                });
                Ok(())
            }
            RelayMsg::Begin { target, .. } => {
                if id == 0
                    || self.connecting.contains(&id)
                    || self.connecting.len() + self.mux.len() >= MAX_STREAMS_PER_CIRCUIT
                {
                    return self.send_back(id, RelayMsg::End(EndReason::ResourceLimit)).await;
                }
                self.connecting.insert(id);
                let (relay, tx) = (self.relay.clone(), self.inbox_tx.clone());
                tokio::spawn(async move {
                    let result = exit::connect(&relay, &target).await;
                    let _ = tx.send(CircEvent::Connected(id, result)).await;
                });
                Ok(())
            }
            RelayMsg::Resolve(name) => {
                self.connecting.insert(id);
                let (relay, tx) = (self.relay.clone(), self.inbox_tx.clone());
                tokio::spawn(async move {
                    let answers = exit::resolve_answers(&relay, &name).await;
                    let _ = tx.send(CircEvent::Resolved(id, answers)).await;
                });
                Ok(())
            }
            RelayMsg::Data(data) => {
                let cells = self.mux.on_data(id, data).map_err(|_| violation(&self.relay))?;
                self.send_all_back(cells).await
            }
            RelayMsg::Sendme => self.mux.on_sendme(id).map_err(|_| violation(&self.relay)),
            RelayMsg::End(_) => {
                self.connecting.remove(&id);
                self.mux.on_end(id);
                Ok(())
            }
            RelayMsg::Truncate => {
                if let Some(n) = self.next.take() {
                    n.destroy(DestroyReason::Requested).await;
                }
                self.send_back(0, RelayMsg::Truncated(DestroyReason::Requested.to_u8()))
                    .await
            }
            RelayMsg::Drop => Ok(()),
            RelayMsg::Connected(_) | RelayMsg::Extended2(_) | RelayMsg::Truncated(_) | RelayMsg::Resolved(_) => {
                Err(violation(&self.relay))
            }
        }
    }

    async fn to_prev(&self, payload: [u8; onionlab_proto::cell::PAYLOAD_LEN]) -> Result<(), Close> {
        RelayStats::bump(&self.relay.stats.cells_backward);
        if self.prev.send(CellCommand::Relay, payload).await {
            Ok(())
        } else {
            Err(Close::From(Side::Prev, DestroyReason::ChannelClosed))
        }
    }

    async fn send_back(&mut self, stream_id: StreamId, msg: RelayMsg) -> Result<(), Close> {
        let body = RelayCell::new(stream_id, msg)
            .encode()
            .map_err(|_| Close::Destroy(DestroyReason::Internal))?;
        let payload = self.hop.originate(&body);
        self.to_prev(payload).await
    }

    async fn send_all_back(&mut self, cells: Vec<RelayCell>) -> Result<(), Close> {
        for c in cells {
            self.send_back(c.stream_id, c.msg).await?;
        }
        Ok(())
    }
}
