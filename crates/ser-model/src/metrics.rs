//! The few scores training watches. The full evaluation (per-class report, confidence
//! intervals, plots) is ser-eval's, which reads predictions files.

/// Accuracy, macro F1 and unweighted average recall (UAR).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean F1 over the classes present in the targets or the predictions (as scikit-learn).
    pub macro_f1: f64,
    /// Mean recall over the classes present in the targets.
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
    let (mut f1_sum, mut f1_n, mut recall_sum, mut recall_n) = (0.0, 0usize, 0.0, 0usize);
    for c in 0..n_classes {
        if support[c] == 0 && predicted_count[c] == 0 {
            continue;
        }
        let precision = if predicted_count[c] > 0 { tp[c] as f64 / predicted_count[c] as f64 } else { 0.0 };
        let recall = if support[c] > 0 { tp[c] as f64 / support[c] as f64 } else { 0.0 };
        f1_sum += if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        f1_n += 1;
        if support[c] > 0 {
            recall_sum += recall;
            recall_n += 1;
        }
    }
    Scores { accuracy, macro_f1: f1_sum / f1_n.max(1) as f64, uar: recall_sum / recall_n.max(1) as f64 }
}
