//! Resolving a pipeline: what a derived file changes, and what a bad one is told.

use ser_pipeline::Stage;
use yaml_serde::Value;

use crate::{BASE, load_err, pipelines, section};

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap()
}

#[test]
fn a_derived_pipeline_changes_only_the_keys_it_gives() {
    let dir = pipelines(&[
        ("base", BASE),
        ("child", "extends: base\nmodel: {max_epochs: 9, augment: {time_masks: 1, time_mask_width: 5}}\n"),
        ("grandchild", "extends: child\nmodel: {patience: 7}\nfeatures: {fmax: 8000.0}\n"),
    ]);
    let model = section(dir.path(), "grandchild", Stage::Model);
    assert_eq!(model["max_epochs"], yaml("9"), "from the child");
    assert_eq!(model["patience"], yaml("7"), "its own");
    assert_eq!(model["conv1_filters"], yaml("8"), "from the base");
    // Mappings merge key by key: the base's time_shift stays beside the child's masks.
    assert_eq!(model["augment"], yaml("{time_shift: 4, time_masks: 1, time_mask_width: 5}"));
    // A key keeps its place in the base's order.
    let keys: Vec<&str> = model.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(&keys[..3], ["conv1_filters", "conv1_kernel", "conv2_filters"]);
    assert_eq!(section(dir.path(), "grandchild", Stage::Features)["fmax"], yaml("8000.0"));
    let pipeline = ser_pipeline::load(dir.path(), "grandchild").unwrap();
    let names: Vec<String> =
        pipeline.files.iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["base", "child", "grandchild"], "its files, the furthest base first");
}

#[test]
fn null_removes_a_key_and_replace_swaps_a_whole_value() {
    let dir = pipelines(&[
        ("base", &format!("{BASE}ensemble: {{seeds: [1, 2]}}\n")),
        ("one", "extends: base\nensemble: null\nmodel: {augment: null}\n"),
        ("deploy", "extends: base\nsplit: !replace {kind: all, cross_validation: base}\n"),
        ("lists", "extends: base\nensemble: {seeds: [3, 4, 5]}\n"),
    ]);
    let one = ser_pipeline::load(dir.path(), "one").unwrap();
    assert!(!one.has(Stage::Ensemble) && one.ensemble.is_none(), "the base's ensemble is gone");
    assert!(section(dir.path(), "one", Stage::Model).get("augment").is_none());
    // Merged, the base's folds would stay beside `kind: all`; replaced, they are gone.
    assert_eq!(section(dir.path(), "deploy", Stage::Split), yaml("{kind: all, cross_validation: base}"));
    assert_eq!(ser_pipeline::load(dir.path(), "deploy").unwrap().cross_validation(), Some("base"));
    // A list is one value: replaced whole, not merged item by item.
    assert_eq!(ser_pipeline::load(dir.path(), "lists").unwrap().ensemble.unwrap().seeds, [3, 4, 5]);
}

#[test]
fn a_bad_pipeline_is_told_what_and_where() {
    let base = ("base", BASE);
    let err = load_err(&[base, ("x", "extends: base\nmodle: {max_epochs: 2}\n")], "x");
    assert!(err.contains("x.yaml") && err.contains("unknown key `modle`") && err.contains("model"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\nmodel: {max_epochs: 0}\n")], "x");
    assert!(
        err.contains("x.yaml") && err.contains("model: max_epochs: must be positive") && err.contains("base.yaml"),
        "{err}"
    );
    let err = load_err(&[base, ("x", "extends: base\nfeatures: {n_mfcc: 400}\n")], "x");
    assert!(err.contains("features: n_mfcc: 400"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\nsplit: {kind: all, cross_validation: base}\n")], "x");
    assert!(err.contains("split:") && err.contains("unknown field"), "merged into the folds' keys: {err}");
    let err = load_err(&[base, ("x", "extends: nowhere\n")], "x");
    assert!(err.contains("nowhere.yaml") && err.contains("no such pipeline") && err.contains("base, x"), "{err}");
    let err = load_err(&[("a", "extends: b\n"), ("b", "extends: a\n")], "a");
    assert!(err.contains("a circle of pipelines: a -> b -> a"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\ndata: [ravdess, ravdess]\n")], "x");
    assert!(err.contains("data: `ravdess` is listed twice"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\ndata: [savee2]\n")], "x");
    assert!(err.contains("`savee2` is not a corpus"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\ndata: [demo, nemo]\n")], "x");
    assert!(err.contains("demo corpus cannot be joined"), "{err}");
    let err = load_err(&[("x", "features: {}\n")], "x");
    assert!(err.contains("data: missing"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\nmodel: null\n")], "x");
    assert!(err.contains("model: missing"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\nensemble: {seeds: [1], pipelines: [x]}\n")], "x");
    assert!(err.contains("is this pipeline itself"), "{err}");
    let err = load_err(
        &[base, ("x", "extends: base\ntune: {seed: 1, trials: 0, objective: val_uar, fixed: {}, space: {}}\n")],
        "x",
    );
    assert!(err.contains("tune: trials must be at least 1"), "{err}");
    let err = load_err(&[base, ("x", "extends: base\neval: {confidence: 2}\n")], "x");
    assert!(err.contains("eval: confidence must be in (0, 1)"), "{err}");
    let err = load_err(&[base, ("../x", "extends: base\n")], "../x");
    assert!(err.contains("not a pipeline name"), "{err}");
}

#[test]
fn an_ensemble_takes_only_members_trained_on_its_clips() {
    let closure = |files: &[(&str, &str)], name: &str| {
        let dir = pipelines(files);
        ser_pipeline::plan::load_closure(dir.path(), name).map(|all| all.len()).map_err(|e| e.to_string())
    };
    let base = ("base", BASE);
    let ens = ("ens", "extends: base\nensemble: {seeds: [1], pipelines: [member]}\n");
    assert_eq!(closure(&[base, ens, ("member", "extends: base\nmodel: {dropout_conv: 0.2}\n")], "ens"), Ok(2));
    let err = closure(&[base, ens, ("member", "extends: base\nsplit: {seed: 2}\n")], "ens").unwrap_err();
    assert!(err.contains("ens.yaml") && err.contains("member: it splits its clips otherwise"), "{err}");
    let err = closure(&[base, ens, ("member", "extends: base\ndata: [ravdess]\n")], "ens").unwrap_err();
    assert!(err.contains("member: it reads other data (ravdess) than this pipeline (demo)"), "{err}");
    let err = closure(&[base, ens, ("member", "extends: base\nensemble: {seeds: [1, 2]}\n")], "ens").unwrap_err();
    assert!(err.contains("member is an ensemble itself"), "{err}");
    // A deployment model's members: every clip trains, whichever folds each stands on.
    let deploy = (
        "deploy",
        "extends: base\nsplit: !replace {kind: all, cross_validation: base}\nensemble: {seeds: [1], pipelines: [deploy-b]}\n",
    );
    let deploy_b = ("deploy-b", "extends: base\nsplit: !replace {kind: all, cross_validation: base}\n");
    assert_eq!(closure(&[base, deploy, deploy_b], "deploy"), Ok(3), "deploy, deploy-b and the folds of base");
}

#[test]
fn the_plan_trains_each_run_once_and_slurm_in_one_array() {
    let dir = pipelines(&[
        ("base", BASE),
        ("ens", "extends: base\nensemble: {seeds: [1, 2], pipelines: [member]}\n"),
        ("member", "extends: base\nmodel: {dropout_conv: 0.2}\n"),
    ]);
    let all = ser_pipeline::plan::load_closure(dir.path(), "ens").unwrap();
    let plan = ser_pipeline::plan::plan("ens", &all);
    let (slurm, local) =
        plan.split_once("# ---- trainings\nifeq ($(SCHEDULER),slurm)\n").unwrap().1.split_once("\nelse\n").unwrap();
    // Four folds: two seeds of ens and member's model each, 12 trainings; the joins are not trainings.
    assert_eq!(local.matches("ser-model train").count(), 12, "{local}");
    assert_eq!(slurm.matches("scripts/slurm-array --name train-ens --shards 12").count(), 1, "{slurm}");
    for fold in 0..4 {
        let join = format!(
            "ser-model ensemble --config $(ARTIFACTS)/ens/pipeline/ensemble.yaml --out $(ARTIFACTS)/ens/folds/{fold}/model \
             $(ARTIFACTS)/ens/folds/{fold}/members/seed-1 $(ARTIFACTS)/ens/folds/{fold}/members/seed-2 $(ARTIFACTS)/member/folds/{fold}/model"
        );
        assert!(plan.contains(&join), "fold {fold}: {plan}");
    }
    assert!(plan.contains(
        "$(ARTIFACTS)/ens/pipeline/plan.mk: $(PIPELINES)/base.yaml $(PIPELINES)/ens.yaml $(PIPELINES)/member.yaml"
    ));
    assert!(plan.contains("PLAN_TRAIN := $(ARTIFACTS)/ens/folds/0/model/model.json"), "{plan}");
}
