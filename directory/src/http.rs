//! The authority's HTTP API.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /onionlab/v1/descriptor` | 200 on acceptance; 400 with the reason for a malformed, badly signed or stale descriptor; 413 if larger than 8 KiB |
//! | `GET /onionlab/v1/consensus` | the signed consensus (binary), 503 before the first one |
//! | `GET /onionlab/v1/consensus.json` | the same for people, plus relays left out and why |
//! | `GET /onionlab/v1/authority` | this authority's identity fingerprint |
//! | `GET /onionlab/v1/vote/{period}` | this authority's signed vote for that period (for the other authorities) |
//! | `GET /onionlab/v1/signature/{period}` | its signature over its consensus for that period (identity, then signature) |
//! | `GET /onionlab/v1/bwfile/{bytes}` | bytes to download through a relay (the bandwidth scanner) |
//! | `GET /metrics` | Prometheus counters (descriptors accepted/refused, relays listed, ...) |
//!
//! Requests have a header-read timeout and bodies a size limit.

use crate::authority::Authority;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use onionlab_proto::consensus::SignedConsensus;
use onionlab_proto::descriptor::{MAX_DESCRIPTOR_LEN, RelayInfo};
use onionlab_proto::keys::{IdentityBytes, fingerprint};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Longest a whole request may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Serves the API until the listener fails.
pub async fn serve(listener: TcpListener, authority: Arc<Authority>) {
    onionlab_link::accept::accept_each(listener, "authority HTTP", |stream, _| {
        let authority = authority.clone();
        async move {
            let service = service_fn(move |req| handle(req, authority.clone()));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(120), conn).await;
        }
    })
    .await
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Incoming>, authority: Arc<Authority>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::POST, "/onionlab/v1/descriptor") => {
            let body = tokio::time::timeout(
                REQUEST_TIMEOUT,
                Limited::new(req.into_body(), MAX_DESCRIPTOR_LEN).collect(),
            )
            .await;
            match body {
                Err(_) => text(StatusCode::REQUEST_TIMEOUT, "descriptor upload too slow\n"),
                Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("descriptor larger than {MAX_DESCRIPTOR_LEN} bytes\n"),
                ),
                Ok(Err(e)) => text(StatusCode::BAD_REQUEST, format!("bad request body: {e}\n")),
                Ok(Ok(collected)) => match authority.submit(&collected.to_bytes()) {
                    Ok(()) => text(StatusCode::OK, "accepted\n"),
                    Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
                },
            }
        }
        (&Method::GET, "/onionlab/v1/consensus") => match authority.published() {
            Some(p) => text(StatusCode::OK, p.bytes.clone()),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "no consensus yet\n"),
        },
        (&Method::GET, "/onionlab/v1/consensus.json") => match authority.published() {
            Some(p) => {
                let mut r = text(StatusCode::OK, p.json.clone());
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                r
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, "no consensus yet\n"),
        },
        (&Method::GET, "/metrics") => text(StatusCode::OK, authority.metrics()),
        (&Method::GET, path) if path.starts_with("/onionlab/v1/vote/") => {
            match path["/onionlab/v1/vote/".len()..]
                .parse::<u64>()
                .ok()
                .and_then(|p| authority.vote(p))
            {
                Some(v) => text(StatusCode::OK, v),
                None => text(StatusCode::NOT_FOUND, "no vote for that period\n"),
            }
        }
        (&Method::GET, path) if path.starts_with("/onionlab/v1/signature/") => {
            match path["/onionlab/v1/signature/".len()..]
                .parse::<u64>()
                .ok()
                .and_then(|p| authority.signature(p))
            {
                Some(s) => text(StatusCode::OK, [&s.authority[..], &s.signature[..]].concat()),
                None => text(StatusCode::NOT_FOUND, "no signature for that period yet\n"),
            }
        }
        (&Method::GET, path) if path.starts_with("/onionlab/v1/bwfile/") => {
            match path["/onionlab/v1/bwfile/".len()..].parse::<u64>() {
                Ok(n) if n <= crate::scanner::MAX_BWFILE => text(StatusCode::OK, vec![0u8; n as usize]),
                _ => text(StatusCode::BAD_REQUEST, "size must be at most 64 MiB\n"),
            }
        }
        (&Method::GET, "/onionlab/v1/authority") => {
            text(StatusCode::OK, format!("{}\n", fingerprint(&authority.identity())))
        }
        _ => text(StatusCode::NOT_FOUND, "unknown path; see /onionlab/v1/consensus.json\n"),
    })
}

fn relay_json(info: &RelayInfo) -> serde_json::Value {
    json!({
        "nickname": info.nickname,
        "fingerprint": fingerprint(&info.identity),
        "or_address": info.or_addr.to_string(),
        "bandwidth": info.bandwidth,
        "exit_policy": info.exit_policy.to_lines(),
        "family": info.family.iter().map(fingerprint).collect::<Vec<_>>(),
    })
}

/// The human view of a consensus: relays with flag names, relays this authority left out and
/// why, suspicious clusters, and whose votes made it.
pub fn json_view(
    signed: &SignedConsensus,
    excluded: &[(RelayInfo, String)],
    clusters: &[(String, usize)],
    votes_from: &[IdentityBytes],
    authority: &IdentityBytes,
) -> Vec<u8> {
    let c = &signed.consensus;
    let relays: Vec<_> = c
        .relays
        .iter()
        .map(|r| {
            let mut v = relay_json(&r.info);
            v["flags"] = json!(r.flags.names());
            v
        })
        .collect();
    let left_out: Vec<_> = excluded
        .iter()
        .map(|(info, why)| {
            let mut v = relay_json(info);
            v["reason"] = json!(why);
            v
        })
        .collect();
    let view = json!({
        "valid_after": c.valid_after,
        "fresh_until": c.fresh_until,
        "valid_until": c.valid_until,
        "signed_by": signed.signatures.iter().map(|s| fingerprint(&s.authority)).collect::<Vec<_>>(),
        "served_by": fingerprint(authority),
        "votes_from": votes_from.iter().map(fingerprint).collect::<Vec<_>>(),
        "suspicious_clusters": clusters.iter().map(|(p, n)| json!({"prefix": p, "new_relays": n})).collect::<Vec<_>>(),
        "relays": relays,
        "excluded": left_out,
    });
    serde_json::to_vec_pretty(&view).unwrap_or_default()
}
