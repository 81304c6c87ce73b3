//! How the report writes numbers: a fixed number of significant digits, so the same value gives
//! the same bytes and float noise (`0.30000000000000004`) never reaches a reader. It formats;
//! it never rounds the data itself (`results.json` keeps the exact values).

/// Significant digits of every number the report shows.
pub(super) const SIGNIFICANT: usize = 6;

/// `value` with at most `digits` significant digits, trailing zeros dropped; plain notation
/// from 1e-4 up to 1e9, scientific (`1.5e12`) outside; `NaN`, `inf`, `-inf` spelled out.
pub(super) fn significant(value: f64, digits: usize) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if value == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let exponent = value.abs().log10().floor() as i32;
    if !(-4..9).contains(&exponent) {
        let text = format!("{:.*e}", digits - 1, value);
        return match text.split_once('e') {
            Some((mantissa, exp)) => format!("{}e{exp}", trim_zeros(mantissa)),
            None => text,
        };
    }
    let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

/// `value` as the report shows it (see [`SIGNIFICANT`]).
pub(super) fn show(value: f64) -> String {
    significant(value, SIGNIFICANT)
}

/// `value` followed by its unit, if it has one.
pub(super) fn with_unit(value: f64, unit: &str) -> String {
    if unit.is_empty() {
        show(value)
    } else {
        format!("{} {unit}", show(value))
    }
}

/// How far `measured` is from `published`, relative to `published`, as a signed percentage
/// (`+3.2 %`); `None` when the published value is zero or either is not finite.
pub(super) fn relative_difference(measured: f64, published: f64) -> Option<String> {
    if published == 0.0 || !measured.is_finite() || !published.is_finite() {
        return None;
    }
    let percent = (measured - published) / published.abs() * 100.0;
    let sign = if percent > 0.0 { "+" } else { "" };
    Some(format!("{sign}{} %", significant(percent, 3)))
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits_hide_float_noise() {
        assert_eq!(show(0.1 + 0.2), "0.3");
        assert_eq!(show(3.0), "3");
        assert_eq!(show(-0.0), "0");
        assert_eq!(show(1234.56789), "1234.57");
        assert_eq!(show(0.000123456789), "0.000123457");
        assert_eq!(show(-42.5), "-42.5");
        assert_eq!(show(9.9999999), "10");
    }

    #[test]
    fn large_and_tiny_values_go_scientific() {
        assert_eq!(show(1.5e12), "1.5e12");
        assert_eq!(show(2.0e-7), "2e-7");
        assert_eq!(show(123456789.0), "123456789");
    }

    #[test]
    fn non_finite_values_are_spelled_out() {
        assert_eq!(show(f64::NAN), "NaN");
        assert_eq!(show(f64::INFINITY), "inf");
        assert_eq!(show(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn relative_difference_is_signed_and_undefined_at_zero() {
        assert_eq!(relative_difference(3.1, 3.0).as_deref(), Some("+3.33 %"));
        assert_eq!(relative_difference(2.7, 3.0).as_deref(), Some("-10 %"));
        assert_eq!(relative_difference(3.0, 3.0).as_deref(), Some("0 %"));
        assert_eq!(relative_difference(1.0, -2.0).as_deref(), Some("+150 %"));
        assert_eq!(relative_difference(1.0, 0.0), None);
        assert_eq!(relative_difference(f64::NAN, 1.0), None);
    }

    #[test]
    fn units_follow_values() {
        assert_eq!(with_unit(12.5, "s"), "12.5 s");
        assert_eq!(with_unit(4.0, ""), "4");
    }
}
