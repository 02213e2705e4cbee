//! ser-features: speech audio to a Parquet feature table.
//!
//! Decoding ([`audio`]), librosa-exact MFCC, log-mel and deltas ([`dsp`]), pitch, periodicity
//! and zero-crossing rate ([`prosody`]), corpus labels
//! ([`labels`]), the feature table and split file contracts ([`table`], [`io`], [`split`]), the
//! stage itself ([`extract`]) and a synthetic corpus for tests and demos ([`synth`]).
//! No candle here: downstream stages read the table.

use std::path::{Path, PathBuf};

pub mod audio;
pub mod augment;
pub mod channel;
pub mod config;
pub mod dsp;
pub mod extract;
pub mod frames;
pub mod io;
pub mod labels;
pub mod prosody;
pub mod split;
pub mod synth;
pub mod table;

pub use config::{AudioAugment, ClipNorm, FeatureKind, FeaturesConfig, PadMode, ProsodyConfig, SplitConfig};

/// Everything that can go wrong in this crate; each variant names the file or setting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IO error from `fs_err`, whose message already names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: {source}")]
    IoAt { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Audio { path: PathBuf, source: audio::AudioError },
    #[error(
        "{path}: {reason} (--strict stops at the first bad file; without it, bad files are listed in the rejects table)"
    )]
    Rejected { path: PathBuf, reason: String },
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::IoAt { path: path.to_path_buf(), source }
    }

    pub fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Error {
        Error::Parquet { path: path.to_path_buf(), source }
    }

    pub fn csv(path: &Path, source: csv::Error) -> Error {
        Error::Csv { path: path.to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub use io::{read_features_config, read_split_config};
