//! The voting schedule: how several authorities agree on one consensus every period.
//!
//! Periods are aligned to the wall clock (`consensus_interval_secs`), so every authority
//! knows which period it is without talking to the others. In each period:
//! 1. at the start, each authority signs its vote and serves it at `/onionlab/v1/vote/{period}`;
//! 2. after `vote_delay_ms`, it fetches the other authorities' votes for that period, keeping
//!    only those signed by the authority it asked, for this period (a forged or stale vote is
//!    ignored and logged);
//! 3. it computes the consensus from the votes it holds (`onionlab_proto::vote::compute_consensus`,
//!    a pure function, so authorities holding the same votes get the same bytes), signs it,
//!    and serves its signature at `/onionlab/v1/signature/{period}`;
//! 4. after `signature_delay_ms`, it collects the others' signatures that verify over *its*
//!    consensus, and publishes once more than half of all authorities have signed.
//!
//! An authority that is down simply contributes no vote and no signature; as long as a
//! majority is up and agrees, a consensus is made and clients accept it.

use crate::authority::Authority;
use onionlab_link::dirhttp;
use onionlab_proto::consensus::{AuthoritySignature, SignedConsensus};
use onionlab_proto::keys::{IdentityBytes, fingerprint};
use onionlab_proto::vote::{ConsensusParams, MAX_VOTE_LEN, Vote, compute_consensus};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Pause between fetch attempts within a phase.
const RETRY: Duration = Duration::from_millis(100);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sleeps until `at_ms` (Unix milliseconds).
async fn sleep_until_ms(at_ms: u64) {
    let now = now_ms();
    if at_ms > now {
        tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
    }
}

/// Runs one period after another, forever.
pub async fn run(auth: Arc<Authority>) {
    let interval_ms = auth.config.consensus_interval_secs.max(1) * 1000;
    loop {
        let start_ms = (now_ms() / interval_ms + 1) * interval_ms;
        sleep_until_ms(start_ms).await;
        period(&auth, start_ms, interval_ms).await;
    }
}

async fn period(auth: &Arc<Authority>, start_ms: u64, interval_ms: u64) {
    let valid_after = start_ms / 1000;
    let own = auth.make_vote(valid_after);
    sleep_until_ms(start_ms + auth.config.vote_delay_ms).await;

    let mut votes = match Vote::decode(&own) {
        Ok(v) => vec![v],
        Err(e) => {
            tracing::error!("own vote does not decode: {e}");
            return;
        }
    };
    let vote_deadline = start_ms + auth.config.signature_delay_ms;
    let mut missing = auth.peers();
    while !missing.is_empty() && now_ms() < vote_deadline {
        let mut still = Vec::new();
        for (peer, id) in missing {
            match fetch_vote(&peer.address, &id, valid_after).await {
                Ok(Some(v)) => votes.push(v),
                Ok(None) => still.push((peer, id)),
                Err(reason) => tracing::warn!(authority = %fingerprint(&id), "ignoring vote: {reason}"),
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(RETRY).await;
        }
    }
    let voters: Vec<IdentityBytes> = votes.iter().map(|v| v.authority).collect();
    let interval = interval_ms / 1000;
    let params = ConsensusParams {
        valid_after,
        fresh_for: interval.max(1),
        // Three periods, and at least 30 s so that a loaded test network survives a missed round.
        valid_for: (3 * interval.max(1)).max(30),
        unmeasured_cap: auth.config.unmeasured_bandwidth_cap,
    };
    let mut signed = SignedConsensus::new(compute_consensus(&votes, params));
    let mine = signed.signature_by(&auth.key);
    signed.add_verified(mine.clone());
    auth.set_signature(valid_after, mine);

    sleep_until_ms(vote_deadline).await;
    let needed = auth.voters() / 2 + 1;
    let sig_deadline = start_ms + interval_ms * 9 / 10;
    let mut missing = auth.peers();
    while !missing.is_empty() && now_ms() < sig_deadline {
        let mut still = Vec::new();
        for (peer, id) in missing {
            match fetch_signature(&peer.address, valid_after).await {
                Some(sig) if sig.authority == id => {
                    if !signed.add_verified(sig) {
                        tracing::warn!(authority = %fingerprint(&id), period = valid_after, "signature does not match our consensus (different votes?)");
                    }
                }
                Some(_) => tracing::warn!(authority = %fingerprint(&id), "ignoring a signature by another key"),
                None => still.push((peer, id)),
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(RETRY).await;
        }
    }
    if signed.signatures.len() >= needed {
        tracing::debug!(
            period = valid_after,
            relays = signed.consensus.relays.len(),
            signatures = signed.signatures.len(),
            "consensus published"
        );
        auth.publish(signed, &voters);
    } else {
        auth.round_failed();
        tracing::warn!(
            period = valid_after,
            signatures = signed.signatures.len(),
            needed,
            "no majority of signatures; keeping the previous consensus"
        );
    }
}

/// Ok(None): not there yet; Err: there but unusable (forged, wrong period, malformed).
async fn fetch_vote(
    addr: &std::net::SocketAddr,
    expected: &IdentityBytes,
    valid_after: u64,
) -> Result<Option<Vote>, String> {
    let path = format!("/onionlab/v1/vote/{valid_after}");
    let (status, body) = match dirhttp::get(*addr, &path, MAX_VOTE_LEN).await {
        Ok(r) => r,
        Err(_) => return Ok(None),
    };
    if !status.is_success() {
        return Ok(None);
    }
    let vote = Vote::decode(&body).map_err(|e| e.to_string())?;
    if &vote.authority != expected {
        return Err(format!("signed by {} instead", fingerprint(&vote.authority)));
    }
    if vote.valid_after != valid_after {
        return Err(format!("for period {} instead of {valid_after}", vote.valid_after));
    }
    Ok(Some(vote))
}

async fn fetch_signature(addr: &std::net::SocketAddr, valid_after: u64) -> Option<AuthoritySignature> {
    let path = format!("/onionlab/v1/signature/{valid_after}");
    let (status, body) = dirhttp::get(*addr, &path, 1024).await.ok()?;
    if !status.is_success() || body.len() != 96 {
        return None;
    }
    let mut authority = [0u8; 32];
    authority.copy_from_slice(&body[..32]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&body[32..]);
    Some(AuthoritySignature { authority, signature })
}
