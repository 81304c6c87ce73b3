//! Precision and recall of a flagged set against ground truth (the planted Sybils or poisoners of
//! an experiment).

use std::collections::BTreeSet;

/// The confusion counts of a detector on one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Score {
    /// Flagged and in the truth.
    pub true_positives: usize,
    /// Flagged but not in the truth.
    pub false_positives: usize,
    /// In the truth but not flagged.
    pub false_negatives: usize,
}

impl Score {
    /// Compares `flagged` with `truth`.
    pub fn of<T: Ord>(flagged: &BTreeSet<T>, truth: &BTreeSet<T>) -> Score {
        let true_positives = flagged.intersection(truth).count();
        Score {
            true_positives,
            false_positives: flagged.len() - true_positives,
            false_negatives: truth.len() - true_positives,
        }
    }

    /// The share of flags that are right; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }

    /// The share of the truth that was flagged; `None` when the truth is empty.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let flagged: BTreeSet<u32> = [1, 2, 3, 4].into();
        let truth: BTreeSet<u32> = [3, 4, 5].into();
        let s = Score::of(&flagged, &truth);
        assert_eq!((s.true_positives, s.false_positives, s.false_negatives), (2, 2, 1));
        assert_eq!(s.precision(), Some(0.5));
        assert_eq!(s.recall(), Some(2.0 / 3.0));
    }

    #[test]
    fn undefined_ratios_are_none() {
        let empty = BTreeSet::<u32>::new();
        let s = Score::of(&empty, &empty);
        assert_eq!((s.precision(), s.recall()), (None, None));
        let s = Score::of(&[7].into(), &empty);
        assert_eq!((s.precision(), s.recall()), (Some(0.0), None));
    }
}
