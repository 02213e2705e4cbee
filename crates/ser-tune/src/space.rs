//! `tune.yaml`: the search space and budgets, and drawing trial `i`'s parameters.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ser_model::config::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One searched parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Param {
    /// One of the listed values, uniformly.
    Choice(Vec<yaml_serde::Value>),
    Range(Range),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Range {
    /// A float uniformly in [low, high].
    Uniform([f64; 2]),
    /// A float whose log is uniform in [ln low, ln high].
    LogUniform([f64; 2]),
    /// An integer uniformly in [low, high], both included.
    Int([i64; 2]),
}

/// What the search maximises, measured on the split's val part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    ValAccuracy,
    ValMacroF1,
    ValUar,
}

impl Objective {
    pub fn key(self) -> &'static str {
        match self {
            Objective::ValAccuracy => "val_accuracy",
            Objective::ValMacroF1 => "val_macro_f1",
            Objective::ValUar => "val_uar",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConfig {
    /// Trial i's parameters depend on (seed, i) only.
    pub seed: u64,
    /// Trials 0..trials.
    pub trials: u32,
    pub objective: Objective,
    /// Start no new trial after this many seconds (null = no limit).
    pub time_budget_s: Option<f64>,
    /// `model.yaml` keys every trial shares (e.g. a shorter `max_epochs`), over the base config.
    #[serde(default)]
    pub fixed: BTreeMap<String, yaml_serde::Value>,
    /// The searched `model.yaml` keys.
    pub space: BTreeMap<String, Param>,
    /// Stop trials that trail the finished ones (null = every trial runs to its end).
    #[serde(default)]
    pub pruning: Option<Pruning>,
}

/// Early pruning: a trial that trails the finished trials stops, recorded as `pruned`.
///
/// Which trials have finished when a trial is judged depends on the order they ran in, so with
/// pruning on, a search run with `--jobs` or in shards may prune other trials than a sequential
/// run (the draws stay the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pruning {
    pub rule: PruneRule,
    /// No trial is judged before this many epochs.
    pub warmup_epochs: usize,
    /// Judge only once this many trials have finished.
    pub min_trials: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneRule {
    /// After epoch e, stop when the trial's best objective so far is below the median of the
    /// finished trials' best objective up to epoch e.
    Median,
}

impl TuneConfig {
    pub fn from_yaml(path: &Path, text: &str) -> Result<TuneConfig> {
        let config: TuneConfig =
            yaml_serde::from_str(text).map_err(|e| Error::File { path: path.to_path_buf(), message: e.to_string() })?;
        config.validate().map_err(|message| Error::File { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.trials == 0 {
            return Err("trials must be at least 1".into());
        }
        if let Some(p) = &self.pruning
            && (p.warmup_epochs == 0 || p.min_trials == 0)
        {
            return Err("pruning: warmup_epochs and min_trials must be at least 1".into());
        }
        let known = model_keys(&ModelConfig::reference());
        for key in self.space.keys().chain(self.fixed.keys()) {
            if !known.contains(key) {
                return Err(format!("`{key}` is not a model.yaml key (known: {})", known.join(", ")));
            }
        }
        for (key, param) in &self.space {
            let bad = match param {
                Param::Choice(values) => values.is_empty().then(|| "an empty list of choices".to_string()),
                Param::Range(Range::Uniform([lo, hi])) => {
                    (!(lo.is_finite() && hi.is_finite() && lo <= hi)).then(|| format!("uniform [{lo}, {hi}]"))
                }
                Param::Range(Range::LogUniform([lo, hi])) => {
                    (!(0.0 < *lo && lo <= hi)).then(|| format!("log_uniform [{lo}, {hi}] (needs 0 < low <= high)"))
                }
                Param::Range(Range::Int([lo, hi])) => (lo > hi).then(|| format!("int [{lo}, {hi}]")),
            };
            if let Some(bad) = bad {
                return Err(format!("space.{key}: {bad}"));
            }
        }
        Ok(())
    }

    /// Trial `trial`'s drawn values, keys in sorted order.
    pub fn draw(&self, trial: u32) -> BTreeMap<String, yaml_serde::Value> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(trial as u64);
        self.space
            .iter()
            .map(|(key, param)| {
                let value = match param {
                    Param::Choice(values) => values[rng.random_range(0..values.len())].clone(),
                    Param::Range(Range::Uniform([lo, hi])) => {
                        yaml_serde::Value::from(lo + (hi - lo) * rng.random::<f64>())
                    }
                    Param::Range(Range::LogUniform([lo, hi])) => {
                        yaml_serde::Value::from((lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp())
                    }
                    Param::Range(Range::Int([lo, hi])) => yaml_serde::Value::from(rng.random_range(*lo..=*hi)),
                };
                (key.clone(), value)
            })
            .collect()
    }

    /// The model config of trial `trial`: base, then `fixed`, then the drawn values.
    pub fn trial_config(
        &self,
        base: &ModelConfig,
        trial: u32,
    ) -> Result<(ModelConfig, BTreeMap<String, yaml_serde::Value>)> {
        let drawn = self.draw(trial);
        let config = with_values(base, self.fixed.iter().chain(drawn.iter())).map_err(|e| {
            Error::Config(format!("trial {trial}: parameters {drawn:?} do not make a valid model.yaml: {e}"))
        })?;
        Ok((config, drawn))
    }

    /// The config to train a final model with: base and trial `trial`'s drawn values, without
    /// `fixed` (the search's shortcuts, such as fewer epochs).
    pub fn final_config(&self, base: &ModelConfig, trial: u32) -> Result<ModelConfig> {
        let drawn = self.draw(trial);
        with_values(base, drawn.iter())
            .map_err(|e| Error::Config(format!("trial {trial}: parameters {drawn:?} over the base config: {e}")))
    }
}

/// `base` with some keys replaced.
fn with_values<'a>(
    base: &ModelConfig,
    values: impl Iterator<Item = (&'a String, &'a yaml_serde::Value)>,
) -> std::result::Result<ModelConfig, String> {
    let mut map: BTreeMap<String, yaml_serde::Value> =
        yaml_serde::from_value(yaml_serde::to_value(base).expect("ModelConfig serialises")).expect("a mapping");
    for (k, v) in values {
        map.insert(k.clone(), v.clone());
    }
    let text = yaml_serde::to_string(&map).expect("a mapping serialises");
    ModelConfig::from_yaml(&text).map_err(|e| e.to_string())
}

fn model_keys(config: &ModelConfig) -> Vec<String> {
    match yaml_serde::to_value(config).expect("ModelConfig serialises") {
        yaml_serde::Value::Mapping(m) => m.keys().filter_map(|k| k.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}
