//! The checkpoint directory: loads back to the same predictions, is readable by Python, and
//! refuses what does not fit.

use std::process::Command;

use candle_core::Device;
use ser_model::checkpoint::{EnsembleJson, ModelJson};
use ser_model::io::{read_checkpoint, write_ensemble, write_predictions};
use ser_model::predict::predict;
use ser_model::train::Resume;

use crate::training::run;
use crate::{small_config, toy_dataset};

#[test]
fn saved_checkpoint_predicts_like_the_trained_network() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(&small_config(8), Some(dir.path()), Resume::Never);
    let checkpoint = read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(checkpoint.members[0].model.weights, outcome.model.weights, "the best epoch's weights, saved exactly");
    let data = toy_dataset(20, 500);
    let loaded = predict(&checkpoint, &data).unwrap();
    let mut normalised = data.clone();
    checkpoint.members[0].meta.normalization.apply(&mut normalised.features);
    let direct = outcome.model.probabilities(&normalised.features, normalised.len()).unwrap();
    assert_eq!(loaded.probabilities, direct);
    for p in &loaded.probabilities {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let meta: ModelJson =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.json")).unwrap()).unwrap();
    assert_eq!(meta.labels.len(), 8);
    assert_eq!(meta.best_epoch, outcome.best_epoch);
    assert_eq!(meta.normalization.mean.len(), 6);
    let history = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 1 + outcome.epochs_run);
}

#[test]
fn missing_or_foreign_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_checkpoint(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("no model.json") && err.contains("has not finished"), "{err}");

    run(&small_config(9), Some(dir.path()), Resume::Never);
    let sidecar = dir.path().join("model.json");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::write(&sidecar, text.replace("\"format_version\": 1", "\"format_version\": 99")).unwrap();
    let err = read_checkpoint(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("format_version Some(99) is not supported"), "{err}");
    std::fs::write(&sidecar, &text).unwrap();

    let table_config = ser_features::FeaturesConfig { n_mfcc: 7, ..ser_features::FeaturesConfig::reference() };
    let checkpoint = read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    let err = checkpoint.check_features(std::path::Path::new("other.parquet"), &table_config).unwrap_err().to_string();
    assert!(err.contains("other.parquet: feature config hash") && err.contains("re-extract"), "{err}");
}

/// Trains a small checkpoint into `dir`; `shift` moves its recorded normalisation's means, so
/// that members standardise the same clip differently.
fn member(dir: &std::path::Path, seed: u64, shift: f32) {
    run(&small_config(seed), Some(dir), Resume::Never);
    let sidecar = dir.join("model.json");
    let mut meta: ModelJson = serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    meta.normalization.mean.iter_mut().for_each(|m| *m += shift);
    std::fs::write(&sidecar, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
}

#[test]
fn an_ensemble_answers_with_the_mean_of_its_members() {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| root.path().join(format!("m{i}"))).collect();
    for (i, dir) in dirs.iter().enumerate() {
        member(dir, 20 + i as u64, i as f32 * 0.7);
    }
    let data = toy_dataset(12, 300);
    let alone: Vec<Vec<Vec<f32>>> = dirs
        .iter()
        .map(|d| predict(&read_checkpoint(d, &Device::Cpu).unwrap(), &data).unwrap().probabilities)
        .collect();
    assert_ne!(alone[0], alone[1], "the members differ");

    // Two members, then that ensemble joined with the third: its members join as they are.
    let pair = root.path().join("pair");
    write_ensemble(&dirs[..2], &pair, None).unwrap();
    let trio = root.path().join("trio");
    let written = write_ensemble(&[pair.clone(), dirs[2].clone()], &trio, None).unwrap();
    assert_eq!(written.members.iter().map(|m| m.model.seed).collect::<Vec<_>>(), [20, 21, 22]);
    assert_eq!(written.members[0].source, dirs[0].display().to_string(), "the first member's own source");
    let checkpoint = read_checkpoint(&trio, &Device::Cpu).unwrap();
    assert_eq!(checkpoint.members.len(), 3);
    assert!(checkpoint.protocol().starts_with("the mean of 3 members' probabilities (seeds 20, 21, 22)"));
    let got = predict(&checkpoint, &data).unwrap();
    assert_eq!(got.labels, checkpoint.labels());
    for (row, p) in got.probabilities.iter().enumerate() {
        for (class, v) in p.iter().enumerate() {
            let mean = alone.iter().map(|a| a[row][class]).sum::<f32>() / 3.0;
            assert!((v - mean).abs() < 1e-6, "clip {row} class {class}: {v} vs the members' mean {mean}");
        }
    }
    // The sidecar: the shared fields where a plain checkpoint has them, each member's own.
    let meta: EnsembleJson = serde_json::from_str(&std::fs::read_to_string(trio.join("model.json")).unwrap()).unwrap();
    assert_eq!(meta.labels.len(), 8);
    assert_ne!(meta.members[0].model.normalization, meta.members[2].model.normalization);
    let bytes = std::fs::read(trio.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(tensors.names().iter().any(|n| n.starts_with("member2.")));
}

#[test]
fn an_ensemble_refuses_members_that_do_not_fit() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    member(&a, 30, 0.0);
    member(&b, 31, 0.0);
    let sidecar = b.join("model.json");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::write(&sidecar, text.replacen("\"angry\"", "\"irate\"", 1)).unwrap();
    let err = write_ensemble(&[a.clone(), b.clone()], &root.path().join("e"), None).unwrap_err().to_string();
    assert!(err.contains(&b.display().to_string()) && err.contains("labels"), "{err}");
    assert!(!root.path().join("e/model.json").exists(), "nothing written");

    let config = ser_model::config::EnsembleConfig { seeds: vec![30, 32], pipelines: Vec::new() };
    let err = write_ensemble(&[a.clone(), root.path().join("b")], &root.path().join("e"), Some(&config));
    assert!(err.is_err(), "b's labels still differ");
    std::fs::write(&sidecar, &text).unwrap();
    let err = write_ensemble(&[a.clone(), b.clone()], &root.path().join("e"), Some(&config)).unwrap_err().to_string();
    assert!(err.contains("[30, 32]") && err.contains("[30, 31]"), "{err}");
    assert!(!root.path().join("e/model.json").exists(), "nothing written");
    write_ensemble(&[a.clone(), b.clone()], &root.path().join("e"), None).unwrap();

    // A member of another fold, or of a split drawn otherwise, may have trained on the ensemble's
    // test speakers: refused, naming the member and both folds and splits.
    let sidecar_b = b.join("model.json");
    let meta_b: ModelJson = serde_json::from_str(&std::fs::read_to_string(&sidecar_b).unwrap()).unwrap();
    let with_data = |data: ser_model::checkpoint::DataProvenance| {
        let meta = ModelJson { data, ..meta_b.clone() };
        std::fs::write(&sidecar_b, serde_json::to_string(&meta).unwrap()).unwrap();
        write_ensemble(&[a.clone(), b.clone()], &root.path().join("e2"), None).map_err(|e| e.to_string())
    };
    let err = with_data(ser_model::checkpoint::DataProvenance { fold: 1, ..meta_b.data.clone() }).unwrap_err();
    assert!(err.contains(&b.display().to_string()) && err.contains("fold 1") && err.contains("fold 0"), "{err}");
    let other = ser_features::SplitConfig::SpeakerKfold { k: 4, val_speakers: 1, seed: 2 }.to_json();
    let err =
        with_data(ser_model::checkpoint::DataProvenance { split_config: other, ..meta_b.data.clone() }).unwrap_err();
    assert!(err.contains("\"seed\":2") && err.contains("same clips"), "{err}");
    assert!(!root.path().join("e2/model.json").exists(), "nothing written");
    // A deployment model's split names the pipeline it stands on; that moves no clip.
    let all = |cv: &str| ser_features::SplitConfig::All { cross_validation: cv.into() }.to_json();
    let sidecar_a = a.join("model.json");
    let meta_a: ModelJson = serde_json::from_str(&std::fs::read_to_string(&sidecar_a).unwrap()).unwrap();
    let deploy_a = ModelJson {
        data: ser_model::checkpoint::DataProvenance { split_config: all("x"), ..meta_a.data.clone() },
        ..meta_a.clone()
    };
    std::fs::write(&sidecar_a, serde_json::to_string(&deploy_a).unwrap()).unwrap();
    with_data(ser_model::checkpoint::DataProvenance { split_config: all("x-room"), ..meta_b.data.clone() }).unwrap();
    std::fs::write(&sidecar_a, serde_json::to_string(&meta_a).unwrap()).unwrap();
    std::fs::write(&sidecar_b, serde_json::to_string(&meta_b).unwrap()).unwrap();

    let err = write_ensemble(std::slice::from_ref(&a), &a, None).unwrap_err().to_string();
    assert!(err.contains("would overwrite its member"), "{err}");
    assert!(read_checkpoint(&a, &Device::Cpu).is_ok(), "the member is intact");

    // A sidecar whose feature config no longer hashes as recorded: an older build's.
    let sidecar = a.join("model.json");
    let mut meta: ModelJson = serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    meta.features_config_hash = "0".repeat(64);
    std::fs::write(&sidecar, serde_json::to_string(&meta).unwrap()).unwrap();
    let err = read_checkpoint(&a, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("model.json") && err.contains("older build") && err.contains("train"), "{err}");
}

#[test]
fn python_loads_weights_and_predictions() {
    let python = std::env::var("SER_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&python)
        .args(["-c", "import safetensors, pyarrow, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var_os("SER_REQUIRE_PYTHON").is_none(),
            "SER_REQUIRE_PYTHON is set but {python} lacks safetensors/pyarrow/numpy"
        );
        eprintln!("SKIPPED: {python} lacks safetensors/pyarrow/numpy; pip install them to run this interop test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run(&small_config(10), Some(dir.path()), Resume::Never);
    let checkpoint = read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    let preds = predict(&checkpoint, &toy_dataset(5, 0)).unwrap();
    let pred_path = dir.path().join("predictions.parquet");
    write_predictions(&pred_path, &preds, &[("ser.part", "test".into())]).unwrap();
    let script = r#"
import json, sys
from safetensors.numpy import load_file
import pyarrow.parquet as pq
w = load_file(sys.argv[1] + "/model.safetensors")
t = pq.read_table(sys.argv[2])
print(json.dumps({"conv1": list(w["conv1.weight"].shape), "lstm": list(w["lstm1.weight_ih_l0_reverse"].shape),
                  "columns": t.column_names, "rows": t.num_rows}))
"#;
    let out = Command::new(&python).args(["-c", script]).arg(dir.path()).arg(&pred_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["conv1"], serde_json::json!([4, 6, 3]));
    assert_eq!(got["lstm"], serde_json::json!([20, 6]));
    assert_eq!(got["rows"], 5);
    let columns = got["columns"].as_array().unwrap();
    assert_eq!(columns[0], "clip_id");
    assert_eq!(columns[1], "label");
    assert_eq!(columns[2], "predicted");
    assert!(columns.contains(&serde_json::json!("p_surprised")));
}
