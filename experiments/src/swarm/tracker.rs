//! A minimal BEP 3 HTTP tracker, run in-process for testbed swarms: `GET /announce` only,
//! compact peers (BEP 23), `complete`/`incomplete` counts, a `failure reason` for an announce
//! it cannot read. The announce parameters are read by the crawler's
//! [`AnnounceRequest::parse_target`] and the reply written by its [`AnnounceResponse::encode`];
//! [`TrackerState`] is the sans-I/O swarm table, the rest a small tokio server.
//!
//! A peer is listed under the source address of its announce, or under the BEP 3 `ip`
//! parameter when it gives one (testbed peers announce from 127.0.0.1 but listen on their own
//! 127.x.y.z). Requests are read with a size limit and a timeout; at most
//! [`TrackerConfig::max_connections`] are served at once; peers that have not announced for
//! three intervals are forgotten, and a swarm holds at most [`TrackerConfig::max_peers`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::tracker::http::{AnnounceRequest, AnnounceResponse, Failure, Peer, PeerAddr, percent_decode};
use onionlab_crawler::tracker::{Event, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// How the tracker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The `interval` it asks for.
    pub interval: Duration,
    /// Most peers in one reply (also the default `numwant`... capped at this).
    pub max_numwant: u32,
    /// Most peers remembered per swarm.
    pub max_peers: usize,
    /// Requests served at once.
    pub max_connections: usize,
    /// Deadline to read a request.
    pub timeout: Duration,
    /// Largest request head accepted.
    pub max_request: usize,
}

impl Default for TrackerConfig {
    /// 127.0.0.1 on any port, a 30 s interval, 200 peers a reply, 10,000 per swarm, 256
    /// connections, 5 s and 8 KiB per request.
    fn default() -> Self {
        TrackerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            interval: Duration::from_secs(30),
            max_numwant: 200,
            max_peers: 10_000,
            max_connections: 256,
            timeout: Duration::from_secs(5),
            max_request: 8 << 10,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: SocketAddr,
    seed: bool,
    seen: Instant,
}

/// Who is in which swarm, sans I/O.
#[derive(Debug, Default)]
pub struct TrackerState {
    swarms: BTreeMap<InfoHash, BTreeMap<PeerId, Entry>>,
}

impl TrackerState {
    /// Records `req` from a peer at `ip` and answers it: the other peers (at most `max_numwant`
    /// or the `numwant` asked for), seeds and leechers counted.
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        ip: IpAddr,
        now: Instant,
        cfg: &TrackerConfig,
    ) -> AnnounceResponse {
        let swarm = self.swarms.entry(req.info_hash).or_default();
        let stale = cfg.interval * 3;
        swarm.retain(|_, e| now.saturating_duration_since(e.seen) < stale);
        if req.event == Event::Stopped {
            swarm.remove(&req.peer_id);
        } else if swarm.len() < cfg.max_peers || swarm.contains_key(&req.peer_id) {
            swarm.insert(
                req.peer_id,
                Entry {
                    addr: SocketAddr::new(ip, req.port),
                    seed: req.left == 0,
                    seen: now,
                },
            );
        }
        let want = req.numwant.unwrap_or(cfg.max_numwant).min(cfg.max_numwant) as usize;
        let peers = swarm
            .iter()
            .filter(|(id, _)| **id != req.peer_id)
            .take(want)
            .map(|(_, e)| Peer {
                addr: PeerAddr::Ip(e.addr),
                peer_id: None,
            })
            .collect();
        let seeds = swarm.values().filter(|e| e.seed).count() as u64;
        AnnounceResponse {
            interval: u32::try_from(cfg.interval.as_secs()).unwrap_or(u32::MAX).max(1),
            complete: Some(seeds),
            incomplete: Some(swarm.len() as u64 - seeds),
            peers,
            ..AnnounceResponse::default()
        }
    }

    /// Peers listed in the swarm of `info_hash`.
    pub fn peers(&self, info_hash: &InfoHash) -> usize {
        self.swarms.get(info_hash).map_or(0, BTreeMap::len)
    }
}

/// A running tracker; stops when dropped.
#[derive(Debug)]
pub struct Tracker {
    addr: SocketAddr,
    url: String,
    state: Arc<Mutex<TrackerState>>,
    task: JoinHandle<()>,
}

impl Tracker {
    /// Binds `cfg.listen` and serves until dropped.
    pub async fn start(cfg: TrackerConfig) -> std::io::Result<Tracker> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(TrackerState::default()));
        let shared = state.clone();
        let permits = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        let task = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, from)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, from, &state, &cfg).await {
                        tracing::debug!(%from, "tracker request: {e}");
                    }
                    drop(permit);
                });
            }
        });
        Ok(Tracker {
            addr,
            url: format!("http://{addr}/announce"),
            state,
            task,
        })
    }

    /// The announce URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Peers listed in the swarm of `info_hash`.
    pub fn peers(&self, info_hash: &InfoHash) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).peers(info_hash)
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head (bounded in size and time) and answers it.
async fn serve(
    mut stream: TcpStream,
    from: SocketAddr,
    state: &Mutex<TrackerState>,
    cfg: &TrackerConfig,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() > cfg.max_request {
                return Err(std::io::Error::other("request head over the limit"));
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    tokio::time::timeout(cfg.timeout, read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, body) = if method != "GET" || !target.starts_with("/announce") {
        ("404 Not Found", failure("only GET /announce is served"))
    } else {
        match AnnounceRequest::parse_target(target) {
            Err(e) => ("200 OK", failure(&e.to_string())),
            Ok(req) => {
                let ip = query_ip(target).unwrap_or(from.ip());
                let reply = state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .announce(&req, ip, Instant::now(), cfg);
                ("200 OK", reply.encode())
            }
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    tokio::time::timeout(cfg.timeout, stream.write_all(&out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

fn failure(reason: &str) -> Vec<u8> {
    Failure {
        reason: reason.as_bytes().to_vec(),
        deviations: Vec::new(),
    }
    .encode()
}

/// The BEP 3 `ip` parameter, when it is an IP address.
fn query_ip(target: &str) -> Option<IpAddr> {
    let query = target.split_once('?')?.1;
    let raw = query.split('&').find_map(|p| p.strip_prefix("ip="))?;
    String::from_utf8(percent_decode(raw, false)?).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use onionlab_crawler::tracker::http::{Reply, announce_url};

    fn req(id: u8, left: u64, event: Event) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([7; 20]),
            peer_id: [id; 20],
            port: 6000 + u16::from(id),
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            numwant: None,
            key: None,
            tracker_id: None,
        }
    }

    #[test]
    fn the_swarm_table_lists_the_others() {
        let cfg = TrackerConfig::default();
        let mut t = TrackerState::default();
        let now = Instant::now();
        let ip: IpAddr = "127.0.5.1".parse().unwrap();
        let r = t.announce(&req(1, 0, Event::Started), ip, now, &cfg);
        assert!(r.peers.is_empty());
        let r = t.announce(&req(2, 10, Event::Started), ip, now, &cfg);
        assert_eq!(
            r.peers,
            vec![Peer {
                addr: PeerAddr::Ip("127.0.5.1:6001".parse().unwrap()),
                peer_id: None
            }]
        );
        assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
        t.announce(&req(1, 0, Event::Stopped), ip, now, &cfg);
        assert_eq!(t.peers(&InfoHash([7; 20])), 1);
        // Silent for three intervals: forgotten.
        let r = t.announce(&req(3, 10, Event::None), ip, now + cfg.interval * 3, &cfg);
        assert!(r.peers.is_empty() && t.peers(&InfoHash([7; 20])) == 1);
    }

    #[tokio::test]
    async fn it_answers_announces_over_http() {
        let tracker = Tracker::start(TrackerConfig::default()).await.unwrap();
        let engine = onionlab_crawler::engine::Engine::new(
            onionlab_crawler::engine::EngineConfig {
                per_ip_interval: Duration::ZERO,
                ..Default::default()
            },
            onionlab_crawler::engine::Recorder::discard(),
        );
        let http = onionlab_crawler::probe::http::HttpConfig::default();
        let url = format!("{}?ip=127.0.6.1", tracker.url());
        onionlab_crawler::probe::http_tracker::announce(&engine, &http, &url, &req(1, 0, Event::Started))
            .await
            .unwrap();
        let a =
            onionlab_crawler::probe::http_tracker::announce(&engine, &http, tracker.url(), &req(2, 5, Event::Started))
                .await
                .unwrap();
        assert_eq!(a.peers.len(), 1);
        assert_eq!(a.peers[0].addr, PeerAddr::Ip("127.0.6.1:6001".parse().unwrap()));
        assert_eq!((a.seeders, a.leechers), (Some(1), Some(1)));
        // A broken announce gets a failure reason.
        let full = announce_url(tracker.url(), &req(3, 5, Event::None)).unwrap();
        let broken = full.replace("port=6003", "port=x");
        let url = onionlab_crawler::probe::http::HttpUrl::parse(&broken).unwrap();
        let got = onionlab_crawler::probe::http::get(tracker.addr(), &url, &http)
            .await
            .unwrap();
        assert!(
            matches!(AnnounceResponse::parse(&got.body), Ok(Reply::Failure(f)) if String::from_utf8_lossy(&f.reason).contains("port"))
        );
    }
}
