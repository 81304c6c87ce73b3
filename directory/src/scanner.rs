//! The bandwidth scanner: measures each relay's throughput, so that the consensus weight is
//! what a relay can carry rather than what it claims.
//!
//! Like Tor's bandwidth scanners (sbws), the authority builds a circuit through the relay
//! being measured and downloads a known amount of data through it, from the authority's own
//! `/onionlab/v1/bwfile/{bytes}`. The measured relay is the first hop; the other two are the
//! fastest relays measured so far (the exit must allow the authority's address), so that the
//! measured relay is the bottleneck. Where sbws uses two hops, this reuses the ordinary
//! 3-hop builder. One relay is measured at a time, each at most every
//! `measure_interval_secs`; a failed measurement is retried on the next round.

use crate::authority::Authority;
use onionlab_link::origin::{EntryLinks, build};
use onionlab_proto::consensus::{ConsensusRelay, Flags};
use onionlab_proto::descriptor::RelayInfo;
use onionlab_proto::keys::fingerprint;
use onionlab_proto::path::Path;
use onionlab_proto::relay_msg::{Target, TargetHost};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest download the authority serves for measurements.
pub const MAX_BWFILE: u64 = 64 << 20;
/// Limit for one measurement, from circuit build to the last byte.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(60);

/// Measures relays one after another, forever.
pub async fn run(auth: Arc<Authority>) {
    let links = EntryLinks::new(auth.connector.clone());
    loop {
        let now = crate::unix_now();
        let due = auth
            .reachable()
            .into_iter()
            .filter(|(_, m)| m.is_none_or(|(_, when)| now.saturating_sub(when) >= auth.config.measure_interval_secs))
            .min_by_key(|(_, m)| m.map_or(0, |(_, when)| when));
        let Some((target, _)) = due else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        match tokio::time::timeout(MEASURE_TIMEOUT, measure(&auth, &links, &target)).await {
            Ok(Ok(bw)) => {
                tracing::debug!(relay = %fingerprint(&target.identity), bytes_per_sec = bw, "measured");
                auth.record_measurement(target.identity, bw);
            }
            Ok(Err(e)) => {
                tracing::debug!(relay = %fingerprint(&target.identity), "measurement failed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(_) => tracing::debug!(relay = %fingerprint(&target.identity), "measurement timed out"),
        }
    }
}

fn as_consensus(info: &RelayInfo) -> ConsensusRelay {
    ConsensusRelay {
        info: info.clone(),
        flags: Flags::default(),
    }
}

async fn measure(auth: &Authority, links: &EntryLinks, target: &RelayInfo) -> Result<u64, String> {
    let dest = auth.http_addr;
    let mut others: Vec<(RelayInfo, u64)> = auth
        .reachable()
        .into_iter()
        .filter(|(i, _)| i.identity != target.identity && !i.same_family(target))
        .map(|(i, m)| (i, m.map_or(0, |x| x.0)))
        .collect();
    others.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.identity.cmp(&b.0.identity)));
    let exit = others
        .iter()
        .find(|(i, _)| i.exit_policy.allows(dest.ip(), dest.port()))
        .map(|(i, _)| i.clone())
        .ok_or("no exit allows the authority's address")?;
    let middle = others
        .iter()
        .find(|(i, _)| i.identity != exit.identity && !i.same_family(&exit))
        .map(|(i, _)| i.clone())
        .ok_or("no middle relay")?;
    let path = Path {
        guard: as_consensus(target),
        middle: as_consensus(&middle),
        exit: as_consensus(&exit),
    };
    let circuit = build(links, path, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let stream = circuit
        .begin(
            Target {
                host: TargetHost::Ip(dest.ip()),
                port: dest.port(),
            },
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut mine, theirs) = tokio::io::duplex(256 * 1024);
    circuit.attach(stream, theirs).await;
    let bytes = auth.config.measure_bytes.min(MAX_BWFILE);
    let started = Instant::now();
    mine.write_all(format!("GET /onionlab/v1/bwfile/{bytes} HTTP/1.0\r\nHost: {dest}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = mine.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    if total < bytes {
        return Err(format!("download ended after {total} of {bytes} bytes"));
    }
    Ok((bytes as f64 / secs) as u64)
}
