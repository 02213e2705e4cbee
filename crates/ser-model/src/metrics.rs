//! The few scores training watches: `ser_core::scores`'s, the definitions ser-eval reports with
//! (scikit-learn's, over the classes present in the targets). The full evaluation
//! (per-class report, confidence intervals, plots) is ser-eval's, which reads predictions files.

/// Accuracy, macro F1 and unweighted average recall (UAR).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean F1 over the classes present in the targets; predictions of other classes count as
    /// errors (they lower precision of no class scored, and recall of the true class).
    pub macro_f1: f64,
    /// Mean recall over the classes present in the targets (balanced accuracy).
    pub uar: f64,
}

pub fn scores(targets: &[u32], predicted: &[u32], n_classes: usize) -> Scores {
    let index = |v: &[u32]| v.iter().map(|&c| c as usize).collect::<Vec<_>>();
    let s = ser_core::scores::scores(&ser_core::scores::confusion(n_classes, &index(targets), &index(predicted)));
    Scores { accuracy: s.accuracy, macro_f1: s.macro_f1, uar: s.uar }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_runs_over_the_classes_in_the_targets() {
        // sklearn: f1_score([0, 0, 1, 1], [0, 2, 1, 1], labels=[0, 1], average="macro") = 0.8333
        // (class 0: p 1, r 0.5, f1 2/3; class 1: p 1, r 1, f1 1); class 2 is never a target.
        let s = scores(&[0, 0, 1, 1], &[0, 2, 1, 1], 3);
        assert!((s.macro_f1 - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12, "{s:?}");
        assert!((s.uar - 0.75).abs() < 1e-12);
        assert!((s.accuracy - 0.75).abs() < 1e-12);
    }
}
