//! ser-pipeline: what a pipeline is and how make runs it.
//!
//! A pipeline is one YAML file, `pipelines/<name>.yaml`: where its clips come from (`data`) and
//! each stage's params (`features`, `split`, `model`, and optionally `ensemble`, `tune`, `eval`,
//! `infer`). `extends: <base>` takes another pipeline and changes only the keys it gives
//! ([`pipeline::merge`]). [`pipeline::load`] resolves one with the stages' own parsers, so a
//! pipeline make would run is one every stage accepts; [`plan::plan`] turns it, and the
//! pipelines it stands on (its ensemble's other members, the cross-validation of a deployment
//! model), into the make rules the Makefile includes, and [`io::write_resolved`] writes each
//! stage's resolved params file, rewriting only those whose content changed, so that make
//! re-runs a stage exactly when its params changed.

use std::path::PathBuf;

pub mod io;
pub mod pipeline;
pub mod plan;

pub use pipeline::{DataSource, Pipeline, Stage, load};

/// Everything that can go wrong here; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IO error from `fs_err`, whose message already names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: {message}")]
    Pipeline { path: PathBuf, message: String },
    #[error(transparent)]
    Features(#[from] ser_features::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
