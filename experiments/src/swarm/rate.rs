//! Rates, sans I/O (time is passed in): a [`TokenBucket`] that paces bytes to a rate, and a
//! [`RateMeter`] that measures one over a sliding window (what the choker ranks peers by).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A token bucket in its virtual-scheduling form (GCRA): [`TokenBucket::reserve`] takes the
/// bytes at once and says how long to wait before sending them, so reservations are served in
/// order (fair across connections that share one bucket) and the long-run rate never exceeds
/// `rate`. It starts empty; an idle bucket saves up at most `burst` bytes, which is also how
/// late a sender may wake up (a sleep overshooting by a timer tick) without losing rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    /// `burst` as time at `rate`.
    tolerance: Duration,
    /// When everything reserved so far has been paid for.
    paid_until: Instant,
}

impl TokenBucket {
    /// A bucket of `rate` bytes per second (at least 1) saving up at most `burst` bytes.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let rate = rate.max(1.0);
        TokenBucket {
            rate,
            tolerance: Duration::from_secs_f64((burst.max(0.0) / rate).min(3600.0)),
            paid_until: now,
        }
    }

    /// The rate, bytes per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Changes the rate for what is reserved from now on (the burst, as bytes, is kept).
    pub fn set_rate(&mut self, rate: f64) {
        let rate = rate.max(1.0);
        self.tolerance = self.tolerance.mul_f64(self.rate / rate);
        self.rate = rate;
    }

    /// Takes `bytes`; returns how long to wait before they may go (zero when they are covered).
    pub fn reserve(&mut self, bytes: usize, now: Instant) -> Duration {
        let earliest = now.checked_sub(self.tolerance).unwrap_or(now);
        let cost = Duration::from_secs_f64((bytes as f64 / self.rate).min(1e9));
        self.paid_until = self.paid_until.max(earliest) + cost;
        self.paid_until.saturating_duration_since(now)
    }
}

/// Bytes per second over the last `window`, and the total.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
    in_window: u64,
    total: u64,
}

/// Samples closer together than this are merged (bounds the memory of a busy meter).
const MERGE: Duration = Duration::from_millis(10);

impl RateMeter {
    /// A meter over `window`.
    pub fn new(window: Duration) -> Self {
        RateMeter {
            window: window.max(MERGE),
            samples: VecDeque::new(),
            in_window: 0,
            total: 0,
        }
    }

    /// Counts `bytes` at `now`.
    pub fn record(&mut self, bytes: u64, now: Instant) {
        self.total += bytes;
        self.in_window += bytes;
        match self.samples.back_mut() {
            Some((at, n)) if now.saturating_duration_since(*at) < MERGE => *n += bytes,
            _ => self.samples.push_back((now, bytes)),
        }
        self.expire(now);
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, n)) = self.samples.front() {
            if now.saturating_duration_since(at) <= self.window {
                break;
            }
            self.in_window -= n;
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window ending `now`.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.expire(now);
        self.in_window as f64 / self.window.as_secs_f64()
    }

    /// Every byte counted.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_paces_to_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 500.0, t0);
        // Starts empty: 100 bytes wait 0.1 s; the next 100 queue behind them.
        assert_eq!(b.reserve(100, t0), Duration::from_millis(100));
        assert_eq!(b.reserve(100, t0), Duration::from_millis(200));
        // After a long idle spell at most `burst` is saved up.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.reserve(500, later), Duration::ZERO);
        assert_eq!(b.reserve(1000, later), Duration::from_secs(1));
        // A faster rate: the next 1000 bytes cost half a second, after the second owed.
        b.set_rate(2000.0);
        assert_eq!(b.reserve(1000, later), Duration::from_millis(1500));
        // Waking up late by less than the burst loses nothing.
        let mut paced = TokenBucket::new(1000.0, 10.0, t0);
        assert_eq!(paced.reserve(100, t0), Duration::from_millis(100));
        let late = t0 + Duration::from_millis(105);
        assert_eq!(paced.reserve(100, late), Duration::from_millis(95));
    }

    #[test]
    fn a_meter_forgets_what_left_its_window() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(2));
        m.record(1000, t0);
        m.record(1000, t0 + Duration::from_secs(1));
        assert_eq!(m.rate(t0 + Duration::from_secs(1)), 1000.0);
        assert_eq!(m.rate(t0 + Duration::from_millis(2500)), 500.0);
        assert_eq!(m.rate(t0 + Duration::from_secs(4)), 0.0);
        assert_eq!(m.total(), 2000);
    }
}
