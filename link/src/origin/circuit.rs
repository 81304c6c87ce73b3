//! One client circuit: built hop by hop (telescoping), then carrying streams to its exit.
//!
//! Build: CREATE2 to the guard with ntor, then EXTEND2 sealed for the last hop so far, once
//! for the middle and once for the exit; each hop's reply completes its handshake and adds its
//! keys. No relay learns more than its neighbours: the guard sees the client, the exit sees
//! the destination. Streams: BEGIN goes to the exit with the target as given (hostnames
//! unresolved); CONNECTED or END answers; then a [`StreamMux`] pumps bytes. RESOLVE asks the exit
//! to resolve a name (Tor's SOCKS RESOLVE extension) on a stream id of its own; RESOLVED answers
//! and ends that stream. Any cell that fails
//! to open, any protocol violation, a DESTROY or a dead link closes the circuit, and every
//! waiting stream learns it so it can retry elsewhere.

use super::links::{EntryLink, EntryLinks};
use crate::streams::{PumpEvent, StreamMux};
use onionlab_proto::cell::{Cell, CellCommand, CircId, Create2, Created2, DestroyReason, HTYPE_ONIONLAB_NTOR};
use onionlab_proto::codec::Reader;
use onionlab_proto::consensus::ConsensusRelay;
use onionlab_proto::flow::STREAM_WINDOW_START;
use onionlab_proto::keys::{OnionPublicKey, fresh_x25519};
use onionlab_proto::layer::{ClientLayers, HopKeys};
use onionlab_proto::ntor::{ClientHandshake, NtorParams};
use onionlab_proto::path::Path;
use onionlab_proto::relay_msg::{EndReason, Extend2, RelayCell, RelayMsg, ResolvedAnswer, StreamId, Target};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

/// Inbox size of a circuit task: above what the windows allow in flight.
pub const CIRCUIT_INBOX: usize = 4096;

/// Why a circuit could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The link to the first hop failed.
    #[error("link to the first hop: {0}")]
    Link(#[from] crate::LinkError),
    /// A hop answered wrongly or not at all.
    #[error("circuit build failed at hop {hop}: {reason}")]
    Hop {
        /// 0 = guard.
        hop: usize,
        /// What happened.
        reason: String,
    },
    /// The build took longer than allowed.
    #[error("circuit build timed out")]
    Timeout,
}

/// Why a stream could not be opened on a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StreamError {
    /// The exit answered END.
    #[error("exit refused the stream: {0:?}")]
    End(EndReason),
    /// The circuit closed before CONNECTED.
    #[error("circuit closed")]
    CircuitClosed,
    /// No CONNECTED in time.
    #[error("no answer from the exit in time")]
    Timeout,
}

/// The application's end of a stream: a SOCKS client's socket, or an in-process pipe.
pub trait AppIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AppIo for T {}
/// A boxed [`AppIo`].
pub type AppStream = Box<dyn AppIo>;

/// What a circuit task reacts to.
pub enum Ev {
    /// A cell from the first hop's link (boxed: inboxes stay small while idle).
    Cell(Box<Cell>),
    /// The guard link died.
    LinkClosed,
    /// A stream pump reported.
    Pump(PumpEvent),
    /// Open a stream.
    Begin(Target, oneshot::Sender<Result<StreamId, StreamError>>),
    /// Ask the exit to resolve a name.
    Resolve(String, oneshot::Sender<Result<Vec<ResolvedAnswer>, StreamError>>),
    /// Start pumping a connected stream's socket.
    Attach(StreamId, AppStream),
    /// The application gave up on a stream before it was attached.
    Abandon(StreamId),
}

impl From<PumpEvent> for Ev {
    fn from(e: PumpEvent) -> Self {
        Ev::Pump(e)
    }
}

/// What the rest of the client holds of a circuit.
pub struct CircuitHandle {
    /// A process-unique number.
    pub id: u64,
    /// The relays, guard first.
    pub path: Path,
    /// When the build finished.
    pub built_at: Instant,
    /// How long the build took.
    pub build_time: Duration,
    first_used: Mutex<Option<Instant>>,
    streams: AtomicU64,
    tx: mpsc::Sender<Ev>,
    /// Dropped with the handle: tells the task no new streams will come.
    _held: watch::Sender<()>,
}

impl CircuitHandle {
    /// False once the circuit task has ended.
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Streams opened so far.
    pub fn streams_opened(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// When the first stream used it.
    pub fn first_used(&self) -> Option<Instant> {
        *self.first_used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a stream to `target`, waiting at most `wait` for CONNECTED.
    pub async fn begin(&self, target: Target, wait: Duration) -> Result<StreamId, StreamError> {
        self.streams.fetch_add(1, Ordering::Relaxed);
        self.ask(|tx| Ev::Begin(target, tx), wait).await
    }

    /// Asks the exit to resolve `name` (RESOLVE), waiting at most `wait` for RESOLVED. The
    /// answers may be errors ([`ResolvedAnswer::TransientError`]...); the circuit counts as used.
    pub async fn resolve(&self, name: String, wait: Duration) -> Result<Vec<ResolvedAnswer>, StreamError> {
        self.ask(|tx| Ev::Resolve(name, tx), wait).await
    }

    /// Marks the circuit used, sends the request `ev` makes and waits for its answer.
    async fn ask<T>(
        &self,
        ev: impl FnOnce(oneshot::Sender<Result<T, StreamError>>) -> Ev,
        wait: Duration,
    ) -> Result<T, StreamError> {
        self.first_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        let (tx, rx) = oneshot::channel();
        self.tx.send(ev(tx)).await.map_err(|_| StreamError::CircuitClosed)?;
        match tokio::time::timeout(wait, rx).await {
            Err(_) => Err(StreamError::Timeout),
            Ok(Err(_)) => Err(StreamError::CircuitClosed),
            Ok(Ok(r)) => r,
        }
    }

    /// Hands the application socket of a connected stream to the circuit.
    pub async fn attach(&self, id: StreamId, sock: impl AsyncRead + AsyncWrite + Send + Unpin + 'static) {
        let _ = self.tx.send(Ev::Attach(id, Box::new(sock))).await;
    }

    /// Tells the exit to drop a stream the application abandoned.
    pub async fn abandon(&self, id: StreamId) {
        let _ = self.tx.send(Ev::Abandon(id)).await;
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Circuit {
    link: EntryLink,
    circ_id: CircId,
    layers: ClientLayers,
    mux: StreamMux<Ev>,
    pending: HashMap<StreamId, oneshot::Sender<Result<StreamId, StreamError>>>,
    /// RESOLVEs waiting for RESOLVED.
    resolving: HashMap<StreamId, oneshot::Sender<Result<Vec<ResolvedAnswer>, StreamError>>>,
    /// Connected, waiting for the application socket; DATA that arrives meanwhile waits here.
    unattached: HashMap<StreamId, Vec<Vec<u8>>>,
}

/// Builds a circuit along `path` within `timeout` and starts its task.
pub async fn build(links: &EntryLinks, path: Path, timeout: Duration) -> Result<CircuitHandle, BuildError> {
    let started = Instant::now();
    let link = links.get(path.guard.info.or_addr, &path.guard.info.identity).await?;
    let (tx, mut rx) = mpsc::channel(CIRCUIT_INBOX);
    let circ_id = link.circuits.allocate(tx.clone()).ok_or(BuildError::Hop {
        hop: 0,
        reason: "no free circuit id".into(),
    })?;
    let mut circuit = Circuit {
        link,
        circ_id,
        layers: ClientLayers::new(),
        mux: StreamMux::new(tx.clone()),
        pending: HashMap::new(),
        resolving: HashMap::new(),
        unattached: HashMap::new(),
    };
    match tokio::time::timeout(timeout, circuit.telescope(&path, &mut rx)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            circuit.destroy().await;
            return Err(e);
        }
        Err(_) => {
            circuit.destroy().await;
            return Err(BuildError::Timeout);
        }
    }
    let (held, held_rx) = watch::channel(());
    let handle = CircuitHandle {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        path,
        built_at: Instant::now(),
        build_time: started.elapsed(),
        first_used: Mutex::new(None),
        streams: AtomicU64::new(0),
        tx,
        _held: held,
    };
    tokio::spawn(circuit.run(rx, held_rx));
    Ok(handle)
}

fn hop_err(hop: usize, reason: impl Into<String>) -> BuildError {
    BuildError::Hop {
        hop,
        reason: reason.into(),
    }
}

impl Circuit {
    async fn telescope(&mut self, path: &Path, rx: &mut mpsc::Receiver<Ev>) -> Result<(), BuildError> {
        for (hop, relay) in [&path.guard, &path.middle, &path.exit].into_iter().enumerate() {
            let (hs, msg) = start_handshake(relay).map_err(|e| hop_err(hop, e))?;
            let create = Create2 {
                htype: HTYPE_ONIONLAB_NTOR,
                hdata: msg,
            };
            if hop == 0 {
                let cell = create.to_cell(self.circ_id).map_err(|e| hop_err(hop, e.to_string()))?;
                self.link.sender.send(cell).await?;
            } else {
                let ext = RelayMsg::Extend2(Extend2 {
                    addr: relay.info.or_addr,
                    identity: relay.info.identity,
                    create,
                });
                self.send_to(hop - 1, RelayCell::new(0, ext))
                    .await
                    .map_err(|_| hop_err(hop, "link closed"))?;
            }
            let Some(ev) = rx.recv().await else {
                return Err(hop_err(hop, "inbox closed"));
            };
            let reply = match ev {
                Ev::Cell(cell) if hop == 0 && cell.command == CellCommand::Created2 => {
                    Created2::read(&mut Reader::new(&cell.payload)).map_err(|e| hop_err(hop, e.to_string()))?
                }
                Ev::Cell(cell) if hop > 0 && cell.command == CellCommand::Relay => {
                    let (from, body) = self
                        .layers
                        .open(cell.payload)
                        .map_err(|e| hop_err(hop, e.to_string()))?;
                    match RelayCell::decode(&body[..]).map(|c| c.msg) {
                        Ok(RelayMsg::Extended2(created)) if from == hop - 1 => created,
                        Ok(RelayMsg::Truncated(r)) => {
                            return Err(hop_err(hop, format!("extend refused: {:?}", DestroyReason::from_u8(r))));
                        }
                        other => return Err(hop_err(hop, format!("unexpected answer {other:?}"))),
                    }
                }
                Ev::Cell(cell) if cell.command == CellCommand::Destroy => {
                    return Err(hop_err(
                        hop,
                        format!("destroyed: {:?}", DestroyReason::from_u8(cell.payload[0])),
                    ));
                }
                Ev::LinkClosed => return Err(hop_err(hop, "guard link closed")),
                _ => return Err(hop_err(hop, "unexpected cell during build")),
            };
            let keys = hs.finish(&reply.hdata).map_err(|e| hop_err(hop, e.to_string()))?;
            self.layers.push(HopKeys::from_material(&keys));
        }
        Ok(())
    }

    async fn send_to(&mut self, hop: usize, cell: RelayCell) -> Result<(), ()> {
        let body = cell.encode().map_err(|_| ())?;
        let payload = self.layers.seal_for(hop, &body).ok_or(())?;
        self.link
            .sender
            .send(Cell {
                circ_id: self.circ_id,
                command: CellCommand::Relay,
                payload,
            })
            .await
            .map_err(|_| ())
    }

    async fn send_exit(&mut self, cell: RelayCell) -> Result<(), ()> {
        let exit = self.layers.len() - 1;
        self.send_to(exit, cell).await
    }

    async fn destroy(&mut self) {
        self.link
            .destroy(self.circ_id, DestroyReason::Finished, Duration::from_secs(5))
            .await;
    }

    /// Runs until the circuit fails, or until the pool has let go of it and its last stream ended.
    async fn run(mut self, mut rx: mpsc::Receiver<Ev>, mut held: watch::Receiver<()>) {
        let mut destroy = true;
        let mut in_pool = true;
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = held.changed(), if in_pool => {
                    in_pool = false;
                    None
                }
            };
            if let Some(ev) = ev
                && let Err(send_destroy) = self.handle(ev).await
            {
                destroy = send_destroy;
                break;
            }
            // A RESOLVE whose asker gave up no longer keeps the circuit.
            self.resolving.retain(|_, waiting| !waiting.is_closed());
            if !in_pool
                && self.mux.is_empty()
                && self.pending.is_empty()
                && self.resolving.is_empty()
                && self.unattached.is_empty()
            {
                break;
            }
        }
        if destroy {
            self.destroy().await;
        } else {
            self.link.circuits.remove(self.circ_id);
        }
        for (_, waiting) in self.pending.drain() {
            let _ = waiting.send(Err(StreamError::CircuitClosed));
        }
        for (_, waiting) in self.resolving.drain() {
            let _ = waiting.send(Err(StreamError::CircuitClosed));
        }
        self.mux.close_all();
    }

    /// Err(true): close and send DESTROY; Err(false): close, the other side is gone already.
    async fn handle(&mut self, ev: Ev) -> Result<(), bool> {
        match ev {
            Ev::Cell(cell) => match cell.command {
                CellCommand::Relay => {
                    let (hop, body) = self.layers.open(cell.payload).map_err(|_| true)?;
                    let msg = RelayCell::decode(&body[..]).map_err(|_| true)?;
                    if hop != self.layers.len() - 1 {
                        // Only the exit talks to us once the circuit is built.
                        return Err(true);
                    }
                    self.on_exit_msg(msg).await
                }
                CellCommand::Destroy => Err(false),
                _ => Err(true),
            },
            Ev::LinkClosed => Err(false),
            Ev::Pump(ev) => {
                let cells = self.mux.on_pump(ev).map_err(|_| true)?;
                for c in cells {
                    self.send_exit(c).await.map_err(|_| false)?;
                }
                Ok(())
            }
            Ev::Begin(target, reply) => {
                let Some(id) = self.free_stream_id() else {
                    let _ = reply.send(Err(StreamError::End(EndReason::ResourceLimit)));
                    return Ok(());
                };
                self.pending.insert(id, reply);
                self.send_exit(RelayCell::new(id, RelayMsg::Begin { target, flags: 0 }))
                    .await
                    .map_err(|_| false)
            }
            Ev::Resolve(name, reply) => {
                let Some(id) = self.free_stream_id() else {
                    let _ = reply.send(Err(StreamError::End(EndReason::ResourceLimit)));
                    return Ok(());
                };
                self.resolving.insert(id, reply);
                self.send_exit(RelayCell::new(id, RelayMsg::Resolve(name)))
                    .await
                    .map_err(|_| false)
            }
            Ev::Attach(id, sock) => {
                let Some(buffered) = self.unattached.remove(&id) else {
                    return Ok(());
                };
                self.mux.attach(id, sock);
                for data in buffered {
                    let cells = self.mux.on_data(id, data).map_err(|_| true)?;
                    for c in cells {
                        self.send_exit(c).await.map_err(|_| false)?;
                    }
                }
                Ok(())
            }
            Ev::Abandon(id) => {
                if self.pending.remove(&id).is_some() || self.unattached.remove(&id).is_some() {
                    self.send_exit(RelayCell::new(id, RelayMsg::End(EndReason::Misc)))
                        .await
                        .map_err(|_| false)?;
                }
                Ok(())
            }
        }
    }

    /// A stream id not in use by a pumped, connecting, resolving or unattached stream.
    fn free_stream_id(&mut self) -> Option<StreamId> {
        let (pending, resolving, unattached) = (&self.pending, &self.resolving, &self.unattached);
        self.mux
            .allocate_id(|id| pending.contains_key(&id) || resolving.contains_key(&id) || unattached.contains_key(&id))
    }

    async fn on_exit_msg(&mut self, cell: RelayCell) -> Result<(), bool> {
        let id = cell.stream_id;
        match cell.msg {
            RelayMsg::Connected(_) => {
                if let Some(reply) = self.pending.remove(&id) {
                    self.unattached.insert(id, Vec::new());
                    if reply.send(Ok(id)).is_err() {
                        // The application left while waiting.
                        self.unattached.remove(&id);
                        self.send_exit(RelayCell::new(id, RelayMsg::End(EndReason::Misc)))
                            .await
                            .map_err(|_| false)?;
                    }
                }
                Ok(())
            }
            RelayMsg::End(reason) => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(Err(StreamError::End(reason)));
                }
                if let Some(reply) = self.resolving.remove(&id) {
                    let _ = reply.send(Err(StreamError::End(reason)));
                }
                self.unattached.remove(&id);
                self.mux.on_end(id);
                Ok(())
            }
            RelayMsg::Data(data) => {
                if let Some(buf) = self.unattached.get_mut(&id) {
                    if buf.len() >= STREAM_WINDOW_START as usize {
                        return Err(true);
                    }
                    buf.push(data);
                    return Ok(());
                }
                let cells = self.mux.on_data(id, data).map_err(|_| true)?;
                for c in cells {
                    self.send_exit(c).await.map_err(|_| false)?;
                }
                Ok(())
            }
            RelayMsg::Resolved(answers) => {
                // An answer nobody waits for any more (the asker timed out) is dropped.
                if let Some(reply) = self.resolving.remove(&id) {
                    let _ = reply.send(Ok(answers));
                }
                Ok(())
            }
            RelayMsg::Sendme => self.mux.on_sendme(id).map_err(|_| true),
            RelayMsg::Drop => Ok(()),
            _ => Err(true),
        }
    }
}

fn start_handshake(relay: &ConsensusRelay) -> Result<(ClientHandshake, Vec<u8>), String> {
    let b = OnionPublicKey::from(relay.info.onion_key);
    ClientHandshake::start(NtorParams::ONIONLAB, &relay.info.identity, &b, fresh_x25519()).map_err(|e| e.to_string())
}
