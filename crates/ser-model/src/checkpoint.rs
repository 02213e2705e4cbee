//! The checkpoint directory (the file contract):
//!
//! - `model.safetensors`: the best epoch's weights, PyTorch tensor names.
//! - `model.json`: the sidecar, [`ModelJson`]: everything needed to reuse the weights.
//! - `history.csv`: one row per epoch.
//! - `last.safetensors` + `train_state.json`: the last finished epoch with optimiser moments,
//!   for `--resume`.
//!
//! Every file is written to a temporary name and renamed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use fs_err as fs;
use ser_features::FeaturesConfig;
use ser_features::io::write_atomic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::data::Normalization;
use crate::network::{self, Network};
use crate::{Error, Result};

/// Bumped when tensor names or the sidecar's meaning change.
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const SIDECAR_FILE: &str = "model.json";
pub const HISTORY_FILE: &str = "history.csv";
pub const LAST_WEIGHTS_FILE: &str = "last.safetensors";
pub const TRAIN_STATE_FILE: &str = "train_state.json";

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

/// Resume state beside `last.safetensors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Epochs finished (the next epoch to run).
    pub epochs_done: usize,
    pub adam_step: u64,
    pub learning_rate: f64,
    pub best_epoch: usize,
    pub best_score: f64,
    pub best_val_loss: f64,
    pub epochs_since_best: usize,
    pub epochs_since_lr_improvement: usize,
    /// sha256 of the model config + data, so a resume with other inputs is refused.
    pub run_key: String,
    pub best_metrics: BTreeMap<String, f64>,
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

pub fn versions() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ser-model".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("candle".to_string(), "0.11".to_string()),
    ])
}

/// Saves tensors to safetensors atomically.
pub fn save_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    let tensors: std::collections::HashMap<&String, Tensor> = tensors.iter().map(|(k, t)| (k, t.clone())).collect();
    candle_core::safetensors::save(&tensors, &tmp).map_err(|e| Error::candle(path, e))?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// The variables of a network as a name -> tensor map.
pub fn varmap_tensors(varmap: &VarMap) -> BTreeMap<String, Tensor> {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
}

/// Fills the network's variables from a safetensors file; every variable must be present with
/// its shape.
pub fn load_into(varmap: &VarMap, path: &Path, device: &Device) -> Result<()> {
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| Error::candle(path, e))?;
    let data = varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        let t = tensors.get(name).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("tensor `{name}` is missing; was this checkpoint written for another model config?"),
        })?;
        if t.dims() != var.dims() {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                message: format!("tensor `{name}` has shape {:?}, the model config needs {:?}", t.dims(), var.dims()),
            });
        }
        var.set(t).map_err(|e| Error::candle(path, e))?;
    }
    Ok(())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("contract types serialise");
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(Error::from)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
}

/// A loaded checkpoint: sidecar and network, ready for inference.
#[derive(Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub meta: ModelJson,
    pub network: Network,
    pub device: Device,
}

impl Checkpoint {
    /// Loads `model.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
        let sidecar = dir.join(SIDECAR_FILE);
        if !sidecar.is_file() {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                message: format!(
                    "no {SIDECAR_FILE}: not a ser checkpoint directory (train one with `ser-model train`)"
                ),
            });
        }
        let raw: serde_json::Value = read_json(&sidecar)?;
        let version = raw.get("format_version").and_then(|v| v.as_u64());
        if version != Some(FORMAT_VERSION as u64) {
            return Err(Error::Checkpoint {
                path: sidecar,
                message: format!("format_version {version:?} is not supported (this build reads {FORMAT_VERSION})"),
            });
        }
        let meta: ModelJson = serde_json::from_value(raw)
            .map_err(|e| Error::Checkpoint { path: sidecar.clone(), message: e.to_string() })?;
        if meta.features_config.hash() != meta.features_config_hash {
            return Err(Error::Checkpoint {
                path: sidecar,
                message: "features_config does not match features_config_hash".into(),
            });
        }
        let (network, varmap) = network::build(&meta.model_config, meta.n_coeffs, meta.labels.len(), device)
            .map_err(|e| Error::candle(dir, e))?;
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            return Err(Error::Checkpoint { path: weights, message: "missing weights file".into() });
        }
        load_into(&varmap, &weights, device)?;
        Ok(Checkpoint { dir: dir.to_path_buf(), meta, network, device: device.clone() })
    }

    /// Fails unless a feature table was computed with this checkpoint's feature config.
    pub fn check_features(&self, table_path: &Path, config: &FeaturesConfig) -> Result<()> {
        if config.hash() != self.meta.features_config_hash {
            return Err(Error::Data(format!(
                "{}: feature config hash {} differs from the checkpoint's {} ({}); re-extract with the checkpoint's features_config",
                table_path.display(),
                config.hash(),
                self.meta.features_config_hash,
                self.dir.display()
            )));
        }
        Ok(())
    }
}
