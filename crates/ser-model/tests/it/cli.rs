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
