//! A synthetic speech-emotion corpus, deterministic by seed, named like RAVDESS.
//!
//! Each clip is a source-filter "utterance": a Rosenberg glottal pulse train with jitter and
//! shimmer, breath noise, three formant resonators moving from vowel to vowel, a one-pole
//! spectral tilt, and a syllable envelope. The eight classes differ the way acted emotions do
//! in the literature: pitch level and range, speaking rate, loudness, spectral tilt, voice
//! quality (jitter, breathiness) and contour. Speakers differ in pitch, vocal-tract length and
//! a personal style offset, so held-out speakers are genuinely harder than held-out clips.
//!
//! It is a test and demo corpus: it exercises every stage in seconds without a download. It is
//! not a substitute for recorded speech.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Sample rate of the generated files, in Hz (as RAVDESS).
pub const SYNTH_SAMPLE_RATE: u32 = 48_000;

/// One synthetic clip: its RAVDESS-style file name (without folder) and its samples.
#[derive(Debug, Clone)]
pub struct SynthClip {
    /// `Actor_XX/03-01-EE-II-SS-RR-XX.wav`
    pub relative_path: String,
    pub samples: Vec<f32>,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    pub n_speakers: u32,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Style {
    /// Multiplier of the speaker's f0.
    f0_scale: f32,
    /// Pitch excursion within a syllable, in semitones.
    f0_range: f32,
    /// Syllables per second.
    rate: f32,
    /// Peak amplitude.
    loudness: f32,
    /// One-pole low-pass coefficient: higher is darker (steeper tilt).
    tilt: f32,
    /// Period-to-period f0 perturbation (fraction).
    jitter: f32,
    /// Breath noise relative to voicing.
    breath: f32,
    /// Pitch slope over the utterance, semitones (positive rises).
    slope: f32,
}

/// RAVDESS emotion codes 01..08 in order: neutral, calm, happy, sad, angry, fearful, disgust, surprised.
fn style(emotion_code: u32) -> Style {
    let s = |f0_scale, f0_range, rate, loudness, tilt, jitter, breath, slope| Style {
        f0_scale,
        f0_range,
        rate,
        loudness,
        tilt,
        jitter,
        breath,
        slope,
    };
    match emotion_code {
        1 => s(1.00, 1.5, 4.0, 0.45, 0.55, 0.005, 0.04, -2.0), // neutral
        2 => s(0.95, 1.0, 3.3, 0.35, 0.70, 0.004, 0.08, -2.5), // calm
        3 => s(1.30, 4.5, 5.0, 0.65, 0.35, 0.008, 0.04, 1.0),  // happy
        4 => s(0.88, 0.8, 2.8, 0.28, 0.78, 0.010, 0.15, -3.5), // sad
        5 => s(1.22, 3.0, 5.4, 0.90, 0.20, 0.012, 0.03, -1.0), // angry
        6 => s(1.45, 2.5, 6.0, 0.50, 0.45, 0.030, 0.12, 0.5),  // fearful
        7 => s(0.92, 2.0, 3.5, 0.55, 0.60, 0.025, 0.10, -4.0), // disgust
        _ => s(1.50, 6.0, 4.6, 0.70, 0.35, 0.008, 0.05, 6.0),  // surprised
    }
}

/// Formants (F1, F2, F3) of five vowels, in Hz, for an adult male vocal tract.
const VOWELS: [[f32; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [270.0, 2290.0, 3010.0],
    [300.0, 870.0, 2240.0],
    [530.0, 1840.0, 2480.0],
    [570.0, 840.0, 2410.0],
];
const BANDWIDTHS: [f32; 3] = [70.0, 100.0, 140.0];

#[derive(Debug, Clone, Copy)]
struct Speaker {
    f0: f32,
    formant_scale: f32,
    /// Personal offsets, applied to every style: speakers do not act alike.
    rate_scale: f32,
    range_scale: f32,
    tilt_shift: f32,
    loudness_scale: f32,
}

fn speaker(actor: u32, seed: u64) -> Speaker {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x5eed_0000 + actor as u64));
    let female = actor.is_multiple_of(2);
    Speaker {
        f0: if female { rng.random_range(180.0..240.0) } else { rng.random_range(95.0..135.0) },
        formant_scale: if female { rng.random_range(1.10..1.22) } else { rng.random_range(0.92..1.04) },
        rate_scale: rng.random_range(0.85..1.15),
        range_scale: rng.random_range(0.7..1.3),
        tilt_shift: rng.random_range(-0.08..0.08),
        loudness_scale: rng.random_range(0.8..1.2),
    }
}

/// The RAVDESS design: 8 emotions, two intensities (neutral has one), two statements, two
/// repetitions: 60 clips per speaker. Returns `(relative path, actor, emotion, intensity,
/// statement, repetition)` for every clip, in path order.
pub fn clip_names(n_speakers: u32) -> Vec<(String, u32, u32, u32, u32, u32)> {
    let mut names = Vec::new();
    for actor in 1..=n_speakers {
        for emotion in 1..=8u32 {
            let intensities: &[u32] = if emotion == 1 { &[1] } else { &[1, 2] };
            for &intensity in intensities {
                for statement in 1..=2u32 {
                    for repetition in 1..=2u32 {
                        let name = format!(
                            "Actor_{actor:02}/03-01-{emotion:02}-{intensity:02}-{statement:02}-{repetition:02}-{actor:02}.wav"
                        );
                        names.push((name, actor, emotion, intensity, statement, repetition));
                    }
                }
            }
        }
    }
    names.sort();
    names
}

/// Generates one clip. Deterministic in all arguments.
pub fn synth_clip(seed: u64, actor: u32, emotion: u32, intensity: u32, statement: u32, repetition: u32) -> Vec<f32> {
    let sr = SYNTH_SAMPLE_RATE as f32;
    let spk = speaker(actor, seed);
    let base = style(emotion);
    let neutral = style(1);
    // Strong intensity exaggerates the departure from neutral.
    let k = if intensity == 2 { 1.6 } else { 1.0 };
    let lerp = |n: f32, e: f32| n + (e - n) * k;
    let clip_seed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(((actor * 1000 + emotion * 100 + intensity * 10 + statement) * 10 + repetition) as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(clip_seed);
    let mut vary = |x: f32, spread: f32| x * (1.0 + rng.random_range(-spread..spread));
    let st = Style {
        f0_scale: vary(lerp(neutral.f0_scale, base.f0_scale), 0.06),
        f0_range: vary(lerp(neutral.f0_range, base.f0_range) * spk.range_scale, 0.25),
        rate: vary(lerp(neutral.rate, base.rate) * spk.rate_scale, 0.10),
        loudness: vary(lerp(neutral.loudness, base.loudness) * spk.loudness_scale, 0.15).clamp(0.05, 0.98),
        tilt: (vary(lerp(neutral.tilt, base.tilt), 0.10) + spk.tilt_shift).clamp(0.05, 0.92),
        jitter: vary(lerp(neutral.jitter, base.jitter), 0.3).max(0.0),
        breath: vary(lerp(neutral.breath, base.breath), 0.3).max(0.0),
        slope: lerp(neutral.slope, base.slope) + rng.random_range(-1.0..1.0),
    };

    // The two statements have different vowel sequences, 7 syllables each.
    let vowels: [usize; 7] = if statement == 1 { [1, 0, 0, 1, 4, 3, 4] } else { [4, 0, 1, 1, 2, 3, 4] };
    let n_syll = vowels.len();
    let lead = rng.random_range(0.35..0.65);
    let tail = rng.random_range(0.35..0.65);
    let syll_dur = 1.0 / st.rate;
    let speech_dur = n_syll as f32 * syll_dur;
    let total = ((lead + speech_dur + tail) * sr) as usize;

    let mut out = vec![0f32; total];
    let mut phase = 0f32;
    let mut period_jitter = 1f32;
    let mut prev_glottal = 0f32;
    let mut tilt_state = 0f32;
    let mut resonators = [Resonator::default(); 3];
    let mut noise_rng = ChaCha8Rng::seed_from_u64(clip_seed ^ 0xA5A5);
    for (n, o) in out.iter_mut().enumerate() {
        let t = n as f32 / sr - lead;
        let (env, syll_idx, syll_pos) = if t < 0.0 || t >= speech_dur {
            (0.0, 0, 0.0)
        } else {
            let idx = ((t / syll_dur) as usize).min(n_syll - 1);
            let pos = t / syll_dur - idx as f32;
            // Syllable envelope: a raised cosine over 85% of the syllable, then a short gap.
            let e = if pos < 0.85 { (std::f32::consts::PI * pos / 0.85).sin().powf(0.7) } else { 0.0 };
            (e, idx, pos)
        };
        let progress = (t / speech_dur).clamp(0.0, 1.0);
        let semitones = st.slope * progress
            + st.f0_range * (std::f32::consts::PI * syll_pos).sin() * (if syll_idx % 2 == 0 { 1.0 } else { -0.5 });
        let f0 = spk.f0 * st.f0_scale * 2f32.powf(semitones / 12.0) * period_jitter;
        phase += f0 / sr;
        if phase >= 1.0 {
            phase -= 1.0;
            period_jitter = 1.0 + noise_rng.random_range(-st.jitter..=st.jitter);
        }
        // Rosenberg pulse, differentiated (lip radiation).
        let glottal = if phase < 0.4 {
            0.5 * (1.0 - (std::f32::consts::PI * phase / 0.4).cos())
        } else if phase < 0.56 {
            (std::f32::consts::PI * (phase - 0.4) / 0.32).cos()
        } else {
            0.0
        };
        let voiced = (glottal - prev_glottal) * 20.0;
        prev_glottal = glottal;
        let noise: f32 = noise_rng.random_range(-1.0..1.0);
        let source = env * (voiced + st.breath * 4.0 * noise);
        tilt_state = (1.0 - st.tilt) * source + st.tilt * tilt_state;

        // Formants glide from this syllable's vowel to the next one.
        let v0 = VOWELS[vowels[syll_idx]];
        let v1 = VOWELS[vowels[(syll_idx + 1).min(n_syll - 1)]];
        let glide = ((syll_pos - 0.6) / 0.4).clamp(0.0, 1.0);
        let mut y = tilt_state;
        for (i, r) in resonators.iter_mut().enumerate() {
            let f = (v0[i] + (v1[i] - v0[i]) * glide) * spk.formant_scale;
            y = r.process(y, f, BANDWIDTHS[i], sr);
        }
        *o = y;
    }
    // Normalise the peak to the style's loudness, then add a faint recording-noise floor.
    let peak = out.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-9);
    let gain = st.loudness / peak;
    for o in &mut out {
        *o = *o * gain + noise_rng.random_range(-1.0..1.0) * 3e-4;
    }
    out
}

/// A two-pole resonator with unity gain at DC.
#[derive(Debug, Clone, Copy, Default)]
struct Resonator {
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn process(&mut self, x: f32, freq: f32, bandwidth: f32, sr: f32) -> f32 {
        let r = (-std::f32::consts::PI * bandwidth / sr).exp();
        let c = -r * r;
        let b = 2.0 * r * (2.0 * std::f32::consts::PI * freq / sr).cos();
        let a = 1.0 - b - c;
        let y = a * x + b * self.y1 + c * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}
