//! The probe engine: one place where every probe of every protocol goes through the same rules.
//!
//! - **Bounded concurrency**: at most [`EngineConfig::concurrency`] attempts in flight.
//! - **Per-IP politeness**: attempts to one IP address are spaced by at least
//!   [`EngineConfig::per_ip_interval`] (default 1 s, i.e. at most one query per second per
//!   address), whatever port or protocol they use. Slots are reserved in order, so a burst of
//!   probes to one address queues instead of hammering it.
//! - **Timeouts**: each attempt gets [`EngineConfig::timeout`].
//! - **Retries with backoff**: an attempt that got no answer ([`Outcome::is_retryable`]) is tried
//!   again, up to [`EngineConfig::attempts`] in all, after `backoff * 2^(n-1)`.
//! - **A deny-list** ([`DenyList`]): targets in a denied range are never contacted; the probe
//!   fails at once with [`Outcome::Denied`], recorded like any other attempt.
//! - **A record of every attempt**: each attempt, whatever its outcome, becomes a [`Visit`] sent
//!   to the [`Recorder`].
//!
//! Probes are closures returning a future; the engine knows nothing of their protocol. What a
//! successful reply reveals (remote id, client name, raw bytes) is copied into the visit through
//! the [`Reply`] trait.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::infohash::InfoHash;
use crate::observe::{Observation, Outcome, ProbeKind, Visit};

mod deny;

pub use deny::{Cidr, DenyList};

/// The engine's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Minimum spacing of attempts to one IP address.
    pub per_ip_interval: Duration,
    /// Deadline of one attempt.
    pub timeout: Duration,
    /// Attempts in all for a probe that gets no answer (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further retry.
    pub backoff: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: 256,
            per_ip_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            attempts: 2,
            backoff: Duration::from_secs(1),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    /// The outcome to record (never [`Outcome::Ok`]).
    pub outcome: Outcome,
    /// What happened, in words.
    pub message: String,
    /// The offending reply, when there was one.
    pub raw: Option<Vec<u8>>,
}

impl ProbeError {
    /// A failure with `outcome` and `message`.
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        ProbeError {
            outcome,
            message: message.into(),
            raw: None,
        }
    }

    /// The same failure, keeping the reply that caused it.
    pub fn with_raw(mut self, raw: Vec<u8>) -> Self {
        self.raw = Some(raw);
        self
    }

    /// An I/O error as an outcome: refused/reset/unreachable, timed out, or malformed.
    pub fn io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let outcome = match e.kind() {
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | HostUnreachable
            | NetworkUnreachable | AddrNotAvailable | BrokenPipe => Outcome::Unreachable,
            TimedOut | WouldBlock => Outcome::Timeout,
            UnexpectedEof => Outcome::ProtocolError,
            _ => Outcome::Unreachable,
        };
        ProbeError::new(outcome, e.to_string())
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.outcome.as_str(), self.message)
    }
}

impl std::error::Error for ProbeError {}

/// What a successful reply contributes to its [`Visit`] (remote id, client, raw bytes...).
pub trait Reply {
    /// Copy what this reply reveals into `visit`. The default records nothing more.
    fn describe(&self, visit: &mut Visit) {
        let _ = visit;
    }
}

impl Reply for () {}

/// Where observations go: a bounded channel to the store's writer (or to a test).
///
/// Sending waits when the writer is behind, so a slow disk slows the crawl instead of growing
/// memory. A recorder whose receiver is gone drops rows silently: the crawl is ending.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Observation>,
}

impl Recorder {
    /// A recorder and the receiving end of its channel of `capacity` rows.
    pub fn channel(capacity: usize) -> (Recorder, mpsc::Receiver<Observation>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Recorder { tx }, rx)
    }

    /// A recorder that keeps nothing (for one-off commands that only print).
    pub fn discard() -> Recorder {
        let (tx, mut rx) = mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Recorder { tx }
    }

    /// Hand one row to the store.
    pub async fn record(&self, obs: Observation) {
        let _ = self.tx.send(obs).await;
    }
}

/// Running totals, cheap to read for a progress bar.
#[derive(Debug, Default)]
pub struct EngineStats {
    attempts: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    denied: AtomicU64,
}

impl EngineStats {
    /// Attempts started.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
    /// Attempts answered well.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }
    /// Attempts that failed (any outcome but OK).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    /// Probes refused by the deny-list (never sent).
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
    /// Attempts running now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Per-IP slot reservations: the earliest instant the next attempt to each address may start.
#[derive(Debug, Default)]
struct Politeness {
    next: Mutex<HashMap<IpAddr, Instant>>,
}

/// Above this many remembered addresses, those whose slot has passed are forgotten.
const POLITENESS_PRUNE_AT: usize = 65_536;

impl Politeness {
    /// Reserve the next slot for `ip`; returns when the attempt may start.
    fn reserve(&self, ip: IpAddr, interval: Duration) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if next.len() >= POLITENESS_PRUNE_AT {
            next.retain(|_, t| *t > now);
        }
        let slot = next.get(&ip).map_or(now, |t| (*t).max(now));
        next.insert(ip, slot + interval);
        slot
    }
}

/// The probe engine (cheap to clone; clones share limits, politeness and totals).
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    permits: Arc<Semaphore>,
    polite: Arc<Politeness>,
    recorder: Recorder,
    stats: Arc<EngineStats>,
    deny: Arc<DenyList>,
}

/// What a probe is about, for its visits.
#[derive(Debug, Clone)]
pub struct Target {
    /// The probe kind.
    pub probe: ProbeKind,
    /// `ip:port` or URL, as stored.
    pub target: String,
    /// The address, used for politeness (probes without one are not spaced).
    pub addr: Option<SocketAddr>,
    /// The swarm, if any.
    pub info_hash: Option<InfoHash>,
}

impl Target {
    /// A probe of `addr`, stored as `ip:port`.
    pub fn addr(probe: ProbeKind, addr: SocketAddr) -> Self {
        Target {
            probe,
            target: addr.to_string(),
            addr: Some(addr),
            info_hash: None,
        }
    }

    /// The same target about `info_hash`.
    pub fn about(mut self, info_hash: InfoHash) -> Self {
        self.info_hash = Some(info_hash);
        self
    }
}

impl Engine {
    /// An engine with `cfg`, recording to `recorder`.
    pub fn new(cfg: EngineConfig, recorder: Recorder) -> Self {
        Engine {
            permits: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            polite: Arc::default(),
            recorder,
            stats: Arc::default(),
            deny: Arc::default(),
            cfg,
        }
    }

    /// The same engine refusing to contact `deny` (instead of the default list).
    pub fn with_deny_list(mut self, deny: DenyList) -> Self {
        self.deny = Arc::new(deny);
        self
    }

    /// The rules in force.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The running totals.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// The recorder probes also send their other observations to.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Run `attempt` against `target` under the engine's rules, recording a [`Visit`] per attempt.
    /// Returns the first successful reply, or the last failure.
    pub async fn probe<T, F, Fut>(&self, target: &Target, mut attempt: F) -> Result<T, ProbeError>
    where
        T: Reply,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProbeError>>,
    {
        if let Some(range) = target.addr.and_then(|a| self.deny.denies(a.ip())) {
            let error = ProbeError::new(Outcome::Denied, format!("{range} is on the deny-list"));
            let mut visit = Visit::start(target.probe, target.target.clone(), target.addr);
            visit.info_hash = target.info_hash;
            visit.outcome = Outcome::Denied;
            visit.error = Some(error.message.clone());
            self.stats.denied.fetch_add(1, Ordering::Relaxed);
            self.recorder.record(Observation::Visit(visit)).await;
            return Err(error);
        }
        let attempts = self.cfg.attempts.max(1);
        let mut n = 1;
        loop {
            if let Some(addr) = target.addr {
                let slot = self.polite.reserve(addr.ip(), self.cfg.per_ip_interval);
                tokio::time::sleep_until(slot).await;
            }
            let result = {
                let _permit = self.permits.acquire().await;
                self.attempt_once(target, n, attempt()).await
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if n < attempts && e.outcome.is_retryable() => {
                    let wait = self.cfg.backoff.saturating_mul(1 << (n - 1).min(16));
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt_once<T: Reply>(
        &self,
        target: &Target,
        n: u32,
        fut: impl Future<Output = Result<T, ProbeError>>,
    ) -> Result<T, ProbeError> {
        let mut visit = Visit::start(target.probe, target.target.clone(), target.addr);
        visit.info_hash = target.info_hash;
        visit.attempt = n;
        self.stats.attempts.fetch_add(1, Ordering::Relaxed);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::new(
                Outcome::Timeout,
                format!("no answer within {:?}", self.cfg.timeout),
            )),
        };
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        visit.rtt_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        match &result {
            Ok(reply) => {
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
                visit.outcome = Outcome::Ok;
                reply.describe(&mut visit);
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                visit.outcome = e.outcome;
                visit.error = Some(e.message.clone());
                visit.raw.clone_from(&e.raw);
            }
        }
        self.recorder.record(Observation::Visit(visit)).await;
        result
    }
}

#[cfg(test)]
mod tests;
