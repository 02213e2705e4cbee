//! Channel changes: what a recording chain does to speech before ser hears it (a telephone line,
//! a low-bitrate codec's band, background noise, a quiet microphone, a room, a corpus cut tight to
//! its speech). Each is defined
//! once here; training copies (`augment`) draw from the same transforms, and `channel:` in
//! `features.yaml` (or `ser-features extract --channel`) applies one to every clip, for the
//! robustness suite (`make robustness`). Functions of values: no IO.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use realfft::RealFftPlanner;
use sha2::{Digest, Sha256};

use crate::audio::{AudioError, resample};
pub use crate::config::{Channel, ChannelParseError, MAX_TRIM_DB, MIN_LOWPASS_HZ, RT60_RANGE_S, TELEPHONE_BAND_HZ};

/// The frame and hop, in seconds, over which [`trim`] measures loudness (librosa's 2048 and 512
/// samples at 22050 Hz).
const TRIM_FRAME_S: f32 = 2048.0 / 22_050.0;
const TRIM_HOP_S: f32 = 512.0 / 22_050.0;

/// The seed of the one room of [`Channel::Reverb`]; training copies draw rooms of their own.
const SUITE_ROOM_SEED: u64 = 0x5e7_7007;

impl Channel {
    /// `samples` (mono, at `sample_rate`) through this channel. `seed` draws the noise (the
    /// caller derives it from the clip, so a clip sounds the same on every run); the room of
    /// `reverb` is the same for every clip.
    pub fn apply(&self, samples: &[f32], sample_rate: u32, seed: u64) -> Result<Vec<f32>, AudioError> {
        let mut y = samples.to_vec();
        match *self {
            Channel::Telephone => band_limit(&mut y, sample_rate, TELEPHONE_BAND_HZ)?,
            Channel::Lowpass { hz } => low_pass(&mut y, sample_rate, hz)?,
            Channel::Noise { snr_db } => add_noise(&mut y, snr_db, &mut ChaCha8Rng::seed_from_u64(seed)),
            Channel::Gain { db } => apply_gain(&mut y, db),
            Channel::Reverb { rt60_s } => y = reverberate(&y, sample_rate, rt60_s, SUITE_ROOM_SEED),
            Channel::Trim { top_db } => y = trim(&y, sample_rate, top_db, 0).to_vec(),
        }
        Ok(y)
    }
}

/// The seed of a clip's noise under `channel`: from the channel and the clip's file digest, so
/// the same file gets the same noise wherever it is extracted.
pub fn clip_seed(channel: &Channel, file_sha256: &[u8]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(channel.to_string().as_bytes());
    hasher.update(b"/");
    hasher.update(file_sha256);
    u64::from_le_bytes(hasher.finalize()[..8].try_into().expect("8 bytes"))
}

/// `y` cut to its speech: from the first to the last frame within `top_db` of its loudest frame
/// (the span of [`crate::dsp::trim_span`], the one `trim_db` cuts, over frames of 93 ms), and
/// never shorter than one such frame or `min_len` samples (widened around the span). A silent
/// clip is kept whole.
pub fn trim(y: &[f32], sample_rate: u32, top_db: f32, min_len: usize) -> &[f32] {
    let frame = ((TRIM_FRAME_S * sample_rate as f32).round() as usize).max(1);
    let hop = ((TRIM_HOP_S * sample_rate as f32).round() as usize).max(1);
    let (start, end) = crate::dsp::trim_span(y, top_db, frame, hop);
    let (start, end) = crate::dsp::widen(start, end, frame.max(min_len), y.len());
    &y[start..end]
}

/// Removes what lies above `hz`: resampling to `2 * hz` and back (the resampler's anti-aliasing
/// filter). Keeps the length.
pub fn low_pass(y: &mut Vec<f32>, sample_rate: u32, hz: f32) -> Result<(), AudioError> {
    let narrow = (2.0 * hz).round() as u32;
    if narrow < sample_rate {
        let n = y.len();
        let mut back = resample(&resample(y, sample_rate, narrow)?, narrow, sample_rate)?;
        back.resize(n, 0.0);
        *y = back;
    }
    Ok(())
}

/// Keeps `band` (Hz): [`low_pass`] at the upper edge and a first-order high-pass at the lower.
pub fn band_limit(y: &mut Vec<f32>, sample_rate: u32, (low, high): (f32, f32)) -> Result<(), AudioError> {
    low_pass(y, sample_rate, high)?;
    let rc = 1.0 / (2.0 * std::f32::consts::PI * low);
    let dt = 1.0 / sample_rate as f32;
    let alpha = rc / (rc + dt);
    let (mut prev_x, mut prev_y) = (0f32, 0f32);
    for v in y.iter_mut() {
        let out = alpha * (prev_y + *v - prev_x);
        prev_x = *v;
        prev_y = out;
        *v = out;
    }
    Ok(())
}

/// Adds white Gaussian noise `snr_db` below the signal's mean power (nothing to a silent one).
pub fn add_noise(y: &mut [f32], snr_db: f32, rng: &mut impl Rng) {
    let power = y.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / y.len().max(1) as f64;
    if power > 0.0 {
        let std = (power / 10f64.powf(snr_db as f64 / 10.0)).sqrt() as f32;
        let normal = Normal::new(0.0f32, std).expect("a finite, non-negative std");
        for v in y.iter_mut() {
            *v += normal.sample(rng);
        }
    }
}

/// Scales by `db` decibels.
pub fn apply_gain(y: &mut [f32], db: f32) {
    let gain = 10f32.powf(db / 20.0);
    for v in y.iter_mut() {
        *v *= gain;
    }
}

/// A room: a unit direct path, then 5 ms later a tail of Gaussian noise under an exponential
/// decay of 60 dB over `rt60_s`, scaled to the direct path's energy. `room_seed` draws the tail:
/// [`Channel::Reverb`] always hears the same room, each training copy its own.
pub fn room_impulse_response(sample_rate: u32, rt60_s: f32, room_seed: u64) -> Vec<f32> {
    let n = ((rt60_s * sample_rate as f32) as usize).max(2);
    let onset = ((0.005 * sample_rate as f32) as usize).clamp(1, n - 1);
    let mut rng = ChaCha8Rng::seed_from_u64(room_seed);
    let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
    let mut ir = vec![0f32; n];
    ir[0] = 1.0;
    for (i, v) in ir.iter_mut().enumerate().skip(onset) {
        let t = i as f32 / sample_rate as f32;
        *v = normal.sample(&mut rng) * 10f32.powf(-3.0 * t / rt60_s);
    }
    let tail_energy: f64 = ir[onset..].iter().map(|v| (*v as f64).powi(2)).sum();
    let scale = (1.0 / tail_energy.max(f64::MIN_POSITIVE)).sqrt() as f32;
    ir[onset..].iter_mut().for_each(|v| *v *= scale);
    ir
}

/// `y` through the room of [`room_impulse_response`] (FFT convolution, cut to `y`'s length),
/// rescaled to `y`'s RMS level.
pub fn reverberate(y: &[f32], sample_rate: u32, rt60_s: f32, room_seed: u64) -> Vec<f32> {
    let ir = room_impulse_response(sample_rate, rt60_s, room_seed);
    let n = (y.len() + ir.len() - 1).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let (forward, inverse) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let spectrum = |x: &[f32]| {
        let mut padded = vec![0f32; n];
        padded[..x.len()].copy_from_slice(x);
        let mut out = forward.make_output_vec();
        forward.process(&mut padded, &mut out).expect("buffer sizes come from the plan");
        out
    };
    let (mut a, b) = (spectrum(y), spectrum(&ir));
    a.iter_mut().zip(&b).for_each(|(x, h)| *x *= h / n as f32);
    let mut wet = inverse.make_output_vec();
    inverse.process(&mut a, &mut wet).expect("buffer sizes come from the plan");
    wet.truncate(y.len());
    let rms = |x: &[f32]| (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let (dry_rms, wet_rms) = (rms(y), rms(&wet));
    if wet_rms > 0.0 {
        let g = (dry_rms / wet_rms) as f32;
        wet.iter_mut().for_each(|v| *v *= g);
    }
    wet
}

/// Test signals for this module's tests and `augment`'s.
#[cfg(test)]
pub(crate) mod signals {
    /// A sine of amplitude 0.3.
    pub fn tone(freq: f32, n: usize, sr: u32) -> Vec<f32> {
        (0..n).map(|i| 0.3 * (2.0 * std::f32::consts::PI * freq * i as f32 / sr as f32).sin()).collect()
    }

    pub fn rms(y: &[f32]) -> f32 {
        (y.iter().map(|v| v * v).sum::<f32>() / y.len() as f32).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::signals::{rms, tone};
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_say_what_would_do() {
        for name in
            ["telephone", "lowpass_5500hz", "noise_10db", "noise_2.5db", "gain_-20db", "reverb_0.5s", "trim_30db"]
        {
            let channel: Channel = name.parse().unwrap();
            assert_eq!(channel.to_string(), name);
        }
        for bad in [
            "",
            "noise",
            "noise_10",
            "noise_tendb",
            "lowpass_50hz",
            "reverb_0s",
            "echo_1s",
            "gain_infdb",
            "trim_0db",
            "trim_-30db",
        ] {
            let err = bad.parse::<Channel>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")) && err.contains("noise_10db"), "{err}");
        }
    }

    #[test]
    fn each_channel_does_what_it_says() {
        let sr = 22_050;
        let speech_band = tone(1000.0, sr as usize, sr);
        let apply = |name: &str, y: &[f32]| name.parse::<Channel>().unwrap().apply(y, sr, 1).unwrap();

        let high = tone(6000.0, sr as usize, sr);
        assert!(rms(&apply("telephone", &high)) < 0.05 * rms(&high));
        assert!(rms(&apply("telephone", &speech_band)) > 0.8 * rms(&speech_band));
        assert!(rms(&apply("lowpass_4000hz", &high)) < 0.05 * rms(&high));
        assert!(rms(&apply("lowpass_8000hz", &high)) > 0.9 * rms(&high));

        let quiet = apply("gain_-20db", &speech_band);
        assert!((rms(&quiet) / rms(&speech_band) - 0.1).abs() < 1e-4);

        let noisy = apply("noise_10db", &speech_band);
        let noise: Vec<f32> = noisy.iter().zip(&speech_band).map(|(a, b)| a - b).collect();
        let snr = 20.0 * (rms(&speech_band) / rms(&noise)).log10();
        assert!((snr - 10.0).abs() < 0.2, "snr {snr}");
        assert_eq!(noisy, apply("noise_10db", &speech_band), "the same seed, the same noise");
        let other = "noise_10db".parse::<Channel>().unwrap().apply(&speech_band, sr, 2).unwrap();
        assert_ne!(noisy, other, "another clip, other noise");
        assert_eq!(apply("noise_10db", &vec![0.0; 100]), vec![0.0; 100], "silence stays silent");

        // A click through the room rings on; a tone keeps its level.
        let mut click = vec![0f32; sr as usize];
        click[100] = 1.0;
        let ring = apply("reverb_0.5s", &click);
        let late: f32 = ring[100 + sr as usize / 10..].iter().map(|v| v * v).sum();
        assert!(late > 0.01 * ring.iter().map(|v| v * v).sum::<f32>(), "a tail 100 ms on");
        assert!((rms(&apply("reverb_0.5s", &speech_band)) / rms(&speech_band) - 1.0).abs() < 1e-3);
        assert_eq!(apply("reverb_0.5s", &speech_band).len(), speech_band.len());

        // A second of near-silence, half a second of tone, a second of near-silence: the cut
        // keeps the tone and about a frame around it, whatever the rate.
        for sr in [16_000u32, 22_050, 48_000] {
            let s = sr as usize;
            let mut clip = vec![1e-4f32; s];
            clip.extend(tone(1000.0, s / 2, sr));
            clip.extend(vec![1e-4f32; s]);
            let cut = "trim_30db".parse::<Channel>().unwrap().apply(&clip, sr, 1).unwrap();
            let seconds = cut.len() as f32 / sr as f32;
            assert!((0.5..0.7).contains(&seconds), "{sr} Hz: {seconds} s kept");
            assert!(rms(&cut) > 0.9 * rms(&clip[s..s + s / 2]), "{sr} Hz: the tone is kept");
        }
        let silent = vec![0f32; sr as usize];
        assert_eq!(apply("trim_30db", &silent), silent, "a silent clip is kept whole");
        assert_eq!(apply("trim_30db", &click).len(), 2048, "never shorter than a frame");
    }

    #[test]
    fn a_config_refuses_a_channel_its_sample_rate_cannot_carry() {
        let base = "sample_rate: 6000\nn_fft: 512\nhop_length: 128\nn_mels: 40\nfmin: 0.0\nfmax: null\n\
                    top_db: 80.0\nkind: mfcc\nn_mfcc: 20\ndeltas: false\nframes: 100\npad: zeros\nmax_duration_s: 60.0\n";
        let augment = "augment:\n  copies: 1\n  seed: 1\n  telephone: 0.5\n";
        let err = crate::FeaturesConfig::from_yaml(&format!("{base}{augment}")).unwrap_err().to_string();
        assert!(err.contains("augment.telephone: sample_rate 6000 Hz is already telephone bandwidth"), "{err}");
        let err =
            crate::FeaturesConfig::from_yaml(&format!("{base}channel: lowpass_3500hz\n")).unwrap_err().to_string();
        assert!(err.contains("channel: lowpass_3500hz: at sample_rate 6000 Hz nothing lies above 3500 Hz"), "{err}");
        assert!(crate::FeaturesConfig::from_yaml(&format!("{base}channel: lowpass_2000hz\n")).is_ok());
        let refused = |augment: &str| {
            let yaml = format!("{base}augment:\n  copies: 1\n  seed: 1\n{augment}");
            crate::FeaturesConfig::from_yaml(&yaml).unwrap_err().to_string()
        };
        let err = refused("  lowpass: 0.5\n  lowpass_hz: [2000.0, 3500.0]\n");
        assert!(err.contains("augment.lowpass_hz: lowpass_3500hz: at sample_rate 6000 Hz"), "{err}");
        let err = refused("  lowpass: 0.5\n");
        assert!(err.contains("augment.lowpass_hz: give the cutoffs"), "{err}");
        let err = refused("  lowpass: 0.5\n  lowpass_hz: [50.0, 2000.0]\n");
        assert!(err.contains("augment.lowpass_hz: 50 Hz is below 100 Hz"), "{err}");
        assert!("lowpass_50hz".parse::<Channel>().is_err(), "the suite refuses the same cutoff");
        let err = refused("  reverb: 1.5\n  reverb_rt60_s: [0.2, 0.8]\n");
        assert!(err.contains("augment.reverb: 1.5 is a probability"), "{err}");
        let err = refused("  reverb: 0.5\n  reverb_rt60_s: [0.2, 20.0]\n");
        assert!(err.contains("augment.reverb_rt60_s: [0.2, 20] must lie within 0.01..=10 s"), "{err}");
        let err = refused("  reverb: 0.5\n  reverb_rt60_s: [0.8, 0.2]\n");
        assert!(err.contains("augment.reverb_rt60_s: [0.8, 0.2] is not a range"), "{err}");
        let err = refused("  trim: 0.5\n");
        assert!(err.contains("augment.trim_top_db: give the levels"), "{err}");
        let err = refused("  trim: 2\n  trim_top_db: [20.0, 40.0]\n");
        assert!(err.contains("augment.trim: 2 is a probability"), "{err}");
        let err = refused("  trim: 0.5\n  trim_top_db: [0.0, 40.0]\n");
        assert!(err.contains("augment.trim_top_db: [0, 40] must lie within (0, 120] dB"), "{err}");
        let err = refused("  vtlp: 0.5\n");
        assert!(err.contains("augment.vtlp_alpha: give the warp factors"), "{err}");
        let err = refused("  vtlp: -0.1\n  vtlp_alpha: [0.9, 1.1]\n");
        assert!(err.contains("augment.vtlp: -0.1 is a probability"), "{err}");
        let err = refused("  vtlp: 0.5\n  vtlp_alpha: [0.5, 1.1]\n");
        assert!(err.contains("augment.vtlp_alpha: [0.5, 1.1] must lie within 0.7..=1.4"), "{err}");
        let err = refused("  vtlp: 0.5\n  vtlp_alpha: [1.1, 0.9]\n");
        assert!(err.contains("augment.vtlp_alpha: [1.1, 0.9] is not a range"), "{err}");
        let ok = format!("{base}augment:\n  copies: 1\n  seed: 1\n  lowpass: 0.5\n  lowpass_hz: [1000.0, 2500.0]\n");
        assert!(crate::FeaturesConfig::from_yaml(&ok).is_ok());
    }

    #[test]
    fn a_room_decays_sixty_db_over_its_rt60() {
        let sr = 16_000;
        let ir = room_impulse_response(sr, 0.4, SUITE_ROOM_SEED);
        assert_eq!(ir.len(), 6400);
        let energy = |r: std::ops::Range<usize>| ir[r].iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        let tail = energy(80..ir.len());
        assert!((tail - 1.0).abs() < 1e-3, "tail energy {tail}: as much as the direct path");
        // Energy 50 ms wide, at 100 ms and at 300 ms: 200 ms apart is 30 dB of a 60 dB/0.4 s decay.
        let drop_db = 10.0 * (energy(1600..2400) / energy(4800..5600)).log10();
        assert!((drop_db - 30.0).abs() < 4.0, "{drop_db} dB");
    }
}
