//! `eval.yaml`: the evaluation stage's params.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Bootstrap resamples for the confidence intervals (0 = none).
    pub bootstrap_resamples: usize,
    /// Confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// Seed of the bootstrap resampling.
    pub seed: u64,
    /// How many of the most frequent confusions the report names.
    pub top_confusions: usize,
}

impl EvalConfig {
    /// The values `pipelines/*/eval.yaml` ship with.
    pub fn reference() -> Self {
        EvalConfig { bootstrap_resamples: 1000, confidence: 0.95, seed: 42, top_confusions: 10 }
    }

    pub fn from_yaml(path: &Path, text: &str) -> Result<Self> {
        let config: EvalConfig = yaml_serde::from_str(text).map_err(|e| Error::file(path, e.to_string()))?;
        config.validate().map_err(|m| Error::file(path, m))?;
        Ok(config)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(format!("confidence must be in (0, 1), got {}", self.confidence));
        }
        Ok(())
    }
}
