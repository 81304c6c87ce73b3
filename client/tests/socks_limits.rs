//! The SOCKS port against clients that misbehave: bounded time, clear refusals.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use onionlab_client::{Client, ClientConfig};
use onionlab_link::config::AuthorityEntry;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn client() -> (onionlab_client::ClientHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // No authority answers: SOCKS negotiation does not need one.
    let auth = AuthorityEntry {
        address: "127.0.0.1:9".parse().unwrap(),
        identity: "11".repeat(32),
    };
    let mut cfg = ClientConfig::new(dir.path().to_owned(), vec![auth]);
    cfg.socks_listen = "127.0.0.1:0".parse().unwrap();
    (Client::start(cfg).await.unwrap(), dir)
}

#[tokio::test(start_paused = true)]
async fn a_greeting_that_never_completes_is_closed() {
    let (c, _dir) = client().await;
    let mut s = TcpStream::connect(c.socks_addr).await.unwrap();
    s.write_all(&[5]).await.unwrap(); // half a greeting, then silence
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(11), s.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the proxy must hang up within its 10 s negotiation limit"
    );
}

#[tokio::test]
async fn non_socks_bytes_are_refused_at_once() {
    let (c, _dir) = client().await;
    let mut s = TcpStream::connect(c.socks_addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "an HTTP request on the SOCKS port is refused and the connection closed"
    );
}

#[test]
fn socks_listener_must_be_loopback() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthorityEntry {
        address: "127.0.0.1:9".parse().unwrap(),
        identity: "11".repeat(32),
    };
    let mut cfg = ClientConfig::new(dir.path().to_owned(), vec![auth]);
    cfg.socks_listen = "0.0.0.0:0".parse().unwrap();
    let err = rt.block_on(Client::start(cfg)).err().expect("refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}
