//! Classification metrics with scikit-learn's definitions, as pure functions of values: the
//! scores of a confusion matrix are `ser_core::scores`'s (also what training watches), and here
//! are the report's rest:
//!
//! - `log_loss` is sklearn's `log_loss(y_true, p, labels=classes)`: rows renormalised, clipped to
//!   [eps, 1 - eps] with eps = 2.2e-16.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use ser_core::scores::{confusion, scores};

use crate::EvalConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Clips whose true label is this class.
    pub support: u64,
    /// Clips predicted as this class.
    pub predicted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub resamples: usize,
    pub confidence: f64,
    pub seed: u64,
    pub accuracy: Interval,
    pub macro_f1: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Count of (true class, predicted class) in class order.
    pub counts: Vec<Vec<u64>>,
}

/// Everything `metrics.json` holds for one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub uar: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    /// Null when the predictions carry no probability columns.
    pub log_loss: Option<f64>,
    pub n: usize,
    /// The class list of the predictions, in class-index order.
    pub labels: Vec<String>,
    /// The classes with support, over which the macro averages run.
    pub classes_evaluated: Vec<String>,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Confusion,
    pub bootstrap: Option<Bootstrap>,
}

/// sklearn's `log_loss(y_true, p, labels=range(n_classes))`.
pub fn log_loss(truth: &[usize], probabilities: &[Vec<f64>]) -> f64 {
    let eps = f64::EPSILON;
    let total: f64 = truth
        .iter()
        .zip(probabilities)
        .map(|(&t, p)| {
            let sum: f64 = p.iter().sum();
            let q = if sum > 0.0 { p[t] / sum } else { 0.0 };
            -q.clamp(eps, 1.0 - eps).ln()
        })
        .sum();
    total / truth.len().max(1) as f64
}

/// numpy's default (linear) percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn bootstrap(k: usize, truth: &[usize], predicted: &[usize], config: &EvalConfig) -> Option<Bootstrap> {
    if config.bootstrap_resamples == 0 || truth.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = truth.len();
    let (mut accuracy, mut macro_f1) = (Vec::new(), Vec::new());
    let mut counts = vec![vec![0u64; k]; k];
    for _ in 0..config.bootstrap_resamples {
        counts.iter_mut().for_each(|row| row.fill(0));
        for _ in 0..n {
            let i = rng.random_range(0..n);
            counts[truth[i]][predicted[i]] += 1;
        }
        let c = scores(&counts);
        accuracy.push(c.accuracy);
        macro_f1.push(c.macro_f1);
    }
    let tail = (1.0 - config.confidence) / 2.0;
    let interval = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        Interval { low: percentile(values, tail), high: percentile(values, 1.0 - tail) }
    };
    Some(Bootstrap {
        resamples: config.bootstrap_resamples,
        confidence: config.confidence,
        seed: config.seed,
        accuracy: interval(&mut accuracy),
        macro_f1: interval(&mut macro_f1),
    })
}

/// All metrics of class indices `truth` vs `predicted` over `labels`.
pub fn evaluate(
    labels: &[String],
    truth: &[usize],
    predicted: &[usize],
    probabilities: Option<&[Vec<f64>]>,
    config: &EvalConfig,
) -> Metrics {
    assert_eq!(truth.len(), predicted.len(), "one prediction per true label");
    let k = labels.len();
    let counts = confusion(k, truth, predicted);
    let c = scores(&counts);
    Metrics {
        accuracy: c.accuracy,
        uar: c.uar,
        macro_f1: c.macro_f1,
        weighted_f1: c.weighted_f1,
        macro_precision: c.macro_precision,
        macro_recall: c.macro_recall,
        log_loss: probabilities.map(|p| log_loss(truth, p)),
        n: truth.len(),
        labels: labels.to_vec(),
        classes_evaluated: c.present.iter().map(|&i| labels[i].clone()).collect(),
        per_class: c
            .per_class
            .iter()
            .enumerate()
            .map(|(i, c)| ClassMetrics {
                label: labels[i].clone(),
                precision: c.precision,
                recall: c.recall,
                f1: c.f1,
                support: c.support,
                predicted: c.predicted,
            })
            .collect(),
        confusion: Confusion { counts },
        bootstrap: bootstrap(k, truth, predicted, config),
    }
}

impl Metrics {
    /// The off-diagonal cells, most frequent first (ties in class order): (true, predicted, count).
    pub fn top_confusions(&self, n: usize) -> Vec<(&str, &str, u64)> {
        let mut cells = Vec::new();
        for (t, row) in self.confusion.counts.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                if t != p && count > 0 {
                    cells.push((self.labels[t].as_str(), self.labels[p].as_str(), count));
                }
            }
        }
        cells.sort_by_key(|c| std::cmp::Reverse(c.2));
        cells.truncate(n);
        cells
    }

    /// The headline figures by name, for aggregation and comparison.
    pub fn headline(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            ("accuracy", self.accuracy),
            ("uar", self.uar),
            ("macro_f1", self.macro_f1),
            ("weighted_f1", self.weighted_f1),
            ("macro_precision", self.macro_precision),
            ("macro_recall", self.macro_recall),
        ];
        if let Some(l) = self.log_loss {
            out.push(("log_loss", l));
        }
        out
    }
}

/// Mean, sample standard deviation (n - 1), min and max of one metric over runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Spread {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Spread {
        mean,
        std: var.sqrt(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}
