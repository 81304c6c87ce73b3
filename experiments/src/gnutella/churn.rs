//! The churn schedule: for each churning node, alternating sessions and downtimes drawn from
//! two Weibulls by inverse-CDF sampling with the seeded PRNG. Pure: the churn tasks only follow
//! it (the Gnutella overlay's, and the measurement testbed's swarm), and the truth logs record
//! what actually happened.

use onionlab_crawler::analysis::sessions::Weibull;
use onionlab_crawler::dht::space::SplitMix64;

use super::config::WeibullParams;

/// One planned session, seconds from the overlay's start. A node starts its first session at
/// 0; the session in progress at the horizon is the last: after it the node stays away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedSession {
    /// When the node joins.
    pub start: f64,
    /// When it leaves (its drawn length after `start`).
    pub end: f64,
}

impl PlannedSession {
    /// The drawn session length, seconds.
    pub fn length(&self) -> f64 {
        self.end - self.start
    }
}

fn weibull(p: &WeibullParams) -> Option<Weibull> {
    Weibull::new(p.shape, p.scale).ok()
}

/// A uniform draw in [0, 1) from 53 random bits.
pub(crate) fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The sessions of one churning node up to `horizon_secs`, lengths drawn from `session` and the
/// gaps between them from `downtime` (empty if a Weibull's parameters are invalid, which the
/// configurations' `validate` refuses first).
pub fn schedule(
    session: &WeibullParams,
    downtime: &WeibullParams,
    horizon_secs: f64,
    rng: &mut SplitMix64,
) -> Vec<PlannedSession> {
    let (Some(session), Some(downtime)) = (weibull(session), weibull(downtime)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < horizon_secs {
        let end = t + session.quantile(unit(rng));
        out.push(PlannedSession { start: t, end });
        t = end + downtime.quantile(unit(rng));
    }
    out
}

/// Whether a node churns, given the fraction of its kind that does.
pub fn churns(fraction: f64, rng: &mut SplitMix64) -> bool {
    unit(rng) < fraction
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnutella::config::ChurnConfig;
    use onionlab_crawler::analysis::sessions::weibull_fit;

    #[test]
    fn sessions_alternate_and_follow_the_configured_weibull() {
        let config = ChurnConfig {
            horizon_secs: 100_000.0,
            ..ChurnConfig::default()
        };
        let mut rng = SplitMix64::new(5);
        let sessions = schedule(&config.session, &config.downtime, config.horizon_secs, &mut rng);
        assert_eq!(sessions[0].start, 0.0);
        assert!(sessions.windows(2).all(|w| w[0].end < w[1].start));
        assert!(sessions.last().unwrap().start < config.horizon_secs);
        let lengths: Vec<f64> = sessions.iter().map(PlannedSession::length).collect();
        assert!(lengths.len() > 500, "{}", lengths.len());
        let fit = weibull_fit(&lengths).unwrap();
        assert!((fit.shape() - 0.6).abs() < 0.1, "{fit:?}");
        assert!((fit.scale() / 60.0 - 1.0).abs() < 0.2, "{fit:?}");
        let again = schedule(
            &config.session,
            &config.downtime,
            config.horizon_secs,
            &mut SplitMix64::new(5),
        );
        assert_eq!(again, sessions);
    }
}
