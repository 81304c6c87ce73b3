//! Observations written per second through the real path: a [`Recorder`] channel, the writer
//! thread, SQLite (WAL, batched transactions) on disk. Each sample writes 1,000,000 observations
//! (visits to addresses spread over the whole IPv4 space, a quarter of them timeouts) into a fresh
//! store and stops when `WriterHandle::finish` has committed every row, WAL checkpoints included.
//!
//! `cargo bench -p onionlab-crawler --bench store`; the figure to read is `thrpt` (elements/s).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onionlab_crawler::engine::Recorder;
use onionlab_crawler::observe::{Observation, Outcome, ProbeKind, Sighting, SourceKind, Visit};
use onionlab_crawler::store::{Store, WriterConfig, spawn_writer};

/// Observations per sample.
const ROWS: u64 = 1_000_000;

/// A spread of addresses (what a DHT crawl sees), deterministic.
fn addr(i: u64) -> SocketAddr {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(x as u32), 1024 + (x % 60_000) as u16))
}

fn visit(i: u64) -> Visit {
    let to = addr(i);
    let mut v = Visit::start(ProbeKind::DhtFindNode, to.to_string(), Some(to));
    v.rtt_us = 20_000 + (i % 5_000) as i64;
    if i.is_multiple_of(4) {
        v.outcome = Outcome::Timeout;
        v.error = Some("no answer within 5s".into());
    } else {
        v.outcome = Outcome::Ok;
        v.remote_id = Some([(i % 251) as u8; 20]);
        v.client = Some(b"UT\xb4\x01".to_vec());
    }
    v
}

fn sighting(i: u64) -> Sighting {
    Sighting {
        at: 1_700_000_000_000_000 + i as i64,
        source_kind: SourceKind::Dht,
        source: addr(i / 8).to_string(),
        source_id: Some([(i % 251) as u8; 20]),
        info_hash: None,
        addr: addr(i + 1_000_000),
        id: Some([(i % 241) as u8; 20]),
    }
}

/// Write `ROWS` observations made by `make` through a fresh store's writer; the time until all
/// are committed.
fn run(rt: &tokio::runtime::Runtime, make: fn(u64) -> Observation) -> Duration {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("bench.sqlite");
    let store = Store::open(&path).expect("store");
    let crawl = store.begin_crawl("bench", "").expect("crawl");
    let (rec, rx) = Recorder::channel(16_384);
    let writer = spawn_writer(&path, crawl, rx, WriterConfig::default()).expect("writer");
    let start = Instant::now();
    let counts = rt.block_on(async move {
        for i in 0..ROWS {
            rec.record(make(i)).await;
        }
        drop(rec);
        writer.finish().await.expect("finish")
    });
    let elapsed = start.elapsed();
    assert_eq!(counts.total(), ROWS);
    elapsed
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("visits", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run(&rt, |i| Observation::Visit(visit(i)))).sum())
    });
    // A DHT crawl's mix: each find_node visit reports 8 neighbours.
    group.bench_function("dht_mix", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run(&rt, |i| {
                        if i.is_multiple_of(9) {
                            Observation::Visit(visit(i))
                        } else {
                            Observation::Sighting(sighting(i))
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
