//! HTTP tracker announce and scrape (BEP 3, 23, 48) over [`super::http`]: the URL comes from
//! [`crate::tracker::http`]'s builders, the body goes to its parsers.
//!
//! A `failure reason` (in a 200 reply or any other status) is [`Outcome::RemoteError`]; another
//! non-2xx status is a remote error too; a body the parser refuses is a protocol error. The
//! reply body is kept as the visit's raw bytes.

use crate::engine::{Engine, ProbeError};
use crate::infohash::InfoHash;
use crate::observe::{Outcome, ProbeKind};
use crate::tracker::http::{self as codec, AnnounceRequest, AnnounceResponse, Failure, ScrapeResponse};

use super::http::{HttpConfig, HttpResponse, HttpUrl, get};
use super::tracker::{Announce, Scrape, tracker_target};
use super::{Error, record_tracker_sightings, resolve};

/// Announces `req` to the HTTP tracker `announce` and records a sighting per peer returned.
pub async fn announce(
    engine: &Engine,
    cfg: &HttpConfig,
    announce: &str,
    req: &AnnounceRequest,
) -> Result<Announce, Error> {
    let full = codec::announce_url(announce, req).map_err(|e| Error::Unusable(format!("{announce}: {e}")))?;
    let url = HttpUrl::parse(&full).map_err(Error::Unusable)?;
    let target = tracker_target(engine, ProbeKind::HttpAnnounce, announce, &url.host, url.port)
        .await
        .about(req.info_hash);
    let (resolved, url) = (&target.addr, &url);
    let reply = engine
        .probe(&target, move || async move {
            let response = fetch(resolved, url, cfg).await?;
            let body = ok_body(response)?;
            match AnnounceResponse::parse(&body) {
                Ok(codec::Reply::Ok(r)) => Ok(Announce {
                    interval: r.interval,
                    min_interval: r.min_interval,
                    seeders: r.complete,
                    leechers: r.incomplete,
                    peers: r.peers,
                    warning: r.warning,
                    tracker_id: r.tracker_id,
                    deviations: count(r.deviations.len()),
                    raw: body,
                }),
                Ok(codec::Reply::Failure(f)) => Err(failure(&f, body)),
                Err(e) => Err(ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(body)),
            }
        })
        .await?;
    record_tracker_sightings(engine.recorder(), announce, req.info_hash, &reply.peers).await;
    Ok(reply)
}

/// Scrapes `info_hashes` (none: everything the tracker will list) from the tracker whose
/// announce URL is `announce` (BEP 48 scrape URL convention).
pub async fn scrape(
    engine: &Engine,
    cfg: &HttpConfig,
    announce: &str,
    info_hashes: &[InfoHash],
) -> Result<Scrape, Error> {
    let full = codec::scrape_url(announce, info_hashes).map_err(|e| Error::Unusable(format!("{announce}: {e}")))?;
    let url = HttpUrl::parse(&full).map_err(Error::Unusable)?;
    let mut target = tracker_target(engine, ProbeKind::HttpScrape, announce, &url.host, url.port).await;
    if let [one] = info_hashes {
        target = target.about(*one);
    }
    let (resolved, url) = (&target.addr, &url);
    let reply = engine
        .probe(&target, move || async move {
            let response = fetch(resolved, url, cfg).await?;
            let body = ok_body(response)?;
            match ScrapeResponse::parse(&body) {
                Ok(codec::Reply::Ok(r)) => Ok(Scrape {
                    files: r.files,
                    deviations: count(r.deviations.len()),
                    raw: body,
                }),
                Ok(codec::Reply::Failure(f)) => Err(failure(&f, body)),
                Err(e) => Err(ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(body)),
            }
        })
        .await?;
    Ok(reply)
}

/// One GET: to the address resolved before the probe, or resolving again.
async fn fetch(
    resolved: &Option<std::net::SocketAddr>,
    url: &HttpUrl,
    cfg: &HttpConfig,
) -> Result<HttpResponse, ProbeError> {
    let addr = match resolved {
        Some(a) => *a,
        None => resolve(&url.host, url.port).await?,
    };
    get(addr, url, cfg).await
}

/// The body of a 2xx reply; otherwise a remote error (with the tracker's reason if it gave one).
fn ok_body(response: HttpResponse) -> Result<Vec<u8>, ProbeError> {
    if (200..300).contains(&response.status) {
        return Ok(response.body);
    }
    let reason = match AnnounceResponse::parse(&response.body) {
        Ok(codec::Reply::Failure(f)) => format!(": {}", String::from_utf8_lossy(&f.reason)),
        _ => String::new(),
    };
    Err(
        ProbeError::new(Outcome::RemoteError, format!("HTTP status {}{reason}", response.status))
            .with_raw(response.body),
    )
}

fn failure(f: &Failure, body: Vec<u8>) -> ProbeError {
    ProbeError::new(
        Outcome::RemoteError,
        format!("tracker failure: {}", String::from_utf8_lossy(&f.reason)),
    )
    .with_raw(body)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
