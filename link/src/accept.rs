//! Binding and the accept loop every listening daemon uses: each connection on its own task, and a failed
//! accept (out of file descriptors, say) logged and retried after a pause instead of spinning.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A port that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the system said.
    pub source: std::io::Error,
}

/// Binds `addr` and returns the listener with the address actually bound (port 0 resolved).
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), BindError> {
    let err = |source| BindError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    Ok((listener, bound))
}

/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections forever, handing each (with the peer's address) to `handle` on a new
/// task. `what` names the listener in logs.
pub async fn accept_each<F, Fut>(listener: TcpListener, what: &'static str, mut handle: F)
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                tokio::spawn(handle(sock, peer));
            }
            Err(e) => {
                tracing::warn!("{what}: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
