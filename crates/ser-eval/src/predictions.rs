//! Parsing `predictions.parquet`: `clip_id`, `label` (nullable), `predicted`, and optionally one
//! `p_<emotion>` probability column per class. Any writer works (ser-model, pandas, pyarrow):
//! columns are looked up by name and string / float types are cast.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatchReader, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::config::ClassSet;
use crate::{DEFAULT_LABELS, Error, Result};

pub use ser_core::predictions::{COL_CLIP_ID, COL_CORPUS, COL_LABEL, COL_PREDICTED, PROB_PREFIX};

/// One predictions file, restricted to the rows with a true label.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionTable {
    pub path: PathBuf,
    /// Class list in class-index order (`p_*` columns, else `ser.labels`, else the eight emotions).
    pub classes: Vec<String>,
    pub clip_ids: Vec<String>,
    /// Class index of the true label.
    pub truth: Vec<usize>,
    /// Class index of the prediction.
    pub predicted: Vec<usize>,
    /// Per-row probabilities in class order, when the file has `p_*` columns.
    pub probabilities: Option<Vec<Vec<f64>>>,
    /// Per-row corpus, when the file has a `corpus` column.
    pub corpora: Option<Vec<String>>,
    /// Rows left out because their label was null.
    pub n_unlabelled: usize,
    /// With a [`ClassSet`] that restricts, the true labels outside `classes` and their rows'
    /// count (the rows are left out).
    pub foreign_labels: BTreeMap<String, usize>,
    /// The file's key-value metadata (provenance written by the predicting stage).
    pub metadata: BTreeMap<String, String>,
}

impl PredictionTable {
    pub fn len(&self) -> usize {
        self.truth.len()
    }
    pub fn is_empty(&self) -> bool {
        self.truth.is_empty()
    }
}

fn strings(path: &Path, column: &ArrayRef, name: &str) -> Result<Vec<Option<String>>> {
    let utf8 = cast(column, &DataType::Utf8).map_err(|e| {
        Error::file(path, format!("column `{name}` is {:?}, expected strings: {e}", column.data_type()))
    })?;
    let utf8 = utf8.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 gives a StringArray");
    Ok((0..utf8.len()).map(|i| utf8.is_valid(i).then(|| utf8.value(i).to_string())).collect())
}

fn floats(path: &Path, column: &ArrayRef, name: &str) -> Result<Vec<Option<f64>>> {
    let f64s = cast(column, &DataType::Float64).map_err(|e| {
        Error::file(path, format!("column `{name}` is {:?}, expected numbers: {e}", column.data_type()))
    })?;
    let f64s = f64s.as_any().downcast_ref::<Float64Array>().expect("cast to Float64 gives a Float64Array");
    Ok((0..f64s.len()).map(|i| f64s.is_valid(i).then(|| f64s.value(i))).collect())
}

/// Parses a predictions file's bytes (read by [`crate::io::read_predictions`]); every problem is
/// an error that names the file (and row).
/// With a [`ClassSet`] that restricts, a true label outside the classes leaves its row out (counted in
/// `foreign_labels`) instead of being an error.
pub fn parse_predictions(path: &Path, bytes: bytes::Bytes, class_set: &ClassSet) -> Result<PredictionTable> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| Error::file(path, format!("not a readable Parquet file: {e}")))?;
    let metadata: BTreeMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().filter_map(|kv| kv.value.clone().map(|v| (kv.key.clone(), v))).collect())
        .unwrap_or_default();
    let reader = builder.build().map_err(|e| Error::file(path, e.to_string()))?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for required in [COL_CLIP_ID, COL_LABEL, COL_PREDICTED] {
        if !names.iter().any(|n| n == required) {
            return Err(Error::file(
                path,
                format!(
                    "missing column `{required}`; a predictions file needs `clip_id`, `label`, `predicted` \
                     and optionally `p_<emotion>` columns (found: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    let prob_columns: Vec<String> = names.iter().filter(|n| n.starts_with(PROB_PREFIX)).cloned().collect();
    let classes: Vec<String> = if !prob_columns.is_empty() {
        prob_columns.iter().map(|n| n[PROB_PREFIX.len()..].to_string()).collect()
    } else if let Some(labels) = metadata.get("ser.labels") {
        serde_json::from_str(labels)
            .map_err(|e| Error::file(path, format!("metadata `ser.labels` is not a JSON list: {e}")))?
    } else {
        DEFAULT_LABELS.iter().map(|s| s.to_string()).collect()
    };

    let mut ids = Vec::new();
    let mut labels = Vec::new();
    let mut predicted = Vec::new();
    let mut probs: Vec<Vec<Option<f64>>> = vec![Vec::new(); prob_columns.len()];
    let has_corpus = names.iter().any(|n| n == COL_CORPUS);
    let mut corpora: Vec<Option<String>> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::file(path, format!("reading rows: {e}")))?;
        let column = |name: &str| batch.column_by_name(name).expect("checked above").clone();
        ids.extend(strings(path, &column(COL_CLIP_ID), COL_CLIP_ID)?);
        labels.extend(strings(path, &column(COL_LABEL), COL_LABEL)?);
        predicted.extend(strings(path, &column(COL_PREDICTED), COL_PREDICTED)?);
        for (c, name) in prob_columns.iter().enumerate() {
            probs[c].extend(floats(path, &column(name), name)?);
        }
        if has_corpus {
            corpora.extend(strings(path, &column(COL_CORPUS), COL_CORPUS)?);
        }
    }
    if ids.is_empty() {
        return Err(Error::file(path, "the predictions file has no rows"));
    }
    let index = |row: usize, id: &str, column: &str, value: &str| {
        classes.iter().position(|c| c == value).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "row {row} (clip_id {id}): {column} `{value}` is not one of the classes [{}]",
                    classes.join(", ")
                ),
            )
        })
    };
    let mut table = PredictionTable {
        path: path.to_path_buf(),
        classes: classes.clone(),
        clip_ids: Vec::new(),
        truth: Vec::new(),
        predicted: Vec::new(),
        probabilities: (!prob_columns.is_empty()).then(Vec::new),
        corpora: has_corpus.then(Vec::new),
        n_unlabelled: 0,
        foreign_labels: BTreeMap::new(),
        metadata,
    };
    for row in 0..ids.len() {
        let id = ids[row].clone().ok_or_else(|| Error::file(path, format!("row {row}: clip_id is null")))?;
        let Some(label) = &labels[row] else {
            table.n_unlabelled += 1;
            continue;
        };
        let pred = predicted[row]
            .as_deref()
            .ok_or_else(|| Error::file(path, format!("row {row} (clip_id {id}): predicted is null")))?;
        if class_set.restricts() && !classes.contains(label) {
            *table.foreign_labels.entry(label.clone()).or_default() += 1;
            continue;
        }
        table.truth.push(index(row, &id, COL_LABEL, label)?);
        table.predicted.push(index(row, &id, COL_PREDICTED, pred)?);
        if let Some(rows) = table.probabilities.as_mut() {
            let mut p = Vec::with_capacity(classes.len());
            for (c, column) in probs.iter().enumerate() {
                match column[row] {
                    Some(v) if v.is_finite() && v >= 0.0 => p.push(v),
                    other => {
                        return Err(Error::file(
                            path,
                            format!(
                                "row {row} (clip_id {id}): {} is {other:?}, expected a probability",
                                prob_columns[c]
                            ),
                        ));
                    }
                }
            }
            rows.push(p);
        }
        if let Some(rows) = table.corpora.as_mut() {
            rows.push(corpora[row].clone().unwrap_or_default());
        }
        table.clip_ids.push(id);
    }
    if table.is_empty() {
        return Err(Error::file(
            path,
            format!("none of its {} rows has a true label: evaluation needs the `label` column filled", ids.len()),
        ));
    }
    if table.n_unlabelled > 0 {
        tracing::warn!("{}: {} rows without a true label are left out", path.display(), table.n_unlabelled);
    }
    Ok(table)
}

/// What [`restrict_classes`] kept and left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedClasses {
    /// The classes scored: the model's classes that appear among the true labels, or those asked.
    pub kept: Vec<String>,
    /// The model's classes not scored.
    pub dropped_classes: Vec<String>,
    /// True labels not scored, with their clips' count (left out).
    pub dropped_labels: BTreeMap<String, usize>,
}

/// The tables scored on fewer classes: `only` (each one of the model's), or, without it, the
/// classes the model and the true labels share. Clips of other true labels are left out and
/// counted; each clip's probabilities are renormalised over the classes kept and its answer is
/// their argmax.
pub fn restrict_classes(
    tables: Vec<PredictionTable>,
    only: Option<&[String]>,
) -> Result<(Vec<PredictionTable>, SharedClasses)> {
    let classes = tables[0].classes.clone();
    let mut present = vec![false; classes.len()];
    let mut dropped_labels: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tables {
        if t.classes != classes {
            return Err(Error::file(&t.path, "its classes differ from the first file's; score one model at a time"));
        }
        t.truth.iter().for_each(|&c| present[c] = true);
        for (label, n) in &t.foreign_labels {
            *dropped_labels.entry(label.clone()).or_default() += n;
        }
    }
    let kept: Vec<usize> = match only {
        None => (0..classes.len()).filter(|&c| present[c]).collect(),
        Some(asked) => {
            let mut kept = Vec::with_capacity(asked.len());
            for label in asked {
                let c = classes.iter().position(|c| c == label).ok_or_else(|| {
                    Error::Invalid(format!(
                        "classes: `{label}` is not one of the model's classes [{}]",
                        classes.join(", ")
                    ))
                })?;
                if !kept.contains(&c) {
                    kept.push(c);
                }
            }
            kept.sort_unstable();
            kept
        }
    };
    let mut remap = vec![usize::MAX; classes.len()];
    for (new, &old) in kept.iter().enumerate() {
        remap[old] = new;
    }
    let mut out = Vec::with_capacity(tables.len());
    for mut t in tables {
        let probabilities = t.probabilities.take().ok_or_else(|| {
            Error::file(&t.path, "scoring some of the classes needs the p_<class> columns to restrict the argmax")
        })?;
        let rows: Vec<usize> = (0..t.truth.len()).filter(|&r| remap[t.truth[r]] != usize::MAX).collect();
        for &r in (0..t.truth.len()).filter(|r| !rows.contains(r)).collect::<Vec<_>>().iter() {
            *dropped_labels.entry(classes[t.truth[r]].clone()).or_default() += 1;
        }
        let restricted: Vec<Vec<f64>> = rows
            .iter()
            .map(|&r| {
                let p = &probabilities[r];
                let sum: f64 = kept.iter().map(|&c| p[c]).sum();
                kept.iter().map(|&c| if sum > 0.0 { p[c] / sum } else { 1.0 / kept.len() as f64 }).collect()
            })
            .collect();
        t.predicted = restricted
            .iter()
            .map(|p| p.iter().enumerate().fold(0, |best, (i, v)| if *v > p[best] { i } else { best }))
            .collect();
        t.truth = rows.iter().map(|&r| remap[t.truth[r]]).collect();
        t.clip_ids = rows.iter().map(|&r| t.clip_ids[r].clone()).collect();
        t.corpora = t.corpora.take().map(|corpora| rows.iter().map(|&r| corpora[r].clone()).collect());
        t.probabilities = Some(restricted);
        t.classes = kept.iter().map(|&c| classes[c].clone()).collect();
        out.push(t);
    }
    if out.iter().all(|t| t.is_empty()) {
        return Err(Error::Invalid(format!(
            "no true label is one of the classes scored [{}]: nothing to score (labels found: {})",
            kept.iter().map(|&c| classes[c].as_str()).collect::<Vec<_>>().join(", "),
            dropped_labels.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let dropped_classes = (0..classes.len()).filter(|c| !kept.contains(c)).map(|c| classes[c].clone()).collect();
    Ok((
        out,
        SharedClasses { kept: kept.iter().map(|&c| classes[c].clone()).collect(), dropped_classes, dropped_labels },
    ))
}
