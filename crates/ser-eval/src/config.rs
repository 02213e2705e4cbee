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
    /// share; a list: on those classes. The argmax is restricted to the classes scored; the
    /// other labels' clips and the model's other classes are left out, and the report says which.
    #[serde(default, skip_serializing_if = "ClassSet::is_all")]
    pub classes: ClassSet,
}

/// Which classes an evaluation scores (`classes` in eval.yaml): `all`, `shared`, or a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ClassSetRepr", into = "ClassSetRepr")]
pub enum ClassSet {
    /// Every prediction as it is.
    #[default]
    All,
    /// The classes the model and the true labels share.
    Shared,
    /// These of the model's classes (a cross-corpus view, e.g. angry, happy, neutral, sad): the
    /// clips of other true labels are left out and the argmax is restricted to these.
    Only(Vec<String>),
}

/// `classes` as YAML writes it: a name, or a list of classes.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ClassSetRepr {
    Name(String),
    List(Vec<String>),
}

impl TryFrom<ClassSetRepr> for ClassSet {
    type Error = String;
    fn try_from(repr: ClassSetRepr) -> std::result::Result<Self, String> {
        match repr {
            ClassSetRepr::Name(name) if name == "all" => Ok(ClassSet::All),
            ClassSetRepr::Name(name) if name == "shared" => Ok(ClassSet::Shared),
            ClassSetRepr::Name(name) => Err(format!("classes: `{name}`: give all, shared, or a list of classes")),
            ClassSetRepr::List(list) if list.is_empty() => Err("classes: the list is empty".into()),
            ClassSetRepr::List(list) => Ok(ClassSet::Only(list)),
        }
    }
}

impl From<ClassSet> for ClassSetRepr {
    fn from(set: ClassSet) -> Self {
        match set {
            ClassSet::All => ClassSetRepr::Name("all".into()),
            ClassSet::Shared => ClassSetRepr::Name("shared".into()),
            ClassSet::Only(list) => ClassSetRepr::List(list),
        }
    }
}

impl ClassSet {
    pub fn is_all(&self) -> bool {
        *self == ClassSet::All
    }

    /// Whether the scored classes are some of the model's: clips of other labels are left out.
    pub fn restricts(&self) -> bool {
        !self.is_all()
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
