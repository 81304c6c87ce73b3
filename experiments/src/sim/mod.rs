//! Seeded simulations of the teaching experiments: pure functions from parameters and a seed to
//! an [`Outcome`], with no sockets, no clock and no threads, so that the same parameters and
//! seed give a bit-identical outcome (and so the same report bytes). They own the models and
//! their figures; they never read or write files, and the analyses they measure with (sessions,
//! Weibull fits, KS distances) are the crawler's, not copies.
//!
//! Each module has a `Params` (read from a campaign file, unknown fields refused, defaults that
//! run in well under a second in a debug build), `Params::validate` (a [`ParamsError`] naming
//! the field; `run` itself never panics or hangs on bad input) and `run(&Params, seed) ->
//! Outcome`, whose measurement names are stable for campaign checks:
//!
//! - [`distribution`]: client–server vs P2P file distribution time against
//!   d_cs = max{NF/u_s, F/d_min} and d_P2P = max{F/u_s, F/d_min, NF/(u_s + Σu_i)}.
//! - [`piece_selection`]: rarest-first vs random piece selection when the only seed leaves
//!   early: pieces lost to the swarm and completion (Legout et al., IMC 2006).
//! - [`choking`]: tit-for-tat against its gamers in a steady-state swarm: BitThief's large-view
//!   free riding, BitTyrant's strategic unchoker, PropShare and Sybil splitting (Locher et al.,
//!   HotNets 2006; Piatek et al., NSDI 2007; Levin et al., SIGCOMM 2008).
//! - [`search`]: flooding with a TTL vs k random walkers on an unstructured overlay: success
//!   against messages per query (Lv et al., ICS 2002).
//! - [`chord`]: Chord lookups with finger tables: path length against ½·log₂N, and lookups when
//!   nodes fail without repair, by successor-list length (Stoica et al., SIGCOMM 2001).
//! - [`lifetime_bias`]: a churn process with known Weibull sessions probed periodically; naive
//!   vs create-based session lengths (Stutzbach and Rejaie, IMC 2006).
//! - [`graph`]: seeded random graphs (Erdős–Rényi, Barabási–Albert) as adjacency lists.

pub mod choking;
pub mod chord;
pub mod distribution;
pub mod graph;
pub mod lifetime_bias;
pub mod piece_selection;
pub mod search;

// The seeded-draw helpers are the Gnutella plan's: an independent stream per purpose of a run
// (drawing more of one thing leaves the others as they were), a uniform [0, 1) draw and a
// Fisher–Yates shuffle.
pub(crate) use crate::gnutella::churn::unit;
pub(crate) use crate::gnutella::topology::{shuffle, stream};

use thiserror::Error;

use crate::outcome::{Measurement, Published};

/// A measurement, with its published counterpart if `published` is given.
pub(crate) fn measurement(
    name: impl Into<String>,
    label: impl Into<String>,
    value: f64,
    unit: &str,
    published: Option<(f64, &str)>,
) -> Measurement {
    Measurement {
        name: name.into(),
        label: label.into(),
        value,
        unit: unit.to_string(),
        published: published.map(|(value, source)| Published {
            value,
            source: source.to_string(),
        }),
    }
}

/// The mean of `values` (0 for none).
pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The median of `values` (0 for none; the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Why a simulation's parameters were refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("invalid simulation parameter `{field}`: {reason}")]
pub struct ParamsError {
    /// The parameter.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// `Ok` if `ok`, else the error for `field`.
pub(crate) fn require(ok: bool, field: &'static str, reason: impl Into<String>) -> Result<(), ParamsError> {
    if ok {
        Ok(())
    } else {
        Err(ParamsError {
            field,
            reason: reason.into(),
        })
    }
}

/// `x` is finite and > 0.
pub(crate) fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

#[cfg(test)]
mod tests {
    use crate::outcome::Outcome;

    /// Every value is finite, so `results.json` holds numbers (serde_json writes NaN as null,
    /// which does not read back) and reads back into the same shape. (Without serde_json's
    /// `float_roundtrip` feature a float may come back one ulp off, so values are compared to
    /// a relative 1e-12.)
    #[test]
    fn default_outcomes_round_trip_through_json() {
        let small_search = super::search::Params {
            nodes: 2000,
            queries: 50,
            ..Default::default()
        };
        let outcomes = [
            super::distribution::run(&Default::default(), 1),
            super::piece_selection::run(&Default::default(), 1),
            super::search::run(&small_search, 1),
            super::lifetime_bias::run(&Default::default(), 1),
            super::choking::run(&Default::default(), 1),
        ];
        for o in outcomes {
            assert!(o.measurements.iter().all(|m| m.value.is_finite()), "{}", o.experiment);
            let json = serde_json::to_string(&o).expect("serializes");
            let back: Outcome = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back.measurements.len(), o.measurements.len());
            for (a, b) in back.measurements.iter().zip(&o.measurements) {
                assert_eq!(a.name, b.name);
                assert!(
                    (a.value - b.value).abs() <= 1e-12 * b.value.abs().max(1.0),
                    "{}",
                    a.name
                );
            }
            assert_eq!(back.figures.len(), o.figures.len());
            assert_eq!(back.tables, o.tables);
        }
    }
}
