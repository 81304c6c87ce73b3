//! A link: TLS 1.3 over TCP carrying fixed 514-byte cells, bound to a relay identity.
//!
//! The responder (a relay) proves its Ed25519 identity in a LINK_AUTH cell, the first cell on
//! the link; the initiator checks it against the identity it expected (from the consensus or
//! an EXTEND2) and gives up otherwise. Initiators stay anonymous.
//!
//! Reads are bounded in size (one cell at a time) and in time: the TLS handshake and the
//! LINK_AUTH cell within [`HANDSHAKE_TIMEOUT`], and every later cell within [`IDLE_TIMEOUT`];
//! writers send a PADDING keepalive after [`KEEPALIVE`] of silence, so only a dead or
//! misbehaving peer hits the limit. Writes go through one task per link that batches queued
//! cells into few TLS records; a write that makes no progress within [`WRITE_TIMEOUT`] (the
//! peer stopped reading) ends the link, so its queue of cells is freed.

use onionlab_proto::cell::{CELL_LEN, Cell, CellCommand};
use onionlab_proto::codec::DecodeError;
use onionlab_proto::keys::{IdentityBytes, KeyError, LINK_EXPORTER_LABEL, SigningKey, check_link_auth, link_auth_cell};
use rustls::{ClientConfig, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Limit for TCP connect, TLS handshake and LINK_AUTH together.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence accepted from a peer.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Silence after which a writer sends PADDING.
pub const KEEPALIVE: Duration = Duration::from_secs(60);
/// Cells queued towards one link before senders wait.
pub const SEND_QUEUE: usize = 1024;
/// Longest one write to the peer may make no progress: a peer that stops reading loses the link.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a link failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A socket error.
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    /// TLS failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A step took too long.
    #[error("link timed out during {0}")]
    Timeout(&'static str),
    /// The peer could not prove the expected identity.
    #[error("link authentication: {0}")]
    Auth(#[from] KeyError),
    /// The peer sent something that is not a cell.
    #[error("link protocol: {0}")]
    Protocol(#[from] DecodeError),
    /// The link is closed.
    #[error("link closed")]
    Closed,
}

type Tls = Box<dyn TlsIo>;
trait TlsIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> TlsIo for T {}

/// An established link, before it is split into its reading and writing halves.
pub struct Channel {
    /// The identity the peer proved (None when we are the responder: initiators are anonymous).
    pub peer_identity: Option<IdentityBytes>,
    /// The peer's socket address.
    pub peer_addr: SocketAddr,
    io: Tls,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

/// Accepts links as a relay with identity `key`.
#[derive(Clone)]
pub struct ChannelAcceptor {
    acceptor: TlsAcceptor,
    key: Arc<SigningKey>,
}

impl ChannelAcceptor {
    /// An acceptor proving `key` on every link.
    pub fn new(config: Arc<ServerConfig>, key: Arc<SigningKey>) -> Self {
        ChannelAcceptor {
            acceptor: TlsAcceptor::from(config),
            key,
        }
    }

    /// Runs the responder's side of the handshake on an accepted socket.
    pub async fn accept(&self, tcp: TcpStream) -> Result<Channel, LinkError> {
        let peer_addr = tcp.peer_addr()?;
        tcp.set_nodelay(true)?;
        let fut = async {
            let mut tls = self.acceptor.accept(tcp).await?;
            let exporter: [u8; 32] = tls
                .get_ref()
                .1
                .export_keying_material([0u8; 32], LINK_EXPORTER_LABEL, None)?;
            tls.write_all(&link_auth_cell(&self.key, &exporter).encode()).await?;
            tls.flush().await?;
            Ok::<_, LinkError>(tls)
        };
        let tls = timeout(HANDSHAKE_TIMEOUT, fut)
            .await
            .map_err(|_| LinkError::Timeout("link handshake"))??;
        Ok(Channel {
            peer_identity: None,
            peer_addr,
            io: Box::new(tls),
        })
    }
}

/// Opens links as an initiator.
#[derive(Clone)]
pub struct ChannelConnector {
    connector: TlsConnector,
    source: Option<IpAddr>,
}

impl ChannelConnector {
    /// A connector using `config` (see [`crate::tls::client_config`]).
    pub fn new(config: Arc<ClientConfig>) -> Self {
        ChannelConnector {
            connector: TlsConnector::from(config),
            source: None,
        }
    }

    /// Connects from `source` (when given) to peers of its address family; other peers and
    /// `None` leave the choice to the OS.
    pub fn with_source(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    async fn tcp_connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let Some(source) = self.source.filter(|s| s.is_ipv4() == addr.is_ipv4()) else {
            return TcpStream::connect(addr).await;
        };
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(addr).await
    }

    /// Connects to `addr` and insists that it proves `expected`.
    pub async fn connect(&self, addr: SocketAddr, expected: &IdentityBytes) -> Result<Channel, LinkError> {
        let fut = async {
            let tcp = self.tcp_connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut tls = self.connector.connect(crate::tls::server_name(), tcp).await?;
            let exporter: [u8; 32] = tls
                .get_ref()
                .1
                .export_keying_material([0u8; 32], LINK_EXPORTER_LABEL, None)?;
            let mut buf = [0u8; CELL_LEN];
            tls.read_exact(&mut buf).await?;
            let cell = Cell::decode(&buf)?;
            let id = check_link_auth(&cell, &exporter, Some(expected))?;
            Ok::<_, LinkError>((tls, id))
        };
        let (tls, id) = timeout(HANDSHAKE_TIMEOUT, fut)
            .await
            .map_err(|_| LinkError::Timeout("link handshake"))??;
        Ok(Channel {
            peer_identity: Some(id),
            peer_addr: addr,
            io: Box::new(tls),
        })
    }
}

impl Channel {
    /// Splits the link: a reader for this task, and a cloneable sender backed by a writer task.
    pub fn split(self) -> (CellReader, ChannelSender) {
        let (r, w) = tokio::io::split(self.io);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        tokio::spawn(write_loop(BufWriter::with_capacity(64 * 1024, w), rx));
        (
            CellReader {
                inner: BufReader::with_capacity(64 * 1024, r),
                peer_addr: self.peer_addr,
            },
            ChannelSender { tx },
        )
    }
}

/// The reading half of a link.
pub struct CellReader {
    inner: BufReader<ReadHalf<Tls>>,
    /// The peer's address.
    pub peer_addr: SocketAddr,
}

impl CellReader {
    /// The next cell other than PADDING; `Ok(None)` when the peer closed the link cleanly.
    pub async fn next(&mut self) -> Result<Option<Cell>, LinkError> {
        loop {
            let mut buf = [0u8; CELL_LEN];
            let read = timeout(IDLE_TIMEOUT, self.inner.read_exact(&mut buf))
                .await
                .map_err(|_| LinkError::Timeout("idle link"))?;
            match read {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            let cell = Cell::decode(&buf)?;
            if cell.command != CellCommand::Padding {
                return Ok(Some(cell));
            }
        }
    }
}

/// Sends cells on a link; cheap to clone. Dropping every clone closes the link.
#[derive(Clone, Debug)]
pub struct ChannelSender {
    tx: mpsc::Sender<Cell>,
}

impl ChannelSender {
    /// Queues a cell, waiting while the link's queue is full.
    pub async fn send(&self, cell: Cell) -> Result<(), LinkError> {
        self.tx.send(cell).await.map_err(|_| LinkError::Closed)
    }

    /// True once the writer has stopped (the link is dead).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Cells queued and not yet taken by the writer (at most [`SEND_QUEUE`]).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// One write that must make progress within [`WRITE_TIMEOUT`].
async fn within_limit(write: impl Future<Output = std::io::Result<()>>) -> std::io::Result<()> {
    timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "peer stopped reading"))?
}

async fn write_loop(mut w: BufWriter<WriteHalf<Tls>>, mut rx: mpsc::Receiver<Cell>) {
    let result: Result<(), std::io::Error> = async {
        loop {
            let cell = match timeout(KEEPALIVE, rx.recv()).await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(_) => Cell::with_body(0, CellCommand::Padding, &[]).map_err(std::io::Error::other)?,
            };
            within_limit(w.write_all(&cell.encode())).await?;
            // Batch whatever else is queued into the same flush.
            while let Ok(c) = rx.try_recv() {
                within_limit(w.write_all(&c.encode())).await?;
            }
            within_limit(w.flush()).await?;
        }
        within_limit(w.shutdown()).await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!("link writer stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onionlab_proto::keys::fresh_signing_key;
    use tokio::net::TcpListener;

    async fn relay() -> (
        SocketAddr,
        IdentityBytes,
        tokio::task::JoinHandle<Result<Channel, LinkError>>,
    ) {
        let key = Arc::new(fresh_signing_key());
        let id = key.verifying_key().to_bytes();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = ChannelAcceptor::new(crate::tls::server_config().unwrap(), key);
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            acceptor.accept(tcp).await
        });
        (addr, id, task)
    }

    #[tokio::test]
    async fn cells_flow_both_ways_on_a_bound_link() {
        let (addr, id, task) = relay().await;
        let connector = ChannelConnector::new(crate::tls::client_config().unwrap());
        let ch = connector.connect(addr, &id).await.unwrap();
        assert_eq!(ch.peer_identity, Some(id));
        let server = task.await.unwrap().unwrap();
        let (mut cr, cs) = ch.split();
        let (mut sr, ss) = server.split();
        for i in 0..100u32 {
            cs.send(Cell::with_body(i, CellCommand::Relay, &i.to_be_bytes()).unwrap())
                .await
                .unwrap();
        }
        for i in 0..100u32 {
            let c = sr.next().await.unwrap().unwrap();
            assert_eq!(c.circ_id, i);
            ss.send(c).await.unwrap();
        }
        for i in 0..100u32 {
            assert_eq!(cr.next().await.unwrap().unwrap().circ_id, i);
        }
        drop(cs);
        assert!(
            sr.next().await.unwrap().is_none(),
            "clean close after the last sender is dropped"
        );
    }

    #[tokio::test]
    async fn wrong_identity_is_refused() {
        let (addr, _id, _task) = relay().await;
        let connector = ChannelConnector::new(crate::tls::client_config().unwrap());
        let other = fresh_signing_key().verifying_key().to_bytes();
        let err = connector.connect(addr, &other).await.unwrap_err();
        assert!(matches!(err, LinkError::Auth(KeyError::WrongIdentity { .. })), "{err}");
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_loses_the_link() {
        let (addr, id, task) = relay().await;
        let source: IpAddr = "127.0.0.3".parse().unwrap();
        let connector = ChannelConnector::new(crate::tls::client_config().unwrap()).with_source(Some(source));
        let ch = connector.connect(addr, &id).await.unwrap();
        let server = task.await.unwrap().unwrap();
        assert_eq!(
            server.peer_addr.ip(),
            source,
            "the initiator connected from its source address"
        );
        let (_never_read, _client_sender) = ch.split();
        let (_server_reader, sender) = server.split();
        assert_eq!(sender.queued(), 0);
        tokio::time::pause();
        let cell = Cell::with_body(1, CellCommand::Relay, &[1; 100]).unwrap();
        // Fill the socket buffers and the queue; once nothing moves for WRITE_TIMEOUT the writer gives up.
        while sender.send(cell.clone()).await.is_ok() {}
        assert!(sender.is_closed());
    }

    #[tokio::test]
    async fn silent_peer_times_out_the_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        tokio::time::pause();
        let connector = ChannelConnector::new(crate::tls::client_config().unwrap());
        let err = connector.connect(addr, &[0u8; 32]).await.unwrap_err();
        assert!(matches!(err, LinkError::Timeout(_)), "{err}");
    }
}
