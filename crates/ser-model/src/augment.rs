//! Training-time augmentation of standardised feature batches: circular time shift, SpecAugment
//! time and feature masks, Gaussian noise and mixup, drawn from a generator the loop seeds per
//! epoch. Validation, test and inference never see it.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Normal};

use crate::config::Augment;

/// Shift, masks and noise of one standardised clip (T, C), in place.
pub fn augment_clip(clip: &mut [f32], n_frames: usize, n_coeffs: usize, aug: &Augment, rng: &mut ChaCha8Rng) {
    if aug.time_shift > 0 {
        let max = aug.time_shift.min(n_frames.saturating_sub(1)) as i64;
        let shift = rng.random_range(-max..=max);
        if shift > 0 {
            clip.rotate_right(shift as usize * n_coeffs);
        } else if shift < 0 {
            clip.rotate_left((-shift) as usize * n_coeffs);
        }
    }
    for _ in 0..aug.time_masks {
        let width = rng.random_range(0..=aug.time_mask_width.min(n_frames));
        let start = rng.random_range(0..=n_frames - width);
        clip[start * n_coeffs..(start + width) * n_coeffs].fill(0.0);
    }
    for _ in 0..aug.feature_masks {
        let width = rng.random_range(0..=aug.feature_mask_width.min(n_coeffs));
        let start = rng.random_range(0..=n_coeffs - width);
        for frame in clip.chunks_exact_mut(n_coeffs) {
            frame[start..start + width].fill(0.0);
        }
    }
    if aug.noise_std > 0.0 {
        let normal = Normal::new(0.0f32, aug.noise_std).expect("noise_std validated");
        for v in clip.iter_mut() {
            *v += normal.sample(rng);
        }
    }
}

/// A training batch after augmentation. With mixup, clip `i` is mixed with clip `partner[i]`
/// with weight `lambda` on its own target.
pub struct AugmentedBatch {
    pub values: Vec<f32>,
    pub mixup: Option<(Vec<usize>, f32)>,
}

pub fn augment_batch(
    mut values: Vec<f32>,
    batch: usize,
    n_frames: usize,
    n_coeffs: usize,
    aug: &Augment,
    rng: &mut ChaCha8Rng,
) -> AugmentedBatch {
    let size = n_frames * n_coeffs;
    for clip in values.chunks_exact_mut(size) {
        augment_clip(clip, n_frames, n_coeffs, aug, rng);
    }
    if aug.mixup_alpha <= 0.0 || batch < 2 {
        return AugmentedBatch { values, mixup: None };
    }
    let beta = Beta::new(aug.mixup_alpha, aug.mixup_alpha).expect("mixup_alpha validated");
    let lambda: f32 = beta.sample(rng);
    // The clip's own target always weighs at least half.
    let lambda = lambda.max(1.0 - lambda);
    let mut partner: Vec<usize> = (0..batch).collect();
    partner.shuffle(rng);
    let source = values.clone();
    for (i, clip) in values.chunks_exact_mut(size).enumerate() {
        let other = &source[partner[i] * size..(partner[i] + 1) * size];
        for (v, o) in clip.iter_mut().zip(other) {
            *v = lambda * *v + (1.0 - lambda) * o;
        }
    }
    AugmentedBatch { values, mixup: Some((partner, lambda)) }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn clip(frames: usize, coeffs: usize) -> Vec<f32> {
        (0..frames * coeffs).map(|i| i as f32 + 1.0).collect()
    }

    #[test]
    fn masks_zero_runs_no_wider_than_asked() {
        let (frames, coeffs) = (30, 5);
        let aug = Augment { time_masks: 2, time_mask_width: 4, ..Augment::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let mut c = clip(frames, coeffs);
            augment_clip(&mut c, frames, coeffs, &aug, &mut rng);
            let zero_frames = c.chunks(coeffs).filter(|f| f.iter().all(|v| *v == 0.0)).count();
            assert!(zero_frames <= 8, "{zero_frames} masked frames from 2 masks of at most 4");
            // A frame is masked whole or not at all; nothing else changes.
            for (t, f) in c.chunks(coeffs).enumerate() {
                let whole = f.iter().all(|v| *v == 0.0);
                assert!(whole || f.iter().enumerate().all(|(k, v)| *v == (t * coeffs + k) as f32 + 1.0));
            }
        }
        let aug = Augment { feature_masks: 1, feature_mask_width: 2, ..Augment::default() };
        for _ in 0..50 {
            let mut c = clip(frames, coeffs);
            augment_clip(&mut c, frames, coeffs, &aug, &mut rng);
            let zero_coeffs = (0..coeffs).filter(|&k| (0..frames).all(|t| c[t * coeffs + k] == 0.0)).count();
            assert!(zero_coeffs <= 2);
            assert_eq!(c.iter().filter(|v| **v == 0.0).count(), zero_coeffs * frames);
        }
    }

    #[test]
    fn shift_rotates_whole_frames() {
        let (frames, coeffs) = (12, 3);
        let aug = Augment { time_shift: 3, ..Augment::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let original = clip(frames, coeffs);
            let mut c = original.clone();
            augment_clip(&mut c, frames, coeffs, &aug, &mut rng);
            let shift = (0..frames).find(|&s| {
                let mut r = original.clone();
                r.rotate_right(s * coeffs);
                r == c
            });
            let shift = shift.expect("a rotation by whole frames");
            assert!(shift <= 3 || shift >= frames - 3, "shift {shift} beyond 3 frames");
            seen.insert(shift);
        }
        assert_eq!(seen.len(), 7, "every shift in -3..=3 happens: {seen:?}");
    }

    #[test]
    fn mixup_mixes_with_a_partner_and_keeps_own_weight_at_least_half() {
        let (frames, coeffs, batch) = (4, 2, 6);
        let aug = Augment { mixup_alpha: 0.4, ..Augment::default() };
        let values: Vec<f32> = (0..batch * frames * coeffs).map(|i| (i / (frames * coeffs)) as f32).collect();
        let out = augment_batch(values, batch, frames, coeffs, &aug, &mut ChaCha8Rng::seed_from_u64(3));
        let (partner, lambda) = out.mixup.expect("mixup on");
        assert!((0.5..=1.0).contains(&lambda));
        let mut sorted = partner.clone();
        sorted.sort();
        assert_eq!(sorted, (0..batch).collect::<Vec<_>>(), "partners are a permutation");
        for (i, chunk) in out.values.chunks(frames * coeffs).enumerate() {
            let want = lambda * i as f32 + (1.0 - lambda) * partner[i] as f32;
            assert!(chunk.iter().all(|v| (v - want).abs() < 1e-5));
        }
    }
}
