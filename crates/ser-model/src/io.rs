//! Everything ser-model reads from or writes to the disk: `model.yaml`, the feature table and
//! split file, the checkpoint directory ([`crate::checkpoint`] names its files and types),
//! `history.csv` and `predictions.parquet`. Every write is atomic (temporary file, rename).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use candle_core::Device;
use fs_err as fs;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
pub use ser_core::io::sha256_file;
use ser_core::io::{AtomicFile, write_atomic};
use ser_features::table::FeatureTable;

use crate::average::WeightAverage;
use crate::checkpoint::{
    AVERAGE_PREFIX, BEST_PREFIX, Combine, DataProvenance, ENSEMBLE_KEY, EnsembleJson, EnsembleMember, EpochRecord,
    FORMAT_VERSION, HISTORY_COLUMNS, HISTORY_FILE, LAST_WEIGHTS_FILE, META_RESUME, ModelJson, ResumeMeta, SIDECAR_FILE,
    WEIGHTS_FILE, member_prefix,
};
use crate::config::ModelConfig;
use crate::data::{Dataset, part};
use crate::network::Network;
use crate::optim::Adam;
use crate::params::{ParamSpec, Weights};
use crate::predict::{Checkpoint, Member, Model, Predictions};
use crate::{Error, Result};

pub use ser_core::predictions::{COL_CLIP_ID, COL_CORPUS, COL_LABEL, COL_PREDICTED, PROB_PREFIX};

/// Reads and validates `ensemble.yaml`.
pub fn read_ensemble_config(path: &Path) -> Result<crate::config::EnsembleConfig> {
    let text = fs::read_to_string(path)?;
    crate::config::EnsembleConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Reads and validates `model.yaml`.
pub fn read_model_config(path: &Path) -> Result<ModelConfig> {
    let text = fs::read_to_string(path)?;
    ModelConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// A feature table and split file read together: the train, val and test parts of one fold,
/// and their provenance ([`load_split`]).
pub struct SplitData {
    pub table: FeatureTable,
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    pub provenance: DataProvenance,
}

/// Reads `features` and `splits`, refusing a split file made from another feature table, and
/// takes fold `fold`'s parts.
pub fn load_split(features: &Path, splits_path: &Path, fold: u32) -> Result<SplitData> {
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
    use ser_features::split::SplitPart;
    let train = part(&table, &splits, fold, SplitPart::Train)?;
    let val = part(&table, &splits, fold, SplitPart::Val)?;
    let test = part(&table, &splits, fold, SplitPart::Test)?;
    let provenance = DataProvenance {
        features_path: features.display().to_string(),
        features_sha256: sha256_file(features)?,
        splits_path: splits_path.display().to_string(),
        splits_sha256: sha256_file(splits_path)?,
        split_config: splits.config_json.clone(),
        fold,
        n_train: train.len(),
        n_val: val.len(),
        n_test: test.len(),
    };
    Ok(SplitData { table, train, val, test, provenance })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("contract types serialise");
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(Error::from)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes named f32 tensors (name, dims, values) to a safetensors file atomically.
fn write_tensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: Option<(&str, String)>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| f32_bytes(v)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, dims, _), b)| Ok((name.as_str(), TensorView::new(Dtype::F32, dims.clone(), b)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })?;
    let metadata = metadata.map(|(k, v)| HashMap::from([(k.to_string(), v)]));
    let serialized = safetensors::serialize(views, metadata)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })?;
    write_atomic(path, &serialized).map_err(Error::from)
}

/// A safetensors file's f32 tensors by name, and its metadata.
struct TensorFile {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    metadata: HashMap<String, String>,
}

fn read_tensors(path: &Path) -> Result<TensorFile> {
    tensors_of(&fs::read(path)?, path)
}

/// A safetensors file's bytes as a [`TensorFile`]; `path` names it in messages.
fn tensors_of(bytes: &[u8], path: &Path) -> Result<TensorFile> {
    let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
    let file = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.iter() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is {:?}; ser checkpoints hold float32", view.dtype())));
        }
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.insert(name.to_string(), (view.shape().to_vec(), values));
    }
    Ok(TensorFile { tensors, metadata: header.metadata().clone().unwrap_or_default() })
}

/// The network's tensors, each named `prefix` + its parameter name.
fn named<'w>(specs: &[ParamSpec], weights: &'w Weights, prefix: &str) -> Vec<(String, Vec<usize>, &'w [f32])> {
    specs
        .iter()
        .zip(weights.values())
        .map(|(s, v)| (format!("{prefix}{}", s.name), s.dims.clone(), v.as_slice()))
        .collect()
}

/// Takes the network's parameters (named `prefix` + name) out of `file`, shapes checked.
fn take_weights(file: &mut TensorFile, specs: &[ParamSpec], prefix: &str, path: &Path) -> Result<Weights> {
    let mut values = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = format!("{prefix}{}", spec.name);
        let (dims, v) = file.tensors.remove(&name).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("tensor `{name}` is missing; was this checkpoint written for another model config?"),
        })?;
        if dims != spec.dims {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                message: format!("tensor `{name}` has shape {dims:?}, the model config needs {:?}", spec.dims),
            });
        }
        values.push(v);
    }
    Weights::from_values(specs, values).map_err(|message| Error::Checkpoint { path: path.to_path_buf(), message })
}

/// A network's weights from a safetensors file holding its tensors by name (a checkpoint's
/// `model.safetensors`, or one written by another tool), shapes checked.
pub fn read_weights(path: &Path, network: &Network) -> Result<Weights> {
    take_weights(&mut read_tensors(path)?, network.params(), "", path)
}

/// `model.safetensors` then `model.json`: the sidecar comes last, so its presence means the
/// checkpoint is whole.
pub fn write_checkpoint(dir: &Path, network: &Network, weights: &Weights, meta: &ModelJson) -> Result<()> {
    write_tensors(&dir.join(WEIGHTS_FILE), &named(network.params(), weights, ""), None)?;
    write_json(&dir.join(SIDECAR_FILE), meta)
}

/// Creates the directory training is about to write and removes its `model.json`, so that a run
/// that stops early leaves no sidecar of an older run beside newer weights. Returns whether there
/// was one (the directory held a finished run).
pub fn retire_sidecar(dir: &Path) -> Result<bool> {
    fs_err::create_dir_all(dir)?;
    match std::fs::remove_file(dir.join(SIDECAR_FILE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ser_features::Error::io(&dir.join(SIDECAR_FILE), e).into()),
    }
}

/// Loads a checkpoint directory for inference on `device`: a trained checkpoint, or an ensemble
/// (`model.json` with [`ENSEMBLE_KEY`]).
pub fn read_checkpoint(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let sidecar = dir.join(SIDECAR_FILE);
    if !sidecar.is_file() {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: format!(
                "no {SIDECAR_FILE}: not a ser checkpoint directory, or its training has not finished (train one with `ser-model train`)"
            ),
        });
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    if !weights_path.is_file() {
        return Err(Error::Checkpoint { path: weights_path, message: "missing weights file".into() });
    }
    checkpoint_from_bytes(dir, &fs::read(&sidecar)?, &fs::read(&weights_path)?, device)
}

/// A checkpoint from the bytes of its two files (`model.json`, `model.safetensors`), as
/// [`read_checkpoint`] reads them from `dir`; a checkpoint built into a binary is read this way,
/// `dir` naming it in messages.
pub fn checkpoint_from_bytes(dir: &Path, sidecar_bytes: &[u8], weights: &[u8], device: &Device) -> Result<Checkpoint> {
    let sidecar = dir.join(SIDECAR_FILE);
    let weights_path = dir.join(WEIGHTS_FILE);
    let bad = |message: String| Error::Checkpoint { path: sidecar.clone(), message };
    let raw: serde_json::Value = serde_json::from_slice(sidecar_bytes).map_err(|e| bad(e.to_string()))?;
    let version = raw.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(bad(format!("format_version {version:?} is not supported (this build reads {FORMAT_VERSION})")));
    }
    let weights_sha256 = ser_core::io::sha256_bytes(weights);
    let mut file = tensors_of(weights, &weights_path)?;
    if raw.get(ENSEMBLE_KEY).is_none() {
        let meta: ModelJson = serde_json::from_value(raw).map_err(|e| bad(e.to_string()))?;
        let member = read_member(meta, &mut file, "", &weights_path, device).map_err(|e| in_sidecar(e, &sidecar))?;
        return Ok(Checkpoint { dir: dir.to_path_buf(), members: vec![member], ensemble: None, weights_sha256 });
    }
    let ensemble: EnsembleJson = serde_json::from_value(raw).map_err(|e| bad(e.to_string()))?;
    if ensemble.members.is_empty() {
        return Err(bad("an ensemble with no members".into()));
    }
    let mut members = Vec::with_capacity(ensemble.members.len());
    for (i, m) in ensemble.members.iter().enumerate() {
        let in_member = |message: String| bad(format!("member {i} ({}): {message}", m.source));
        let member =
            read_member(m.model.clone(), &mut file, &member_prefix(i), &weights_path, device).map_err(|e| match e {
                Error::Config(message) => in_member(message),
                e => e,
            })?;
        ensemble.interface().admits(&member.meta).map_err(in_member)?;
        members.push(member);
    }
    Ok(Checkpoint { dir: dir.to_path_buf(), members, ensemble: Some(ensemble), weights_sha256 })
}

/// Whether `other` trained on the clips `first` trained on: the same fold of a split that puts
/// every clip where `first`'s does (its config's [`ser_features::SplitConfig::assignment_key`]).
/// A member trained on another fold, or split otherwise, may have trained on the ensemble's test
/// speakers.
fn same_clips(first: &ModelJson, other: &ModelJson) -> std::result::Result<(), String> {
    let key = |json: &str| {
        serde_json::from_str::<ser_features::SplitConfig>(json)
            .map_or_else(|_| json.to_string(), |c| c.assignment_key())
    };
    let (a, b) = (&first.data, &other.data);
    if a.fold != b.fold || key(&a.split_config) != key(&b.split_config) {
        return Err(format!(
            "it trained on fold {} of the split {}, the ensemble's members on fold {} of {}; a member must train on the \
             same clips, or it may have heard the ensemble's test speakers",
            b.fold, b.split_config, a.fold, a.split_config
        ));
    }
    Ok(())
}

/// Whether two paths name one existing directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

/// A message about a member's sidecar, said of the file that holds it.
fn in_sidecar(e: Error, sidecar: &Path) -> Error {
    match e {
        Error::Config(message) => Error::Checkpoint { path: sidecar.to_path_buf(), message },
        e => e,
    }
}

/// A member's network built from its sidecar, and its weights (named `prefix` + name) taken
/// out of `file`.
fn read_member(meta: ModelJson, file: &mut TensorFile, prefix: &str, path: &Path, device: &Device) -> Result<Member> {
    if meta.features_config.hash() != meta.features_config_hash {
        return Err(Error::Config(
            "features_config does not hash to features_config_hash: written by an older build (whose feature \
             hash was defined otherwise), or edited; train the checkpoint again with this build"
                .into(),
        ));
    }
    let network = Network::new(&meta.model_config, meta.n_frames, meta.n_coeffs, meta.labels.len())
        .map_err(|e| Error::Config(e.to_string()))?;
    let weights = take_weights(file, network.params(), prefix, path)?;
    let model = Model::new(network, weights, device)?;
    Ok(Member { meta, model })
}

/// Writes an ensemble of the checkpoints in `sources` (trained ones or ensembles, whose members
/// join as they are) into `out`: every member's tensors in one `model.safetensors`, then
/// `model.json`. Fails, naming the source, when the members differ in labels, feature config or
/// input shape, or when `config` is given and names other seeds (nothing is written then).
/// Returns what it wrote.
pub fn write_ensemble(
    sources: &[std::path::PathBuf],
    out: &Path,
    config: Option<&crate::config::EnsembleConfig>,
) -> Result<EnsembleJson> {
    let mut members: Vec<EnsembleMember> = Vec::new();
    let mut loaded: Vec<Member> = Vec::new();
    for source in sources {
        if same_dir(source, out) {
            return Err(Error::Checkpoint {
                path: out.to_path_buf(),
                message: "the ensemble would overwrite its member; give another --out".into(),
            });
        }
        let checkpoint = read_checkpoint(source, &Device::Cpu)?;
        let records: Vec<EnsembleMember> = match &checkpoint.ensemble {
            Some(e) => e.members.clone(),
            None => vec![EnsembleMember {
                source: source.display().to_string(),
                weights_sha256: checkpoint.weights_sha256.clone(),
                model: checkpoint.members[0].meta.clone(),
            }],
        };
        for (record, member) in records.into_iter().zip(checkpoint.members) {
            if let Some(first) = loaded.first() {
                let joins =
                    first.meta.interface().admits(&member.meta).and_then(|()| same_clips(&first.meta, &member.meta));
                joins.map_err(|message| Error::Checkpoint {
                    path: source.clone(),
                    message: format!("cannot join an ensemble with {}: {message}", members[0].source),
                })?;
            }
            members.push(record);
            loaded.push(member);
        }
    }
    let Some(first) = loaded.first() else {
        return Err(Error::Config("an ensemble needs at least one member checkpoint".into()));
    };
    let meta = &first.meta;
    if let Some(config) = config {
        let seeds: Vec<u64> = members.iter().map(|m| m.model.seed).collect();
        config
            .check_members(&seeds)
            .map_err(|e| Error::Checkpoint { path: out.to_path_buf(), message: e.to_string() })?;
    }
    let protocols: std::collections::BTreeSet<&str> = members.iter().map(|m| m.model.protocol.as_str()).collect();
    let seeds: Vec<String> = members.iter().map(|m| m.model.seed.to_string()).collect();
    let protocol = format!(
        "the mean of {} members' probabilities (seeds {}); each: {}",
        members.len(),
        seeds.join(", "),
        protocols.into_iter().collect::<Vec<_>>().join(" | ")
    );
    let ensemble = EnsembleJson {
        format_version: FORMAT_VERSION,
        labels: meta.labels.clone(),
        features_config: meta.features_config.clone(),
        features_config_hash: meta.features_config_hash.clone(),
        n_frames: meta.n_frames,
        n_coeffs: meta.n_coeffs,
        combine: Combine::MeanProbabilities,
        protocol,
        members,
        versions: crate::checkpoint::versions(),
    };
    let prefixes: Vec<String> = (0..loaded.len()).map(member_prefix).collect();
    let tensors: Vec<(String, Vec<usize>, &[f32])> = loaded
        .iter()
        .zip(&prefixes)
        .flat_map(|(m, prefix)| named(m.model.network.params(), &m.model.weights, prefix))
        .collect();
    retire_sidecar(out)?;
    write_tensors(&out.join(WEIGHTS_FILE), &tensors, None)?;
    write_json(&out.join(SIDECAR_FILE), &ensemble)?;
    Ok(ensemble)
}

/// Writes the checkpoint in `dir` as one ONNX model at `out` (atomically); returns the model's
/// size in bytes.
pub fn export_onnx(dir: &Path, out: &Path) -> Result<usize> {
    let checkpoint = read_checkpoint(dir, &Device::Cpu)?;
    let meta = crate::onnx::ExportMeta::of(&checkpoint);
    let members: Vec<_> = checkpoint.members.iter().map(crate::onnx::ExportMember::of).collect();
    let bytes = crate::onnx::export(&members, meta)
        .map_err(|e| Error::Checkpoint { path: dir.to_path_buf(), message: format!("ONNX export: {e}") })?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    write_atomic(out, &bytes)?;
    Ok(bytes.len())
}

/// What `last.safetensors` holds.
#[derive(Debug)]
pub struct ResumePoint {
    pub meta: ResumeMeta,
    pub weights: Weights,
    pub best: Weights,
    pub adam: Adam,
    /// The weight average, with `weight_average` set.
    pub average: Option<WeightAverage>,
}

/// Writes `last.safetensors` (atomically, one file) and `history.csv`.
pub fn write_epoch(dir: &Path, network: &Network, point: &ResumePoint) -> Result<()> {
    let specs = network.params();
    let mut tensors = named(specs, &point.weights, "");
    tensors.extend(named(specs, &point.best, BEST_PREFIX));
    tensors.extend(point.adam.moments(specs));
    if let Some(average) = &point.average {
        tensors.extend(named(specs, average.weights(), AVERAGE_PREFIX));
    }
    let meta = serde_json::to_string(&point.meta).expect("resume state serialises");
    write_tensors(&dir.join(LAST_WEIGHTS_FILE), &tensors, Some((META_RESUME, meta)))?;
    write_history(&dir.join(HISTORY_FILE), &point.meta.history)
}

/// Reads `last.safetensors` for `--resume`; `None` when the directory has none. `average_decay`
/// is `weight_average` (the file then holds the average's tensors).
pub fn read_epoch(
    dir: &Path,
    network: &Network,
    learning_rate: f64,
    average_decay: Option<f64>,
) -> Result<Option<ResumePoint>> {
    let path = dir.join(LAST_WEIGHTS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |message: &str| Error::Checkpoint { path: path.clone(), message: message.to_string() };
    let mut file = read_tensors(&path)?;
    let meta_json = file
        .metadata
        .get(META_RESUME)
        .ok_or_else(|| bad("no resume state: written by an older build; train again without --resume"))?;
    let meta: ResumeMeta = serde_json::from_str(meta_json).map_err(|e| bad(&format!("resume state: {e}")))?;
    let specs = network.params();
    let weights = take_weights(&mut file, specs, "", &path)?;
    let best = take_weights(&mut file, specs, BEST_PREFIX, &path)?;
    let mut adam = Adam::new(specs, learning_rate);
    adam.restore(specs, |name| file.tensors.get(name).map(|(_, v)| v.clone()), meta.state.adam_step)
        .ok_or_else(|| bad("optimiser moments are missing"))?;
    let average = match average_decay {
        Some(decay) => Some(WeightAverage::new(decay, take_weights(&mut file, specs, AVERAGE_PREFIX, &path)?)),
        None => None,
    };
    Ok(Some(ResumePoint { meta, weights, best, adam, average }))
}

/// `history.csv`: one row per epoch, written atomically.
pub fn write_history(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut text = HISTORY_COLUMNS.join(",");
    text.push('\n');
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    for r in history {
        text.push_str(&format!(
            "{},{:.6},{:.6},{},{},{},{},{:.3e}\n",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            cell(r.val_loss),
            cell(r.val_accuracy),
            cell(r.val_macro_f1),
            cell(r.val_uar),
            r.learning_rate
        ));
    }
    write_atomic(path, text.as_bytes()).map_err(Error::from)
}

/// Writes `predictions.parquet` atomically: `clip_id`, `label` (null when unknown), `predicted`
/// and one `p_<label>` (float32) per class in label order, with `provenance` as metadata.
pub fn write_predictions(path: &Path, predictions: &Predictions, provenance: &[(&str, String)]) -> Result<()> {
    let mut fields = vec![
        Field::new(COL_CLIP_ID, DataType::Utf8, false),
        Field::new(COL_LABEL, DataType::Utf8, true),
        Field::new(COL_PREDICTED, DataType::Utf8, false),
    ];
    for label in &predictions.labels {
        fields.push(Field::new(format!("{PROB_PREFIX}{label}"), DataType::Float32, false));
    }
    if predictions.corpora.is_some() {
        fields.push(Field::new(COL_CORPUS, DataType::Utf8, false));
    }
    let metadata: Vec<(String, String)> = provenance.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let schema = Arc::new(Schema::new(fields).with_metadata(metadata.iter().cloned().collect::<HashMap<_, _>>()));
    let n = predictions.clip_ids.len();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(predictions.clip_ids.iter().map(|s| Some(s.as_str())).collect::<StringArray>()),
        Arc::new(predictions.truth.iter().map(|s| s.as_deref()).collect::<StringArray>()),
        Arc::new((0..n).map(|i| Some(predictions.predicted(i))).collect::<StringArray>()),
    ];
    for c in 0..predictions.labels.len() {
        columns.push(Arc::new(predictions.probabilities.iter().map(|p| p[c]).collect::<Float32Array>()));
    }
    if let Some(corpora) = &predictions.corpora {
        columns.push(Arc::new(corpora.iter().map(|c| Some(c.as_str())).collect::<StringArray>()));
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
