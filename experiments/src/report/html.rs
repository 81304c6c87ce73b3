//! The report page: header (campaign, description, seed), the checks table, then each outcome
//! with its measurements next to the published values, its figures (inline SVG, and the numbers
//! behind each in a collapsible table) and its tables. All text goes through [`escape::html`];
//! the page loads nothing and runs no script.

use super::numbers::{relative_difference, show, with_unit};
use super::{CheckResult, ReportInput, escape, plot};
use crate::outcome::{Figure, Measurement, Outcome, Table};
use std::fmt::Write;

/// The page's style sheet (inline, so the file stands alone).
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;max-width:66rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{color:#0a6b2d;font-weight:bold}.fail{color:#b00020;font-weight:bold}.meta{color:#555}
figure{margin:1.2rem 0 2rem}figcaption{font-weight:bold;margin-bottom:.3rem}
figure svg{max-width:100%;height:auto;border:1px solid #ddd}
.note{color:#8a5a00;font-style:italic}details{margin:.4rem 0}summary{cursor:pointer;color:#0645ad}
nav ul{padding-left:1.2rem}code{background:#f3f3f3;padding:0 .2rem}
";

/// The whole page for `input`. Deterministic: the same input gives the same bytes.
pub fn render_html(input: &ReportInput) -> String {
    let mut page = String::new();
    let title = escape::html(input.campaign);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        page,
        "<meta name=\"generator\" content=\"onionlab {}\">",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        page,
        "<title>{title} — onionlab report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>"
    );
    let _ = writeln!(page, "<header>\n<h1>{title}</h1>");
    paragraphs(&mut page, input.description);
    let seed = match input.seed {
        Some(seed) => format!(
            "Seed: <code>{seed}</code> (a simulation gives the same report for the same seed; a loopback testbed is drawn from it, while what its sockets measure varies from run to run)."
        ),
        None => "No seed: this run measured real sockets, so another run gives other numbers.".into(),
    };
    let _ = writeln!(page, "<p class=\"meta\">{seed}</p>\n</header>");
    checks(&mut page, input);
    contents(&mut page, input.outcomes);
    for outcome in input.outcomes {
        outcome_section(&mut page, outcome);
    }
    let _ = writeln!(
        page,
        "<footer><p class=\"meta\">Written by onionlab {}; <code>onionlab report FOLDER</code> rebuilds this page \
         from <code>results.json</code>, which holds the exact values.</p></footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    page
}

/// `text` as paragraphs (blank lines separate them).
fn paragraphs(page: &mut String, text: &str) {
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let _ = writeln!(page, "<p>{}</p>", escape::html(paragraph));
    }
}

/// The checks table, with a one-line verdict above it.
fn checks(page: &mut String, input: &ReportInput) {
    page.push_str("<section id=\"checks\">\n<h2>Checks</h2>\n");
    if input.checks.is_empty() {
        page.push_str("<p>This campaign has no checks.</p>\n</section>\n");
        return;
    }
    let passed = input.checks.iter().filter(|c| c.passed).count();
    let (class, verdict) = if passed == input.checks.len() {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = writeln!(
        page,
        "<p><span class=\"{class}\">{verdict}</span>: {passed} of {} checks passed.</p>",
        input.checks.len()
    );
    page.push_str(
        "<table class=\"checks\">\n<thead><tr><th>Measurement</th><th>Measured</th><th>Expected</th>\
         <th>Tolerance</th><th>Result</th></tr></thead>\n<tbody>\n",
    );
    for check in input.checks {
        check_row(page, check, find_measurement(input.outcomes, &check.measurement));
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}

fn check_row(page: &mut String, check: &CheckResult, measurement: Option<&Measurement>) {
    let unit = measurement.map_or("", |m| m.unit.as_str());
    let name = match measurement {
        Some(m) => format!(
            "{} <code>{}</code>",
            escape::html(&m.label),
            escape::html(&check.measurement)
        ),
        None => format!("<code>{}</code>", escape::html(&check.measurement)),
    };
    let measured = match check.measured {
        Some(v) => escape::html(&with_unit(v, unit)),
        None => "<span class=\"fail\">not measured</span>".into(),
    };
    let (class, result) = if check.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = writeln!(
        page,
        "<tr><td>{name}</td><td class=\"num\">{measured}</td><td class=\"num\">{}</td><td>{}</td>\
         <td class=\"{class}\">{result}</td></tr>",
        escape::html(&with_unit(check.expected, unit)),
        escape::html(&check.tolerance)
    );
}

fn find_measurement<'a>(outcomes: &'a [Outcome], name: &str) -> Option<&'a Measurement> {
    outcomes.iter().find_map(|o| o.measurement(name))
}

/// Links to each outcome, when there is more than one.
fn contents(page: &mut String, outcomes: &[Outcome]) {
    if outcomes.len() < 2 {
        return;
    }
    page.push_str("<nav>\n<h2>Experiments</h2>\n<ul>\n");
    for outcome in outcomes {
        let _ = writeln!(
            page,
            "<li><a href=\"#{}\">{}</a></li>",
            outcome_anchor(outcome),
            escape::html(&outcome.title)
        );
    }
    page.push_str("</ul>\n</nav>\n");
}

fn outcome_anchor(outcome: &Outcome) -> String {
    format!("outcome-{}", escape::anchor(&outcome.experiment))
}

fn outcome_section(page: &mut String, outcome: &Outcome) {
    let _ = writeln!(
        page,
        "<section class=\"outcome\" id=\"{}\">\n<h2>{}</h2>",
        outcome_anchor(outcome),
        escape::html(&outcome.title)
    );
    paragraphs(page, &outcome.summary);
    if !outcome.measurements.is_empty() {
        measurements(page, &outcome.measurements);
    }
    for figure in &outcome.figures {
        figure_block(page, outcome, figure);
    }
    for table in &outcome.tables {
        table_block(page, table);
    }
    page.push_str("</section>\n");
}

/// Measured values next to the published ones, with the source and the relative difference.
fn measurements(page: &mut String, measurements: &[Measurement]) {
    page.push_str(
        "<h3>Measurements</h3>\n<table class=\"measurements\">\n<thead><tr><th>Measurement</th><th>Measured</th>\
         <th>Published</th><th>Difference</th><th>Source</th></tr></thead>\n<tbody>\n",
    );
    for m in measurements {
        let (published, difference, source) = match &m.published {
            Some(p) => (
                escape::html(&with_unit(p.value, &m.unit)),
                relative_difference(m.value, p.value).unwrap_or_else(|| "—".into()),
                escape::html(&p.source),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let _ = writeln!(
            page,
            "<tr><td>{} <code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{published}</td>\
             <td class=\"num\">{}</td><td>{source}</td></tr>",
            escape::html(&m.label),
            escape::html(&m.name),
            escape::html(&with_unit(m.value, &m.unit)),
            escape::html(&difference)
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

/// A figure: its SVG, notes on what could not be drawn, and the points in a collapsible table.
fn figure_block(page: &mut String, outcome: &Outcome, figure: &Figure) {
    let anchor = format!(
        "figure-{}-{}",
        escape::anchor(&outcome.experiment),
        escape::anchor(&figure.id)
    );
    let _ = writeln!(
        page,
        "<figure id=\"{anchor}\">\n<figcaption>{}</figcaption>",
        escape::html(&figure.title)
    );
    let drawn = plot::draw(figure);
    if let Some(svg) = &drawn.svg {
        let labelled = format!("<svg role=\"img\" aria-label=\"{}\" ", escape::html(&figure.title));
        page.push_str(&svg.replacen("<svg ", &labelled, 1));
    }
    for note in &drawn.notes {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", escape::html(note));
    }
    let points: usize = figure.series.iter().map(|s| s.points.len()).sum();
    let _ = writeln!(
        page,
        "<details>\n<summary>The numbers behind this figure ({points} points; rounded to {} significant digits, \
         exact in results.json)</summary>",
        super::numbers::SIGNIFICANT
    );
    let _ = writeln!(
        page,
        "<table class=\"points\">\n<thead><tr><th>Series</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        escape::html(&figure.x_label),
        escape::html(&figure.y_label)
    );
    for series in &figure.series {
        let name = escape::html(&series.name);
        for &(x, y) in &series.points {
            let _ = writeln!(
                page,
                "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                show(x),
                show(y)
            );
        }
    }
    page.push_str("</tbody>\n</table>\n</details>\n</figure>\n");
}

/// A table of text cells; short rows are padded with empty cells.
fn table_block(page: &mut String, table: &Table) {
    let _ = writeln!(
        page,
        "<h3 id=\"table-{}\">{}</h3>\n<table class=\"data\">\n<thead><tr>",
        escape::anchor(&table.id),
        escape::html(&table.title)
    );
    for column in &table.columns {
        let _ = write!(page, "<th>{}</th>", escape::html(column));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    let width = table
        .rows
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(table.columns.len());
    for row in &table.rows {
        page.push_str("<tr>");
        for i in 0..width {
            let _ = write!(
                page,
                "<td>{}</td>",
                row.get(i).map(|c| escape::html(c)).unwrap_or_default()
            );
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    fn page(outcomes: &[Outcome], checks: &[CheckResult]) -> String {
        render_html(&ReportInput {
            campaign: "Swarm speed-up",
            description: "Does a swarm beat one server?\n\nA seeded run.",
            seed: Some(42),
            outcomes,
            checks,
        })
    }

    #[test]
    fn same_input_same_bytes() {
        let outcomes = [sample::outcome()];
        let checks = sample::checks();
        assert_eq!(page(&outcomes, &checks), page(&outcomes, &checks));
    }

    #[test]
    fn text_from_outcomes_stays_text() {
        let mut outcome = sample::outcome();
        outcome.title = "<script>alert(1)</script>".into();
        outcome.figures[0].title = "a <b>bold</b> & figure".into();
        outcome.figures[0].series[0].name = "<img src=x onerror=alert(1)>".into();
        outcome.tables[0].rows[0][0] = "</td><script>".into();
        let html = page(&[outcome], &[]);
        assert!(!html.contains("<script"), "a script element got through");
        assert!(!html.contains("<img"), "an img element got through");
        assert!(!html.contains("<b>"));
        assert!(html.contains("<h2>&lt;script&gt;alert(1)&lt;/script&gt;</h2>"));
        assert!(html.contains("a &lt;b&gt;bold&lt;/b&gt; &amp; figure"));
    }

    #[test]
    fn page_shows_checks_measurements_figures_and_tables() {
        let html = page(&[sample::outcome()], &sample::checks());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<h1>Swarm speed-up</h1>"));
        assert!(html.contains("<p>Does a swarm beat one server?</p>\n<p>A seeded run.</p>"));
        assert!(html.contains("Seed: <code>42</code>"));
        assert!(html.contains("<span class=\"fail\">FAIL</span>: 1 of 3 checks passed."));
        assert!(html.contains(
            "<tr><td>Median speed-up <code>median_speedup</code></td><td class=\"num\">3.1 ×</td>\
             <td class=\"num\">3 ×</td><td>±10 %</td><td class=\"pass\">PASS</td></tr>"
        ));
        assert!(html.contains("<span class=\"fail\">not measured</span>"));
        assert!(html.contains(
            "<td class=\"num\">3.1 ×</td><td class=\"num\">3 ×</td><td class=\"num\">+3.33 %</td>\
             <td>formula: log2(N) / 2</td>"
        ));
        assert_eq!(html.matches("<svg ").count(), 1);
        assert!(html.contains("<figure id=\"figure-distribution-time-styles\">"));
        assert!(html.contains("<svg role=\"img\" aria-label=\"Figure styles\" width=\"760\""));
        assert!(html.contains("The numbers behind this figure (17 points;"));
        assert!(html.contains("<tr><td>cdf</td><td class=\"num\">15</td><td class=\"num\">1</td></tr>"));
        assert!(html.contains("<tr><td>b</td><td></td></tr>"), "short rows are padded");
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    }

    #[test]
    fn unseeded_run_without_checks_says_so() {
        let html = render_html(&ReportInput {
            campaign: "c",
            description: "",
            seed: None,
            outcomes: &[],
            checks: &[],
        });
        assert!(html.contains("No seed"));
        assert!(html.contains("This campaign has no checks."));
    }

    #[test]
    fn degenerate_figure_shows_a_note() {
        let mut outcome = sample::outcome();
        outcome.figures = vec![sample::figure("empty", vec![])];
        let html = page(&[outcome], &[]);
        assert!(html.contains("<p class=\"note\">Nothing to draw: this figure has no drawable points.</p>"));
        assert_eq!(html.matches("<svg ").count(), 1, "empty axes are still drawn");
    }
}
