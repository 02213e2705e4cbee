//! The checkpoint directory: loads back to the same predictions, is readable by Python, and
//! refuses what does not fit.

use std::process::Command;

use candle_core::Device;
use ser_model::checkpoint::ModelJson;
use ser_model::io::{read_checkpoint, write_predictions};
use ser_model::predict::predict;

use crate::training::run;
use crate::{small_config, toy_dataset};

#[test]
fn saved_checkpoint_predicts_like_the_trained_network() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(&small_config(8), Some(dir.path()), false);
    let checkpoint = read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(checkpoint.model.weights, outcome.model.weights, "the best epoch's weights, saved exactly");
    let data = toy_dataset(20, 500);
    let loaded = predict(&checkpoint, &data).unwrap();
    let mut normalised = data.clone();
    checkpoint.meta.normalization.apply(&mut normalised.features);
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

    run(&small_config(9), Some(dir.path()), false);
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
    run(&small_config(10), Some(dir.path()), false);
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
