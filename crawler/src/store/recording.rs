//! A crawl being recorded: the glue between a probe run and the store. It begins (or resumes) the
//! crawl row, starts the writer, hands out the [`Recorder`] the probes record to, and at the end
//! stops the writer and marks the crawl finished or interrupted. It records nothing itself.

use std::path::Path;

use super::{CrawlEnd, CrawlId, CrawlRecord, RowCounts, Store, StoreError, WriterConfig, WriterHandle, spawn_writer};
use crate::engine::Recorder;

/// Rows the probes may have in flight to the writer before recording waits.
const CHANNEL_ROWS: usize = 16_384;

/// A crawl in a store with its running writer.
#[derive(Debug)]
pub struct Recording {
    store: Store,
    crawl: CrawlRecord,
    writer: WriterHandle,
}

impl Recording {
    /// Begin a new crawl of `kind` (with its configuration text) in the store at `path`.
    pub fn begin(path: &Path, kind: &str, config: &str) -> Result<(Recorder, Recording), StoreError> {
        let store = Store::open(path)?;
        let id = store.begin_crawl(kind, config)?;
        Self::start(store, id)
    }

    /// Take up crawl `id` of the store at `path` again ([`Store::resume_crawl`]); the caller
    /// rebuilds its state from [`Recording::store`] before probing.
    pub fn resume(path: &Path, id: CrawlId) -> Result<(Recorder, Recording), StoreError> {
        let store = Store::open(path)?;
        store.resume_crawl(id)?;
        Self::start(store, id)
    }

    fn start(store: Store, id: CrawlId) -> Result<(Recorder, Recording), StoreError> {
        let (recorder, rx) = Recorder::channel(CHANNEL_ROWS);
        let writer = spawn_writer(store.path(), id, rx, WriterConfig::default())?;
        let crawl = store.crawl(id)?;
        Ok((recorder, Recording { store, crawl, writer }))
    }

    /// The crawl, as it stood when recording began.
    pub fn crawl(&self) -> &CrawlRecord {
        &self.crawl
    }

    /// The store, to read back what the crawl recorded so far.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Rows committed so far by this recording.
    pub fn committed(&self) -> RowCounts {
        self.writer.committed()
    }

    /// Store every row recorded so far, stop the writer (later records are dropped), and mark the
    /// crawl `end`. Returns the rows this recording stored.
    pub async fn finish(self, end: CrawlEnd) -> Result<RowCounts, StoreError> {
        let counts = self.writer.finish().await?;
        self.store.finish_crawl(self.crawl.id, end)?;
        Ok(counts)
    }
}
