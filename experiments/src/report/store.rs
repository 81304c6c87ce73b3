//! The numbers of a report as an SQLite store, `FOLDER/results.sqlite`, and as Parquet files in
//! `FOLDER/parquet/`, for SQL, DuckDB or pandas: the same rows as the CSV files, in long form.
//!
//! Tables of `results.sqlite` (Parquet files: `measurements.parquet`, `points.parquet`):
//! - `measurements(experiment, name, label, value, unit, published, source)`: every measured
//!   value beside its published one (NULL when the literature gives none);
//! - `figures(experiment, figure, title, x_label, y_label)` and
//!   `points(experiment, figure, series, x, y)`: every plot and the points it draws;
//! - `table_cells(experiment, table_id, row, column_name, value)`: the report's tables, a cell a
//!   row (the header row is not repeated);
//! - `checks(measurement, expected, tolerance, measured, passed)`: the campaign's checks.
//!
//! Both are rewritten whole at each report, from the same input as `results.json`, in input
//! order, so the same input gives the same rows.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rusqlite::{Connection, params};

use super::ReportInput;

/// The store's file name inside a report folder.
pub const STORE_FILE: &str = "results.sqlite";
/// The Parquet folder inside a report folder.
pub const PARQUET_FOLDER: &str = "parquet";

const SCHEMA: &str = "
CREATE TABLE measurements (experiment TEXT NOT NULL, name TEXT NOT NULL, label TEXT NOT NULL,
    value REAL NOT NULL, unit TEXT NOT NULL, published REAL, source TEXT);
CREATE TABLE figures (experiment TEXT NOT NULL, figure TEXT NOT NULL, title TEXT NOT NULL,
    x_label TEXT NOT NULL, y_label TEXT NOT NULL);
CREATE TABLE points (experiment TEXT NOT NULL, figure TEXT NOT NULL, series TEXT NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL);
CREATE TABLE table_cells (experiment TEXT NOT NULL, table_id TEXT NOT NULL, row INTEGER NOT NULL,
    column_name TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE checks (measurement TEXT NOT NULL, expected REAL NOT NULL, tolerance TEXT NOT NULL,
    measured REAL, passed INTEGER NOT NULL);
";

/// Why the store or the Parquet files could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or folder could not be made or removed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("{path}: {source}")]
    Sql {
        /// The store.
        path: std::path::PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The Parquet writer refused.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: std::path::PathBuf,
        /// What the writer said.
        source: parquet::errors::ParquetError,
    },
}

/// Write `folder/results.sqlite` and `folder/parquet/*.parquet` from `input`, replacing any.
pub(crate) fn write_store(folder: &Path, input: &ReportInput) -> Result<(), StoreError> {
    write_sqlite(&folder.join(STORE_FILE), input)?;
    let dir = folder.join(PARQUET_FOLDER);
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
        path: dir.clone(),
        source,
    })?;
    write_parquet(&dir.join("measurements.parquet"), measurements_batch(input))?;
    write_parquet(&dir.join("points.parquet"), points_batch(input))
}

fn write_sqlite(path: &Path, input: &ReportInput) -> Result<(), StoreError> {
    super::remove_if_present(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let sql = |source| StoreError::Sql {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(SCHEMA).map_err(sql)?;
    for outcome in input.outcomes {
        let e = &outcome.experiment;
        for m in &outcome.measurements {
            let (published, source) = match &m.published {
                Some(p) => (Some(p.value), Some(p.source.as_str())),
                None => (None, None),
            };
            tx.execute(
                "INSERT INTO measurements VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e, m.name, m.label, m.value, m.unit, published, source],
            )
            .map_err(sql)?;
        }
        for f in &outcome.figures {
            tx.execute(
                "INSERT INTO figures VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e, f.id, f.title, f.x_label, f.y_label],
            )
            .map_err(sql)?;
            for s in &f.series {
                for (x, y) in &s.points {
                    tx.execute(
                        "INSERT INTO points VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![e, f.id, s.name, x, y],
                    )
                    .map_err(sql)?;
                }
            }
        }
        for t in &outcome.tables {
            for (row, cells) in t.rows.iter().enumerate() {
                for (column, value) in t.columns.iter().zip(cells) {
                    tx.execute(
                        "INSERT INTO table_cells VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![e, t.id, row as i64, column, value],
                    )
                    .map_err(sql)?;
                }
            }
        }
    }
    for c in input.checks {
        tx.execute(
            "INSERT INTO checks VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.measurement, c.expected, c.tolerance, c.measured, c.passed],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(sql)
}

/// A batch from named columns (every field nullable).
fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
}

fn measurements_batch(input: &ReportInput) -> Result<RecordBatch, ArrowError> {
    let (mut experiment, mut name, mut unit, mut source) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut value, mut published) = (Float64Builder::new(), Float64Builder::new());
    for outcome in input.outcomes {
        for m in &outcome.measurements {
            experiment.append_value(&outcome.experiment);
            name.append_value(&m.name);
            value.append_value(m.value);
            unit.append_value(&m.unit);
            published.append_option(m.published.as_ref().map(|p| p.value));
            source.append_option(m.published.as_ref().map(|p| p.source.as_str()));
        }
    }
    batch(vec![
        ("experiment", Arc::new(experiment.finish())),
        ("name", Arc::new(name.finish())),
        ("value", Arc::new(value.finish())),
        ("unit", Arc::new(unit.finish())),
        ("published", Arc::new(published.finish())),
        ("source", Arc::new(source.finish())),
    ])
}

fn points_batch(input: &ReportInput) -> Result<RecordBatch, ArrowError> {
    let (mut experiment, mut figure, mut series) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let (mut x, mut y) = (Float64Builder::new(), Float64Builder::new());
    for outcome in input.outcomes {
        for f in &outcome.figures {
            for s in &f.series {
                for (px, py) in &s.points {
                    experiment.append_value(&outcome.experiment);
                    figure.append_value(&f.id);
                    series.append_value(&s.name);
                    x.append_value(*px);
                    y.append_value(*py);
                }
            }
        }
    }
    batch(vec![
        ("experiment", Arc::new(experiment.finish())),
        ("figure", Arc::new(figure.finish())),
        ("series", Arc::new(series.finish())),
        ("x", Arc::new(x.finish())),
        ("y", Arc::new(y.finish())),
    ])
}

fn write_parquet(path: &Path, batch: Result<RecordBatch, ArrowError>) -> Result<(), StoreError> {
    let parquet = |source| StoreError::Parquet {
        path: path.to_owned(),
        source,
    };
    let batch = batch.map_err(|e| parquet(e.into()))?;
    let file = std::fs::File::create(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet)?;
    writer.write(&batch).map_err(parquet)?;
    writer.close().map_err(parquet)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn every_number_lands_in_the_store_and_the_parquet_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outcome = sample::outcome();
        let checks = sample::checks();
        let input = ReportInput {
            campaign: "c",
            description: "",
            seed: Some(1),
            outcomes: std::slice::from_ref(&outcome),
            checks: &checks,
        };
        // Twice: the second write replaces the first, rows are not added again.
        write_store(dir.path(), &input).expect("first write");
        write_store(dir.path(), &input).expect("second write");
        let conn = Connection::open(dir.path().join(STORE_FILE)).expect("store");
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql);
        let points: usize = outcome
            .figures
            .iter()
            .flat_map(|f| &f.series)
            .map(|s| s.points.len())
            .sum();
        // A short row (the sample has one) has only the cells it holds.
        let cells: usize = outcome
            .tables
            .iter()
            .flat_map(|t| t.rows.iter().map(|r| r.len().min(t.columns.len())))
            .sum();
        assert_eq!(
            count("SELECT count(*) FROM measurements") as usize,
            outcome.measurements.len()
        );
        assert_eq!(count("SELECT count(*) FROM figures") as usize, outcome.figures.len());
        assert_eq!(count("SELECT count(*) FROM points") as usize, points);
        assert_eq!(count("SELECT count(*) FROM table_cells") as usize, cells);
        assert_eq!(count("SELECT count(*) FROM checks") as usize, checks.len());
        let m = &outcome.measurements[0];
        let (value, published): (f64, Option<f64>) = conn
            .query_row(
                "SELECT value, published FROM measurements WHERE name = ?1",
                [&m.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the first measurement");
        assert_eq!((value, published), (m.value, m.published.as_ref().map(|p| p.value)));

        let read = |file: &str| {
            let f = std::fs::File::open(dir.path().join(PARQUET_FOLDER).join(file)).expect(file);
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .expect("parquet")
                .build()
                .expect("reader");
            reader.map(|b| b.expect("batch").num_rows()).sum::<usize>()
        };
        assert_eq!(read("measurements.parquet"), outcome.measurements.len());
        assert_eq!(read("points.parquet"), points);
    }
}
