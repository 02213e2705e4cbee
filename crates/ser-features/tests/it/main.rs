//! ser-features integration tests: one binary, one module per feature.

mod audio;
mod cli;
mod golden;
mod labels;
mod splits;
mod table;

use std::path::PathBuf;

/// A file in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}
