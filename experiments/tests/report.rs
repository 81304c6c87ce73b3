//! The report end to end: a synthetic campaign (every series style, log axes, a degenerate
//! figure, passing, failing and missing checks) written into a temporary folder, read back and
//! rebuilt. The same campaign is kept in `tests/fixtures/report/results.json`, which
//! `interop/report.sh` opens in headless Chromium; a test here keeps that file current
//! (`UPDATE_FIXTURES=1 cargo test -p onionlab-experiments --test report` rewrites it).

use onionlab_experiments::outcome::{Figure, Measurement, Outcome, Published, Series, SeriesStyle, Table};
use onionlab_experiments::report::{self, CheckResult, RESULTS_FILE, ReportInput, SavedResults};
use std::path::PathBuf;

fn measurement(name: &str, label: &str, value: f64, unit: &str, published: Option<(f64, &str)>) -> Measurement {
    Measurement {
        name: name.into(),
        label: label.into(),
        value,
        unit: unit.into(),
        published: published.map(|(value, source)| Published {
            value,
            source: source.into(),
        }),
    }
}

fn series(name: &str, style: SeriesStyle, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.into(),
        style,
        points,
    }
}

/// A synthetic campaign: made-up numbers, compared with formulas rather than papers.
fn campaign() -> SavedResults {
    let sizes: [f64; 5] = [16.0, 64.0, 256.0, 1024.0, 4096.0];
    let lookups = Outcome {
        experiment: "lookup-hops".into(),
        title: "Lookup path length (synthetic)".into(),
        summary: "A synthetic outcome for the report's tests: hops per lookup in overlays of 16 to 4096 nodes, \
                  next to the formula log2(N) / 2."
            .into(),
        measurements: vec![
            measurement(
                "mean_hops_n1024",
                "Mean hops, N = 1024",
                5.12,
                "hops",
                Some((5.0, "formula: log2(N) / 2")),
            ),
            measurement("lookups", "Lookups per size", 200.0, "", None),
        ],
        figures: vec![Figure {
            id: "hops".into(),
            title: "Hops per lookup against overlay size".into(),
            x_label: "nodes N".into(),
            y_label: "hops".into(),
            x_log: true,
            y_log: false,
            series: vec![
                series(
                    "measured mean",
                    SeriesStyle::Line,
                    sizes.iter().map(|&n| (n, n.log2() / 2.0 * 1.03)).collect(),
                ),
                series(
                    "single lookups",
                    SeriesStyle::Points,
                    sizes
                        .iter()
                        .flat_map(|&n| [(n, n.log2() / 2.0 - 0.5), (n, n.log2() / 2.0 + 0.7)])
                        .collect(),
                ),
                series(
                    "log2(N) / 2",
                    SeriesStyle::Reference,
                    sizes.iter().map(|&n| (n, n.log2() / 2.0)).collect(),
                ),
            ],
        }],
        tables: vec![Table {
            id: "hops-by-size".into(),
            title: "Hops by size".into(),
            columns: vec!["N".into(), "mean hops".into()],
            rows: sizes
                .iter()
                .map(|&n| vec![n.to_string(), format!("{:.3}", n.log2() / 2.0 * 1.03)])
                .collect(),
        }],
    };
    let cdf: Vec<(f64, f64)> = (1..=20)
        .map(|i| (f64::from(i) * f64::from(i) * 0.5, f64::from(i) / 20.0))
        .collect();
    let sessions = Outcome {
        experiment: "session-lengths".into(),
        title: "Session lengths (synthetic) <script>alert(1)</script>".into(),
        summary: "Made-up session lengths on log axes, and a figure with nothing to draw.".into(),
        measurements: vec![measurement(
            "median_session_s",
            "Median session",
            50.0,
            "s",
            Some((60.0, "formula: exponential with mean 86.6 s")),
        )],
        figures: vec![
            Figure {
                id: "cdf".into(),
                title: "Session length CDF".into(),
                x_label: "session length (s)".into(),
                y_label: "fraction of sessions".into(),
                x_log: true,
                y_log: true,
                series: vec![
                    series("measured", SeriesStyle::Step, cdf),
                    series("with a zero", SeriesStyle::Points, vec![(0.0, 0.5), (10.0, 0.2)]),
                ],
            },
            Figure {
                id: "empty".into(),
                title: "A figure with no points".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                x_log: false,
                y_log: false,
                series: vec![series("nothing", SeriesStyle::Line, vec![])],
            },
        ],
        tables: vec![],
    };
    SavedResults {
        campaign: "Report fixture (synthetic)".into(),
        description: "Synthetic outcomes that exercise every part of the report. None of these numbers \
                      was measured."
            .into(),
        seed: Some(20261122),
        outcomes: vec![lookups, sessions],
        checks: vec![
            CheckResult {
                measurement: "mean_hops_n1024".into(),
                expected: 5.0,
                tolerance: "±10 %".into(),
                measured: Some(5.12),
                passed: true,
            },
            CheckResult {
                measurement: "median_session_s".into(),
                expected: 60.0,
                tolerance: "±5 %".into(),
                measured: Some(50.0),
                passed: false,
            },
            CheckResult {
                measurement: "churn_rate".into(),
                expected: 0.25,
                tolerance: "±0.05".into(),
                measured: None,
                passed: false,
            },
        ],
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(RESULTS_FILE)
}

#[test]
fn report_for_a_synthetic_campaign() {
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = campaign();
    let path = report::write_report(dir.path(), &saved.input()).expect("report written");
    let html = std::fs::read_to_string(&path).expect("report.html");

    assert_eq!(html.matches("<svg ").count(), 3, "one inline SVG per figure");
    assert_eq!(html.matches("<details>").count(), 3, "the numbers behind each figure");
    for text in [
        "<h1>Report fixture (synthetic)</h1>",
        "<span class=\"fail\">FAIL</span>: 1 of 3 checks passed.",
        "<td class=\"num\">5.12 hops</td><td class=\"num\">5 hops</td><td class=\"num\">+2.4 %</td>",
        "<td class=\"num\">50 s</td><td class=\"num\">60 s</td><td class=\"num\">-16.7 %</td>",
        "Session lengths (synthetic) &lt;script&gt;alert(1)&lt;/script&gt;",
        "Series “with a zero”: 1 of 2 points not drawn (not finite, or not positive on a log axis).",
        "Nothing to draw: this figure has no drawable points.",
        "<a href=\"#outcome-session-lengths\">",
    ] {
        assert!(html.contains(text), "missing: {text}");
    }
    assert!(!html.contains("<script"));

    let json = std::fs::read_to_string(dir.path().join(RESULTS_FILE)).expect("results.json");
    let back: SavedResults = serde_json::from_str(&json).expect("results.json parses");
    assert_eq!(back, saved);
    assert_eq!(report::rebuild(dir.path()).expect("rebuilt"), path);
    assert_eq!(
        std::fs::read_to_string(&path).expect("report.html"),
        html,
        "rebuild gives the same bytes"
    );
    assert_eq!(report::render_html(&back.input()), html);
}

#[test]
fn fixture_is_the_synthetic_campaign() {
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = campaign();
    let input: ReportInput = saved.input();
    report::write_report(dir.path(), &input).expect("report written");
    let fresh = std::fs::read_to_string(dir.path().join(RESULTS_FILE)).expect("results.json");
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(fixture(), &fresh).expect("fixture written");
    }
    let kept = std::fs::read_to_string(fixture()).expect("fixture (UPDATE_FIXTURES=1 writes it)");
    assert_eq!(
        kept, fresh,
        "tests/fixtures/report/results.json is stale: rerun with UPDATE_FIXTURES=1"
    );
}
