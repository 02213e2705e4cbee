//! From a feature table and a split file to standardised tensors-to-be.

use ser_features::labels::{EMOTIONS, emotion_index};
use ser_features::split::{SplitAssignment, SplitPart};
use ser_features::table::{FeatureRow, FeatureTable};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Clips of one split part, as one (N, T, C) block.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub clip_ids: Vec<String>,
    /// Class index in [`EMOTIONS`]; `None` for unlabelled clips (prediction only).
    pub labels: Vec<Option<u32>>,
    pub n_frames: usize,
    pub n_coeffs: usize,
    /// (N, T, C), row-major.
    pub features: Vec<f32>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.clip_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clip_ids.is_empty()
    }

    pub fn clip(&self, idx: usize) -> &[f32] {
        let size = self.n_frames * self.n_coeffs;
        &self.features[idx * size..(idx + 1) * size]
    }

    /// Labels, failing on an unlabelled clip (training and validation need them all).
    pub fn targets(&self, part: &str) -> Result<Vec<u32>> {
        self.labels
            .iter()
            .zip(&self.clip_ids)
            .map(|(l, id)| l.ok_or_else(|| Error::Data(format!("clip {id} in the {part} part has no label"))))
            .collect()
    }
}

/// Per-coefficient standardisation, fitted on the training part only, stored in the checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Mean and standard deviation of each coefficient over every frame of every clip (padding
    /// included, as the reference does); `std` gets 1e-8 added.
    pub fn fit(data: &Dataset) -> Normalization {
        let c = data.n_coeffs;
        let mut sum = vec![0f64; c];
        let mut sum_sq = vec![0f64; c];
        let mut n = 0usize;
        for frame in data.features.chunks_exact(c) {
            for (k, v) in frame.iter().enumerate() {
                sum[k] += *v as f64;
                sum_sq[k] += (*v as f64) * (*v as f64);
            }
            n += 1;
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sum_sq.iter().zip(&mean).map(|(s, m)| ((s / n - m * m).max(0.0).sqrt() + 1e-8) as f32).collect();
        Normalization { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    /// Standardises (T, C) frames in place.
    pub fn apply(&self, features: &mut [f32]) {
        let c = self.mean.len();
        for frame in features.chunks_exact_mut(c) {
            for ((v, m), s) in frame.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

fn dataset<'a>(rows: impl Iterator<Item = &'a FeatureRow>, n_frames: usize, n_coeffs: usize) -> Result<Dataset> {
    let mut data = Dataset { clip_ids: Vec::new(), labels: Vec::new(), n_frames, n_coeffs, features: Vec::new() };
    for row in rows {
        if row.n_frames as usize != n_frames {
            return Err(Error::Data(format!(
                "clip {} has {} frames, expected {n_frames}; the model needs a fixed frame count (set `frames` in features.yaml)",
                row.clip_id, row.n_frames
            )));
        }
        let label = match &row.label {
            Some(l) => Some(emotion_index(l).ok_or_else(|| {
                Error::Data(format!("clip {}: label `{l}` is not one of {}", row.clip_id, EMOTIONS.join(", ")))
            })? as u32),
            None => None,
        };
        data.clip_ids.push(row.clip_id.clone());
        data.labels.push(label);
        data.features.extend_from_slice(&row.features);
    }
    Ok(data)
}

/// The fixed frame count of a table, or an error saying how to get one.
pub fn fixed_frames(table: &FeatureTable) -> Result<usize> {
    table.config.frames.ok_or_else(|| {
        Error::Data("the feature table keeps variable-length clips (frames: null); the network needs `frames` set in features.yaml".into())
    })
}

/// All clips of the table, in table order.
pub fn whole_table(table: &FeatureTable) -> Result<Dataset> {
    dataset(table.rows.iter(), fixed_frames(table)?, table.n_coeffs)
}

/// The clips of one part of one fold, in split-file order.
pub fn part(table: &FeatureTable, splits: &SplitAssignment, fold: u32, part: SplitPart) -> Result<Dataset> {
    let by_id: std::collections::HashMap<&str, &FeatureRow> =
        table.rows.iter().map(|r| (r.clip_id.as_str(), r)).collect();
    if fold >= splits.n_folds {
        return Err(Error::Data(format!("fold {fold} does not exist; the split file has {} folds", splits.n_folds)));
    }
    let ids = splits.clip_ids(fold, part);
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.push(*by_id.get(id).ok_or_else(|| {
            Error::Data(format!(
                "clip {id} is in the split file but not in the feature table; was the split made from another table?"
            ))
        })?);
    }
    dataset(rows.into_iter(), fixed_frames(table)?, table.n_coeffs)
}

/// A feature table and split file read together: the train, val and test parts of one fold,
/// and their provenance.
pub struct SplitData {
    pub table: FeatureTable,
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    pub provenance: crate::checkpoint::DataProvenance,
}

/// Reads `features` and `splits`, refusing a split file made from another feature table, and
/// takes fold `fold`'s parts.
pub fn load_split(features: &std::path::Path, splits_path: &std::path::Path, fold: u32) -> Result<SplitData> {
    let table = ser_features::io::read_feature_table(features)?;
    let splits = ser_features::io::read_splits(splits_path)?;
    if !splits.features_config_hash.is_empty() && splits.features_config_hash != table.config.hash() {
        return Err(Error::Data(format!(
            "{} was made from a feature table with config hash {}, but {} has {}; re-run `ser-features split`",
            splits_path.display(),
            splits.features_config_hash,
            features.display(),
            table.config.hash()
        )));
    }
    let train = part(&table, &splits, fold, SplitPart::Train)?;
    let val = part(&table, &splits, fold, SplitPart::Val)?;
    let test = part(&table, &splits, fold, SplitPart::Test)?;
    let provenance = crate::checkpoint::DataProvenance {
        features_path: features.display().to_string(),
        features_sha256: crate::checkpoint::sha256_file(features)?,
        splits_path: splits_path.display().to_string(),
        splits_sha256: crate::checkpoint::sha256_file(splits_path)?,
        split_config: splits.config_json.clone(),
        fold,
        n_train: train.len(),
        n_val: val.len(),
        n_test: test.len(),
    };
    Ok(SplitData { table, train, val, test, provenance })
}
