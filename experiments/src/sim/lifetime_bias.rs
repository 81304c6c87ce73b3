//! Why measured peer lifetimes are biased, and how the create-based method corrects it, after
//! Stutzbach and Rejaie, "Understanding churn in peer-to-peer networks" (IMC 2006, §3.2).
//!
//! The truth: peers arrive as a Poisson process and stay for a session drawn from a known
//! Weibull (heavy-tailed for shapes below 1), from long before the measurement window until its
//! end, so the window opens on a population in steady state. The measurement: complete
//! snapshots every probe interval within the window [0, W], each seeing exactly the peers up at
//! that instant; a peer first seen after the window opened also gets a down probe at the
//! snapshot before (its arrival is known). A session shorter than the interval can fall between
//! two snapshots and go unseen.
//!
//! The probes go through the crawler's own analysis ([`onionlab_crawler::analysis::sessions`]:
//! the state machine, [`naive_lengths`], [`create_based_lengths`], [`weibull_fit_censored`],
//! [`ks_distance`]); nothing here estimates sessions a second way. The naive sample takes every
//! observed session at face value, cut by the window's edges and length-biased at its start;
//! the create-based sample keeps sessions that start in the first half of the window, with the
//! ones still up at the end right-censored, and its censored Weibull fit estimates the true
//! shape, scale and mean. With frequent probes the naive mean comes out short (the window's
//! edges); coarser probes miss short sessions and push both samples long, which can cancel in
//! the naive mean by coincidence, never in its distribution. Never: downtimes and returning peers (each session is its own peer),
//! or probes that miss an up peer.

use onionlab_crawler::analysis::sessions::{
    Lifetime, Probe, Weibull, Window, create_based_lengths, empirical_cdf, ks_distance, naive_lengths, sessions,
    weibull_fit_censored,
};
use serde::Deserialize;

use super::{ParamsError, mean, measurement, positive, require, stream, unit};
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};

/// The churn process and the measurement; times in hours, probe intervals in minutes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Weibull shape k of the true session lengths (< 1: heavy-tailed, as measured in
    /// Gnutella, BitTorrent and Kad).
    pub shape: f64,
    /// Weibull scale λ of the true session lengths, hours.
    pub scale_hours: f64,
    /// Poisson arrival rate, peers per hour.
    pub arrivals_per_hour: f64,
    /// Measurement window W, hours.
    pub window_hours: f64,
    /// Probe intervals to compare, minutes.
    pub probe_intervals_minutes: Vec<f64>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            shape: 0.5,
            scale_hours: 4.0,
            arrivals_per_hour: 50.0,
            window_hours: 48.0,
            probe_intervals_minutes: vec![1.0, 5.0, 15.0, 30.0],
        }
    }
}

/// Sessions drawn in one run, at most (arrivals over the warm-up and the window).
const MAX_SESSIONS: f64 = 2_000_000.0;
/// Snapshots per probe interval, at most.
const MAX_SNAPSHOTS: f64 = 100_000.0;

impl Params {
    /// Refuses parameters the model cannot run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require(positive(self.shape) && self.shape >= 0.1, "shape", "must be ≥ 0.1")?;
        require(positive(self.scale_hours), "scale_hours", "must be finite and > 0")?;
        require(
            positive(self.arrivals_per_hour),
            "arrivals_per_hour",
            "must be finite and > 0",
        )?;
        require(positive(self.window_hours), "window_hours", "must be finite and > 0")?;
        let expected = self.arrivals_per_hour * (self.window_hours + self.warmup());
        require(
            expected <= MAX_SESSIONS,
            "arrivals_per_hour",
            format!("expects {expected:.0} sessions over the window and warm-up, more than {MAX_SESSIONS}"),
        )?;
        require(
            !self.probe_intervals_minutes.is_empty()
                && self
                    .probe_intervals_minutes
                    .iter()
                    .all(|&m| positive(m) && self.window_hours * 60.0 / m <= MAX_SNAPSHOTS),
            "probe_intervals_minutes",
            format!("each must be > 0 and give at most {MAX_SNAPSHOTS} snapshots"),
        )
    }

    fn truth(&self) -> Option<Weibull> {
        Weibull::new(self.shape, self.scale_hours).ok()
    }

    /// How long before the window arrivals start: a session longer than this has probability
    /// below 10⁻⁶.
    fn warmup(&self) -> f64 {
        self.truth().map_or(0.0, |w| w.quantile(1.0 - 1e-6))
    }
}

/// One true session, hours.
#[derive(Debug, Clone, Copy)]
struct TrueSession {
    start: f64,
    end: f64,
}

/// What one probe interval measured.
struct Estimate {
    minutes: f64,
    seen: usize,
    naive: Vec<f64>,
    create_based: Vec<Lifetime>,
    fit: Option<Weibull>,
}

/// The probes of complete snapshots every `interval` hours within [0, w].
fn probes(truth: &[TrueSession], interval: f64, w: f64) -> Vec<Probe<usize>> {
    let last = (w / interval).floor() as i64;
    let at = |j: i64| j as f64 * interval;
    let mut out = Vec::new();
    for (peer, s) in truth.iter().enumerate() {
        // Snapshots j with at(j) in [start, end): the peer is up there.
        let first = if s.start <= 0.0 {
            0
        } else {
            (s.start / interval).ceil() as i64
        };
        let after = ((s.end / interval).ceil() as i64).max(first);
        if first > last || first >= after {
            continue;
        }
        if first > 0 && s.start > 0.0 {
            out.push(Probe {
                peer,
                at: at(first - 1),
                up: false,
            });
        }
        for j in first..after.min(last + 1) {
            out.push(Probe {
                peer,
                at: at(j),
                up: true,
            });
        }
        if after <= last {
            out.push(Probe {
                peer,
                at: at(after),
                up: false,
            });
        }
    }
    out
}

/// Runs the churn process once and measures it with every probe interval (call
/// [`Params::validate`] first; invalid parameters give an outcome without estimates, never a
/// panic or a hang).
pub fn run(params: &Params, seed: u64) -> Outcome {
    let (Some(weibull), Ok(()), Ok(window)) =
        (params.truth(), params.validate(), Window::new(0.0, params.window_hours))
    else {
        return outcome(params, seed, None, &[], &[]);
    };
    let w = params.window_hours;
    let mut rng = stream(seed, 5);
    let mut truth = Vec::new();
    let mut t = -params.warmup();
    loop {
        t += -(1.0 - unit(&mut rng)).ln() / params.arrivals_per_hour;
        if t >= w {
            break;
        }
        let end = t + weibull.quantile(unit(&mut rng));
        if end > 0.0 {
            truth.push(TrueSession { start: t, end });
        }
    }
    let estimates: Vec<Estimate> = params
        .probe_intervals_minutes
        .iter()
        .map(|&minutes| {
            let found = sessions(&probes(&truth, minutes / 60.0, w), window);
            let create_based = create_based_lengths(&found, window);
            Estimate {
                minutes,
                seen: found.len(),
                naive: naive_lengths(&found),
                fit: weibull_fit_censored(&create_based).ok(),
                create_based,
            }
        })
        .collect();
    // The ground truth the estimators aim at: every session that started in the window.
    let started: Vec<f64> = truth
        .iter()
        .filter(|s| s.start >= 0.0)
        .map(|s| s.end - s.start)
        .collect();
    outcome(params, seed, Some(weibull), &started, &estimates)
}

/// `cdf` of a sample, read at each of `grid` (a step function through the crawler's ECDF).
fn cdf_at(sample: &[f64], grid: &[f64]) -> Vec<(f64, f64)> {
    let cdf = empirical_cdf(sample);
    grid.iter()
        .map(|&x| {
            let below = cdf.partition_point(|p| p.0 <= x);
            (x, if below == 0 { 0.0 } else { cdf[below - 1].1 })
        })
        .collect()
}

const STUTZBACH: &str = "Stutzbach and Rejaie, \"Understanding churn in peer-to-peer networks\", IMC 2006, \
                         §3.2: the create-based method removes the bias of naive session lengths";

fn outcome(params: &Params, seed: u64, truth: Option<Weibull>, started: &[f64], estimates: &[Estimate]) -> Outcome {
    let w = params.window_hours;
    let mut measurements = Vec::new();
    let mut figures = Vec::new();
    let mut rows = Vec::new();
    if let Some(truth) = truth {
        let true_mean = truth.mean();
        let model = format!(
            "the simulated truth: Weibull(k = {}, λ = {} h)",
            params.shape, params.scale_hours
        );
        measurements.push(measurement(
            "true_mean",
            "mean length of the sessions that started in the window (ground truth)",
            mean(started),
            "h",
            Some((true_mean, &format!("{model}, mean λ·Γ(1 + 1/k)"))),
        ));
        let grid: Vec<f64> = (0..=120)
            .map(|i| params.scale_hours * 1e-3 * (1e3 * w / params.scale_hours).powf(i as f64 / 120.0))
            .collect();
        for e in estimates {
            let tag = format!("{}min", e.minutes);
            let face_value: Vec<f64> = e.create_based.iter().map(|l| l.length).collect();
            let cdf = |x: f64| truth.cdf(x);
            let naive_ks = ks_distance(&e.naive, cdf, w / 2.0);
            let create_ks = ks_distance(&face_value, cdf, w / 2.0);
            measurements.push(measurement(
                format!("naive_mean_{tag}"),
                format!("mean naive session length, probes every {} min", e.minutes),
                mean(&e.naive),
                "h",
                Some((true_mean, &model)),
            ));
            if let Some(fit) = e.fit {
                measurements.extend([
                    measurement(
                        format!("create_based_mean_{tag}"),
                        format!(
                            "mean of the censored Weibull fit to the create-based sample, every {} min",
                            e.minutes
                        ),
                        fit.mean(),
                        "h",
                        Some((true_mean, STUTZBACH)),
                    ),
                    measurement(
                        format!("create_based_shape_{tag}"),
                        format!(
                            "Weibull shape fitted to the create-based sample, every {} min",
                            e.minutes
                        ),
                        fit.shape(),
                        "",
                        Some((params.shape, &model)),
                    ),
                    measurement(
                        format!("create_based_scale_{tag}"),
                        format!(
                            "Weibull scale fitted to the create-based sample, every {} min",
                            e.minutes
                        ),
                        fit.scale(),
                        "h",
                        Some((params.scale_hours, &model)),
                    ),
                ]);
            }
            for (name, ks, what) in [
                ("naive_ks", naive_ks, "naive"),
                ("create_based_ks", create_ks, "create-based"),
            ] {
                if let Some(ks) = ks {
                    measurements.push(measurement(
                        format!("{name}_{tag}"),
                        format!(
                            "KS distance of the {what} sample to the true CDF up to W/2, every {} min",
                            e.minutes
                        ),
                        ks,
                        "",
                        None,
                    ));
                }
            }
            figures.push(Figure {
                id: format!("session-cdf-{tag}"),
                title: format!("Session length CDF, probes every {} min", e.minutes),
                x_label: "session length (hours)".to_string(),
                y_label: "share of sessions ≤ x".to_string(),
                x_log: true,
                y_log: false,
                series: vec![
                    Series {
                        name: "true (Weibull)".to_string(),
                        style: SeriesStyle::Reference,
                        points: grid.iter().map(|&x| (x, truth.cdf(x))).collect(),
                    },
                    Series {
                        name: "naive".to_string(),
                        style: SeriesStyle::Step,
                        points: cdf_at(&e.naive, &grid),
                    },
                    Series {
                        name: "create-based (censored at face value)".to_string(),
                        style: SeriesStyle::Step,
                        points: cdf_at(&face_value, &grid),
                    },
                ],
            });
            let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
            rows.push(vec![
                e.minutes.to_string(),
                e.seen.to_string(),
                format!("{:.3}", mean(&e.naive)),
                e.create_based.len().to_string(),
                fmt(e.fit.map(|f| f.mean())),
                fmt(e.fit.map(|f| f.shape())),
                fmt(e.fit.map(|f| f.scale())),
                fmt(naive_ks),
                fmt(create_ks),
            ]);
        }
    }
    Outcome {
        experiment: "lifetime-bias".to_string(),
        title: "Peer-lifetime measurement bias: naive vs create-based".to_string(),
        summary: format!(
            "Peers arrive at {} per hour and stay for Weibull(k = {}, λ = {} h) sessions (seed {seed}); \
             complete snapshots every {:?} minutes over a {} h window feed the crawler's session analysis. \
             Naive session lengths are compared with the create-based method and its censored Weibull \
             fit (Stutzbach and Rejaie, IMC 2006).",
            params.arrivals_per_hour, params.shape, params.scale_hours, params.probe_intervals_minutes, w,
        ),
        measurements,
        figures,
        tables: vec![Table {
            id: "estimates".to_string(),
            title: "Estimates per probe interval".to_string(),
            columns: [
                "interval (min)",
                "sessions seen",
                "naive mean (h)",
                "create-based n",
                "fitted mean (h)",
                "fitted shape",
                "fitted scale (h)",
                "naive KS",
                "create-based KS",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(o: &Outcome, name: &str) -> f64 {
        o.measurement(name).map(|m| m.value).expect("measurement present")
    }

    #[test]
    fn create_based_beats_naive_on_a_heavy_tail() {
        let o = run(&Params::default(), 1);
        let truth = o
            .measurement("true_mean")
            .and_then(|m| m.published.clone())
            .expect("truth")
            .value;
        assert!((truth - 8.0).abs() < 1e-9, "λ·Γ(3) = 8 h");
        assert!((value(&o, "true_mean") - truth).abs() / truth < 0.1);
        // Frequent probes: the window's edges cut naive sessions short; the create-based fit
        // is closer, in mean and in distribution.
        let naive = value(&o, "naive_mean_1min");
        assert!(naive < 0.92 * truth, "naive {naive}");
        for m in [1, 5] {
            let naive = value(&o, &format!("naive_mean_{m}min"));
            let create = value(&o, &format!("create_based_mean_{m}min"));
            assert!(
                (create - truth).abs() < (naive - truth).abs(),
                "{m} min: naive {naive}, create {create}"
            );
        }
        assert!(value(&o, "create_based_ks_1min") < value(&o, "naive_ks_1min"));
        assert!((value(&o, "create_based_shape_1min") - 0.5).abs() < 0.1);
        assert!((value(&o, "create_based_scale_1min") - 4.0).abs() < 1.2);
        // Coarser probes miss short sessions: both samples drift towards long ones.
        assert!(value(&o, "naive_ks_30min") > value(&o, "naive_ks_1min"));
        assert!(value(&o, "create_based_shape_30min") > value(&o, "create_based_shape_1min"));
    }

    #[test]
    fn probes_follow_complete_snapshots() {
        let truth = [
            TrueSession { start: -1.0, end: 0.25 },
            TrueSession { start: 0.3, end: 0.45 },
            TrueSession { start: 0.55, end: 0.58 },
        ];
        let p = probes(&truth, 0.1, 1.0);
        let of = |peer: usize| -> Vec<(f64, bool)> {
            p.iter()
                .filter(|x| x.peer == peer)
                .map(|x| ((x.at * 10.0).round() / 10.0, x.up))
                .collect()
        };
        assert_eq!(of(0), vec![(0.0, true), (0.1, true), (0.2, true), (0.3, false)]);
        assert_eq!(of(1), vec![(0.2, false), (0.3, true), (0.4, true), (0.5, false)]);
        assert!(of(2).is_empty(), "a session between two snapshots is never seen");
    }

    #[test]
    fn seeded_and_deterministic() {
        let params = Params {
            window_hours: 8.0,
            probe_intervals_minutes: vec![10.0],
            ..Params::default()
        };
        assert_eq!(run(&params, 3), run(&params, 3));
        assert_ne!(run(&params, 3).measurements, run(&params, 4).measurements);
    }

    #[test]
    fn bad_parameters_are_refused_and_run_stays_total() {
        for p in [
            Params {
                shape: 0.0,
                ..Params::default()
            },
            Params {
                arrivals_per_hour: 1e9,
                ..Params::default()
            },
            Params {
                probe_intervals_minutes: vec![0.0],
                ..Params::default()
            },
        ] {
            assert!(p.validate().is_err(), "{p:?}");
            assert!(run(&p, 1).measurements.is_empty());
        }
        Params::default().validate().expect("defaults are valid");
    }
}
