//! The shipped model: the committed files are the ones its card describes, the binary holds the
//! same weights, and every command uses it when no checkpoint is named.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use ser_infer::{Classifier, shipped};

use crate::{clip, wav_bytes};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(shipped::DIR)
}

/// The SHA-256 the card's table gives for `file` (its row: `file` | bytes | hash).
fn card_sha256(file: &str) -> String {
    let card = std::fs::read_to_string(model_dir().join("MODEL_CARD.md")).unwrap();
    let row =
        card.lines().find(|l| l.starts_with(&format!("| `{file}` |"))).unwrap_or_else(|| panic!("no row for {file}"));
    let hash = row.split('|').map(str::trim).find(|c| c.len() == 64 && c.chars().all(|c| c.is_ascii_hexdigit()));
    hash.unwrap_or_else(|| panic!("no SHA-256 in {row}")).to_string()
}

#[test]
fn the_committed_files_are_the_ones_the_card_describes_and_the_ones_built_in() {
    for file in ["model.json", "model.safetensors"] {
        let sha = ser_model::io::sha256_file(&model_dir().join(file)).unwrap();
        assert_eq!(
            sha,
            card_sha256(file),
            "{file} differs from MODEL_CARD.md: run `make model`, then measure the card again"
        );
    }
    let bytes = std::fs::metadata(model_dir().join("model.safetensors")).unwrap().len();
    assert!(bytes <= 10 << 20, "the shipped model is {bytes} bytes; it must stay within 10 MB");
    let built_in = Classifier::shipped(&Device::Cpu).unwrap();
    assert_eq!(built_in.weights_sha256(), card_sha256("model.safetensors"));
    assert_eq!(built_in.dir(), Path::new(shipped::DIR));
    assert!(model_dir().join("LICENSE").is_file(), "the weights' licence is stated beside them");
}

#[test]
fn without_a_checkpoint_every_command_answers_with_the_shipped_model() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("clip.wav");
    let long: Vec<f32> = [clip(2, 5, 1), clip(2, 3, 2), clip(2, 8, 1)].concat();
    std::fs::write(&wav, wav_bytes(&long)).unwrap();
    let wav = wav.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ser-infer")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let dir_arg = model_dir();
    let checkpoint = dir_arg.to_str().unwrap();
    for command in [&["predict", "--format", "jsonl"][..], &["timeline", "--format", "jsonl"]] {
        let default = run(&[command, &[wav]].concat());
        let named = run(&[command, &["--checkpoint", checkpoint, wav]].concat());
        assert_eq!(default, named, "{command:?}");
        assert!(default.contains("\"label\""), "{default}");
    }
    let stream = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ser-infer"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &wav_bytes(&long)).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(stream(&["stream"]), stream(&["stream", "--checkpoint", checkpoint]));
}
