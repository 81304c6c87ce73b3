//! The meter every relayed cell passes: the bandwidth rate limit and the accounting counter.
//!
//! A cell is metered where it enters the relay: when it is read from a link (in either
//! direction) or packaged at the exit from a destination's bytes. Each of those leaves the
//! relay once, so the meter sees each relayed byte once (Tor's `AccountingRule max`), and
//! slowing entry slows everything: a link reader that waits leaves the peer's bytes in TCP,
//! which pushes back on the sender. The token bucket ([`crate::token_bucket`]) decides the
//! waits; the accounting counter ([`crate::accounting`]) decides hibernation, and is saved to
//! `data_dir/accounting.state` every minute, when hibernation starts and at shutdown.

use crate::accounting::Accounting;
use crate::config::RelayConfig;
use crate::relay::{Relay, unix_now};
use crate::state_file;
use crate::stats::RelayStats;
use crate::token_bucket::TokenBucket;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the accounting counter is saved.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(60);
/// The counter's file in `data_dir`.
pub const ACCOUNTING_FILE: &str = "accounting.state";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn bucket_now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Rate limit and accounting for all relayed traffic.
pub struct TrafficMeter {
    bucket: Mutex<Option<TokenBucket>>,
    accounting: Mutex<Option<Accounting>>,
    hibernating: AtomicBool,
    state_path: PathBuf,
    hibernation_started: Notify,
}

impl TrafficMeter {
    /// A meter for `config`, resuming the saved accounting counter if it is for this period.
    pub fn new(config: &RelayConfig) -> std::io::Result<Self> {
        let state_path = config.data_dir.join(ACCOUNTING_FILE);
        let accounting = match config.accounting_max_bytes {
            Some(max) => {
                let saved = state_file::read(&state_path)?;
                Some(Accounting::resume(
                    max,
                    config.accounting_start_day,
                    saved.as_deref(),
                    unix_now(),
                ))
            }
            None => None,
        };
        let hibernating = accounting.as_ref().is_some_and(Accounting::exhausted);
        Ok(TrafficMeter {
            bucket: Mutex::new(
                config
                    .rate_limit()
                    .map(|(rate, burst)| TokenBucket::new(rate, burst, bucket_now())),
            ),
            accounting: Mutex::new(accounting),
            hibernating: AtomicBool::new(hibernating),
            state_path,
            hibernation_started: Notify::new(),
        })
    }

    /// Counts `bytes` entering the relay and waits as long as the rate limit requires.
    pub async fn pass(&self, bytes: u64, stats: &RelayStats) {
        if let Some(a) = lock(&self.accounting).as_mut() {
            if a.add(bytes) {
                self.hibernating.store(true, Ordering::Relaxed);
                self.hibernation_started.notify_one();
            }
            RelayStats::set(&stats.accounting_bytes, a.used());
        }
        let wait = lock(&self.bucket)
            .as_mut()
            .map_or(Duration::ZERO, |b| b.reserve(bytes, bucket_now()));
        if !wait.is_zero() {
            RelayStats::bump(&stats.bandwidth_delayed);
            tokio::time::sleep(wait).await;
        }
    }

    /// The accounting limit is reached: refuse new circuits and streams.
    pub fn hibernating(&self) -> bool {
        self.hibernating.load(Ordering::Relaxed)
    }

    /// Applies a reloaded rate limit.
    pub fn set_rate_limit(&self, limit: Option<(u64, u64)>) {
        let mut bucket = lock(&self.bucket);
        match (bucket.as_mut(), limit) {
            (Some(b), Some((rate, burst))) => b.set_limits(rate, burst, bucket_now()),
            (_, limit) => *bucket = limit.map(|(rate, burst)| TokenBucket::new(rate, burst, bucket_now())),
        }
    }

    /// The current (rate, burst), if limited.
    pub fn rate_limit(&self) -> Option<(u64, u64)> {
        lock(&self.bucket).as_ref().map(|b| (b.rate(), b.burst()))
    }

    /// Saves the accounting counter (if accounting is on).
    pub fn save(&self) -> std::io::Result<()> {
        let text = lock(&self.accounting).as_ref().map(Accounting::to_text);
        match text {
            Some(text) => state_file::write(&self.state_path, &text),
            None => Ok(()),
        }
    }

    /// Starts a new period if the current one is over; then `Some(was hibernating)`.
    fn roll(&self, now: u64) -> Option<bool> {
        let mut guard = lock(&self.accounting);
        let a = guard.as_mut()?;
        a.roll(now).then(|| self.hibernating.swap(false, Ordering::Relaxed))
    }

    fn period_end(&self) -> Option<u64> {
        lock(&self.accounting).as_ref().map(Accounting::period_end)
    }
}

/// Saves the counter periodically, announces hibernation and wakes the relay at the next
/// period; a hibernating relay republishes its descriptor with no bandwidth so that clients
/// leave it alone, and republishes its real bandwidth when it wakes.
pub async fn accounting_loop(relay: Arc<Relay>) {
    let meter = &relay.traffic;
    let Some(mut period_end) = meter.period_end() else {
        return;
    };
    if meter.hibernating() {
        tracing::info!(
            until = period_end,
            "accounting limit already reached this period: hibernating"
        );
        RelayStats::set(&relay.stats.hibernating, 1);
    }
    loop {
        let until_end = Duration::from_secs(period_end.saturating_sub(unix_now()));
        let started = tokio::select! {
            _ = tokio::time::sleep(SAVE_INTERVAL.min(until_end)) => false,
            _ = meter.hibernation_started.notified() => true,
        };
        if started {
            tracing::info!(
                until = period_end,
                "accounting limit reached: hibernating (no new circuits or streams) until the next period"
            );
            RelayStats::set(&relay.stats.hibernating, 1);
            relay.republish.notify_one();
        }
        if let Some(was_hibernating) = meter.roll(unix_now()) {
            tracing::info!("new accounting period");
            RelayStats::set(&relay.stats.accounting_bytes, 0);
            if was_hibernating {
                tracing::info!("awake again after hibernation");
                RelayStats::set(&relay.stats.hibernating, 0);
                relay.republish.notify_one();
            }
        }
        period_end = meter.period_end().unwrap_or(period_end);
        if let Err(e) = meter.save() {
            tracing::warn!("cannot save the accounting counter: {e}");
        }
    }
}
