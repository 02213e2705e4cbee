//! `eval.yaml`: the evaluation stage's params.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Every key is optional: an absent one takes its value from [`EvalConfig::defaults`], and a
/// pipeline without an `eval` section evaluates with those alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default = "EvalConfig::defaults")]
pub struct EvalConfig {
    /// Bootstrap resamples for the confidence intervals (0 = none).
    pub bootstrap_resamples: usize,
    /// Confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// Seed of the bootstrap resampling.
    pub seed: u64,
    /// How many of the most frequent confusions the report names.
    pub top_confusions: usize,
    /// `all`: score the predictions as they are (a true label outside the model's classes is an
    /// error). `shared`: score another corpus's labels on the classes the model and the labels
    /// share, the argmax restricted to them; the other labels' clips and the model's other
    /// classes are left out, and the report says which.
    #[serde(default, skip_serializing_if = "ClassSet::is_all")]
    pub classes: ClassSet,
}

/// Which classes an evaluation scores (`classes` in eval.yaml).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassSet {
    #[default]
    All,
    Shared,
}

impl ClassSet {
    pub fn is_all(&self) -> bool {
        *self == ClassSet::All
    }
}

impl EvalConfig {
    /// The defaults: 1000 bootstrap resamples for 95% intervals (seed 42), the ten most frequent
    /// confusions named, every class scored.
    pub fn defaults() -> Self {
        EvalConfig { bootstrap_resamples: 1000, confidence: 0.95, seed: 42, top_confusions: 10, classes: ClassSet::All }
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
