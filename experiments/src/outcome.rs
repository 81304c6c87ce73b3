//! What an experiment produces, whatever ran it (a seeded simulation or real sockets on
//! loopback): measured values next to the published values they reproduce, figures (series of
//! points, drawn by the report as SVG), and tables. It is plain data: the report renders it,
//! campaign checks compare it, and it is saved as `results.json` so that `onionlab report`
//! can rebuild a report without running anything.
//!
//! Determinism: an outcome holds no times or paths of the run that made it, so a seeded
//! simulation gives the same outcome, hence the same `results.json` and `report.html` bytes.

use serde::{Deserialize, Serialize};

/// Everything one experiment found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Stable key of the experiment (`distribution-time`, `rarest-first`, ...).
    pub experiment: String,
    /// Title for people.
    pub title: String,
    /// What was done, in a short paragraph (setup, parameters, seed).
    pub summary: String,
    /// The numbers, each with its published counterpart when there is one.
    pub measurements: Vec<Measurement>,
    /// The plots a student would draw.
    pub figures: Vec<Figure>,
    /// The numbers behind the figures, or any other table.
    pub tables: Vec<Table>,
}

/// One measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Stable key, used by campaign checks (`median_speedup`, `mean_path_length_n1024`).
    pub name: String,
    /// What it is, for people.
    pub label: String,
    /// The value measured.
    pub value: f64,
    /// Its unit (`s`, `%`, `hops`, or empty).
    pub unit: String,
    /// The value the literature reports (or the formula predicts), if any.
    pub published: Option<Published>,
}

/// A published (or predicted) value and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The value.
    pub value: f64,
    /// The source: a paper (authors, venue, year, section) or a formula.
    pub source: String,
}

/// A plot: series of (x, y) points on shared axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable key (also the anchor in the report).
    pub id: String,
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    #[serde(default)]
    pub x_log: bool,
    /// Logarithmic y axis.
    #[serde(default)]
    pub y_log: bool,
    /// The series, drawn in order.
    pub series: Vec<Series>,
}

/// One named series of a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// How it is drawn.
    pub style: SeriesStyle,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesStyle {
    /// Points joined by straight lines (measurements over a parameter).
    Line,
    /// Points alone (samples, scatter).
    Points,
    /// A step function (CDFs).
    Step,
    /// A dashed line (a formula or a published curve, to compare against).
    Reference,
}

/// A table of text cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Stable key.
    pub id: String,
    /// Title above the table.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<String>>,
}

impl Outcome {
    /// The measurement named `name`.
    pub fn measurement(&self, name: &str) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.name == name)
    }
}
