//! Prosody per frame, appended to the spectral features when `prosody:` is configured: pitch,
//! how periodic (voiced) the frame is, and the zero-crossing rate. None moves with the
//! recording's gain; pitch and periodicity move less with its frequency response than a
//! spectrum does; the pitch relative to the clip's median does not depend on the speaker's own
//! register.
//!
//! - `yin`: `librosa.yin` 0.11 exactly: frames of `frame_length` centred by `frame_length / 2`
//!   zeros on both sides, hop `hop_length`; the autocorrelation by FFT; the difference function
//!   `d(k) = 2 (r(0) - r(k)) - sum_{m<k} y(m)^2`; its cumulative mean normalised form over the
//!   periods `floor(sr / fmax) ..= min(ceil(sr / fmin), frame_length - 1)`; the first trough
//!   below 0.1, else the global minimum; a parabola through it and its neighbours.
//! - `zero_crossing_rate`: `librosa.feature.zero_crossing_rate` 0.11 exactly: frames centred by
//!   repeating the edge samples, values within 1e-10 of zero counted as positive, crossings
//!   counted from each frame's second sample, divided by `frame_length`.
//!
//! The channels ([`CHANNELS`]), this project's definition on top of those two:
//! `f0_semitones` (12 log2(f0 / 27.5 Hz), eGeMAPS's pitch scale), `f0_relative` (semitones from
//! the clip's median voiced pitch: the contour without the speaker's register), `periodicity`
//! (1 - YIN's normalised difference at the chosen period, clamped to 0..1) and
//! `zero_crossing_rate`. A frame is silent when its energy is more than [`SILENT_DB`] below the
//! clip's loudest frame, voiced when it is not silent and its normalised difference is below
//! [`VOICED_APERIODICITY`]. Both pitch channels are 0 in unvoiced frames and periodicity is 0 in
//! silent ones, so every channel of digital silence is 0.
//!
//! Everything here is a function of values; no IO.

use std::sync::Arc;

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::config::ProsodyConfig;
use crate::frames::{FeatureMatrix, centred_frame};

pub use crate::config::PROSODY_CHANNELS as CHANNELS;
/// The pitch that `f0_semitones` counts from (A0; eGeMAPS's `F0semitoneFrom27.5Hz`).
pub const F0_REFERENCE_HZ: f32 = 27.5;
/// YIN's absolute threshold: the first trough below it is the period (librosa's default).
pub const TROUGH_THRESHOLD: f32 = 0.1;
/// A frame is voiced when its normalised difference at the period is below this (and it is not
/// silent).
pub const VOICED_APERIODICITY: f32 = 0.3;
/// A frame whose energy is this many dB below the clip's loudest frame is silent.
pub const SILENT_DB: f32 = 60.0;
/// `librosa.zero_crossings`' threshold: values this close to zero count as zero.
const ZERO_THRESHOLD: f32 = 1e-10;

/// One frame's pitch track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YinFrame {
    /// `sr / period`, in Hz (librosa.yin's output).
    pub f0: f32,
    /// The cumulative mean normalised difference at the chosen period: 0 for a perfectly
    /// periodic frame, about 1 for noise.
    pub aperiodicity: f32,
    /// The frame's energy, `sum y^2` (the autocorrelation at lag 0).
    pub energy: f32,
}

/// A YIN pitch tracker for one sample rate, frame length and pitch range.
pub struct Yin {
    sample_rate: f32,
    frame_length: usize,
    hop_length: usize,
    min_period: usize,
    max_period: usize,
    n_pad: usize,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Yin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yin")
            .field("frame_length", &self.frame_length)
            .field("hop_length", &self.hop_length)
            .field("periods", &(self.min_period..=self.max_period))
            .finish_non_exhaustive()
    }
}

impl Yin {
    /// The arguments must satisfy librosa's checks (`0 < fmin < fmax <= sr/2`,
    /// `sr / fmin < frame_length - 1`); [`ProsodyConfig::validate`] makes sure they do.
    pub fn new(sample_rate: u32, frame_length: usize, hop_length: usize, fmin: f32, fmax: f32) -> Yin {
        let sr = sample_rate as f64;
        let min_period = ((sr / fmax as f64).floor() as usize).max(1);
        let max_period = ((sr / fmin as f64).ceil() as usize).min(frame_length - 1);
        // The autocorrelation up to max_period without wrap-around needs frame_length +
        // max_period points: the next size of the form 2^k or 3 * 2^k, which the FFT does fast.
        let need = frame_length + max_period + 1;
        let n_pad = need.next_power_of_two().min((need.div_ceil(3)).next_power_of_two() * 3);
        let mut planner = RealFftPlanner::<f32>::new();
        Yin {
            sample_rate: sample_rate as f32,
            frame_length,
            hop_length,
            min_period,
            max_period,
            n_pad,
            forward: planner.plan_fft_forward(n_pad),
            inverse: planner.plan_fft_inverse(n_pad),
        }
    }

    /// Frames for `n_samples` samples: `1 + n / hop` for an even frame length, as the STFT's.
    pub fn n_frames(&self, n_samples: usize) -> usize {
        1 + (n_samples + 2 * (self.frame_length / 2)).saturating_sub(self.frame_length) / self.hop_length
    }

    /// The pitch track of a clip, one entry per centred frame.
    pub fn track(&self, samples: &[f32]) -> Vec<YinFrame> {
        let (fl, half) = (self.frame_length, self.frame_length / 2);
        let n_frames = self.n_frames(samples.len());
        let mut buf = self.forward.make_input_vec();
        let mut spectrum = self.forward.make_output_vec();
        let mut acf = self.inverse.make_output_vec();
        let mut scratch_fwd = self.forward.make_scratch_vec();
        let mut scratch_inv = self.inverse.make_scratch_vec();
        let n_lags = self.max_period + 1;
        let mut diff = vec![0f32; n_lags];
        let mut cmnd = vec![0f32; self.max_period - self.min_period + 1];
        let mut out = Vec::with_capacity(n_frames);
        for t in 0..n_frames {
            // The centred frame, zero-padded to the FFT's length.
            centred_frame(samples, t * self.hop_length, half, &mut buf[..fl]);
            buf[fl..].fill(0.0);
            // The energy before each lag, sum_{m<k} y(m)^2, kept in `diff` while the FFT
            // overwrites the frame.
            diff[0] = 0.0;
            for k in 1..n_lags {
                diff[k] = diff[k - 1] + buf[k - 1] * buf[k - 1];
            }
            self.forward.process_with_scratch(&mut buf, &mut spectrum, &mut scratch_fwd).expect("fft sizes");
            for c in spectrum.iter_mut() {
                *c = realfft::num_complex::Complex::new(c.norm_sqr(), 0.0);
            }
            self.inverse.process_with_scratch(&mut spectrum, &mut acf, &mut scratch_inv).expect("fft sizes");
            let scale = 1.0 / self.n_pad as f32;
            let r0 = acf[0] * scale;
            // d(k) = 2 (r(0) - r(k)) - sum_{m<k} y(m)^2, for k in 1..=max_period.
            for k in 1..n_lags {
                diff[k] = 2.0 * (r0 - acf[k] * scale) - diff[k];
            }
            // Normalised by the running mean of d(1..=k).
            let mut running = 0f32;
            for k in 1..n_lags {
                running += diff[k];
                if k >= self.min_period {
                    cmnd[k - self.min_period] = diff[k] / (running / k as f32 + f32::MIN_POSITIVE);
                }
            }
            let index = pick_period(&cmnd);
            let period = (self.min_period + index) as f32 + parabolic_shift(&cmnd, index);
            out.push(YinFrame { f0: self.sample_rate / period, aperiodicity: cmnd[index], energy: r0 });
        }
        out
    }
}

/// The first trough below [`TROUGH_THRESHOLD`], else the global minimum (its first index).
fn pick_period(x: &[f32]) -> usize {
    let n = x.len();
    let is_trough = |i: usize| match i {
        0 => n > 1 && x[0] < x[1],
        i if i == n - 1 => x[i] < x[i - 1],
        i => x[i] < x[i - 1] && x[i] <= x[i + 1],
    };
    if let Some(i) = (0..n).find(|&i| is_trough(i) && x[i] < TROUGH_THRESHOLD) {
        return i;
    }
    let mut best = 0;
    for i in 1..n {
        if x[i] < x[best] {
            best = i;
        }
    }
    best
}

/// Where a parabola through `x[i-1..=i+1]` has its optimum, relative to `i`; 0 at the ends and
/// when the optimum is more than a bin away.
fn parabolic_shift(x: &[f32], i: usize) -> f32 {
    if i == 0 || i + 1 >= x.len() {
        return 0.0;
    }
    let a = x[i + 1] + x[i - 1] - 2.0 * x[i];
    let b = (x[i + 1] - x[i - 1]) / 2.0;
    if b.abs() >= a.abs() { 0.0 } else { -b / a }
}

/// `librosa.feature.zero_crossing_rate(y, frame_length, hop_length, center=True)`.
pub fn zero_crossing_rate(samples: &[f32], frame_length: usize, hop_length: usize) -> Vec<f32> {
    let half = frame_length / 2;
    let n_padded = samples.len() + 2 * half;
    if samples.is_empty() || n_padded < frame_length {
        return Vec::new();
    }
    // Whether each sample of the edge-padded signal is negative (values within the threshold of
    // zero count as zero, which is positive), then the running count of sign changes.
    let negative = |j: usize| {
        let v = samples[j.saturating_sub(half).min(samples.len() - 1)];
        v.abs() > ZERO_THRESHOLD && v.is_sign_negative()
    };
    let mut changes = Vec::with_capacity(n_padded);
    let (mut count, mut previous) = (0u32, negative(0));
    changes.push(0);
    for j in 1..n_padded {
        let now = negative(j);
        count += (now != previous) as u32;
        previous = now;
        changes.push(count);
    }
    // A frame from `start` counts the changes at start + 1 ..= start + frame_length - 1.
    let n_frames = 1 + (n_padded - frame_length) / hop_length;
    (0..n_frames)
        .map(|t| {
            let start = t * hop_length;
            (changes[start + frame_length - 1] - changes[start]) as f32 / frame_length as f32
        })
        .collect()
}

/// The prosody channels of a config: a YIN tracker and the zero-crossing frames.
#[derive(Debug)]
pub struct Prosody {
    yin: Yin,
    frame_length: usize,
    hop_length: usize,
}

impl Prosody {
    /// `config` must be valid for `sample_rate` ([`ProsodyConfig::validate`]).
    pub fn new(config: &ProsodyConfig, sample_rate: u32, hop_length: usize) -> Prosody {
        Prosody {
            yin: Yin::new(sample_rate, config.frame_length, hop_length, config.fmin, config.fmax),
            frame_length: config.frame_length,
            hop_length,
        }
    }

    /// The [`CHANNELS`] of every frame, frames x 4.
    pub fn features(&self, samples: &[f32]) -> FeatureMatrix {
        let track = self.yin.track(samples);
        let zcr = zero_crossing_rate(samples, self.frame_length, self.hop_length);
        let loudest = track.iter().map(|f| f.energy).fold(0f32, f32::max);
        let floor = loudest * 10f32.powf(-SILENT_DB / 10.0);
        let silent = |f: &YinFrame| !(f.energy > floor && f.energy > 0.0);
        let voiced = |f: &YinFrame| !silent(f) && f.aperiodicity < VOICED_APERIODICITY;
        let semitones = |f0: f32, reference: f32| 12.0 * (f0 / reference).log2();
        let median = median(track.iter().filter(|f| voiced(f)).map(|f| f.f0).collect());
        let n_coeffs = CHANNELS.len();
        let mut values = Vec::with_capacity(track.len() * n_coeffs);
        for (t, f) in track.iter().enumerate() {
            let (absolute, relative) = match (voiced(f), median) {
                (true, Some(m)) => (semitones(f.f0, F0_REFERENCE_HZ), semitones(f.f0, m)),
                _ => (0.0, 0.0),
            };
            let periodicity = if silent(f) { 0.0 } else { (1.0 - f.aperiodicity).clamp(0.0, 1.0) };
            values.extend_from_slice(&[absolute, relative, periodicity, zcr.get(t).copied().unwrap_or(0.0)]);
        }
        FeatureMatrix { n_frames: track.len(), n_coeffs, values }
    }
}

/// `numpy.median`: the middle value, or the mean of the two middle values; `None` when empty.
fn median(mut values: Vec<f32>) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(sr: u32, hz: f32, seconds: f32) -> Vec<f32> {
        (0..(sr as f32 * seconds) as usize)
            .map(|i| {
                let phase = 2.0 * std::f32::consts::PI * hz * i as f32 / sr as f32;
                0.3 * (phase.sin() + 0.5 * (2.0 * phase).sin() + 0.25 * (3.0 * phase).sin())
            })
            .collect()
    }

    fn config() -> ProsodyConfig {
        ProsodyConfig { fmin: 60.0, fmax: 500.0, frame_length: 1024 }
    }

    #[test]
    fn a_harmonic_tone_is_voiced_at_its_pitch_and_its_register_is_removed_by_the_relative_channel() {
        for hz in [110.0f32, 220.0] {
            let m = Prosody::new(&config(), 22_050, 512).features(&tone(22_050, hz, 1.0));
            assert_eq!(m.n_frames, 1 + 22_050 / 512);
            // Away from the clip's edges (whose frames are half zeros). YIN's own bias on such a
            // tone is up to 0.1 semitones (librosa.yin gives 24.104 at 110 Hz's frame 6, as here).
            for t in 3..m.n_frames - 3 {
                let f = m.frame(t);
                let want = 12.0 * (hz / F0_REFERENCE_HZ).log2();
                assert!((f[0] - want).abs() < 0.2, "{hz} Hz frame {t}: {} semitones, want {want}", f[0]);
                assert!(f[1].abs() < 0.2, "relative pitch {} at frame {t}", f[1]);
                assert!(f[2] > 1.0 - VOICED_APERIODICITY, "periodicity {} at frame {t}", f[2]);
            }
        }
    }

    #[test]
    fn gain_moves_nothing_and_digital_silence_is_all_zeros() {
        let prosody = Prosody::new(&config(), 22_050, 512);
        let mut clip = tone(22_050, 180.0, 0.6);
        clip.extend(std::iter::repeat_n(0.0, 11_025));
        let loud = prosody.features(&clip);
        let quiet = prosody.features(&clip.iter().map(|v| v * 0.01).collect::<Vec<_>>());
        for (a, b) in loud.values.iter().zip(&quiet.values) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b} at -40 dB");
        }
        let last = loud.frame(loud.n_frames - 1);
        assert_eq!(last, &[0.0, 0.0, 0.0, 0.0], "a frame of digital silence");
        let none = prosody.features(&vec![0.0; 4096]);
        assert!(none.values.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn noise_is_unvoiced_and_crosses_zero_often() {
        let mut state = 1u64;
        let noise: Vec<f32> = (0..22_050)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
            })
            .collect();
        let m = Prosody::new(&config(), 22_050, 512).features(&noise);
        let voiced = (0..m.n_frames).filter(|&t| m.frame(t)[0] != 0.0).count();
        assert!(voiced <= m.n_frames / 10, "{voiced} of {} noise frames voiced", m.n_frames);
        let zcr: f32 = (3..m.n_frames - 3).map(|t| m.frame(t)[3]).sum::<f32>() / (m.n_frames - 6) as f32;
        assert!((zcr - 0.5).abs() < 0.05, "white noise crosses zero at about half the samples, got {zcr}");
    }

    #[test]
    fn median_is_numpys() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
