//! The training loss, written once: softmax cross-entropy of the logits against one or more
//! weighted target sets (two for mixup), optionally class-weighted, plus the cross-entropy of
//! the gender head and of the adversary's domain head when the network has them. Both training engines call
//! [`Loss::value_and_gradient`] on every head's logits; the candle engine feeds the gradient back
//! into its graph.

use std::ops::Range;

use crate::network::Heads;

/// What a batch's loss is measured against: the sum over `terms` of `weight x` the mean over the
/// batch of the (class-weighted) cross-entropy against the term's targets, each target smoothed
/// to `1 - smoothing + smoothing / n_classes` on its class and `smoothing / n_classes` on every
/// other class (label smoothing; 0 is the plain negative log-likelihood).
#[derive(Debug, Clone, PartialEq)]
pub struct Loss<'a> {
    pub terms: Vec<(f32, Vec<u32>)>,
    pub class_weights: Option<&'a [f32]>,
    /// One weight for each clip of each term (its corpus's share, `corpus_weights`); `None`: 1.
    pub clip_weights: Option<Vec<Vec<f32>>>,
    /// The classes each clip of each term is scored over (its corpus's, `corpus_classes`): its
    /// softmax and smoothing run over those alone, so a corpus is never taught against a class it
    /// lacks. `None`: every class.
    pub allowed: Option<Vec<Vec<&'a [bool]>>>,
    pub smoothing: f32,
    /// The gender head's weight and its targets, one list for each of `terms` (the same clips,
    /// or mixup's partners), with the same weights: that weight times the gender cross-entropy
    /// (smoothed alike) summed over the clips with a gender and divided by the batch size.
    pub gender: Option<(f32, Vec<Vec<Option<u32>>>)>,
    /// The adversary's weight and each clip's domain, as `gender` (its gradient is reversed in
    /// the network, not here: the head itself learns to tell the domains apart).
    pub domain: Option<(f32, Vec<Vec<Option<u32>>>)>,
}

impl Loss<'_> {
    /// The loss of `logits` (B, [`Heads::outputs`]) and its gradient for them.
    pub fn value_and_gradient(&self, logits: &[f32], heads: Heads) -> (f32, Vec<f32>) {
        let width = heads.outputs();
        let batch = logits.len() / width;
        let mut d_logits = vec![0f32; logits.len()];
        let mut total = 0f32;
        // Adds `scale` times clip i's cross-entropy over the outputs `head` (those `allowed` of
        // them) against `y`, and its gradient.
        let mut add = |i: usize, head: Range<usize>, y: u32, scale: f32, allowed: Option<&[bool]>| {
            let at = i * width + head.start..i * width + head.end;
            total += scale * self.cross_entropy(&logits[at.clone()], y, scale, allowed, &mut d_logits[at]);
        };
        for (t, (coef, targets)) in self.terms.iter().enumerate() {
            for (i, &y) in targets.iter().enumerate() {
                let w = self.class_weights.map_or(1.0, |cw| cw[y as usize]);
                let w = self.clip_weights.as_ref().map_or(w, |cw| w * cw[t][i]);
                add(i, heads.emotion(), y, coef * w / batch as f32, self.allowed.as_ref().map(|a| a[t][i]));
            }
        }
        for (targets, head) in [(&self.gender, heads.gender()), (&self.domain, heads.domain())] {
            let (Some((weight, sets)), Some(head)) = (targets, head) else { continue };
            assert_eq!(sets.len(), self.terms.len(), "one target list per term");
            for ((coef, _), items) in self.terms.iter().zip(sets) {
                for (i, g) in items.iter().enumerate() {
                    if let Some(g) = *g {
                        add(i, head.clone(), g, weight * coef / batch as f32, None);
                    }
                }
            }
        }
        (total, d_logits)
    }

    /// The smoothed cross-entropy of one head's `logits` (those `allowed`, or all) against class
    /// `y`; adds `scale` times its gradient to `d_logits` (none for the classes not allowed).
    fn cross_entropy(&self, logits: &[f32], y: u32, scale: f32, allowed: Option<&[bool]>, d_logits: &mut [f32]) -> f32 {
        let kept = |c: usize| allowed.is_none_or(|a| a[c]);
        debug_assert!(kept(y as usize), "a clip's own class is one its corpus has");
        let n = (0..logits.len()).filter(|&c| kept(c)).count() as f32;
        let (off, on) = (self.smoothing / n, 1.0 - self.smoothing + self.smoothing / n);
        let target = |c: usize| if c == y as usize { on } else { off };
        let log_z = log_sum_exp(logits.iter().enumerate().filter(|&(c, _)| kept(c)).map(|(_, &l)| l));
        for (c, (d, l)) in d_logits.iter_mut().zip(logits).enumerate().filter(|&(c, _)| kept(c)) {
            *d += scale * ((l - log_z).exp() - target(c));
        }
        // -sum_c q_c log p_c = log Z - sum_c q_c logit_c (the q_c sum to 1).
        log_z - logits.iter().enumerate().filter(|&(c, _)| kept(c)).map(|(c, l)| target(c) * l).sum::<f32>()
    }
}

fn log_sum_exp(row: impl Iterator<Item = f32> + Clone) -> f32 {
    let max = row.clone().fold(f32::NEG_INFINITY, f32::max);
    max + row.map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// Softmax of each row of `logits` (B, n_classes).
pub fn softmax(logits: &[f32], n_classes: usize) -> Vec<Vec<f32>> {
    logits
        .chunks_exact(n_classes)
        .map(|row| {
            let lz = log_sum_exp(row.iter().copied());
            row.iter().map(|v| (v - lz).exp()).collect()
        })
        .collect()
}

/// "balanced" weights of `n_groups` groups (classes, or corpora), from each item's group:
/// n / (groups present * count(g)), so every group present weighs the same in all; 0 for a
/// group without items.
pub fn balanced_weights(groups: &[u32], n_groups: usize) -> Vec<f32> {
    let mut counts = vec![0usize; n_groups];
    for &g in groups {
        counts[g as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts.iter().map(|&c| if c == 0 { 0.0 } else { groups.len() as f32 / (present * c) as f32 }).collect()
}

/// Mean cross-entropy of probabilities against their targets (the validation loss).
pub fn log_loss(probs: &[Vec<f32>], targets: &[u32]) -> f64 {
    let total: f64 = probs.iter().zip(targets).map(|(p, &t)| -(p[t as usize].max(1e-12) as f64).ln()).sum();
    total / targets.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient is the loss's: central differences (step 0.01) at every logit, with class
    /// weights, smoothing, a mixup pair of terms, a gender head that some clips lack and three
    /// domains.
    #[test]
    fn the_gradient_is_the_derivative_of_the_loss() {
        let heads = Heads { classes: 4, genders: 2, domains: 3 };
        let w = heads.outputs();
        let batch = 3;
        let logits: Vec<f32> = (0..batch * heads.outputs()).map(|i| ((i * 7919) % 23) as f32 / 7.0 - 1.5).collect();
        let weights = [1.0, 2.0, 0.5, 1.5];
        // Clip 1's corpus lacks class 1 (in both terms), clip 2's partner's lacks class 3.
        let (all, no1, no3) = ([true; 4], [true, false, true, true], [true, true, true, false]);
        let loss = Loss {
            terms: vec![(0.7, vec![0, 3, 1]), (0.3, vec![2, 2, 0])],
            class_weights: Some(&weights),
            clip_weights: Some(vec![vec![0.5, 1.5, 1.0], vec![1.5, 1.5, 0.5]]),
            allowed: Some(vec![vec![&all[..], &no1[..], &all[..]], vec![&all[..], &no1[..], &no3[..]]]),
            smoothing: 0.1,
            gender: Some((0.4, vec![vec![Some(1), None, Some(0)], vec![Some(0), Some(1), None]])),
            domain: Some((0.2, vec![vec![Some(2), Some(0), Some(1)], vec![Some(1), Some(0), Some(2)]])),
        };
        let (_, grad) = loss.value_and_gradient(&logits, heads);
        let h = 1e-2f32;
        for i in 0..logits.len() {
            let at = |d: f32| {
                let mut l = logits.clone();
                l[i] += d;
                loss.value_and_gradient(&l, heads).0
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!((numeric - grad[i]).abs() < 2e-3, "logit {i}: numeric {numeric} vs {}", grad[i]);
        }
        // The gender and domain logits have a gradient, each only through its own term.
        for (head, cut) in
            [(4..6, Loss { gender: None, ..loss.clone() }), (6..9, Loss { domain: None, ..loss.clone() })]
        {
            let at = |g: &[f32], b: usize| g[b * w + head.start..b * w + head.end].to_vec();
            assert!((0..batch).flat_map(|b| at(&grad, b)).map(f32::abs).sum::<f32>() > 1e-3);
            let (_, without) = cut.value_and_gradient(&logits, heads);
            assert!((0..batch).all(|b| at(&without, b).iter().all(|&d| d == 0.0)));
            assert!(
                (0..batch).all(|b| without[b * w..b * w + 4] == grad[b * w..b * w + 4]),
                "the emotions' gradient is its own"
            );
        }
        // A class a clip's corpus lacks gets no gradient from that clip's terms: clip 1's logit 1.
        let (_, one) = Loss { clip_weights: None, ..loss.clone() }.value_and_gradient(&logits, heads);
        assert_eq!(one[w + 1], 0.0);
        // Without masks or clip weights, the loss is the plain one.
        let plain = Loss { allowed: None, clip_weights: None, gender: None, domain: None, ..loss.clone() };
        let masked_all = Loss { allowed: Some(vec![vec![&all[..]; 3]; 2]), ..plain.clone() };
        let (a, b) = (plain.value_and_gradient(&logits, heads), masked_all.value_and_gradient(&logits, heads));
        assert!((a.0 - b.0).abs() < 1e-6 && a.1.iter().zip(&b.1).all(|(x, y)| (x - y).abs() < 1e-6));
    }

    #[test]
    fn balanced_weights_give_each_group_the_same_total() {
        assert_eq!(balanced_weights(&[0, 0, 0, 2], 3), [2.0 / 3.0, 0.0, 2.0]);
        assert_eq!(balanced_weights(&[], 2), [0.0, 0.0]);
    }
}
