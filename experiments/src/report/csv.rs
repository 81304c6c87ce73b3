//! The numbers of a report as CSV files in `FOLDER/csv/`, for a spreadsheet or pandas:
//! `measurements.csv` (every measurement with its published value), one `figure-ID.csv` per plot
//! (series, x, y: the points drawn) and one `table-ID.csv` per table. Fields are quoted as RFC
//! 4180 asks (the crawler's exporter's rule); numbers are written in full (Rust's shortest
//! round-trip form), so the files are as deterministic as `results.json`.

use std::path::Path;

use onionlab_crawler::store::csv_text;

use super::ReportInput;
use crate::outcome::Outcome;

/// The folder inside a report folder.
pub const CSV_FOLDER: &str = "csv";

/// Write every CSV file of `input` into `folder/csv/` (made if missing).
pub(crate) fn write_csv(folder: &Path, input: &ReportInput) -> std::io::Result<()> {
    let dir = folder.join(CSV_FOLDER);
    std::fs::create_dir_all(&dir)?;
    let multi = input.outcomes.len() > 1;
    let mut measurements = String::from("experiment,name,label,value,unit,published,source\r\n");
    for outcome in input.outcomes {
        for m in &outcome.measurements {
            let (published, source) = match &m.published {
                Some(p) => (p.value.to_string(), p.source.as_str()),
                None => (String::new(), ""),
            };
            row(
                &mut measurements,
                &[
                    &outcome.experiment,
                    &m.name,
                    &m.label,
                    &m.value.to_string(),
                    &m.unit,
                    &published,
                    source,
                ],
            );
        }
        write_figures_and_tables(&dir, outcome, multi)?;
    }
    std::fs::write(dir.join("measurements.csv"), measurements)
}

fn write_figures_and_tables(dir: &Path, outcome: &Outcome, multi: bool) -> std::io::Result<()> {
    // With several outcomes in one report, ids are prefixed by the experiment's key.
    let name = |kind: &str, id: &str| match multi {
        true => format!("{kind}-{}-{}.csv", safe(&outcome.experiment), safe(id)),
        false => format!("{kind}-{}.csv", safe(id)),
    };
    for figure in &outcome.figures {
        let mut text = format!("series,{},{}\r\n", quoted(&figure.x_label), quoted(&figure.y_label));
        for series in &figure.series {
            for (x, y) in &series.points {
                row(&mut text, &[&series.name, &x.to_string(), &y.to_string()]);
            }
        }
        std::fs::write(dir.join(name("figure", &figure.id)), text)?;
    }
    for table in &outcome.tables {
        let mut text = String::new();
        row(&mut text, &table.columns.iter().map(String::as_str).collect::<Vec<_>>());
        for cells in &table.rows {
            row(&mut text, &cells.iter().map(String::as_str).collect::<Vec<_>>());
        }
        std::fs::write(dir.join(name("table", &table.id)), text)?;
    }
    Ok(())
}

fn row(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_text(out, f);
    }
    out.push_str("\r\n");
}

fn quoted(text: &str) -> String {
    let mut out = String::new();
    csv_text(&mut out, text);
    out
}

/// An id as a file-name part: letters, digits, `-` and `_` kept, anything else `_`.
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn every_number_lands_in_a_csv_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outcome = sample::outcome();
        let input = ReportInput {
            campaign: "c",
            description: "",
            seed: Some(1),
            outcomes: std::slice::from_ref(&outcome),
            checks: &[],
        };
        write_csv(dir.path(), &input).expect("written");
        let read = |f: &str| std::fs::read_to_string(dir.path().join(CSV_FOLDER).join(f)).expect(f);
        let measurements = read("measurements.csv");
        assert_eq!(measurements.lines().count(), 1 + outcome.measurements.len());
        for m in &outcome.measurements {
            assert!(measurements.contains(&m.value.to_string()), "{}", m.name);
        }
        for f in &outcome.figures {
            let text = read(&format!("figure-{}.csv", safe(&f.id)));
            let points: usize = f.series.iter().map(|s| s.points.len()).sum();
            assert_eq!(text.lines().count(), 1 + points, "{}", f.id);
        }
        for t in &outcome.tables {
            assert_eq!(
                read(&format!("table-{}.csv", safe(&t.id))).lines().count(),
                1 + t.rows.len()
            );
        }
        assert_eq!(safe("a/b c"), "a_b_c");
    }
}
