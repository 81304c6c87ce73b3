//! The unchokers of [`super`]: at each rechoke a peer sets the relative share of its upload
//! each of its links gets (0: choked). Only interested peers (that lack a piece this peer holds)
//! are unchoked. Never: sending data (the [`super::swarm`] does) or looking at anything a real
//! client could not observe (rates it received and sent, pieces its neighbours announced).
//!
//! - Standard (tit-for-tat): the `upload_slots` peers that sent it the most in the last period,
//!   among those that sent anything (a peer that gives nothing earns no regular slot), plus
//!   `optimistic_unchokes` random interested peers rotated every `optimistic_secs`; regular
//!   slots nobody earned go to further random peers of the same rotation, as in the reference
//!   client; equal split. Without optimistic unchokes, nobody unearned is ever unchoked.
//! - Seed: the same, ranked by what it sent each peer in the last period (the fastest
//!   downloaders), any interested peer eligible.
//! - PropShare (Levin et al., SIGCOMM 2008): `1 − s` of its upload in proportion to what each
//!   peer gave in the last period, `s` to its optimistic unchokes (all of it while nobody
//!   gives), of which it keeps as many as the standard choker would.
//! - BitTyrant (Piatek et al., NSDI 2007, §4.1): per peer an estimate d_p of the rate it would
//!   give and u_p of the rate that earns its reciprocation; unchoke by d_p/u_p, best first,
//!   until the u_p sum reaches capacity, sending each its u_p (capacity left when every
//!   interested peer is unchoked is spread evenly over them: BitTyrant as released always uses
//!   all of its capacity). After a period in which it sent to p, holding pieces it wants: p
//!   unchoked it too → after `r` such periods in a row u_p ← (1 − γ)u_p; p kept it choked →
//!   u_p ← (1 + δ)u_p. d_p is the rate p gave in the last period if any, else p's announced
//!   download rate over `upload_slots + 1` (the equal split it likely uses), and 0 while p
//!   holds nothing it wants. It rechokes after the others, so "p unchoked it" is p's answer to
//!   the period that just ended.
//! - BitThief: unchokes nobody.

use super::super::shuffle;
use super::Params;
use super::swarm::{Client, Estimate, Swarm};

/// The least u_p BitTyrant offers, KB/s (so that d_p/u_p stays finite however long it runs).
const MIN_RATE: f64 = 1e-3;

/// BitTyrant's estimate for a link it knows nothing about: the equal split a standard client
/// of its capacity would send, and no expected return.
pub(super) fn first_estimate(params: &Params, up: f64) -> Estimate {
    Estimate {
        up: up / (params.upload_slots + 1) as f64,
        down: 0.0,
        streak: 0,
    }
}

/// Rechoke peer `u` (`rotate`: also draw new optimistic unchokes).
pub(super) fn rechoke(s: &mut Swarm, u: usize, rotate: bool) {
    let weights = match s.peers[u].client {
        Client::FreeRider => vec![0.0; s.peers[u].links.len()],
        Client::Standard => tit_for_tat(s, u, rotate, false),
        Client::Seed => tit_for_tat(s, u, rotate, true),
        Client::PropShare => proportional(s, u, rotate),
        Client::Tyrant => tyrant(s, u),
    };
    for (li, w) in weights.into_iter().enumerate() {
        if w <= 0.0 {
            s.discard(u, li);
        }
        s.peers[u].links[li].weight = w;
    }
}

/// Keep `u`'s optimistic unchokes that are still candidates (all dropped when `rotate`), then
/// fill up to `count` at random among `candidates`.
fn optimistic(s: &mut Swarm, u: usize, rotate: bool, candidates: &[usize], count: usize) -> Vec<usize> {
    let mut chosen = std::mem::take(&mut s.peers[u].optimistic);
    if rotate {
        chosen.clear();
    }
    chosen.retain(|li| candidates.contains(li));
    chosen.truncate(count);
    let mut rest: Vec<usize> = candidates.iter().copied().filter(|li| !chosen.contains(li)).collect();
    shuffle(&mut rest, &mut s.rng);
    let room = count - chosen.len();
    chosen.extend(rest.into_iter().take(room));
    s.peers[u].optimistic = chosen.clone();
    chosen
}

/// How many peers that did not earn a slot `u` unchokes at random: its optimistic unchokes,
/// plus (as the reference client does) the regular slots left idle for want of `earned` peers;
/// none at all without optimistic unchokes (pure tit-for-tat).
fn unearned(s: &Swarm, earned: usize) -> usize {
    let p = s.params;
    if p.optimistic_unchokes == 0 {
        0
    } else {
        p.optimistic_unchokes + p.upload_slots.saturating_sub(earned)
    }
}

fn interested(s: &Swarm, u: usize) -> Vec<usize> {
    (0..s.peers[u].links.len()).filter(|&li| s.interested(u, li)).collect()
}

/// The standard choker (`seed`: ranked by rate sent, anyone eligible).
fn tit_for_tat(s: &mut Swarm, u: usize, rotate: bool, seed: bool) -> Vec<f64> {
    let rate: Vec<f64> = s.peers[u]
        .links
        .iter()
        .map(|l| if seed { l.sent_prev } else { l.got_prev })
        .collect();
    let all = interested(s, u);
    let mut ranked: Vec<usize> = all.iter().copied().filter(|&li| seed || rate[li] > 0.0).collect();
    shuffle(&mut ranked, &mut s.rng);
    ranked.sort_by(|&a, &b| rate[b].total_cmp(&rate[a]));
    ranked.truncate(s.params.upload_slots);
    let candidates: Vec<usize> = all.into_iter().filter(|li| !ranked.contains(li)).collect();
    let count = unearned(s, ranked.len());
    let opt = optimistic(s, u, rotate, &candidates, count);
    let mut weights = vec![0.0; s.peers[u].links.len()];
    for li in ranked.into_iter().chain(opt) {
        weights[li] = 1.0;
    }
    weights
}

/// PropShare: shares in proportion to what each peer gave, plus the optimistic share.
fn proportional(s: &mut Swarm, u: usize, rotate: bool) -> Vec<f64> {
    let all = interested(s, u);
    let gave = |s: &Swarm, li: usize| s.peers[u].links[li].got_prev;
    let givers: Vec<usize> = all.iter().copied().filter(|&li| gave(s, li) > 0.0).collect();
    let given: f64 = givers.iter().map(|&li| gave(s, li)).sum();
    let candidates: Vec<usize> = all.into_iter().filter(|li| !givers.contains(li)).collect();
    let count = unearned(s, givers.len());
    let opt = optimistic(s, u, rotate, &candidates, count);
    let share = s.params.propshare_optimistic_share;
    let mut weights = vec![0.0; s.peers[u].links.len()];
    for &li in &givers {
        weights[li] = (1.0 - share) * gave(s, li) / given;
    }
    // While nobody gives, the optimistic unchokes get everything (if they get anything).
    let total = if given > 0.0 || share <= 0.0 { share } else { 1.0 };
    let each = total / opt.len().max(1) as f64;
    for li in opt {
        weights[li] = each;
    }
    weights
}

/// BitTyrant: update the estimates from the last period, then unchoke by d_p/u_p.
fn tyrant(s: &mut Swarm, u: usize) -> Vec<f64> {
    let p = s.params;
    let period = f64::from(p.rechoke_secs);
    let cap = s.peers[u].up;
    for li in 0..s.peers[u].links.len() {
        let link = &s.peers[u].links[li];
        let (seen, unchoked) = (link.got_prev / period, link.sent_prev > 0.0);
        let (wanted, reciprocated) = (s.wants(u, li), s.unchoked_by(u, li));
        let announced = s.announced_rate(link.to) / (p.upload_slots + 1) as f64;
        let e = &mut s.peers[u].estimates[li];
        // Only a peer that holds something wanted can reciprocate.
        if unchoked && wanted && reciprocated {
            e.streak += 1;
            if e.streak >= p.tyrant_rounds {
                e.up = (e.up * (1.0 - p.tyrant_gamma)).max(MIN_RATE);
            }
        } else if unchoked && wanted {
            e.streak = 0;
            e.up = (e.up * (1.0 + p.tyrant_delta)).min(cap);
        }
        e.down = match (wanted, seen > 0.0) {
            (false, _) => 0.0,
            (true, true) => seen,
            (true, false) => announced,
        };
    }
    let mut ranked = interested(s, u);
    shuffle(&mut ranked, &mut s.rng);
    let est = &s.peers[u].estimates;
    let ratio = |li: usize| est[li].down / est[li].up;
    ranked.sort_by(|&a, &b| ratio(b).total_cmp(&ratio(a)));
    let mut weights = vec![0.0; s.peers[u].links.len()];
    let mut chosen = Vec::new();
    let mut used = 0.0;
    for li in ranked {
        if used >= cap {
            break;
        }
        weights[li] = est[li].up;
        used += est[li].up;
        chosen.push(li);
    }
    // Capacity left with every interested peer unchoked is spread evenly over them.
    let excess = (cap - used).max(0.0) / chosen.len().max(1) as f64;
    for li in chosen {
        weights[li] += excess;
    }
    weights
}
