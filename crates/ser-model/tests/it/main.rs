//! ser-model integration tests: one binary, one module per feature.

mod checkpoint;
mod cli;
mod data;
mod engines;
mod golden;
mod inference;
mod lstm;
mod onnx;
mod training;

use ser_model::ModelConfig;
use ser_model::config::{Monitor, StoppingPart};
use ser_model::data::Dataset;

/// A tiny network, quick to train in tests.
pub fn small_config(seed: u64) -> ModelConfig {
    ModelConfig {
        conv1_filters: 4,
        conv1_kernel: 3,
        conv2_filters: 6,
        conv2_kernel: 3,
        lstm1_units: 5,
        lstm2_units: 3,
        attention_units: None,
        dense_units: 8,
        dropout_conv: 0.2,
        dropout_lstm: 0.2,
        dropout_dense: 0.2,
        learning_rate: 0.01,
        batch_size: 8,
        max_epochs: 4,
        patience: 10,
        monitor: Monitor::ValAccuracy,
        lr_patience: 2,
        lr_factor: 0.5,
        min_lr: 1e-4,
        class_weights: false,
        label_smoothing: 0.0,
        early_stopping_on: StoppingPart::Val,
        seed,
        gender_weight: None,
        weight_average: None,
        corpus_weights: false,
        corpus_classes: false,
        adversary: None,
        augment: Default::default(),
    }
}

/// `n` clips of 16 frames x 6 coefficients whose class shows in the mean of coefficient
/// `class % 6` (learnable, deterministic).
pub fn toy_dataset(n: usize, offset: usize) -> Dataset {
    let (n_frames, n_coeffs) = (16, 6);
    let mut features = Vec::with_capacity(n * n_frames * n_coeffs);
    let mut labels = Vec::new();
    let mut clip_ids = Vec::new();
    for i in 0..n {
        let class = ((i + offset) % 8) as u32;
        for t in 0..n_frames {
            for c in 0..n_coeffs {
                let noise = (((i * 31 + t * 7 + c * 13 + offset) % 17) as f32 - 8.0) / 8.0;
                let signal = if c == class as usize % 6 { 2.0 + class as f32 * 0.3 } else { 0.0 };
                features.push(signal + noise);
            }
        }
        labels.push(Some(class));
        clip_ids.push(format!("clip{:03}", i + offset));
    }
    let classes = ser_features::labels::EMOTIONS.iter().map(|s| s.to_string()).collect();
    // Clips alternate gender in runs of eight, so a gender head has something to learn.
    let genders = (0..n).map(|i| Some(((i + offset) / 8 % 2) as u32)).collect();
    Dataset {
        clip_ids,
        classes,
        labels,
        genders,
        corpora: Vec::new(),
        speakers: Vec::new(),
        n_frames,
        n_coeffs,
        features,
    }
}
