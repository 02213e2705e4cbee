//! The binary on a tiny generated corpus: finished trials survive `kill -9`, resume runs the
//! rest exactly once, shards and merge give the same trials as one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(bin: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin).args(args).env_remove("RUST_LOG").output().unwrap();
    assert!(out.status.success(), "{bin} {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// ser-features is built by cargo for its own tests; find it beside ours or build it.
fn ser_features_bin() -> String {
    let ours = Path::new(env!("CARGO_BIN_EXE_ser-tune"));
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

struct Corpus {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Corpus {
    fn path(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_string()
    }

    fn new(trials: u32) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let corpus = Corpus { _dir: dir, root };
        let d = |p: &str| corpus.path(p);
        let features = ser_features_bin();
        run(&features, &["synth", "--out", &d("raw"), "--speakers", "3", "--seed", "1"]);
        std::fs::write(
            d("features.yaml"),
            "sample_rate: 16000\nn_fft: 1024\nhop_length: 512\nn_mels: 40\nfmin: 0.0\nfmax: null\ntop_db: 80.0\n\
kind: mfcc\nn_mfcc: 13\ndeltas: false\nframes: 48\npad: silence\nmax_duration_s: 60.0\n",
        )
        .unwrap();
        run(&features, &["extract", "--config", &d("features.yaml"), "--in", &d("raw"), "--out", &d("f.parquet")]);
        std::fs::write(d("split.yaml"), "kind: speaker\ntest_speakers: ['03']\nval_speakers: ['02']\n").unwrap();
        run(
            &features,
            &["split", "--config", &d("split.yaml"), "--features", &d("f.parquet"), "--out", &d("s.parquet")],
        );
        let model = ser_model::config::ModelConfig {
            conv1_filters: 4,
            conv2_filters: 6,
            lstm1_units: 5,
            lstm2_units: 3,
            dense_units: 8,
            max_epochs: 3,
            seed: 3,
            ..ser_model::config::ModelConfig::reference()
        };
        std::fs::write(d("model.yaml"), model.to_yaml()).unwrap();
        std::fs::write(
            d("tune.yaml"),
            format!(
                "seed: 1\ntrials: {trials}\nobjective: val_accuracy\ntime_budget_s: null\nfixed: {{max_epochs: 2}}\nspace:\n  \
                 conv1_kernel: [3, 5]\n  dropout_dense: {{uniform: [0.1, 0.5]}}\n  learning_rate: {{log_uniform: [0.001, 0.01]}}\n  \
                 batch_size: [8, 16]\n"
            ),
        )
        .unwrap();
        corpus
    }

    fn args(&self, out: &str) -> Vec<String> {
        [
            "run",
            "--config",
            &self.path("tune.yaml"),
            "--base",
            &self.path("model.yaml"),
            "--features",
            &self.path("f.parquet"),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--splits".into(), self.path("s.parquet"), "--out".into(), self.path(out)])
        .collect()
    }
}

/// The trial files of a search directory. A search killed between writing a trial's temporary
/// file and renaming it leaves that hidden `.trial-*.tmp-<pid>` behind, which no reader takes
/// for a trial; it is not listed.
fn trial_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir.join("trials"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| !p.file_name().unwrap().to_str().unwrap().starts_with('.'))
                .map(|p| (p.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read_to_string(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// The trial records without their wall-clock seconds.
fn results(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    trial_files(dir)
        .into_iter()
        .map(|(name, text)| {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            (name, v)
        })
        .collect()
}

#[test]
fn sigkill_then_resume_loses_and_repeats_nothing() {
    let corpus = Corpus::new(6);
    let bin = env!("CARGO_BIN_EXE_ser-tune");
    let out = corpus.root.join("tune");
    let mut child =
        Command::new(bin).args(corpus.args("tune")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while trial_files(&out).keys().filter(|k| k.starts_with("trial-")).count() < 2 {
        assert!(started.elapsed() < Duration::from_secs(300), "no trial finished in 5 minutes");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the search ended before it could be killed: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = trial_files(&out);
    assert!(before.len() >= 2 && before.len() < 6, "killed mid-search: {:?}", before.keys());
    for (name, text) in &before {
        let record: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is torn: {e}"));
        assert_eq!(record["status"], "done");
    }

    let summary = run(bin, &corpus.args("tune").iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(summary["trials"], 6);
    let after = trial_files(&out);
    assert_eq!(
        after.keys().cloned().collect::<Vec<_>>(),
        (0..6).map(|i| format!("trial-{i:06}.json")).collect::<Vec<_>>()
    );
    for (name, text) in &before {
        assert_eq!(&after[name], text, "{name} kept its result");
    }
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    let ids: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4", "5"]);
    let best = std::fs::read_to_string(out.join("best.yaml")).unwrap();
    let best_config = ser_model::config::ModelConfig::from_yaml(&best).unwrap();
    assert_eq!(best_config.max_epochs, 2, "best.yaml is the trial's whole model.yaml, `fixed` keys included");
    // final.yaml: the base recipe (3 epochs) with the best trial's searched values.
    let final_config =
        ser_model::config::ModelConfig::from_yaml(&std::fs::read_to_string(out.join("final.yaml")).unwrap()).unwrap();
    assert_eq!(final_config.max_epochs, 3);
    assert_eq!(
        ser_model::config::ModelConfig { max_epochs: 2, ..final_config.clone() },
        best_config,
        "final.yaml differs from best.yaml only in the fixed keys"
    );

    // Shards (one with two jobs) and a merge give the same trials as the single run.
    let mut shard0 = corpus.args("shard0");
    shard0.extend(["--shard".into(), "0/2".into(), "--jobs".into(), "2".into()]);
    run(bin, &shard0.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let mut shard1 = corpus.args("shard1");
    shard1.extend(["--shard".into(), "1/2".into()]);
    run(bin, &shard1.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(trial_files(&corpus.root.join("shard0")).len(), 3);
    let merged = corpus.path("merged");
    let summary = run(bin, &["merge", "--out", &merged, &corpus.path("shard0"), &corpus.path("shard1")]);
    assert_eq!(summary["trials"], 6);
    let mut sharded = results(&corpus.root.join("shard0"));
    sharded.extend(results(&corpus.root.join("shard1")));
    assert_eq!(sharded, results(&out), "same seed, same data: the same trial results, sharded or not");
    assert_eq!(std::fs::read_to_string(corpus.root.join("merged/best.yaml")).unwrap(), best);

    // More trials extend the same search: only the new ones run.
    let tune_yaml = std::fs::read_to_string(corpus.path("tune.yaml")).unwrap();
    std::fs::write(corpus.path("tune.yaml"), tune_yaml.replace("trials: 6", "trials: 7")).unwrap();
    let summary = run(bin, &corpus.args("tune").iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(summary["trials"], 7);
    for (name, text) in &after {
        assert_eq!(&trial_files(&out)[name], text, "{name} was not run again");
    }

    // Another search in the same directory is refused.
    std::fs::write(
        corpus.path("tune.yaml"),
        std::fs::read_to_string(corpus.path("tune.yaml")).unwrap().replace("seed: 1", "seed: 2"),
    )
    .unwrap();
    let output = Command::new(bin).args(corpus.args("tune")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("trials of another search"));
}

#[test]
fn the_median_rule_prunes_trailing_trials_and_says_so() {
    use ser_tune::TrialStatus;
    use ser_tune::space::{PruneRule, Pruning};
    let corpus = Corpus::new(8);
    let tune_yaml = std::fs::read_to_string(corpus.path("tune.yaml")).unwrap();
    let pruning = "pruning: {rule: median, warmup_epochs: 1, min_trials: 2}\n";
    std::fs::write(corpus.path("tune.yaml"), format!("{tune_yaml}{pruning}")).unwrap();
    let bin = env!("CARGO_BIN_EXE_ser-tune");
    let summary = run(bin, &corpus.args("tune").iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let records: Vec<ser_tune::TrialRecord> =
        trial_files(&corpus.root.join("tune")).values().map(|text| serde_json::from_str(text).unwrap()).collect();
    let rule = Pruning { rule: PruneRule::Median, warmup_epochs: 1, min_trials: 2 };
    // One job: trial i was judged against trials 0..i. Check every decision against the rule.
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.trial as usize, i);
        let before: Vec<(TrialStatus, Vec<f64>)> = records[..i].iter().map(|r| (r.status, r.curve.clone())).collect();
        assert_eq!(r.curve.len(), r.epochs, "one objective value per epoch");
        match r.status {
            TrialStatus::Pruned => {
                let reason = ser_tune::trials::median_rule(&r.curve, &before, &rule, "val_accuracy");
                assert_eq!(reason.as_deref(), r.note.as_deref(), "trial {i} was pruned by the rule");
                for e in 1..r.curve.len() {
                    assert!(ser_tune::trials::median_rule(&r.curve[..e], &before, &rule, "val_accuracy").is_none());
                }
            }
            TrialStatus::Done => {
                for e in 1..=r.curve.len() {
                    let reason = ser_tune::trials::median_rule(&r.curve[..e], &before, &rule, "val_accuracy");
                    assert!(reason.is_none(), "trial {i} should have been pruned after epoch {e}: {reason:?}");
                }
            }
            TrialStatus::Failed => panic!("trial {i} failed: {:?}", r.error),
        }
    }
    let pruned = records.iter().filter(|r| r.status == TrialStatus::Pruned).count();
    assert!(pruned >= 1, "8 trials, median rule from epoch 1: some trail the median");
    assert_eq!(summary["pruned"], pruned);
    let best: ser_tune::TrialRecord =
        serde_json::from_str(&std::fs::read_to_string(corpus.root.join("tune/best.json")).unwrap()).unwrap();
    assert_eq!(best.status, TrialStatus::Done, "a pruned trial is never the best");
    let csv = std::fs::read_to_string(corpus.root.join("tune/trials.csv")).unwrap();
    assert!(csv.contains(",pruned,") && csv.contains("(median rule)"), "{csv}");
}
