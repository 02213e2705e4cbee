mod errors;
mod golden;
mod report;

use std::path::{Path, PathBuf};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn config() -> ser_eval::EvalConfig {
    ser_eval::EvalConfig::defaults()
}
