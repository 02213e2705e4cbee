//! Pipelines: merging a base with what differs, the errors a bad pipeline gets, the committed
//! pipelines, and their make plans.

mod committed;
mod load;

use std::path::Path;

/// Writes pipeline files (name, text) into a new temporary folder.
fn pipelines(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("{name}.yaml")), text).unwrap();
    }
    dir
}

/// A minimal whole pipeline: the demo's corpus, the reference features and network.
const BASE: &str = "\
data: [demo]
features: {sample_rate: 22050, n_fft: 2048, hop_length: 512, n_mels: 128, fmin: 0.0, fmax: null, top_db: 80.0,
  kind: mfcc, n_mfcc: 40, deltas: false, frames: 174, pad: zeros, max_duration_s: 600.0}
split: {kind: speaker_kfold, k: 4, val_speakers: 1, seed: 1}
model: {conv1_filters: 8, conv1_kernel: 5, conv2_filters: 8, conv2_kernel: 3, lstm1_units: 4, lstm2_units: 4,
  dense_units: 8, dropout_conv: 0.3, dropout_lstm: 0.4, dropout_dense: 0.5, learning_rate: 0.001, batch_size: 16,
  max_epochs: 3, patience: 3, monitor: val_accuracy, lr_patience: 5, lr_factor: 0.5, min_lr: 1.0e-5,
  class_weights: false, early_stopping_on: val, seed: 42, augment: {time_shift: 4}}
";

#[track_caller]
fn load_err(files: &[(&str, &str)], name: &str) -> String {
    let dir = pipelines(files);
    ser_pipeline::load(dir.path(), name).map(|_| ()).unwrap_err().to_string()
}

#[track_caller]
fn section(dir: &Path, name: &str, stage: ser_pipeline::Stage) -> yaml_serde::Value {
    let pipeline = ser_pipeline::load(dir, name).unwrap_or_else(|e| panic!("{e}"));
    yaml_serde::from_str(&pipeline.sections[&stage]).unwrap()
}
