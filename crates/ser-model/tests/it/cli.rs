//! `ser-model train` and `predict` on a tiny generated corpus, through the real binaries.

use std::path::Path;
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin).args(args).env_remove("RUST_LOG").output().unwrap();
    assert!(out.status.success(), "{bin} {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// ser-features is built by cargo for its own tests; find it beside ours.
fn ser_features_bin() -> String {
    let ours = Path::new(env!("CARGO_BIN_EXE_ser-model"));
    let sibling = ours.with_file_name("ser-features");
    if !sibling.exists() {
        let dir = ours.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let profile = if dir == "debug" { "dev" } else { dir };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "ser-features", "--bin", "ser-features", "--profile", profile])
            .status()
            .unwrap();
        assert!(status.success());
    }
    sibling.to_str().unwrap().to_string()
}

/// `clip_id` and the `p_<label>` columns of a predictions file.
fn read_probabilities(path: &Path) -> (Vec<String>, Vec<Vec<f32>>) {
    use arrow::array::{Float32Array, StringArray};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let (mut ids, mut rows) = (Vec::new(), Vec::new());
    for batch in reader {
        let batch = batch.unwrap();
        let schema = batch.schema();
        let id = batch.column_by_name("clip_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let probs: Vec<&Float32Array> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name().starts_with("p_"))
            .map(|(i, _)| batch.column(i).as_any().downcast_ref::<Float32Array>().unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            ids.push(id.value(r).to_string());
            rows.push(probs.iter().map(|c| c.value(r)).collect());
        }
    }
    (ids, rows)
}

#[test]
fn train_then_predict_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let features_bin = ser_features_bin();
    run(&features_bin, &["synth", "--out", &d("raw"), "--speakers", "3", "--seed", "1"]);
    std::fs::write(
        d("features.yaml"),
        "sample_rate: 16000\nn_fft: 1024\nhop_length: 512\nn_mels: 40\nfmin: 0.0\nfmax: null\ntop_db: 80.0\n\
kind: mfcc\nn_mfcc: 13\ndeltas: false\nframes: 64\npad: silence\nmax_duration_s: 60.0\n",
    )
    .unwrap();
    run(&features_bin, &["extract", "--config", &d("features.yaml"), "--in", &d("raw"), "--out", &d("f.parquet")]);
    std::fs::write(d("split.yaml"), "kind: speaker\ntest_speakers: ['03']\nval_speakers: ['02']\n").unwrap();
    run(
        &features_bin,
        &["split", "--config", &d("split.yaml"), "--features", &d("f.parquet"), "--out", &d("s.parquet")],
    );
    let mut config = crate::small_config(1);
    config.max_epochs = 2;
    std::fs::write(d("model.yaml"), config.to_yaml()).unwrap();
    let model = env!("CARGO_BIN_EXE_ser-model");
    let train = |out: &str, extra: &[&str]| {
        let (config, features, splits, out) = (d("model.yaml"), d("f.parquet"), d("s.parquet"), d(out));
        let mut args = vec!["train", "--config", &config, "--features", &features, "--splits", &splits, "--out", &out];
        args.extend(extra);
        run(model, &args)
    };
    assert_eq!(train("ckpt", &[])["epochs_run"], 2);
    // The candle engine (the GPU path) from the command line, on this CPU.
    assert_eq!(train("ckpt-candle", &["--engine", "candle"])["epochs_run"], 2);
    assert!(Path::new(&d("ckpt-candle/model.json")).exists());
    let predicted = run(
        model,
        &[
            "predict",
            "--checkpoint",
            &d("ckpt"),
            "--features",
            &d("f.parquet"),
            "--splits",
            &d("s.parquet"),
            "--part",
            "test",
            "--out",
            &d("p.parquet"),
        ],
    );
    assert_eq!(predicted["clips"], 60);
    assert!(Path::new(&d("p.parquet")).exists());

    // The ONNX export, run by tract on the test part's raw features, gives predict's probabilities.
    let exported = run(model, &["export", "--checkpoint", &d("ckpt"), "--out", &d("onnx/model.onnx")]);
    assert_eq!(exported["opset"], ser_model::onnx::OPSET);
    let test = ser_model::io::load_split(Path::new(&d("f.parquet")), Path::new(&d("s.parquet")), 0).unwrap().test;
    let onnx = std::fs::read(d("onnx/model.onnx")).unwrap();
    let n = test.clip_ids.len();
    let from_onnx = crate::onnx::tract_probabilities(&onnx, &test.features, n, test.n_frames, test.n_coeffs);
    let (clip_ids, from_predict) = read_probabilities(Path::new(&d("p.parquet")));
    assert_eq!(clip_ids, test.clip_ids);
    let worst =
        from_onnx.iter().flatten().zip(from_predict.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "ONNX and ser-model predict differ by up to {worst}");

    // Unknown keys in model.yaml are named.
    std::fs::write(d("bad.yaml"), format!("{}dropuot: 0.1\n", config.to_yaml())).unwrap();
    let out = Command::new(model)
        .args([
            "train",
            "--config",
            &d("bad.yaml"),
            "--features",
            &d("f.parquet"),
            "--splits",
            &d("s.parquet"),
            "--out",
            &d("x"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `dropuot`"));
}
