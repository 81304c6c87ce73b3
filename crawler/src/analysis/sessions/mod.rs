//! Sessions and lifetimes: periodic up/down probes of peers to sessions, and session-length
//! samples that can be trusted.
//!
//! A per-peer state machine walks the peer's probes in time order within the measurement
//! [`Window`]. The state starts unknown; an up probe while not up starts a session; the first
//! down probe after it ends the session there. A session that begins with the peer's first probe
//! is *left-censored* (the peer may have been up before we looked: before the window, or before
//! the crawler discovered it); one still up at the peer's last probe is *right-censored* and
//! ends at that probe, so its length is a lower bound. A store that crawls snapshots should add
//! a down probe at the previous snapshot for a peer first seen later, if the snapshots are
//! complete, so that the peer's arrival is known.
//!
//! Two samples of session lengths come out of the sessions, after Stutzbach and Rejaie,
//! "Understanding churn in peer-to-peer networks" (IMC 2006, §3.2):
//!
//! - [`naive_lengths`]: every observed session, clipped to the window. Sessions in progress at
//!   the window's start are length-biased, and every session that overlaps an edge is cut short;
//!   with Poisson arrivals the sample mean tends to E\[L\]·W/(W + E\[L\]) for a window of
//!   length W, biased low by the factor W/(W + E\[L\]).
//! - [`create_based_lengths`]: the *create-based method* (taken from Roselli et al.'s file
//!   lifetime studies): only sessions that start, not left-censored, within the first half of
//!   the window. Every such session is observed for at least W/2, so the sample is an unbiased
//!   sample of session lengths up to W/2; sessions still up at the end come back right-censored.
//!
//! What the probing itself hides stays hidden: a session shorter than the probe interval can fall
//! between two probes and go unseen, which biases both samples towards long sessions; probe
//! well below the session lengths of interest.
//!
//! For the samples: [`empirical_cdf`], [`ks_distance`], and a maximum-likelihood
//! [`Weibull`] fit ([`weibull_fit`], [`weibull_fit_censored`]) — Stutzbach and Rejaie found
//! session lengths in Gnutella, BitTorrent and Kad better described by a Weibull than by an
//! exponential.

mod ecdf;
#[cfg(test)]
mod tests;
mod weibull;

pub use ecdf::{empirical_cdf, ks_distance};
pub use weibull::{FitError, Weibull, weibull_fit, weibull_fit_censored};

use std::collections::BTreeMap;

use thiserror::Error;

/// One probe of one peer: at time `at` (seconds), the peer answered (`up`) or did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe<K> {
    /// Who was probed (an address, a node id, or a struct of both).
    pub peer: K,
    /// When, in seconds on the measurement's clock.
    pub at: f64,
    /// Whether the peer answered.
    pub up: bool,
}

/// The measurement window [start, end], in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    start: f64,
    end: f64,
}

/// Why a [`Window`] was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum WindowError {
    /// The start or end is NaN or infinite.
    #[error("a window's start and end must be finite, got [{0}, {1}]")]
    NotFinite(f64, f64),
    /// The end is not after the start (an empty or reversed window).
    #[error("a window must end after it starts, got [{0}, {1}]")]
    Empty(f64, f64),
}

impl Window {
    /// The window [start, end]; `end` must be after `start`, both finite.
    pub fn new(start: f64, end: f64) -> Result<Window, WindowError> {
        if !start.is_finite() || !end.is_finite() {
            return Err(WindowError::NotFinite(start, end));
        }
        if end <= start {
            return Err(WindowError::Empty(start, end));
        }
        Ok(Window { start, end })
    }

    /// The start, in seconds.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// The end, in seconds.
    pub fn end(&self) -> f64 {
        self.end
    }

    /// end − start, always > 0.
    pub fn length(&self) -> f64 {
        self.end - self.start
    }

    fn contains(&self, t: f64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// One session of one peer, as the probes saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session<K> {
    /// The peer.
    pub peer: K,
    /// The first probe that saw it up.
    pub start: f64,
    /// The first probe that saw it down again, or, if right-censored, the last probe that saw it
    /// up.
    pub end: f64,
    /// The session began with the peer's first probe: it may have started earlier.
    pub left_censored: bool,
    /// The peer was still up at its last probe: the session lasted at least until `end`.
    pub right_censored: bool,
}

impl<K> Session<K> {
    /// end − start (≥ 0).
    pub fn length(&self) -> f64 {
        self.end - self.start
    }
}

/// A session length for a lifetime sample; `censored` means the true length is at least
/// `length`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetime {
    /// Seconds.
    pub length: f64,
    /// Right-censored: the session was still going when observation stopped.
    pub censored: bool,
}

/// Runs the per-peer state machine over `probes` (in any order; those outside the window or with
/// a NaN time are ignored; probes of one peer at the same instant keep their input order).
/// Sessions come back sorted by peer, then start.
pub fn sessions<K: Ord + Clone>(probes: &[Probe<K>], window: Window) -> Vec<Session<K>> {
    let mut by_peer: BTreeMap<&K, Vec<(f64, bool)>> = BTreeMap::new();
    for p in probes.iter().filter(|p| window.contains(p.at)) {
        by_peer.entry(&p.peer).or_default().push((p.at, p.up));
    }
    let mut out = Vec::new();
    for (peer, mut seen) in by_peer {
        seen.sort_by(|a, b| a.0.total_cmp(&b.0));
        // (start, last up probe, left-censored) of the session in progress.
        let mut open: Option<(f64, f64, bool)> = None;
        for (i, &(at, up)) in seen.iter().enumerate() {
            open = match (open, up) {
                (None, true) => Some((at, at, i == 0)),
                (Some((start, _, left)), true) => Some((start, at, left)),
                (Some((start, _, left)), false) => {
                    out.push(Session {
                        peer: peer.clone(),
                        start,
                        end: at,
                        left_censored: left,
                        right_censored: false,
                    });
                    None
                }
                (None, false) => None,
            };
        }
        if let Some((start, last_up, left)) = open {
            out.push(Session {
                peer: peer.clone(),
                start,
                end: last_up,
                left_censored: left,
                right_censored: true,
            });
        }
    }
    out
}

/// The naive sample: the length of every session, censored or not, taken at face value.
pub fn naive_lengths<K>(sessions: &[Session<K>]) -> Vec<f64> {
    sessions.iter().map(Session::length).collect()
}

/// The create-based sample: sessions that start (not left-censored) in the first half of
/// `window`, right-censored ones marked as such. Unbiased for lengths up to half the window.
pub fn create_based_lengths<K>(sessions: &[Session<K>], window: Window) -> Vec<Lifetime> {
    let half = window.start + window.length() / 2.0;
    sessions
        .iter()
        .filter(|s| !s.left_censored && window.start <= s.start && s.start < half)
        .map(|s| Lifetime {
            length: s.length(),
            censored: s.right_censored,
        })
        .collect()
}
