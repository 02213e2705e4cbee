//! Audio-level augmentation for training copies of a clip (`augment` in `features.yaml`): a cut
//! to the speech, speed perturbation, a vocal-tract-length warp, a room, band-limiting to
//! telephone bandwidth, a low-pass at a random cutoff, white noise at a random SNR and random gain
//! (the transforms of [`crate::channel`]), each copy drawn from a generator seeded by `(seed,
//! clip id, copy)`, so a copy is the same on every machine and shard. Functions of values: no IO.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::audio::{AudioError, resample};
use crate::channel::{TELEPHONE_BAND_HZ, add_noise, apply_gain, band_limit, low_pass, reverberate, trim};
use crate::config::AudioAugment;

/// One training copy of a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentedCopy {
    /// At the clip's sample rate.
    pub samples: Vec<f32>,
    /// The vocal-tract-length warp the features apply ([`crate::dsp::Analyzer::features_vtlp`]);
    /// 1 for none. A warp of the spectrum, it is done in the filterbank, not on the samples.
    pub vtlp_alpha: f32,
    /// What was done, in words (`trim=31dB speed=0.9 vtlp=1.072 room=0.42s telephone
    /// lowpass=4210Hz snr=17.5dB gain=-3.2dB`), in that order: where the recording was cut, the
    /// voice, the room it is in, the line or codec, the noise at the microphone, the level.
    pub what: String,
}

/// Copy `copy` (1-based) of a clip at `sample_rate`. A transform whose probability is 0 draws
/// nothing, so adding one leaves older configs' copies as they were. The cut leaves at least
/// `min_len` samples (the analysis' minimum), after any speed.
pub fn augmented_copy(
    samples: &[f32],
    sample_rate: u32,
    spec: &AudioAugment,
    clip_id: &str,
    copy: usize,
    min_len: usize,
) -> Result<AugmentedCopy, AudioError> {
    let digest = Sha256::digest(format!("{}/{clip_id}/{copy}", spec.seed).as_bytes());
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")));
    let mut done = Vec::new();
    let mut y = samples.to_vec();
    // Drawn first, and only when asked for, so that configs without it keep their copies.
    if spec.trim > 0.0 && rng.random::<f32>() < spec.trim {
        let [lo, hi] = spec.trim_top_db.expect("validated: trim needs trim_top_db");
        let top_db = rng.random_range(lo..=hi);
        // Enough that the fastest speed still leaves `min_len`.
        let fastest = spec.speeds.iter().copied().fold(1.0f32, f32::max);
        y = trim(&y, sample_rate, top_db, (min_len as f32 * fastest).ceil() as usize).to_vec();
        done.push(format!("trim={top_db:.0}dB"));
    }
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
    let mut vtlp_alpha = 1.0;
    if spec.vtlp > 0.0 && rng.random::<f32>() < spec.vtlp {
        let [lo, hi] = spec.vtlp_alpha.expect("validated: vtlp needs vtlp_alpha");
        vtlp_alpha = rng.random_range(lo..=hi);
        done.push(format!("vtlp={vtlp_alpha:.3}"));
    }
    if spec.reverb > 0.0 && rng.random::<f32>() < spec.reverb {
        let [lo, hi] = spec.reverb_rt60_s.expect("validated: reverb needs reverb_rt60_s");
        let rt60_s = rng.random_range(lo..=hi);
        y = reverberate(&y, sample_rate, rt60_s, rng.random());
        done.push(format!("room={rt60_s:.2}s"));
    }
    if spec.telephone > 0.0 && rng.random::<f32>() < spec.telephone {
        band_limit(&mut y, sample_rate, TELEPHONE_BAND_HZ)?;
        done.push("telephone".to_string());
    }
    if spec.lowpass > 0.0 && rng.random::<f32>() < spec.lowpass {
        let [lo, hi] = spec.lowpass_hz.expect("validated: lowpass needs lowpass_hz");
        let hz = rng.random_range(lo..=hi);
        low_pass(&mut y, sample_rate, hz)?;
        done.push(format!("lowpass={hz:.0}Hz"));
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
    Ok(AugmentedCopy { samples: y, vtlp_alpha, what: done.join(" ") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::signals::{rms, tone};

    /// A copy's samples and words, for the copies of these tests, which draw no warp.
    fn unwarped(c: AugmentedCopy) -> (Vec<f32>, String) {
        assert_eq!(c.vtlp_alpha, 1.0, "no warp asked for");
        (c.samples, c.what)
    }

    #[test]
    fn copies_are_seeded_by_clip_and_copy() {
        let spec = AudioAugment {
            copies: 2,
            seed: 3,
            speeds: vec![0.9, 1.0, 1.1],
            gain_db: Some([-6.0, 6.0]),
            snr_db: Some([10.0, 30.0]),
            telephone: 0.5,
            ..AudioAugment::default()
        };
        let y = tone(220.0, 22_050, 22_050);
        let a = unwarped(augmented_copy(&y, 22_050, &spec, "clip", 1, 0).unwrap());
        assert_eq!(a, unwarped(augmented_copy(&y, 22_050, &spec, "clip", 1, 0).unwrap()), "the same copy twice");
        assert_ne!(a.0, unwarped(augmented_copy(&y, 22_050, &spec, "clip", 2, 0).unwrap()).0);
        assert_ne!(a.0, unwarped(augmented_copy(&y, 22_050, &spec, "other", 1, 0).unwrap()).0);
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
            telephone,
            ..AudioAugment::default()
        };
        let y = tone(220.0, sr as usize, sr);
        let (fast, what) = unwarped(augmented_copy(&y, sr, &only(vec![1.1], 0.0), "c", 1, 0).unwrap());
        assert_eq!(what, "speed=1.1");
        assert!((fast.len() as f32 - sr as f32 / 1.1).abs() < 2.0, "{} samples", fast.len());
        let high = tone(6000.0, sr as usize, sr);
        let (phone, what) = unwarped(augmented_copy(&high, sr, &only(Vec::new(), 1.0), "c", 1, 0).unwrap());
        assert_eq!(what, "telephone");
        assert!(rms(&phone) < 0.05 * rms(&high), "6 kHz passes: {} of {}", rms(&phone), rms(&high));
        let (mid, _) =
            unwarped(augmented_copy(&tone(1000.0, sr as usize, sr), sr, &only(Vec::new(), 1.0), "c", 1, 0).unwrap());
        assert!(rms(&mid) > 0.8 * 0.3 / 2f32.sqrt(), "1 kHz is in the band: {}", rms(&mid));
    }

    #[test]
    fn a_low_pass_copy_loses_what_lies_above_its_drawn_cutoff() {
        let sr = 22_050;
        let spec = AudioAugment {
            copies: 1,
            seed: 1,
            lowpass: 1.0,
            lowpass_hz: Some([3000.0, 4000.0]),
            ..AudioAugment::default()
        };
        let high = tone(6000.0, sr as usize, sr);
        let (cut, what) = unwarped(augmented_copy(&high, sr, &spec, "c", 1, 0).unwrap());
        let hz: f32 = what.strip_prefix("lowpass=").and_then(|w| w.strip_suffix("Hz")).unwrap().parse().unwrap();
        assert!((3000.0..=4000.0).contains(&hz), "{what}");
        assert!(rms(&cut) < 0.05 * rms(&high), "6 kHz passes: {} of {}", rms(&cut), rms(&high));
        let low = tone(1000.0, sr as usize, sr);
        let (kept, _) = unwarped(augmented_copy(&low, sr, &spec, "c", 1, 0).unwrap());
        assert!(rms(&kept) > 0.9 * rms(&low), "1 kHz is below the cutoff: {}", rms(&kept));
    }

    #[test]
    fn each_reverberant_copy_is_in_a_room_of_its_own_at_the_clips_level() {
        let sr = 16_000;
        let spec = AudioAugment {
            copies: 2,
            seed: 5,
            reverb: 1.0,
            reverb_rt60_s: Some([0.3, 0.6]),
            ..AudioAugment::default()
        };
        let mut click = vec![0f32; sr as usize];
        click[100] = 1.0;
        let (a, what) = unwarped(augmented_copy(&click, sr, &spec, "c", 1, 0).unwrap());
        let rt60: f32 = what.strip_prefix("room=").and_then(|w| w.strip_suffix('s')).unwrap().parse().unwrap();
        assert!((0.3..=0.6).contains(&rt60), "{what}");
        let late: f32 = a[100 + sr as usize / 10..].iter().map(|v| v * v).sum();
        assert!(late > 0.01 * a.iter().map(|v| v * v).sum::<f32>(), "a tail 100 ms on");
        assert!((rms(&a) / rms(&click) - 1.0).abs() < 1e-3, "the clip's level is kept");
        let (b, _) = unwarped(augmented_copy(&click, sr, &spec, "c", 2, 0).unwrap());
        let (c, _) = unwarped(augmented_copy(&click, sr, &spec, "d", 1, 0).unwrap());
        assert_ne!(a, b, "two copies, two rooms");
        assert_ne!(a, c, "two clips, two rooms");
        let suite = crate::channel::Channel::Reverb { rt60_s: rt60 }.apply(&click, sr, 0).unwrap();
        assert_ne!(a, suite, "training never hears the robustness suite's room");
    }

    #[test]
    fn a_trimmed_copy_is_cut_to_its_speech_at_a_drawn_level() {
        let sr = 22_050;
        let spec =
            AudioAugment { copies: 2, seed: 4, trim: 1.0, trim_top_db: Some([20.0, 40.0]), ..AudioAugment::default() };
        // A second of room tone, a second of speech band, a second of room tone.
        let s = sr as usize;
        let mut clip = vec![1e-4f32; s];
        clip.extend(tone(300.0, s, sr));
        clip.extend(vec![1e-4f32; s]);
        for copy in [1, 2] {
            let (cut, what) = unwarped(augmented_copy(&clip, sr, &spec, "c", copy, 0).unwrap());
            let db: f32 = what.strip_prefix("trim=").and_then(|w| w.strip_suffix("dB")).unwrap().parse().unwrap();
            assert!((20.0..=40.0).contains(&db), "{what}");
            let seconds = cut.len() as f32 / sr as f32;
            assert!((1.0..1.2).contains(&seconds), "copy {copy}: {seconds} s kept");
        }
        // Never shorter than the analysis needs, even after the fastest speed.
        let fast = AudioAugment { speeds: vec![1.5], ..spec.clone() };
        let (cut, _) = unwarped(augmented_copy(&clip, sr, &fast, "c", 1, 2 * s).unwrap());
        assert!(cut.len() >= 2 * s, "{} samples after the cut and speed 1.5", cut.len());
        let never = AudioAugment { trim: 0.0, ..spec.clone() };
        assert_eq!(unwarped(augmented_copy(&clip, sr, &never, "c", 1, 0).unwrap()), (clip.clone(), String::new()));
    }

    #[test]
    fn transforms_left_at_zero_draw_nothing() {
        // Adding trim, vtlp, lowpass and reverb to the generator's sequence must not move older configs'
        // copies: with each at 0 (their ranges given or not) the copy is the one they drew before.
        let spec = AudioAugment {
            copies: 1,
            seed: 9,
            speeds: vec![0.9, 1.1],
            gain_db: Some([-6.0, 6.0]),
            snr_db: Some([10.0, 30.0]),
            telephone: 0.5,
            ..AudioAugment::default()
        };
        let with_ranges = AudioAugment {
            lowpass_hz: Some([3000.0, 8000.0]),
            vtlp_alpha: Some([0.9, 1.1]),
            reverb_rt60_s: Some([0.2, 0.8]),
            trim_top_db: Some([20.0, 40.0]),
            ..spec.clone()
        };
        let y = tone(220.0, 22_050, 22_050);
        for id in ["a", "b", "c", "d"] {
            assert_eq!(
                augmented_copy(&y, 22_050, &spec, id, 1, 0).unwrap(),
                augmented_copy(&y, 22_050, &with_ranges, id, 1, 0).unwrap()
            );
        }
    }

    #[test]
    fn a_warped_copy_draws_its_factor_and_keeps_its_samples() {
        let sr = 22_050;
        let spec = AudioAugment {
            copies: 3,
            seed: 2,
            speeds: vec![0.9, 1.0, 1.1],
            vtlp: 1.0,
            vtlp_alpha: Some([0.85, 1.15]),
            ..AudioAugment::default()
        };
        let y = tone(220.0, sr as usize, sr);
        let no_warp = AudioAugment { vtlp: 0.0, ..spec.clone() };
        let mut alphas = Vec::new();
        for copy in 1..=3 {
            let c = augmented_copy(&y, sr, &spec, "c", copy, 0).unwrap();
            assert!((0.85..=1.15).contains(&c.vtlp_alpha), "{}", c.vtlp_alpha);
            assert!(c.what.contains(&format!("vtlp={:.3}", c.vtlp_alpha)), "{}", c.what);
            // The warp is the features' to apply: the samples are the copy's without it (its speed
            // drawn before the warp, nothing drawn after).
            assert_eq!(c.samples, augmented_copy(&y, sr, &no_warp, "c", copy, 0).unwrap().samples);
            alphas.push(c.vtlp_alpha);
        }
        assert!(alphas[0] != alphas[1] && alphas[1] != alphas[2], "{alphas:?}");
    }
}
