//! Side-by-side benchmark: seconds per training epoch of ser-model and of the Keras reference
//! (`build_model()` of `../shared/peer/train_eval.py`), same clips, same batch size (16), same
//! validation part, in one run; plus single-clip forward latency on one core, and the seconds of
//! an epoch through the candle engine (the GPU path) on this CPU, against the fused one. Both
//! sides train the reference network on the reference features (`ModelConfig::reference()`,
//! `FeaturesConfig::reference()`: no augmentation, whatever a pipeline adds), on
//! `pipelines/ravdess`'s split.
//!
//! Settings: RAVDESS_DIR (default data/raw/ravdess), PEER_DIR (default ../shared/peer),
//! PEER_PYTHON (default /tmp/peer-venv/bin/python), BENCH_EPOCHS (default 3), BENCH_CANDLE_EPOCHS
//! (default 1). Prints one JSON line and writes artifacts/bench/epoch.json. Run with
//! `make bench-train`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use candle_core::Device;
use ser_features::split::{ClipKey, SplitPart, make_splits};
use ser_model::checkpoint::{DataProvenance, EpochRecord};
use ser_model::data;
use ser_model::step::Engine;
use ser_model::train::{EpochReporter, TrainData, TrainOptions, train};

fn env_path(name: &str, default: &Path) -> PathBuf {
    // cargo bench runs in the crate's folder: a relative path is meant from the workspace root,
    // where make runs.
    std::env::var_os(name)
        .map(|v| Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(v))
        .unwrap_or_else(|| default.to_path_buf())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A float32 array as a .npy file.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    std::fs::write(path, ser_features::io::npy_bytes(shape, values)).unwrap();
}

struct Collect(std::sync::Mutex<Vec<f64>>);

impl EpochReporter for Collect {
    fn on_epoch(&self, record: &EpochRecord, _max: usize, _best: bool) {
        eprintln!("ser epoch {}: {:.2} s", record.epoch, record.seconds);
        self.0.lock().unwrap().push(record.seconds);
    }
}

const KERAS: &str = r#"
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
sys.path.insert(0, sys.argv[1])
import train_eval
from tensorflow import keras
d = sys.argv[2]
X, y, Xv, yv = (np.load(os.path.join(d, n)) for n in ("x.npy", "y.npy", "xv.npy", "yv.npy"))
keras.utils.set_random_seed(42)
model = train_eval.build_model()
times = []
class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): times.append(time.perf_counter() - self.t)
model.fit(X, y.astype(np.int64), validation_data=(Xv, yv.astype(np.int64)), epochs=int(sys.argv[3]), batch_size=16, verbose=0, callbacks=[Timer()])
print(json.dumps({"seconds_per_epoch": times}))
"#;

fn main() {
    // As the binaries do (see the function); SAFETY: no other thread runs yet.
    unsafe { ser_model::use_inline_elementwise_ops() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let raw = env_path("RAVDESS_DIR", &root.join("data/raw/ravdess"));
    let peer = env_path("PEER_DIR", &root.join("../shared/peer"));
    let python = env_path("PEER_PYTHON", Path::new("/tmp/peer-venv/bin/python"));
    let epochs: usize = std::env::var("BENCH_EPOCHS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    if !raw.is_dir() {
        eprintln!("SKIPPED: RAVDESS_DIR {} is not a folder; run `make data` first (see README)", raw.display());
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let features_config = ser_features::FeaturesConfig::reference();
    let source =
        ser_features::extract::Source::Folder { root: raw.clone(), corpus: ser_features::labels::Corpus::Ravdess };
    let discovery = ser_features::extract::discover(&source, &features_config).unwrap();
    let analyzer = ser_features::dsp::Analyzer::new(&features_config);
    let table_path = work.path().join("features.parquet");
    ser_features::extract::extract_to_table(
        &discovery.clips,
        &discovery.labels,
        &analyzer,
        &table_path,
        true,
        None,
        &ser_features::extract::Silent,
    )
    .unwrap();
    let table = ser_features::io::read_feature_table(&table_path).unwrap();
    let keys: Vec<ClipKey> = table
        .rows
        .iter()
        .map(|r| ClipKey { clip_id: &r.clip_id, corpus: &r.corpus, speaker: &r.speaker, label: r.label.as_deref() })
        .collect();
    // The reference protocol's split: the split section of pipelines/ravdess.yaml, a base
    // pipeline (it extends none, so its section is the whole of it).
    let pipeline: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(root.join("pipelines/ravdess.yaml")).unwrap()).unwrap();
    assert!(pipeline.get("extends").is_none(), "pipelines/ravdess.yaml extends another: resolve it with ser-pipeline");
    let split_config =
        ser_features::SplitConfig::from_yaml(&yaml_serde::to_string(&pipeline["split"]).unwrap()).unwrap();
    let splits = make_splits(&keys, &split_config, &table.config.hash(), None).unwrap();
    let train_set = data::part(&table, &splits, 0, SplitPart::Train).unwrap();
    let val_set = data::part(&table, &splits, 0, SplitPart::Val).unwrap();

    let mut config = ser_model::ModelConfig::reference();
    config.max_epochs = epochs;
    config.patience = epochs + 1;
    let provenance = DataProvenance {
        features_path: "bench".into(),
        features_sha256: String::new(),
        splits_path: "bench".into(),
        splits_sha256: String::new(),
        split_config: String::new(),
        fold: 0,
        n_train: train_set.len(),
        n_val: val_set.len(),
        n_test: 0,
    };
    let train_data = TrainData { train: &train_set, val: &val_set, features_config: &table.config, provenance };
    let collect = Collect(std::sync::Mutex::new(Vec::new()));
    let outcome = train(&train_data, &config, &TrainOptions::in_memory(&Device::Cpu), &collect).unwrap();
    let ser_epochs = collect.0.into_inner().unwrap();
    // The same epochs through candle's graph and autograd (the GPU path), on this CPU.
    let candle_epochs: usize = std::env::var("BENCH_CANDLE_EPOCHS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let candle_collect = Collect(std::sync::Mutex::new(Vec::new()));
    if candle_epochs > 0 {
        let candle_config = ser_model::ModelConfig { max_epochs: candle_epochs, ..config.clone() };
        let options = TrainOptions { engine: Engine::Candle, ..TrainOptions::in_memory(&Device::Cpu) };
        train(&train_data, &candle_config, &options, &candle_collect).unwrap();
    }
    let candle_seconds = candle_collect.0.into_inner().unwrap();

    // Single-clip forward pass, inference mode.
    let clip = train_set.clip(0);
    let mut forward_ms = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let _ = outcome.model.probabilities(clip, 1).unwrap();
        forward_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    let has_keras = Command::new(&python).args(["-c", "import tensorflow"]).output().is_ok_and(|o| o.status.success());
    let keras_epochs: Option<Vec<f64>> = if has_keras {
        let labels = |d: &data::Dataset| d.labels.iter().map(|l| l.unwrap() as f32).collect::<Vec<f32>>();
        write_npy(
            &work.path().join("x.npy"),
            &[train_set.len(), train_set.n_frames, train_set.n_coeffs],
            &train_set.features,
        );
        write_npy(&work.path().join("y.npy"), &[train_set.len()], &labels(&train_set));
        write_npy(&work.path().join("xv.npy"), &[val_set.len(), val_set.n_frames, val_set.n_coeffs], &val_set.features);
        write_npy(&work.path().join("yv.npy"), &[val_set.len()], &labels(&val_set));
        let output = Command::new(&python)
            .args(["-c", KERAS])
            .arg(&peer)
            .arg(work.path())
            .arg(epochs.to_string())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        Some(v["seconds_per_epoch"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
    } else {
        eprintln!("SKIPPED reference: {} has no tensorflow; see ../shared/peer/README.md", python.display());
        None
    };
    // The first epoch of each includes warm-up (graph tracing in Keras); medians over the rest
    // when there are at least three.
    let steady = |v: &[f64]| if v.len() >= 3 { median(v[1..].to_vec()) } else { median(v.to_vec()) };
    let ser_median = steady(&ser_epochs);
    let keras_median = keras_epochs.as_ref().map(|v| steady(v));
    let result = serde_json::json!({
        "bench": "epoch",
        "train_clips": train_set.len(),
        "val_clips": val_set.len(),
        "batch_size": config.batch_size,
        "ser_seconds_per_epoch": ser_epochs,
        "ser_seconds_per_epoch_median": (ser_median * 1000.0).round() / 1000.0,
        "keras_seconds_per_epoch": keras_epochs,
        "keras_seconds_per_epoch_median": keras_median.map(|k| (k * 1000.0).round() / 1000.0),
        "speedup": keras_median.map(|k| (k / ser_median * 100.0).round() / 100.0),
        "ser_candle_engine_seconds_per_epoch": candle_seconds,
        "fused_over_candle_engine": (!candle_seconds.is_empty())
            .then(|| (median(candle_seconds.clone()) / median(ser_epochs.clone()) * 100.0).round() / 100.0),
        "forward_1clip_ms_median": (median(forward_ms) * 1000.0).round() / 1000.0,
        "candle_num_threads": std::env::var(ser_model::CANDLE_THREADS_VAR).ok(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    println!("{result}");
    let dir = root.join("artifacts/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("epoch.json"), format!("{result}\n")).unwrap();
}
