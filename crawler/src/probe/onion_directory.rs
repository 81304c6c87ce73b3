//! The relay census probe: `GET` [`CONSENSUS_VIEW_PATH`] from an onion directory authority over
//! [`super::http`], parse it with [`ConsensusView::parse`], and record what it says.
//!
//! Each fetch is one [`ProbeKind::OnionConsensus`] visit of the authority (its remote id: the
//! first 20 bytes of the identity it says it is). Each relay it lists becomes a
//! [`SourceKind::OnionListed`] sighting, each relay it left out a [`SourceKind::OnionExcluded`]
//! one (source: the authority's `ip:port`; address: the relay's OR address; id: the first 20
//! bytes of its fingerprint). A status other than 2xx (503 before the first consensus) is a
//! remote error; a view the parser refuses is a protocol error with the body kept as raw bytes.

use std::net::SocketAddr;

use crate::engine::{Engine, ProbeError, Reply, Target};
use crate::observe::{Observation, Outcome, ProbeKind, Sighting, SourceKind, Visit, now_micros};
use crate::onion::{CONSENSUS_VIEW_PATH, ConsensusView, MAX_VIEW_LEN};

use super::http::{HttpConfig, HttpUrl, get};

/// The HTTP limits of a census fetch: the view may be as long as [`MAX_VIEW_LEN`].
pub fn census_http_config() -> HttpConfig {
    HttpConfig {
        max_body: MAX_VIEW_LEN,
        ..HttpConfig::default()
    }
}

impl Reply for ConsensusView {
    fn describe(&self, visit: &mut Visit) {
        visit.remote_id = Some(self.served_by.short_id());
    }
}

/// Fetches `authority`'s view of the consensus and records a sighting per relay in it.
pub async fn fetch_consensus(
    engine: &Engine,
    cfg: &HttpConfig,
    authority: SocketAddr,
) -> Result<ConsensusView, ProbeError> {
    let url = HttpUrl {
        host: authority.ip().to_string(),
        port: authority.port(),
        target: CONSENSUS_VIEW_PATH.to_string(),
    };
    let target = Target::addr(ProbeKind::OnionConsensus, authority);
    let url = &url;
    let view = engine
        .probe(&target, move || async move {
            let response = get(authority, url, cfg).await?;
            if !(200..300).contains(&response.status) {
                return Err(
                    ProbeError::new(Outcome::RemoteError, format!("HTTP status {}", response.status))
                        .with_raw(response.body),
                );
            }
            ConsensusView::parse(&response.body)
                .map_err(|e| ProbeError::new(Outcome::ProtocolError, e.to_string()).with_raw(response.body))
        })
        .await?;
    let at = now_micros();
    let listed = view.relays.iter().map(|r| (SourceKind::OnionListed, r));
    let excluded = view.excluded.iter().map(|r| (SourceKind::OnionExcluded, r));
    for (source_kind, relay) in listed.chain(excluded) {
        engine
            .recorder()
            .record(Observation::Sighting(Sighting {
                at,
                source_kind,
                source: authority.to_string(),
                source_id: Some(view.served_by.short_id()),
                info_hash: None,
                addr: relay.or_address,
                id: Some(relay.fingerprint.short_id()),
            }))
            .await;
    }
    Ok(view)
}
