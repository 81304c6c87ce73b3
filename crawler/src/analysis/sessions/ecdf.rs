//! The empirical CDF of a sample and its Kolmogorov–Smirnov distance to a model CDF.

/// The empirical CDF of `sample`: each distinct value x, ascending, with the share of the sample
/// that is ≤ x. NaNs are ignored; an empty sample gives an empty CDF.
pub fn empirical_cdf(sample: &[f64]) -> Vec<(f64, f64)> {
    let sorted = sorted_without_nan(sample);
    let n = sorted.len() as f64;
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (i, &x) in sorted.iter().enumerate() {
        let share = (i + 1) as f64 / n;
        match out.last_mut() {
            Some(last) if last.0 == x => last.1 = share,
            _ => out.push((x, share)),
        }
    }
    out
}

/// The Kolmogorov–Smirnov distance sup |Fₙ(x) − F(x)| between the empirical CDF of `sample` and
/// `cdf`, over x ≤ `limit` (pass `f64::INFINITY` for the whole line). A limit compares the part
/// of a sample that is unbiased, such as the create-based sample up to half the window, whose
/// censored lengths all lie beyond it.
///
/// `None` for an empty sample (after ignoring NaNs) or a NaN limit. `cdf` should return values
/// in [0, 1]; anything else is clamped.
pub fn ks_distance(sample: &[f64], cdf: impl Fn(f64) -> f64, limit: f64) -> Option<f64> {
    let sorted = sorted_without_nan(sample);
    if sorted.is_empty() || limit.is_nan() {
        return None;
    }
    let n = sorted.len() as f64;
    let model = |x: f64| {
        let f = cdf(x);
        if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) }
    };
    let mut d: f64 = 0.0;
    let mut below = 0usize;
    for (i, &x) in sorted.iter().enumerate() {
        if x > limit {
            break;
        }
        let f = model(x);
        d = d.max((i as f64 / n - f).abs()).max(((i + 1) as f64 / n - f).abs());
        below = i + 1;
    }
    if limit.is_finite() {
        // Fₙ is flat from the last value up to the limit while F keeps rising.
        d = d.max((below as f64 / n - model(limit)).abs());
    }
    Some(d)
}

fn sorted_without_nan(sample: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = sample.iter().copied().filter(|x| !x.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}
