//! Descriptor publication: sign what the relay is and upload it to every authority, at start
//! and every `publish_interval_secs` (well within the authorities' maximum descriptor age).
//! A refused upload is logged with the authority's reason; failures are retried sooner.

use crate::relay::Relay;
use onionlab_link::dirhttp;
use onionlab_proto::descriptor::{RelayDescriptor, RelayInfo, SignedDescriptor};
use onionlab_proto::keys::{KeyError, parse_fingerprint};
use std::sync::Arc;
use std::time::Duration;

/// The relay's current descriptor, signed.
pub fn descriptor(relay: &Relay) -> Result<SignedDescriptor, KeyError> {
    let family = relay
        .config
        .family
        .iter()
        .map(|f| parse_fingerprint(f))
        .collect::<Result<_, _>>()?;
    let published = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    RelayDescriptor {
        info: RelayInfo {
            nickname: relay.config.nickname.clone(),
            identity: relay.identity,
            onion_key: relay.onion_public().to_bytes(),
            or_addr: relay.advertised,
            bandwidth: relay.config.bandwidth,
            exit_policy: relay.policy.clone(),
            family,
        },
        published,
        contact: relay.config.contact.chars().take(200).collect(),
    }
    .sign(&relay.identity_key)
}

/// Uploads once to every authority; true if all accepted.
pub async fn publish_once(relay: &Relay) -> bool {
    let desc = match descriptor(relay) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot sign descriptor: {e}");
            return false;
        }
    };
    let mut all_ok = true;
    for auth in &relay.config.authorities {
        match dirhttp::post(auth.address, "/onionlab/v1/descriptor", desc.raw.clone(), 4096).await {
            Ok((status, _)) if status.is_success() => {
                tracing::debug!(authority = %auth.address, "descriptor accepted")
            }
            Ok((status, body)) => {
                all_ok = false;
                tracing::warn!(authority = %auth.address, %status, reason = %String::from_utf8_lossy(&body).trim(), "descriptor refused");
            }
            Err(e) => {
                all_ok = false;
                tracing::warn!(authority = %auth.address, "descriptor upload failed: {e}");
            }
        }
    }
    all_ok
}

/// Publishes at start and periodically; retries failures after a short backoff.
pub async fn publish_loop(relay: Arc<Relay>) {
    let period = Duration::from_secs(relay.config.publish_interval_secs.max(1));
    let mut backoff = Duration::from_millis(250);
    loop {
        if publish_once(&relay).await {
            backoff = Duration::from_millis(250);
            tokio::time::sleep(period).await;
        } else {
            tokio::time::sleep(backoff.min(period)).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
}
