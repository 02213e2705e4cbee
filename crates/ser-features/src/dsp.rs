//! MFCC, log-mel and deltas, defined exactly as librosa 0.11 defines them:
//!
//! - `stft`: periodic Hann window of `n_fft`, frames centred by `n_fft/2` zeros on both sides
//!   (librosa >= 0.10 pads with zeros), so a clip of `n` samples has `1 + n / hop` frames;
//!   power spectrogram `|X|^2`.
//! - `filters.mel`: Slaney mel scale (linear below 1 kHz, logarithmic above), triangular bands
//!   between `fmin` and `fmax` with Slaney area normalisation (`2 / (f[m+2] - f[m])`).
//! - `power_to_db`: `10 log10(max(1e-10, S))` with ref 1.0, floored at `max - top_db` over the
//!   whole clip.
//! - `mfcc`: orthonormal DCT-II of the dB mel spectrogram, first `n_mfcc` coefficients.
//! - `delta`: Savitzky-Golay derivative, width 9, polynomial order = derivative order,
//!   `mode="interp"` (the edge frames take the derivative of the fit over the first/last 9).
//!
//! Besides librosa, vocal-tract-length perturbation for training copies: the mel filterbank
//! evaluated on a stretched frequency axis ([`MelBasis::slaney_warped`]).
//!
//! Everything here is a function of values; no IO.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use crate::config::{ClipNorm, FeatureKind, FeaturesConfig, PadMode};
pub use crate::frames::{FeatureMatrix, centred_frame};
use crate::prosody::Prosody;

/// `power_to_db`'s `amin`: the smallest power kept before the logarithm.
pub const AMIN: f32 = 1e-10;
/// Width of the delta window in frames (librosa's default).
pub const DELTA_WIDTH: usize = 9;

/// The features of one clip: the matrix as stored, and the frame count before pad or cut.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipFeatures {
    pub matrix: FeatureMatrix,
    pub n_frames_source: usize,
}

/// Precomputed window, FFT plan, mel basis and DCT for one [`FeaturesConfig`]. Cheap to share
/// between threads; build once per run.
pub struct Analyzer {
    config: FeaturesConfig,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    mel: MelBasis,
    /// `n_mfcc x n_mels`, row-major.
    dct: Vec<f32>,
    /// The prosody channels, when configured.
    prosody: Option<Prosody>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Analyzer {
    /// The config must be valid ([`FeaturesConfig::validate`]).
    pub fn new(config: &FeaturesConfig) -> Analyzer {
        let n_fft = config.n_fft;
        let window = hann_periodic(n_fft);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let mel = filterbank(config, 1.0);
        let dct = dct_ortho(config.n_mfcc.min(config.n_mels), config.n_mels);
        let prosody = config.prosody.as_ref().map(|p| Prosody::new(p, config.sample_rate, config.hop_length));
        Analyzer { config: config.clone(), window, fft, mel, dct, prosody }
    }

    pub fn config(&self) -> &FeaturesConfig {
        &self.config
    }

    /// Frames librosa gives for `n_samples` samples with centred frames.
    pub fn n_frames(&self, n_samples: usize) -> usize {
        1 + n_samples / self.config.hop_length
    }

    /// The fewest samples (at the analysis rate) this config can analyse: one full FFT window,
    /// and enough frames for the delta window when deltas are on.
    pub fn min_samples(&self) -> usize {
        let for_deltas = if self.config.deltas { (DELTA_WIDTH - 1) * self.config.hop_length } else { 0 };
        self.config.n_fft.max(for_deltas)
    }

    /// The dB mel spectrogram (`power_to_db(melspectrogram(y))`), frames x n_mels, and the
    /// floor that `top_db` applied (the dB value of silence in this clip).
    pub fn log_mel(&self, samples: &[f32]) -> (FeatureMatrix, f32) {
        self.log_mel_through(samples, &self.mel)
    }

    /// [`Analyzer::log_mel`] through the filterbank `mel`.
    fn log_mel_through(&self, samples: &[f32], mel: &MelBasis) -> (FeatureMatrix, f32) {
        let n_fft = self.config.n_fft;
        let hop = self.config.hop_length;
        let n_mels = self.config.n_mels;
        let n_frames = self.n_frames(samples.len());
        let half = n_fft / 2;

        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; n_fft / 2 + 1];
        let mut values = vec![0f32; n_frames * n_mels];
        let mut max_db = f32::NEG_INFINITY;

        for frame_idx in 0..n_frames {
            centred_frame(samples, frame_idx * hop, half, &mut frame);
            for (x, w) in frame.iter_mut().zip(&self.window) {
                *x *= w;
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("buffer sizes come from the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            let row = &mut values[frame_idx * n_mels..(frame_idx + 1) * n_mels];
            mel.apply(&power, row);
            for v in row.iter_mut() {
                *v = 10.0 * v.max(AMIN).log10();
                max_db = max_db.max(*v);
            }
        }
        let floor = match self.config.top_db {
            Some(top_db) => max_db - top_db,
            None => 10.0 * AMIN.log10(),
        };
        if self.config.top_db.is_some() {
            for v in &mut values {
                *v = v.max(floor);
            }
        }
        (FeatureMatrix { n_frames, n_coeffs: n_mels, values }, floor)
    }

    /// MFCCs of the clip, frames x n_mfcc, and the MFCC frame of silence (the DCT of the floor).
    pub fn mfcc(&self, samples: &[f32]) -> (FeatureMatrix, Vec<f32>) {
        self.mfcc_through(samples, &self.mel)
    }

    fn mfcc_through(&self, samples: &[f32], mel: &MelBasis) -> (FeatureMatrix, Vec<f32>) {
        let (log_mel, floor) = self.log_mel_through(samples, mel);
        let n_mfcc = self.config.n_mfcc;
        let mut values = vec![0f32; log_mel.n_frames * n_mfcc];
        for frame_idx in 0..log_mel.n_frames {
            self.dct_frame(log_mel.frame(frame_idx), &mut values[frame_idx * n_mfcc..(frame_idx + 1) * n_mfcc]);
        }
        let mut silence = vec![0f32; n_mfcc];
        self.dct_frame(&vec![floor; self.config.n_mels], &mut silence);
        (FeatureMatrix { n_frames: log_mel.n_frames, n_coeffs: n_mfcc, values }, silence)
    }

    fn dct_frame(&self, log_mel: &[f32], out: &mut [f32]) {
        let n_mels = self.config.n_mels;
        for (k, o) in out.iter_mut().enumerate() {
            *o = dot(&self.dct[k * n_mels..(k + 1) * n_mels], log_mel);
        }
    }

    /// The clip as the features see it: trimmed of leading and trailing silence (`trim_db`), at
    /// least [`Analyzer::min_samples`] long, and scaled to `loudness_dbfs`; the clip itself when
    /// neither is configured.
    pub fn prepare<'a>(&self, samples: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        let mut clip = std::borrow::Cow::Borrowed(samples);
        if let Some(top_db) = self.config.trim_db {
            let (start, end) = trim_span(samples, top_db, self.config.n_fft, self.config.hop_length);
            let (start, end) = widen(start, end, self.min_samples(), samples.len());
            clip = std::borrow::Cow::Borrowed(&samples[start..end]);
        }
        if let Some(target) = self.config.loudness_dbfs {
            let mean_square = clip.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / clip.len().max(1) as f64;
            if mean_square > 0.0 {
                let gain = 10f64.powf((target as f64 - 10.0 * mean_square.log10()) / 20.0) as f32;
                clip = std::borrow::Cow::Owned(clip.iter().map(|v| v * gain).collect());
            }
        }
        clip
    }

    /// The configured features of a clip at the analysis sample rate: the clip
    /// [`Analyzer::prepare`]d, base coefficients, deltas if configured, the clip normalisation,
    /// the prosody channels if configured, then pad or cut to the configured frame count.
    ///
    /// The caller guarantees `samples.len() >= self.min_samples()`.
    pub fn features(&self, samples: &[f32]) -> ClipFeatures {
        self.features_through(samples, &self.mel)
    }

    /// [`Analyzer::features`] of the clip as a voice of another vocal-tract length: its spectrum
    /// stretched along frequency by `alpha` ([`MelBasis::slaney_warped`]; the augmentation's
    /// `vtlp`). `alpha` 1 is [`Analyzer::features`].
    pub fn features_vtlp(&self, samples: &[f32], alpha: f32) -> ClipFeatures {
        if alpha == 1.0 {
            return self.features(samples);
        }
        self.features_through(samples, &filterbank(&self.config, alpha))
    }

    fn features_through(&self, samples: &[f32], mel: &MelBasis) -> ClipFeatures {
        let samples = &self.prepare(samples)[..];
        let (base, silence) = match self.config.kind {
            FeatureKind::Mfcc => self.mfcc_through(samples, mel),
            FeatureKind::LogMel => {
                let (m, floor) = self.log_mel_through(samples, mel);
                (m, vec![floor; self.config.n_mels])
            }
        };
        let n_frames_source = base.n_frames;
        let (matrix, silence) = if self.config.deltas {
            let d1 = delta(&base, 1);
            let d2 = delta(&base, 2);
            let mut silence3 = silence;
            silence3.resize(3 * base.n_coeffs, 0.0);
            (stack_coeffs(&[&base, &d1, &d2]), silence3)
        } else {
            (base, silence)
        };
        let (n_base, n_all) = (self.config.n_base_coeffs(), matrix.n_coeffs);
        let (matrix, silence) = match (self.config.normalize, self.config.kind) {
            (ClipNorm::None, _) => (matrix, silence),
            (ClipNorm::Mean, _) => subtract_clip_mean(matrix, silence, 0..n_all, false),
            // A level moves every log-mel band alike: in the cepstrum that is c0 alone (the
            // orthonormal DCT's constant), in log-mel the mean over every band.
            (ClipNorm::Level, FeatureKind::Mfcc) => subtract_clip_mean(matrix, silence, 0..1, false),
            (ClipNorm::Level, FeatureKind::LogMel) => subtract_clip_mean(matrix, silence, 0..n_base, true),
        };
        // Prosody after the normalisation, which it does not need; silence is 0 in every channel.
        let (matrix, silence) = match &self.prosody {
            None => (matrix, silence),
            Some(prosody) => {
                // The same centred frames as the spectrum's, 1 + n / hop; fix_length only guards.
                let channels = prosody.features(samples);
                let channels = fix_length(channels, matrix.n_frames, &[0.0; crate::prosody::CHANNELS.len()]);
                let mut silence = silence;
                silence.resize(silence.len() + channels.n_coeffs, 0.0);
                (stack_coeffs(&[&matrix, &channels]), silence)
            }
        };
        let n_all = matrix.n_coeffs;
        let matrix = match self.config.frames {
            None => matrix,
            Some(n_frames) => match self.config.pad {
                PadMode::Zeros => fix_length(matrix, n_frames, &vec![0.0; n_all]),
                PadMode::Silence => fix_length(matrix, n_frames, &silence),
                PadMode::Repeat => repeat_to_length(matrix, n_frames),
            },
        };
        ClipFeatures { matrix, n_frames_source }
    }
}

/// The configured mel filterbank, heard through a vocal-tract-length warp of `alpha` (1: none).
fn filterbank(config: &FeaturesConfig, alpha: f32) -> MelBasis {
    MelBasis::slaney_warped(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax_hz(), alpha)
}

/// `librosa.effects.trim(y, top_db, frame_length, hop_length)`'s span: from the first to the
/// last frame (centred, zero-padded, as `librosa.feature.rms`) whose mean square is within
/// `top_db` of the loudest frame's, in samples `[first * hop, min(len, (last + 1) * hop))`. A
/// clip with no frame above the floor is kept whole.
pub fn trim_span(samples: &[f32], top_db: f32, frame_length: usize, hop: usize) -> (usize, usize) {
    let n = samples.len();
    if n == 0 {
        return (0, 0);
    }
    // Prefix sums of squares over the zero-padded signal, so each frame's energy is O(1).
    let half = frame_length / 2;
    let mut prefix = vec![0f64; n + 1];
    for (i, v) in samples.iter().enumerate() {
        prefix[i + 1] = prefix[i] + (*v as f64) * (*v as f64);
    }
    let energy = |start: isize| -> f64 {
        let lo = start.clamp(0, n as isize) as usize;
        let hi = (start + frame_length as isize).clamp(0, n as isize) as usize;
        prefix[hi] - prefix[lo]
    };
    let n_frames = 1 + n / hop;
    let mean_square: Vec<f64> =
        (0..n_frames).map(|t| energy((t * hop) as isize - half as isize) / frame_length as f64).collect();
    let amin = AMIN as f64;
    let loudest = mean_square.iter().copied().fold(0f64, f64::max).max(amin);
    let floor = 10.0 * loudest.log10() - top_db as f64;
    let loud = |ms: f64| 10.0 * ms.max(amin).log10() > floor;
    match (mean_square.iter().position(|m| loud(*m)), mean_square.iter().rposition(|m| loud(*m))) {
        (Some(first), Some(last)) => (first * hop, ((last + 1) * hop).min(n)),
        _ => (0, n),
    }
}

/// `[start, end)` widened symmetrically (within `[0, len)`) to at least `min_len` samples.
pub(crate) fn widen(start: usize, end: usize, min_len: usize, len: usize) -> (usize, usize) {
    if end - start >= min_len || len <= min_len {
        return if len <= min_len { (0, len) } else { (start, end) };
    }
    let missing = min_len - (end - start);
    let start = start.saturating_sub(missing.div_ceil(2));
    let end = (start + min_len).min(len);
    (end - min_len, end)
}

/// Subtracts the mean over the frames (summed in f64) of each coefficient in `coeffs`, or with
/// `shared` the one mean of all of them, from the matrix and from the silence frame that may pad
/// it.
fn subtract_clip_mean(
    mut x: FeatureMatrix,
    mut silence: Vec<f32>,
    coeffs: std::ops::Range<usize>,
    shared: bool,
) -> (FeatureMatrix, Vec<f32>) {
    if x.n_frames == 0 {
        return (x, silence);
    }
    let mut mean = vec![0f64; coeffs.len()];
    for frame in x.values.chunks_exact(x.n_coeffs) {
        for (m, v) in mean.iter_mut().zip(&frame[coeffs.clone()]) {
            *m += *v as f64;
        }
    }
    if shared {
        let all = mean.iter().sum::<f64>() / mean.len().max(1) as f64;
        mean.iter_mut().for_each(|m| *m = all);
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / x.n_frames as f64) as f32).collect();
    for frame in x.values.chunks_exact_mut(x.n_coeffs) {
        for (v, m) in frame[coeffs.clone()].iter_mut().zip(&mean) {
            *v -= m;
        }
    }
    for (v, m) in silence[coeffs].iter_mut().zip(&mean) {
        *v -= m;
    }
    (x, silence)
}

/// `sum(a[i] * b[i])` in f32 with eight independent accumulators, so it vectorises.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let split = n - n % 8;
    let mut acc = [0f32; 8];
    for (x, y) in a[..split].chunks_exact(8).zip(b[..split].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in a[split..].iter().zip(&b[split..]) {
        sum += x * y;
    }
    sum
}

/// `scipy.signal.get_window("hann", n, fftbins=True)`.
pub fn hann_periodic(n: usize) -> Vec<f32> {
    (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect()
}

/// Slaney's mel scale (librosa `hz_to_mel(htk=False)`).
pub fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ { min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep } else { hz / F_SP }
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel { MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp() } else { F_SP * mel }
}

/// The mel filterbank, stored sparsely: each band is a run of non-zero weights.
#[derive(Debug, Clone)]
pub struct MelBasis {
    bands: Vec<(usize, Vec<f32>)>,
}

impl MelBasis {
    /// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")`, computed
    /// in f64 and stored as f32 like librosa's default dtype.
    pub fn slaney(sample_rate: u32, n_fft: usize, n_mels: usize, fmin: f32, fmax: f32) -> MelBasis {
        MelBasis::from_triangles(sample_rate, n_fft, n_mels, fmin, fmax, |f| (f, 1.0))
    }

    /// [`MelBasis::slaney`] heard through vocal-tract-length perturbation (Jaitly & Hinton, 2013):
    /// the spectrum stretched along frequency by `alpha`, so that what lay at `f` lies at
    /// `w(f)`, `w(f) = alpha f` up to a break at `0.8 nyquist min(1, 1/alpha)` and linear from
    /// there to `w(nyquist) = nyquist` (the spectrum keeps its span). Each band weighs
    /// bin `f` by the plain triangle at `w(f)` times `w'(f)`: the band sums the energy the plain
    /// band would sum over the stretched spectrum. `alpha` 1 is [`MelBasis::slaney`] exactly.
    pub fn slaney_warped(sample_rate: u32, n_fft: usize, n_mels: usize, fmin: f32, fmax: f32, alpha: f32) -> MelBasis {
        if alpha == 1.0 {
            return MelBasis::slaney(sample_rate, n_fft, n_mels, fmin, fmax);
        }
        let alpha = alpha as f64;
        let nyquist = sample_rate as f64 / 2.0;
        let knee = 0.8 * nyquist * (1.0 / alpha).min(1.0);
        let upper_slope = (nyquist - alpha * knee) / (nyquist - knee);
        let warp = |f: f64| {
            if f <= knee { (alpha * f, alpha) } else { (alpha * knee + (f - knee) * upper_slope, upper_slope) }
        };
        MelBasis::from_triangles(sample_rate, n_fft, n_mels, fmin, fmax, warp)
    }

    /// The Slaney-normalised triangles between `fmin` and `fmax`, each bin's frequency `f` seen at
    /// `warp(f) = (w(f), w'(f))` and its weight scaled by `w'(f)`.
    fn from_triangles(
        sample_rate: u32,
        n_fft: usize,
        n_mels: usize,
        fmin: f32,
        fmax: f32,
        warp: impl Fn(f64) -> (f64, f64),
    ) -> MelBasis {
        let n_bins = n_fft / 2 + 1;
        let fft_freqs: Vec<(f64, f64)> =
            (0..n_bins).map(|k| warp(k as f64 * sample_rate as f64 / n_fft as f64)).collect();
        let (mel_min, mel_max) = (hz_to_mel(fmin as f64), hz_to_mel(fmax as f64));
        let mel_f: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let bands = (0..n_mels)
            .map(|m| {
                let (lo, mid, hi) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
                let enorm = 2.0 / (hi - lo);
                let weights: Vec<f32> = fft_freqs
                    .iter()
                    .map(|&(f, slope)| {
                        let lower = (f - lo) / (mid - lo);
                        let upper = (hi - f) / (hi - mid);
                        (lower.min(upper).max(0.0) * enorm * slope) as f32
                    })
                    .collect();
                let first = weights.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = weights.iter().rposition(|&w| w != 0.0).map_or(first, |i| i + 1);
                (first, weights[first..last].to_vec())
            })
            .collect();
        MelBasis { bands }
    }

    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    /// `out[m] = sum_k W[m, k] * power[k]`.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for ((first, weights), o) in self.bands.iter().zip(out.iter_mut()) {
            let bins = &power[*first..*first + weights.len()];
            *o = dot(weights, bins);
        }
    }

    /// The dense `n_mels x n_bins` matrix (for tests and interop).
    pub fn dense(&self, n_bins: usize) -> Vec<Vec<f32>> {
        self.bands
            .iter()
            .map(|(first, weights)| {
                let mut row = vec![0f32; n_bins];
                row[*first..*first + weights.len()].copy_from_slice(weights);
                row
            })
            .collect()
    }
}

/// Orthonormal DCT-II basis (`scipy.fft.dct(type=2, norm="ortho")`), `n_out x n_in`, row-major.
pub fn dct_ortho(n_out: usize, n_in: usize) -> Vec<f32> {
    let mut basis = Vec::with_capacity(n_out * n_in);
    for k in 0..n_out {
        let scale = if k == 0 { (1.0 / n_in as f64).sqrt() } else { (2.0 / n_in as f64).sqrt() };
        for n in 0..n_in {
            let angle = std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / (2 * n_in) as f64;
            basis.push((scale * angle.cos()) as f32);
        }
    }
    basis
}

/// `librosa.feature.delta(x, width=9, order, axis=time, mode="interp")`: the Savitzky-Golay
/// derivative of polynomial order `order`. For order 1 and 2 the interpolated edge frames equal
/// the nearest full-window frame, so edges repeat it. Needs at least [`DELTA_WIDTH`] frames.
pub fn delta(x: &FeatureMatrix, order: usize) -> FeatureMatrix {
    assert!(order == 1 || order == 2, "delta order must be 1 or 2");
    let half = (DELTA_WIDTH / 2) as isize;
    let coeffs: Vec<f64> = (-half..=half)
        .map(|n| {
            let n = n as f64;
            if order == 1 { n / 60.0 } else { (n * n - 20.0 / 3.0) / 154.0 }
        })
        .collect();
    let (n_frames, n_coeffs) = (x.n_frames, x.n_coeffs);
    assert!(n_frames >= DELTA_WIDTH, "delta needs at least {DELTA_WIDTH} frames, got {n_frames}");
    let mut values = vec![0f32; n_frames * n_coeffs];
    let half = half as usize;
    for t in 0..n_frames {
        let centre = t.clamp(half, n_frames - 1 - half);
        for c in 0..n_coeffs {
            let mut acc = 0f64;
            for (j, w) in coeffs.iter().enumerate() {
                acc += w * x.values[(centre + j - half) * n_coeffs + c] as f64;
            }
            values[t * n_coeffs + c] = acc as f32;
        }
    }
    FeatureMatrix { n_frames, n_coeffs, values }
}

/// Concatenates matrices with the same frame count along the coefficient axis.
pub fn stack_coeffs(parts: &[&FeatureMatrix]) -> FeatureMatrix {
    let n_frames = parts[0].n_frames;
    let n_coeffs: usize = parts.iter().map(|p| p.n_coeffs).sum();
    let mut values = Vec::with_capacity(n_frames * n_coeffs);
    for t in 0..n_frames {
        for p in parts {
            values.extend_from_slice(p.frame(t));
        }
    }
    FeatureMatrix { n_frames, n_coeffs, values }
}

/// Cuts to `n_frames`, or fills the missing frames with the clip's own frames from its first,
/// as often as it takes (`numpy.pad(mode="wrap")` along time). A clip without frames, with
/// nothing to repeat, is filled with zeros.
pub fn repeat_to_length(mut x: FeatureMatrix, n_frames: usize) -> FeatureMatrix {
    if x.n_frames == 0 {
        let zeros = vec![0.0; x.n_coeffs];
        return fix_length(x, n_frames, &zeros);
    }
    let clip = x.n_frames * x.n_coeffs;
    let want = n_frames * x.n_coeffs;
    x.values.truncate(want);
    while x.values.len() < want {
        let take = (want - x.values.len()).min(clip);
        x.values.extend_from_within(..take);
    }
    x.n_frames = n_frames;
    x
}

/// Cuts to `n_frames`, or pads with copies of `fill` (one frame).
pub fn fix_length(mut x: FeatureMatrix, n_frames: usize, fill: &[f32]) -> FeatureMatrix {
    debug_assert_eq!(fill.len(), x.n_coeffs);
    if x.n_frames >= n_frames {
        x.values.truncate(n_frames * x.n_coeffs);
    } else {
        for _ in x.n_frames..n_frames {
            x.values.extend_from_slice(fill);
        }
    }
    x.n_frames = n_frames;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The band that takes most of a spectrum holding one bin.
    fn loudest_band(mel: &MelBasis, n_bins: usize, bin: usize) -> usize {
        let mut power = vec![0f32; n_bins];
        power[bin] = 1.0;
        let mut out = vec![0f32; mel.n_mels()];
        mel.apply(&power, &mut out);
        (0..out.len()).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap()
    }

    #[test]
    fn a_warped_filterbank_hears_a_voice_stretched_along_frequency() {
        let (sr, n_fft, n_mels) = (22_050, 2048, 128);
        let n_bins = n_fft / 2 + 1;
        let hz_per_bin = sr as f32 / n_fft as f32;
        let plain = MelBasis::slaney(sr, n_fft, n_mels, 0.0, 11_025.0);
        assert_eq!(MelBasis::slaney_warped(sr, n_fft, n_mels, 0.0, 11_025.0, 1.0).bands, plain.bands);
        for alpha in [0.85f32, 1.15] {
            let warped = MelBasis::slaney_warped(sr, n_fft, n_mels, 0.0, 11_025.0, alpha);
            // A formant at 500 Hz or 2 kHz (below the knee) is heard at alpha times its frequency.
            for hz in [500.0f32, 2000.0] {
                let bin = (hz / hz_per_bin).round() as usize;
                let moved = (hz * alpha / hz_per_bin).round() as usize;
                let (got, want) = (loudest_band(&warped, n_bins, bin), loudest_band(&plain, n_bins, moved));
                assert!(got.abs_diff(want) <= 1, "alpha {alpha}, {hz} Hz: band {got}, the plain bank's {want}");
                assert_ne!(got, loudest_band(&plain, n_bins, bin), "alpha {alpha}, {hz} Hz: moved");
            }
            // The spectrum keeps its span: the top band still hears the top of it. A flat spectrum
            // stays flat: stretched, each band sums the same energy (w' weighs the narrower span).
            assert_eq!(loudest_band(&warped, n_bins, n_bins - 2), n_mels - 1, "alpha {alpha}");
            let flat = vec![1f32; n_bins];
            let (mut a, mut b) = (vec![0f32; n_mels], vec![0f32; n_mels]);
            warped.apply(&flat, &mut a);
            plain.apply(&flat, &mut b);
            let band = 60;
            assert!(
                (a[band] / b[band] - 1.0).abs() < 0.05,
                "alpha {alpha}: band {band} {} against {}",
                a[band],
                b[band]
            );
        }
    }
}
