//! The token bucket behind `bandwidth_rate` and `bandwidth_burst`, without I/O or clock.
//!
//! The bucket holds up to `burst` bytes of credit and refills at `rate` bytes per second.
//! [`TokenBucket::reserve`] always takes what it is asked for and answers how long the caller
//! must wait before sending: credit may go negative, and a debt is paid back at `rate`, so
//! callers that reserve one after another are served in order and the long-run throughput is
//! exactly `rate`. Time is passed in, so tests run it with made-up instants.

use std::time::{Duration, Instant};

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A byte-rate limiter: refills at `rate` bytes/s up to `burst` bytes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Credit in byte-nanoseconds (bytes × 10⁹), so refills lose no fractions; negative is debt.
    credit: i128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` and `burst` are at least 1.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        let burst = burst.max(1);
        TokenBucket {
            rate: rate.max(1),
            burst,
            credit: i128::from(burst) * NANOS_PER_SEC,
            last: now,
        }
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Largest credit, in bytes.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let cap = i128::from(self.burst) * NANOS_PER_SEC;
        let gained = i128::from(self.rate) * elapsed.as_nanos() as i128;
        self.credit = self.credit.saturating_add(gained).min(cap);
    }

    /// Takes `bytes` and returns how long to wait before they may go (zero when the bucket
    /// had the credit).
    pub fn reserve(&mut self, bytes: u64, now: Instant) -> Duration {
        self.refill(now);
        self.credit -= i128::from(bytes) * NANOS_PER_SEC;
        if self.credit >= 0 {
            return Duration::ZERO;
        }
        let rate = i128::from(self.rate);
        let nanos = (-self.credit + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Changes the rate and burst (a reload), keeping the current credit or debt.
    pub fn set_limits(&mut self, rate: u64, burst: u64, now: Instant) {
        self.refill(now);
        self.rate = rate.max(1);
        self.burst = burst.max(1);
        self.credit = self.credit.min(i128::from(self.burst) * NANOS_PER_SEC);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn burst_passes_then_rate_applies() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        assert_eq!(b.reserve(500, t0), Duration::ZERO, "a full bucket passes its burst");
        assert_eq!(b.reserve(100, t0), 100 * MS, "then 100 bytes cost 100 ms at 1000 B/s");
        assert_eq!(b.reserve(100, t0), 200 * MS, "a second caller queues behind the first");
        assert_eq!(b.reserve(100, t0 + 300 * MS), Duration::ZERO, "debt paid after 300 ms");
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        b.reserve(500, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(b.reserve(500, later), Duration::ZERO);
        assert_eq!(
            b.reserve(1, later),
            MS,
            "an hour of idling saved no more than the burst"
        );
    }

    #[test]
    fn long_run_throughput_is_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(51_400, 5140, t0);
        // A sender that sends a cell whenever it may, for ten simulated seconds.
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(10) {
            now += b.reserve(514, now);
            sent += 514;
        }
        let expected = 51_400 * 10 + 5140;
        assert!(sent.abs_diff(expected) <= 514, "sent {sent}, expected about {expected}");
    }

    #[test]
    fn reload_keeps_debt_and_caps_credit() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 10_000, t0);
        b.set_limits(100, 50, t0);
        assert_eq!((b.rate(), b.burst()), (100, 50));
        assert_eq!(b.reserve(50, t0), Duration::ZERO, "credit was capped at the new burst");
        assert_eq!(b.reserve(10, t0), 100 * MS);
        b.set_limits(1000, 1000, t0);
        assert_eq!(b.reserve(0, t0), 10 * MS, "the debt stays, paid at the new rate");
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1000, 1000, t0);
        b.reserve(1000, t0);
        assert_eq!(b.reserve(100, t0 - Duration::from_secs(5)), 100 * MS);
    }
}
