//! `pipelines/<name>/model.yaml`: the network's sizes and the training recipe. Unknown keys are
//! an error. ser-tune writes `best.yaml` in this exact format. Also `ensemble.yaml`
//! ([`EnsembleConfig`]): the seeds a pipeline trains `model.yaml` with, and the other pipelines
//! whose checkpoints join them, to average them.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Filters of the first Conv1D.
    pub conv1_filters: usize,
    /// Kernel size of the first Conv1D (odd: "same" padding is symmetric).
    pub conv1_kernel: usize,
    pub conv2_filters: usize,
    pub conv2_kernel: usize,
    /// Units per direction of the first bidirectional LSTM (full sequence).
    pub lstm1_units: usize,
    /// Units per direction of the second bidirectional LSTM.
    pub lstm2_units: usize,
    /// Attention pooling over the second LSTM's states, with this many units, instead of its
    /// last state (absent: the last state, as the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_units: Option<usize>,
    pub dense_units: usize,
    pub dropout_conv: f32,
    pub dropout_lstm: f32,
    pub dropout_dense: f32,
    /// Adam's initial learning rate.
    pub learning_rate: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Epochs without improvement of `monitor` before stopping (the best weights are kept).
    pub patience: usize,
    /// The validation metric that picks the best epoch.
    pub monitor: Monitor,
    /// Epochs without a lower validation loss before the learning rate is multiplied by `lr_factor`.
    pub lr_patience: usize,
    pub lr_factor: f64,
    pub min_lr: f64,
    /// Weight the loss by inverse class frequency (neutral has half the clips in RAVDESS).
    pub class_weights: bool,
    /// Label smoothing of the training targets (0: none, as the reference).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f32,
    /// What early stopping and the learning-rate schedule watch. `val` is the honest protocol;
    /// `test_optimistic` reproduces the reference's use of the test part for early stopping and
    /// exists for comparison only: its test figures are biased upwards.
    pub early_stopping_on: StoppingPart,
    /// Seeds weights, shuffling and dropout.
    pub seed: u64,
    /// A gender head trained alongside the emotions (multi-task learning): the last layer also
    /// gives the clip's gender ([`ser_features::labels::GENDERS`], from the table's `gender`
    /// column), and its cross-entropy, times this weight, is added to the loss; clips without a
    /// gender add nothing to it. Predictions and exports give the emotions alone. Absent: no head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender_weight: Option<f32>,
    /// Keep an exponential moving average of the weights with this decay per optimiser step
    /// (for example 0.999: about the last thousand steps; [`crate::average`]); validation,
    /// early stopping and the checkpoint use the average instead of the last step's weights.
    /// Absent: no average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_average: Option<f64>,
    /// Several corpora in one model: each corpus weighs the same in the loss, whatever its number
    /// of clips ("balanced" over the training part's corpora, as `class_weights` over classes),
    /// and in the validation figures that choose the epoch (the mean of each corpus's). Absent:
    /// every clip weighs the same.
    #[serde(default, skip_serializing_if = "is_false")]
    pub corpus_weights: bool,
    /// Several corpora in one model: each clip's softmax (and its label smoothing) runs over the
    /// classes its corpus has in the training part, so a corpus without, say, disgust is never
    /// taught that its clips are not disgust. Absent: every class. Prediction uses every class.
    #[serde(default, skip_serializing_if = "is_false")]
    pub corpus_classes: bool,
    /// Domain-adversarial training (Ganin & Lempitsky 2015): a head on the last hidden layer
    /// learns to tell each training clip's corpus or speaker, and its gradient reaches the layers
    /// below reversed, so they learn what does not tell them apart. Training only: the head is
    /// left out of the checkpoint. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversary: Option<Adversary>,
    /// Training-time augmentation of the standardised features (off when absent).
    #[serde(default, skip_serializing_if = "Augment::is_off")]
    pub augment: Augment,
}

/// What a domain-adversarial head learns to tell apart, and how much its reversed gradient
/// weighs against the emotions'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adversary {
    pub against: Domain,
    /// The weight of the head's cross-entropy in the loss (the reversal's lambda).
    pub weight: f32,
}

/// A clip's domain, as the feature table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// The table's `corpus` column.
    Corpus,
    /// The table's `speaker` column.
    Speaker,
}

/// Augmentation of each training batch, drawn from a generator seeded by `(seed, epoch)`, so
/// runs stay reproducible. Validation, test and inference never see it. Masked values are set
/// to 0, the training mean of the standardised features.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Shift each clip in time by up to this many frames either way (circularly).
    pub time_shift: usize,
    /// Time masks per clip (SpecAugment), each a run of up to `time_mask_width` frames.
    pub time_masks: usize,
    pub time_mask_width: usize,
    /// Feature masks per clip, each a run of up to `feature_mask_width` coefficients.
    pub feature_masks: usize,
    pub feature_mask_width: usize,
    /// Standard deviation of Gaussian noise added to every standardised value.
    pub noise_std: f32,
    /// Mixup: each batch becomes `l * x + (1 - l) * x[perm]` with `l ~ Beta(alpha, alpha)` and
    /// the loss mixes the two targets likewise. 0 turns it off.
    pub mixup_alpha: f32,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// A convolution's kernel: odd, for "same" padding is symmetric only then.
pub fn check_kernel(name: &str, kernel: usize) -> Result<()> {
    if kernel.is_multiple_of(2) {
        return Err(Error::Config(format!("{name}: {kernel} must be odd (same padding is symmetric)")));
    }
    Ok(())
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl Augment {
    pub fn is_off(&self) -> bool {
        *self == Augment::default()
    }

    fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        if (self.time_masks > 0) != (self.time_mask_width > 0) {
            return fail("augment: time_masks and time_mask_width go together (both 0 or both positive)".into());
        }
        if (self.feature_masks > 0) != (self.feature_mask_width > 0) {
            return fail("augment: feature_masks and feature_mask_width go together (both 0 or both positive)".into());
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite()) {
            return fail(format!("augment.noise_std: {} must be >= 0", self.noise_std));
        }
        if !(self.mixup_alpha >= 0.0 && self.mixup_alpha.is_finite()) {
            return fail(format!("augment.mixup_alpha: {} must be >= 0", self.mixup_alpha));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    ValAccuracy,
    ValMacroF1,
    ValUar,
    ValLoss,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppingPart {
    Val,
    TestOptimistic,
    /// No validation: exactly `max_epochs` epochs at `learning_rate`, the last epoch's weights
    /// kept (a deployment model trained on every clip, its epoch count taken from
    /// cross-validation). `patience`, `monitor` and the learning-rate schedule do not apply.
    None,
}

impl ModelConfig {
    /// The reference's best hyperparameters with its training recipe (honest validation).
    pub fn reference() -> ModelConfig {
        ModelConfig {
            conv1_filters: 64,
            conv1_kernel: 5,
            conv2_filters: 128,
            conv2_kernel: 3,
            lstm1_units: 64,
            lstm2_units: 32,
            attention_units: None,
            dense_units: 128,
            dropout_conv: 0.3,
            dropout_lstm: 0.4,
            dropout_dense: 0.5,
            learning_rate: 1e-3,
            batch_size: 16,
            max_epochs: 150,
            patience: 20,
            monitor: Monitor::ValAccuracy,
            lr_patience: 10,
            lr_factor: 0.5,
            min_lr: 1e-5,
            class_weights: false,
            label_smoothing: 0.0,
            early_stopping_on: StoppingPart::Val,
            seed: 42,
            gender_weight: None,
            weight_average: None,
            corpus_weights: false,
            corpus_classes: false,
            adversary: None,
            augment: Augment::default(),
        }
    }

    pub fn from_yaml(text: &str) -> Result<ModelConfig> {
        let config: ModelConfig = yaml_serde::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).expect("ModelConfig serialises")
    }

    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        for (name, v) in [
            ("conv1_filters", self.conv1_filters),
            ("conv2_filters", self.conv2_filters),
            ("lstm1_units", self.lstm1_units),
            ("lstm2_units", self.lstm2_units),
            ("dense_units", self.dense_units),
            ("batch_size", self.batch_size),
            ("max_epochs", self.max_epochs),
        ] {
            if v == 0 {
                return fail(format!("{name}: must be positive"));
            }
        }
        for (name, k) in [("conv1_kernel", self.conv1_kernel), ("conv2_kernel", self.conv2_kernel)] {
            check_kernel(name, k)?;
        }
        for (name, p) in [
            ("dropout_conv", self.dropout_conv),
            ("dropout_lstm", self.dropout_lstm),
            ("dropout_dense", self.dropout_dense),
        ] {
            if !(0.0..1.0).contains(&p) {
                return fail(format!("{name}: {p} must be in [0, 1)"));
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return fail(format!("learning_rate: {} must be positive", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return fail(format!("label_smoothing: {} must be in [0, 1)", self.label_smoothing));
        }
        if let Some(w) = self.gender_weight
            && !(w > 0.0 && w.is_finite())
        {
            return fail(format!("gender_weight: {w} must be a positive weight, or absent for no gender head"));
        }
        if let Some(a) = &self.adversary
            && !(a.weight > 0.0 && a.weight.is_finite())
        {
            return fail(format!("adversary.weight: {} must be a positive weight, or adversary absent", a.weight));
        }
        if let Some(d) = self.weight_average
            && !(d > 0.0 && d < 1.0)
        {
            return fail(format!(
                "weight_average: {d} must be a decay in (0, 1), for example 0.999, or absent for no average"
            ));
        }
        if self.attention_units == Some(0) {
            return fail("attention_units: must be positive, or absent for the last state".into());
        }
        if !(self.lr_factor > 0.0 && self.lr_factor <= 1.0) {
            return fail(format!("lr_factor: {} must be in (0, 1]", self.lr_factor));
        }
        self.augment.validate()
    }
}

/// `pipelines/<name>/ensemble.yaml`: train `model.yaml` once per seed (its `seed` replaced) and
/// answer with the mean of the members' probabilities (`ser-model ensemble`). `pipelines` adds
/// one member for each pipeline it names: that pipeline's checkpoint (the same fold's), trained
/// by its own rules on its own features, so a member may follow another recipe. The Makefile
/// reads `seeds` and `pipelines` from one line each, a flow list; `ser-model ensemble --config`
/// checks the members against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    pub seeds: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<String>,
}

impl EnsembleConfig {
    pub fn from_yaml(text: &str) -> Result<EnsembleConfig> {
        let config: EnsembleConfig = yaml_serde::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let fail = |msg: String| Err(Error::Config(msg));
        if config.seeds.is_empty() || config.seeds.len() + config.pipelines.len() < 2 {
            return fail(format!(
                "seeds: {:?}: an ensemble needs two or more members, one seed at least (remove ensemble.yaml for one model)",
                config.seeds
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = config.seeds.iter().find(|s| !seen.insert(**s)) {
            return fail(format!("seeds: {dup} appears twice; members of one seed are one model"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &config.pipelines {
            let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !plain || name.starts_with('.') {
                return fail(format!("pipelines: `{name}` is not a pipeline name (letters, digits, _ . -)"));
            }
            if !seen.insert(name) {
                return fail(format!("pipelines: {name} appears twice"));
            }
        }
        Ok(config)
    }

    /// Fails unless `seeds` (the members', in order) are this config's seeds followed by one
    /// member for each of its pipelines.
    pub fn check_members(&self, seeds: &[u64]) -> Result<()> {
        let own = seeds.get(..self.seeds.len());
        if own != Some(&self.seeds[..]) || seeds.len() != self.seeds.len() + self.pipelines.len() {
            let more = if self.pipelines.is_empty() {
                String::new()
            } else {
                format!(", then one member for each of {:?}", self.pipelines)
            };
            return Err(Error::Config(format!(
                "ensemble.yaml's seeds are {:?}{more}; the members given were trained with {seeds:?}",
                self.seeds
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ensemble_config_is_checked() {
        let config = EnsembleConfig::from_yaml("seeds: [42, 43, 44]  # three\n").unwrap();
        assert_eq!(config.seeds, [42, 43, 44]);
        assert!(config.check_members(&[42, 43, 44]).is_ok());
        let err = config.check_members(&[42, 44, 43]).unwrap_err().to_string();
        assert!(err.contains("[42, 43, 44]") && err.contains("[42, 44, 43]"), "{err}");
        for (bad, says) in [
            ("seeds: [1]", "two or more"),
            ("seeds: [1, 2, 1]", "twice"),
            ("seed: [1, 2]", "seed"),
            ("seeds: []\npipelines: [a, b]", "one seed at least"),
            ("seeds: [1]\npipelines: [a, a]", "a appears twice"),
            ("seeds: [1]\npipelines: [../x]", "`../x` is not a pipeline name"),
        ] {
            let err = EnsembleConfig::from_yaml(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        // Another pipeline's checkpoint is one member more, after the seeds'.
        let mixed = EnsembleConfig::from_yaml("seeds: [42, 43]\npipelines: [other-recipe]\n").unwrap();
        assert!(mixed.check_members(&[42, 43, 42]).is_ok());
        let err = mixed.check_members(&[42, 43]).unwrap_err().to_string();
        assert!(err.contains("then one member for each of [\"other-recipe\"]"), "{err}");
        assert!(mixed.check_members(&[43, 42, 42]).is_err());
        assert!(EnsembleConfig::from_yaml("seeds: [42]\npipelines: [other-recipe]\n").is_ok());
    }

    #[test]
    fn augment_is_optional_and_checked() {
        let plain = ModelConfig::reference().to_yaml();
        assert!(!plain.contains("augment"), "an unaugmented config says nothing about it");
        assert_eq!(ModelConfig::from_yaml(&plain).unwrap().augment, Augment::default());
        let with = format!("{plain}augment:\n  time_masks: 2\n  time_mask_width: 20\n");
        let config = ModelConfig::from_yaml(&with).unwrap();
        assert_eq!(config.augment.time_masks, 2);
        assert_eq!(ModelConfig::from_yaml(&config.to_yaml()).unwrap(), config, "round trip");
        for bad in [
            "augment:\n  time_masks: 2\n",
            "augment:\n  feature_mask_width: 3\n",
            "augment:\n  noise_std: -0.1\n",
            "augment:\n  mixup_alpha: -1\n",
            "augment:\n  time_mask: 2\n",
        ] {
            let err = ModelConfig::from_yaml(&format!("{plain}{bad}")).unwrap_err().to_string();
            assert!(err.contains("augment") || err.contains("time_mask"), "{bad}: {err}");
        }
    }
}
