//! The training loss, written once: softmax cross-entropy of the logits against one or more
//! weighted target sets (two for mixup), optionally class-weighted. Both training engines call
//! [`Loss::value_and_gradient`] on the logits; the candle engine feeds the gradient back into
//! its graph.

/// What a batch's loss is measured against: the sum over `terms` of `weight x` the mean over the
/// batch of the (class-weighted) cross-entropy against the term's targets, each target smoothed
/// to `1 - smoothing + smoothing / n_classes` on its class and `smoothing / n_classes` on every
/// other class (label smoothing; 0 is the plain negative log-likelihood).
#[derive(Debug, Clone, PartialEq)]
pub struct Loss<'a> {
    pub terms: Vec<(f32, Vec<u32>)>,
    pub class_weights: Option<&'a [f32]>,
    pub smoothing: f32,
}

impl Loss<'_> {
    /// The loss of `logits` (B, n_classes) and its gradient for the logits.
    pub fn value_and_gradient(&self, logits: &[f32], n_classes: usize) -> (f32, Vec<f32>) {
        let batch = logits.len() / n_classes;
        let mut log_z = vec![0f32; batch];
        for (row, lz) in logits.chunks_exact(n_classes).zip(&mut log_z) {
            *lz = log_sum_exp(row);
        }
        let probs: Vec<f32> = logits.iter().enumerate().map(|(k, v)| (v - log_z[k / n_classes]).exp()).collect();
        let (off, on) = (self.smoothing / n_classes as f32, 1.0 - self.smoothing + self.smoothing / n_classes as f32);
        let mut total = 0f32;
        let mut d_logits = vec![0f32; logits.len()];
        for (coef, targets) in &self.terms {
            let mut term = 0f32;
            for (i, &y) in targets.iter().enumerate() {
                let w = self.class_weights.map_or(1.0, |cw| cw[y as usize]);
                let row = &logits[i * n_classes..(i + 1) * n_classes];
                let target = |c: usize| if c == y as usize { on } else { off };
                // -sum_c q_c log p_c = log Z - sum_c q_c logit_c (the q_c sum to 1).
                let expected: f32 = row.iter().enumerate().map(|(c, l)| target(c) * l).sum();
                term += w * (log_z[i] - expected);
                let scale = coef * w / batch as f32;
                for c in 0..n_classes {
                    d_logits[i * n_classes + c] += scale * (probs[i * n_classes + c] - target(c));
                }
            }
            total += coef * term / batch as f32;
        }
        (total, d_logits)
    }
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// Softmax of each row of `logits` (B, n_classes).
pub fn softmax(logits: &[f32], n_classes: usize) -> Vec<Vec<f32>> {
    logits
        .chunks_exact(n_classes)
        .map(|row| {
            let lz = log_sum_exp(row);
            row.iter().map(|v| (v - lz).exp()).collect()
        })
        .collect()
}

/// "balanced" class weights: n / (n_classes_present * count(c)); 0 for absent classes.
pub fn balanced_class_weights(targets: &[u32], n_classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; n_classes];
    for &t in targets {
        counts[t as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts.iter().map(|&c| if c == 0 { 0.0 } else { targets.len() as f32 / (present * c) as f32 }).collect()
}

/// Mean cross-entropy of probabilities against their targets (the validation loss).
pub fn log_loss(probs: &[Vec<f32>], targets: &[u32]) -> f64 {
    let total: f64 = probs.iter().zip(targets).map(|(p, &t)| -(p[t as usize].max(1e-12) as f64).ln()).sum();
    total / targets.len().max(1) as f64
}
