//! ser-eval: predictions in, metrics, confusion matrices, training curves and a readable report out.
//!
//! Reads `predictions.parquet` (ours or anyone's with the same columns), optionally a checkpoint's
//! `history.csv` and `model.json`, and writes `metrics.json`, `confusion.csv`, pictures and
//! `report.md` / `report.html`. Depends on no candle and no other stage: the file contract is all
//! it knows.

pub mod compare;
pub mod config;
pub mod history;
pub mod io;
pub mod metrics;
pub mod plot;
pub mod predictions;
pub mod report;
pub mod robustness;

use std::path::{Path, PathBuf};

pub use config::{ClassSet, EvalConfig};
pub use io::read_predictions;
pub use metrics::{Metrics, evaluate};
pub use predictions::PredictionTable;

/// The eight emotions of the contract, in class-index order, for predictions files that carry
/// neither `p_<emotion>` columns nor `ser.labels` metadata.
pub const DEFAULT_LABELS: [&str; 8] = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("drawing {path}: {message}")]
    Plot { path: PathBuf, message: String },
}

impl Error {
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Error::File { path: path.to_path_buf(), message: message.into() }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
