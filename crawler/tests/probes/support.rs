//! Loopback counterparts built from the crate's own codecs, each a tokio task on its own
//! 127.x.y.z address: a peer that seeds a real torrent (or misbehaves in a chosen way), an HTTP
//! tracker and a UDP tracker. Plus a torrent generator and the engine and recorder the tests use.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onionlab_crawler::bencode::Value;
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::metainfo::Metainfo;
use onionlab_crawler::observe::{Observation, PeerState, PieceCheck, Sighting, Visit};
use onionlab_crawler::peerwire::{
    ExtHandshake, HANDSHAKE_LEN, Handshake, Message, MessageDecoder, MetadataMessage, PexMessage, PexPeer,
};
use onionlab_crawler::tracker::udp::{self, Request, Response, ScrapeStats};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Runs `fut`, failing the test if it takes more than 20 s.
pub(crate) async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the test finished within 20 s")
}

/// `127.a.b.c`.
pub(crate) fn ip(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

/// An engine for loopback tests: no politeness delay, short timeouts, `attempts` attempts.
pub(crate) fn engine(timeout_ms: u64, attempts: u32) -> (Engine, mpsc::Receiver<Observation>) {
    let (recorder, rx) = Recorder::channel(100_000);
    let cfg = EngineConfig {
        concurrency: 32,
        per_ip_interval: Duration::ZERO,
        timeout: Duration::from_millis(timeout_ms),
        attempts,
        backoff: Duration::from_millis(20),
    };
    (Engine::new(cfg, recorder), rx)
}

/// Every row recorded so far, by kind.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) visits: Vec<Visit>,
    pub(crate) sightings: Vec<Sighting>,
    pub(crate) states: Vec<PeerState>,
    pub(crate) checks: Vec<PieceCheck>,
}

pub(crate) fn rows(rx: &mut mpsc::Receiver<Observation>) -> Rows {
    let mut r = Rows::default();
    while let Ok(obs) = rx.try_recv() {
        match obs {
            Observation::Visit(v) => r.visits.push(v),
            Observation::Sighting(s) => r.sightings.push(s),
            Observation::PeerState(s) => r.states.push(s),
            Observation::PieceCheck(c) => r.checks.push(c),
        }
    }
    r
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub(crate) fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// A single-file torrent over a generated payload, as a peer serves it.
#[derive(Debug)]
pub(crate) struct Torrent {
    pub(crate) payload: Vec<u8>,
    pub(crate) info_bytes: Vec<u8>,
    pub(crate) metainfo: Metainfo,
}

pub(crate) fn torrent(len: usize, piece_length: usize, seed: u64) -> Arc<Torrent> {
    let payload = payload(len, seed);
    let pieces: Vec<u8> = payload
        .chunks(piece_length)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let info = Value::dict([
        ("length", Value::Int(len as i64)),
        ("name", Value::bytes("payload.bin")),
        ("piece length", Value::Int(piece_length as i64)),
        ("pieces", Value::Bytes(pieces)),
    ]);
    let info_bytes = info.encode();
    let torrent = Value::dict([
        ("announce", Value::bytes("http://127.0.0.1:1/announce")),
        ("info", info),
    ])
    .encode();
    let metainfo = Metainfo::parse(&torrent).unwrap();
    assert_eq!(metainfo.info_hash, InfoHash::of_info_bytes(&info_bytes));
    Arc::new(Torrent {
        payload,
        info_bytes,
        metainfo,
    })
}

/// How a loopback peer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Serves the torrent as it is.
    Honest,
    /// Flips the first byte of this piece.
    CorruptPiece(u32),
    /// Flips the first byte of every piece.
    CorruptAll,
    /// Serves metadata with one byte flipped.
    BadMetadata,
    /// Chokes at the first request, drops it, and unchokes 50 ms later.
    ChokeFirst,
    /// Reads and never answers.
    Silent,
    /// Answers the handshake with 68 bytes of garbage.
    Garbage,
    /// Answers for another info-hash.
    WrongInfoHash,
    /// Handshakes, then sends a length prefix of almost 4 GiB.
    HugeLength,
}

/// What a loopback peer announces it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    /// A full bitfield.
    Bitfield,
    /// BEP 6 `have_all` (id 14).
    HaveAll,
    /// Nothing at all.
    Silent,
}

#[derive(Debug, Clone)]
pub(crate) struct PeerSpec {
    pub(crate) torrent: Arc<Torrent>,
    /// BEP 10 `v`; `None`: no extension protocol at all.
    pub(crate) client: Option<&'static str>,
    /// Serve metadata over `ut_metadata`.
    pub(crate) metadata: bool,
    pub(crate) holding: Holding,
    pub(crate) reqq: Option<i64>,
    pub(crate) pex: Vec<SocketAddr>,
    pub(crate) behaviour: Behaviour,
}

impl PeerSpec {
    pub(crate) fn honest(torrent: &Arc<Torrent>) -> Self {
        PeerSpec {
            torrent: torrent.clone(),
            client: Some("loopback-seeder/1.0"),
            metadata: true,
            holding: Holding::Bitfield,
            reqq: Some(64),
            pex: Vec::new(),
            behaviour: Behaviour::Honest,
        }
    }

    pub(crate) fn behaving(mut self, b: Behaviour) -> Self {
        self.behaviour = b;
        self
    }
}

/// A running loopback peer.
pub(crate) struct PeerHandle {
    pub(crate) addr: SocketAddr,
    /// The most block requests seen pending at once (pipelining).
    pub(crate) max_pending: Arc<AtomicUsize>,
    /// Connections accepted.
    pub(crate) connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl PeerHandle {
    /// Stops accepting: later connections are refused.
    pub(crate) fn shut_down(&self) {
        self.task.abort();
    }
}

pub(crate) async fn spawn_peer(ip: IpAddr, spec: PeerSpec) -> PeerHandle {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let max_pending = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let (mp, conns) = (max_pending.clone(), connections.clone());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            conns.fetch_add(1, Ordering::Relaxed);
            let (spec, mp) = (spec.clone(), mp.clone());
            tokio::spawn(async move {
                let _ = serve_peer(stream, spec, addr, mp).await;
            });
        }
    });
    PeerHandle {
        addr,
        max_pending,
        connections,
        task,
    }
}

const OUR_UT_METADATA: u8 = 3;
const OUR_UT_PEX: u8 = 4;

async fn send(stream: &mut TcpStream, msg: Message) -> std::io::Result<()> {
    stream.write_all(&msg.encode()).await
}

async fn serve_peer(
    mut stream: TcpStream,
    spec: PeerSpec,
    me: SocketAddr,
    max_pending: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let t = &spec.torrent;
    let info_hash = t.metainfo.info_hash;
    let mut hs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut hs).await?;
    let theirs = Handshake::decode(&hs).map_err(std::io::Error::other)?;
    if theirs.info_hash != info_hash {
        return Ok(());
    }
    match spec.behaviour {
        Behaviour::Silent => {
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            return Ok(());
        }
        Behaviour::Garbage => return stream.write_all(&[0xab; HANDSHAKE_LEN]).await,
        _ => {}
    }
    let mut peer_id = *b"-TS0001-000000000000";
    peer_id[8..].copy_from_slice(format!("{:012}", me.port()).as_bytes());
    let mut ours = Handshake::new(
        if spec.behaviour == Behaviour::WrongInfoHash {
            InfoHash([0x42; 20])
        } else {
            info_hash
        },
        peer_id,
    );
    ours.set_extensions(spec.client.is_some());
    stream.write_all(&ours.encode()).await?;
    if spec.behaviour == Behaviour::HugeLength {
        stream.write_all(&[0xff, 0xff, 0xff, 0xf0, 7, 0, 0, 0]).await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        return Ok(());
    }
    if let Some(v) = spec.client {
        let mut m = BTreeMap::new();
        if spec.metadata {
            m.insert(b"ut_metadata".to_vec(), OUR_UT_METADATA);
        }
        m.insert(b"ut_pex".to_vec(), OUR_UT_PEX);
        let ext = ExtHandshake {
            m,
            v: Some(v.as_bytes().to_vec()),
            yourip: Some(vec![127, 0, 0, 1]),
            reqq: spec.reqq,
            metadata_size: spec.metadata.then_some(t.info_bytes.len() as i64),
            p: Some(me.port()),
        };
        send(
            &mut stream,
            Message::Extended {
                id: 0,
                payload: ext.encode(),
            },
        )
        .await?;
    }
    let pieces = t.metainfo.info.pieces.len();
    match spec.holding {
        Holding::Bitfield => {
            let mut bits = vec![0u8; pieces.div_ceil(8)];
            for i in 0..pieces {
                bits[i / 8] |= 0x80 >> (i % 8);
            }
            send(&mut stream, Message::Bitfield(bits)).await?;
        }
        Holding::HaveAll => {
            send(
                &mut stream,
                Message::Unknown {
                    id: 14,
                    payload: vec![],
                },
            )
            .await?
        }
        Holding::Silent => {}
    }

    let piece_length = t.metainfo.info.piece_length as usize;
    let mut decoder = MessageDecoder::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut client_ext: Option<ExtHandshake> = None;
    let mut pending: Vec<(u32, u32, u32)> = Vec::new();
    let mut choked_once = false;
    loop {
        // With requests pending, answer them once the client pauses for 20 ms.
        let read = if pending.is_empty() {
            Some(stream.read(&mut buf).await?)
        } else {
            tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf))
                .await
                .ok()
                .transpose()?
        };
        match read {
            Some(0) => return Ok(()),
            Some(n) => decoder.feed(&buf[..n]),
            None => {
                for (piece, begin, length) in std::mem::take(&mut pending) {
                    let start = piece as usize * piece_length + begin as usize;
                    let Some(bytes) = t.payload.get(start..start + length as usize) else {
                        continue;
                    };
                    let mut block = bytes.to_vec();
                    let corrupt = match spec.behaviour {
                        Behaviour::CorruptAll => true,
                        Behaviour::CorruptPiece(p) => p == piece,
                        _ => false,
                    };
                    if corrupt && begin == 0 {
                        block[0] ^= 0xff;
                    }
                    send(&mut stream, Message::Piece { piece, begin, block }).await?;
                }
                continue;
            }
        }
        while let Some(msg) = decoder.next_message().map_err(std::io::Error::other)? {
            match msg {
                Message::Interested => send(&mut stream, Message::Unchoke).await?,
                Message::Request { piece, begin, length } => {
                    if spec.behaviour == Behaviour::ChokeFirst && !choked_once {
                        choked_once = true;
                        send(&mut stream, Message::Choke).await?;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        // Requests already on the wire before the choke are dropped too.
                        while let Ok(Ok(n)) =
                            tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buf)).await
                        {
                            if n == 0 {
                                return Ok(());
                            }
                            decoder.feed(&buf[..n]);
                            while decoder.next_message().map_err(std::io::Error::other)?.is_some() {}
                        }
                        send(&mut stream, Message::Unchoke).await?;
                        continue;
                    }
                    pending.push((piece, begin, length));
                    max_pending.fetch_max(pending.len(), Ordering::Relaxed);
                }
                Message::Extended { id: 0, payload } => {
                    let ext = ExtHandshake::decode(&payload).map_err(std::io::Error::other)?.value;
                    if let (false, Some(&id)) = (spec.pex.is_empty(), ext.m.get(&b"ut_pex"[..])) {
                        let pex = PexMessage {
                            added: spec
                                .pex
                                .iter()
                                .map(|&addr| PexPeer {
                                    addr,
                                    flags: PexPeer::SEED,
                                })
                                .collect(),
                            dropped: Vec::new(),
                        };
                        send(
                            &mut stream,
                            Message::Extended {
                                id,
                                payload: pex.encode(),
                            },
                        )
                        .await?;
                    }
                    client_ext = Some(ext);
                }
                Message::Extended {
                    id: OUR_UT_METADATA,
                    payload,
                } => {
                    let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(&payload).map(|d| d.value)
                    else {
                        continue;
                    };
                    let Some(id) = client_ext.as_ref().and_then(|e| e.m.get(&b"ut_metadata"[..]).copied()) else {
                        continue;
                    };
                    let start = piece as usize * 16384;
                    let end = (start + 16384).min(t.info_bytes.len());
                    let mut data = t.info_bytes[start..end].to_vec();
                    if spec.behaviour == Behaviour::BadMetadata && piece == 0 {
                        data[10] ^= 1;
                    }
                    let reply = MetadataMessage::Data {
                        piece,
                        total_size: t.info_bytes.len() as i64,
                        data,
                    };
                    send(
                        &mut stream,
                        Message::Extended {
                            id,
                            payload: reply.encode(),
                        },
                    )
                    .await?;
                }
                _ => {}
            }
        }
    }
}

/// A loopback HTTP tracker answering every announce and scrape with fixed bodies.
pub(crate) struct HttpTracker {
    pub(crate) url: String,
    /// Request targets received (path and query).
    pub(crate) requests: Arc<Mutex<Vec<String>>>,
}

#[derive(Debug, Clone)]
pub(crate) struct HttpTrackerSpec {
    pub(crate) status: u16,
    pub(crate) announce: Vec<u8>,
    pub(crate) scrape: Vec<u8>,
    pub(crate) chunked: bool,
}

pub(crate) async fn spawn_http_tracker(ip: IpAddr, spec: HttpTrackerSpec) -> HttpTracker {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (spec, seen) = (spec.clone(), seen.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split(' ').nth(1).unwrap_or_default().to_string();
                let body = if target.starts_with("/scrape") {
                    &spec.scrape
                } else {
                    &spec.announce
                };
                seen.lock().unwrap().push(target);
                let mut response = format!("HTTP/1.1 {} X\r\nContent-Type: text/plain\r\n", spec.status).into_bytes();
                if spec.chunked {
                    response.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for chunk in body.chunks(7) {
                        response.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                        response.extend_from_slice(chunk);
                        response.extend_from_slice(b"\r\n");
                    }
                    response.extend_from_slice(b"0\r\n\r\n");
                } else {
                    response.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                    response.extend_from_slice(body);
                }
                let _ = stream.write_all(&response).await;
            });
        }
    });
    HttpTracker { url, requests }
}

/// Percent-decodes the value of `key` in a request target.
pub(crate) fn query_param(target: &str, key: &str) -> Option<Vec<u8>> {
    let query = target.split_once('?')?.1;
    let value = query.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}=")))?;
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A loopback UDP tracker (BEP 15).
pub(crate) struct UdpTracker {
    pub(crate) url: String,
    /// Every request received, dropped or answered.
    pub(crate) requests: Arc<Mutex<Vec<Request>>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct UdpTrackerSpec {
    /// Drop this many packets before answering.
    pub(crate) drop_first: usize,
    /// Never answer.
    pub(crate) silent: bool,
    /// Answer announces with an error (action 3).
    pub(crate) error: Option<&'static str>,
    pub(crate) seeders: u32,
    pub(crate) leechers: u32,
    pub(crate) peers: Vec<SocketAddrV4>,
}

pub(crate) async fn spawn_udp_tracker(ip: IpAddr, spec: UdpTrackerSpec) -> UdpTracker {
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let url = format!("udp://{}", sock.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut issued = Vec::new();
        let mut dropped = 0;
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Ok(req) = Request::decode(&buf[..n]) else { continue };
            seen.lock().unwrap().push(req.clone());
            if spec.silent {
                continue;
            }
            if dropped < spec.drop_first {
                dropped += 1;
                continue;
            }
            let response = match req {
                Request::Connect(c) => {
                    let connection_id = 0x1122_3344_5566_0000 + issued.len() as u64;
                    issued.push(connection_id);
                    Response::Connect {
                        transaction_id: c.transaction_id,
                        connection_id,
                    }
                }
                Request::Announce(a) if !issued.contains(&a.connection_id) => Response::Error {
                    transaction_id: a.transaction_id,
                    message: b"unknown connection id".to_vec(),
                },
                Request::Announce(a) => match spec.error {
                    Some(message) => Response::Error {
                        transaction_id: a.transaction_id,
                        message: message.as_bytes().to_vec(),
                    },
                    None => Response::Announce(udp::AnnounceResponse {
                        transaction_id: a.transaction_id,
                        interval: 1800,
                        leechers: spec.leechers,
                        seeders: spec.seeders,
                        peers: spec.peers.clone(),
                    }),
                },
                Request::Scrape(s) => Response::Scrape {
                    transaction_id: s.transaction_id,
                    stats: s
                        .info_hashes()
                        .iter()
                        .map(|h| ScrapeStats {
                            seeders: h.0[0].into(),
                            completed: h.0[1].into(),
                            leechers: h.0[2].into(),
                        })
                        .collect(),
                },
            };
            let _ = sock.send_to(&response.encode(), from).await;
        }
    });
    UdpTracker { url, requests }
}
