//! Export tests: Parquet files read back with the parquet crate's own reader, and CSV quoting.

use std::net::SocketAddr;

use arrow_array::{Array, BinaryArray, Int64Array, StringArray, TimestampMicrosecondArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::engine::Recorder;
use crate::infohash::InfoHash;
use crate::observe::{Observation, Outcome, PieceCheck, ProbeKind, Sighting, SourceKind, Visit};
use crate::store::{CrawlEnd, WriterConfig, spawn_writer};

const NASTY: &str = "refused, \"politely\"\r\nthen\nagain";

fn visit(i: i64, error: Option<&str>) -> Visit {
    let addr: SocketAddr = if i % 2 == 0 {
        "10.0.0.1:6881"
    } else {
        "[2001:db8::7]:6881"
    }
    .parse()
    .unwrap();
    Visit {
        probe: ProbeKind::DhtPing,
        target: addr.to_string(),
        addr: Some(addr),
        info_hash: None,
        at: 1_700_000_000_000_000 + i,
        rtt_us: i,
        attempt: 1,
        outcome: if error.is_some() {
            Outcome::RemoteError
        } else {
            Outcome::Ok
        },
        error: error.map(str::to_owned),
        remote_id: Some([0xa0; 20]),
        client: Some(vec![0xff, b',', b'"']),
        deviations: 0,
        raw: None,
    }
}

/// A store with two crawls: the first with `n` visits (the first one's error is [`NASTY`]), a
/// DHT neighbour sighting and a piece check; the second with one visit.
async fn store_with_rows(path: &Path, n: i64) -> (Store, CrawlId, CrawlId) {
    let store = Store::open(path).unwrap();
    let mut crawls = Vec::new();
    for rows in [n, 1] {
        let crawl = store.begin_crawl("dht", "with, \"quotes\"").unwrap();
        let (rec, rx) = Recorder::channel(1024);
        let writer = spawn_writer(path, crawl, rx, WriterConfig::default()).unwrap();
        for i in 0..rows {
            let error = match i {
                0 => Some(NASTY),
                1 => Some(""),
                _ => None,
            };
            rec.record(Observation::Visit(visit(i, error))).await;
        }
        rec.record(Observation::Sighting(Sighting {
            at: 5,
            source_kind: SourceKind::Dht,
            source: "10.0.0.1:6881".into(),
            source_id: Some([1; 20]),
            info_hash: None,
            addr: "10.0.0.9:1".parse().unwrap(),
            id: Some([2; 20]),
        }))
        .await;
        rec.record(Observation::PieceCheck(PieceCheck {
            at: 6,
            addr: "10.0.0.9:1".parse().unwrap(),
            info_hash: InfoHash([3; 20]),
            piece: 7,
            ok: true,
        }))
        .await;
        writer.finish().await.unwrap();
        store.finish_crawl(crawl, CrawlEnd::Finished).unwrap();
        crawls.push(crawl);
    }
    (store, crawls[0], crawls[1])
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    reader.map(Result::unwrap).collect()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn parquet_reads_back_with_the_same_rows_and_values() {
    let dir = tempfile::tempdir().unwrap();
    // More than one record batch.
    let n = BATCH_ROWS as i64 + 10;
    let (store, first, _) = store_with_rows(&dir.path().join("s.sqlite"), n).await;
    let out = dir.path().join("parquet");
    let summary = export_parquet(&store, &out, None).unwrap();
    let names: Vec<_> = summary.tables.iter().map(|t| t.table).collect();
    assert_eq!(names, TABLES.map(|(t, _)| t));

    for t in &summary.tables {
        let batches = read_parquet(&t.path);
        assert_eq!(rows(&batches) as u64, t.rows, "{}", t.table);
        let expected: i64 = store
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", t.table), [], |r| r.get(0))
            .unwrap();
        assert_eq!(t.rows, expected as u64, "{}", t.table);
    }
    let counts = |table: &str| summary.tables.iter().find(|t| t.table == table).unwrap().rows;
    assert_eq!(
        (
            counts("crawls"),
            counts("visits"),
            counts("neighbours"),
            counts("piece_checks")
        ),
        (2, n as u64 + 1, 2, 2)
    );

    let batches = read_parquet(&out.join("visits.parquet"));
    let batch = &batches[0];
    let column = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
    let crawl_id = column("crawl_id");
    let crawl_id = crawl_id.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(crawl_id.value(0), first.0);
    let at = column("at");
    let at = at.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
    assert_eq!(at.value(0), 1_700_000_000_000_000);
    assert_eq!(at.timezone(), Some("UTC"));
    let ip = column("ip");
    let ip = ip.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((ip.value(0), ip.value(1)), ("10.0.0.1", "2001:db8::7"));
    let error = column("error");
    let error = error.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((error.value(0), error.value(1), error.is_null(2)), (NASTY, "", true));
    let remote_id = column("remote_id");
    let remote_id = remote_id.as_any().downcast_ref::<BinaryArray>().unwrap();
    assert_eq!(remote_id.value(0), [0xa0; 20]);
    let info_hash = column("info_hash");
    assert!(info_hash.is_null(0));
    let metadata = ParquetRecordBatchReaderBuilder::try_new(File::open(out.join("visits.parquet")).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap();
    assert!(
        metadata
            .iter()
            .any(|kv| kv.key == "onionlab.schema_version" && kv.value.as_deref() == Some("1"))
    );
}

#[tokio::test]
async fn export_of_one_crawl_holds_only_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, second) = store_with_rows(&dir.path().join("s.sqlite"), 5).await;
    let summary = export_parquet(&store, &dir.path().join("p"), Some(second)).unwrap();
    let counts: Vec<_> = summary.tables.iter().map(|t| (t.table, t.rows)).collect();
    assert_eq!(
        counts,
        [
            ("crawls", 1),
            ("visits", 1),
            ("sightings", 1),
            ("peers", 2),
            ("peer_states", 0),
            ("piece_checks", 1),
            ("sessions", 0),
            ("neighbours", 1)
        ]
    );
    let csv = export_csv(&store, &dir.path().join("c"), Some(second)).unwrap();
    assert_eq!(csv.tables.iter().map(|t| (t.table, t.rows)).collect::<Vec<_>>(), counts);
    assert!(matches!(
        export_csv(&store, &dir.path().join("c"), Some(CrawlId(42))),
        Err(StoreError::NoSuchCrawl { .. })
    ));
}

#[tokio::test]
async fn csv_quotes_per_rfc_4180_and_writes_blobs_as_hex() {
    let dir = tempfile::tempdir().unwrap();
    let (store, first, _) = store_with_rows(&dir.path().join("s.sqlite"), 3).await;
    let summary = export_csv(&store, &dir.path().join("csv"), Some(first)).unwrap();
    let visits = std::fs::read_to_string(dir.path().join("csv/visits.csv")).unwrap();
    let lines: Vec<&str> = visits.split_inclusive("\r\n").collect();
    assert_eq!(
        lines[0],
        "crawl_id,probe,target,ip,port,info_hash,at,rtt_us,attempt,outcome,error,remote_id,client,deviations,raw\r\n"
    );
    let id = "a0".repeat(20);
    // The error field holds a comma, quotes, CRLF and LF: one quoted field spanning three lines.
    assert_eq!(
        visits.split("\r\n").nth(1).unwrap(),
        format!(
            "{first},dht_ping,10.0.0.1:6881,10.0.0.1,6881,,1700000000000000,0,1,remote_error,\"refused, \"\"politely\"\""
        )
    );
    assert!(
        visits.contains(&format!("\r\nthen\nagain\",{id},ff2c22,0,\r\n")),
        "{visits}"
    );
    // An empty error is a quoted empty field; a NULL one an empty field.
    assert!(
        visits.contains(&format!(",remote_error,\"\",{id},ff2c22,0,\r\n")),
        "{visits}"
    );
    assert!(visits.contains(&format!(",ok,,{id},ff2c22,0,\r\n")), "{visits}");
    let crawls = std::fs::read_to_string(dir.path().join("csv/crawls.csv")).unwrap();
    assert!(crawls.contains(",\"with, \"\"quotes\"\"\","), "{crawls}");
    assert_eq!(summary.tables.iter().find(|t| t.table == "visits").unwrap().rows, 3);
}

#[test]
fn csv_fields() {
    let field = |s: &str| {
        let mut line = String::new();
        csv_text(&mut line, s);
        line
    };
    assert_eq!(field("plain text"), "plain text");
    assert_eq!(field(""), "\"\"");
    assert_eq!(field("a,b"), "\"a,b\"");
    assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
    assert_eq!(field("cr\r"), "\"cr\r\"");
    let mut line = String::new();
    hex(&mut line, &[0x00, 0x0f, 0xab, 0xff]);
    assert_eq!(line, "000fabff");
}
