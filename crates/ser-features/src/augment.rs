//! Audio-level augmentation for training copies of a clip (`augment` in `features.yaml`): speed
//! perturbation, random gain, white noise at a random SNR and band-limiting to telephone
//! bandwidth (the transforms of [`crate::channel`]), each copy drawn from a generator seeded by
//! `(seed, clip id, copy)`, so a copy is the same on every machine and shard. Functions of
//! values: no IO.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::audio::{AudioError, resample};
use crate::channel::{TELEPHONE_BAND_HZ, add_noise, apply_gain, band_limit};
use crate::config::AudioAugment;

/// Copy `copy` (1-based) of a clip: its samples at `sample_rate` and what was done, in words
/// (`speed=0.9 gain=-3.2dB snr=17.5dB telephone`).
pub fn augmented_copy(
    samples: &[f32],
    sample_rate: u32,
    spec: &AudioAugment,
    clip_id: &str,
    copy: usize,
) -> Result<(Vec<f32>, String), AudioError> {
    let digest = Sha256::digest(format!("{}/{clip_id}/{copy}", spec.seed).as_bytes());
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")));
    let mut done = Vec::new();
    let mut y = samples.to_vec();
    if !spec.speeds.is_empty() {
        let speed = spec.speeds[rng.random_range(0..spec.speeds.len())];
        if speed != 1.0 {
            // Played `speed` times faster: the clip resampled as if it had been recorded at
            // sample_rate * speed (tempo and pitch move together, as Kaldi's speed perturbation).
            let from = (sample_rate as f64 * speed as f64).round() as u32;
            y = resample(&y, from, sample_rate)?;
        }
        done.push(format!("speed={speed}"));
    }
    if spec.telephone > 0.0 && rng.random::<f32>() < spec.telephone {
        band_limit(&mut y, sample_rate, TELEPHONE_BAND_HZ)?;
        done.push("telephone".to_string());
    }
    if let Some([lo, hi]) = spec.snr_db {
        let snr = rng.random_range(lo..=hi);
        add_noise(&mut y, snr, &mut rng);
        done.push(format!("snr={snr:.1}dB"));
    }
    if let Some([lo, hi]) = spec.gain_db {
        let gain_db = rng.random_range(lo..=hi);
        apply_gain(&mut y, gain_db);
        done.push(format!("gain={gain_db:.1}dB"));
    }
    Ok((y, done.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::signals::{rms, tone};

    #[test]
    fn copies_are_seeded_by_clip_and_copy() {
        let spec = AudioAugment {
            copies: 2,
            seed: 3,
            speeds: vec![0.9, 1.0, 1.1],
            gain_db: Some([-6.0, 6.0]),
            snr_db: Some([10.0, 30.0]),
            telephone: 0.5,
        };
        let y = tone(220.0, 22_050, 22_050);
        let a = augmented_copy(&y, 22_050, &spec, "clip", 1).unwrap();
        assert_eq!(a, augmented_copy(&y, 22_050, &spec, "clip", 1).unwrap(), "the same copy twice");
        assert_ne!(a.0, augmented_copy(&y, 22_050, &spec, "clip", 2).unwrap().0);
        assert_ne!(a.0, augmented_copy(&y, 22_050, &spec, "other", 1).unwrap().0);
        assert!(a.1.contains("speed=") && a.1.contains("gain=") && a.1.contains("snr="), "{}", a.1);
    }

    #[test]
    fn speed_changes_the_length_and_telephone_removes_high_frequencies() {
        let sr = 22_050;
        let only = |speeds: Vec<f32>, telephone: f32| AudioAugment {
            copies: 1,
            seed: 1,
            speeds,
            gain_db: None,
            snr_db: None,
            telephone,
        };
        let y = tone(220.0, sr as usize, sr);
        let (fast, what) = augmented_copy(&y, sr, &only(vec![1.1], 0.0), "c", 1).unwrap();
        assert_eq!(what, "speed=1.1");
        assert!((fast.len() as f32 - sr as f32 / 1.1).abs() < 2.0, "{} samples", fast.len());
        let high = tone(6000.0, sr as usize, sr);
        let (phone, what) = augmented_copy(&high, sr, &only(Vec::new(), 1.0), "c", 1).unwrap();
        assert_eq!(what, "telephone");
        assert!(rms(&phone) < 0.05 * rms(&high), "6 kHz passes: {} of {}", rms(&phone), rms(&high));
        let (mid, _) = augmented_copy(&tone(1000.0, sr as usize, sr), sr, &only(Vec::new(), 1.0), "c", 1).unwrap();
        assert!(rms(&mid) > 0.8 * 0.3 / 2f32.sqrt(), "1 kHz is in the band: {}", rms(&mid));
    }
}
