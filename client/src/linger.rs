//! Closing a proxy connection after an error answer without losing the answer.
//!
//! Closing a socket whose input was not all read makes the kernel send RST, and a peer that
//! receives it may drop the answer just written (a SOCKS request refused after its first
//! bytes, an HTTP request head too large). Like HTTP servers' "lingering close", this shuts
//! down our sending side and discards what the peer still sends, for at most
//! [`LINGER_TIME`] and [`LINGER_BYTES`].

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for the peer to close.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes discarded.
pub const LINGER_BYTES: usize = 64 * 1024;

/// Shuts down `sock` after an error answer, discarding late input (bounded).
pub async fn linger_close(mut sock: TcpStream) {
    let _ = sock.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
