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
