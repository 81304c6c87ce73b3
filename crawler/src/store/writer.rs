//! The store's writer: the one consumer of a crawl's observation channel, batching rows into
//! SQLite transactions. It never reads rows back and never blocks the probes' runtime.
//!
//! **A dedicated OS thread, not a tokio task.** Every SQLite call blocks (page writes, WAL appends,
//! index updates: about a microsecond per row, milliseconds per commit). On a tokio worker that
//! would stall the probes sharing the worker, and `spawn_blocking` per batch would move the
//! connection and its prepared statements between threads for nothing. The thread owns its
//! connection and its cached statements for its whole life; it waits for rows on a small
//! current-thread runtime of its own (the channel is tokio's), so it needs no runtime from its
//! caller and can be spawned from synchronous code.
//!
//! **Batching.** Rows go into one open transaction, committed when it holds
//! [`WriterConfig::batch_rows`] rows or [`WriterConfig::max_delay`] after its first row, whichever
//! comes first. A crash of the process loses at most the rows of the open transaction (the last
//! `max_delay`); every commit survives it (WAL, `synchronous=NORMAL`; a power loss may in addition
//! roll back the last commits, never corrupt the file). [`WriterHandle::committed`] counts rows
//! that have been committed.
//!
//! **Stopping.** [`WriterHandle::finish`] closes the channel (later sends fail, and a
//! [`Recorder`](crate::engine::Recorder) drops them), stores every row sent before it, commits and
//! returns the counts. If every sender is dropped first, the writer commits and stops by itself.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{CachedStatement, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{CrawlId, Store, StoreError};
use crate::observe::{Observation, PeerState, PieceCheck, Sighting, Visit};

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Commit when the open transaction holds this many rows.
    pub batch_rows: usize,
    /// Commit at most this long after the open transaction's first row (the most a crash loses).
    pub max_delay: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_rows: 65_536,
            max_delay: Duration::from_millis(100),
        }
    }
}

/// Rows per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// `visits` rows.
    pub visits: u64,
    /// `sightings` rows.
    pub sightings: u64,
    /// `peer_states` rows.
    pub peer_states: u64,
    /// `piece_checks` rows.
    pub piece_checks: u64,
}

impl RowCounts {
    /// All rows.
    pub fn total(&self) -> u64 {
        self.visits + self.sightings + self.peer_states + self.piece_checks
    }

    fn add(&mut self, obs: &Observation) {
        match obs {
            Observation::Visit(_) => self.visits += 1,
            Observation::Sighting(_) => self.sightings += 1,
            Observation::PeerState(_) => self.peer_states += 1,
            Observation::PieceCheck(_) => self.piece_checks += 1,
        }
    }
}

/// Committed row counts, shared between the writer thread and its handle.
#[derive(Debug, Default)]
struct Committed {
    visits: AtomicU64,
    sightings: AtomicU64,
    peer_states: AtomicU64,
    piece_checks: AtomicU64,
}

impl Committed {
    fn store(&self, c: RowCounts) {
        self.visits.store(c.visits, Ordering::Release);
        self.sightings.store(c.sightings, Ordering::Release);
        self.peer_states.store(c.peer_states, Ordering::Release);
        self.piece_checks.store(c.piece_checks, Ordering::Release);
    }

    fn load(&self) -> RowCounts {
        RowCounts {
            visits: self.visits.load(Ordering::Acquire),
            sightings: self.sightings.load(Ordering::Acquire),
            peer_states: self.peer_states.load(Ordering::Acquire),
            piece_checks: self.piece_checks.load(Ordering::Acquire),
        }
    }
}

/// The running writer of one crawl.
#[derive(Debug)]
pub struct WriterHandle {
    stop: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<Result<RowCounts, StoreError>>,
    committed: Arc<Committed>,
    path: PathBuf,
}

impl WriterHandle {
    /// Rows this writer has committed so far (durable across a crash of the process).
    pub fn committed(&self) -> RowCounts {
        self.committed.load()
    }

    /// Close the channel, store every row sent before this call, commit, and return the rows this
    /// writer stored (not counting what the crawl held before it).
    pub async fn finish(mut self) -> Result<RowCounts, StoreError> {
        if let Some(stop) = self.stop.take() {
            // The writer may already have stopped on its own (all senders gone, or an error).
            let _ = stop.send(());
        }
        match (&mut self.done).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Writer {
                path: self.path.clone(),
                what: "stopped without reporting (it panicked)".into(),
            }),
        }
    }
}

/// Start the writer of crawl `crawl` in the store at `store_path`: it stores every observation
/// received on `rx`. Fails if the store cannot be opened or the crawl is unknown or finished.
///
/// Dropping the handle without [`WriterHandle::finish`] leaves the writer running until every
/// sender is dropped.
pub fn spawn_writer(
    store_path: &Path,
    crawl: CrawlId,
    rx: mpsc::Receiver<Observation>,
    cfg: WriterConfig,
) -> Result<WriterHandle, StoreError> {
    let store = Store::open(store_path)?;
    store.check_writable(crawl)?;
    let Store { conn, path } = store;
    // Index pages of a growing crawl stay in memory (64 MiB), and statements stay prepared.
    conn.pragma_update(None, "cache_size", -65_536)
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let committed = Arc::new(Committed::default());
    let mut writer = Writer {
        conn,
        path: path.clone(),
        crawl,
        cfg: WriterConfig {
            batch_rows: cfg.batch_rows.max(1),
            ..cfg
        },
        committed: committed.clone(),
        totals: RowCounts::default(),
        ip: String::new(),
    };
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name(format!("store-writer-{crawl}"))
        .spawn(move || {
            let result = writer.run(rx, stop_rx);
            if let Err(e) = &result {
                tracing::error!("{e}; the crawl's later observations are dropped");
            }
            drop(writer);
            let _ = done_tx.send(result);
        })
        .map_err(|e| StoreError::Writer {
            path: thread_path,
            what: format!("could not be started: {e}"),
        })?;
    Ok(WriterHandle {
        stop: Some(stop_tx),
        done: done_rx,
        committed,
        path,
    })
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    path: PathBuf,
    crawl: CrawlId,
    cfg: WriterConfig,
    committed: Arc<Committed>,
    /// Rows committed by this writer.
    totals: RowCounts,
    /// Scratch space for IP addresses as text.
    ip: String,
}

/// What waiting for rows produced.
enum Wait {
    /// Rows arrived.
    Rows,
    /// The open transaction's time is up.
    Deadline,
    /// The channel is closed and empty: nothing more will come.
    Closed,
    /// The handle asked to finish.
    Stop,
    /// The handle was dropped without asking to finish.
    HandleGone,
}

/// Rows taken from the channel at once.
const CHUNK: usize = 1024;

impl Writer {
    fn run(
        &mut self,
        mut rx: mpsc::Receiver<Observation>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<RowCounts, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Writer {
                path: self.path.clone(),
                what: format!("could not start its runtime: {e}"),
            })?;
        let mut buf = Vec::with_capacity(CHUNK);
        let mut stop_armed = true;
        let mut closed = false;
        while !closed {
            // Wait, without a deadline, for the first rows of the next transaction.
            buf.clear();
            match rt.block_on(wait(
                &mut rx,
                &mut buf,
                self.cfg.batch_rows.min(CHUNK),
                &mut stop,
                stop_armed,
                None,
            )) {
                Wait::Rows => {}
                Wait::Closed => break,
                Wait::Stop => {
                    rx.close();
                    stop_armed = false;
                    continue;
                }
                Wait::HandleGone => {
                    stop_armed = false;
                    continue;
                }
                Wait::Deadline => continue,
            }
            let deadline = Instant::now() + self.cfg.max_delay;
            let tx = self.conn.transaction().map_err(|e| sql_err(&self.path, e))?;
            let mut batch = RowCounts::default();
            let mut inserts = Inserts::prepare(&tx).map_err(|e| sql_err(&self.path, e))?;
            loop {
                inserts
                    .insert(&buf, self.crawl, &mut self.ip)
                    .map_err(|e| sql_err(&self.path, e))?;
                for obs in buf.drain(..) {
                    batch.add(&obs);
                }
                let room = self.cfg.batch_rows.saturating_sub(batch.total() as usize);
                if room == 0 || Instant::now() >= deadline {
                    break;
                }
                match rt.block_on(wait(
                    &mut rx,
                    &mut buf,
                    room.min(CHUNK),
                    &mut stop,
                    stop_armed,
                    Some(deadline),
                )) {
                    Wait::Rows => {}
                    Wait::Deadline => break,
                    Wait::Closed => {
                        closed = true;
                        break;
                    }
                    Wait::Stop => {
                        rx.close();
                        stop_armed = false;
                    }
                    Wait::HandleGone => stop_armed = false,
                }
            }
            drop(inserts);
            tx.commit().map_err(|e| sql_err(&self.path, e))?;
            self.totals.visits += batch.visits;
            self.totals.sightings += batch.sightings;
            self.totals.peer_states += batch.peer_states;
            self.totals.piece_checks += batch.piece_checks;
            self.committed.store(self.totals);
        }
        Ok(self.totals)
    }
}

/// Wait for up to `limit` rows into `buf`, for `deadline`, or for the handle's stop signal.
async fn wait(
    rx: &mut mpsc::Receiver<Observation>,
    buf: &mut Vec<Observation>,
    limit: usize,
    stop: &mut oneshot::Receiver<()>,
    stop_armed: bool,
    deadline: Option<Instant>,
) -> Wait {
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        n = rx.recv_many(buf, limit) => if n == 0 { Wait::Closed } else { Wait::Rows },
        r = stop, if stop_armed => if r.is_ok() { Wait::Stop } else { Wait::HandleGone },
        () = sleep => Wait::Deadline,
    }
}

fn sql_err(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// The four insert statements, prepared (from the connection's cache) for one transaction.
///
/// One row per statement run: multi-row `INSERT ... VALUES (...), (...)` was measured at half the
/// rate, as SQLite then keeps a statement journal for every statement.
struct Inserts<'c> {
    visit: CachedStatement<'c>,
    sighting: CachedStatement<'c>,
    peer_state: CachedStatement<'c>,
    piece_check: CachedStatement<'c>,
}

/// `ip` as text in `buf` (reused: no allocation per row).
fn ip_text(buf: &mut String, ip: IpAddr) -> &str {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "{ip}");
    buf
}

impl<'c> Inserts<'c> {
    fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<Self> {
        Ok(Inserts {
            visit: tx.prepare_cached(
                "INSERT INTO visits (crawl_id, probe, target, ip, port, info_hash, at, rtt_us, attempt, outcome,
                                     error, remote_id, client, deviations, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?,
            sighting: tx.prepare_cached(
                "INSERT INTO sightings (crawl_id, at, source_kind, source, source_id, info_hash, ip, port, id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            peer_state: tx.prepare_cached(
                "INSERT INTO peer_states (crawl_id, at, ip, port, info_hash, peer_id, client, pieces_have,
                                          pieces_total)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            piece_check: tx.prepare_cached(
                "INSERT INTO piece_checks (crawl_id, at, ip, port, info_hash, piece, ok)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
        })
    }

    /// Insert `rows` in order.
    fn insert(&mut self, rows: &[Observation], crawl: CrawlId, ip: &mut String) -> rusqlite::Result<()> {
        for obs in rows {
            match obs {
                Observation::Visit(v) => self.visit(crawl, v, ip)?,
                Observation::Sighting(s) => self.sighting(crawl, s, ip)?,
                Observation::PeerState(p) => self.peer_state(crawl, p, ip)?,
                Observation::PieceCheck(p) => self.piece_check(crawl, p, ip)?,
            }
        }
        Ok(())
    }

    fn visit(&mut self, crawl: CrawlId, v: &Visit, ip: &mut String) -> rusqlite::Result<()> {
        let ip = v.addr.map(|a| ip_text(ip, a.ip()));
        self.visit.execute((
            crawl.0,
            v.probe.as_str(),
            &v.target,
            ip,
            v.addr.map(|a| a.port()),
            v.info_hash.map(|h| h.0),
            v.at,
            v.rtt_us,
            v.attempt,
            v.outcome.as_str(),
            &v.error,
            v.remote_id,
            &v.client,
            v.deviations,
            &v.raw,
        ))?;
        Ok(())
    }

    fn sighting(&mut self, crawl: CrawlId, s: &Sighting, ip: &mut String) -> rusqlite::Result<()> {
        self.sighting.execute((
            crawl.0,
            s.at,
            s.source_kind.as_str(),
            &s.source,
            s.source_id,
            s.info_hash.map(|h| h.0),
            ip_text(ip, s.addr.ip()),
            s.addr.port(),
            s.id,
        ))?;
        Ok(())
    }

    fn peer_state(&mut self, crawl: CrawlId, p: &PeerState, ip: &mut String) -> rusqlite::Result<()> {
        self.peer_state.execute((
            crawl.0,
            p.at,
            ip_text(ip, p.addr.ip()),
            p.addr.port(),
            p.info_hash.0,
            p.peer_id,
            &p.client,
            p.pieces_have,
            p.pieces_total,
        ))?;
        Ok(())
    }

    fn piece_check(&mut self, crawl: CrawlId, p: &PieceCheck, ip: &mut String) -> rusqlite::Result<()> {
        self.piece_check.execute((
            crawl.0,
            p.at,
            ip_text(ip, p.addr.ip()),
            p.addr.port(),
            p.info_hash.0,
            p.piece,
            p.ok,
        ))?;
        Ok(())
    }
}
