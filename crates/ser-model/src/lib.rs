//! ser-model: the CNN + BiLSTM network in candle ([`network`], [`lstm`]), its training loop
//! ([`train`]), the checkpoint format ([`checkpoint`]) and batch prediction to
//! `predictions.parquet` ([`predict`]). Reads no audio and picks no hyperparameters: the
//! feature table comes from ser-features, the config from `model.yaml` or ser-tune.

use std::path::{Path, PathBuf};

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod lstm;
pub mod metrics;
pub mod network;
pub mod predict;
pub mod train;

pub use config::ModelConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Features(#[from] ser_features::Error),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Data(String),
    #[error("training failed: {0}")]
    Train(String),
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Candle { path: PathBuf, source: candle_core::Error },
}

impl Error {
    pub fn candle(path: &Path, source: candle_core::Error) -> Error {
        Error::Candle { path: path.to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads and validates `model.yaml`.
pub fn read_model_config(path: &Path) -> Result<ModelConfig> {
    let text = fs_err::read_to_string(path)?;
    ModelConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}
