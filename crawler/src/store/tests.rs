//! Store tests: every row type round-trips, batches become visible when committed, crawls resume,
//! and a writer killed with SIGKILL loses no committed row (the writer runs in a child process: this
//! test binary itself, re-run on one test with an environment variable).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::*;
use crate::engine::Recorder;
use crate::observe::Observation;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("store.sqlite")
}

/// A visit whose `attempt` carries `seq`, to check order and completeness.
fn visit(seq: u32, to: &str) -> Visit {
    Visit {
        probe: ProbeKind::DhtFindNode,
        target: to.to_owned(),
        addr: Some(addr(to)),
        info_hash: None,
        at: 1_700_000_000_000_000 + i64::from(seq),
        rtt_us: 1234,
        attempt: seq,
        outcome: Outcome::Ok,
        error: None,
        remote_id: Some([7; 20]),
        client: Some(b"UT\x01\x02".to_vec()),
        deviations: 0,
        raw: None,
    }
}

fn full_visit() -> Visit {
    Visit {
        probe: ProbeKind::PeerHandshake,
        target: "[2001:db8::1]:6881".into(),
        addr: Some(addr("[2001:db8::1]:6881")),
        info_hash: Some(InfoHash([0xab; 20])),
        at: 1_700_000_000_123_456,
        rtt_us: 98_765,
        attempt: 3,
        outcome: Outcome::ProtocolError,
        error: Some("bad \"reply\", then\nmore".into()),
        remote_id: Some(*b"-qB4650-abcdefghijkl"),
        // Not UTF-8, as BEP 10 `v` often is not.
        client: Some(vec![0xff, 0xfe, b'q', 0x00, 0x80]),
        deviations: 4,
        raw: Some(vec![0, 1, 2, 255]),
    }
}

fn tracker_visit() -> Visit {
    Visit {
        probe: ProbeKind::HttpAnnounce,
        target: "http://tracker.example/announce".into(),
        addr: None,
        info_hash: Some(InfoHash([1; 20])),
        at: 1_700_000_000_000_001,
        rtt_us: 0,
        attempt: 1,
        outcome: Outcome::Timeout,
        error: Some(String::new()),
        remote_id: None,
        client: None,
        deviations: 0,
        raw: None,
    }
}

fn sightings() -> Vec<Sighting> {
    vec![
        Sighting {
            at: 1_700_000_000_000_010,
            source_kind: SourceKind::Dht,
            source: "10.0.0.1:6881".into(),
            source_id: Some([3; 20]),
            info_hash: None,
            addr: addr("10.0.0.2:51413"),
            id: Some([4; 20]),
        },
        Sighting {
            at: 1_700_000_000_000_011,
            source_kind: SourceKind::Tracker,
            source: "udp://tracker.example:1337".into(),
            source_id: None,
            info_hash: Some(InfoHash([9; 20])),
            addr: addr("[fe80::1]:1"),
            id: None,
        },
        Sighting {
            at: 1_700_000_000_000_012,
            source_kind: SourceKind::Pex,
            source: "10.0.0.3:6881".into(),
            source_id: None,
            info_hash: Some(InfoHash([9; 20])),
            addr: addr("10.0.0.4:65535"),
            id: None,
        },
    ]
}

fn peer_state() -> PeerState {
    PeerState {
        at: 1_700_000_000_000_020,
        addr: addr("[2001:db8::2]:6881"),
        info_hash: InfoHash([9; 20]),
        peer_id: [5; 20],
        client: Some(vec![0xc3, 0x28]),
        pieces_have: Some(17),
        pieces_total: None,
    }
}

fn piece_checks() -> Vec<PieceCheck> {
    vec![
        PieceCheck {
            at: 1_700_000_000_000_030,
            addr: addr("10.0.0.4:65535"),
            info_hash: InfoHash([9; 20]),
            piece: u32::MAX,
            ok: false,
        },
        PieceCheck {
            at: 1_700_000_000_000_031,
            addr: addr("[2001:db8::2]:6881"),
            info_hash: InfoHash([9; 20]),
            piece: 0,
            ok: true,
        },
    ]
}

/// Write `rows` to a new crawl through the real writer; returns the store and the crawl.
async fn write(path: &Path, rows: Vec<Observation>) -> (Store, CrawlId) {
    let store = Store::open(path).unwrap();
    let crawl = store.begin_crawl("test", "config: 1").unwrap();
    let (rec, rx) = Recorder::channel(16);
    let writer = spawn_writer(path, crawl, rx, WriterConfig::default()).unwrap();
    for row in rows {
        rec.record(row).await;
    }
    writer.finish().await.unwrap();
    (store, crawl)
}

#[tokio::test]
async fn every_row_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let visits = vec![full_visit(), tracker_visit(), visit(1, "192.0.2.1:80")];
    let mut rows: Vec<Observation> = visits.iter().cloned().map(Observation::Visit).collect();
    rows.extend(sightings().into_iter().map(Observation::Sighting));
    rows.push(Observation::PeerState(peer_state()));
    rows.extend(piece_checks().into_iter().map(Observation::PieceCheck));
    let (store, crawl) = write(&db(&dir), rows).await;

    assert_eq!(store.visits(crawl).unwrap(), visits);
    assert_eq!(store.sightings(crawl).unwrap(), sightings());
    assert_eq!(store.peer_states(crawl).unwrap(), vec![peer_state()]);
    assert_eq!(store.piece_checks(crawl).unwrap(), piece_checks());
    assert_eq!(
        store.counts(crawl).unwrap(),
        RowCounts {
            visits: 3,
            sightings: 3,
            peer_states: 1,
            piece_checks: 2
        }
    );
    // Raw storage conventions: IPs as text without brackets, ids as 20-byte blobs.
    let (ip, remote_id): (String, Vec<u8>) = store
        .conn
        .query_row(
            "SELECT ip, remote_id FROM visits WHERE probe = 'peer_handshake'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(ip, "2001:db8::1");
    assert_eq!(remote_id, b"-qB4650-abcdefghijkl");
    let pragma = |name: &str| -> String {
        store
            .conn
            .query_row(&format!("SELECT CAST({name} AS TEXT) FROM pragma_{name}"), [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(
        (pragma("journal_mode"), pragma("page_size"), pragma("user_version")),
        ("wal".into(), "16384".into(), "1".into())
    );
}

#[tokio::test]
async fn crawls_begin_finish_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let rows = vec![
        Observation::Visit(visit(0, "10.0.0.1:6881")),
        Observation::Sighting(sightings()[0].clone()),
        Observation::Sighting(sightings()[1].clone()),
        Observation::Sighting(Sighting {
            addr: addr("10.0.0.1:6881"),
            ..sightings()[0].clone()
        }),
    ];
    let (store, crawl) = write(&path, rows).await;
    let record = store.crawl(crawl).unwrap();
    assert_eq!((record.kind.as_str(), record.config.as_str()), ("test", "config: 1"));
    assert_eq!((record.status, record.finished_at), (CrawlStatus::Running, None));

    assert_eq!(store.addrs_visited(crawl).unwrap(), vec![addr("10.0.0.1:6881")]);
    assert_eq!(
        store.addrs_sighted_not_visited(crawl, SightingScope::All).unwrap(),
        vec![addr("10.0.0.2:51413"), addr("[fe80::1]:1")]
    );
    assert_eq!(
        store.addrs_sighted_not_visited(crawl, SightingScope::DhtNodes).unwrap(),
        vec![addr("10.0.0.2:51413")]
    );
    assert_eq!(
        store
            .addrs_sighted_not_visited(crawl, SightingScope::Swarm(InfoHash([9; 20])))
            .unwrap(),
        vec![addr("[fe80::1]:1")]
    );

    store.finish_crawl(crawl, CrawlEnd::Interrupted).unwrap();
    let record = store.crawl(crawl).unwrap();
    assert_eq!(record.status, CrawlStatus::Interrupted);
    assert!(record.finished_at.is_some());
    assert_eq!(store.unfinished_crawls().unwrap(), vec![record]);

    let resumed = store.resume_crawl(crawl).unwrap();
    assert_eq!((resumed.status, resumed.finished_at), (CrawlStatus::Running, None));
    assert!(resumed.notes.contains("resumed at"), "{:?}", resumed.notes);

    store.finish_crawl(crawl, CrawlEnd::Finished).unwrap();
    assert_eq!(store.unfinished_crawls().unwrap(), vec![]);
    assert!(matches!(
        store.resume_crawl(crawl),
        Err(StoreError::CrawlFinished { .. })
    ));
    let (_rec, rx) = Recorder::channel(1);
    assert!(matches!(
        spawn_writer(&path, crawl, rx, WriterConfig::default()),
        Err(StoreError::CrawlFinished { .. })
    ));
    let (_rec, rx) = Recorder::channel(1);
    let err = spawn_writer(&path, CrawlId(99), rx, WriterConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchCrawl { .. }));
    assert!(err.to_string().contains("store.sqlite"), "{err}");
}

#[tokio::test]
async fn peers_are_rebuilt_from_visits_sightings_and_states() {
    let dir = tempfile::tempdir().unwrap();
    let node = "10.0.0.2:51413";
    let mut answered = visit(0, node);
    answered.remote_id = Some([4; 20]);
    answered.at = 100;
    answered.client = Some(b"old".to_vec());
    let mut later = answered.clone();
    later.at = 300;
    later.client = Some(b"new".to_vec());
    let mut timeout = visit(1, node);
    timeout.at = 200;
    timeout.outcome = Outcome::Timeout;
    timeout.remote_id = None;
    timeout.client = None;
    let mut seen = sightings()[0].clone();
    seen.at = 50;
    let rows = vec![
        Observation::Visit(answered),
        Observation::Visit(timeout),
        Observation::Visit(later),
        Observation::Sighting(seen),
        Observation::PeerState(peer_state()),
    ];
    let (store, crawl) = write(&db(&dir), rows).await;
    assert_eq!(store.peers(crawl).unwrap(), vec![]);
    store.finish_crawl(crawl, CrawlEnd::Finished).unwrap();
    let peers = store.peers(crawl).unwrap();
    assert_eq!(peers.len(), 3, "{peers:#?}");
    let by_id = |id: Option<[u8; 20]>| peers.iter().find(|p| p.addr == addr(node) && p.id == id).unwrap();
    let known = by_id(Some([4; 20]));
    assert_eq!((known.first_seen, known.last_seen), (50, 300));
    assert_eq!(
        (
            known.sighting_count,
            known.visit_count,
            known.visit_ok_count,
            known.state_count
        ),
        (1, 2, 2, 0)
    );
    assert_eq!(known.last_client.as_deref(), Some(&b"new"[..]));
    let unanswered = by_id(None);
    assert_eq!((unanswered.visit_count, unanswered.visit_ok_count), (1, 0));
    let state = peers.iter().find(|p| p.state_count == 1).unwrap();
    assert_eq!(state.last_client, peer_state().client);
    // Rebuilding is idempotent.
    assert_eq!(store.rebuild_peers(crawl).unwrap(), 3);
    assert_eq!(store.peers(crawl).unwrap(), peers);
}

/// The plan SQLite picks for a by-address lookup of `crawl`'s visits.
fn addr_lookup_plan(store: &Store, crawl: CrawlId) -> String {
    let mut stmt = store
        .conn
        .prepare("EXPLAIN QUERY PLAN SELECT at FROM visits WHERE crawl_id = ?1 AND ip = ?2 AND port = ?3 ORDER BY at")
        .unwrap();
    let rows = stmt
        .query_map(params![crawl.0, "10.0.0.1", 6881], |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}

#[tokio::test]
async fn the_address_index_exists_while_a_crawl_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let (store, crawl) = write(&db(&dir), vec![Observation::Visit(visit(0, "10.0.0.1:6881"))]).await;
    let index = format!("visits_by_addr_{crawl}");
    assert!(!addr_lookup_plan(&store, crawl).contains(&index));
    store.finish_crawl(crawl, CrawlEnd::Interrupted).unwrap();
    let plan = addr_lookup_plan(&store, crawl);
    assert!(plan.contains(&index), "{plan}");
    // Another crawl's lookups do not use it (it holds none of their rows).
    let other = store.begin_crawl("test", "").unwrap();
    assert!(!addr_lookup_plan(&store, other).contains(&index));
    // Resumed, the crawl is written again without the index; finished, it has it back.
    store.resume_crawl(crawl).unwrap();
    assert!(!addr_lookup_plan(&store, crawl).contains(&index));
    store.finish_crawl(crawl, CrawlEnd::Finished).unwrap();
    assert!(addr_lookup_plan(&store, crawl).contains(&index));
}

#[tokio::test]
async fn sessions_are_replaced_per_crawl() {
    let dir = tempfile::tempdir().unwrap();
    let (store, crawl) = write(&db(&dir), vec![]).await;
    let session = |start, end| SessionRow {
        addr: addr("[2001:db8::2]:6881"),
        id: Some([5; 20]),
        started_at: start,
        ended_at: end,
        left_censored: start == 0,
        right_censored: false,
    };
    store
        .replace_sessions(crawl, &[session(0, 10), session(20, 30)])
        .unwrap();
    assert_eq!(store.sessions(crawl).unwrap(), vec![session(0, 10), session(20, 30)]);
    store.replace_sessions(crawl, &[session(5, 6)]).unwrap();
    assert_eq!(store.sessions(crawl).unwrap(), vec![session(5, 6)]);
    assert!(matches!(
        store.replace_sessions(CrawlId(crawl.0 + 1), &[]),
        Err(StoreError::NoSuchCrawl { .. })
    ));
}

#[tokio::test]
async fn rows_become_visible_when_their_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = Store::open(&path).unwrap();
    let crawl = store.begin_crawl("test", "").unwrap();
    let visible = || store.counts(crawl).unwrap().visits;

    // Batches of 5 rows and no time limit to speak of: 12 rows commit as 5 + 5, then 2 at finish.
    let (tx, rx) = mpsc::channel(64);
    let cfg = WriterConfig {
        batch_rows: 5,
        max_delay: Duration::from_secs(3600),
    };
    let writer = spawn_writer(&path, crawl, rx, cfg).unwrap();
    for seq in 0..12 {
        tx.send(Observation::Visit(visit(seq, "10.0.0.1:1"))).await.unwrap();
    }
    wait_until(|| writer.committed().visits == 10);
    assert_eq!(visible(), 10);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!((writer.committed().visits, visible()), (10, 10));
    assert_eq!(writer.finish().await.unwrap().visits, 12);
    assert_eq!(visible(), 12);
    // After finish the channel is closed: later rows are refused, not queued for nobody.
    assert!(tx.send(Observation::Visit(visit(12, "10.0.0.1:1"))).await.is_err());

    // Large batches and a short delay: rows commit on time, with the writer still running.
    let (rec, rx) = Recorder::channel(64);
    let cfg = WriterConfig {
        batch_rows: 1_000_000,
        max_delay: Duration::from_millis(20),
    };
    let writer = spawn_writer(&path, crawl, rx, cfg).unwrap();
    for seq in 0..3 {
        rec.record(Observation::Visit(visit(seq, "10.0.0.1:1"))).await;
    }
    wait_until(|| visible() == 15);
    assert_eq!(writer.committed().visits, 3);
    // Dropping every sender also stops the writer, after a final commit.
    rec.record(Observation::Visit(visit(3, "10.0.0.1:1"))).await;
    drop(rec);
    assert_eq!(writer.finish().await.unwrap().visits, 4);
    assert_eq!(visible(), 16);
}

/// Spin (with short sleeps) until `f` holds; fail after 10 s.
fn wait_until(f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "condition not met in 10 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn refuses_unknown_versions_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = Store::open(&path).unwrap();
    store.conn.pragma_update(None, "user_version", 99).unwrap();
    drop(store);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::SchemaVersion { found: 99, .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");

    let missing = dir.path().join("no/such/dir/store.sqlite");
    let err = Store::open(&missing).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn unreadable_rows_are_reported_with_their_table_and_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(db(&dir)).unwrap();
    let crawl = store.begin_crawl("test", "").unwrap();
    store
        .conn
        .execute(
            "INSERT INTO visits (crawl_id, probe, target, at, rtt_us, attempt, outcome, deviations)
             VALUES (?1, 'carrier_pigeon', 'x', 0, 0, 1, 'ok', 0)",
            [crawl.0],
        )
        .unwrap();
    let err = store.visits(crawl).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "visits", rowid: Some(1), detail, .. } if detail.contains("carrier_pigeon")),
        "{err:?}"
    );
}

/// Set in the child process of [`killed_crawl_loses_no_committed_row`]: `path|crawl id`.
const KILL_CHILD_ENV: &str = "ONIONLAB_STORE_KILL_CHILD";
/// The child's progress lines on stdout.
const COMMITTED: &str = "committed-visits ";

/// The child process of [`killed_crawl_loses_no_committed_row`]; in a normal test run it does
/// nothing. It records numbered visits (and a sighting every tenth) through the real writer,
/// printing how many visits are committed each time that grows, until it is killed.
#[test]
fn kill_child() {
    let Ok(spec) = std::env::var(KILL_CHILD_ENV) else {
        return;
    };
    let (path, crawl) = spec.split_once('|').unwrap();
    let crawl = CrawlId(crawl.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (rec, rx) = Recorder::channel(256);
        let cfg = WriterConfig {
            batch_rows: 100,
            max_delay: Duration::from_millis(5),
        };
        let writer = spawn_writer(Path::new(path), crawl, rx, cfg).unwrap();
        let mut reported = 0;
        // Bounded, in case nobody kills us: at most about 30 s.
        for seq in 0..3_000_000u32 {
            rec.record(Observation::Visit(visit(seq, "10.0.0.1:6881"))).await;
            if seq % 10 == 0 {
                rec.record(Observation::Sighting(sightings()[0].clone())).await;
            }
            if seq % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let committed = writer.committed().visits;
                if committed > reported {
                    reported = committed;
                    println!("{COMMITTED}{committed}");
                }
            }
        }
        writer.finish().await.unwrap();
    });
}

#[tokio::test]
async fn killed_crawl_loses_no_committed_row() {
    const KILL_AFTER: u64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let crawl = Store::open(&path).unwrap().begin_crawl("dht", "kill test").unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::tests::kill_child", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD_ENV, format!("{}|{}", path.display(), crawl))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut committed = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix(COMMITTED) {
            committed = n.parse().unwrap();
            if committed >= KILL_AFTER {
                break;
            }
        }
    }
    assert!(
        committed >= KILL_AFTER,
        "the child stopped after {committed} committed visits"
    );
    child.kill().unwrap(); // SIGKILL: no destructor, no final commit.
    child.wait().unwrap();

    let store = Store::open(&path).unwrap();
    let visits = store.visits(crawl).unwrap();
    let n = visits.len() as u32;
    assert!(
        u64::from(n) >= committed,
        "{n} visits stored, {committed} were reported committed"
    );
    // What survived is exactly the first n visits, in order, intact.
    for (seq, v) in visits.iter().enumerate() {
        assert_eq!(*v, visit(seq as u32, "10.0.0.1:6881"));
    }
    assert_eq!(store.counts(crawl).unwrap().sightings, u64::from(n.div_ceil(10)));
    let record = store.crawl(crawl).unwrap();
    assert_eq!(record.status, CrawlStatus::Running);
    assert_eq!(store.unfinished_crawls().unwrap(), vec![record]);

    // Resume: the next visits append under the same crawl.
    let (rec, recording) = Recording::resume(&path, crawl).unwrap();
    assert_eq!(recording.crawl().id, crawl);
    assert_eq!(recording.crawl().status, CrawlStatus::Running);
    assert_eq!(
        recording.store().addrs_visited(crawl).unwrap(),
        vec![addr("10.0.0.1:6881")]
    );
    for seq in n..n + 10 {
        rec.record(Observation::Visit(visit(seq, "10.0.0.1:6881"))).await;
    }
    assert_eq!(recording.finish(CrawlEnd::Finished).await.unwrap().visits, 10);
    assert_eq!(store.crawl(crawl).unwrap().status, CrawlStatus::Finished);
    let visits = store.visits(crawl).unwrap();
    assert_eq!(visits.len() as u32, n + 10);
    for (seq, v) in visits.iter().enumerate() {
        assert_eq!(v.attempt, seq as u32);
    }
    let crawls: i64 = store
        .conn
        .query_row("SELECT COUNT(DISTINCT crawl_id) FROM visits", [], |r| r.get(0))
        .unwrap();
    assert_eq!(crawls, 1);
}
