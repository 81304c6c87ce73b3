//! The thin tokio driver of one node's session: its listener (which tells an HTTP `GET` from a
//! Gnutella handshake by the first bytes), the three-block handshake both ways, one dialer per
//! planned link (retrying while the peer is away), and the connection loop (bounded queue out,
//! incremental decoder in, idle timeout, keepalive Pings, Bye). It owns sockets and timers;
//! every protocol decision is [`super::ultrapeer`]'s or [`super::leaf`]'s.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use onionlab_crawler::gnutella::{
    Bye, EncodeError, Handshake, HandshakeDecoder, HandshakeError, Message, MessageDecoder, MessageError,
    MessageLimits, Payload, StartLine,
};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::files::{Served, serve_http};
use super::leaf::{self, Handled};
use super::node::{Counters, Node, Outgoing};
use super::routing::{ConnId, Origin};
use super::topology::Role;
use super::ultrapeer::{self, Admission};

/// Bytes read per socket read.
const READ_CHUNK: usize = 16 << 10;

/// Why a connection ended early.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The peer's header block broke the grammar or a limit.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer's descriptor stream broke the framing or a limit.
    #[error("descriptor: {0}")]
    Message(#[from] MessageError),
    /// One of our blocks could not be encoded (a bad `user_agent`).
    #[error("encoding our handshake: {0}")]
    Encode(#[from] EncodeError),
    /// The peer sent a block other than the one the handshake expects.
    #[error("unexpected handshake block")]
    Unexpected,
    /// The peer answered with this status instead of 200.
    #[error("refused with {0}")]
    Refused(u16),
    /// The peer closed inside the handshake.
    #[error("closed during the handshake")]
    Closed,
    /// A read, write or the whole handshake took too long.
    #[error("timed out")]
    Timeout,
}

impl ConnError {
    /// Whether the peer misbehaved (as opposed to going away or being busy).
    fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ConnError::Handshake(_) | ConnError::Message(_) | ConnError::Unexpected | ConnError::Timeout
        )
    }
}

/// Binds a node's listener (its own address, the overlay port).
pub(crate) async fn bind(node: &Node) -> io::Result<TcpListener> {
    TcpListener::bind(node.info.addr).await
}

/// One session: accepts on `listener` and dials every planned link, until aborted. Dropping
/// the task drops both task sets, which aborts every connection of the session.
pub(crate) async fn run_session(node: Arc<Node>, listener: TcpListener) {
    let mut dialers = JoinSet::new();
    for &target in &node.info.dials {
        dialers.spawn(dial_loop(node.clone(), target));
    }
    let mut inbound = JoinSet::new();
    loop {
        while inbound.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, remote)) => {
                inbound.spawn(serve_inbound(node.clone(), stream, remote));
            }
            Err(e) => {
                tracing::debug!(node = node.info.index, "accept: {e}");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What an inbound connection turned out to be.
enum Inbound {
    /// An HTTP request; these bytes were read already.
    Http(Vec<u8>),
    /// A Gnutella peer, admitted; its listen address, role and the bytes after its last block.
    Peer(SocketAddr, Role, Vec<u8>),
    /// Handled in the handshake (crawler answered, 503 sent).
    Done,
}

async fn serve_inbound(node: Arc<Node>, mut stream: TcpStream, remote: SocketAddr) {
    let limits = &node.config.limits;
    let outcome = match timeout(limits.handshake(), accept_handshake(&node, &mut stream, remote)).await {
        Ok(r) => r,
        Err(_) => Err(ConnError::Timeout),
    };
    match outcome {
        Ok(Inbound::Http(prefix)) => {
            let served = serve_http(
                stream,
                prefix,
                &node.info.library,
                &node.config.user_agent,
                limits.handshake(),
                limits.write(),
            )
            .await;
            let c = &node.counters;
            match served {
                Ok(Served::Upload) => Counters::bump(&c.uploads_served),
                Ok(Served::Refused) => Counters::bump(&c.uploads_refused),
                Err(e) => {
                    tracing::debug!(node = node.info.index, "http: {e}");
                    Counters::bump(&c.uploads_refused);
                }
            }
        }
        Ok(Inbound::Peer(addr, role, leftover)) => run_connection(node, stream, addr, role, leftover).await,
        Ok(Inbound::Done) => {}
        Err(e) => {
            if e.is_bad_input() {
                Counters::bump(&node.counters.bad_input);
            }
            tracing::debug!(node = node.info.index, "inbound handshake: {e}");
        }
    }
}

/// Reads one header block.
async fn read_block(stream: &mut TcpStream, decoder: &mut HandshakeDecoder) -> Result<Handshake, ConnError> {
    let mut buf = [0u8; 2048];
    loop {
        if let Some(block) = decoder.next_handshake()? {
            return Ok(block.handshake);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        decoder.feed(&buf[..n]);
    }
}

/// Our 200 OK (second block, as acceptor) or connect block (first, as initiator).
fn our_block(node: &Node, mut h: Handshake, remote: Option<SocketAddr>) -> Handshake {
    h.headers.set("User-Agent", &node.config.user_agent);
    let up = if node.info.role == Role::Ultrapeer {
        "True"
    } else {
        "False"
    };
    h.headers.set("X-Ultrapeer", up);
    h.headers.set("Listen-IP", &node.info.addr.to_string());
    if let Some(remote) = remote {
        h.headers.set("Remote-IP", &remote.ip().to_string());
    }
    h.headers.set("X-Query-Routing", "0.1");
    h
}

async fn accept_handshake(node: &Node, stream: &mut TcpStream, remote: SocketAddr) -> Result<Inbound, ConnError> {
    let mut first = Vec::with_capacity(8);
    let mut buf = [0u8; 512];
    while first.len() < 4 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        first.extend_from_slice(&buf[..n]);
    }
    if first.starts_with(b"GET ") {
        return Ok(Inbound::Http(first));
    }
    let mut decoder = HandshakeDecoder::new();
    decoder.feed(&first);
    let connect = read_block(stream, &mut decoder).await?;
    if !matches!(connect.start, StartLine::Connect { .. }) {
        return Err(ConnError::Unexpected);
    }
    let listen = connect.headers.listen_addr().unwrap_or(remote);
    let (admission, answer) = {
        let state = node.state();
        if !state.online {
            return Ok(Inbound::Done);
        }
        let admission = ultrapeer::admit(
            node.info.role,
            &connect.headers,
            state.conns_with(Role::Ultrapeer).len(),
            state.conns_with(Role::Leaf).len(),
            state.conns.values().any(|p| p.addr == listen),
            node.config.max_ultrapeer_peers,
            node.config.max_leaves,
        );
        let answer = match admission {
            Admission::Crawler => ultrapeer::crawler_reply(node, &state),
            Admission::Refuse(reason) => ultrapeer::refusal(node, &state, reason),
            Admission::Accept(_) => our_block(node, Handshake::response(200, "OK"), Some(remote)),
        };
        (admission, answer)
    };
    stream.write_all(&answer.encode()?).await?;
    match admission {
        Admission::Crawler => {
            Counters::bump(&node.counters.crawler_replies);
            // The crawler closes (or sends its third block first); either ends it.
            let _ = read_block(stream, &mut decoder).await;
            Ok(Inbound::Done)
        }
        Admission::Refuse(_) => {
            Counters::bump(&node.counters.refused_503);
            Ok(Inbound::Done)
        }
        Admission::Accept(role) => {
            let third = read_block(stream, &mut decoder).await?;
            match third.status() {
                Some(200) => Ok(Inbound::Peer(listen, role, decoder.take_buffered())),
                Some(code) => Err(ConnError::Refused(code)),
                None => Err(ConnError::Unexpected),
            }
        }
    }
}

/// Keeps one planned link up while the session lasts: dial, run, and after it ends (or the
/// peer is away or full) wait and dial again.
async fn dial_loop(node: Arc<Node>, target: SocketAddr) {
    let limits = &node.config.limits;
    loop {
        if !node.connected_to(target) {
            match timeout(limits.handshake(), dial(&node, target)).await {
                Ok(Ok((stream, role, leftover))) => run_connection(node.clone(), stream, target, role, leftover).await,
                Ok(Err(e)) => tracing::trace!(node = node.info.index, "dial: {e}"),
                Err(_) => tracing::trace!(node = node.info.index, "dial timed out"),
            }
        }
        sleep(limits.reconnect()).await;
    }
}

async fn dial(node: &Node, target: SocketAddr) -> Result<(TcpStream, Role, Vec<u8>), ConnError> {
    let socket = TcpSocket::new_v4()?;
    // From our own address, so the peer sees (and a crawler maps) us where we listen.
    socket.bind(SocketAddr::new(node.info.addr.ip(), 0))?;
    let mut stream = socket.connect(target).await?;
    stream
        .write_all(&our_block(node, Handshake::connect(), None).encode()?)
        .await?;
    let mut decoder = HandshakeDecoder::new();
    let answer = read_block(&mut stream, &mut decoder).await?;
    match answer.status() {
        Some(200) => {}
        Some(code) => return Err(ConnError::Refused(code)),
        None => return Err(ConnError::Unexpected),
    }
    stream.write_all(&Handshake::response(200, "OK").encode()?).await?;
    let role = match answer.headers.ultrapeer() {
        Some(false) => Role::Leaf,
        _ => Role::Ultrapeer,
    };
    Ok((stream, role, decoder.take_buffered()))
}

async fn write_timed(w: &mut OwnedWriteHalf, bytes: &[u8], limit: Duration) -> Result<(), ConnError> {
    timeout(limit, w.write_all(bytes))
        .await
        .map_err(|_| ConnError::Timeout)??;
    Ok(())
}

/// A Bye (code 200, "Shutting down").
pub(crate) fn bye() -> Vec<u8> {
    let msg = Message {
        guid: onionlab_crawler::gnutella::Guid([0; 16]),
        ttl: 1,
        hops: 0,
        payload: Payload::Bye(Bye {
            code: 200,
            message: b"Shutting down".to_vec(),
        }),
    };
    msg.encode().unwrap_or_default()
}

/// Runs an established connection until it ends, then forgets it.
async fn run_connection(node: Arc<Node>, stream: TcpStream, addr: SocketAddr, role: Role, leftover: Vec<u8>) {
    let limits = node.config.limits.clone();
    let (tx, mut rx) = mpsc::channel(limits.queue);
    let Some(id) = node.register(addr, role, tx) else {
        return;
    };
    let (mut rd, mut wr) = stream.into_split();
    let result: Result<(), ConnError> = async {
        if node.info.role == Role::Leaf && role == Role::Ultrapeer {
            let table = leaf::route_table(&node.info.library, node.config.qrp_table_bits);
            let messages = {
                let mut state = node.state();
                table.messages(|| state.guid())
            };
            for m in messages {
                write_timed(&mut wr, &m.encode()?, limits.write()).await?;
            }
        }
        let mut decoder = MessageDecoder::with_limits(MessageLimits {
            max_payload: limits.max_payload,
        });
        decoder.feed(&leftover);
        if drain(&node, id, &mut decoder)? == Handled::Close {
            return Ok(());
        }
        let mut buf = vec![0u8; READ_CHUNK];
        let mut last_read = Instant::now();
        let mut last_write = Instant::now();
        loop {
            tokio::select! {
                read = rd.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    last_read = Instant::now();
                    decoder.feed(&buf[..n]);
                    if drain(&node, id, &mut decoder)? == Handled::Close {
                        return Ok(());
                    }
                }
                out = rx.recv() => match out {
                    Some(Outgoing::Bytes(bytes)) => {
                        write_timed(&mut wr, &bytes, limits.write()).await?;
                        last_write = Instant::now();
                    }
                    Some(Outgoing::Bye(bytes)) => {
                        write_timed(&mut wr, &bytes, limits.write()).await?;
                        let _ = wr.shutdown().await;
                        return Ok(());
                    }
                    None => return Ok(()),
                },
                _ = sleep_until(last_read + limits.idle()) => return Err(ConnError::Timeout),
                _ = sleep_until(last_write + limits.keepalive()) => {
                    let ping = keepalive(&node);
                    write_timed(&mut wr, &ping, limits.write()).await?;
                    last_write = Instant::now();
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        if e.is_bad_input() {
            Counters::bump(&node.counters.bad_input);
        }
        tracing::debug!(node = node.info.index, "connection {id}: {e}");
    }
    node.unregister(id);
}

/// Hands every whole descriptor in the decoder to the node's role.
fn drain(node: &Node, from: ConnId, decoder: &mut MessageDecoder) -> Result<Handled, ConnError> {
    while let Some(decoded) = decoder.next_message()? {
        let now = std::time::Instant::now();
        let mut state = node.state();
        let (sends, handled) = match node.info.role {
            Role::Ultrapeer => ultrapeer::on_message(node, &mut state, from, decoded.message, now),
            Role::Leaf => leaf::on_message(node, &mut state, from, decoded.message, now),
        };
        node.send_all(&state, sends);
        if handled == Handled::Close {
            return Ok(Handled::Close);
        }
    }
    Ok(Handled::Continue)
}

/// A TTL-1 Ping whose Pong we expect back (recorded as ours).
fn keepalive(node: &Node) -> Vec<u8> {
    let mut state = node.state();
    let guid = state.guid();
    state.pings.observe(guid, Origin::Local, 1, std::time::Instant::now());
    let ping = Message {
        guid,
        ttl: 1,
        hops: 0,
        payload: Payload::Ping { extensions: Vec::new() },
    };
    ping.encode().unwrap_or_default()
}
