//! The edge of a circuit: application streams pumped into DATA cells and back.
//!
//! Both ends of a circuit do the same thing with an open stream: bytes read from a TCP socket
//! become DATA cells, DATA cells become bytes written to it, and SENDME windows keep either
//! side from sending more than the other has agreed to buffer. [`StreamMux`] owns that for
//! every stream of one circuit, for the client (streams from SOCKS) and the exit (streams to
//! destinations) alike.
//!
//! Each attached stream gets two small tasks. The *reader* takes one permit from the stream's
//! and the circuit's package windows (tokio semaphores mirroring the [`PackageWindow`]s) before
//! each read, so it can never package more than the windows allow; a SENDME from the other end
//! adds permits back. The *writer* writes what the circuit delivered and reports how many cells
//! it flushed; only then does the mux credit the deliver window and send a stream SENDME, so a
//! slow application slows the sender instead of filling memory. Reads from the socket have an
//! idle limit and writes a time limit.

use onionlab_proto::flow::{DeliverWindow, PackageWindow, STREAM_WINDOW_START, WindowError};
use onionlab_proto::relay_msg::{EndReason, MAX_DATA_LEN, RelayCell, RelayMsg, StreamId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio::time::timeout;

/// Longest a stream may stay silent in the application-to-circuit direction.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest one write to an application socket may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a stream's pump tasks report to the circuit task that owns the mux.
#[derive(Debug)]
pub enum PumpEvent {
    /// Bytes read from the application (at most one cell's worth).
    Data(StreamId, Vec<u8>),
    /// The application side closed (Done) or failed.
    Closed(StreamId, EndReason),
    /// The writer flushed this many delivered cells to the application.
    Written(StreamId, u32),
}

struct Edge {
    package: PackageWindow,
    deliver: DeliverWindow,
    permits: Arc<Semaphore>,
    to_socket: mpsc::Sender<Vec<u8>>,
    reader: AbortHandle,
}

/// Every open stream of one circuit, and the circuit-level windows.
pub struct StreamMux<E> {
    streams: HashMap<StreamId, Edge>,
    package: PackageWindow,
    deliver: DeliverWindow,
    circ_permits: Arc<Semaphore>,
    events: mpsc::Sender<E>,
    next_id: StreamId,
}

/// The other end broke the flow-control rules; the circuit must close.
pub type MuxError = WindowError;

impl<E: From<PumpEvent> + Send + 'static> StreamMux<E> {
    /// A mux whose pumps report on `events` (the owning circuit task's inbox).
    pub fn new(events: mpsc::Sender<E>) -> Self {
        let package = PackageWindow::circuit();
        StreamMux {
            streams: HashMap::new(),
            circ_permits: Arc::new(Semaphore::new(package.available() as usize)),
            package,
            deliver: DeliverWindow::circuit(),
            events,
            next_id: 1,
        }
    }

    /// Open streams.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True with no open stream.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// A stream id not in use (for the side that opens streams), avoiding `reserved` too.
    pub fn allocate_id(&mut self, reserved: impl Fn(StreamId) -> bool) -> Option<StreamId> {
        for _ in 0..u16::MAX {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.streams.contains_key(&id) && !reserved(id) {
                return Some(id);
            }
        }
        None
    }

    /// Starts pumping `sock` as stream `id`.
    pub fn attach<S: AsyncRead + AsyncWrite + Send + 'static>(&mut self, id: StreamId, sock: S) {
        let (r, w) = tokio::io::split(sock);
        let package = PackageWindow::stream();
        let permits = Arc::new(Semaphore::new(package.available() as usize));
        let (to_socket, rx) = mpsc::channel(STREAM_WINDOW_START as usize + 1);
        let reader = tokio::spawn(read_pump(
            id,
            BufReader::with_capacity(32 * 1024, r),
            permits.clone(),
            self.circ_permits.clone(),
            self.events.clone(),
        ));
        tokio::spawn(write_pump(id, w, rx, self.events.clone()));
        self.streams.insert(
            id,
            Edge {
                package,
                deliver: DeliverWindow::stream(),
                permits,
                to_socket,
                reader: reader.abort_handle(),
            },
        );
    }

    /// DATA arrived for stream `id`. Returns cells to send (a circuit SENDME when due).
    pub fn on_data(&mut self, id: StreamId, data: Vec<u8>) -> Result<Vec<RelayCell>, MuxError> {
        self.deliver.on_data()?;
        let mut out = Vec::new();
        if let Some(edge) = self.streams.get_mut(&id) {
            edge.deliver.on_data()?;
            // Cannot be full: the deliver window bounds what is queued.
            if edge.to_socket.try_send(data).is_err() {
                self.close(id);
                out.push(RelayCell::new(id, RelayMsg::End(EndReason::Internal)));
            }
        }
        // Handed to the stream (or dropped for a stream that just closed): delivered as far
        // as the circuit window is concerned; each stream's own window waits for its writer.
        for _ in 0..self.deliver.on_delivered(1) {
            out.push(RelayCell::new(0, RelayMsg::Sendme));
        }
        Ok(out)
    }

    /// A SENDME arrived (stream 0: the circuit's).
    pub fn on_sendme(&mut self, id: StreamId) -> Result<(), MuxError> {
        if id == 0 {
            let n = self.package.on_sendme()?;
            self.circ_permits.add_permits(n as usize);
        } else if let Some(edge) = self.streams.get_mut(&id) {
            let n = edge.package.on_sendme()?;
            edge.permits.add_permits(n as usize);
        }
        Ok(())
    }

    /// The other end closed stream `id`: flush what was delivered, then close the socket.
    pub fn on_end(&mut self, id: StreamId) {
        self.close(id);
    }

    /// A pump reported; returns cells to send.
    pub fn on_pump(&mut self, ev: PumpEvent) -> Result<Vec<RelayCell>, MuxError> {
        match ev {
            PumpEvent::Data(id, data) => {
                let Some(edge) = self.streams.get_mut(&id) else {
                    return Ok(Vec::new());
                };
                edge.package.take()?;
                self.package.take()?;
                Ok(vec![RelayCell::new(id, RelayMsg::Data(data))])
            }
            PumpEvent::Closed(id, reason) => {
                if self.streams.contains_key(&id) {
                    self.close(id);
                    return Ok(vec![RelayCell::new(id, RelayMsg::End(reason))]);
                }
                Ok(Vec::new())
            }
            PumpEvent::Written(id, cells) => {
                let Some(edge) = self.streams.get_mut(&id) else {
                    return Ok(Vec::new());
                };
                let due = edge.deliver.on_delivered(cells);
                Ok((0..due).map(|_| RelayCell::new(id, RelayMsg::Sendme)).collect())
            }
        }
    }

    fn close(&mut self, id: StreamId) {
        if let Some(edge) = self.streams.remove(&id) {
            // Dropping `to_socket` lets the writer flush and shut down; the reader stops now.
            edge.reader.abort();
        }
    }

    /// Closes every stream (the circuit is gone).
    pub fn close_all(&mut self) {
        let ids: Vec<_> = self.streams.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }
}

impl<E> Drop for StreamMux<E> {
    fn drop(&mut self) {
        for edge in self.streams.values() {
            edge.reader.abort();
        }
    }
}

async fn read_pump<R: AsyncRead + Unpin, E: From<PumpEvent>>(
    id: StreamId,
    mut r: R,
    stream_permits: Arc<Semaphore>,
    circ_permits: Arc<Semaphore>,
    events: mpsc::Sender<E>,
) {
    loop {
        let (Ok(sp), Ok(cp)) = (stream_permits.acquire().await, circ_permits.acquire().await) else {
            return;
        };
        sp.forget();
        cp.forget();
        let mut buf = vec![0u8; MAX_DATA_LEN];
        let ev = match timeout(STREAM_IDLE_TIMEOUT, r.read(&mut buf)).await {
            Ok(Ok(0)) => PumpEvent::Closed(id, EndReason::Done),
            Ok(Ok(n)) => {
                buf.truncate(n);
                PumpEvent::Data(id, buf)
            }
            Ok(Err(_)) => PumpEvent::Closed(id, EndReason::ConnReset),
            Err(_) => PumpEvent::Closed(id, EndReason::Timeout),
        };
        let last = matches!(ev, PumpEvent::Closed(..));
        if events.send(ev.into()).await.is_err() || last {
            return;
        }
    }
}

async fn write_pump<W: AsyncWrite + Unpin, E: From<PumpEvent>>(
    id: StreamId,
    mut w: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<E>,
) {
    while let Some(first) = rx.recv().await {
        let mut buf = first;
        let mut cells = 1u32;
        while cells < 64 {
            match rx.try_recv() {
                Ok(more) => {
                    buf.extend_from_slice(&more);
                    cells += 1;
                }
                Err(_) => break,
            }
        }
        let ok = matches!(timeout(WRITE_TIMEOUT, w.write_all(&buf)).await, Ok(Ok(())));
        let ev = if ok {
            PumpEvent::Written(id, cells)
        } else {
            PumpEvent::Closed(id, EndReason::ConnReset)
        };
        if events.send(ev.into()).await.is_err() || !ok {
            return;
        }
    }
    let _ = timeout(WRITE_TIMEOUT, w.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Two muxes joined back to back, as the client and exit ends of one circuit; the receiving
    /// application reads in `read_chunk` pieces, pausing `pause` between reads.
    async fn shuttle(len: u32, read_chunk: usize, pause: Duration) -> Vec<u8> {
        let (tx_a, mut rx_a) = mpsc::channel::<PumpEvent>(64);
        let (tx_b, mut rx_b) = mpsc::channel::<PumpEvent>(64);
        let mut a = StreamMux::new(tx_a);
        let mut b = StreamMux::new(tx_b);
        let (app_a, mut user_a) = duplex(1 << 16);
        let (app_b, mut user_b) = duplex(1 << 16);
        a.attach(1, app_a);
        b.attach(1, app_b);
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let send = payload.clone();
        let writer = tokio::spawn(async move {
            user_a.write_all(&send).await.unwrap();
            user_a.shutdown().await.unwrap();
            user_a
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; read_chunk];
            loop {
                let n = user_b.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
                tokio::time::sleep(pause).await;
            }
        });
        let mut ended = false;
        // Shuttle cells between the two muxes until the stream ends (bounded).
        for _ in 0..200_000 {
            tokio::select! {
                Some(ev) = rx_a.recv() => for cell in a.on_pump(ev).unwrap() {
                    match cell.msg {
                        RelayMsg::Data(d) => for c in b.on_data(cell.stream_id, d).unwrap() {
                            assert_eq!(c.msg, RelayMsg::Sendme, "the receiver must not give up on the stream");
                            a.on_sendme(c.stream_id).unwrap();
                        },
                        RelayMsg::End(_) => { b.on_end(cell.stream_id); ended = true; }
                        other => panic!("unexpected {other:?}"),
                    }
                },
                Some(ev) = rx_b.recv() => for cell in b.on_pump(ev).unwrap() {
                    match cell.msg {
                        RelayMsg::Sendme => a.on_sendme(cell.stream_id).unwrap(),
                        other => panic!("unexpected {other:?}"),
                    }
                },
                else => break,
            }
            if ended && b.is_empty() {
                break;
            }
        }
        writer.await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .unwrap()
            .unwrap();
        assert!(
            got == payload,
            "received {} of {} bytes, or different bytes",
            got.len(),
            payload.len()
        );
        got
    }

    #[tokio::test]
    async fn bytes_cross_with_windows_and_sendmes() {
        shuttle(2_000_000, 1 << 16, Duration::ZERO).await;
    }

    /// A slow application must slow the sender, never overflow the stream's queue.
    #[tokio::test]
    async fn slow_reader_holds_back_the_sender() {
        shuttle(1_000_000, 4096, Duration::from_micros(300)).await;
    }

    #[tokio::test]
    async fn overrunning_the_window_is_an_error() {
        let (tx, _rx) = mpsc::channel::<PumpEvent>(8);
        let mut m = StreamMux::new(tx);
        let (app, _user) = duplex(64);
        m.attach(3, app);
        let mut res = Ok(Vec::new());
        for _ in 0..=STREAM_WINDOW_START {
            res = m.on_data(3, vec![1]);
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res.err(), Some(WindowError::Overrun));
        assert_eq!(m.on_sendme(0).err(), Some(WindowError::UnexpectedSendme));
    }
}
