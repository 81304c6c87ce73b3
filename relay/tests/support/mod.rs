//! What the relay's integration tests share: a relay on loopback, a raw client that speaks
//! cells over a real link (so tests can misbehave on purpose), one-hop circuits to the relay
//! under test, a fake authority that records uploaded descriptors, and a TCP "destination".
#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part.

use onionlab_link::channel::{CellReader, ChannelConnector, ChannelSender};
use onionlab_link::config::AuthorityEntry;
use onionlab_proto::cell::{Cell, CellCommand, CircId, Create2, Created2, DestroyReason, HTYPE_ONIONLAB_NTOR};
use onionlab_proto::codec::Reader;
use onionlab_proto::descriptor::{RelayDescriptor, SignedDescriptor};
use onionlab_proto::keys::{OnionPublicKey, fresh_x25519};
use onionlab_proto::layer::{ClientLayers, HopKeys};
use onionlab_proto::ntor::{ClientHandshake, NtorParams};
use onionlab_proto::relay_msg::{RelayCell, RelayMsg, StreamId, Target, TargetHost};
use onionlab_relay::{Relay, RelayConfig, RelayHandle};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(15);

/// An exit that may connect to loopback, resolves no names, and publishes nowhere.
pub fn exit_config(dir: &Path) -> RelayConfig {
    let mut c = RelayConfig::new(
        "testrelay",
        "127.0.0.1:0".parse().expect("address"),
        dir.to_owned(),
        Vec::new(),
    );
    c.exit = true;
    c.exit_policy_reject_private = false;
    c.exit_policy = vec!["accept 127.0.0.0/8:*".into()];
    c.system_resolver = false;
    c
}

/// Starts a relay with `config`.
pub async fn start(config: RelayConfig) -> RelayHandle {
    Relay::start(config).await.expect("relay starts")
}

/// Waits (bounded) until `f` holds.
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client link to the relay, driven cell by cell.
pub struct RawClient {
    pub reader: CellReader,
    pub sender: ChannelSender,
    identity: [u8; 32],
}

impl RawClient {
    /// Opens a link from `source` (a loopback address) to `relay`.
    pub async fn connect(relay: &RelayHandle, source: &str) -> Self {
        let source: IpAddr = source.parse().expect("source address");
        let connector =
            ChannelConnector::new(onionlab_link::tls::client_config().expect("TLS")).with_source(Some(source));
        let (reader, sender) = connector
            .connect(relay.or_addr, &relay.identity())
            .await
            .expect("link to the relay")
            .split();
        RawClient {
            reader,
            sender,
            identity: relay.identity(),
        }
    }

    /// Sends a cell.
    pub async fn send(&self, cell: Cell) {
        self.sender.send(cell).await.expect("link open");
    }

    /// The next cell, or `None` if the relay closed the link.
    pub async fn next(&mut self) -> Option<Cell> {
        tokio::time::timeout(WAIT, self.reader.next())
            .await
            .expect("a cell in time")
            .ok()
            .flatten()
    }

    /// Sends a CREATE2 for `onion` on `circ_id`; returns the handshake to finish.
    pub async fn send_create(&self, circ_id: CircId, onion: &OnionPublicKey) -> ClientHandshake {
        let (hs, msg) =
            ClientHandshake::start(NtorParams::ONIONLAB, &self.identity, onion, fresh_x25519()).expect("handshake");
        let create = Create2 {
            htype: HTYPE_ONIONLAB_NTOR,
            hdata: msg,
        };
        self.send(create.to_cell(circ_id).expect("cell")).await;
        hs
    }

    /// Builds a one-hop circuit with the relay's onion key `onion`, or returns the reason of
    /// the DESTROY that refused it.
    pub async fn create(&mut self, circ_id: CircId, onion: &OnionPublicKey) -> Result<OneHop, DestroyReason> {
        let hs = self.send_create(circ_id, onion).await;
        loop {
            let cell = self.next().await.expect("an answer to CREATE2");
            if cell.circ_id != circ_id {
                continue;
            }
            return match cell.command {
                CellCommand::Created2 => {
                    let reply = Created2::read(&mut Reader::new(&cell.payload)).expect("CREATED2 body");
                    let keys = hs.finish(&reply.hdata).expect("the relay proved its onion key");
                    let mut layers = ClientLayers::new();
                    layers.push(HopKeys::from_material(&keys));
                    Ok(OneHop { circ_id, layers })
                }
                CellCommand::Destroy => Err(DestroyReason::from_u8(cell.payload[0])),
                other => panic!("unexpected {other:?} in answer to CREATE2"),
            };
        }
    }

    /// Sends `msg` on a circuit.
    pub async fn send_msg(&self, circ: &mut OneHop, stream_id: StreamId, msg: RelayMsg) {
        let cell = circ.seal(stream_id, msg);
        self.send(cell).await;
    }

    /// The next relay message on `circ`, skipping cells for other circuits; `Err` carries a
    /// DESTROY's reason.
    pub async fn recv_msg(&mut self, circ: &mut OneHop) -> Result<RelayCell, DestroyReason> {
        loop {
            let cell = self.next().await.expect("link open");
            if cell.circ_id != circ.circ_id {
                continue;
            }
            match cell.command {
                CellCommand::Relay => return Ok(circ.open(cell)),
                CellCommand::Destroy => return Err(DestroyReason::from_u8(cell.payload[0])),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Opens a stream to `addr` on `circ`; returns CONNECTED or END's message.
    pub async fn begin(&mut self, circ: &mut OneHop, stream_id: StreamId, addr: SocketAddr) -> RelayMsg {
        let begin = RelayMsg::Begin {
            target: target(addr),
            flags: 0,
        };
        self.send_msg(circ, stream_id, begin).await;
        self.recv_msg(circ).await.expect("circuit open").msg
    }
}

/// A BEGIN target for an address.
pub fn target(addr: SocketAddr) -> Target {
    Target {
        host: TargetHost::Ip(addr.ip()),
        port: addr.port(),
    }
}

/// A one-hop circuit's keys, at the client.
pub struct OneHop {
    pub circ_id: CircId,
    layers: ClientLayers,
}

impl OneHop {
    /// A RELAY cell carrying `msg`, sealed for the relay.
    pub fn seal(&mut self, stream_id: StreamId, msg: RelayMsg) -> Cell {
        let body = RelayCell::new(stream_id, msg).encode().expect("encodable");
        Cell {
            circ_id: self.circ_id,
            command: CellCommand::Relay,
            payload: self.layers.seal_for(0, &body).expect("one hop"),
        }
    }

    /// Opens a RELAY cell from the relay.
    pub fn open(&mut self, cell: Cell) -> RelayCell {
        let (_, body) = self.layers.open(cell.payload).expect("sealed by the relay");
        RelayCell::decode(&body[..]).expect("a relay message")
    }
}

/// A TCP server that sends `size` bytes to everyone who connects, then closes.
pub async fn source_of(size: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let chunk = vec![0x5a; 16 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A TCP server on 127.0.0.1 that echoes what it receives.
pub async fn echo_server() -> SocketAddr {
    echo_server_on("127.0.0.1:0").await
}

/// A TCP server on `addr` that echoes what it receives; returns where it listens.
pub async fn echo_server_on(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// An authority stand-in that accepts every descriptor upload and hands it to the test.
pub async fn fake_authority() -> (AuthorityEntry, mpsc::UnboundedReceiver<RelayDescriptor>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body_start = loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_start + len {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                if let Ok(d) = SignedDescriptor::decode(&buf[body_start..body_start + len]) {
                    let _ = tx.send(d.descriptor);
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            });
        }
    });
    let entry = AuthorityEntry {
        address,
        identity: "00".repeat(32),
    };
    (entry, rx)
}

/// Waits for the next uploaded descriptor that satisfies `f`.
pub async fn descriptor_where(
    uploads: &mut mpsc::UnboundedReceiver<RelayDescriptor>,
    what: &str,
    f: impl Fn(&RelayDescriptor) -> bool,
) -> RelayDescriptor {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(d) = uploads.recv().await {
            if f(&d) {
                return Some(d);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(d)) => d,
        _ => panic!("no descriptor upload where {what}"),
    }
}
