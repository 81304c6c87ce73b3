//! What the proxy front ends (SOCKS, HTTP CONNECT) ask of an exit: open a stream to a
//! destination, or resolve a name. Both front ends share this, so they retry and fail alike.
//!
//! - A request that fails because of its circuit (closed, timed out) or its exit (policy,
//!   resolution, resources) is retried once on a fresh circuit; a refusal by the destination
//!   is not retried.
//! - Failures are classified once, as a [`FailureKind`]; each front end turns that into its own
//!   answer (a SOCKS reply code, an HTTP status).
//! - Names go to the exit unresolved; this process never resolves them.

use crate::pool::{CircuitPool, IsolationKey, PoolError};
use crate::stats::ClientStats;
use onionlab_link::origin::{CircuitHandle, StreamError};
use onionlab_proto::path::PathError;
use onionlab_proto::relay_msg::{EndReason, ResolvedAnswer, StreamId, Target};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;

/// Why a request to an exit failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No circuit could be had.
    #[error("no circuit: {0}")]
    NoCircuit(#[from] PoolError),
    /// The stream (or RESOLVE) failed on its circuit.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The exit answered RESOLVED without an address.
    #[error("the exit could not resolve the name")]
    NotResolved,
}

/// What went wrong, in the terms both front ends answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An exit policy forbids the destination (SOCKS 2, HTTP 403).
    NotAllowed,
    /// No circuit, or it broke (SOCKS 3, HTTP 502).
    NetworkUnreachable,
    /// The name did not resolve (SOCKS 4, HTTP 404).
    HostUnreachable,
    /// The destination refused the connection (SOCKS 5, HTTP 502).
    Refused,
    /// No answer in time (SOCKS 6, HTTP 504).
    Timeout,
    /// Anything else (SOCKS 1, HTTP 502).
    Other,
}

impl RequestError {
    /// The classification the front ends answer with.
    pub fn kind(&self) -> FailureKind {
        match self {
            RequestError::NoCircuit(PoolError::Path(PathError::NoExit)) => FailureKind::NotAllowed,
            RequestError::NoCircuit(_) => FailureKind::NetworkUnreachable,
            RequestError::Stream(StreamError::Timeout) => FailureKind::Timeout,
            RequestError::Stream(StreamError::CircuitClosed) => FailureKind::NetworkUnreachable,
            RequestError::Stream(StreamError::End(r)) => match r {
                EndReason::ExitPolicy => FailureKind::NotAllowed,
                EndReason::ResolveFailed => FailureKind::HostUnreachable,
                EndReason::ConnectRefused => FailureKind::Refused,
                EndReason::Timeout => FailureKind::Timeout,
                EndReason::NoRoute => FailureKind::NetworkUnreachable,
                _ => FailureKind::Other,
            },
            RequestError::NotResolved => FailureKind::HostUnreachable,
        }
    }
}

/// Whether a failure is worth a second try on a fresh circuit.
fn retryable(e: &StreamError) -> bool {
    match e {
        StreamError::CircuitClosed | StreamError::Timeout => true,
        StreamError::End(r) => !matches!(r, EndReason::ConnectRefused | EndReason::Done),
    }
}

/// A stream the exit connected, waiting for the application's socket.
pub struct OpenStream {
    circuit: Arc<CircuitHandle>,
    id: StreamId,
}

impl OpenStream {
    /// Starts carrying `sock` (after the front end told the application it is connected).
    pub async fn attach(self, sock: TcpStream) {
        self.circuit.attach(self.id, sock).await;
    }

    /// Tells the exit to drop the stream (the application went away).
    pub async fn abandon(self) {
        self.circuit.abandon(self.id).await;
    }
}

/// The exit-facing side of the proxy, shared by its front ends.
#[derive(Clone)]
pub struct ExitRequests {
    pool: Arc<CircuitPool>,
    stream_timeout: Duration,
}

impl ExitRequests {
    /// Requests through `pool`, each waiting at most `stream_timeout` for the exit's answer.
    pub fn new(pool: Arc<CircuitPool>, stream_timeout: Duration) -> Self {
        ExitRequests { pool, stream_timeout }
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.pool.stats
    }

    /// Opens a stream to `target` on a circuit of group `isolation`.
    pub async fn open_stream(&self, isolation: &IsolationKey, target: &Target) -> Result<OpenStream, RequestError> {
        let wait = self.stream_timeout;
        let (circuit, id) = self
            .with_retry(isolation, Some(target), |c| {
                let target = target.clone();
                async move { c.begin(target, wait).await }
            })
            .await?;
        ClientStats::bump(&self.stats().streams_opened);
        Ok(OpenStream { circuit, id })
    }

    /// Resolves `name` at an exit of group `isolation`: its first IPv4 address, else its
    /// first IPv6 address (what Tor answers to SOCKS RESOLVE).
    pub async fn resolve(&self, isolation: &IsolationKey, name: &str) -> Result<IpAddr, RequestError> {
        ClientStats::bump(&self.stats().resolves);
        let wait = self.stream_timeout;
        let (_, answers) = self
            .with_retry(isolation, None, |c| {
                let name = name.to_owned();
                async move { c.resolve(name, wait).await }
            })
            .await?;
        let addrs = || {
            answers.iter().filter_map(|a| match a {
                ResolvedAnswer::Addr(ip, _) => Some(*ip),
                _ => None,
            })
        };
        if let Some(ip) = addrs().find(IpAddr::is_ipv4).or_else(|| addrs().next()) {
            return Ok(ip);
        }
        ClientStats::bump(&self.stats().stream_failures);
        Err(RequestError::NotResolved)
    }

    /// Runs `op` on a circuit for `target` of group `isolation`, and once more on a fresh
    /// circuit if the failure may be the circuit's or the exit's.
    async fn with_retry<T, F, Fut>(
        &self,
        isolation: &IsolationKey,
        target: Option<&Target>,
        op: F,
    ) -> Result<(Arc<CircuitHandle>, T), RequestError>
    where
        F: Fn(Arc<CircuitHandle>) -> Fut,
        Fut: Future<Output = Result<T, StreamError>>,
    {
        let stats = self.stats();
        let mut attempt = 0;
        loop {
            let circuit = match self.pool.get(isolation, target, attempt > 0).await {
                Ok(c) => c,
                Err(e) => {
                    ClientStats::bump(&stats.stream_failures);
                    tracing::info!("no circuit for a stream: {e}");
                    return Err(e.into());
                }
            };
            match op(circuit.clone()).await {
                Ok(v) => return Ok((circuit, v)),
                Err(e) => {
                    tracing::debug!(circuit = circuit.id, attempt, "stream failed: {e}");
                    if attempt > 0 || !retryable(&e) {
                        ClientStats::bump(&stats.stream_failures);
                        return Err(e.into());
                    }
                    ClientStats::bump(&stats.stream_retries);
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_once() {
        let end = |r| RequestError::Stream(StreamError::End(r));
        assert_eq!(end(EndReason::ExitPolicy).kind(), FailureKind::NotAllowed);
        assert_eq!(
            RequestError::NoCircuit(PoolError::Path(PathError::NoExit)).kind(),
            FailureKind::NotAllowed
        );
        assert_eq!(
            RequestError::NoCircuit(PoolError::NoConsensus).kind(),
            FailureKind::NetworkUnreachable
        );
        assert_eq!(end(EndReason::ResolveFailed).kind(), FailureKind::HostUnreachable);
        assert_eq!(RequestError::NotResolved.kind(), FailureKind::HostUnreachable);
        assert_eq!(end(EndReason::ConnectRefused).kind(), FailureKind::Refused);
        assert_eq!(RequestError::Stream(StreamError::Timeout).kind(), FailureKind::Timeout);
        assert_eq!(end(EndReason::Internal).kind(), FailureKind::Other);
    }

    #[test]
    fn only_circuit_and_exit_failures_are_retried() {
        assert!(retryable(&StreamError::CircuitClosed));
        assert!(retryable(&StreamError::Timeout));
        assert!(retryable(&StreamError::End(EndReason::ExitPolicy)));
        assert!(retryable(&StreamError::End(EndReason::ResolveFailed)));
        assert!(!retryable(&StreamError::End(EndReason::ConnectRefused)));
    }
}
