//! The Gnutella drivers against scripted loopback servents: a topology crawl whose snapshot must
//! equal the scripted overlay exactly (hostile servents included), the store holding the same
//! graph, the recrawl interval across snapshots, and the content probe against an ultrapeer that
//! answers with hits and HTTP servers that serve one genuine file and one decoy.

// Test helpers may panic on setup failures: that is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onionlab_crawler::analysis::pollution::{PollutionConfig, pollution_report};
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};
use onionlab_crawler::gnutella::churn::churn;
use onionlab_crawler::gnutella::crawl::{TopologyConfig, TopologyCrawler, crawl_topology};
use onionlab_crawler::gnutella::leaf::{DownloadConfig, QueryConfig, QueryEnd, query, verify_hit};
use onionlab_crawler::gnutella::snapshot::{FrontierRules, NodeStatus, Role, Snapshot, StopReason, edge};
use onionlab_crawler::gnutella::{
    CrawlerReply, Guid, Handshake, HandshakeDecoder, HitResult, Message, MessageDecoder, Payload, QueryHit,
};
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::observe::{Observation, Outcome, ProbeKind, SourceKind};
use onionlab_crawler::probe::Error;
use onionlab_crawler::store::{CrawlEnd, Recording};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// Bound on any single wait of a scripted servent.
const STEP: Duration = Duration::from_secs(5);

fn engine(recorder: Recorder) -> Engine {
    Engine::new(
        EngineConfig {
            concurrency: 16,
            per_ip_interval: Duration::from_millis(1),
            timeout: Duration::from_millis(1500),
            attempts: 1,
            backoff: Duration::from_millis(10),
        },
        recorder,
    )
}

/// What a scripted servent does with a crawler connection.
#[derive(Clone)]
enum Script {
    /// Answers the crawler handshake.
    Answer {
        ultrapeer: bool,
        peers: Vec<usize>,
        leaves: Vec<usize>,
    },
    /// `503 Busy` with `X-Try-Ultrapeers`.
    Refuse { try_ultrapeers: Vec<usize> },
    /// Reads and never answers.
    Silent,
    /// Answers in another protocol.
    Garbage,
    /// A status line, then header lines that never end.
    EndlessHeaders,
    /// Nothing listens there.
    Closed,
}

/// Binds one listener per script on its own 127.0.<net>.x address; returns the addresses and
/// the listeners (`None` for [`Script::Closed`], whose port was bound and released).
async fn bind_all(net: u8, n: usize) -> (Vec<SocketAddr>, Vec<TcpListener>) {
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for i in 0..n {
        let ip = Ipv4Addr::new(127, 0, net, 10 + i as u8);
        let l = TcpListener::bind((ip, 0)).await.unwrap();
        addrs.push(l.local_addr().unwrap());
        listeners.push(l);
    }
    (addrs, listeners)
}

/// Reads one header block (bounded) and returns it with the bytes after it.
async fn read_block(stream: &mut TcpStream) -> Option<(onionlab_crawler::gnutella::DecodedHandshake, Vec<u8>)> {
    let mut dec = HandshakeDecoder::new();
    let mut buf = [0u8; 1024];
    for _ in 0..64 {
        if let Ok(Some(d)) = dec.next_handshake() {
            return Some((d, dec.take_buffered()));
        }
        let n = timeout(STEP, stream.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        dec.feed(&buf[..n]);
    }
    None
}

/// What the servents saw: per address, when crawlers connected and whether a crawler sent
/// anything after our reply (it must not complete the handshake).
#[derive(Default)]
struct Seen {
    contacts: BTreeMap<SocketAddr, Vec<Instant>>,
    sent_after_reply: BTreeSet<SocketAddr>,
}

fn spawn_servents(addrs: &[SocketAddr], listeners: Vec<TcpListener>, scripts: &[Script]) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    for ((addr, listener), script) in addrs.iter().zip(listeners).zip(scripts) {
        if matches!(script, Script::Closed) {
            drop(listener);
            continue;
        }
        let (addr, script, seen, all) = (*addr, script.clone(), seen.clone(), addrs.to_vec());
        tokio::spawn(async move {
            for _ in 0..8 {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                seen.lock()
                    .unwrap()
                    .contacts
                    .entry(addr)
                    .or_default()
                    .push(Instant::now());
                let (script, seen, all) = (script.clone(), seen.clone(), all.clone());
                tokio::spawn(async move { serve(&mut stream, addr, &script, &all, &seen).await });
            }
        });
    }
    seen
}

async fn serve(stream: &mut TcpStream, addr: SocketAddr, script: &Script, all: &[SocketAddr], seen: &Mutex<Seen>) {
    let Some((hello, _)) = read_block(stream).await else {
        return;
    };
    assert_eq!(hello.handshake.headers.crawler(), Some("0.1"));
    assert!(hello.handshake.headers.user_agent().is_some());
    let pick = |ix: &[usize]| ix.iter().map(|&i| all[i]).collect::<Vec<_>>();
    let reply = match script {
        Script::Answer {
            ultrapeer,
            peers,
            leaves,
        } => Handshake::crawler_reply(&CrawlerReply {
            user_agent: format!("Script/{}", addr.ip()),
            ultrapeer: *ultrapeer,
            peers: pick(peers),
            leaves: pick(leaves),
        })
        .encode()
        .unwrap(),
        Script::Refuse { try_ultrapeers } => {
            let mut h = Handshake::response(503, "Busy");
            h.headers.set("User-Agent", "Busy/1");
            h.headers.set("X-Ultrapeer", "True");
            h.headers.set(
                "X-Try-Ultrapeers",
                &onionlab_crawler::gnutella::format_peer_list(&pick(try_ultrapeers)),
            );
            h.encode().unwrap()
        }
        Script::Silent => {
            let mut sink = [0u8; 64];
            let _ = timeout(STEP, stream.read(&mut sink)).await;
            return;
        }
        Script::Garbage => b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
        Script::EndlessHeaders => {
            let _ = stream.write_all(b"GNUTELLA/0.6 200 OK\r\n").await;
            for _ in 0..100_000 {
                if stream
                    .write_all(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
            return;
        }
        Script::Closed => return,
    };
    if stream.write_all(&reply).await.is_err() {
        return;
    }
    let mut rest = [0u8; 64];
    if let Ok(Ok(n)) = timeout(STEP, stream.read(&mut rest)).await
        && n > 0
    {
        seen.lock().unwrap().sent_after_reply.insert(addr);
    }
}

/// The scripted overlay of the main test: 0..=8 are ultrapeers, 9..=13 leaves.
fn overlay() -> Vec<Script> {
    let up = |peers: &[usize], leaves: &[usize]| Script::Answer {
        ultrapeer: true,
        peers: peers.to_vec(),
        leaves: leaves.to_vec(),
    };
    let leaf = |peers: &[usize]| Script::Answer {
        ultrapeer: false,
        peers: peers.to_vec(),
        leaves: Vec::new(),
    };
    vec![
        up(&[1, 2], &[9, 10]),     // 0: bootstrap
        up(&[0, 2, 3], &[10, 11]), // 1
        up(&[0, 1, 4], &[12]),     // 2
        Script::Silent,            // 3: times out
        Script::Refuse {
            try_ultrapeers: vec![5],
        }, // 4: 503, points at 5
        up(&[6, 7, 8], &[13]),     // 5: only reachable through X-Try-Ultrapeers
        Script::Garbage,           // 6
        Script::EndlessHeaders,    // 7
        Script::Closed,            // 8: connection refused
        leaf(&[0]),                // 9
        leaf(&[0, 1]),             // 10
        leaf(&[1]),                // 11
        leaf(&[2]),                // 12
        leaf(&[5]),                // 13
    ]
}

fn check_overlay(snap: &Snapshot, addrs: &[SocketAddr]) {
    let expected_edges: BTreeSet<_> = [
        (0, 1),
        (0, 2),
        (0, 9),
        (0, 10),
        (1, 2),
        (1, 3),
        (1, 10),
        (1, 11),
        (2, 4),
        (2, 12),
        (5, 6),
        (5, 7),
        (5, 8),
        (5, 13),
    ]
    .iter()
    .map(|&(a, b)| edge(addrs[a], addrs[b]))
    .collect();
    assert_eq!(snap.edges, expected_edges);
    let expected_status = |i: usize| match i {
        0 | 1 | 2 | 5 => NodeStatus::Answered,
        3 => NodeStatus::Failed {
            outcome: Outcome::Timeout,
        },
        4 => NodeStatus::Refused { code: 503 },
        6 | 7 => NodeStatus::Failed {
            outcome: Outcome::ProtocolError,
        },
        8 => NodeStatus::Failed {
            outcome: Outcome::Unreachable,
        },
        _ => NodeStatus::NotContacted,
    };
    let nodes: BTreeMap<SocketAddr, (Role, NodeStatus)> = snap
        .nodes
        .iter()
        .map(|(a, n)| (*a, (n.role, n.status.clone())))
        .collect();
    let expected: BTreeMap<SocketAddr, (Role, NodeStatus)> = (0..14)
        .map(|i| {
            let role = if i <= 8 { Role::Ultrapeer } else { Role::Leaf };
            (addrs[i], (role, expected_status(i)))
        })
        .collect();
    assert_eq!(nodes, expected);
    assert_eq!(snap.unreachable, [3, 6, 7, 8].iter().map(|&i| addrs[i]).collect());
    assert_eq!(snap.contacted, 9);
    assert_eq!(snap.stop, StopReason::Exhausted);
    let agent = |i: usize| snap.nodes[&addrs[i]].user_agent.clone();
    assert_eq!(agent(0), Some(format!("Script/{}", addrs[0].ip())));
    assert_eq!(agent(4).as_deref(), Some("Busy/1"));
    assert_eq!(snap.nodes[&addrs[10]].reported_by, [addrs[0], addrs[1]].into());
    assert_eq!(snap.ultrapeer_edges().len(), 8);
    assert_eq!(snap.leaf_edges().len(), 6);
}

#[tokio::test]
async fn a_snapshot_equals_the_scripted_overlay_and_the_store_holds_it() {
    let scripts = overlay();
    let (addrs, listeners) = bind_all(7, scripts.len()).await;
    let seen = spawn_servents(&addrs, listeners, &scripts);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    let (recorder, recording) = Recording::begin(&db, "gnutella_crawl", "test").unwrap();
    let config = TopologyConfig {
        recrawl_interval: Duration::ZERO,
        ..TopologyConfig::default()
    };
    let snap = crawl_topology(&engine(recorder), &addrs[..1], &config).await;
    check_overlay(&snap, &addrs);
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.sent_after_reply.is_empty(),
            "the crawler never completes the handshake"
        );
        assert!(seen.contacts.values().all(|c| c.len() == 1), "each address once");
        assert!(
            seen.contacts.keys().all(|a| addrs[..9].contains(a)),
            "leaves are not contacted"
        );
    }

    let crawl = recording.crawl().id;
    let store_path = recording.store().path().to_owned();
    recording.finish(CrawlEnd::Finished).await.unwrap();
    let store = onionlab_crawler::store::Store::open(store_path).unwrap();
    let visits = store.visits(crawl).unwrap();
    assert_eq!(visits.len(), 9);
    assert!(visits.iter().all(|v| v.probe == ProbeKind::GnutellaCrawl));
    let by_addr: BTreeMap<SocketAddr, _> = visits.iter().map(|v| (v.addr.unwrap(), v)).collect();
    let ok = by_addr[&addrs[0]];
    assert_eq!(ok.outcome, Outcome::Ok);
    assert_eq!(
        ok.client.as_deref(),
        Some(format!("Script/{}", addrs[0].ip()).as_bytes())
    );
    assert!(ok.raw.as_ref().unwrap().starts_with(b"GNUTELLA/0.6 200 OK\r\n"));
    assert!(ok.raw.as_ref().unwrap().ends_with(b"\r\n\r\n"));
    let refused = by_addr[&addrs[4]];
    assert_eq!(refused.outcome, Outcome::RemoteError);
    assert!(refused.raw.as_ref().unwrap().starts_with(b"GNUTELLA/0.6 503 Busy"));
    assert_eq!(by_addr[&addrs[3]].outcome, Outcome::Timeout);
    assert_eq!(by_addr[&addrs[7]].outcome, Outcome::ProtocolError);
    assert!(by_addr[&addrs[7]].raw.as_ref().unwrap().len() <= (32 << 10) + 4096);
    assert_eq!(by_addr[&addrs[8]].outcome, Outcome::Unreachable);

    // The sightings rebuild the same edges; the refusal's suggestion is a GnutellaTry one.
    let sightings = store.sightings(crawl).unwrap();
    let edges: BTreeSet<_> = sightings
        .iter()
        .filter(|s| matches!(s.source_kind, SourceKind::GnutellaPeer | SourceKind::GnutellaLeaf))
        .map(|s| edge(s.source.parse().unwrap(), s.addr))
        .collect();
    assert_eq!(edges, snap.edges);
    let tries: Vec<_> = sightings
        .iter()
        .filter(|s| s.source_kind == SourceKind::GnutellaTry)
        .map(|s| (s.source.clone(), s.addr))
        .collect();
    assert_eq!(tries, vec![(addrs[4].to_string(), addrs[5])]);
    let leaves: BTreeSet<SocketAddr> = sightings
        .iter()
        .filter(|s| s.source_kind == SourceKind::GnutellaLeaf)
        .map(|s| s.addr)
        .collect();
    assert_eq!(leaves, snap.leaves());
}

#[tokio::test]
async fn leaves_are_contacted_when_asked_and_recrawls_wait_their_interval() {
    let scripts = vec![
        Script::Answer {
            ultrapeer: true,
            peers: vec![],
            leaves: vec![1, 2],
        },
        Script::Answer {
            ultrapeer: false,
            peers: vec![0, 3],
            leaves: vec![],
        },
        Script::Silent,
        Script::Answer {
            ultrapeer: true,
            peers: vec![],
            leaves: vec![1],
        },
    ];
    let (addrs, listeners) = bind_all(8, scripts.len()).await;
    let seen = spawn_servents(&addrs, listeners, &scripts);
    let recrawl = Duration::from_millis(300);
    let config = TopologyConfig {
        frontier: FrontierRules {
            contact_leaves: true,
            ..FrontierRules::default()
        },
        recrawl_interval: recrawl,
        ..TopologyConfig::default()
    };
    let mut crawler = TopologyCrawler::new(engine(Recorder::discard()), config);
    let first = crawler.snapshot(&addrs[..1]).await;
    assert_eq!(first.contacted, 4);
    assert_eq!(first.role(addrs[1]), Role::Leaf);
    assert_eq!(
        first.role(addrs[2]),
        Role::Leaf,
        "a silent leaf keeps its reported role"
    );
    assert_eq!(first.role(addrs[3]), Role::Ultrapeer);
    assert_eq!(first.leaves(), [addrs[1], addrs[2]].into());
    let expected: BTreeSet<_> = [(0, 1), (0, 2), (1, 3)]
        .iter()
        .map(|&(a, b)| edge(addrs[a], addrs[b]))
        .collect();
    assert_eq!(first.edges, expected);
    assert_eq!(
        first.leaf_edges(),
        [(addrs[0], addrs[1]), (addrs[0], addrs[2]), (addrs[3], addrs[1])].into()
    );

    let second = crawler.snapshot(&addrs[..1]).await;
    assert_eq!(second.edges, first.edges);
    let seen = seen.lock().unwrap();
    for a in [addrs[0], addrs[1], addrs[3]] {
        let c = &seen.contacts[&a];
        assert_eq!(c.len(), 2, "{a} once per snapshot");
        assert!(c[1] - c[0] >= recrawl, "{a} recrawled after {:?}", c[1] - c[0]);
    }
    let churn = churn(&[first, second]).unwrap();
    assert!(churn.sessions.iter().any(|s| s.peer == addrs[0] && s.right_censored));
    assert!(
        churn.sessions.iter().all(|s| s.peer != addrs[2]),
        "the silent leaf never was up"
    );
}

// ---- The content probe ----

const GOOD: &[u8] = b"the genuine file, byte for byte\n";
const DECOY: &[u8] = b"noise that pretends to be a song";

fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

fn result(index: u32, name: &str, size: usize, hash: [u8; 20]) -> HitResult {
    HitResult {
        file_index: index,
        file_size: size as u32,
        name: name.as_bytes().to_vec(),
        extensions: format!("urn:sha1:{}", InfoHash(hash).to_base32()).into_bytes(),
    }
}

fn query_hit(guid: Guid, responder: SocketAddr, results: Vec<HitResult>, servent: u8) -> Vec<u8> {
    let SocketAddr::V4(v4) = responder else {
        panic!("IPv4 only")
    };
    Message {
        guid,
        ttl: 3,
        hops: 1,
        payload: Payload::QueryHit(QueryHit {
            port: v4.port(),
            ip: *v4.ip(),
            speed: 1000,
            results,
            trailer: b"TEST\x00".to_vec(),
            servent_id: Guid([servent; 16]),
        }),
    }
    .encode()
    .unwrap()
}

/// An HTTP server answering `GET path` from `files` (404 otherwise), for a few connections.
async fn spawn_http(ip: Ipv4Addr, files: BTreeMap<String, Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                match timeout(STEP, s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let response = match files.get(&path) {
                Some(body) => {
                    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            };
            let _ = s.write_all(&response).await;
        }
    });
    addr
}

/// What the scripted ultrapeer saw of the leaf.
#[derive(Default, Debug)]
struct LeafSeen {
    hello_ultrapeer: Option<String>,
    deflate_offered: bool,
    pong_for_our_ping: bool,
    query: Option<(Vec<u8>, u8, bool)>,
    bye: bool,
}

/// An ultrapeer that accepts one leaf, pings it, and answers its Query with `hits` (wire bytes
/// built from the Query's GUID), plus a QueryHit for another GUID that must be ignored.
async fn spawn_ultrapeer(
    ip: Ipv4Addr,
    hits: impl Fn(Guid) -> Vec<Vec<u8>> + Send + 'static,
) -> (SocketAddr, Arc<Mutex<LeafSeen>>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(LeafSeen::default()));
    let out = seen.clone();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let Some((hello, _)) = read_block(&mut s).await else {
            return;
        };
        {
            let mut seen = seen.lock().unwrap();
            seen.hello_ultrapeer = hello.handshake.headers.get("X-Ultrapeer").map(str::to_owned);
            seen.deflate_offered = hello.handshake.headers.accepts_deflate();
        }
        let reply = b"GNUTELLA/0.6 200 OK\r\nUser-Agent: ScriptUP/1.0\r\nX-Ultrapeer: True\r\n\r\n";
        s.write_all(reply).await.unwrap();
        let Some((third, rest)) = read_block(&mut s).await else {
            return;
        };
        assert_eq!(third.handshake.status(), Some(200));
        let ping_guid = Guid([7; 16]);
        let ping = Message {
            guid: ping_guid,
            ttl: 1,
            hops: 0,
            payload: Payload::Ping { extensions: Vec::new() },
        };
        s.write_all(&ping.encode().unwrap()).await.unwrap();
        let mut dec = MessageDecoder::new();
        dec.feed(&rest);
        let mut buf = [0u8; 4096];
        for _ in 0..100 {
            while let Ok(Some(m)) = dec.next_message() {
                let m = m.message;
                match m.payload {
                    Payload::Pong(_) => seen.lock().unwrap().pong_for_our_ping = m.guid == ping_guid && m.ttl == 1,
                    Payload::Query(q) => {
                        seen.lock().unwrap().query = Some((q.criteria.clone(), m.ttl, q.firewalled()));
                        let mut wire = query_hit(Guid([9; 16]), addr, vec![result(1, "other", 1, [1; 20])], 9);
                        for h in hits(m.guid) {
                            wire.extend_from_slice(&h);
                        }
                        s.write_all(&wire).await.unwrap();
                    }
                    Payload::Bye(_) => {
                        seen.lock().unwrap().bye = true;
                        return;
                    }
                    _ => {}
                }
            }
            match timeout(STEP, s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => dec.feed(&buf[..n]),
                _ => return,
            }
        }
    });
    (addr, out)
}

#[tokio::test]
async fn the_content_probe_collects_hits_and_catches_the_decoy() {
    let good_urn = format!("/uri-res/N2R?urn:sha1:{}", InfoHash(sha1(GOOD)).to_base32());
    let song = b"the real song everybody wants!!!";
    let decoy_urn = format!("/uri-res/N2R?urn:sha1:{}", InfoHash(sha1(song)).to_base32());
    let honest = spawn_http(Ipv4Addr::new(127, 0, 9, 2), [(good_urn, GOOD.to_vec())].into()).await;
    let polluter = spawn_http(Ipv4Addr::new(127, 0, 10, 2), [(decoy_urn, DECOY.to_vec())].into()).await;
    let (up, seen) = spawn_ultrapeer(Ipv4Addr::new(127, 0, 9, 1), move |guid| {
        vec![
            query_hit(guid, honest, vec![result(1, "good.txt", GOOD.len(), sha1(GOOD))], 1),
            query_hit(guid, polluter, vec![result(5, "song.mp3", song.len(), sha1(song))], 2),
        ]
    })
    .await;

    let (recorder, mut rows) = Recorder::channel(1024);
    let engine = engine(recorder);
    let cfg = QueryConfig {
        wait: Duration::from_millis(400),
        ttl: 2,
        ..QueryConfig::new("song")
    };
    let outcome = query(&engine, up, &cfg).await.unwrap();
    assert_eq!(outcome.user_agent.as_deref(), Some("ScriptUP/1.0"));
    assert_eq!(outcome.hits.len(), 2, "the other GUID's hit is dropped");
    assert_eq!(outcome.pings_answered, 1);
    assert_eq!(outcome.end, QueryEnd::Waited);
    let responders: Vec<SocketAddr> = outcome.hits.iter().map(|h| h.responder()).collect();
    assert_eq!(responders, vec![honest, polluter]);
    assert_eq!(outcome.hits[0].hit.servent_id, Guid([1; 16]));

    let checks = [
        verify_hit(
            &engine,
            honest,
            &outcome.hits[0].hit.results[0],
            &DownloadConfig::default(),
        )
        .await
        .unwrap(),
        verify_hit(
            &engine,
            polluter,
            &outcome.hits[1].hit.results[0],
            &DownloadConfig::default(),
        )
        .await
        .unwrap(),
    ];
    assert!(checks[0].genuine());
    assert!(!checks[1].genuine());
    assert_eq!(
        (checks[1].served_size, checks[1].served_sha1),
        (DECOY.len() as u64, sha1(DECOY))
    );
    // A file the server does not have is a remote error, not a check.
    let missing = result(3, "gone", 4, [3; 20]);
    assert!(matches!(
        verify_hit(&engine, honest, &missing, &DownloadConfig::default()).await,
        Err(Error::Probe(e)) if e.outcome == Outcome::RemoteError
    ));

    let served: Vec<_> = checks.iter().map(|c| c.served_file()).collect();
    let report = pollution_report(&outcome.analysis_hits(), &served, &PollutionConfig::default());
    let score = report.score(&[polluter].into());
    assert_eq!((score.precision(), score.recall()), (Some(1.0), Some(1.0)));

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.hello_ultrapeer.as_deref(), Some("False"));
        assert!(!seen.deflate_offered);
        assert!(seen.pong_for_our_ping);
        assert_eq!(seen.query, Some((b"song".to_vec(), 2, true)));
        assert!(seen.bye);
    }

    drop(engine);
    let mut visits = Vec::new();
    let mut hit_sightings = Vec::new();
    while let Ok(row) = rows.try_recv() {
        match row {
            Observation::Visit(v) => visits.push((v.probe, v.outcome, v.raw.map_or(0, |r| r.len()))),
            Observation::Sighting(s) if s.source_kind == SourceKind::GnutellaHit => hit_sightings.push(s.addr),
            _ => {}
        }
    }
    assert_eq!(visits.len(), 4);
    assert_eq!((visits[0].0, visits[0].1), (ProbeKind::GnutellaQuery, Outcome::Ok));
    assert!(visits[0].2 > 0, "the hits are the query visit's raw");
    assert_eq!(visits[1].1, Outcome::Ok);
    assert_eq!(visits[2].1, Outcome::ProtocolError, "the decoy's visit");
    assert!(visits[1..].iter().all(|v| v.0 == ProbeKind::GnutellaDownload));
    assert_eq!(hit_sightings, vec![honest, polluter]);
}

/// An ultrapeer that accepts the leaf, then sends `after` and waits.
async fn spawn_hostile_ultrapeer(ip: Ipv4Addr, status: &'static [u8], after: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        if read_block(&mut s).await.is_none() {
            return;
        }
        let _ = s.write_all(status).await;
        let _ = read_block(&mut s).await;
        let _ = s.write_all(after).await;
        let mut sink = [0u8; 1024];
        for _ in 0..64 {
            match timeout(STEP, s.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
    });
    addr
}

#[tokio::test]
async fn hostile_ultrapeers_end_the_content_probe_cleanly() {
    let engine = engine(Recorder::discard());
    let cfg = QueryConfig {
        wait: Duration::from_millis(300),
        ..QueryConfig::new("x")
    };
    // A descriptor header announcing 4 GiB: refused before any payload is buffered.
    let mut huge = vec![0u8; 23];
    huge[16] = 0x81;
    huge[19..].copy_from_slice(&u32::MAX.to_le_bytes());
    let huge: &'static [u8] = huge.leak();
    let ok = b"GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\n\r\n";
    let addr = spawn_hostile_ultrapeer(Ipv4Addr::new(127, 0, 11, 1), ok, huge).await;
    let e = query(&engine, addr, &cfg).await.unwrap_err();
    assert!(
        matches!(&e, Error::Probe(p) if p.outcome == Outcome::ProtocolError),
        "{e}"
    );

    let busy = b"GNUTELLA/0.6 503 Full\r\n\r\n";
    let addr = spawn_hostile_ultrapeer(Ipv4Addr::new(127, 0, 11, 2), busy, b"").await;
    let e = query(&engine, addr, &cfg).await.unwrap_err();
    assert!(
        matches!(&e, Error::Probe(p) if p.outcome == Outcome::RemoteError),
        "{e}"
    );

    let deflating = b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n";
    let addr = spawn_hostile_ultrapeer(Ipv4Addr::new(127, 0, 11, 3), deflating, b"").await;
    let e = query(&engine, addr, &cfg).await.unwrap_err();
    assert!(
        matches!(&e, Error::Probe(p) if p.outcome == Outcome::ProtocolError),
        "{e}"
    );

    // A wait the engine's timeout cannot hold is refused before anything is sent.
    let long = QueryConfig {
        wait: Duration::from_secs(60),
        ..QueryConfig::new("x")
    };
    assert!(matches!(query(&engine, addr, &long).await, Err(Error::Unusable(_))));
}
