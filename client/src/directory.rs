//! The client's view of the network: a consensus fetched from any authority that answers,
//! accepted only with valid signatures from more than half of the configured authorities.
//!
//! A refused consensus is logged with the reason (too few signatures, expired...). While the
//! consensus is not yet usable for a 3-hop path (a network still starting), fetches repeat
//! quickly with backoff; afterwards the next fetch is at the consensus's `fresh_until`.

use onionlab_link::config::AuthorityEntry;
use onionlab_link::dirhttp;
use onionlab_proto::consensus::{Consensus, Flags, MAX_CONSENSUS_LEN, SignedConsensus};
use onionlab_proto::keys::IdentityBytes;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// Why no consensus could be fetched.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Every authority failed; the last reason.
    #[error("no authority gave a valid consensus: {0}")]
    AllFailed(String),
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fetches from each authority in turn until one consensus verifies.
pub async fn fetch(authorities: &[AuthorityEntry], trusted: &[IdentityBytes]) -> Result<Consensus, FetchError> {
    let mut last = String::from("no authorities configured");
    for auth in authorities {
        match dirhttp::get(auth.address, "/onionlab/v1/consensus", MAX_CONSENSUS_LEN).await {
            Ok((status, body)) if status.is_success() => match SignedConsensus::decode(&body) {
                Ok(sc) => match sc.verify(trusted, unix_now()) {
                    Ok(c) => return Ok(c.clone()),
                    Err(e) => {
                        tracing::warn!(authority = %auth.address, "refusing consensus: {e}");
                        last = e.to_string();
                    }
                },
                Err(e) => last = format!("malformed consensus from {}: {e}", auth.address),
            },
            Ok((status, _)) => last = format!("{} answered {status}", auth.address),
            Err(e) => last = format!("{}: {e}", auth.address),
        }
    }
    Err(FetchError::AllFailed(last))
}

/// True if a 3-hop path can be built from `c`: a guard, an exit and three running relays.
pub fn usable(c: &Consensus) -> bool {
    let running = c.relays.iter().filter(|r| r.flags.contains(Flags::RUNNING)).count();
    let guard = c.relays.iter().any(|r| r.flags.contains(Flags::GUARD));
    let exit = c.relays.iter().any(|r| r.flags.contains(Flags::EXIT));
    running >= 3 && guard && exit
}

/// Keeps `tx` holding the newest accepted consensus, forever.
pub async fn refresh_loop(
    authorities: Vec<AuthorityEntry>,
    trusted: Vec<IdentityBytes>,
    tx: watch::Sender<Option<Arc<Consensus>>>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let wait = match fetch(&authorities, &trusted).await {
            Ok(c) => {
                let ok = usable(&c);
                let fresh_in = Duration::from_secs(c.fresh_until.saturating_sub(unix_now()).max(1));
                tracing::debug!(relays = c.relays.len(), usable = ok, "consensus accepted");
                tx.send_replace(Some(Arc::new(c)));
                if ok {
                    backoff = Duration::from_millis(50);
                    fresh_in
                } else {
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    backoff
                }
            }
            Err(e) => {
                tracing::warn!("{e}");
                backoff = (backoff * 2).min(Duration::from_secs(10));
                backoff
            }
        };
        tokio::time::sleep(wait).await;
    }
}
