//! The few scores training watches, with scikit-learn's definitions over the classes present in
//! the targets (`labels=sorted(set(y_true))`), as ser-eval reports them. The full evaluation
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
    let mut tp = vec![0usize; n_classes];
    let mut support = vec![0usize; n_classes];
    let mut predicted_count = vec![0usize; n_classes];
    for (&t, &p) in targets.iter().zip(predicted) {
        support[t as usize] += 1;
        predicted_count[p as usize] += 1;
        if t == p {
            tp[t as usize] += 1;
        }
    }
    let n = targets.len().max(1) as f64;
    let accuracy = tp.iter().sum::<usize>() as f64 / n;
    let (mut f1_sum, mut recall_sum, mut present) = (0.0, 0.0, 0usize);
    for c in (0..n_classes).filter(|&c| support[c] > 0) {
        // F1 = 2 tp / (2 tp + fp + fn); recall = tp / support.
        let denominator = predicted_count[c] + support[c];
        f1_sum += 2.0 * tp[c] as f64 / denominator as f64;
        recall_sum += tp[c] as f64 / support[c] as f64;
        present += 1;
    }
    let present = present.max(1) as f64;
    Scores { accuracy, macro_f1: f1_sum / present, uar: recall_sum / present }
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
