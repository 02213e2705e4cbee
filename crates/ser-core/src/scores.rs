//! Classification scores with scikit-learn's definitions, as functions of values:
//!
//! - per class: precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2tp / (2tp + fp + fn);
//!   a zero denominator gives 0 (sklearn's `zero_division=0`), never NaN;
//! - macro averages run over the classes present in the true labels (sklearn's
//!   `labels=sorted(set(y_true))`), so a test set without, say, calm is scored over the classes
//!   it has; predictions of an absent class still count as errors;
//! - the unweighted average recall (UAR) is sklearn's `balanced_accuracy_score`: the mean recall
//!   over the classes present.

/// One class's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Clips whose true label is the class.
    pub support: u64,
    /// Clips predicted as the class.
    pub predicted: u64,
}

/// The scores of a confusion matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean recall over the classes present (balanced accuracy).
    pub uar: f64,
    pub macro_f1: f64,
    /// F1 weighted by support.
    pub weighted_f1: f64,
    pub macro_precision: f64,
    /// Equal to `uar`.
    pub macro_recall: f64,
    /// In class order.
    pub per_class: Vec<ClassScores>,
    /// The classes with support, over which the macro averages run.
    pub present: Vec<usize>,
}

/// Counts of (true class, predicted class), in class order.
pub fn confusion(n_classes: usize, truth: &[usize], predicted: &[usize]) -> Vec<Vec<u64>> {
    let mut counts = vec![vec![0u64; n_classes]; n_classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        counts[t][p] += 1;
    }
    counts
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 { 0.0 } else { num as f64 / den as f64 }
}

/// The scores of a confusion matrix (`counts[true][predicted]`).
pub fn scores(counts: &[Vec<u64>]) -> Scores {
    let k = counts.len();
    let n: u64 = counts.iter().flatten().sum();
    let correct: u64 = (0..k).map(|i| counts[i][i]).sum();
    let per_class: Vec<ClassScores> = (0..k)
        .map(|c| {
            let tp = counts[c][c];
            let support: u64 = counts[c].iter().sum();
            let predicted: u64 = counts.iter().map(|row| row[c]).sum();
            let (fp, fn_) = (predicted - tp, support - tp);
            ClassScores {
                precision: ratio(tp, predicted),
                recall: ratio(tp, support),
                f1: ratio(2 * tp, 2 * tp + fp + fn_),
                support,
                predicted,
            }
        })
        .collect();
    let present: Vec<usize> = (0..k).filter(|&c| per_class[c].support > 0).collect();
    let mean = |f: &dyn Fn(&ClassScores) -> f64| {
        if present.is_empty() {
            0.0
        } else {
            present.iter().map(|&c| f(&per_class[c])).sum::<f64>() / present.len() as f64
        }
    };
    let macro_recall = mean(&|c| c.recall);
    let weighted_f1 =
        if n == 0 { 0.0 } else { per_class.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / n as f64 };
    Scores {
        accuracy: ratio(correct, n),
        uar: macro_recall,
        macro_f1: mean(&|c| c.f1),
        weighted_f1,
        macro_precision: mean(&|c| c.precision),
        macro_recall,
        per_class,
        present,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sklearn: y_true [0,0,1,1,2], y_pred [0,1,1,1,0]: accuracy 0.6, balanced accuracy
    /// (0.5 + 1 + 0) / 3, f1_score(average='macro') (0.5 + 0.8 + 0) / 3.
    #[test]
    fn scores_follow_sklearn() {
        let counts = confusion(4, &[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0]);
        let s = scores(&counts);
        assert_eq!(s.accuracy, 0.6);
        assert!((s.uar - 0.5).abs() < 1e-12);
        assert!((s.macro_f1 - 1.3 / 3.0).abs() < 1e-12);
        assert_eq!(s.present, [0, 1, 2], "class 3 has no support: left out of the means");
        assert_eq!(scores(&confusion(2, &[], &[])).accuracy, 0.0);
    }
}
