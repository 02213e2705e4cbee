//! From a feature table and a split file to the clips of one part, as one (N, T, C) block.

use ser_features::split::{SplitAssignment, SplitPart};
use ser_features::table::{FeatureRow, FeatureTable};

use crate::config::Domain;
use crate::{Error, Result};

/// Clips of one split part, as one (N, T, C) block.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub clip_ids: Vec<String>,
    /// The label set `labels` index, in class order (the feature table's).
    pub classes: Vec<String>,
    /// Class index in `classes`; `None` for unlabelled clips (prediction only).
    pub labels: Vec<Option<u32>>,
    /// Index in [`ser_features::labels::GENDERS`]; `None` where the table gives none (a gender
    /// head learns from the others).
    pub genders: Vec<Option<u32>>,
    /// Each clip's corpus (the table's `corpus`); empty where no table says (audio given to
    /// ser-infer).
    pub corpora: Vec<String>,
    /// Each clip's speaker (the table's `speaker`); empty where no table says.
    pub speakers: Vec<String>,
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

    /// Clip `idx`'s corpus; empty where no table says.
    pub fn corpus(&self, idx: usize) -> &str {
        self.corpora.get(idx).map_or("", String::as_str)
    }

    pub fn clip(&self, idx: usize) -> &[f32] {
        let size = self.n_frames * self.n_coeffs;
        &self.features[idx * size..(idx + 1) * size]
    }

    /// The clips at `indices`, concatenated.
    pub fn gather(&self, indices: &[usize]) -> Vec<f32> {
        let mut values = Vec::with_capacity(indices.len() * self.n_frames * self.n_coeffs);
        for &i in indices {
            values.extend_from_slice(self.clip(i));
        }
        values
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

fn dataset<'a>(rows: impl Iterator<Item = &'a FeatureRow>, table: &FeatureTable) -> Result<Dataset> {
    let (n_frames, n_coeffs) = (fixed_frames(table)?, table.n_coeffs);
    let mut data = Dataset {
        clip_ids: Vec::new(),
        classes: table.labels.clone(),
        labels: Vec::new(),
        genders: Vec::new(),
        corpora: Vec::new(),
        speakers: Vec::new(),
        n_frames,
        n_coeffs,
        features: Vec::new(),
    };
    for row in rows {
        if row.n_frames as usize != n_frames {
            return Err(Error::Data(format!(
                "clip {} has {} frames, expected {n_frames}; the model needs a fixed frame count (set `frames` in features.yaml)",
                row.clip_id, row.n_frames
            )));
        }
        let label = match &row.label {
            Some(l) => Some(table.labels.iter().position(|c| c == l).ok_or_else(|| {
                Error::Data(format!("clip {}: label `{l}` is not one of [{}]", row.clip_id, table.labels.join(", ")))
            })? as u32),
            None => None,
        };
        data.clip_ids.push(row.clip_id.clone());
        data.labels.push(label);
        data.genders.push(row.gender.as_deref().and_then(gender_index));
        data.corpora.push(row.corpus.clone());
        data.speakers.push(row.speaker.clone());
        data.features.extend_from_slice(&row.features);
    }
    Ok(data)
}

/// The corpora of a training set: each clip's, and the classes each has among the training
/// targets (`corpus_weights` and `corpus_classes` in model.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct Corpora {
    /// The corpora's names, sorted.
    pub names: Vec<String>,
    /// Each clip's corpus, an index in `names`.
    pub index: Vec<u32>,
    /// For each corpus, whether each class has a training clip of it.
    pub has_class: Vec<Vec<bool>>,
}

impl Corpora {
    /// The corpora of `data`, whose clips' classes are `targets`; a set without corpora (no table
    /// said) is one corpus.
    pub fn of(data: &Dataset, targets: &[u32], n_classes: usize) -> Corpora {
        let (names, index) = distinct((0..targets.len()).map(|i| data.corpus(i).to_string()).collect());
        let mut has_class = vec![vec![false; n_classes]; names.len().max(1)];
        for (&c, &y) in index.iter().zip(targets) {
            has_class[c as usize][y as usize] = true;
        }
        Corpora { names, index, has_class }
    }

    /// "balanced" weights over the corpora, per corpus: each corpus weighs the same in the loss.
    pub fn weights(&self) -> Vec<f32> {
        crate::loss::balanced_weights(&self.index, self.names.len())
    }

    /// The classes clip `i`'s corpus has.
    pub fn classes(&self, i: usize) -> &[bool] {
        &self.has_class[self.index[i] as usize]
    }
}

/// The distinct values of `items`, sorted, and each item's index among them.
fn distinct(items: Vec<String>) -> (Vec<String>, Vec<u32>) {
    let mut names = items.clone();
    names.sort();
    names.dedup();
    let index = items.iter().map(|item| names.binary_search(item).expect("every item is a name") as u32).collect();
    (names, index)
}

/// Each clip's domain for an adversary (`adversary` in model.yaml): an index among the
/// training part's corpora, or its speakers (a speaker is named with its corpus, so two corpora
/// may share speaker names); and how many there are.
pub fn domains(data: &Dataset, against: Domain) -> (usize, Vec<u32>) {
    let speaker = |i: usize| data.speakers.get(i).map_or("", String::as_str);
    let keys = (0..data.len())
        .map(|i| match against {
            Domain::Corpus => data.corpus(i).to_string(),
            Domain::Speaker => format!("{}/{}", data.corpus(i), speaker(i)),
        })
        .collect();
    let (names, index) = distinct(keys);
    (names.len(), index)
}

/// A `gender` value's index in [`ser_features::labels::GENDERS`], if it is one of them.
fn gender_index(gender: &str) -> Option<u32> {
    ser_features::labels::GENDERS.iter().position(|g| *g == gender).map(|i| i as u32)
}

/// The fixed frame count of a table, or an error saying how to get one.
pub fn fixed_frames(table: &FeatureTable) -> Result<usize> {
    table.config.frames.ok_or_else(|| {
        Error::Data("the feature table keeps variable-length clips (frames: null); the network needs `frames` set in features.yaml".into())
    })
}

/// All clips of the table, in table order (augmented copies left out).
pub fn whole_table(table: &FeatureTable) -> Result<Dataset> {
    dataset(table.rows.iter().filter(|r| r.source_clip_id.is_none()), table)
}

/// The clips of one part of one fold, in split-file order; for the training part, followed by
/// their augmented copies.
pub fn part(table: &FeatureTable, splits: &SplitAssignment, fold: u32, part: SplitPart) -> Result<Dataset> {
    let by_id: std::collections::HashMap<&str, &FeatureRow> =
        table.rows.iter().map(|r| (r.clip_id.as_str(), r)).collect();
    if fold >= splits.n_folds {
        return Err(Error::Data(format!("fold {fold} does not exist; the split file has {} folds", splits.n_folds)));
    }
    let ids = splits.clip_ids(fold, part);
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        rows.push(*by_id.get(id).ok_or_else(|| {
            Error::Data(format!(
                "clip {id} is in the split file but not in the feature table; was the split made from another table?"
            ))
        })?);
    }
    // A training clip brings its augmented copies, in table order; other parts see clips only.
    if part == SplitPart::Train {
        let wanted: std::collections::HashSet<&str> = ids.iter().copied().collect();
        rows.extend(table.rows.iter().filter(|r| r.source_clip_id.as_deref().is_some_and(|s| wanted.contains(s))));
    }
    dataset(rows.into_iter(), table)
}
