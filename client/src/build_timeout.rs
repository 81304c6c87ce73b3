//! How long a circuit build may take, learned from the builds this client has seen (Tor's
//! circuit build timeout, "CBT", simplified). No I/O and no clock: build times are passed in.
//!
//! Until [`MIN_OBSERVATIONS`] builds have finished, the limit is the configured maximum. After
//! that it is the [`QUANTILE`] of the observed build times (the last [`MAX_OBSERVATIONS`])
//! times [`FACTOR`], clamped to `[MIN_TIMEOUT, max]`. A build slower than that is abandoned and
//! retried on another path: on a healthy network about one build in five would otherwise wait
//! much longer than the rest for a slow relay. Tor fits a Pareto distribution to a thousand
//! build times; with the few dozen a short-lived client sees, the empirical quantile with a
//! safety factor is steadier.
//!
//! If the network changes (a slower uplink, a suspended laptop), the learned limit would
//! abandon every build. So when more than [`MAX_RECENT_TIMEOUTS`] of the last
//! [`RECENT_WINDOW`] builds timed out, the history is forgotten and the limit goes back to the
//! maximum until enough new builds are seen (Tor resets its estimate the same way).

use std::collections::VecDeque;
use std::time::Duration;

/// Builds observed before the learned limit replaces the configured maximum.
pub const MIN_OBSERVATIONS: usize = 20;
/// Build times kept.
pub const MAX_OBSERVATIONS: usize = 1000;
/// Which quantile of the observed build times the limit starts from.
pub const QUANTILE: f64 = 0.8;
/// Safety factor over the quantile.
pub const FACTOR: f64 = 1.5;
/// The limit never goes below this, however fast builds have been.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Outcomes (finished or timed out) remembered to notice a changed network.
pub const RECENT_WINDOW: usize = 20;
/// More timeouts than this among the last [`RECENT_WINDOW`] builds reset the estimate.
pub const MAX_RECENT_TIMEOUTS: usize = 8;

/// The learned circuit build timeout.
#[derive(Debug, Clone)]
pub struct BuildTimeout {
    max: Duration,
    times: VecDeque<Duration>,
    /// true: timed out.
    recent: VecDeque<bool>,
    current: Duration,
}

impl BuildTimeout {
    /// Nothing learned yet: the limit is `max` (the configured `circuit_build_timeout_secs`).
    pub fn new(max: Duration) -> Self {
        BuildTimeout {
            max,
            times: VecDeque::new(),
            recent: VecDeque::new(),
            current: max,
        }
    }

    /// The limit for the next build.
    pub fn timeout(&self) -> Duration {
        self.current
    }

    /// Build times currently counted.
    pub fn observations(&self) -> usize {
        self.times.len()
    }

    /// A build finished in `took`.
    pub fn record_build(&mut self, took: Duration) {
        if self.times.len() == MAX_OBSERVATIONS {
            self.times.pop_front();
        }
        self.times.push_back(took);
        self.push_outcome(false);
        self.recompute();
    }

    /// A build was abandoned at the limit.
    pub fn record_timeout(&mut self) {
        self.push_outcome(true);
        if self.recent.iter().filter(|t| **t).count() > MAX_RECENT_TIMEOUTS {
            tracing::info!(
                "{} of the last {} circuit builds timed out; forgetting the learned build timeout",
                self.recent.iter().filter(|t| **t).count(),
                self.recent.len()
            );
            self.times.clear();
            self.recent.clear();
        }
        self.recompute();
    }

    fn push_outcome(&mut self, timed_out: bool) {
        if self.recent.len() == RECENT_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(timed_out);
    }

    fn recompute(&mut self) {
        self.current = if self.times.len() < MIN_OBSERVATIONS {
            self.max
        } else {
            let mut sorted: Vec<Duration> = self.times.iter().copied().collect();
            sorted.sort_unstable();
            // Nearest rank: the smallest time at or above QUANTILE of the observations.
            let rank = ((QUANTILE * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            let learned = sorted[rank - 1].mul_f64(FACTOR);
            learned.clamp(MIN_TIMEOUT.min(self.max), self.max)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(60);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn maximum_until_enough_observations() {
        let mut t = BuildTimeout::new(MAX);
        for _ in 0..MIN_OBSERVATIONS - 1 {
            t.record_build(secs(1.0));
            assert_eq!(t.timeout(), MAX);
        }
        t.record_build(secs(1.0));
        assert_eq!(t.timeout(), secs(2.0), "1 s * 1.5 is below the floor");
    }

    #[test]
    fn learns_the_quantile_times_the_factor() {
        let mut t = BuildTimeout::new(MAX);
        // 1..=100 s in a shuffled order: the 80th percentile is 80 s, clamped to 60 s.
        for i in (1..=100).rev() {
            t.record_build(secs(f64::from(i)));
        }
        assert_eq!(t.timeout(), MAX);
        let mut t = BuildTimeout::new(MAX);
        for i in 1..=20 {
            t.record_build(secs(f64::from(i)));
        }
        // 20 observations 1..=20 s: the 16th smallest is 16 s, times 1.5.
        assert_eq!(t.timeout(), secs(24.0));
        // A few slow outliers move it little.
        for _ in 0..3 {
            t.record_build(secs(59.0));
        }
        assert_eq!(t.timeout(), secs(28.5));
    }

    #[test]
    fn never_below_the_floor_nor_above_a_small_maximum() {
        let mut t = BuildTimeout::new(MAX);
        for _ in 0..50 {
            t.record_build(Duration::from_millis(5));
        }
        assert_eq!(t.timeout(), MIN_TIMEOUT);
        let mut small = BuildTimeout::new(Duration::from_secs(1));
        for _ in 0..50 {
            small.record_build(Duration::from_millis(5));
        }
        assert_eq!(small.timeout(), Duration::from_secs(1));
    }

    #[test]
    fn many_recent_timeouts_reset_to_the_maximum() {
        let mut t = BuildTimeout::new(MAX);
        for _ in 0..30 {
            t.record_build(secs(2.0));
        }
        assert_eq!(t.timeout(), secs(3.0));
        // A normal share of timeouts (one in five) keeps what was learned.
        for _ in 0..4 {
            t.record_timeout();
        }
        assert_eq!(t.timeout(), secs(3.0));
        for _ in 0..MAX_RECENT_TIMEOUTS - 4 {
            t.record_timeout();
        }
        assert_eq!(t.timeout(), secs(3.0));
        t.record_timeout();
        assert_eq!(t.timeout(), MAX, "the network changed: start over");
        assert_eq!(t.observations(), 0);
    }

    #[test]
    fn keeps_a_bounded_history() {
        let mut t = BuildTimeout::new(MAX);
        for _ in 0..MAX_OBSERVATIONS + 10 {
            t.record_build(secs(30.0));
        }
        assert_eq!(t.observations(), MAX_OBSERVATIONS);
        // Old slow builds age out.
        for _ in 0..MAX_OBSERVATIONS {
            t.record_build(secs(4.0));
        }
        assert_eq!(t.timeout(), secs(6.0));
    }
}
