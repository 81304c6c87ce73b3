//! The demo site: a small web site on loopback to browse through the onion network.
//!
//! | path | content |
//! |---|---|
//! | `/` | an index page with links |
//! | `/about.html` | what happens to a request on its way here |
//! | `/ip` | the address the request came from: the exit's, not the browser's |
//! | `/large.bin` | a large file (64 MiB by default) of deterministic bytes, to see throughput |
//! | `/large.bin.sha256` | its SHA-256 in hex |
//! | `/bytes/N` | N deterministic bytes (at most 1 GiB) |
//!
//! The bytes are a ChaCha20 keystream under a fixed key, so anyone can recompute them
//! ([`content_sha256`]) and a download can be checked end to end.

use bytes::Bytes;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Largest `/bytes/N`.
pub const MAX_BYTES: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

/// The deterministic content generator: `len` bytes of ChaCha20 keystream.
pub struct Content {
    cipher: ChaCha20,
    remaining: u64,
}

impl Content {
    /// The first `len` bytes.
    pub fn new(len: u64) -> Self {
        Content {
            cipher: ChaCha20::new(&[0x0a; 32].into(), &[0x1b; 12].into()),
            remaining: len,
        }
    }

    /// The next chunk (at most 64 KiB), or None at the end.
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.remaining == 0 {
            return None;
        }
        let n = self.remaining.min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; n];
        self.cipher.apply_keystream(&mut buf);
        self.remaining -= n as u64;
        Some(buf)
    }
}

/// SHA-256 of the first `len` bytes of content.
pub fn content_sha256(len: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut c = Content::new(len);
    while let Some(chunk) = c.next_chunk() {
        h.update(&chunk);
    }
    h.finalize().into()
}

impl Body for Content {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.next_chunk().map(|c| Ok(Frame::data(Bytes::from(c)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

type Resp = Response<BoxBody<Bytes, Infallible>>;

struct Site {
    large: u64,
    large_sha: OnceLock<String>,
}

fn page(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn data(len: u64) -> Resp {
    let mut r = Response::new(Content::new(len).boxed());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    r
}

const INDEX: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>onionlab demo site</title></head>
<body>
<h1>Welcome to the onionlab demo site</h1>
<p>If you are reading this through the testbed's SOCKS port, this page crossed three relays:
a guard, a middle and an exit. None of them saw both who you are and what you asked for.</p>
<ul>
<li><a href="/about.html">How the request got here</a></li>
<li><a href="/ip">The address this site sees</a> (the exit's, not yours)</li>
<li><a href="/large.bin">A large file</a> (<a href="/large.bin.sha256">SHA-256</a>) to watch throughput</li>
</ul>
</body></html>
"#;

const ABOUT: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>How the request got here</title></head>
<body>
<h1>How the request got here</h1>
<p>Your SOCKS client handed the hostname to the onionlab client, which never resolved it.
The client had already built a circuit: an ntor handshake with the guard, then EXTEND2
through the guard to a middle relay, then through both to an exit. Each cell of your request
was sealed with ChaCha20-Poly1305 for the exit and wrapped in one ChaCha20 layer per earlier
hop; each relay peeled one layer. The exit resolved the name, checked its exit policy and
connected here.</p>
</body></html>
"#;

async fn handle(req: Request<Incoming>, site: Arc<Site>, peer: SocketAddr) -> Result<Resp, Infallible> {
    let path = req.uri().path();
    Ok(match path {
        "/" | "/index.html" => page(StatusCode::OK, "text/html; charset=utf-8", INDEX.to_owned()),
        "/about.html" => page(StatusCode::OK, "text/html; charset=utf-8", ABOUT.to_owned()),
        "/ip" => page(StatusCode::OK, "text/plain", format!("{}\n", peer.ip())),
        "/large.bin" => data(site.large),
        "/large.bin.sha256" => {
            let site2 = site.clone();
            let hex = tokio::task::spawn_blocking(move || {
                site2
                    .large_sha
                    .get_or_init(|| hex::encode(content_sha256(site2.large)))
                    .clone()
            })
            .await
            .unwrap_or_default();
            page(StatusCode::OK, "text/plain", format!("{hex}  large.bin\n"))
        }
        p => match p.strip_prefix("/bytes/").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) if n <= MAX_BYTES => data(n),
            _ => page(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
    })
}

/// A running demo site; dropping it stops the server.
pub struct DemoSite {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Size of `/large.bin`.
    pub large: u64,
    task: JoinHandle<()>,
}

impl Drop for DemoSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoSite {
    /// Serves on `addr` with a `/large.bin` of `large` bytes.
    pub async fn start(addr: SocketAddr, large: u64) -> std::io::Result<DemoSite> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let site = Arc::new(Site {
            large,
            large_sha: OnceLock::new(),
        });
        let task = tokio::spawn(onionlab_link::accept::accept_each(
            listener,
            "demo site",
            move |stream, peer| {
                let site = site.clone();
                async move {
                    let service = service_fn(move |req| handle(req, site.clone(), peer));
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = conn.await;
                }
            },
        ));
        Ok(DemoSite { addr, large, task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_and_chunked() {
        let mut a = Content::new(100_000);
        let first = a.next_chunk().unwrap();
        assert_eq!(first.len(), CHUNK);
        assert_eq!(a.next_chunk().unwrap().len(), 100_000 - CHUNK);
        assert!(a.next_chunk().is_none());
        assert_eq!(Content::new(10).next_chunk().unwrap(), first[..10].to_vec());
        assert_eq!(content_sha256(0), <[u8; 32]>::from(Sha256::digest(b"")));
    }
}
