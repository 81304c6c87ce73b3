//! The HTTP/1.1 client relays and clients use to reach directory authorities.
//!
//! Plain HTTP is enough: everything fetched is signed (consensus) or signed by the sender
//! (descriptors). Each request has an overall time limit and each response a size limit.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;

/// Limit for one request, from connect to the last body byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a directory request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Could not connect.
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    /// HTTP-level failure.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The body was larger than allowed or broke off.
    #[error("response body: {0}")]
    Body(String),
    /// No answer in time.
    #[error("authority did not answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
}

/// Sends one request and returns the status and body (at most `max_body` bytes).
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
    max_body: usize,
) -> Result<(StatusCode, Bytes), HttpError> {
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Full::new(body))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| HttpError::Body(e.to_string()))?
            .to_bytes();
        conn.abort();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| HttpError::Timeout)?
}

/// GET `path`.
pub async fn get(addr: SocketAddr, path: &str, max_body: usize) -> Result<(StatusCode, Bytes), HttpError> {
    request(addr, Method::GET, path, Bytes::new(), max_body).await
}

/// POST `body` to `path`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
    max_body: usize,
) -> Result<(StatusCode, Bytes), HttpError> {
    request(addr, Method::POST, path, Bytes::from(body), max_body).await
}
