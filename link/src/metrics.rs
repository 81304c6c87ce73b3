//! Prometheus text exposition (format 0.0.4) for the daemons' `/metrics`.
//!
//! Each daemon renders its counters into [`Exposition`] and serves it with [`serve`] on a
//! loopback address. Metrics count events; they never carry addresses, destinations or
//! credentials as labels.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A metrics page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    fn metric(&mut self, kind: &str, name: &str, help: &str, value: f64) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }

    /// A monotonically increasing count (the name should end in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.metric("counter", name, help, value as f64);
        self
    }

    /// A value that goes up and down.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.metric("gauge", name, help, value);
        self
    }

    /// The finished page.
    pub fn finish(self) -> String {
        self.text
    }
}

/// Why a metrics port was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Metrics are for the operator's machine only.
    #[error("metrics address {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    /// Binding failed.
    #[error(transparent)]
    Listen(#[from] crate::accept::BindError),
}

/// Binds `addr` (loopback only) and returns the listener and its address.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), MetricsError> {
    if !addr.ip().is_loopback() {
        return Err(MetricsError::NotLoopback(addr));
    }
    Ok(crate::accept::bind(addr).await?)
}

/// Serves `GET /metrics` with whatever `render` returns, until the listener fails.
pub async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    crate::accept::accept_each(listener, "metrics", |stream, _| {
        let render = render.clone();
        async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move {
                    let mut resp = if req.uri().path() == "/metrics" {
                        Response::new(Full::new(Bytes::from(render())))
                    } else {
                        let mut r = Response::new(Full::new(Bytes::from_static(b"see /metrics\n")));
                        *r.status_mut() = StatusCode::NOT_FOUND;
                        r
                    };
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let mut e = Exposition::new();
        e.counter("x_total", "Things.", 3).gauge("y", "Level.", 1.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n# HELP y Level.\n# TYPE y gauge\ny 1.5\n"
        );
    }

    #[tokio::test]
    async fn serves_on_loopback_only() {
        assert!(matches!(
            bind("0.0.0.0:0".parse().unwrap()).await,
            Err(MetricsError::NotLoopback(_))
        ));
        let (l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        tokio::spawn(serve(l, Arc::new(|| "a_total 1\n".to_owned())));
        let (status, body) = crate::dirhttp::get(addr, "/metrics", 1024).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"a_total 1\n"[..]));
    }
}
