//! The search space: parsing, validation, and draws that depend on (seed, trial) only.

use std::path::Path;

use ser_model::config::ModelConfig;
use ser_tune::TuneConfig;

const SPACE: &str = "seed: 7\ntrials: 50\nobjective: val_macro_f1\ntime_budget_s: null\nfixed:\n  max_epochs: 3\n\
space:\n  conv1_filters: [16, 32, 64]\n  dropout_conv: {uniform: [0.1, 0.5]}\n  learning_rate: {log_uniform: [0.0001, 0.01]}\n  dense_units: {int: [32, 64]}\n";

fn parse(text: &str) -> Result<TuneConfig, String> {
    TuneConfig::from_yaml(Path::new("tune.yaml"), text).map_err(|e| e.to_string())
}

#[test]
fn draws_depend_on_seed_and_trial_only() {
    let config = parse(SPACE).unwrap();
    assert_eq!(config.draw(3), config.draw(3));
    assert_ne!(config.draw(3), config.draw(4));
    let other_seed = TuneConfig { seed: 8, ..config.clone() };
    assert_ne!(config.draw(3), other_seed.draw(3));
    // More trials do not change the early ones (a search can be extended).
    let longer = TuneConfig { trials: 500, ..config.clone() };
    assert_eq!(config.draw(10), longer.draw(10));
    for trial in 0..50 {
        let (model, drawn) = config.trial_config(&ModelConfig::reference(), trial).unwrap();
        assert_eq!(model.max_epochs, 3, "fixed keys apply");
        assert!([16, 32, 64].contains(&model.conv1_filters));
        assert!((0.1..=0.5).contains(&model.dropout_conv));
        assert!((1e-4..=1e-2).contains(&model.learning_rate));
        assert!((32..=64).contains(&model.dense_units));
        assert_eq!(drawn.len(), 4);
    }
    let rates: Vec<f64> =
        (0..50).map(|t| config.trial_config(&ModelConfig::reference(), t).unwrap().0.learning_rate).collect();
    assert!(rates.iter().filter(|&&r| r < 1e-3).count() > 10, "log-uniform puts about half below the geometric mean");
}

#[track_caller]
fn check_error(text: &str, needle: &str) {
    let err = parse(text).unwrap_err();
    assert!(err.contains("tune.yaml") && err.contains(needle), "`{needle}` not in: {err}");
}

#[test]
fn bad_spaces_are_clear_errors() {
    check_error(&SPACE.replace("conv1_filters", "conv_filters"), "`conv_filters` is not a model.yaml key");
    check_error(&SPACE.replace("max_epochs", "epochs"), "`epochs` is not a model.yaml key");
    check_error(&SPACE.replace("[0.1, 0.5]", "[0.5, 0.1]"), "space.dropout_conv: uniform [0.5, 0.1]");
    check_error(&SPACE.replace("[0.0001, 0.01]", "[0, 0.01]"), "log_uniform");
    check_error(&SPACE.replace("trials: 50", "trials: 50\ncolour: red"), "colour");
    check_error(&SPACE.replace("trials: 50", "trials: 0"), "trials must be at least 1");
    check_error(&SPACE.replace("[16, 32, 64]", "[]"), "empty list");
    check_error(&format!("{SPACE}pruning: {{rule: median, warmup_epochs: 0, min_trials: 3}}\n"), "warmup_epochs");
    check_error(&format!("{SPACE}pruning: {{rule: mean, warmup_epochs: 2, min_trials: 3}}\n"), "mean");
    // A drawn value of the wrong type fails when the trial's model.yaml is built.
    let config = parse(&SPACE.replace("[16, 32, 64]", "[big]")).unwrap();
    let err = config.trial_config(&ModelConfig::reference(), 0).unwrap_err().to_string();
    assert!(err.contains("trial 0") && err.contains("conv1_filters"), "{err}");
}

/// Every committed pipeline's params files parse: a typo in one fails here, not in a long run.
#[test]
fn every_pipeline_config_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let file = |name: &str| dir.join(name);
        let features = ser_features::read_features_config(&file("features.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let split = ser_features::read_split_config(&file("split.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let base = ser_model::io::read_model_config(&file("model.yaml")).unwrap_or_else(|e| panic!("{e}"));
        if let ser_features::SplitConfig::All { cross_validation } = &split {
            // A deployment pipeline trains every clip: nothing validates, so nothing to search.
            assert!(!file("tune.yaml").exists(), "{}: a search needs a validation part", dir.display());
            // The figure it cites was measured on its cross-validation's features: the same ones.
            let cv = ser_features::read_features_config(&root.join(cross_validation).join("features.yaml"))
                .unwrap_or_else(|e| panic!("{}: cross_validation {cross_validation}: {e}", dir.display()));
            assert_eq!(features, cv, "{}: features.yaml differs from {cross_validation}'s", dir.display());
        } else {
            let text = std::fs::read_to_string(file("tune.yaml")).unwrap();
            let tune =
                ser_tune::space::TuneConfig::from_yaml(&file("tune.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
            tune.trial_config(&base, 0).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        for name in ["eval.yaml", "infer.yaml"] {
            assert!(file(name).is_file(), "{} has no {name}", dir.display());
        }
        if file("ensemble.yaml").exists() {
            let config = ser_model::io::read_ensemble_config(&file("ensemble.yaml")).unwrap_or_else(|e| panic!("{e}"));
            // The Makefile reads the seeds from the one line `seeds: [a, b, ...]` and the other
            // pipelines from the one line `pipelines: [a, ...]`, each a flow list.
            let text = std::fs::read_to_string(file("ensemble.yaml")).unwrap();
            let flow_list = |key: &str| -> Option<Vec<String>> {
                let line = text.lines().find(|l| l.starts_with(key))?;
                let (inner, _) = line.split_once('[').and_then(|(_, rest)| rest.split_once(']')).expect("a flow list");
                Some(inner.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            };
            let seeds: Vec<u64> =
                flow_list("seeds:").expect("a `seeds:` line").iter().map(|s| s.parse().expect("a seed")).collect();
            assert_eq!(seeds, config.seeds, "{}: the Makefile's reading", dir.display());
            let names = flow_list("pipelines:").unwrap_or_default();
            assert_eq!(names, config.pipelines, "{}: the Makefile's reading", dir.display());
            // Each is a committed single-model pipeline that splits as this one does, so its fold
            // i is this fold i.
            for name in &config.pipelines {
                let other = root.join(name);
                assert!(!other.join("ensemble.yaml").exists(), "{}: {name} is an ensemble", dir.display());
                let theirs = ser_features::read_split_config(&other.join("split.yaml")).unwrap();
                // Every clip trains in a `kind: all` split, whichever cross-validation it cites.
                let every_clip = |s: &ser_features::SplitConfig| matches!(s, ser_features::SplitConfig::All { .. });
                let same = if every_clip(&split) { every_clip(&theirs) } else { theirs == split };
                assert!(same, "{}: {name} splits otherwise: {theirs:?}", dir.display());
            }
        }
        seen += 1;
    }
    assert!(seen >= 4, "found {seen} pipelines in {}", root.display());
}
