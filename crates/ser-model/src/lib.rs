//! ser-model: the CNN + BiLSTM network in candle ([`network`], [`lstm`]), its training loop
//! ([`train`]), the checkpoint format ([`checkpoint`]) and batch prediction to
//! `predictions.parquet` ([`predict`]). Reads no audio and picks no hyperparameters: the
//! feature table comes from ser-features, the config from `model.yaml` or ser-tune.

use std::path::{Path, PathBuf};

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod fused;
pub mod linalg;
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

/// The CPU, or CUDA device 0 when `cuda` is asked for; a clear error when this build has no CUDA.
/// The environment variable that sizes candle's pool for element-wise CPU ops.
pub const CANDLE_THREADS_VAR: &str = "CANDLE_NUM_THREADS";

/// Runs candle's element-wise CPU ops on the calling thread, unless `CANDLE_NUM_THREADS` is set.
///
/// candle splits element-wise ops of 64K+ values over a pool of threads that spin while they
/// wait. For this network's tensors that costs more than it saves, and on a busy machine (two
/// trainings, a search with `--jobs 2`, a loaded server) the spinning eats the cores outright:
/// an epoch took 4.3 s with this and 14-17 s without while another training ran beside it,
/// with bit-identical weights. Matrix products stay parallel (rayon, `RAYON_NUM_THREADS`).
///
/// # Safety
/// Sets an environment variable: call it at the start of `main`, before any thread starts.
pub unsafe fn use_inline_elementwise_ops() {
    if std::env::var_os(CANDLE_THREADS_VAR).is_none() {
        // SAFETY: the caller guarantees no other thread runs yet.
        unsafe { std::env::set_var(CANDLE_THREADS_VAR, "1") };
    }
}

pub fn select_device(cuda: bool) -> Result<candle_core::Device> {
    let device = if cuda {
        if !candle_core::utils::cuda_is_available() {
            return Err(Error::Config(
                "--device cuda: this binary was built without CUDA; rebuild with `cargo build --release --features cuda`"
                    .into(),
            ));
        }
        candle_core::Device::new_cuda(0).map_err(|e| Error::Config(format!("opening CUDA device 0: {e}")))?
    } else {
        if !candle_core::utils::cuda_is_available() {
            tracing::debug!("built without CUDA; rebuild with `--features cuda` to run on a GPU");
        }
        candle_core::Device::Cpu
    };
    tracing::info!("device: {device:?}");
    Ok(device)
}

/// Reads and validates `model.yaml`.
pub fn read_model_config(path: &Path) -> Result<ModelConfig> {
    let text = fs_err::read_to_string(path)?;
    ModelConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}
