//! Campaign checks: an expected value with a tolerance, or a bound, for one named measurement
//! of an outcome. A missing measurement fails its check (it never passes by default).

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// One check, as written in the campaign file:
/// `{ measurement: mean_path_n1024, expected: 5.0, tolerance: 10% }`,
/// `{ measurement: sybil_recall, at_least: 0.95 }` or `{ measurement: error, at_most: 0.1 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The measurement's name in the outcome.
    pub measurement: String,
    /// The value expected (with `tolerance`).
    pub expected: Option<f64>,
    /// How far from `expected` the value may be: `10%` (relative) or a number (absolute).
    pub tolerance: Option<Tolerance>,
    /// The least value that passes.
    pub at_least: Option<f64>,
    /// The largest value that passes.
    pub at_most: Option<f64>,
}

/// How far from the expected value a measurement may be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Tolerance {
    /// |measured − expected| ≤ this.
    Absolute(f64),
    /// |measured − expected| ≤ this × |expected| (written `10%` for 0.1).
    Relative(f64),
}

impl<'de> Deserialize<'de> for Tolerance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Text(String),
        }
        let bad = |t: &str| serde::de::Error::custom(format!("{t:?} is not a tolerance such as 10% or 0.5"));
        match Written::deserialize(d)? {
            Written::Number(n) if n >= 0.0 && n.is_finite() => Ok(Tolerance::Absolute(n)),
            Written::Number(n) => Err(bad(&n.to_string())),
            Written::Text(t) => match t.trim().strip_suffix('%') {
                Some(p) => match p.trim().parse::<f64>() {
                    Ok(p) if p >= 0.0 && p.is_finite() => Ok(Tolerance::Relative(p / 100.0)),
                    _ => Err(bad(&t)),
                },
                None => match t.trim().parse::<f64>() {
                    Ok(n) if n >= 0.0 && n.is_finite() => Ok(Tolerance::Absolute(n)),
                    _ => Err(bad(&t)),
                },
            },
        }
    }
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tolerance::Absolute(a) => write!(f, "±{a}"),
            Tolerance::Relative(r) => write!(f, "±{}%", r * 100.0),
        }
    }
}

impl Check {
    /// Why the check is malformed, if it is: it needs `expected` with `tolerance`, or at least
    /// one bound, and not both forms.
    pub fn problem(&self) -> Option<&'static str> {
        let bounded = self.at_least.is_some() || self.at_most.is_some();
        match (self.expected.is_some(), self.tolerance.is_some(), bounded) {
            (true, true, false) | (false, false, true) => None,
            (true, false, _) => Some("`expected` needs a `tolerance`"),
            (false, true, _) => Some("`tolerance` needs an `expected` value"),
            (true, true, true) => Some("give `expected` with `tolerance`, or bounds, not both"),
            (false, false, false) => Some("give `expected` with `tolerance`, or `at_least` / `at_most`"),
        }
    }

    /// The rule as the report's checks table shows it: a value and what may differ from it
    /// (`5`, `±10%`; `0.95`, `at least`; `0.9`, `… 1`).
    pub fn shown(&self) -> (f64, String) {
        match (self.expected, self.tolerance, self.at_least, self.at_most) {
            (Some(e), Some(t), _, _) => (e, t.to_string()),
            (_, _, Some(lo), Some(hi)) => (lo, format!("… {hi}")),
            (_, _, Some(lo), None) => (lo, "at least".to_owned()),
            (_, _, None, Some(hi)) => (hi, "at most".to_owned()),
            _ => (f64::NAN, "malformed".to_owned()),
        }
    }

    /// Whether `value` passes.
    pub fn passes(&self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        if let (Some(e), Some(t)) = (self.expected, self.tolerance) {
            let allowed = match t {
                Tolerance::Absolute(a) => a,
                Tolerance::Relative(r) => r * e.abs(),
            };
            return (value - e).abs() <= allowed;
        }
        self.at_least.is_none_or(|lo| value >= lo) && self.at_most.is_none_or(|hi| value <= hi)
    }

    /// The measured value in `outcome` and whether it passes (`None`: no such measurement).
    pub fn evaluate(&self, outcome: &Outcome) -> (Option<f64>, bool) {
        match outcome.measurement(&self.measurement) {
            Some(m) => (Some(m.value), self.passes(m.value)),
            None => (None, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Measurement;

    fn check(yaml: &str) -> Check {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tolerances_and_bounds() {
        let c = check("{ measurement: m, expected: 5.0, tolerance: 10% }");
        assert_eq!(c.tolerance, Some(Tolerance::Relative(0.1)));
        assert!(c.passes(5.4) && c.passes(4.5) && !c.passes(5.6) && !c.passes(f64::NAN));
        let c = check("{ measurement: m, expected: 1.0, tolerance: 0.25 }");
        assert!(c.passes(1.25) && !c.passes(1.3));
        let c = check("{ measurement: m, at_least: 0.95 }");
        assert!(c.passes(0.95) && !c.passes(0.9));
        assert_eq!(c.shown(), (0.95, "at least".to_owned()));
        let c = check("{ measurement: m, at_least: 1, at_most: 2 }");
        assert!(c.passes(1.5) && !c.passes(2.5));
        assert!(c.problem().is_none());
    }

    #[test]
    fn malformed_checks_are_named() {
        assert!(check("{ measurement: m, expected: 1 }").problem().is_some());
        assert!(check("{ measurement: m }").problem().is_some());
        assert!(
            check("{ measurement: m, expected: 1, tolerance: 1, at_most: 3 }")
                .problem()
                .is_some()
        );
        for bad in [
            "{ measurement: m, expected: 1, tolerance: -3 }",
            "{ measurement: m, expected: 1, tolerance: lots }",
        ] {
            let e = serde_saphyr::from_str::<Check>(bad).unwrap_err().to_string();
            assert!(e.contains("tolerance"), "{e}");
        }
        assert!(serde_saphyr::from_str::<Check>("{ measurement: m, at_least: 1, typo: 2 }").is_err());
    }

    #[test]
    fn a_missing_measurement_fails() {
        let outcome = Outcome {
            experiment: "x".into(),
            title: String::new(),
            summary: String::new(),
            measurements: vec![Measurement {
                name: "m".into(),
                label: String::new(),
                value: 3.0,
                unit: String::new(),
                published: None,
            }],
            figures: vec![],
            tables: vec![],
        };
        assert_eq!(
            check("{ measurement: m, at_most: 4 }").evaluate(&outcome),
            (Some(3.0), true)
        );
        assert_eq!(
            check("{ measurement: other, at_most: 4 }").evaluate(&outcome),
            (None, false)
        );
    }
}
