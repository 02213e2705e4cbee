//! Everything that touches the disk: atomic file writes, the feature table and split file in
//! Parquet, the rejects table, manifests, and directory discovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use fs_err as fs;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

pub use ser_core::io::{AtomicFile, write_atomic};

use crate::config::FeaturesConfig;
use crate::dsp::FeatureMatrix;
use crate::split::{SplitAssignment, SplitPart};
use crate::table::{self, FeatureRow, FeatureTable, META_FEATURES_CONFIG, META_N_COEFFS};
use crate::{Error, Result};

/// Rows per record batch and per Parquet row group. Fixed, so the same rows always give the
/// same bytes, however they were computed (one process or merged shards).
pub const ROWS_PER_BATCH: usize = 128;

/// A float32 array in NumPy's `.npy` format (little-endian, C order; written by npyz): what
/// `numpy.load` reads.
pub fn npy_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    use npyz::WriterBuilder;
    assert_eq!(shape.iter().product::<usize>(), values.len(), "shape {shape:?} holds the values");
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()
        .expect("writing to memory");
    writer.extend(values.iter().copied()).expect("writing to memory");
    writer.finish().expect("writing to memory");
    bytes
}

/// The schema's metadata as Parquet key-value pairs, sorted by key. Stored both here and in the
/// embedded Arrow schema, so readers that ignore `ARROW:schema` still see it.
fn key_values(schema: &Schema) -> Vec<KeyValue> {
    schema.metadata().iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect()
}

fn writer_properties(schema: &Schema) -> WriterProperties {
    // Feature values hardly repeat: a dictionary of them costs time and saves nothing.
    let features = ColumnPath::from(vec![table::COL_FEATURES.to_string(), "list".into(), "item".into()]);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_column_dictionary_enabled(features, false)
        .set_max_row_group_row_count(Some(ROWS_PER_BATCH))
        .set_key_value_metadata(Some(key_values(schema)))
        .set_created_by(format!("ser-features {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Streams rows into a feature table. Rows must arrive in table order (sorted by path).
pub struct FeatureTableWriter {
    path: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<std::fs::File>,
    out: AtomicFile,
    pending: Vec<FeatureRow>,
    n_rows: usize,
}

impl FeatureTableWriter {
    /// A table of clips labelled from `labels`.
    pub fn create(path: &Path, config: &FeaturesConfig, labels: &[String]) -> Result<FeatureTableWriter> {
        FeatureTableWriter::with_schema(path, table::schema(config, labels))
    }

    /// A shard's part table: a feature table whose metadata also names its shard (`i/n`).
    pub fn create_part(
        path: &Path,
        config: &FeaturesConfig,
        labels: &[String],
        shard: &str,
    ) -> Result<FeatureTableWriter> {
        let schema = table::schema(config, labels);
        let mut metadata = schema.metadata().clone();
        metadata.insert(table::META_SHARD.to_string(), shard.to_string());
        FeatureTableWriter::with_schema(path, Arc::new(schema.as_ref().clone().with_metadata(metadata)))
    }

    fn with_schema(path: &Path, schema: SchemaRef) -> Result<FeatureTableWriter> {
        let mut out = AtomicFile::create(path)?;
        let file = out.file().try_clone().map_err(|e| Error::io(path, e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties(&schema)))
            .map_err(|e| Error::parquet(path, e))?;
        Ok(FeatureTableWriter { path: path.to_path_buf(), schema, writer, out, pending: Vec::new(), n_rows: 0 })
    }

    pub fn write(&mut self, rows: impl IntoIterator<Item = FeatureRow>) -> Result<()> {
        self.pending.extend(rows);
        while self.pending.len() >= ROWS_PER_BATCH {
            let rest = self.pending.split_off(ROWS_PER_BATCH);
            let batch = std::mem::replace(&mut self.pending, rest);
            self.write_batch(&batch)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, rows: &[FeatureRow]) -> Result<()> {
        let batch = table::to_record_batch(&self.schema, rows);
        self.writer.write(&batch).map_err(|e| Error::parquet(&self.path, e))?;
        self.writer.flush().map_err(|e| Error::parquet(&self.path, e))?;
        self.n_rows += rows.len();
        Ok(())
    }

    /// Writes the last rows, closes the file and moves it into place. Returns the row count.
    pub fn finish(mut self) -> Result<usize> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.write_batch(&rest)?;
        }
        self.writer.close().map_err(|e| Error::parquet(&self.path, e))?;
        self.out.commit()?;
        Ok(self.n_rows)
    }
}

/// Writes a whole feature table atomically.
pub fn write_feature_table(path: &Path, table: &FeatureTable) -> Result<()> {
    let mut writer = FeatureTableWriter::create(path, &table.config, &table.labels)?;
    writer.write(table.rows.iter().cloned())?;
    writer.finish()?;
    Ok(())
}

/// The metadata of a Parquet file: the Arrow schema's metadata, or the file's key-value pairs.
fn read_metadata(path: &Path, builder_schema: &Schema, file_kv: Option<&Vec<KeyValue>>) -> BTreeMap<String, String> {
    let mut metadata: BTreeMap<String, String> =
        builder_schema.metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for kv in file_kv.into_iter().flatten() {
        if let Some(v) = &kv.value {
            metadata.entry(kv.key.clone()).or_insert_with(|| v.clone());
        }
    }
    tracing::trace!(path = %path.display(), keys = metadata.len(), "read parquet metadata");
    metadata
}

/// Reads the feature config from a feature table's metadata without reading any rows.
pub fn read_feature_config(path: &Path) -> Result<FeaturesConfig> {
    let file = fs::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0).map_err(|e| Error::parquet(path, e))?;
    let metadata = read_metadata(path, builder.schema(), builder.metadata().file_metadata().key_value_metadata());
    config_from_metadata(path, &metadata).map(|(config, _)| config)
}

fn config_from_metadata(path: &Path, metadata: &BTreeMap<String, String>) -> Result<(FeaturesConfig, usize)> {
    let bad = |message: String| Error::Table { path: path.to_path_buf(), message };
    let json = metadata.get(META_FEATURES_CONFIG).ok_or_else(|| {
        bad(format!("no `{META_FEATURES_CONFIG}` in the file metadata; write the feature config there as JSON"))
    })?;
    let config: FeaturesConfig =
        serde_json::from_str(json).map_err(|e| bad(format!("`{META_FEATURES_CONFIG}` metadata: {e}")))?;
    config.validate().map_err(|e| bad(format!("`{META_FEATURES_CONFIG}` metadata: {e}")))?;
    let n_coeffs = match metadata.get(META_N_COEFFS) {
        Some(v) => v.parse().map_err(|_| bad(format!("`{META_N_COEFFS}` metadata `{v}` is not a number")))?,
        None => config.n_coeffs(),
    };
    if n_coeffs != config.n_coeffs() {
        return Err(bad(format!("`{META_N_COEFFS}` is {n_coeffs} but the feature config gives {}", config.n_coeffs())));
    }
    Ok((config, n_coeffs))
}

/// Reads a whole feature table, checking every row against the metadata.
pub fn read_feature_table(path: &Path) -> Result<FeatureTable> {
    let mut stream = FeatureRowStream::open(path)?;
    let mut rows = Vec::new();
    while let Some(row) = stream.next_row()? {
        rows.push(row);
    }
    Ok(FeatureTable { config: stream.config, n_coeffs: stream.n_coeffs, labels: stream.labels, rows })
}

/// A feature table read one record batch at a time (memory: one batch), each row checked
/// against the metadata.
pub struct FeatureRowStream {
    path: PathBuf,
    pub config: FeaturesConfig,
    pub n_coeffs: usize,
    /// The label set (`ser.labels`; the eight emotions for a table that does not say).
    pub labels: Vec<String>,
    /// The shard (`i/n`) a part table records, if it is one (see `FeatureTableWriter::create_part`).
    pub shard: Option<String>,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    buffer: std::collections::VecDeque<FeatureRow>,
    rows_read: usize,
}

impl FeatureRowStream {
    pub fn open(path: &Path) -> Result<FeatureRowStream> {
        let file = fs::File::open(path)?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0).map_err(|e| Error::parquet(path, e))?;
        let metadata = read_metadata(path, builder.schema(), builder.metadata().file_metadata().key_value_metadata());
        let (config, n_coeffs) = config_from_metadata(path, &metadata)?;
        let labels = match metadata.get(table::META_LABELS) {
            None => crate::labels::EMOTIONS.iter().map(|s| s.to_string()).collect(),
            Some(json) => serde_json::from_str::<Vec<String>>(json).map_err(|e| Error::Table {
                path: path.to_path_buf(),
                message: format!("`{}` metadata is not a JSON list of labels: {e}", table::META_LABELS),
            })?,
        };
        let reader = builder.build().map_err(|e| Error::parquet(path, e))?;
        Ok(FeatureRowStream {
            path: path.to_path_buf(),
            config,
            n_coeffs,
            labels,
            shard: metadata.get(table::META_SHARD).cloned(),
            reader,
            buffer: Default::default(),
            rows_read: 0,
        })
    }

    /// The next row, or `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<FeatureRow>> {
        while self.buffer.is_empty() {
            let Some(batch) = self.reader.next() else { return Ok(None) };
            let bad = |message: String| Error::Table { path: self.path.clone(), message };
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let rows = table::from_record_batch(&batch, self.n_coeffs, &self.labels, self.rows_read)
                .map_err(|e| bad(e.to_string()))?;
            if let Some(frames) = self.config.frames
                && let Some(i) = rows.iter().position(|r| r.n_frames as usize != frames)
            {
                return Err(bad(format!(
                    "row {} (clip_id {}): n_frames is {}, but the config fixes frames at {frames}",
                    self.rows_read + i,
                    rows[i].clip_id,
                    rows[i].n_frames
                )));
            }
            self.rows_read += rows.len();
            self.buffer.extend(rows);
        }
        Ok(self.buffer.pop_front())
    }
}

pub const SPLIT_COL_CLIP_ID: &str = "clip_id";
pub const SPLIT_COL_FOLD: &str = "fold";
pub const SPLIT_COL_SPLIT: &str = "split";
pub const META_SPLIT_CONFIG: &str = "ser.split_config";
pub const META_N_FOLDS: &str = "ser.n_folds";

/// The split file's schema: one row per (clip, fold).
pub fn split_schema(metadata: BTreeMap<String, String>) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        vec![
            Field::new(SPLIT_COL_CLIP_ID, DataType::Utf8, false),
            Field::new(SPLIT_COL_FOLD, DataType::UInt32, false),
            Field::new(SPLIT_COL_SPLIT, DataType::Utf8, false),
        ],
        metadata,
    ))
}

/// Writes a split file atomically.
pub fn write_splits(path: &Path, splits: &SplitAssignment) -> Result<()> {
    let metadata = BTreeMap::from([
        (table::META_FORMAT_VERSION.to_string(), table::FORMAT_VERSION.to_string()),
        (META_SPLIT_CONFIG.to_string(), splits.config_json.clone()),
        (META_N_FOLDS.to_string(), splits.n_folds.to_string()),
        (table::META_FEATURES_CONFIG_HASH.to_string(), splits.features_config_hash.clone()),
    ]);
    let schema = split_schema(metadata);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(splits.rows.iter().map(|r| Some(r.clip_id.as_str())).collect::<StringArray>()),
        Arc::new(splits.rows.iter().map(|r| r.fold).collect::<UInt32Array>()),
        Arc::new(splits.rows.iter().map(|r| Some(r.part.as_str())).collect::<StringArray>()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("columns match the split schema");
    let mut out = AtomicFile::create(path)?;
    let file = out.file().try_clone().map_err(|e| Error::io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(key_values(&schema)))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::parquet(path, e))?;
    writer.write(&batch).map_err(|e| Error::parquet(path, e))?;
    writer.close().map_err(|e| Error::parquet(path, e))?;
    Ok(out.commit()?)
}

/// Reads a split file. Any tool may write it: only the three columns are required.
pub fn read_splits(path: &Path) -> Result<SplitAssignment> {
    let bad = |message: String| Error::Table { path: path.to_path_buf(), message };
    let file = fs::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0).map_err(|e| Error::parquet(path, e))?;
    let metadata = read_metadata(path, builder.schema(), builder.metadata().file_metadata().key_value_metadata());
    let reader = builder.build().map_err(|e| Error::parquet(path, e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let get = |name: &str| batch.column_by_name(name).ok_or_else(|| bad(format!("missing column `{name}`")));
        let clip_id = get(SPLIT_COL_CLIP_ID)?;
        let fold = get(SPLIT_COL_FOLD)?;
        let part = get(SPLIT_COL_SPLIT)?;
        let clip_id =
            clip_id.as_any().downcast_ref::<StringArray>().ok_or_else(|| bad("`clip_id` must be utf8".into()))?;
        let part = part.as_any().downcast_ref::<StringArray>().ok_or_else(|| bad("`split` must be utf8".into()))?;
        let fold = arrow::compute::cast(fold, &DataType::UInt32).map_err(|e| bad(format!("`fold`: {e}")))?;
        let fold = fold.as_any().downcast_ref::<UInt32Array>().expect("cast to u32");
        for i in 0..batch.num_rows() {
            let row = rows.len();
            if clip_id.is_null(i) || part.is_null(i) || fold.is_null(i) {
                return Err(bad(format!("row {row}: null value")));
            }
            let name = part.value(i);
            let parsed = SplitPart::parse(name).ok_or_else(|| {
                bad(format!("row {row} (clip_id {}): split `{name}` is not train, val or test", clip_id.value(i)))
            })?;
            rows.push(crate::split::SplitRow {
                clip_id: clip_id.value(i).to_string(),
                fold: fold.value(i),
                part: parsed,
            });
        }
    }
    let n_folds = rows.iter().map(|r| r.fold + 1).max().unwrap_or(0);
    Ok(SplitAssignment {
        config_json: metadata.get(META_SPLIT_CONFIG).cloned().unwrap_or_default(),
        features_config_hash: metadata.get(table::META_FEATURES_CONFIG_HASH).cloned().unwrap_or_default(),
        n_folds,
        rows,
    })
}

/// One rejected input file and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub path: String,
    pub reason: String,
}

/// Writes `path,reason` rows (with a header) atomically.
pub fn write_rejects(path: &Path, rejects: &[Reject]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["path", "reason"]).map_err(|e| Error::csv(path, e))?;
    for r in rejects {
        writer.write_record([&r.path, &r.reason]).map_err(|e| Error::csv(path, e))?;
    }
    let bytes = writer.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    Ok(write_atomic(path, &bytes)?)
}

/// Reads a rejects file written by [`write_rejects`], or `None` where there is none.
pub fn read_rejects_if_any(path: &Path) -> Result<Option<Vec<Reject>>> {
    if path.exists() { read_rejects(path).map(Some) } else { Ok(None) }
}

/// Reads a rejects file written by [`write_rejects`].
pub fn read_rejects(path: &Path) -> Result<Vec<Reject>> {
    let bytes = fs::read(path)?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let mut rejects = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Error::csv(path, e))?;
        match (record.get(0), record.get(1)) {
            (Some(p), Some(r)) => rejects.push(Reject { path: p.to_string(), reason: r.to_string() }),
            _ => {
                return Err(Error::Table {
                    path: path.to_path_buf(),
                    message: format!("row {}: expected the columns path,reason", rejects.len() + 1),
                });
            }
        }
    }
    Ok(rejects)
}

/// Reads an audio file whole, refusing files far larger than `max_duration_s` of uncompressed
/// audio could explain (so a huge file fails before it fills memory). The message names no path:
/// the caller does.
pub fn read_audio_file(path: &Path, max_duration_s: f32) -> std::result::Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    // The highest supported rate x 8 channels x 8 bytes (64-bit float) is the most a second of
    // audio can take.
    let max_bytes = (max_duration_s as f64 * *crate::audio::SAMPLE_RATES.end() as f64 * 8.0 * 8.0) as u64 + (1 << 20);
    if metadata.len() > max_bytes {
        return Err(format!(
            "{} bytes is more than max_duration_s ({max_duration_s} s) of any supported audio",
            metadata.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// [`read_audio_file`] with an error that names the file.
pub fn read_audio_bytes(path: &Path, max_duration_s: f32) -> Result<Vec<u8>> {
    read_audio_file(path, max_duration_s)
        .map_err(|reason| Error::Audio { path: path.to_path_buf(), source: crate::audio::AudioError::Read(reason) })
}

/// Reads and decodes an audio file ([`read_audio_file`], then [`crate::audio::decode_audio`]);
/// the error names the file.
pub fn read_audio(path: &Path, max_duration_s: f32) -> Result<crate::audio::Audio> {
    crate::audio::decode_audio(&read_audio_bytes(path, max_duration_s)?, max_duration_s)
        .map_err(|source| Error::Audio { path: path.to_path_buf(), source })
}

/// Files named on a command line: files as they are, directories searched for audio files
/// ([`find_audio_files`]), and glob patterns (`'calls/*.wav'`) expanded; in that order, each
/// directory's and pattern's files sorted. A name that is none of these is kept, so that the
/// caller reports it with the other inputs' results; a pattern that matches nothing is an error.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            let found = find_audio_files(path)?;
            if found.is_empty() {
                tracing::warn!("{}: no audio files ({})", path.display(), AUDIO_EXTENSIONS.join(", "));
            }
            out.extend(found);
        } else if path.exists() || !input.contains(['*', '?', '[']) {
            out.push(path.to_path_buf());
        } else {
            let pattern = glob::glob(input).map_err(|e| Error::Config(format!("bad glob pattern `{input}`: {e}")))?;
            let mut matches: Vec<PathBuf> = pattern.filter_map(|m| m.ok()).filter(|p| p.is_file()).collect();
            if matches.is_empty() {
                return Err(Error::Config(format!("`{input}` matches no file")));
            }
            matches.sort();
            out.extend(matches);
        }
    }
    Ok(out)
}

/// File extensions taken for audio when a folder is searched (any case). The decoder finds the
/// format from the bytes; the extension only picks the files.
pub const AUDIO_EXTENSIONS: [&str; 13] =
    ["wav", "wave", "flac", "mp3", "ogg", "oga", "m4a", "mp4", "aac", "aif", "aiff", "aifc", "caf"];

/// Every audio file ([`AUDIO_EXTENSIONS`]) under `root` (symlinks followed), sorted.
pub fn find_audio_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let file_type = fs::metadata(&path)?.file_type();
            if file_type.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The file nEMO's authors describe their clips in: `file_id`, `emotion`, `raw_text`,
/// `normalized_text`, `speaker_id`, `gender`, `age`, tab-separated.
pub const NEMO_METADATA: &str = "data.tsv";

/// One clip of nEMO's `data.tsv` (the columns ser keeps).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct NemoRow {
    pub file_id: String,
    pub emotion: String,
    pub raw_text: String,
    pub speaker_id: String,
    pub gender: String,
}

/// nEMO's `data.tsv`, looked for in the folder of clips and then in its parent (the corpus's own
/// layout: `samples/` beside `data.tsv`): its path and its rows by `file_id` (the file name), or
/// `None` when neither folder has one.
pub fn read_nemo_metadata(root: &Path) -> Result<Option<(PathBuf, BTreeMap<String, NemoRow>)>> {
    let Some(path) = [root.join(NEMO_METADATA), root.join("..").join(NEMO_METADATA)].into_iter().find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .trim(csv::Trim::All)
        .from_path(&path)
        .map_err(|e| Error::csv(&path, e))?;
    let mut rows = BTreeMap::new();
    for (row_idx, record) in reader.deserialize::<NemoRow>().enumerate() {
        let row: NemoRow = record.map_err(|e| Error::Table {
            path: path.clone(),
            message: format!(
                "line {}: {e}; expected nEMO's columns file_id, emotion, raw_text, speaker_id, gender",
                row_idx + 2
            ),
        })?;
        rows.insert(row.file_id.clone(), row);
    }
    Ok(Some((path, rows)))
}

/// One row of a manifest CSV: `path,label,speaker[,split]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestRow {
    pub path: String,
    pub label: Option<String>,
    pub speaker: String,
    #[serde(default)]
    pub split: Option<String>,
}

/// Reads a manifest CSV. Paths are relative to the manifest's folder unless absolute. Labels are
/// the corpus's own (the label set comes from them, or from `labels` in features.yaml); an empty
/// label means unknown.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| Error::csv(path, e))?;
    let mut rows = Vec::new();
    for (row_idx, record) in reader.deserialize::<ManifestRow>().enumerate() {
        let row_number = row_idx + 2; // 1-based, after the header
        let mut row = record.map_err(|e| Error::Table {
            path: path.to_path_buf(),
            message: format!("line {row_number}: {e}; expected columns path,label,speaker[,split]"),
        })?;
        if row.label.as_deref() == Some("") {
            row.label = None;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The `split` column of a manifest: clip id (file stem) -> part. Every row needs a split.
pub fn read_manifest_splits(path: &Path) -> Result<BTreeMap<String, SplitPart>> {
    let mut parts = BTreeMap::new();
    for (row_idx, row) in read_manifest(path)?.into_iter().enumerate() {
        let line = row_idx + 2;
        let name = row.split.as_deref().unwrap_or("");
        let part = SplitPart::parse(name).ok_or_else(|| Error::Table {
            path: path.to_path_buf(),
            message: format!("line {line} ({}): split `{name}` is not train, val or test", row.path),
        })?;
        let stem = Path::new(&row.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        parts.insert(stem, part);
    }
    Ok(parts)
}

/// Writes one clip's features (frames x coefficients, row-major) as a float32 `.npy` array of
/// shape `(frames, coeffs)`, atomically.
pub fn write_features_npy(path: &Path, features: &FeatureMatrix) -> Result<()> {
    Ok(write_atomic(path, &npy_bytes(&[features.n_frames, features.n_coeffs], &features.values))?)
}

/// Writes one clip's features as JSON, `{"frames", "coeffs", "features": [[...], ...]}` (one
/// list per frame), atomically.
pub fn write_features_json(path: &Path, features: &FeatureMatrix) -> Result<()> {
    let rows: Vec<&[f32]> = (0..features.n_frames).map(|t| features.frame(t)).collect();
    let json = serde_json::json!({"frames": features.n_frames, "coeffs": features.n_coeffs, "features": rows});
    Ok(write_atomic(path, format!("{json}\n").as_bytes())?)
}

/// Reads and validates a feature config file.
pub fn read_features_config(path: &Path) -> Result<crate::FeaturesConfig> {
    let text = fs_err::read_to_string(path)?;
    crate::FeaturesConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Reads and validates a split config file.
pub fn read_split_config(path: &Path) -> Result<crate::SplitConfig> {
    let text = fs_err::read_to_string(path)?;
    crate::SplitConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}
