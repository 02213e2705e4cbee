//! Batch prediction from a feature table to `predictions.parquet`, the file ser-eval reads.
//!
//! Columns: `clip_id` (utf8), `label` (utf8, null when unknown), `predicted` (utf8), and one
//! `p_<emotion>` (float32) per class in the checkpoint's label order.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use ser_features::io::AtomicFile;

use crate::checkpoint::Checkpoint;
use crate::data::Dataset;
use crate::train::predict_proba;
use crate::{Error, Result};

pub const COL_CLIP_ID: &str = "clip_id";
pub const COL_LABEL: &str = "label";
pub const COL_PREDICTED: &str = "predicted";
pub const PROB_PREFIX: &str = "p_";

/// Predictions of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub labels: Vec<String>,
    pub clip_ids: Vec<String>,
    pub truth: Vec<Option<String>>,
    pub probabilities: Vec<Vec<f32>>,
}

impl Predictions {
    pub fn predicted(&self, row: usize) -> &str {
        let p = &self.probabilities[row];
        let best = p.iter().enumerate().fold(0, |b, (i, v)| if *v > p[b] { i } else { b });
        &self.labels[best]
    }
}

/// Standardises `data` with the checkpoint's statistics and predicts every clip.
pub fn predict(checkpoint: &Checkpoint, data: &Dataset) -> Result<Predictions> {
    let meta = &checkpoint.meta;
    if (data.n_frames, data.n_coeffs) != (meta.n_frames, meta.n_coeffs) {
        return Err(Error::Data(format!(
            "clips are {}x{} (frames x coefficients), the checkpoint expects {}x{}",
            data.n_frames, data.n_coeffs, meta.n_frames, meta.n_coeffs
        )));
    }
    let mut data = data.clone();
    meta.normalization.apply(&mut data.features);
    let probabilities =
        predict_proba(&checkpoint.network, &data, &checkpoint.device).map_err(|e| Error::Train(e.to_string()))?;
    Ok(Predictions {
        labels: meta.labels.clone(),
        clip_ids: data.clip_ids.clone(),
        truth: data.labels.iter().map(|l| l.map(|i| meta.labels[i as usize].clone())).collect(),
        probabilities,
    })
}

/// Writes `predictions.parquet` atomically, with the checkpoint's provenance in the metadata.
pub fn write_predictions(path: &Path, predictions: &Predictions, provenance: &[(&str, String)]) -> Result<()> {
    let mut fields = vec![
        Field::new(COL_CLIP_ID, DataType::Utf8, false),
        Field::new(COL_LABEL, DataType::Utf8, true),
        Field::new(COL_PREDICTED, DataType::Utf8, false),
    ];
    for label in &predictions.labels {
        fields.push(Field::new(format!("{PROB_PREFIX}{label}"), DataType::Float32, false));
    }
    let metadata: Vec<(String, String)> = provenance.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let schema = Arc::new(
        Schema::new(fields)
            .with_metadata(metadata.iter().cloned().collect::<std::collections::HashMap<String, String>>()),
    );
    let n = predictions.clip_ids.len();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(predictions.clip_ids.iter().map(|s| Some(s.as_str())).collect::<StringArray>()),
        Arc::new(predictions.truth.iter().map(|s| s.as_deref()).collect::<StringArray>()),
        Arc::new((0..n).map(|i| Some(predictions.predicted(i))).collect::<StringArray>()),
    ];
    for c in 0..predictions.labels.len() {
        columns.push(Arc::new(predictions.probabilities.iter().map(|p| p[c]).collect::<Float32Array>()));
    }
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("columns match the predictions schema");
    let parquet_err = |e: parquet::errors::ParquetError| Error::Features(ser_features::Error::parquet(path, e));
    let mut out = AtomicFile::create(path)?;
    let file = out.file().try_clone().map_err(|e| Error::Features(ser_features::Error::io(path, e)))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(metadata.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect()))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    writer.close().map_err(parquet_err)?;
    out.commit()?;
    Ok(())
}
