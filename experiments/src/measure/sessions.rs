//! Session lengths a crawl measured against the true ones of a churning testbed: every
//! measured session (naive) and the sessions seen to start and end (create-based, Stutzbach
//! and Rejaie, "Understanding churn in peer-to-peer networks", IMC 2006), next to the true
//! mean and the churn model's mean, with their CDFs.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use onionlab_crawler::analysis::sessions::Weibull;
use onionlab_crawler::store::SessionRow;

use crate::gnutella::config::WeibullParams;
use crate::outcome::{Figure, Measurement, Series, SeriesStyle};
use crate::sim::{mean, measurement};

/// Scores the crawl's `sessions` of the `churning` addresses (the `who` of the testbed, in
/// words) against the `true_lengths` (seconds) of the sessions that ended within the crawl
/// and the `model` they were drawn from.
pub fn session_bias(
    model: &WeibullParams,
    who: &str,
    churning: &BTreeSet<SocketAddr>,
    true_lengths: &[f64],
    sessions: &[SessionRow],
) -> (Vec<Measurement>, Figure) {
    let length = |r: &SessionRow| (r.ended_at - r.started_at) as f64 / 1e6;
    let mine: Vec<&SessionRow> = sessions.iter().filter(|r| churning.contains(&r.addr)).collect();
    let naive: Vec<f64> = mine.iter().map(|r| length(r)).collect();
    let create_based: Vec<f64> = mine
        .iter()
        .filter(|r| !r.left_censored && !r.right_censored)
        .map(|r| length(r))
        .collect();
    let model = Weibull::new(model.shape, model.scale).map_or(0.0, |w| w.mean());
    let source = "the testbed's churn model (Weibull mean)";
    let measurements = vec![
        measurement(
            "true_mean_session",
            format!("true mean session of the churning {who} (ended within the crawl)"),
            mean(true_lengths),
            "s",
            Some((model, source)),
        ),
        measurement(
            "true_sessions",
            format!("true sessions of the churning {who} ended within the crawl"),
            true_lengths.len() as f64,
            "",
            None,
        ),
        measurement(
            "naive_mean_session",
            "measured mean session, every session seen (naive)",
            mean(&naive),
            "s",
            Some((model, source)),
        ),
        measurement(
            "create_based_mean_session",
            "measured mean session, sessions seen to start and end (create-based)",
            mean(&create_based),
            "s",
            Some((model, source)),
        ),
        measurement(
            "create_based_over_true",
            "create-based mean over the true mean of the sessions that ended within the crawl",
            match mean(true_lengths) {
                t if t > 0.0 => mean(&create_based) / t,
                _ => 0.0,
            },
            "",
            Some((1.0, "an unbiased estimator (Stutzbach and Rejaie, IMC 2006)")),
        ),
        measurement(
            "measured_sessions",
            format!("sessions of the churning {who} the crawl measured"),
            naive.len() as f64,
            "",
            None,
        ),
    ];
    let cdf = |name: &str, lengths: &[f64], style: SeriesStyle| {
        let mut sorted = lengths.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        Series {
            name: name.into(),
            style,
            points: sorted
                .iter()
                .enumerate()
                .map(|(i, x)| (*x, (i + 1) as f64 / n))
                .collect(),
        }
    };
    let figure = Figure {
        id: "session-lengths".into(),
        title: format!("Session lengths of the churning {who}: true and measured"),
        x_label: "session length (s)".into(),
        y_label: "fraction of sessions at most this long".into(),
        x_log: false,
        y_log: false,
        series: vec![
            cdf("true", true_lengths, SeriesStyle::Reference),
            cdf("measured, naive", &naive, SeriesStyle::Step),
            cdf("measured, create-based", &create_based, SeriesStyle::Step),
        ],
    };
    (measurements, figure)
}
