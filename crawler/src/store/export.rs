//! Export of the store's tables (and the `neighbours` view) to one file per table: Parquet, for
//! DuckDB, Spark or Trino once a crawl outgrows one machine, and CSV for everything else. Export
//! only reads the store; it streams rows, so memory stays bounded whatever the crawl's size.
//!
//! Column types follow the schema's declared types: INTEGER columns become Int64 (or, for the
//! times listed in the schema, Parquet timestamps in microseconds, UTC), TEXT becomes UTF-8
//! strings, BLOB (ids, hashes, client names, raw replies) becomes binary. Parquet files are
//! Snappy-compressed and carry the schema version as `onionlab.schema_version` metadata.
//!
//! CSV follows RFC 4180: a header line, CRLF line ends, fields holding a comma, a quote, CR or LF
//! quoted with inner quotes doubled. A NULL is an empty field, an empty text a quoted `""`; blobs
//! are lowercase hex; times are integers (microseconds since the epoch).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rusqlite::types::ValueRef;

use super::schema::{SCHEMA_VERSION, TABLES, TIME_COLUMNS};
use super::{CrawlId, Store, StoreError};

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedTable {
    /// The table or view.
    pub table: &'static str,
    /// The file written.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
}

/// What an export wrote, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// One entry per file, in the schema's table order.
    pub tables: Vec<ExportedTable>,
}

/// The storage class of a column, from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Time,
    Text,
    Blob,
}

/// A column to export.
struct Column {
    name: String,
    kind: Kind,
}

/// Rows per Parquet record batch (bounds memory while exporting).
const BATCH_ROWS: usize = 65_536;

/// Write every table of `store` (only the rows of `crawl`, if given) to `dir/<table>.parquet`.
pub fn export_parquet(store: &Store, dir: &Path, crawl: Option<CrawlId>) -> Result<ExportSummary, StoreError> {
    export(store, dir, crawl, "parquet", write_parquet)
}

/// Write every table of `store` (only the rows of `crawl`, if given) to `dir/<table>.csv`.
pub fn export_csv(store: &Store, dir: &Path, crawl: Option<CrawlId>) -> Result<ExportSummary, StoreError> {
    export(store, dir, crawl, "csv", write_csv)
}

type TableWriter = fn(&Store, &'static str, &[Column], &mut rusqlite::Rows<'_>, &Path) -> Result<u64, StoreError>;

fn export(
    store: &Store,
    dir: &Path,
    crawl: Option<CrawlId>,
    extension: &str,
    write: TableWriter,
) -> Result<ExportSummary, StoreError> {
    if let Some(id) = crawl {
        store.crawl(id)?;
    }
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut summary = ExportSummary::default();
    for (table, _) in TABLES {
        let columns = columns(store, table)?;
        let list = columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
        let key = if table == "crawls" { "id" } else { "crawl_id" };
        let filter = if crawl.is_some() {
            format!(" WHERE {key} = ?1")
        } else {
            String::new()
        };
        let is_view: bool = store
            .conn
            .query_row(
                "SELECT type = 'view' FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(store.sql_err())?;
        // Tables in insertion order; views in the order of the table they select from.
        let order = if is_view { "" } else { " ORDER BY rowid" };
        let sql = format!("SELECT {list} FROM {table}{filter}{order}");
        let mut stmt = store.conn.prepare(&sql).map_err(store.sql_err())?;
        let mut rows = match crawl {
            Some(id) => stmt.query([id.0]),
            None => stmt.query([]),
        }
        .map_err(store.sql_err())?;
        let path = dir.join(format!("{table}.{extension}"));
        let n = write(store, table, &columns, &mut rows, &path)?;
        summary.tables.push(ExportedTable { table, path, rows: n });
    }
    Ok(summary)
}

/// The columns of `table` with their kinds, from `PRAGMA table_info` (works for views too).
fn columns(store: &Store, table: &str) -> Result<Vec<Column>, StoreError> {
    let mut stmt = store
        .conn
        .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(store.sql_err())?;
    let rows = stmt
        .query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(store.sql_err())?;
    let mut out = Vec::new();
    for row in rows {
        let (name, ty) = row.map_err(store.sql_err())?;
        let kind = match ty.to_ascii_uppercase().as_str() {
            "TEXT" => Kind::Text,
            "BLOB" => Kind::Blob,
            _ if TIME_COLUMNS.contains(&name.as_str()) => Kind::Time,
            // INTEGER, and the untyped expressions of views (counts, booleans).
            _ => Kind::Int,
        };
        out.push(Column { name, kind });
    }
    Ok(out)
}

fn corrupt(store: &Store, table: &'static str, row: u64, column: &Column, what: &str) -> StoreError {
    StoreError::Corrupt {
        path: store.path.clone(),
        table,
        rowid: None,
        detail: format!("column {} of exported row {} holds {what}", column.name, row + 1),
    }
}

/// A column's values being gathered for one record batch.
enum Builder {
    Int(Int64Builder),
    Time(TimestampMicrosecondBuilder),
    Text(StringBuilder),
    Blob(BinaryBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Int => Builder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            Kind::Time => Builder::Time(TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC")),
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::Blob => Builder::Blob(BinaryBuilder::new()),
        }
    }

    fn data_type(kind: Kind) -> DataType {
        match kind {
            Kind::Int => DataType::Int64,
            Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Text => DataType::Utf8,
            Kind::Blob => DataType::Binary,
        }
    }

    /// Append `v`; `Err` names what the value was if it does not fit the column.
    fn push(&mut self, v: ValueRef<'_>) -> Result<(), &'static str> {
        match (self, v) {
            (Builder::Int(b), ValueRef::Null) => b.append_null(),
            (Builder::Int(b), ValueRef::Integer(i)) => b.append_value(i),
            (Builder::Time(b), ValueRef::Null) => b.append_null(),
            (Builder::Time(b), ValueRef::Integer(i)) => b.append_value(i),
            (Builder::Text(b), ValueRef::Null) => b.append_null(),
            (Builder::Text(b), ValueRef::Text(t)) => {
                b.append_value(std::str::from_utf8(t).map_err(|_| "invalid UTF-8")?)
            }
            (Builder::Blob(b), ValueRef::Null) => b.append_null(),
            (Builder::Blob(b), ValueRef::Blob(x)) => b.append_value(x),
            (_, ValueRef::Integer(_)) => return Err("an integer"),
            (_, ValueRef::Real(_)) => return Err("a real number"),
            (_, ValueRef::Text(_)) => return Err("text"),
            (_, ValueRef::Blob(_)) => return Err("a blob"),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Blob(b) => Arc::new(b.finish()),
        }
    }
}

fn write_parquet(
    store: &Store,
    table: &'static str,
    columns: &[Column],
    rows: &mut rusqlite::Rows<'_>,
    path: &Path,
) -> Result<u64, StoreError> {
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_owned(),
        source,
    };
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, Builder::data_type(c.kind), true))
            .collect::<Vec<_>>(),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "onionlab.schema_version".to_owned(),
            SCHEMA_VERSION.to_string(),
        )]))
        .build();
    let file = File::create(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    let mut builders: Vec<Builder> = columns.iter().map(|c| Builder::new(c.kind)).collect();
    let mut in_batch = 0;
    let mut total = 0u64;
    let flush = |builders: &mut Vec<Builder>, writer: &mut ArrowWriter<File>| -> Result<(), StoreError> {
        let arrays = builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| parquet_err(ParquetError::from(e)))?;
        writer.write(&batch).map_err(parquet_err)
    };
    while let Some(row) = rows.next().map_err(store.sql_err())? {
        for (i, (b, c)) in builders.iter_mut().zip(columns).enumerate() {
            let v = row.get_ref(i).map_err(store.sql_err())?;
            b.push(v).map_err(|what| corrupt(store, table, total, c, what))?;
        }
        in_batch += 1;
        total += 1;
        if in_batch == BATCH_ROWS {
            flush(&mut builders, &mut writer)?;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        flush(&mut builders, &mut writer)?;
    }
    writer.close().map_err(parquet_err)?;
    Ok(total)
}

fn write_csv(
    store: &Store,
    table: &'static str,
    columns: &[Column],
    rows: &mut rusqlite::Rows<'_>,
    path: &Path,
) -> Result<u64, StoreError> {
    let io_err = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io_err)?;
    let mut out = BufWriter::new(file);
    let mut line = String::new();
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_text(&mut line, &c.name);
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes()).map_err(io_err)?;
    let mut total = 0u64;
    while let Some(row) = rows.next().map_err(store.sql_err())? {
        line.clear();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            match row.get_ref(i).map_err(store.sql_err())? {
                ValueRef::Null => {}
                ValueRef::Integer(n) => line.push_str(&n.to_string()),
                ValueRef::Real(x) => line.push_str(&x.to_string()),
                ValueRef::Text(t) => {
                    let t = std::str::from_utf8(t).map_err(|_| corrupt(store, table, total, c, "invalid UTF-8"))?;
                    csv_text(&mut line, t);
                }
                ValueRef::Blob(b) => hex(&mut line, b),
            }
        }
        line.push_str("\r\n");
        out.write_all(line.as_bytes()).map_err(io_err)?;
        total += 1;
    }
    out.flush().map_err(io_err)?;
    Ok(total)
}

/// Append `text` as one CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF, or
/// is empty (so that an empty text differs from NULL).
pub fn csv_text(line: &mut String, text: &str) {
    if text.is_empty() || text.contains([',', '"', '\r', '\n']) {
        line.push('"');
        for ch in text.chars() {
            if ch == '"' {
                line.push('"');
            }
            line.push(ch);
        }
        line.push('"');
    } else {
        line.push_str(text);
    }
}

/// Append `bytes` as lowercase hex.
fn hex(line: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        line.push(char::from(DIGITS[usize::from(b >> 4)]));
        line.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

#[cfg(test)]
mod tests;
