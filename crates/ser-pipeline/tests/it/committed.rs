//! The committed pipelines: each resolves, its search draws valid trials, and a deployment model
//! stands on folds of its own features.

use std::path::{Path, PathBuf};

use ser_pipeline::Stage;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines")
}

#[test]
fn every_committed_pipeline_resolves_and_plans() {
    let root = root();
    let names = ser_pipeline::io::pipeline_names(&root).unwrap();
    assert!(names.len() >= 4, "found {names:?} in {}", root.display());
    for name in &names {
        let all = ser_pipeline::plan::load_closure(&root, name).unwrap_or_else(|e| panic!("{e}"));
        let pipeline = &all[name];
        let plan = ser_pipeline::plan::plan(name, &all);
        assert!(plan.contains(&format!("PLAN_EVAL := $(ARTIFACTS)/{name}/eval/metrics.json")), "{name}");
        let text = |stage| &pipeline.sections[&stage];
        let model = ser_model::config::ModelConfig::from_yaml(text(Stage::Model)).unwrap();
        match pipeline.cross_validation() {
            Some(cv) => {
                // Every clip trains: nothing validates, so nothing to search; and the figure it
                // cites was measured on its cross-validation's features, the same ones.
                assert!(!pipeline.has(Stage::Tune), "{name}: a search needs a validation part");
                let features = |p: &ser_pipeline::Pipeline| {
                    ser_features::FeaturesConfig::from_yaml(&p.sections[&Stage::Features]).unwrap()
                };
                assert_eq!(features(pipeline), features(&all[cv]), "{name}: features differ from {cv}'s");
                assert_eq!(model.early_stopping_on, ser_model::config::StoppingPart::None, "{name}");
            }
            None => {
                if let Some(tune) = pipeline.sections.get(&Stage::Tune) {
                    let tune = ser_tune::space::TuneConfig::from_yaml(Path::new(name), tune).unwrap();
                    tune.trial_config(&model, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
        }
    }
}

/// No committed pipeline restates a default: eval and infer sections, absent, take the stages'.
#[test]
fn no_committed_pipeline_restates_the_stages_defaults() {
    let root = root();
    for name in ser_pipeline::io::pipeline_names(&root).unwrap() {
        let pipeline = ser_pipeline::load(&root, &name).unwrap();
        if let Some(eval) = pipeline.sections.get(&Stage::Eval) {
            let eval = ser_eval::config::EvalConfig::from_yaml(Path::new(&name), eval).unwrap();
            assert_ne!(eval, ser_eval::config::EvalConfig::defaults(), "{name}: drop its eval section");
        }
    }
}
