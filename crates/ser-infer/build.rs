//! Finds the shipped model for `src/shipped.rs`: the one folder under the workspace's `models/`
//! that holds a `model.json`. Its name is written nowhere else: the Makefile finds it the same
//! way.

use std::path::Path;

fn main() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    println!("cargo::rerun-if-changed={}", models.display());
    let mut found: Vec<String> = std::fs::read_dir(&models)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("model.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    found.sort();
    let dir = match found.as_slice() {
        [one] => format!("models/{one}"),
        _ if std::env::var_os("CARGO_FEATURE_SHIPPED_MODEL").is_none() => "models/(none)".to_string(),
        [] => panic!(
            "{}: no folder with a model.json; build with --no-default-features for no shipped model",
            models.display()
        ),
        many => panic!("{}: one shipped model expected, found {}", models.display(), many.join(", ")),
    };
    println!("cargo::rustc-env=SER_SHIPPED_MODEL_DIR={dir}");
}
