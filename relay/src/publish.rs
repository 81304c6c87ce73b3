//! Descriptor publication: sign what the relay is and upload it to every authority, at start,
//! every `publish_interval_secs` (well within the authorities' maximum descriptor age), and at
//! once when something in it changes: a new onion key, a reload, hibernation starting or
//! ending. A refused upload is logged with the authority's reason; failures are retried sooner.
//!
//! The advertised bandwidth is `bandwidth`, capped by `bandwidth_rate`; while hibernating it
//! is 0, so that clients all but stop choosing the relay (the descriptor has no hibernation
//! field of its own).

use crate::relay::{Relay, unix_now};
use onionlab_link::dirhttp;
use onionlab_proto::descriptor::{MAX_CONTACT_LEN, RelayDescriptor, RelayInfo, SignedDescriptor};
use onionlab_proto::keys::{KeyError, parse_fingerprint};
use std::sync::Arc;
use std::time::Duration;

/// The relay's current descriptor, signed.
pub fn descriptor(relay: &Relay) -> Result<SignedDescriptor, KeyError> {
    let settings = relay.settings();
    let config = &settings.config;
    let family = config
        .family
        .iter()
        .map(|f| parse_fingerprint(f))
        .collect::<Result<_, _>>()?;
    let bandwidth = if relay.traffic.hibernating() {
        0
    } else {
        config
            .bandwidth_rate
            .map_or(config.bandwidth, |rate| rate.min(config.bandwidth))
    };
    RelayDescriptor {
        info: RelayInfo {
            nickname: config.nickname.clone(),
            identity: relay.identity,
            onion_key: relay.onion_public().to_bytes(),
            or_addr: relay.advertised,
            bandwidth,
            exit_policy: settings.policy.clone(),
            family,
        },
        published: unix_now(),
        contact: config.contact.chars().take(MAX_CONTACT_LEN).collect(),
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
    let authorities = relay.settings().config.authorities.clone();
    let mut all_ok = true;
    for auth in &authorities {
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

/// Publishes at start, periodically and when asked to (`relay.republish`); retries failures
/// after a short backoff.
pub async fn publish_loop(relay: Arc<Relay>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let period = Duration::from_secs(relay.settings().config.publish_interval_secs.max(1));
        let wait = if publish_once(&relay).await {
            backoff = Duration::from_millis(250);
            period
        } else {
            let wait = backoff.min(period);
            backoff = (backoff * 2).min(Duration::from_secs(60));
            wait
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = relay.republish.notified() => {}
        }
    }
}
