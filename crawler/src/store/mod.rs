//! The observation store: one SQLite file (WAL) holding crawls and every row their probes
//! recorded, written by one batching writer and read back, typed, by the analyses.
//!
//! - [`Store`]: open or create a store; begin, resume and finish crawls; read rows back.
//! - [`spawn_writer`]: the one path by which observations enter the store (a batching writer
//!   thread fed by the [`Recorder`](crate::engine::Recorder)'s channel).
//! - [`Recording`]: a crawl begun or resumed with its writer running and the recorder the probes
//!   use; the one call a crawl command or a campaign needs.
//! - [`export_parquet`], [`export_csv`]: every table to Parquet (for DuckDB, Spark, Trino) and CSV.
//!
//! # Schema
//!
//! `crawls` (id, kind, started_at, finished_at, status, config, notes); `visits` (one row per probe
//! attempt, raw); `sightings` (peers and nodes reported by trackers, DHT nodes and PEX);
//! `peer_states`; `piece_checks`; `peers` (one row per distinct `(ip, port, id)` of a crawl, rebuilt
//! from the three observation tables by [`Store::rebuild_peers`], which [`Store::finish_crawl`]
//! runs); `sessions` (written by the analyses through [`Store::replace_sessions`]); and the view
//! `neighbours` (DHT routing-table edges: sightings from DHT nodes with no info-hash). Ids and hashes
//! are BLOBs, IPs TEXT, times INTEGER microseconds since the epoch. Visits are indexed by crawl and
//! time as they arrive, and by address (`visits_by_addr_<crawl>`) once their crawl finishes;
//! sightings by crawl and info-hash.
//!
//! # Crashes and resumption
//!
//! A crawl row is `running` from [`Store::begin_crawl`] until [`Store::finish_crawl`]. A process
//! killed mid-crawl leaves it `running` with every committed batch intact (the writer commits at
//! least every [`WriterConfig::max_delay`]); [`Store::unfinished_crawls`] finds it, and
//! [`Store::resume_crawl`] hands its id back so that a new writer appends under the same crawl, after
//! the caller rebuilt its state from [`Store::addrs_visited`] and
//! [`Store::addrs_sighted_not_visited`].
//!
//! The store never decides what to probe and never talks to the network.

mod export;
mod recording;
mod schema;
mod writer;

pub use export::{ExportSummary, ExportedTable, csv_text, export_csv, export_parquet};
pub use recording::Recording;
pub use writer::{RowCounts, WriterConfig, WriterHandle, spawn_writer};

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, params};
use thiserror::Error;

use crate::infohash::InfoHash;
use crate::observe::{Micros, Outcome, PeerState, PieceCheck, ProbeKind, Sighting, SourceKind, Visit, now_micros};

/// Why a store operation failed. Every variant names the file concerned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be opened or created as a SQLite database.
    #[error("cannot open the store {path}: {source}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file is a store of a schema version this build does not know (written by a newer one).
    #[error("the store {path} has schema version {found}; this build reads version {expected}")]
    SchemaVersion {
        /// The store file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build writes and reads.
        expected: i64,
    },
    /// A query or a write failed (disk full, locked too long, I/O error, damaged file).
    #[error("store {path}: {source}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// No crawl has this id.
    #[error("the store {path} has no crawl {crawl}")]
    NoSuchCrawl {
        /// The store file.
        path: PathBuf,
        /// The id asked for.
        crawl: CrawlId,
    },
    /// The crawl was finished: it can be read but no longer resumed or written to.
    #[error("crawl {crawl} in {path} is finished; it cannot be resumed or written to")]
    CrawlFinished {
        /// The store file.
        path: PathBuf,
        /// The crawl.
        crawl: CrawlId,
    },
    /// A stored row holds a value this build cannot read back (written by hand or by a newer build).
    #[error("store {path}: {table}{}: {detail}", .rowid.map(|r| format!(" row {r}")).unwrap_or_default())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The row's `rowid`, when known (views have none).
        rowid: Option<i64>,
        /// What is wrong with it.
        detail: String,
    },
    /// The writer thread could not be started, or stopped without reporting (it panicked).
    #[error("the writer of {path} {what}")]
    Writer {
        /// The store file.
        path: PathBuf,
        /// What happened to it.
        what: String,
    },
    /// Writing an export file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Parquet encoder refused the data or failed to write.
    #[error("cannot write {path}: {source}")]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// What the encoder said.
        source: parquet::errors::ParquetError,
    },
}

/// A crawl's id in its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrawlId(pub i64);

impl fmt::Display for CrawlId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CrawlId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(CrawlId)
    }
}

/// Where a crawl stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrawlStatus {
    /// Begun and not finished: still running, or killed before it could finish.
    Running,
    /// Ran to its end.
    Finished,
    /// Stopped early on purpose (Ctrl-C, a deadline); it may be resumed.
    Interrupted,
}

impl CrawlStatus {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CrawlStatus::Running => "running",
            CrawlStatus::Finished => "finished",
            CrawlStatus::Interrupted => "interrupted",
        }
    }

    /// The status named `name` by [`CrawlStatus::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [CrawlStatus::Running, CrawlStatus::Finished, CrawlStatus::Interrupted]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// How a crawl ended, for [`Store::finish_crawl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrawlEnd {
    /// It ran to its end.
    Finished,
    /// It was stopped early on purpose and may be resumed.
    Interrupted,
}

impl From<CrawlEnd> for CrawlStatus {
    fn from(end: CrawlEnd) -> Self {
        match end {
            CrawlEnd::Finished => CrawlStatus::Finished,
            CrawlEnd::Interrupted => CrawlStatus::Interrupted,
        }
    }
}

/// A row of `crawls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlRecord {
    /// Its id.
    pub id: CrawlId,
    /// What kind of crawl (`dht`, `tracker`, `swarm`, a campaign name...), as given to
    /// [`Store::begin_crawl`].
    pub kind: String,
    /// When it began.
    pub started_at: Micros,
    /// When it finished or was interrupted.
    pub finished_at: Option<Micros>,
    /// Where it stands.
    pub status: CrawlStatus,
    /// Its configuration, as text (the campaign YAML, or the command line).
    pub config: String,
    /// Events of its life, one per line (resumptions).
    pub notes: String,
}

/// Which sightings [`Store::addrs_sighted_not_visited`] considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SightingScope {
    /// Every sighting.
    All,
    /// DHT routing-table neighbours (from DHT nodes, no info-hash): a DHT crawl's frontier.
    DhtNodes,
    /// The peers reported for one swarm, by any source.
    Swarm(InfoHash),
}

/// One row of `peers`: everything a crawl saw of one `(ip, port, id)`.
///
/// Rows with `id: None` gather what carried no id: attempts that got no answer, and sightings
/// without an id. An endpoint that answered with an id and also timed out has both rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// The endpoint.
    pub addr: SocketAddr,
    /// The node or peer id it gave or was reported with.
    pub id: Option<[u8; 20]>,
    /// The earliest row about it.
    pub first_seen: Micros,
    /// The latest row about it.
    pub last_seen: Micros,
    /// Sightings of it.
    pub sighting_count: u64,
    /// Visits to it (with this id, or with none for the `None` row).
    pub visit_count: u64,
    /// Of those, visits answered well.
    pub visit_ok_count: u64,
    /// Peer states recorded for it.
    pub state_count: u64,
    /// The latest client name it gave (visits and peer states).
    pub last_client: Option<Vec<u8>>,
}

/// One row of `sessions`: a span during which a peer was seen online, as derived by an analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The peer's endpoint.
    pub addr: SocketAddr,
    /// The peer's id, when the analysis keys sessions by id too.
    pub id: Option<[u8; 20]>,
    /// When the session was first observed.
    pub started_at: Micros,
    /// When it was last observed.
    pub ended_at: Micros,
    /// It was already running when the crawl began (its real start is unknown).
    pub left_censored: bool,
    /// It was still running when the crawl ended (its real end is unknown).
    pub right_censored: bool,
}

/// An open store: one SQLite connection, for crawl bookkeeping and reads. Observations are written
/// by [`spawn_writer`], which opens its own connection.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Open `path` with the store's settings and schema.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    schema::configure(&conn).map_err(open_err)?;
    schema::ensure(&mut conn).map_err(|e| match e {
        schema::SchemaProblem::Sqlite(source) => open_err(source),
        schema::SchemaProblem::Version(found) => StoreError::SchemaVersion {
            path: path.to_owned(),
            found,
            expected: schema::SCHEMA_VERSION,
        },
    })?;
    Ok(conn)
}

/// A value read back that this build cannot accept.
type Bad = String;

fn socket_addr(ip: &str, port: i64) -> Result<SocketAddr, Bad> {
    let ip: IpAddr = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
    let port = u16::try_from(port).map_err(|_| format!("{port} is not a port"))?;
    Ok(SocketAddr::new(ip, port))
}

fn u32_of(n: i64, what: &str) -> Result<u32, Bad> {
    u32::try_from(n).map_err(|_| format!("{what} {n} is out of range"))
}

fn u64_of(n: i64, what: &str) -> Result<u64, Bad> {
    u64::try_from(n).map_err(|_| format!("{what} {n} is out of range"))
}

/// Read column `i` as `T`, turning a type mismatch into a [`Bad`] value.
fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> Result<T, Bad> {
    row.get(i).map_err(|e| e.to_string())
}

fn info_hash_col(row: &Row<'_>, i: usize) -> Result<Option<InfoHash>, Bad> {
    Ok(col::<Option<[u8; 20]>>(row, i)?.map(InfoHash))
}

impl Store {
    /// Open the store at `path`, creating the file and its schema if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = connect(&path)?;
        Ok(Store { conn, path })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Record the start of a crawl of `kind` with its configuration text; it is `running`.
    pub fn begin_crawl(&self, kind: &str, config: &str) -> Result<CrawlId, StoreError> {
        self.conn
            .execute(
                "INSERT INTO crawls (kind, started_at, status, config) VALUES (?1, ?2, 'running', ?3)",
                params![kind, now_micros(), config],
            )
            .map_err(self.sql_err())?;
        Ok(CrawlId(self.conn.last_insert_rowid()))
    }

    /// The crawl `id`.
    pub fn crawl(&self, id: CrawlId) -> Result<CrawlRecord, StoreError> {
        let rows = self.crawls_where("id = ?1", params![id.0])?;
        rows.into_iter().next().ok_or_else(|| StoreError::NoSuchCrawl {
            path: self.path.clone(),
            crawl: id,
        })
    }

    /// Crawls not finished (`running` or `interrupted`), oldest first: candidates for
    /// [`Store::resume_crawl`].
    pub fn unfinished_crawls(&self) -> Result<Vec<CrawlRecord>, StoreError> {
        self.crawls_where("status != 'finished'", [])
    }

    fn crawls_where(&self, condition: &str, args: impl rusqlite::Params) -> Result<Vec<CrawlRecord>, StoreError> {
        let sql = format!(
            "SELECT id, kind, started_at, finished_at, status, config, notes, id AS rowid
               FROM crawls WHERE {condition} ORDER BY id"
        );
        self.collect("crawls", &sql, args, |r| {
            let status: String = col(r, 4)?;
            Ok(CrawlRecord {
                id: CrawlId(col(r, 0)?),
                kind: col(r, 1)?,
                started_at: col(r, 2)?,
                finished_at: col(r, 3)?,
                status: CrawlStatus::parse(&status).ok_or_else(|| format!("unknown status {status:?}"))?,
                config: col(r, 5)?,
                notes: col(r, 6)?,
            })
        })
    }

    /// Take up crawl `id` again after its process stopped: it becomes `running` again (if it was
    /// `interrupted`), its notes record the resumption, and its address index is dropped until it
    /// finishes (see [`Store::finish_crawl`]). Write to it with a new [`spawn_writer`].
    pub fn resume_crawl(&self, id: CrawlId) -> Result<CrawlRecord, StoreError> {
        let crawl = self.crawl(id)?;
        if crawl.status == CrawlStatus::Finished {
            return Err(StoreError::CrawlFinished {
                path: self.path.clone(),
                crawl: id,
            });
        }
        let note = format!("resumed at {} (was {})\n", now_micros(), crawl.status.as_str());
        let tx = self.conn.unchecked_transaction().map_err(self.sql_err())?;
        tx.execute_batch(&schema::drop_addr_index(id.0))
            .map_err(self.sql_err())?;
        tx.execute(
            "UPDATE crawls SET status = 'running', finished_at = NULL, notes = notes || ?2 WHERE id = ?1",
            params![id.0, note],
        )
        .map_err(self.sql_err())?;
        tx.commit().map_err(self.sql_err())?;
        self.crawl(id)
    }

    /// Record the end of crawl `id`: build its address index (`visits_by_addr_<id>`, on
    /// `(ip, port, at)` for its visits only), rebuild its `peers` rows, set its status. Call it after
    /// the crawl's writer finished; an `interrupted` crawl may be resumed later.
    ///
    /// The address index is built here, in one sorted pass, rather than kept up to date while the
    /// crawl writes: addresses arrive in random order, so every commit would rewrite most of the
    /// index's pages into the WAL, and the write rate would fall as the crawl grows.
    pub fn finish_crawl(&self, id: CrawlId, end: CrawlEnd) -> Result<(), StoreError> {
        self.crawl(id)?;
        let tx = self.conn.unchecked_transaction().map_err(self.sql_err())?;
        tx.execute_batch(&schema::create_addr_index(id.0))
            .map_err(self.sql_err())?;
        self.rebuild_peers_in(&tx, id)?;
        tx.execute(
            "UPDATE crawls SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![id.0, CrawlStatus::from(end).as_str(), now_micros()],
        )
        .map_err(self.sql_err())?;
        tx.commit().map_err(self.sql_err())
    }

    /// Recompute the `peers` rows of crawl `id` from its visits, sightings and peer states, and
    /// return how many there are. Idempotent; [`Store::finish_crawl`] runs it, analyses may run it
    /// on a crawl still running.
    pub fn rebuild_peers(&self, id: CrawlId) -> Result<u64, StoreError> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql_err())?;
        let n = self.rebuild_peers_in(&tx, id)?;
        tx.commit().map_err(self.sql_err())?;
        Ok(n)
    }

    /// [`Store::rebuild_peers`] inside the caller's transaction. Two grouped passes, no per-peer
    /// lookups: it needs no address index, so it also runs on a crawl still running.
    fn rebuild_peers_in(&self, conn: &Connection, id: CrawlId) -> Result<u64, StoreError> {
        conn.execute("DELETE FROM peers WHERE crawl_id = ?1", [id.0])
            .map_err(self.sql_err())?;
        let n = conn
            .execute(
                "WITH u AS (
                     SELECT ip, port, remote_id AS id, at, 0 AS s, 1 AS v, outcome = 'ok' AS ok, 0 AS st, client
                       FROM visits WHERE crawl_id = ?1 AND ip IS NOT NULL AND port IS NOT NULL
                     UNION ALL
                     SELECT ip, port, id, at, 1, 0, 0, 0, NULL FROM sightings WHERE crawl_id = ?1
                     UNION ALL
                     SELECT ip, port, peer_id, at, 0, 0, 0, 1, client FROM peer_states WHERE crawl_id = ?1),
                 seen AS (
                     SELECT ip, port, id, MIN(at) AS first_seen, MAX(at) AS last_seen, SUM(s) AS sighting_count,
                            SUM(v) AS visit_count, SUM(ok) AS visit_ok_count, SUM(st) AS state_count
                       FROM u GROUP BY ip, port, id),
                 -- SQLite takes the bare column `client` from the row holding MAX(at).
                 latest AS (
                     SELECT ip, port, id, client, MAX(at) FROM u WHERE client IS NOT NULL GROUP BY ip, port, id)
                 INSERT INTO peers (crawl_id, ip, port, id, first_seen, last_seen, sighting_count, visit_count,
                                    visit_ok_count, state_count, last_client)
                 SELECT ?1, seen.ip, seen.port, seen.id, first_seen, last_seen, sighting_count, visit_count,
                        visit_ok_count, state_count, latest.client
                   FROM seen LEFT JOIN latest
                     ON latest.ip = seen.ip AND latest.port = seen.port AND latest.id IS seen.id",
                [id.0],
            )
            .map_err(self.sql_err())?;
        Ok(n as u64)
    }

    /// Every `ip:port` crawl `id` has probed (whatever the probe and the outcome), sorted.
    pub fn addrs_visited(&self, id: CrawlId) -> Result<Vec<SocketAddr>, StoreError> {
        self.addrs(
            "visits",
            "SELECT DISTINCT ip, port FROM visits WHERE crawl_id = ?1 AND ip IS NOT NULL AND port IS NOT NULL",
            params![id.0],
        )
    }

    /// Every `ip:port` reported in crawl `id`'s sightings (of `scope`) that the crawl has not
    /// probed yet, sorted: what a resumed crawl still has to visit.
    pub fn addrs_sighted_not_visited(&self, id: CrawlId, scope: SightingScope) -> Result<Vec<SocketAddr>, StoreError> {
        let (filter, info_hash) = match scope {
            SightingScope::All => ("", None),
            SightingScope::DhtNodes => ("AND source_kind = 'dht' AND info_hash IS NULL", None),
            SightingScope::Swarm(h) => ("AND info_hash = ?2", Some(h.0)),
        };
        // Set difference, not a lookup per sighting: a running crawl has no address index.
        let sql = format!(
            "SELECT ip, port FROM sightings WHERE crawl_id = ?1 {filter}
             EXCEPT
             SELECT ip, port FROM visits WHERE crawl_id = ?1 AND ip IS NOT NULL AND port IS NOT NULL"
        );
        match info_hash {
            Some(h) => self.addrs("sightings", &sql, params![id.0, h]),
            None => self.addrs("sightings", &sql, params![id.0]),
        }
    }

    /// The addresses from a query returning distinct (ip, port), sorted.
    fn addrs(
        &self,
        table: &'static str,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<SocketAddr>, StoreError> {
        let mut addrs = self.collect(table, sql, args, |r| socket_addr(&col::<String>(r, 0)?, col(r, 1)?))?;
        addrs.sort_unstable();
        Ok(addrs)
    }

    /// Run `sql` and convert each row; a last column named `rowid` names the row in errors.
    fn collect<T>(
        &self,
        table: &'static str,
        sql: &str,
        args: impl rusqlite::Params,
        convert: impl Fn(&Row<'_>) -> Result<T, Bad>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.sql_err())?;
        let last = stmt.column_count().saturating_sub(1);
        let has_rowid = stmt.column_name(last).is_ok_and(|name| name == "rowid");
        let mut rows = stmt.query(args).map_err(self.sql_err())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(self.sql_err())? {
            match convert(row) {
                Ok(v) => out.push(v),
                Err(detail) => {
                    return Err(StoreError::Corrupt {
                        path: self.path.clone(),
                        table,
                        rowid: if has_rowid { row.get(last).ok() } else { None },
                        detail,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The visits of crawl `id`, in the order they were recorded.
    pub fn visits(&self, id: CrawlId) -> Result<Vec<Visit>, StoreError> {
        self.collect(
            "visits",
            "SELECT probe, target, ip, port, info_hash, at, rtt_us, attempt, outcome, error, remote_id, client,
                    deviations, raw, rowid
               FROM visits WHERE crawl_id = ?1 ORDER BY rowid",
            [id.0],
            |r| {
                let probe: String = col(r, 0)?;
                let outcome: String = col(r, 8)?;
                let addr = match (col::<Option<String>>(r, 2)?, col::<Option<i64>>(r, 3)?) {
                    (Some(ip), Some(port)) => Some(socket_addr(&ip, port)?),
                    (None, None) => None,
                    _ => return Err("ip and port are not both set".into()),
                };
                Ok(Visit {
                    probe: ProbeKind::parse(&probe).ok_or_else(|| format!("unknown probe {probe:?}"))?,
                    target: col(r, 1)?,
                    addr,
                    info_hash: info_hash_col(r, 4)?,
                    at: col(r, 5)?,
                    rtt_us: col(r, 6)?,
                    attempt: u32_of(col(r, 7)?, "attempt")?,
                    outcome: Outcome::parse(&outcome).ok_or_else(|| format!("unknown outcome {outcome:?}"))?,
                    error: col(r, 9)?,
                    remote_id: col(r, 10)?,
                    client: col(r, 11)?,
                    deviations: u32_of(col(r, 12)?, "deviations")?,
                    raw: col(r, 13)?,
                })
            },
        )
    }

    /// The sightings of crawl `id`, in the order they were recorded.
    pub fn sightings(&self, id: CrawlId) -> Result<Vec<Sighting>, StoreError> {
        self.collect(
            "sightings",
            "SELECT at, source_kind, source, source_id, info_hash, ip, port, id, rowid
               FROM sightings WHERE crawl_id = ?1 ORDER BY rowid",
            [id.0],
            |r| {
                let kind: String = col(r, 1)?;
                Ok(Sighting {
                    at: col(r, 0)?,
                    source_kind: SourceKind::parse(&kind).ok_or_else(|| format!("unknown source kind {kind:?}"))?,
                    source: col(r, 2)?,
                    source_id: col(r, 3)?,
                    info_hash: info_hash_col(r, 4)?,
                    addr: socket_addr(&col::<String>(r, 5)?, col(r, 6)?)?,
                    id: col(r, 7)?,
                })
            },
        )
    }

    /// The peer states of crawl `id`, in the order they were recorded.
    pub fn peer_states(&self, id: CrawlId) -> Result<Vec<PeerState>, StoreError> {
        self.collect(
            "peer_states",
            "SELECT at, ip, port, info_hash, peer_id, client, pieces_have, pieces_total, rowid
               FROM peer_states WHERE crawl_id = ?1 ORDER BY rowid",
            [id.0],
            |r| {
                Ok(PeerState {
                    at: col(r, 0)?,
                    addr: socket_addr(&col::<String>(r, 1)?, col(r, 2)?)?,
                    info_hash: InfoHash(col(r, 3)?),
                    peer_id: col(r, 4)?,
                    client: col(r, 5)?,
                    pieces_have: col::<Option<i64>>(r, 6)?
                        .map(|n| u32_of(n, "pieces_have"))
                        .transpose()?,
                    pieces_total: col::<Option<i64>>(r, 7)?
                        .map(|n| u32_of(n, "pieces_total"))
                        .transpose()?,
                })
            },
        )
    }

    /// The piece checks of crawl `id`, in the order they were recorded.
    pub fn piece_checks(&self, id: CrawlId) -> Result<Vec<PieceCheck>, StoreError> {
        self.collect(
            "piece_checks",
            "SELECT at, ip, port, info_hash, piece, ok, rowid FROM piece_checks WHERE crawl_id = ?1 ORDER BY rowid",
            [id.0],
            |r| {
                Ok(PieceCheck {
                    at: col(r, 0)?,
                    addr: socket_addr(&col::<String>(r, 1)?, col(r, 2)?)?,
                    info_hash: InfoHash(col(r, 3)?),
                    piece: u32_of(col(r, 4)?, "piece")?,
                    ok: col(r, 5)?,
                })
            },
        )
    }

    /// The `peers` rows of crawl `id` as last rebuilt, by address.
    pub fn peers(&self, id: CrawlId) -> Result<Vec<PeerRow>, StoreError> {
        self.collect(
            "peers",
            "SELECT ip, port, id, first_seen, last_seen, sighting_count, visit_count, visit_ok_count, state_count,
                    last_client, rowid
               FROM peers WHERE crawl_id = ?1 ORDER BY ip, port, id",
            [id.0],
            |r| {
                Ok(PeerRow {
                    addr: socket_addr(&col::<String>(r, 0)?, col(r, 1)?)?,
                    id: col(r, 2)?,
                    first_seen: col(r, 3)?,
                    last_seen: col(r, 4)?,
                    sighting_count: u64_of(col(r, 5)?, "sighting_count")?,
                    visit_count: u64_of(col(r, 6)?, "visit_count")?,
                    visit_ok_count: u64_of(col(r, 7)?, "visit_ok_count")?,
                    state_count: u64_of(col(r, 8)?, "state_count")?,
                    last_client: col(r, 9)?,
                })
            },
        )
    }

    /// Replace the sessions of crawl `id` with `sessions` (one transaction: re-running an analysis
    /// leaves only its latest result).
    pub fn replace_sessions(&self, id: CrawlId, sessions: &[SessionRow]) -> Result<(), StoreError> {
        self.crawl(id)?;
        let tx = self.conn.unchecked_transaction().map_err(self.sql_err())?;
        tx.execute("DELETE FROM sessions WHERE crawl_id = ?1", [id.0])
            .map_err(self.sql_err())?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO sessions (crawl_id, ip, port, id, started_at, ended_at, left_censored, right_censored)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(self.sql_err())?;
            for s in sessions {
                insert
                    .execute(params![
                        id.0,
                        s.addr.ip().to_string(),
                        s.addr.port(),
                        s.id,
                        s.started_at,
                        s.ended_at,
                        s.left_censored,
                        s.right_censored
                    ])
                    .map_err(self.sql_err())?;
            }
        }
        tx.commit().map_err(self.sql_err())
    }

    /// The sessions of crawl `id`, by address and start.
    pub fn sessions(&self, id: CrawlId) -> Result<Vec<SessionRow>, StoreError> {
        self.collect(
            "sessions",
            "SELECT ip, port, id, started_at, ended_at, left_censored, right_censored, rowid
               FROM sessions WHERE crawl_id = ?1 ORDER BY ip, port, started_at",
            [id.0],
            |r| {
                Ok(SessionRow {
                    addr: socket_addr(&col::<String>(r, 0)?, col(r, 1)?)?,
                    id: col(r, 2)?,
                    started_at: col(r, 3)?,
                    ended_at: col(r, 4)?,
                    left_censored: col(r, 5)?,
                    right_censored: col(r, 6)?,
                })
            },
        )
    }

    /// The newest crawl of the store, if any.
    pub fn newest_crawl(&self) -> Result<Option<CrawlId>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT MAX(id) FROM crawls", [], |r| r.get(0))
            .map_err(self.sql_err())?;
        Ok(id.map(CrawlId))
    }

    /// Append `text` (one or more whole lines) to crawl `id`'s notes.
    pub fn append_note(&self, id: CrawlId, text: &str) -> Result<(), StoreError> {
        self.crawl(id)?;
        self.conn
            .execute(
                "UPDATE crawls SET notes = notes || ?2 WHERE id = ?1",
                params![id.0, text],
            )
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// When crawl `id`'s latest visit started, if it has any.
    pub fn last_visit_at(&self, id: CrawlId) -> Result<Option<Micros>, StoreError> {
        self.conn
            .query_row("SELECT MAX(at) FROM visits WHERE crawl_id = ?1", [id.0], |r| r.get(0))
            .map_err(self.sql_err())
    }

    /// How many observation rows crawl `id` holds.
    pub fn counts(&self, id: CrawlId) -> Result<RowCounts, StoreError> {
        let count = |table: &str| -> Result<u64, StoreError> {
            let n: i64 = self
                .conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE crawl_id = ?1"),
                    [id.0],
                    |r| r.get(0),
                )
                .map_err(self.sql_err())?;
            Ok(n.unsigned_abs())
        };
        Ok(RowCounts {
            visits: count("visits")?,
            sightings: count("sightings")?,
            peer_states: count("peer_states")?,
            piece_checks: count("piece_checks")?,
        })
    }

    /// Whether crawl `id` exists and may be written to.
    fn check_writable(&self, id: CrawlId) -> Result<(), StoreError> {
        let status: Option<String> = self
            .conn
            .query_row("SELECT status FROM crawls WHERE id = ?1", [id.0], |r| r.get(0))
            .optional()
            .map_err(self.sql_err())?;
        match status.as_deref() {
            None => Err(StoreError::NoSuchCrawl {
                path: self.path.clone(),
                crawl: id,
            }),
            Some("finished") => Err(StoreError::CrawlFinished {
                path: self.path.clone(),
                crawl: id,
            }),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
