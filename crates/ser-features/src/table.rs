//! The feature table: its schema (owned here, the writer), the in-memory row type, and Arrow
//! conversions. Disk IO lives in `io.rs`.
//!
//! One row per clip, sorted by `path`. The features of a row are a `list<f32>` holding an
//! `n_frames x n_coeffs` matrix, row-major; `n_coeffs` and the full feature config are in the
//! schema metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, Float64Array, ListArray, RecordBatch, StringArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::config::FeaturesConfig;

/// Bumped when a column is renamed, removed or changes meaning.
pub const FORMAT_VERSION: &str = "1";

pub const COL_CLIP_ID: &str = "clip_id";
pub const COL_PATH: &str = "path";
pub const COL_CORPUS: &str = "corpus";
pub const COL_SPEAKER: &str = "speaker";
pub const COL_GENDER: &str = "gender";
pub const COL_LABEL: &str = "label";
pub const COL_EMOTION_CODE: &str = "emotion_code";
pub const COL_INTENSITY: &str = "intensity";
pub const COL_STATEMENT: &str = "statement";
pub const COL_REPETITION: &str = "repetition";
pub const COL_MODALITY: &str = "modality";
pub const COL_VOCAL_CHANNEL: &str = "vocal_channel";
pub const COL_SOURCE_SAMPLE_RATE: &str = "source_sample_rate";
pub const COL_SOURCE_CHANNELS: &str = "source_channels";
pub const COL_DURATION_S: &str = "duration_s";
pub const COL_SHA256: &str = "sha256";
pub const COL_N_FRAMES_SOURCE: &str = "n_frames_source";
pub const COL_N_FRAMES: &str = "n_frames";
pub const COL_FEATURES: &str = "features";
pub const COL_SOURCE_CLIP_ID: &str = "source_clip_id";
pub const COL_AUGMENTATION: &str = "augmentation";

pub const META_FORMAT_VERSION: &str = "ser.format_version";
pub const META_FEATURES_CONFIG: &str = "ser.features_config";
pub const META_FEATURES_CONFIG_HASH: &str = "ser.features_config_hash";
pub const META_N_COEFFS: &str = "ser.n_coeffs";
pub const META_FRAMES: &str = "ser.frames";
pub const META_LABELS: &str = "ser.labels";
pub const META_WRITER: &str = "ser.writer";
/// Only in a shard's part table (`extract --shard`): which shard it holds, `i/n`.
pub const META_SHARD: &str = "ser.shard";

/// One clip of the feature table.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    pub clip_id: String,
    pub path: String,
    pub corpus: String,
    pub speaker: String,
    pub gender: Option<String>,
    pub label: Option<String>,
    pub emotion_code: Option<String>,
    pub intensity: Option<String>,
    pub statement: Option<String>,
    pub repetition: Option<String>,
    pub modality: Option<String>,
    pub vocal_channel: Option<String>,
    pub source_sample_rate: u32,
    pub source_channels: u32,
    pub duration_s: f64,
    pub sha256: String,
    pub n_frames_source: u32,
    pub n_frames: u32,
    /// `n_frames x n_coeffs`, row-major.
    pub features: Vec<f32>,
    /// For an augmented training copy, the clip it was made from (`None` for a clip itself).
    pub source_clip_id: Option<String>,
    /// For an augmented copy, what was done to it, in words.
    pub augmentation: Option<String>,
}

/// A whole feature table in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    pub config: FeaturesConfig,
    pub n_coeffs: usize,
    /// The label set, in class order (`ser.labels`): every row's label is one of these.
    pub labels: Vec<String>,
    pub rows: Vec<FeatureRow>,
}

/// The key-value metadata every feature table carries.
pub fn metadata(config: &FeaturesConfig, labels: &[String]) -> BTreeMap<String, String> {
    BTreeMap::from([
        (META_FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string()),
        (META_FEATURES_CONFIG.to_string(), config.to_json()),
        (META_FEATURES_CONFIG_HASH.to_string(), config.hash()),
        (META_N_COEFFS.to_string(), config.n_coeffs().to_string()),
        (META_FRAMES.to_string(), config.frames.map_or("variable".to_string(), |n| n.to_string())),
        (META_LABELS.to_string(), serde_json::to_string(labels).expect("labels serialise")),
        (META_WRITER.to_string(), format!("ser-features {}", env!("CARGO_PKG_VERSION"))),
    ])
}

fn features_item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

/// The feature table's Arrow schema, metadata included.
pub fn schema(config: &FeaturesConfig, labels: &[String]) -> SchemaRef {
    let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let fields = vec![
        utf8(COL_CLIP_ID, false),
        utf8(COL_PATH, false),
        utf8(COL_CORPUS, false),
        utf8(COL_SPEAKER, false),
        utf8(COL_GENDER, true),
        utf8(COL_LABEL, true),
        utf8(COL_EMOTION_CODE, true),
        utf8(COL_INTENSITY, true),
        utf8(COL_STATEMENT, true),
        utf8(COL_REPETITION, true),
        utf8(COL_MODALITY, true),
        utf8(COL_VOCAL_CHANNEL, true),
        Field::new(COL_SOURCE_SAMPLE_RATE, DataType::UInt32, false),
        Field::new(COL_SOURCE_CHANNELS, DataType::UInt32, false),
        Field::new(COL_DURATION_S, DataType::Float64, false),
        utf8(COL_SHA256, false),
        Field::new(COL_N_FRAMES_SOURCE, DataType::UInt32, false),
        Field::new(COL_N_FRAMES, DataType::UInt32, false),
        Field::new(COL_FEATURES, DataType::List(features_item_field()), false),
        utf8(COL_SOURCE_CLIP_ID, true),
        utf8(COL_AUGMENTATION, true),
    ];
    Arc::new(Schema::new_with_metadata(fields, metadata(config, labels)))
}

/// Rows to one record batch of [`schema`].
pub fn to_record_batch(schema: &SchemaRef, rows: &[FeatureRow]) -> RecordBatch {
    fn strings<'a>(rows: &'a [FeatureRow], f: impl Fn(&'a FeatureRow) -> &'a str) -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
    }
    fn opt_strings<'a>(rows: &'a [FeatureRow], f: impl Fn(&'a FeatureRow) -> &'a Option<String>) -> ArrayRef {
        Arc::new(rows.iter().map(|r| f(r).as_deref()).collect::<StringArray>())
    }
    let u32s = |f: fn(&FeatureRow) -> u32| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<UInt32Array>()) };
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.features.len()));
    let values: Float32Array = rows.iter().flat_map(|r| r.features.iter().copied()).collect();
    let features = ListArray::new(features_item_field(), offsets, Arc::new(values), None);
    let columns: Vec<ArrayRef> = vec![
        strings(rows, |r| &r.clip_id),
        strings(rows, |r| &r.path),
        strings(rows, |r| &r.corpus),
        strings(rows, |r| &r.speaker),
        opt_strings(rows, |r| &r.gender),
        opt_strings(rows, |r| &r.label),
        opt_strings(rows, |r| &r.emotion_code),
        opt_strings(rows, |r| &r.intensity),
        opt_strings(rows, |r| &r.statement),
        opt_strings(rows, |r| &r.repetition),
        opt_strings(rows, |r| &r.modality),
        opt_strings(rows, |r| &r.vocal_channel),
        u32s(|r| r.source_sample_rate),
        u32s(|r| r.source_channels),
        Arc::new(rows.iter().map(|r| r.duration_s).collect::<Float64Array>()),
        strings(rows, |r| &r.sha256),
        u32s(|r| r.n_frames_source),
        u32s(|r| r.n_frames),
        Arc::new(features),
        opt_strings(rows, |r| &r.source_clip_id),
        opt_strings(rows, |r| &r.augmentation),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema")
}

/// What is wrong with a record batch read from a feature table (the caller adds the path).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowError {
    #[error("missing column `{0}`; is this a ser feature table?")]
    MissingColumn(String),
    #[error("column `{column}` has type {got}, expected {expected}")]
    WrongType { column: String, expected: String, got: String },
    #[error("row {row} (clip_id {clip_id}): {message}")]
    Row { row: usize, clip_id: String, message: String },
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, expected: &str) -> Result<&'a T, RowError> {
    let array = batch.column_by_name(name).ok_or_else(|| RowError::MissingColumn(name.to_string()))?;
    array.as_any().downcast_ref::<T>().ok_or_else(|| RowError::WrongType {
        column: name.to_string(),
        expected: expected.to_string(),
        got: array.data_type().to_string(),
    })
}

/// Record batch to rows, looking columns up by name. `first_row` numbers rows in messages.
/// Optional columns that are absent read as null, so a table written by another tool needs
/// only `clip_id`, `speaker`, `label`, `n_frames` and `features`.
pub fn from_record_batch(
    batch: &RecordBatch,
    n_coeffs: usize,
    labels: &[String],
    first_row: usize,
) -> Result<Vec<FeatureRow>, RowError> {
    let clip_id = column::<StringArray>(batch, COL_CLIP_ID, "utf8")?;
    let speaker = column::<StringArray>(batch, COL_SPEAKER, "utf8")?;
    let label = column::<StringArray>(batch, COL_LABEL, "utf8")?;
    let n_frames = column::<UInt32Array>(batch, COL_N_FRAMES, "uint32")?;
    let features = column::<ListArray>(batch, COL_FEATURES, "list<float32>")?;
    let opt_str = |name: &str| -> Result<Option<&StringArray>, RowError> {
        match batch.column_by_name(name) {
            None => Ok(None),
            Some(_) => column::<StringArray>(batch, name, "utf8").map(Some),
        }
    };
    let opt_u32 = |name: &str| -> Result<Option<&UInt32Array>, RowError> {
        match batch.column_by_name(name) {
            None => Ok(None),
            Some(_) => column::<UInt32Array>(batch, name, "uint32").map(Some),
        }
    };
    let path = opt_str(COL_PATH)?;
    let corpus = opt_str(COL_CORPUS)?;
    let gender = opt_str(COL_GENDER)?;
    let emotion_code = opt_str(COL_EMOTION_CODE)?;
    let intensity = opt_str(COL_INTENSITY)?;
    let statement = opt_str(COL_STATEMENT)?;
    let repetition = opt_str(COL_REPETITION)?;
    let modality = opt_str(COL_MODALITY)?;
    let vocal_channel = opt_str(COL_VOCAL_CHANNEL)?;
    let sha256 = opt_str(COL_SHA256)?;
    let source_clip_id = opt_str(COL_SOURCE_CLIP_ID)?;
    let augmentation = opt_str(COL_AUGMENTATION)?;
    let source_sample_rate = opt_u32(COL_SOURCE_SAMPLE_RATE)?;
    let source_channels = opt_u32(COL_SOURCE_CHANNELS)?;
    let n_frames_source = opt_u32(COL_N_FRAMES_SOURCE)?;
    let duration_s = match batch.column_by_name(COL_DURATION_S) {
        None => None,
        Some(_) => Some(column::<Float64Array>(batch, COL_DURATION_S, "float64")?),
    };
    let values = features.values().as_any().downcast_ref::<Float32Array>().ok_or_else(|| RowError::WrongType {
        column: COL_FEATURES.to_string(),
        expected: "list<float32>".to_string(),
        got: features.data_type().to_string(),
    })?;
    let get = |a: Option<&StringArray>, i: usize| a.filter(|a| a.is_valid(i)).map(|a| a.value(i).to_string());

    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let row = first_row + i;
        let id = if clip_id.is_valid(i) { clip_id.value(i).to_string() } else { String::new() };
        let fail = |message: String| RowError::Row { row, clip_id: id.clone(), message };
        if !clip_id.is_valid(i) || id.is_empty() {
            return Err(fail("clip_id is empty".into()));
        }
        if !speaker.is_valid(i) {
            return Err(fail("speaker is null".into()));
        }
        let label = get(Some(label), i);
        if let Some(l) = &label
            && !labels.contains(l)
        {
            return Err(fail(format!("label `{l}` is not one of the table's labels [{}]", labels.join(", "))));
        }
        if !features.is_valid(i) || !n_frames.is_valid(i) {
            return Err(fail("features or n_frames is null".into()));
        }
        let (start, end) = (features.value_offsets()[i] as usize, features.value_offsets()[i + 1] as usize);
        let frames = n_frames.value(i) as usize;
        if end - start != frames * n_coeffs {
            return Err(fail(format!(
                "features has {} values, expected n_frames*n_coeffs = {frames}*{n_coeffs} = {}",
                end - start,
                frames * n_coeffs
            )));
        }
        let feats = values.values()[start..end].to_vec();
        if let Some(pos) = feats.iter().position(|v| !v.is_finite()) {
            return Err(fail(format!("features[{pos}] is not finite")));
        }
        rows.push(FeatureRow {
            path: get(path, i).unwrap_or_else(|| id.clone()),
            clip_id: id.clone(),
            corpus: get(corpus, i).unwrap_or_default(),
            speaker: speaker.value(i).to_string(),
            gender: get(gender, i),
            label,
            emotion_code: get(emotion_code, i),
            intensity: get(intensity, i),
            statement: get(statement, i),
            repetition: get(repetition, i),
            modality: get(modality, i),
            vocal_channel: get(vocal_channel, i),
            source_sample_rate: source_sample_rate.map_or(0, |a| a.value(i)),
            source_channels: source_channels.map_or(0, |a| a.value(i)),
            duration_s: duration_s.map_or(0.0, |a| a.value(i)),
            sha256: get(sha256, i).unwrap_or_default(),
            n_frames_source: n_frames_source.map_or(frames as u32, |a| a.value(i)),
            n_frames: frames as u32,
            features: feats,
            source_clip_id: get(source_clip_id, i),
            augmentation: get(augmentation, i),
        });
    }
    Ok(rows)
}
