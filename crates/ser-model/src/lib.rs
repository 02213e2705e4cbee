//! ser-model: the CNN + BiLSTM emotion classifier.
//!
//! The network is a list of layers ([`layers`], built by [`network::Network`] from
//! `model.yaml`), each holding its parameters, its candle forward and its CPU forward and
//! backward. Training ([`train`]) runs one [`step`] per batch with either engine (the
//! hand-written CPU pass, or candle's autograd on any device), the loss of [`loss`], the Adam
//! of [`optim`] and, when set, the weight average of [`average`]; prediction ([`predict`]) runs
//! the CPU forward on the CPU; [`onnx`] writes the same layers as an ONNX graph. [`checkpoint`]
//! is the file contract and [`io`] the only module that touches the disk. Reads no audio and picks no
//! hyperparameters: the feature table comes from ser-features, the config from `model.yaml` or
//! ser-tune.

pub mod augment;
pub mod average;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod graph;
pub mod io;
pub mod layers;
pub mod linalg;
pub mod loss;
pub mod metrics;
pub mod network;
pub mod onnx;
pub mod optim;
pub mod params;
pub mod predict;
pub mod step;
pub mod train;

mod build_info {
    include!(concat!(env!("OUT_DIR"), "/built.rs"));
}

/// The candle-core version this binary was built with (from Cargo.lock, at build time).
pub fn candle_version() -> &'static str {
    build_info::DEPENDENCIES.iter().find(|(name, _)| *name == "candle-core").map_or("unknown", |(_, v)| v)
}

pub use config::ModelConfig;

use std::path::PathBuf;

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
    #[error("prediction failed: {0}")]
    Predict(String),
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The environment variable that sizes candle's pool for element-wise CPU ops.
pub const CANDLE_THREADS_VAR: &str = "CANDLE_NUM_THREADS";

/// Runs candle's element-wise CPU ops on the calling thread, unless `CANDLE_NUM_THREADS` is set.
///
/// candle splits element-wise ops of 64K+ values over a pool of threads that spin while they
/// wait. For this network's tensors that costs more than it saves, and on a busy machine the
/// spinning eats the cores outright. Matrix products stay parallel (rayon,
/// `RAYON_NUM_THREADS`). The CPU paths (training's fused engine, inference) use no candle op.
///
/// # Safety
/// Sets an environment variable: call it at the start of `main`, before any thread starts.
pub unsafe fn use_inline_elementwise_ops() {
    if std::env::var_os(CANDLE_THREADS_VAR).is_none() {
        // SAFETY: the caller guarantees no other thread runs yet.
        unsafe { std::env::set_var(CANDLE_THREADS_VAR, "1") };
    }
}

/// The CPU, or CUDA device 0 when `cuda` is asked for; a clear error when this build has no CUDA.
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
