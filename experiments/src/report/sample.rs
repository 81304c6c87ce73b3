//! Test data for the report's unit tests: one outcome with every kind of content.

use super::CheckResult;
use crate::outcome::{Figure, Measurement, Outcome, Published, Series, SeriesStyle, Table};

/// A series named `name` drawn as `style`.
pub(super) fn series(name: &str, style: SeriesStyle, points: &[(f64, f64)]) -> Series {
    Series {
        name: name.into(),
        style,
        points: points.to_vec(),
    }
}

/// A linear figure holding `series`.
pub(super) fn figure(id: &str, series: Vec<Series>) -> Figure {
    Figure {
        id: id.into(),
        title: format!("Figure {id}"),
        x_label: "peers".into(),
        y_label: "time (s)".into(),
        x_log: false,
        y_log: false,
        series,
    }
}

/// An outcome with two measurements, a figure of each series style and a table.
pub(super) fn outcome() -> Outcome {
    let cdf: Vec<(f64, f64)> = (1..=10).map(|i| (f64::from(i) * 1.5, f64::from(i) / 10.0)).collect();
    Outcome {
        experiment: "distribution-time".into(),
        title: "Distribution time".into(),
        summary: "Seeded swarm of 50 peers.\n\nSecond paragraph.".into(),
        measurements: vec![
            Measurement {
                name: "median_speedup".into(),
                label: "Median speed-up".into(),
                value: 3.1,
                unit: "×".into(),
                published: Some(Published {
                    value: 3.0,
                    source: "formula: log2(N) / 2".into(),
                }),
            },
            Measurement {
                name: "peers".into(),
                label: "Peers".into(),
                value: 50.0,
                unit: String::new(),
                published: None,
            },
        ],
        figures: vec![figure(
            "styles",
            vec![
                series("measured", SeriesStyle::Line, &[(1.0, 2.0), (2.0, 3.0), (4.0, 3.5)]),
                series("samples", SeriesStyle::Points, &[(1.5, 2.2), (3.0, 3.1)]),
                series("cdf", SeriesStyle::Step, &cdf),
                series("formula", SeriesStyle::Reference, &[(1.0, 1.0), (15.0, 4.0)]),
            ],
        )],
        tables: vec![Table {
            id: "per-peer".into(),
            title: "Per peer".into(),
            columns: vec!["peer".into(), "finished (s)".into()],
            rows: vec![vec!["a".into(), "12.5".into()], vec!["b".into()]],
        }],
    }
}

/// Checks on [`outcome`]: one passing, one failing, one not measured.
pub(super) fn checks() -> Vec<CheckResult> {
    vec![
        CheckResult {
            measurement: "median_speedup".into(),
            expected: 3.0,
            tolerance: "±10 %".into(),
            measured: Some(3.1),
            passed: true,
        },
        CheckResult {
            measurement: "peers".into(),
            expected: 60.0,
            tolerance: "±1".into(),
            measured: Some(50.0),
            passed: false,
        },
        CheckResult {
            measurement: "missing_one".into(),
            expected: 1.0,
            tolerance: "±5 %".into(),
            measured: None,
            passed: false,
        },
    ]
}
