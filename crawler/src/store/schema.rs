//! The store's SQLite schema and connection settings: the tables, indexes and view, their version
//! (`PRAGMA user_version`), and the pragmas every connection gets. Nothing here reads or writes rows.
//!
//! Conventions: ids and hashes are BLOBs (20 raw bytes), IP addresses TEXT (`1.2.3.4`, `2001:db8::1`,
//! never bracketed), ports INTEGER, times INTEGER microseconds since the Unix epoch, enumerations
//! TEXT with the names of [`crate::observe`]. The observation tables have no declared key: their
//! implicit `rowid` is the insertion order. In `sightings`, `peers` and `sessions`, `id` is the
//! node or peer id reported; `crawls.id` is the crawl's own id.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

/// The version this code writes and reads; stored in `PRAGMA user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Tables and views in export order, with their one-line meaning.
pub(crate) const TABLES: [(&str, &str); 8] = [
    ("crawls", "one row per crawl: kind, times, status, configuration"),
    ("visits", "every probe attempt, raw"),
    ("sightings", "the peers and nodes that sources reported"),
    ("peers", "one row per (ip, port, id) seen in a crawl"),
    ("peer_states", "what a peer held when the swarm monitor connected"),
    ("piece_checks", "pieces downloaded and hashed"),
    ("sessions", "peer sessions derived by the analyses"),
    ("neighbours", "DHT routing-table edges (a view of sightings)"),
];

/// Columns holding a point in time (microseconds since the epoch): exported as timestamps.
pub(crate) const TIME_COLUMNS: [&str; 6] = ["at", "started_at", "finished_at", "ended_at", "first_seen", "last_seen"];

/// Schema version 1.
const SCHEMA_V1: &str = r"
CREATE TABLE crawls (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
    config      TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE visits (
    crawl_id   INTEGER NOT NULL REFERENCES crawls (id),
    probe      TEXT NOT NULL,
    target     TEXT NOT NULL,
    ip         TEXT,
    port       INTEGER,
    info_hash  BLOB,
    at         INTEGER NOT NULL,
    rtt_us     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    error      TEXT,
    remote_id  BLOB,
    client     BLOB,
    deviations INTEGER NOT NULL,
    raw        BLOB
);
-- Kept up to date as rows arrive (times arrive almost in order: appends). The index by address is
-- per crawl (visits_by_addr_<id>) and built when the crawl finishes: see create_addr_index.
CREATE INDEX visits_by_time ON visits (crawl_id, at);

CREATE TABLE sightings (
    crawl_id    INTEGER NOT NULL REFERENCES crawls (id),
    at          INTEGER NOT NULL,
    source_kind TEXT NOT NULL,
    source      TEXT NOT NULL,
    source_id   BLOB,
    info_hash   BLOB,
    ip          TEXT NOT NULL,
    port        INTEGER NOT NULL,
    id          BLOB
);
CREATE INDEX sightings_by_swarm ON sightings (crawl_id, info_hash);

CREATE TABLE peer_states (
    crawl_id     INTEGER NOT NULL REFERENCES crawls (id),
    at           INTEGER NOT NULL,
    ip           TEXT NOT NULL,
    port         INTEGER NOT NULL,
    info_hash    BLOB NOT NULL,
    peer_id      BLOB NOT NULL,
    client       BLOB,
    pieces_have  INTEGER,
    pieces_total INTEGER
);
CREATE INDEX peer_states_by_addr ON peer_states (crawl_id, ip, port, at);

CREATE TABLE piece_checks (
    crawl_id  INTEGER NOT NULL REFERENCES crawls (id),
    at        INTEGER NOT NULL,
    ip        TEXT NOT NULL,
    port      INTEGER NOT NULL,
    info_hash BLOB NOT NULL,
    piece     INTEGER NOT NULL,
    ok        INTEGER NOT NULL CHECK (ok IN (0, 1))
);
CREATE INDEX piece_checks_by_swarm ON piece_checks (crawl_id, info_hash);

-- Rebuilt from visits, sightings and peer_states by Store::rebuild_peers (run by finish_crawl).
CREATE TABLE peers (
    crawl_id         INTEGER NOT NULL REFERENCES crawls (id),
    ip               TEXT NOT NULL,
    port             INTEGER NOT NULL,
    id               BLOB,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    sighting_count   INTEGER NOT NULL,
    visit_count      INTEGER NOT NULL,
    visit_ok_count   INTEGER NOT NULL,
    state_count      INTEGER NOT NULL,
    last_client      BLOB
);
CREATE INDEX peers_by_addr ON peers (crawl_id, ip, port);

-- Written by the analyses (Store::replace_sessions).
CREATE TABLE sessions (
    crawl_id       INTEGER NOT NULL REFERENCES crawls (id),
    ip             TEXT NOT NULL,
    port           INTEGER NOT NULL,
    id             BLOB,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER NOT NULL,
    left_censored  INTEGER NOT NULL CHECK (left_censored IN (0, 1)),
    right_censored INTEGER NOT NULL CHECK (right_censored IN (0, 1))
);
CREATE INDEX sessions_by_addr ON sessions (crawl_id, ip, port);

-- The DHT neighbour graph: node `source` (id `source_id`) listed node ip:port (id `id`).
CREATE VIEW neighbours AS
    SELECT crawl_id, at, source, source_id, ip, port, id
    FROM sightings
    WHERE source_kind = 'dht' AND info_hash IS NULL;
";

/// Why a file cannot be used as a store (other than SQLite errors).
#[derive(Debug)]
pub(crate) enum SchemaProblem {
    /// A SQLite error.
    Sqlite(rusqlite::Error),
    /// `user_version` is one this code does not know.
    Version(i64),
}

impl From<rusqlite::Error> for SchemaProblem {
    fn from(e: rusqlite::Error) -> Self {
        SchemaProblem::Sqlite(e)
    }
}

/// How long a connection waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page size of new stores: with 16 KiB pages the writer measured 1.1 to 1.4 times the rate it
/// reached with SQLite's default 4 KiB (fewer page splits and WAL frames per row).
const PAGE_SIZE: i64 = 16_384;

/// Apply the settings every connection gets: the page size of a new store, WAL journal (readers
/// never block the writer), `synchronous=NORMAL` (a commit is durable across a crash of the
/// process; a power loss may roll back the last commits but never corrupts), and a busy timeout
/// for the moments two connections want the write lock.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Takes effect only in a new, empty database (before WAL is enabled); a no-op otherwise.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // Returns the mode in force ("memory" for in-memory databases, which cannot use WAL).
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Create the schema in an empty database, or check the version of an existing one.
pub(crate) fn ensure(conn: &mut Connection) -> Result<(), SchemaProblem> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version != 0 {
        return Err(SchemaProblem::Version(version));
    }
    // IMMEDIATE: two processes creating the same new store do it one after the other.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        tx.execute_batch(SCHEMA_V1)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    } else if version != SCHEMA_VERSION {
        return Err(SchemaProblem::Version(version));
    }
    tx.commit()?;
    Ok(())
}

/// SQL creating crawl `crawl`'s address index: visits by `(ip, port, at)`, a partial index holding
/// only that crawl's rows, so later crawls' writers never touch it. Queries with
/// `crawl_id = ?` bound to that crawl use it.
pub(crate) fn create_addr_index(crawl: i64) -> String {
    format!("CREATE INDEX IF NOT EXISTS visits_by_addr_{crawl} ON visits (ip, port, at) WHERE crawl_id = {crawl};")
}

/// SQL dropping crawl `crawl`'s address index (while it is written to again).
pub(crate) fn drop_addr_index(crawl: i64) -> String {
    format!("DROP INDEX IF EXISTS visits_by_addr_{crawl};")
}
