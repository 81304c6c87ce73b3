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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(port: u16, secs: (i64, i64), left_censored: bool, right_censored: bool) -> SessionRow {
        SessionRow {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            id: None,
            started_at: secs.0 * 1_000_000,
            ended_at: secs.1 * 1_000_000,
            left_censored,
            right_censored,
        }
    }

    #[test]
    fn censored_sessions_count_only_in_the_naive_mean_and_other_peers_not_at_all() {
        let churning: BTreeSet<SocketAddr> = [1, 2, 3].map(|p| SocketAddr::from(([127, 0, 0, 1], p))).into();
        let sessions = [
            row(1, (0, 2), true, false),    // already up when the crawl began: 2 s seen
            row(2, (10, 14), false, false), // whole: 4 s
            row(3, (20, 26), false, false), // whole: 6 s
            row(3, (30, 31), false, true),  // still up when it ended: 1 s seen
            row(9, (0, 100), false, false), // not a churning peer
        ];
        let model = WeibullParams { shape: 1.0, scale: 5.0 };
        let (m, figure) = session_bias(&model, "leaves", &churning, &[4.0, 6.0], &sessions);
        let get = |name: &str| m.iter().find(|x| x.name == name).expect(name);
        assert_eq!(get("naive_mean_session").value, 13.0 / 4.0);
        assert_eq!(get("create_based_mean_session").value, 5.0);
        assert_eq!(get("measured_sessions").value, 4.0);
        assert_eq!(get("true_mean_session").value, 5.0);
        assert_eq!(get("create_based_over_true").value, 1.0);
        // Weibull(1, 5) is the exponential distribution of mean 5.
        let model_mean = get("true_mean_session")
            .published
            .as_ref()
            .expect("the model's mean")
            .value;
        assert!((model_mean - 5.0).abs() < 1e-9, "{model_mean}");
        let [truth, naive, create_based] = &figure.series[..] else {
            panic!("three CDFs")
        };
        assert_eq!(truth.points, vec![(4.0, 0.5), (6.0, 1.0)]);
        assert_eq!(naive.points.len(), 4);
        assert_eq!(create_based.points, vec![(4.0, 0.5), (6.0, 1.0)]);
    }

    #[test]
    fn nothing_measured_gives_zeros_not_nan() {
        let model = WeibullParams { shape: 1.5, scale: 4.0 };
        let (m, _) = session_bias(&model, "leaves", &BTreeSet::new(), &[], &[]);
        assert!(m.iter().all(|x| x.value.is_finite()), "{m:?}");
        assert!(m.iter().any(|x| x.name == "create_based_over_true" && x.value == 0.0));
    }
}
