//! ser-tune: seeded random search over the network's hyperparameters.
//!
//! Trial `i` draws its parameters from `(seed, i)` alone, so one machine, `--jobs N` or `--shard
//! i/n` across machines all draw the same trials. Each finished trial is one small JSON file
//! written atomically (temp file, fsync, rename) in `trials/`: a `kill -9` loses at most the
//! trials in flight, and a rerun skips every trial whose file exists. `merge` (or the end of a
//! run) assembles `trials.csv` and `best.yaml`, the best parameters in `model.yaml`'s format.

pub mod space;
pub mod trials;

pub use space::{Param, TuneConfig};
pub use trials::{TrialRecord, TrialStatus, merge, run_search};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    File { path: std::path::PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Model(#[from] ser_model::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
