//! ser-infer end to end on generated audio with a small checkpoint trained here.

mod cli;
mod library;
mod server;
mod shipped;
pub mod soak;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use ser_features::FeaturesConfig;
use ser_features::audio::{encode_wav_i16, resample};
use ser_features::dsp::Analyzer;
use ser_features::synth::{SYNTH_SAMPLE_RATE, synth_clip};
use ser_model::checkpoint::DataProvenance;
use ser_model::config::{ModelConfig, Monitor, StoppingPart};
use ser_model::data::Dataset;
use ser_model::train::{Quiet, TrainData, TrainOptions, train};

/// A feature recipe smaller than the reference (13 MFCCs, 40 frames ~ 0.93 s) so tests are quick,
/// with the prosody channels (17 values per frame), so every inference path computes them.
pub fn features_config() -> FeaturesConfig {
    let prosody = ser_features::ProsodyConfig { fmin: 60.0, fmax: 500.0, frame_length: 1024 };
    FeaturesConfig { n_mfcc: 13, frames: Some(40), prosody: Some(prosody), ..FeaturesConfig::reference() }
}

/// One generated utterance at 48 kHz (RAVDESS emotion code 1..=8).
pub fn clip(actor: u32, emotion: u32, repetition: u32) -> Vec<f32> {
    synth_clip(11, actor, emotion, 1 + (emotion > 1) as u32, 1, repetition)
}

pub fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    encode_wav_i16(samples, SYNTH_SAMPLE_RATE)
}

/// A checkpoint trained for a few epochs on generated clips, shared by all tests, with a gender
/// head, so every inference path must give the emotions alone.
pub fn checkpoint() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ser-infer-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = features_config();
        let analyzer = Analyzer::new(&config);
        let mut parts = [(Vec::new(), Vec::new(), Vec::new()), (Vec::new(), Vec::new(), Vec::new())];
        for actor in 1..=3u32 {
            for emotion in 1..=8u32 {
                for repetition in 1..=2u32 {
                    let samples =
                        resample(&clip(actor, emotion, repetition), SYNTH_SAMPLE_RATE, config.sample_rate).unwrap();
                    let part = &mut parts[(actor == 3) as usize];
                    part.0.push(format!("a{actor}e{emotion}r{repetition}"));
                    part.1.push(Some(
                        ser_features::labels::EMOTIONS.iter().position(|e| *e == code_label(emotion)).unwrap() as u32,
                    ));
                    part.2.extend(analyzer.features(&samples).matrix.values);
                }
            }
        }
        let dataset = |(clip_ids, labels, features): (Vec<String>, Vec<Option<u32>>, Vec<f32>)| {
            // RAVDESS's rule, even actors female: the gender head's targets.
            let genders = clip_ids.iter().map(|id| Some(u32::from(id.as_bytes()[1] % 2 == 1))).collect();
            Dataset {
                clip_ids,
                classes: ser_features::labels::EMOTIONS.iter().map(|s| s.to_string()).collect(),
                labels,
                genders,
                corpora: Vec::new(),
                speakers: Vec::new(),
                n_frames: 40,
                n_coeffs: config.n_coeffs(),
                features,
            }
        };
        let [train_part, val_part] = parts;
        let (train_set, val_set) = (dataset(train_part), dataset(val_part));
        let model = ModelConfig {
            conv1_filters: 8,
            conv1_kernel: 3,
            conv2_filters: 8,
            conv2_kernel: 3,
            lstm1_units: 8,
            lstm2_units: 4,
            attention_units: None,
            dense_units: 16,
            dropout_conv: 0.1,
            dropout_lstm: 0.1,
            dropout_dense: 0.1,
            learning_rate: 0.01,
            batch_size: 8,
            max_epochs: 6,
            patience: 10,
            monitor: Monitor::ValAccuracy,
            lr_patience: 5,
            lr_factor: 0.5,
            min_lr: 1e-4,
            class_weights: false,
            label_smoothing: 0.0,
            early_stopping_on: StoppingPart::Val,
            seed: 5,
            gender_weight: Some(0.3),
            weight_average: None,
            corpus_weights: false,
            corpus_classes: false,
            adversary: None,
            augment: Default::default(),
        };
        let provenance = DataProvenance {
            features_path: "generated".into(),
            features_sha256: String::new(),
            splits_path: "generated".into(),
            splits_sha256: String::new(),
            split_config: "actor 3 validates".into(),
            fold: 0,
            n_train: train_set.len(),
            n_val: val_set.len(),
            n_test: 0,
        };
        let data = TrainData { train: &train_set, val: &val_set, features_config: &config, provenance };
        let options = TrainOptions { out_dir: Some(&dir), ..TrainOptions::in_memory(&Device::Cpu) };
        train(&data, &model, &options, &Quiet).unwrap();
        dir
    })
}

/// RAVDESS emotion code to label.
pub fn code_label(code: u32) -> &'static str {
    ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"][code as usize - 1]
}
