//! The library: one recipe with ser-features and ser-model, thread safety, timelines, streams.

use std::sync::Arc;

use candle_core::Device;
use ser_features::audio::resample;
use ser_features::dsp::Analyzer;
use ser_features::synth::SYNTH_SAMPLE_RATE;
use ser_infer::stream::{RawEncoding, StreamFormat, stream};
use ser_infer::timeline::{Adapt, WindowPlan};
use ser_infer::{Classifier, TimelineConfig, timeline};
use ser_model::data::Dataset;

use crate::{checkpoint, clip, features_config, wav_bytes};

fn classifier() -> Classifier {
    Classifier::load(checkpoint(), &Device::Cpu).unwrap()
}

#[test]
fn predictions_follow_the_checkpoint_recipe() {
    let classifier = classifier();
    assert_eq!(classifier.features_config(), &features_config());
    let samples = clip(4, 5, 1);
    let got = classifier.predict(&samples, SYNTH_SAMPLE_RATE).unwrap();

    // The same clip through ser-features and ser-model by hand.
    let config = features_config();
    let resampled = resample(&samples, SYNTH_SAMPLE_RATE, config.sample_rate).unwrap();
    let features = Analyzer::new(&config).features(&resampled).matrix.values;
    let checkpoint = ser_model::io::read_checkpoint(checkpoint(), &Device::Cpu).unwrap();
    let data = Dataset {
        clip_ids: vec!["x".into()],
        classes: classifier.labels().to_vec(),
        labels: vec![None],
        genders: vec![None],
        corpora: Vec::new(),
        speakers: Vec::new(),
        n_frames: 40,
        n_coeffs: 17,
        features,
    };
    let expected = ser_model::predict::predict(&checkpoint, &data).unwrap();
    assert_eq!(got.probabilities, expected.probabilities[0]);
    assert_eq!(got.label, expected.predicted(0));
    assert!((got.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(got.confidence, got.probabilities.iter().copied().fold(0.0, f32::max));

    let from_wav = classifier.predict_wav(&wav_bytes(&samples)).unwrap();
    assert_eq!(from_wav.label, got.label, "16-bit WAV round trip keeps the answer");
}

#[test]
fn an_ensemble_loads_and_answers_like_a_checkpoint() {
    // Two members whose standardisations differ: the ensemble's answer is their mean.
    let root = tempfile::tempdir().unwrap();
    let shifted = root.path().join("shifted");
    std::fs::create_dir_all(&shifted).unwrap();
    std::fs::copy(checkpoint().join("model.safetensors"), shifted.join("model.safetensors")).unwrap();
    let mut meta: ser_model::checkpoint::ModelJson =
        serde_json::from_str(&std::fs::read_to_string(checkpoint().join("model.json")).unwrap()).unwrap();
    meta.normalization.mean.iter_mut().for_each(|m| *m += 3.0);
    std::fs::write(shifted.join("model.json"), serde_json::to_string(&meta).unwrap()).unwrap();
    let ensemble = root.path().join("ensemble");
    ser_model::io::write_ensemble(&[checkpoint().to_path_buf(), shifted.clone()], &ensemble, None).unwrap();

    let members = [classifier(), Classifier::load(&shifted, &Device::Cpu).unwrap()];
    let both = Classifier::load(&ensemble, &Device::Cpu).unwrap();
    assert_eq!(both.labels(), members[0].labels());
    assert_eq!(both.checkpoint().members.len(), 2);
    for (actor, emotion) in [(2, 3), (3, 6), (1, 8)] {
        let samples = clip(actor, emotion, 2);
        let alone: Vec<_> = members.iter().map(|c| c.predict(&samples, SYNTH_SAMPLE_RATE).unwrap()).collect();
        assert_ne!(alone[0].probabilities, alone[1].probabilities, "the members answer differently");
        let got = both.predict(&samples, SYNTH_SAMPLE_RATE).unwrap();
        for (k, p) in got.probabilities.iter().enumerate() {
            let mean = (alone[0].probabilities[k] + alone[1].probabilities[k]) / 2.0;
            assert!((p - mean).abs() < 1e-6, "class {k}: {p} vs {mean}");
        }
    }
}

#[test]
fn bad_audio_is_an_error_not_a_panic() {
    let classifier = classifier();
    let err = classifier.predict(&[0.0; 100], 48_000).unwrap_err().to_string();
    assert!(err.contains("shorter than one analysis frame"), "{err}");
    let err = classifier.predict(&[f32::NAN; 48_000], 48_000).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    let err = classifier.predict_wav(b"RIFF....WAVEjunk").unwrap_err().to_string();
    assert!(
        err.contains("not an audio file") || err.contains("truncated") || err.contains("no audio samples"),
        "{err}"
    );
    let err = classifier.predict(&[0.1; 48_000], 7).unwrap_err().to_string();
    assert!(err.contains("sample rate 7 Hz"), "{err}");
    let err = Classifier::load(std::path::Path::new("/nonexistent/ckpt"), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/ckpt") && err.contains("model.json"), "{err}");
}

#[test]
fn concurrent_use_gives_the_same_answers() {
    let classifier = Arc::new(classifier());
    let clips: Vec<Vec<f32>> = (1..=8).map(|e| clip(5, e, 2)).collect();
    let single: Vec<_> = clips.iter().map(|c| classifier.predict(c, SYNTH_SAMPLE_RATE).unwrap()).collect();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (classifier, clips) = (classifier.clone(), clips.clone());
            std::thread::spawn(move || {
                (0..clips.len())
                    .map(|i| (i + t) % clips.len())
                    .map(|i| (i, classifier.predict(&clips[i], SYNTH_SAMPLE_RATE).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in handles {
        for (i, p) in handle.join().unwrap() {
            assert_eq!(p, single[i]);
        }
    }
    // Batched prediction agrees with one-by-one (batching changes float summation order only).
    let refs: Vec<(&[f32], u32)> = clips.iter().map(|c| (c.as_slice(), SYNTH_SAMPLE_RATE)).collect();
    for (batched, one) in classifier.predict_many(&refs).into_iter().zip(&single) {
        let batched = batched.unwrap();
        assert_eq!(batched.label, one.label);
        for (a, b) in batched.probabilities.iter().zip(&one.probabilities) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

#[track_caller]
fn check_windows(n: usize, window_s: f64, hop_s: f64, expect: &[(usize, usize)]) {
    let config = TimelineConfig { window_s, hop_s, silence_dbfs: -50.0, adapt: Adapt::Off };
    assert_eq!(WindowPlan::new(&config, 10).bounds(n), expect);
}

#[test]
fn windows_cover_the_recording() {
    check_windows(5, 1.0, 0.5, &[(0, 5)]);
    check_windows(10, 1.0, 0.5, &[(0, 10)]);
    check_windows(20, 1.0, 0.5, &[(0, 10), (5, 15), (10, 20)]);
    check_windows(23, 1.0, 0.5, &[(0, 10), (5, 15), (10, 20), (13, 23)]);
    check_windows(30, 1.0, 1.0, &[(0, 10), (10, 20), (20, 30)]);
}

/// Speech, 2 s of silence, speech.
fn recording() -> Vec<f32> {
    let mut samples = clip(6, 5, 1);
    samples.extend(vec![0.0; 2 * SYNTH_SAMPLE_RATE as usize]);
    samples.extend(clip(6, 2, 1));
    samples
}

#[test]
fn timeline_marks_silence_and_matches_the_stream() {
    let classifier = classifier();
    let config = TimelineConfig { window_s: 0.9, hop_s: 0.45, silence_dbfs: -50.0, adapt: Adapt::Off };
    // The stream reads 16-bit audio, so the timeline gets the same 16-bit samples.
    let wav = wav_bytes(&recording());
    let samples: Vec<f32> =
        wav[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    let segments = timeline(&classifier, &samples, SYNTH_SAMPLE_RATE, &config).unwrap();
    let duration = samples.len() as f64 / SYNTH_SAMPLE_RATE as f64;
    assert_eq!(segments.last().unwrap().end_s, duration);
    let silent = segments.iter().filter(|s| s.prediction.is_none()).count();
    assert!(silent >= 2, "2 s of silence hold at least two 0.9 s windows: {segments:?}");
    for s in segments.iter().filter(|s| s.prediction.is_none()) {
        assert!(s.level_dbfs < -50.0);
    }

    let check_stream = |bytes: &[u8], format: StreamFormat| {
        let mut streamed = Vec::new();
        let summary = stream(&classifier, bytes, format, &config, |s| {
            streamed.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(summary.samples, samples.len());
        assert_eq!(streamed.len(), segments.len());
        for (a, b) in streamed.iter().zip(&segments) {
            assert_eq!((a.start_s, a.end_s), (b.start_s, b.end_s));
            assert_eq!(a.prediction.is_some(), b.prediction.is_some());
            if let (Some(pa), Some(pb)) = (&a.prediction, &b.prediction) {
                assert_eq!(pa.label, pb.label);
                for (x, y) in pa.probabilities.iter().zip(&pb.probabilities) {
                    assert!((x - y).abs() < 1e-5, "{x} vs {y}");
                }
            }
        }
    };
    check_stream(&wav, StreamFormat::Encoded);
    check_stream(
        &wav[44..],
        StreamFormat::Raw { encoding: RawEncoding::S16Le, sample_rate: SYNTH_SAMPLE_RATE, channels: 1 },
    );
}

#[test]
fn stream_errors_are_clear() {
    let classifier = classifier();
    let config = TimelineConfig::for_classifier(&classifier);
    let err = stream(&classifier, &b"hello"[..], StreamFormat::Encoded, &config, |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("not an audio file"), "{err}");
    let raw = StreamFormat::Raw { encoding: RawEncoding::F32Le, sample_rate: 10, channels: 1 };
    let err = stream(&classifier, &[0u8; 64][..], raw, &config, |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("sample rate 10 Hz"), "{err}");
    let nan: Vec<u8> = std::iter::repeat_n(f32::NAN.to_le_bytes(), 100).flatten().collect();
    let raw = StreamFormat::Raw { encoding: RawEncoding::F32Le, sample_rate: 16_000, channels: 1 };
    let err = stream(&classifier, nan.as_slice(), raw, &config, |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
}

/// infer.yaml's keys are checked: a misspelt one is named.
#[test]
fn infer_yaml_refuses_unknown_keys() {
    let err = ser_infer::config::InferConfig::from_yaml("serve:\n  adress: 0.0.0.0:1\n").unwrap_err();
    assert!(err.contains("unknown field `adress`"), "{err}");
}

/// Test-time speaker normalisation: adapted, a speaker's answers do not move when every speech
/// frame of theirs moves by the same offset (a studio's or a voice's level), as plain ones do;
/// `recording` adapts each recording on its own, `together` all of one call's, and a stream,
/// which has no whole recording, refuses it.
#[test]
fn adapted_answers_follow_the_speaker_not_the_training_mean() {
    let classifier = classifier();
    let config = |adapt| TimelineConfig { window_s: 0.9, hop_s: 0.45, silence_dbfs: -50.0, adapt };
    let (a, b) = (recording(), clip(4, 3, 2));
    let many = |adapt, recordings: &[&[f32]]| {
        let recordings: Vec<(&[f32], u32)> = recordings.iter().map(|r| (*r, SYNTH_SAMPLE_RATE)).collect();
        ser_infer::timeline_many(&classifier, &recordings, &config(adapt))
            .into_iter()
            .map(|t| t.unwrap().into_iter().filter_map(|s| s.prediction).map(|p| p.probabilities).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let plain = many(Adapt::Off, &[&a, &b]);
    let own = many(Adapt::Recording, &[&a, &b]);
    let together = many(Adapt::Together, &[&a, &b]);
    assert_ne!(plain[0], own[0], "adapting changes the answers");
    assert_eq!(own[0], many(Adapt::Recording, &[&a])[0], "a recording adapts on its own");
    assert_eq!(own[0], many(Adapt::Together, &[&a])[0], "together, one recording is its own speaker");
    assert_ne!(together[0], own[0], "together, the other recording's speech counts too");

    // The windows' features moved by one offset: centred around their own mean, nothing moves.
    let checkpoint = ser_model::io::read_checkpoint(checkpoint(), &Device::Cpu).unwrap();
    let windows: Vec<ser_infer::WindowFeatures> = WindowPlan::new(&config(Adapt::Off), SYNTH_SAMPLE_RATE)
        .bounds(a.len())
        .into_iter()
        .map(|(s, e)| classifier.window_features(&a[s..e], SYNTH_SAMPLE_RATE).unwrap())
        .collect();
    let (t, c) = (checkpoint.n_frames(), checkpoint.n_coeffs());
    let moved: Vec<ser_infer::WindowFeatures> = windows
        .iter()
        .map(|w| {
            let mut values = w.values.clone();
            for frame in values[..w.speech_frames * c].chunks_exact_mut(c) {
                frame.iter_mut().enumerate().for_each(|(k, v)| *v += 0.5 + k as f32 * 0.1);
            }
            ser_infer::WindowFeatures { values, speech_frames: w.speech_frames }
        })
        .collect();
    assert!(windows.iter().all(|w| w.speech_frames > 0 && w.speech_frames <= t));
    let answers = |w: &[ser_infer::WindowFeatures], centred: bool| -> Vec<Vec<f32>> {
        let answers = if centred {
            classifier.classify_centred(w.to_vec(), None)
        } else {
            classifier.classify_features(w.iter().map(|w| w.values.clone()).collect())
        };
        answers.unwrap().into_iter().map(|p| p.probabilities).collect()
    };
    let (before, after) = (answers(&windows, true), answers(&moved, true));
    for (x, y) in before.iter().flatten().zip(after.iter().flatten()) {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
    assert_ne!(answers(&windows, false), answers(&moved, false), "plain answers move with the offset");

    let err = stream(&classifier, &wav_bytes(&a)[..], StreamFormat::Encoded, &config(Adapt::Recording), |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("adapt") && err.contains("use timeline"), "{err}");
}
