//! `onionlab-crawl export`: a store's tables to Parquet and/or CSV files, one per table.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use onionlab_crawler::store::{CrawlId, ExportSummary, Store, export_csv, export_parquet};

/// Arguments of `export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The store (SQLite file) to export.
    db: PathBuf,
    /// The folder to write `<table>.parquet` / `<table>.csv` into (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Which files to write.
    #[arg(long, value_enum, default_value_t = Format::Both)]
    format: Format,
    /// Export only this crawl's rows (default: every crawl).
    #[arg(long)]
    crawl: Option<CrawlId>,
}

/// Export formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Parquet (Snappy), for DuckDB, Spark, Trino.
    Parquet,
    /// CSV (RFC 4180; blobs in hex).
    Csv,
    /// Both.
    Both,
}

pub(crate) fn run(args: ExportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.db.is_file(), "no store at {}", args.db.display());
    let store = Store::open(&args.db)?;
    let mut summaries = Vec::new();
    if matches!(args.format, Format::Parquet | Format::Both) {
        summaries.push(export_parquet(&store, &args.out, args.crawl).context("Parquet export failed")?);
    }
    if matches!(args.format, Format::Csv | Format::Both) {
        summaries.push(export_csv(&store, &args.out, args.crawl).context("CSV export failed")?);
    }
    for ExportSummary { tables } in summaries {
        for t in tables {
            println!("{:>10} rows  {}", t.rows, t.path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use onionlab_crawler::engine::Recorder;
    use onionlab_crawler::observe::{Observation, ProbeKind, Visit};
    use onionlab_crawler::store::{CrawlEnd, Recording};

    use crate::cli::{Args, Command};

    #[tokio::test]
    async fn exports_one_crawl_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("crawl.sqlite");
        let (rec, recording): (Recorder, Recording) = Recording::begin(&db, "dht", "test").unwrap();
        let addr = "10.0.0.1:6881".parse().unwrap();
        rec.record(Observation::Visit(Visit::start(
            ProbeKind::DhtPing,
            "10.0.0.1:6881",
            Some(addr),
        )))
        .await;
        let crawl = recording.crawl().id;
        recording.finish(CrawlEnd::Finished).await.unwrap();

        let out = dir.path().join("out");
        let crawl = crawl.to_string();
        let argv = [
            "onionlab-crawl",
            "export",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--crawl",
            &crawl,
        ];
        let Command::Export(args) = Args::try_parse_from(argv).unwrap().command else {
            panic!("not the export command");
        };
        super::run(args).unwrap();
        for table in ["crawls", "visits", "sightings", "peers", "neighbours"] {
            assert!(out.join(format!("{table}.parquet")).is_file(), "{table}");
            assert!(out.join(format!("{table}.csv")).is_file(), "{table}");
        }
        let visits = std::fs::read_to_string(out.join("visits.csv")).unwrap();
        assert_eq!(visits.lines().count(), 2, "{visits}");

        let missing = dir.path().join("missing.sqlite");
        let argv = [
            "onionlab-crawl",
            "export",
            missing.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        let Command::Export(args) = Args::try_parse_from(argv).unwrap().command else {
            panic!("not the export command");
        };
        let err = super::run(args).unwrap_err();
        assert!(err.to_string().contains("missing.sqlite"), "{err}");
        assert!(!missing.exists());
    }
}
