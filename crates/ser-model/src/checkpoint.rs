//! The checkpoint directory's contract: every serialized type and every file name. Reading and
//! writing them is [`crate::io`]'s.
//!
//! - `model.safetensors`: the best epoch's weights, PyTorch tensor names.
//! - `model.json`: the sidecar, [`ModelJson`]: everything needed to reuse the weights. Written
//!   once, last, when training ends: its presence means the checkpoint is whole.
//! - `history.csv`: one row per epoch ([`EpochRecord`]), rewritten after every epoch.
//! - `last.safetensors`: everything a resumed run needs, rewritten atomically after every epoch
//!   as one file: the weights after the last finished epoch, the best epoch's weights (names
//!   prefixed `best.`), Adam's moments (`adam.m.`, `adam.v.`), and in its metadata
//!   (`ser.resume`) the loop state ([`TrainState`]) and the epoch history.
//!
//! An ensemble (`ser-model ensemble`) is a checkpoint directory too, with the same two files:
//! `model.safetensors` holds member i's tensors under [`member_prefix`]`(i)`, and `model.json` is
//! an [`EnsembleJson`] (told from a [`ModelJson`] by its `members` key), each member carrying
//! its own trained sidecar, so its own normalisation. A clip's probabilities are the mean of the
//! members' ([`Combine::MeanProbabilities`]), each member standardising the clip its own way.

use std::collections::BTreeMap;

use ser_features::FeaturesConfig;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;

/// Bumped when tensor names or the sidecar's meaning change.
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const SIDECAR_FILE: &str = "model.json";
pub const HISTORY_FILE: &str = "history.csv";
pub const LAST_WEIGHTS_FILE: &str = "last.safetensors";
/// The metadata key of `last.safetensors` holding [`ResumeMeta`] as JSON.
pub const META_RESUME: &str = "ser.resume";
/// Prefix of the best epoch's tensors in `last.safetensors`.
pub const BEST_PREFIX: &str = "best.";
/// Prefix of the weight average's tensors in `last.safetensors` (with `weight_average` set).
pub const AVERAGE_PREFIX: &str = "average.";

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataProvenance {
    pub features_path: String,
    pub features_sha256: String,
    pub splits_path: String,
    pub splits_sha256: String,
    pub split_config: String,
    pub fold: u32,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
}

/// Per-coefficient standardisation, fitted on the training part only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Mean and standard deviation of each coefficient over every frame of `features`
    /// (rows of `n_coeffs`; padding included, as the reference does); `std` gets 1e-8 added.
    pub fn fit(features: &[f32], n_coeffs: usize) -> Normalization {
        let mut sum = vec![0f64; n_coeffs];
        let mut sum_sq = vec![0f64; n_coeffs];
        let mut n = 0usize;
        for frame in features.chunks_exact(n_coeffs) {
            for (k, v) in frame.iter().enumerate() {
                sum[k] += *v as f64;
                sum_sq[k] += (*v as f64) * (*v as f64);
            }
            n += 1;
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sum_sq.iter().zip(&mean).map(|(s, m)| ((s / n - m * m).max(0.0).sqrt() + 1e-8) as f32).collect();
        Normalization { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    /// Standardises frames in place.
    pub fn apply(&self, features: &mut [f32]) {
        let c = self.mean.len();
        for frame in features.chunks_exact_mut(c) {
            for ((v, m), s) in frame.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelJson {
    pub format_version: u32,
    /// Index = class id of the network's outputs.
    pub labels: Vec<String>,
    pub features_config: FeaturesConfig,
    pub features_config_hash: String,
    /// Input shape: frames x coefficients.
    pub n_frames: usize,
    pub n_coeffs: usize,
    pub normalization: Normalization,
    pub model_config: ModelConfig,
    pub seed: u64,
    pub data: DataProvenance,
    /// The protocol in words, e.g. "early stopping on the split's val part".
    pub protocol: String,
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// Validation (and, for `test_optimistic`, test) metrics of the best epoch.
    pub metrics: BTreeMap<String, f64>,
    pub device: String,
    pub versions: BTreeMap<String, String>,
}

/// How an ensemble's members' answers become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// The mean of the members' softmax probabilities, class by class.
    MeanProbabilities,
}

/// One member of an ensemble: a trained checkpoint as it was when the ensemble was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleMember {
    /// The checkpoint directory it was taken from, as given to `ser-model ensemble`.
    pub source: String,
    /// SHA-256 of that directory's `model.safetensors`.
    pub weights_sha256: String,
    /// Its `model.json`.
    pub model: ModelJson,
}

/// `model.json` of an ensemble. The shared fields are the members' own [`Interface`] (equal in
/// every member, checked when it is made and when it is read), spelled out as in [`ModelJson`]
/// so that a reader of plain checkpoints finds them where it looks (serde cannot flatten a
/// shared struct into a `deny_unknown_fields` one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleJson {
    pub format_version: u32,
    pub labels: Vec<String>,
    pub features_config: FeaturesConfig,
    pub features_config_hash: String,
    pub n_frames: usize,
    pub n_coeffs: usize,
    pub combine: Combine,
    /// The protocol in words: the members', and how they are combined.
    pub protocol: String,
    pub members: Vec<EnsembleMember>,
    pub versions: BTreeMap<String, String>,
}

/// What a checkpoint takes and gives: the part of a sidecar every member of an ensemble shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interface<'a> {
    pub labels: &'a [String],
    pub features_config_hash: &'a str,
    pub n_frames: usize,
    pub n_coeffs: usize,
}

impl Interface<'_> {
    /// Whether `member` answers in these labels from the same features; says how it differs.
    pub fn admits(&self, member: &ModelJson) -> Result<(), String> {
        let other = member.interface();
        if other.labels != self.labels {
            return Err(format!("labels {:?}, the ensemble's are {:?}", other.labels, self.labels));
        }
        if other.features_config_hash != self.features_config_hash {
            return Err(format!(
                "feature config hash {}, the ensemble's is {}: its members must read the same feature table",
                other.features_config_hash, self.features_config_hash
            ));
        }
        if (other.n_frames, other.n_coeffs) != (self.n_frames, self.n_coeffs) {
            return Err(format!(
                "input {}x{}, the ensemble's is {}x{}",
                other.n_frames, other.n_coeffs, self.n_frames, self.n_coeffs
            ));
        }
        Ok(())
    }
}

impl ModelJson {
    pub fn interface(&self) -> Interface<'_> {
        Interface {
            labels: &self.labels,
            features_config_hash: &self.features_config_hash,
            n_frames: self.n_frames,
            n_coeffs: self.n_coeffs,
        }
    }
}

impl EnsembleJson {
    pub fn interface(&self) -> Interface<'_> {
        Interface {
            labels: &self.labels,
            features_config_hash: &self.features_config_hash,
            n_frames: self.n_frames,
            n_coeffs: self.n_coeffs,
        }
    }
}

/// The key that tells an [`EnsembleJson`] from a [`ModelJson`].
pub const ENSEMBLE_KEY: &str = "members";

/// The prefix of member `i`'s tensors in an ensemble's `model.safetensors`.
pub fn member_prefix(i: usize) -> String {
    format!("member{i}.")
}

/// One row of `history.csv`. The validation figures are `None` (empty cells) in a run with no
/// validation part (`early_stopping_on: none`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
    pub val_uar: Option<f64>,
    pub learning_rate: f64,
    /// Wall-clock seconds of the epoch: reported on stderr, never written to artifacts.
    #[serde(skip)]
    pub seconds: f64,
}

/// The columns of `history.csv`, in order.
pub const HISTORY_COLUMNS: [&str; 8] =
    ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "val_uar", "learning_rate"];

/// The training loop's state after a finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Epochs finished (the next epoch to run).
    pub epochs_done: usize,
    pub adam_step: u64,
    pub learning_rate: f64,
    pub best_epoch: usize,
    /// The monitored score and the validation loss at their best; `None` before a validated
    /// epoch (always, with fixed epochs).
    pub best_score: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub epochs_since_best: usize,
    pub epochs_since_lr_improvement: usize,
    /// sha256 of the model config + data, so a resume with other inputs is refused.
    pub run_key: String,
    pub best_metrics: BTreeMap<String, f64>,
}

/// The metadata of `last.safetensors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeMeta {
    pub state: TrainState,
    pub history: Vec<EpochRecord>,
}

/// The versions of what built this binary, for `model.json`.
pub fn versions() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ser-model".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("candle".to_string(), crate::candle_version().to_string()),
    ])
}
