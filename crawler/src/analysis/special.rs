//! The special functions the analyses need: ln Γ (Lanczos), the regularized incomplete gamma
//! function P(a, x) (series and continued fraction, as in Numerical Recipes §6.2), and the
//! Poisson upper tail built on it, all in log space so that far tails do not underflow to 0.
//! Private: callers see p-values and means, not these.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms; relative error around 1e-15).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx), and sin(πx) > 0 on (0, 0.5).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ln P(a, x), the log of the regularized lower incomplete gamma function, for a > 0, x ≥ 0.
fn ln_gamma_p(a: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-15;
    const TINY: f64 = 1e-300;
    const MAX_ITER: usize = 100_000;
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let log_prefix = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series: P = e^{-x} x^a / Γ(a+1) · Σ x^n / ((a+1)…(a+n)).
        let (mut ap, mut term) = (a, 1.0 / a);
        let mut sum = term;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        (sum.ln() + log_prefix).min(0.0)
    } else {
        // Continued fraction for Q = 1 - P (modified Lentz).
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPS {
                break;
            }
        }
        (-(h.ln() + log_prefix).exp().min(1.0)).ln_1p()
    }
}

/// ln P(X ≥ k) for X ~ Poisson(λ), in [−∞, 0]. λ = 0 gives −∞ for k ≥ 1; an infinite λ gives
/// 0; a NaN or negative λ is treated as "no evidence" and gives 0.
pub(crate) fn ln_poisson_tail(lambda: f64, k: usize) -> f64 {
    if k == 0 || lambda.is_nan() || lambda < 0.0 || lambda == f64::INFINITY {
        return 0.0;
    }
    // P(X ≥ k) = P(k, λ), the regularized lower incomplete gamma function.
    ln_gamma_p(k as f64, lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poisson_tail(lambda: f64, k: usize) -> f64 {
        ln_poisson_tail(lambda, k).exp()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn ln_gamma_matches_factorials_and_half() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            // Γ(n + 1) = n!
            fact *= f64::from(n);
            assert!(close(ln_gamma(f64::from(n) + 1.0), fact.ln(), 1e-13), "n = {n}");
        }
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13));
        // Γ(0.1) = 9.513507698668732
        assert!(close(ln_gamma(0.1), 9.513_507_698_668_732f64.ln(), 1e-13));
    }

    /// Direct summation of the Poisson pmf, for small λ and k.
    fn tail_by_sum(lambda: f64, k: usize) -> f64 {
        let mut pmf = (-lambda).exp();
        let mut below = 0.0;
        for j in 0..k {
            below += pmf;
            pmf *= lambda / (j + 1) as f64;
        }
        1.0 - below
    }

    #[test]
    fn poisson_tail_matches_direct_sums() {
        for &lambda in &[0.01, 0.3, 1.0, 2.5, 7.0, 20.0] {
            for k in 0..40 {
                let want = tail_by_sum(lambda, k);
                let got = poisson_tail(lambda, k);
                assert!((got - want).abs() < 1e-12, "λ={lambda} k={k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn poisson_tail_is_accurate_far_in_the_tail() {
        // P(X ≥ 10 | λ = 2) = 4.649807501e-5 (exact sum), beyond 1 - Σ's precision at 1e-12.
        assert!(close(poisson_tail(2.0, 10), 4.649_807_501_7e-5, 1e-9));
        // P(X ≥ 12 | λ = 1e-6) ≈ λ^12 / 12! (the first term dominates).
        let first = 1e-72 / 479_001_600.0;
        assert!(close(poisson_tail(1e-6, 12), first, 1e-5));
        // Far below f64's smallest number: ln P(X ≥ 40 | λ = 1e-12) ≈ 40 ln 1e-12 − ln 40!.
        let ln_first = 40.0 * 1e-12f64.ln() - ln_gamma(41.0);
        assert!(close(ln_poisson_tail(1e-12, 40), ln_first, 1e-9));
        // A large λ near its mean: P(X ≥ λ) ≈ 1/2 + a small skew correction.
        let mid = poisson_tail(1e6, 1_000_000);
        assert!((mid - 0.5).abs() < 0.01, "{mid}");
    }

    #[test]
    fn poisson_tail_edges() {
        assert_eq!(poisson_tail(0.0, 0), 1.0);
        assert_eq!(ln_poisson_tail(0.0, 3), f64::NEG_INFINITY);
        assert_eq!(poisson_tail(f64::NAN, 3), 1.0);
        assert_eq!(poisson_tail(-1.0, 3), 1.0);
        assert_eq!(poisson_tail(f64::INFINITY, 3), 1.0);
    }
}
