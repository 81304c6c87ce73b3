//! The two-parameter Weibull distribution and its maximum-likelihood fit, with right-censoring.
//!
//! With r uncensored lengths among n (all scaled by the largest, uᵢ = tᵢ / t_max, so that no
//! power overflows), the scale profiles out as λᵏ = Σ tᵢᵏ / r and the shape k solves
//!
//! g(k) = Σ uᵢᵏ ln uᵢ / Σ uᵢᵏ − 1/k − (1/r) Σ_{uncensored} ln uᵢ = 0,
//!
//! where g is strictly increasing (its derivative is a weighted variance of ln uᵢ plus 1/k²), so
//! a safeguarded Newton iteration inside a bisection bracket finds the root in a bounded number
//! of steps.

use thiserror::Error;

use super::Lifetime;
use crate::analysis::special::ln_gamma;

/// A Weibull distribution: F(x) = 1 − exp(−(x/scale)^shape) for x ≥ 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weibull {
    shape: f64,
    scale: f64,
}

/// Why a Weibull could not be built or fitted.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum FitError {
    /// A shape or scale that is not finite and positive.
    #[error("Weibull parameters must be finite and positive, got shape {shape}, scale {scale}")]
    Parameters {
        /// The shape given.
        shape: f64,
        /// The scale given.
        scale: f64,
    },
    /// A length that is NaN, infinite or negative, or an uncensored length of zero.
    #[error("invalid session length {0}: lengths must be finite, and positive unless censored")]
    Length(f64),
    /// No uncensored length: the likelihood has no maximum.
    #[error("no uncensored lengths to fit")]
    NoEvents,
    /// The lengths do not pin down a shape (for instance, all equal): the likelihood keeps
    /// growing with the shape.
    #[error("the lengths do not determine a Weibull shape (all equal?)")]
    Degenerate,
}

impl Weibull {
    /// The Weibull with this shape k and scale λ, both finite and positive.
    pub fn new(shape: f64, scale: f64) -> Result<Weibull, FitError> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if ok(shape) && ok(scale) {
            Ok(Weibull { shape, scale })
        } else {
            Err(FitError::Parameters { shape, scale })
        }
    }

    /// The shape k (< 1: a decreasing hazard, many short sessions and a heavy tail).
    pub fn shape(&self) -> f64 {
        self.shape
    }

    /// The scale λ, in the unit of the lengths.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// P(X ≤ x); 0 for x ≤ 0 (and for a NaN x).
    pub fn cdf(&self, x: f64) -> f64 {
        if x > 0.0 {
            -(-(x / self.scale).powf(self.shape)).exp_m1()
        } else {
            0.0
        }
    }

    /// The p-quantile, λ (−ln(1 − p))^(1/k), for p in [0, 1) (inverse-CDF sampling takes p
    /// uniform); p outside [0, 1) or NaN is clamped into it.
    pub fn quantile(&self, p: f64) -> f64 {
        let p = if p.is_nan() {
            0.0
        } else {
            p.clamp(0.0, 1.0 - f64::EPSILON)
        };
        self.scale * (-(-p).ln_1p()).powf(1.0 / self.shape)
    }

    /// The mean, λ Γ(1 + 1/k); infinite when that overflows (shapes below about 0.006).
    pub fn mean(&self) -> f64 {
        self.scale * ln_gamma(1.0 + 1.0 / self.shape).exp()
    }

    /// The median, λ (ln 2)^(1/k).
    pub fn median(&self) -> f64 {
        self.scale * std::f64::consts::LN_2.powf(1.0 / self.shape)
    }
}

/// Fits a Weibull to uncensored `lengths` by maximum likelihood.
pub fn weibull_fit(lengths: &[f64]) -> Result<Weibull, FitError> {
    let sample: Vec<Lifetime> = lengths
        .iter()
        .map(|&length| Lifetime {
            length,
            censored: false,
        })
        .collect();
    weibull_fit_censored(&sample)
}

/// Fits a Weibull to `lifetimes` by maximum likelihood, a censored lifetime counting as "at
/// least this long" (its survival probability enters the likelihood, not its density). Censored
/// lengths of zero carry no information and are skipped.
pub fn weibull_fit_censored(lifetimes: &[Lifetime]) -> Result<Weibull, FitError> {
    const K_MIN: f64 = 1e-3;
    const K_MAX: f64 = 1e3;
    const MAX_ITER: usize = 200;

    for l in lifetimes {
        if !l.length.is_finite() || l.length < 0.0 || (l.length == 0.0 && !l.censored) {
            return Err(FitError::Length(l.length));
        }
    }
    let used: Vec<Lifetime> = lifetimes.iter().copied().filter(|l| l.length > 0.0).collect();
    let events = used.iter().filter(|l| !l.censored).count();
    if events == 0 {
        return Err(FitError::NoEvents);
    }
    let t_max = used.iter().map(|l| l.length).fold(0.0, f64::max);
    let logs: Vec<(f64, bool)> = used.iter().map(|l| ((l.length / t_max).ln(), l.censored)).collect();
    let r = events as f64;
    let mean_event_log = logs.iter().filter(|(_, c)| !c).map(|(v, _)| v).sum::<f64>() / r;

    // g(k) and g'(k). The largest length has ln u = 0, so Σ uᵏ ≥ 1 and never underflows to 0.
    let g = |k: f64| {
        let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
        for &(v, _) in &logs {
            let w = (k * v).exp();
            s0 += w;
            s1 += w * v;
            s2 += w * v * v;
        }
        let (m1, m2) = (s1 / s0, s2 / s0);
        (m1 - 1.0 / k - mean_event_log, m2 - m1 * m1 + 1.0 / (k * k))
    };

    let (mut lo, mut hi) = (K_MIN, K_MAX);
    if g(lo).0 >= 0.0 || g(hi).0 <= 0.0 {
        return Err(FitError::Degenerate);
    }
    let mut k = 1.0;
    for _ in 0..MAX_ITER {
        let (value, slope) = g(k);
        if value == 0.0 {
            break;
        }
        if value < 0.0 {
            lo = k;
        } else {
            hi = k;
        }
        let newton = k - value / slope;
        k = if newton > lo && newton < hi && newton.is_finite() {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (hi - lo) <= 1e-12 * k || (value / slope).abs() <= 1e-12 * k {
            break;
        }
    }
    let sum_pow: f64 = logs.iter().map(|&(v, _)| (k * v).exp()).sum();
    Weibull::new(k, t_max * (sum_pow / r).powf(1.0 / k)).map_err(|_| FitError::Degenerate)
}
