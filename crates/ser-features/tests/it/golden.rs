//! MFCC, log-mel and deltas against librosa 0.11, on fixtures written by
//! `tests/data/make_golden.py` (the Python that produced them is in that file).

use ser_features::audio::{decode_audio, resample};
use ser_features::dsp::{Analyzer, delta};
use ser_features::{ClipNorm, FeaturesConfig, PadMode};

use crate::data;

#[derive(serde::Deserialize)]
struct Golden {
    sr: u32,
    n_samples: usize,
    mfcc: Vec<Vec<f32>>,
    #[serde(default)]
    log_mel: Vec<Vec<f32>>,
    #[serde(default)]
    delta: Vec<Vec<f32>>,
    #[serde(default)]
    delta2: Vec<Vec<f32>>,
}

fn golden(name: &str) -> Golden {
    serde_json::from_str(&std::fs::read_to_string(data(name)).unwrap()).unwrap()
}

fn variable_length() -> FeaturesConfig {
    FeaturesConfig { frames: None, ..FeaturesConfig::reference() }
}

/// Largest absolute difference, and the largest absolute expected value.
#[track_caller]
fn check(got: &[f32], n_coeffs: usize, expect: &[Vec<f32>], max_abs_diff: f32) {
    assert_eq!(got.len() / n_coeffs, expect.len(), "frame count");
    let mut worst = (0f32, 0, 0);
    for (t, row) in expect.iter().enumerate() {
        assert_eq!(row.len(), n_coeffs);
        for (c, e) in row.iter().enumerate() {
            let d = (got[t * n_coeffs + c] - e).abs();
            if d > worst.0 {
                worst = (d, t, c);
            }
        }
    }
    assert!(
        worst.0 <= max_abs_diff,
        "max |ours - librosa| = {} at frame {} coeff {} (allowed {max_abs_diff})",
        worst.0,
        worst.1,
        worst.2
    );
}

fn tone_22050() -> (Vec<f32>, Golden) {
    let bytes = std::fs::read(data("tone_22050.wav")).unwrap();
    let audio = decode_audio(&bytes, 60.0).unwrap();
    let g = golden("tone_22050.librosa.json");
    assert_eq!(audio.sample_rate, g.sr);
    assert_eq!(audio.samples.len(), g.n_samples);
    (audio.samples, g)
}

// MFCC values span about -600..200 here; 2e-3 absolute is float32 rounding noise of
// librosa's own float32 pipeline.
#[test]
fn mfcc_matches_librosa() {
    let (samples, g) = tone_22050();
    let (mfcc, _) = Analyzer::new(&variable_length()).mfcc(&samples);
    check(&mfcc.values, 40, &g.mfcc, 2e-3);
}

#[test]
fn log_mel_matches_librosa() {
    let (samples, g) = tone_22050();
    let (log_mel, _) = Analyzer::new(&variable_length()).log_mel(&samples);
    check(&log_mel.values, 128, &g.log_mel, 2e-3);
}

#[test]
fn deltas_match_librosa() {
    let (samples, g) = tone_22050();
    let (mfcc, _) = Analyzer::new(&variable_length()).mfcc(&samples);
    check(&delta(&mfcc, 1).values, 40, &g.delta, 2e-4);
    check(&delta(&mfcc, 2).values, 40, &g.delta2, 2e-4);
}

#[test]
fn features_with_deltas_stack_base_delta_delta2_per_frame() {
    let (samples, g) = tone_22050();
    let config = FeaturesConfig { deltas: true, ..variable_length() };
    let features = Analyzer::new(&config).features(&samples);
    assert_eq!(features.matrix.n_coeffs, 120);
    let frame = features.matrix.frame(10);
    assert!((frame[0] - g.mfcc[10][0]).abs() < 2e-3);
    assert!((frame[40] - g.delta[10][0]).abs() < 2e-4);
    assert!((frame[80] - g.delta2[10][0]).abs() < 2e-4);
}

#[test]
fn clip_mean_normalisation_centres_each_coefficient_before_padding() {
    let (samples, g) = tone_22050();
    let plain = Analyzer::new(&variable_length()).features(&samples).matrix;
    let normed =
        Analyzer::new(&FeaturesConfig { normalize: ClipNorm::Mean, ..variable_length() }).features(&samples).matrix;
    let (frames, coeffs) = (plain.n_frames, plain.n_coeffs);
    assert_eq!((normed.n_frames, normed.n_coeffs), (frames, coeffs));
    for c in 0..coeffs {
        let mean: f32 = (0..frames).map(|t| plain.frame(t)[c]).sum::<f32>() / frames as f32;
        let centred: f32 = (0..frames).map(|t| normed.frame(t)[c]).sum::<f32>() / frames as f32;
        assert!(centred.abs() < 1e-3, "coefficient {c}: mean {centred} after normalisation");
        for t in [0, frames / 2, frames - 1] {
            assert!((normed.frame(t)[c] - (plain.frame(t)[c] - mean)).abs() < 1e-3);
        }
    }
    // Padding comes after: zero frames sit at the clip's mean; silence frames shift with it.
    let padded = FeaturesConfig { normalize: ClipNorm::Mean, frames: Some(frames + 10), ..FeaturesConfig::reference() };
    let m = Analyzer::new(&padded).features(&samples).matrix;
    assert!(m.frame(frames + 5).iter().all(|v| *v == 0.0));
    let silence = FeaturesConfig { pad: PadMode::Silence, ..padded };
    let s = Analyzer::new(&silence).features(&samples).matrix;
    assert!(s.frame(frames + 5)[0] < s.frame(frames / 2)[0], "silence stays below speech in c0");
    assert!(g.sr > 0);
    // Absent from the stored config when off: the reference's config hash does not change.
    assert!(!FeaturesConfig::reference().to_json().contains("normalize"));
    let json = FeaturesConfig { normalize: ClipNorm::Mean, ..FeaturesConfig::reference() }.to_json();
    assert!(json.contains("\"normalize\":\"mean\""), "{json}");
}

#[test]
fn repeat_padding_fills_a_short_clip_with_its_own_frames_after_normalisation() {
    let (samples, _) = tone_22050();
    let plain = Analyzer::new(&FeaturesConfig { normalize: ClipNorm::Mean, ..variable_length() }).features(&samples);
    let frames = plain.matrix.n_frames;
    let long = frames * 2 + 7;
    let config = FeaturesConfig {
        normalize: ClipNorm::Mean,
        pad: PadMode::Repeat,
        frames: Some(long),
        ..FeaturesConfig::reference()
    };
    let repeated = Analyzer::new(&config).features(&samples);
    assert_eq!((repeated.matrix.n_frames, repeated.n_frames_source), (long, frames));
    for t in 0..long {
        assert_eq!(repeated.matrix.frame(t), plain.matrix.frame(t % frames), "frame {t}");
    }
    // Longer clips are cut as with any other pad.
    let cut = Analyzer::new(&FeaturesConfig { frames: Some(frames / 2), ..config.clone() }).features(&samples).matrix;
    assert_eq!(cut.values[..], plain.matrix.values[..(frames / 2) * plain.matrix.n_coeffs]);
    assert!(config.to_json().contains("\"pad\":\"repeat\""), "{}", config.to_json());
}

#[test]
fn level_normalisation_removes_the_gain_and_keeps_the_spectral_shape() {
    use ser_features::FeatureKind;
    let (samples, _) = tone_22050();
    let quiet: Vec<f32> = samples.iter().map(|v| v * 0.1).collect(); // -20 dB
    let plain = Analyzer::new(&variable_length()).features(&samples).matrix;
    for kind in [FeatureKind::Mfcc, FeatureKind::LogMel] {
        let config = FeaturesConfig { normalize: ClipNorm::Level, kind, ..variable_length() };
        let (a, b) = (Analyzer::new(&config).features(&samples).matrix, Analyzer::new(&config).features(&quiet).matrix);
        let worst = a.values.iter().zip(&b.values).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-2, "{kind:?}: the -20 dB copy differs by {worst}");
        let unnormalised = Analyzer::new(&FeaturesConfig { kind, ..variable_length() }).features(&samples).matrix;
        let shift: Vec<f32> = a.values.iter().zip(&unnormalised.values).map(|(x, y)| x - y).collect();
        match kind {
            // Only c0 moves, by its own mean over the clip.
            FeatureKind::Mfcc => {
                let c0_mean = (0..plain.n_frames).map(|t| plain.frame(t)[0]).sum::<f32>() / plain.n_frames as f32;
                for (i, d) in shift.iter().enumerate() {
                    let want = if i % a.n_coeffs == 0 { -c0_mean } else { 0.0 };
                    assert!((d - want).abs() < 1e-2, "value {i}: moved by {d}, expected {want}");
                }
            }
            // Every band moves by one amount.
            FeatureKind::LogMel => assert!(shift.iter().all(|d| (d - shift[0]).abs() < 1e-3 && shift[0].abs() > 1.0)),
        }
    }
}

// The 48 kHz stereo file goes through downmix and rubato's FFT resampler; librosa's default is
// soxr (`soxr_hq`). With the resampler's delay compensated exactly, the two agree to a few
// hundredths of a dB in mel bands 0-119 (0-9.5 kHz). The top bands sit in the resamplers'
// different transition bands near 11 kHz and may differ by several dB; through the DCT that
// spreads into every cepstral coefficient: measured here, median |diff| 1.49 and max 1.82 on
// values spanning about -600..200 (rubato's other windows do worse, 1.7-1.8 median).
#[test]
fn resampled_stereo_48k_matches_librosa_soxr() {
    let bytes = std::fs::read(data("tone_48000_stereo.wav")).unwrap();
    let audio = decode_audio(&bytes, 60.0).unwrap();
    assert_eq!((audio.sample_rate, audio.n_channels), (48_000, 2));
    let samples = resample(&audio.samples, 48_000, 22_050).unwrap();
    let g = golden("tone_48000_stereo.librosa.json");
    assert_eq!(samples.len(), g.n_samples);
    let analyzer = Analyzer::new(&variable_length());
    let log_mel = analyzer.log_mel(&samples).0;
    let mut worst_low = 0f32;
    for (t, row) in g.log_mel.iter().enumerate() {
        for (band, e) in row.iter().enumerate().take(120) {
            worst_low = worst_low.max((log_mel.values[t * 128 + band] - e).abs());
        }
    }
    assert!(worst_low < 0.1, "bands 0-119 differ by up to {worst_low} dB");
    let mfcc = analyzer.mfcc(&samples).0;
    let mut diffs: Vec<f32> = g
        .mfcc
        .iter()
        .enumerate()
        .flat_map(|(t, row)| {
            let mfcc = &mfcc;
            row.iter().enumerate().map(move |(c, e)| (mfcc.values[t * 40 + c] - e).abs())
        })
        .collect();
    diffs.sort_by(f32::total_cmp);
    let (median, max) = (diffs[diffs.len() / 2], diffs[diffs.len() - 1]);
    eprintln!("resampled MFCC vs librosa/soxr: median |diff| {median}, max {max}");
    assert!(median < 1.6 && max < 2.0, "median {median}, max {max}");
}

/// The test signal of `trim_matches_librosa`: 0.5 s silence, 1 s of a rising 220 Hz tone, 0.2 s
/// of a 440 Hz tone 50 dB lower, then silence; 2 s at 22050 Hz.
fn trim_signal() -> Vec<f32> {
    let sr = 22_050.0f64;
    (0..44_100)
        .map(|i| {
            let t = i as f64 / sr;
            let v = if (11_025..33_075).contains(&i) {
                0.3 * (2.0 * std::f64::consts::PI * 220.0 * t).sin() * ((t - 0.5) * 8.0).min(1.0)
            } else if (33_075..37_485).contains(&i) {
                0.3 * 10f64.powf(-50.0 / 20.0) * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
            } else {
                0.0
            };
            v as f32
        })
        .collect()
}

/// Spans from librosa 0.11:
/// ```python
/// y = trim_signal()  # as above, in numpy float32
/// for top_db in (20, 40, 60):
///     print(top_db, librosa.effects.trim(y, top_db=top_db, frame_length=2048, hop_length=512)[1])
/// # 20 [11264 34304]   40 [10240 34304]   60 [10240 38400]
/// ```
#[test]
fn trim_matches_librosa() {
    let y = trim_signal();
    for (top_db, span) in [(20.0, (11_264, 34_304)), (40.0, (10_240, 34_304)), (60.0, (10_240, 38_400))] {
        assert_eq!(ser_features::dsp::trim_span(&y, top_db, 2048, 512), span, "top_db {top_db}");
    }
    assert_eq!(ser_features::dsp::trim_span(&[0.0; 4000], 30.0, 2048, 512), (0, 4000), "silence is kept whole");
}

#[test]
fn trim_and_loudness_shape_the_clip_the_features_see() {
    let config = FeaturesConfig { trim_db: Some(40.0), loudness_dbfs: Some(-20.0), ..FeaturesConfig::reference() };
    let analyzer = ser_features::dsp::Analyzer::new(&config);
    let y = trim_signal();
    let clip = analyzer.prepare(&y);
    assert_eq!(clip.len(), 34_304 - 10_240);
    let rms_db = 10.0 * (clip.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / clip.len() as f64).log10();
    assert!((rms_db + 20.0).abs() < 1e-3, "{rms_db} dBFS");
    // Twice as loud in, the same features out.
    let louder: Vec<f32> = y.iter().map(|v| v * 2.0).collect();
    let (a, b) = (analyzer.features(&y).matrix.values, analyzer.features(&louder).matrix.values);
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-3, "gain changed the features by {worst}");
    // The reference config leaves the clip alone.
    let plain = ser_features::dsp::Analyzer::new(&FeaturesConfig::reference());
    assert_eq!(plain.prepare(&y).len(), y.len());
    // A stored config without the keys keeps its hash.
    assert!(!FeaturesConfig::reference().to_json().contains("trim_db"));
}

#[derive(serde::Deserialize)]
struct ProsodyGolden {
    f0: Vec<f32>,
    zcr: Vec<f32>,
}

fn prosody_config() -> ser_features::ProsodyConfig {
    ser_features::ProsodyConfig { fmin: 60.0, fmax: 500.0, frame_length: 1024 }
}

// The tone glides between 80 and 200 Hz with noise and a gap of digital silence; librosa.yin's
// float32 pipeline and ours pick the same trough in every frame, so f0 agrees to float rounding.
#[test]
fn yin_and_zero_crossing_rate_match_librosa() {
    let (samples, _) = tone_22050();
    let g: ProsodyGolden =
        serde_json::from_str(&std::fs::read_to_string(data("tone_22050.prosody.librosa.json")).unwrap()).unwrap();
    let p = prosody_config();
    let track = ser_features::prosody::Yin::new(22_050, p.frame_length, 512, p.fmin, p.fmax).track(&samples);
    assert_eq!(track.len(), g.f0.len(), "frame count");
    for (t, (ours, theirs)) in track.iter().zip(&g.f0).enumerate() {
        assert!((ours.f0 / theirs - 1.0).abs() < 1e-3, "frame {t}: f0 {} Hz, librosa {theirs} Hz", ours.f0);
    }
    let zcr = ser_features::prosody::zero_crossing_rate(&samples, p.frame_length, 512);
    assert_eq!(zcr.len(), g.zcr.len());
    for (t, (ours, theirs)) in zcr.iter().zip(&g.zcr).enumerate() {
        assert!((ours - theirs).abs() < 1e-5, "frame {t}: zero-crossing rate {ours}, librosa {theirs}");
    }
}

#[test]
fn prosody_channels_follow_the_spectral_coefficients_and_survive_padding_and_normalisation() {
    let (samples, _) = tone_22050();
    let plain = Analyzer::new(&variable_length()).features(&samples).matrix;
    let config = FeaturesConfig { prosody: Some(prosody_config()), normalize: ClipNorm::Mean, ..variable_length() };
    assert_eq!(config.n_coeffs(), 44);
    let with = Analyzer::new(&config).features(&samples).matrix;
    assert_eq!((with.n_frames, with.n_coeffs), (plain.n_frames, 44));
    let channels = ser_features::prosody::Prosody::new(&prosody_config(), 22_050, 512).features(&samples);
    for t in 0..with.n_frames {
        // The prosody channels as computed alone: the clip's mean normalisation leaves them be.
        assert_eq!(&with.frame(t)[40..], channels.frame(t), "frame {t}");
    }
    // Voiced frames in the tone, none in its gap of digital silence.
    let voiced = (0..with.n_frames).filter(|&t| with.frame(t)[40] != 0.0).count();
    assert!(voiced > with.n_frames / 2, "{voiced} of {} frames voiced", with.n_frames);
    // Padding: pad frames hold 0 in every prosody channel (silence), for zeros and silence alike.
    for pad in [PadMode::Zeros, PadMode::Silence] {
        let padded = FeaturesConfig { frames: Some(with.n_frames + 5), pad, ..config.clone() };
        let m = Analyzer::new(&padded).features(&samples).matrix;
        assert_eq!(&m.frame(with.n_frames + 2)[40..], &[0.0; 4]);
        assert_eq!(m.n_coeffs, padded.n_coeffs());
    }
    // The config's JSON without prosody is unchanged (so are the hashes of existing tables).
    assert!(!variable_length().to_json().contains("prosody"));
    assert!(config.to_json().contains("\"prosody\":{\"fmin\":60.0,\"fmax\":500.0,\"frame_length\":1024}"));
}

#[test]
fn prosody_settings_librosa_refuses_are_refused_with_the_key() {
    let bad = |p: ser_features::ProsodyConfig| {
        FeaturesConfig { prosody: Some(p), ..FeaturesConfig::reference() }.validate().unwrap_err().to_string()
    };
    let p = prosody_config();
    assert!(bad(ser_features::ProsodyConfig { fmin: 20.0, ..p.clone() }).contains("prosody.fmin: 20 Hz does not fit"));
    assert!(bad(ser_features::ProsodyConfig { fmax: 12_000.0, ..p.clone() }).contains("prosody.fmin/fmax"));
    assert!(bad(ser_features::ProsodyConfig { frame_length: 1023, ..p.clone() }).contains("prosody.frame_length"));
    let yaml = "sample_rate: 22050\nn_fft: 2048\nhop_length: 512\nn_mels: 128\nfmin: 0.0\nfmax: null\ntop_db: 80.0\nkind: mfcc\nn_mfcc: 40\ndeltas: false\nframes: 174\npad: zeros\nmax_duration_s: 600.0\nprosody: {fmin: 60, fmax: 500, frame_length: 1024, hop: 3}\n";
    assert!(FeaturesConfig::from_yaml(yaml).unwrap_err().to_string().contains("unknown field `hop`"));
}
