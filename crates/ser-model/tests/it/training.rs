//! Training: reproducible to the bit on CPU, learns, resumes exactly.

use candle_core::Device;
use ser_model::ModelConfig;
use ser_model::checkpoint::{DataProvenance, EpochRecord};
use ser_model::config::Augment;
use ser_model::step::Engine;
use ser_model::train::{Quiet, Resume, TrainData, TrainOptions, TrainOutcome, train};

use crate::{small_config, toy_dataset};

fn provenance() -> DataProvenance {
    DataProvenance {
        features_path: "toy".into(),
        features_sha256: "0".into(),
        splits_path: "toy".into(),
        splits_sha256: "0".into(),
        split_config: String::new(),
        fold: 0,
        n_train: 96,
        n_val: 32,
        n_test: 0,
    }
}

fn features_config() -> ser_features::FeaturesConfig {
    ser_features::FeaturesConfig { n_mfcc: 6, frames: Some(16), ..ser_features::FeaturesConfig::reference() }
}

pub fn run_with(config: &ModelConfig, engine: Engine, out: Option<&std::path::Path>, resume: Resume) -> TrainOutcome {
    let (train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let options = TrainOptions { device: Device::Cpu, engine, out_dir: out, resume };
    train(&data, config, &options, &Quiet).unwrap()
}

pub fn run(config: &ModelConfig, out: Option<&std::path::Path>, resume: Resume) -> TrainOutcome {
    run_with(config, Engine::Fused, out, resume)
}

/// The history without wall-clock seconds.
fn history(outcome: &TrainOutcome) -> Vec<EpochRecord> {
    outcome.history.iter().map(|r| EpochRecord { seconds: 0.0, ..r.clone() }).collect()
}

fn weights(outcome: &TrainOutcome) -> Vec<Vec<f32>> {
    outcome.model.weights.values().to_vec()
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let a = run(&small_config(3), None, Resume::Never);
    let b = run(&small_config(3), None, Resume::Never);
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(history(&a), history(&b));
    let c = run(&small_config(4), None, Resume::Never);
    assert_ne!(weights(&a), weights(&c));
}

#[test]
fn thread_count_does_not_change_the_weights() {
    // Wide enough that the convolutions' products split over threads.
    let config = ModelConfig { conv1_filters: 32, conv2_filters: 32, ..small_config(5) };
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(&config, None, Resume::Never))
    };
    let (one, three) = (on(1), on(3));
    assert_eq!(weights(&one), weights(&three), "1 and 3 threads train the same weights");
    assert_eq!(history(&one), history(&three));
}

#[test]
fn augmented_training_is_reproducible() {
    let mut config = small_config(6);
    config.augment = Augment {
        time_shift: 3,
        time_masks: 2,
        time_mask_width: 4,
        feature_masks: 1,
        feature_mask_width: 2,
        noise_std: 0.1,
        mixup_alpha: 0.4,
    };
    let a = run(&config, None, Resume::Never);
    let b = run(&config, None, Resume::Never);
    assert_eq!(weights(&a), weights(&b), "same seed, same augmentation, same weights");
    let plain = run(&small_config(6), None, Resume::Never);
    assert_ne!(weights(&a), weights(&plain), "augmentation changes training");
}

#[test]
fn it_learns_a_learnable_problem() {
    let mut config = small_config(1);
    config.max_epochs = 25;
    config.patience = 25;
    let outcome = run(&config, None, Resume::Never);
    let first = &outcome.history[0];
    let best = outcome.metrics["val_accuracy"];
    assert!(outcome.history.last().unwrap().train_loss < first.train_loss, "training loss went down");
    assert!(best >= 0.5, "best val accuracy {best} on an easy toy problem (chance 0.125)");
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let mut config = small_config(2);
    config.max_epochs = 30;
    config.patience = 3;
    let outcome = run(&config, None, Resume::Never);
    assert!(outcome.epochs_run <= 30);
    let best = &outcome.history[outcome.best_epoch - 1];
    assert_eq!(Some(outcome.metrics["val_accuracy"]), best.val_accuracy);
    if outcome.stopped_early {
        assert_eq!(outcome.epochs_run, outcome.best_epoch + 3);
    }
}

#[test]
fn resume_continues_exactly() {
    // Without and with a weight average (whose values the resume file carries too).
    for average in [None, Some(0.9)] {
        let whole_dir = tempfile::tempdir().unwrap();
        let mut config = ModelConfig { weight_average: average, ..small_config(5) };
        config.max_epochs = 4;
        let whole = run(&config, Some(whole_dir.path()), Resume::Never);

        // "Interrupted" after 2 epochs, then resumed to 4 in the same directory.
        let dir = tempfile::tempdir().unwrap();
        config.max_epochs = 2;
        run(&config, Some(dir.path()), Resume::Never);
        config.max_epochs = 4;
        let resumed = run(&config, Some(dir.path()), Resume::Always);
        assert_eq!(history(&resumed), history(&whole), "average {average:?}");
        assert_eq!(weights(&resumed), weights(&whole), "average {average:?}");
        for file in ["model.safetensors", "model.json", "last.safetensors", "history.csv"] {
            assert_eq!(
                std::fs::read(dir.path().join(file)).unwrap(),
                std::fs::read(whole_dir.path().join(file)).unwrap(),
                "{file} differs (average {average:?})"
            );
        }
    }
}

#[test]
fn resume_with_other_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(5);
    config.max_epochs = 1;
    run(&config, Some(dir.path()), Resume::Never);
    config.dropout_dense = 0.3;
    let (train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let options =
        TrainOptions { out_dir: Some(dir.path()), resume: Resume::Always, ..TrainOptions::in_memory(&Device::Cpu) };
    let err = train(&data, &config, &options, &Quiet).unwrap_err().to_string();
    assert!(err.contains("last.safetensors") && err.contains("another config"), "{err}");
}

/// Counts the epochs a run trains (a resumed run reports only those after its resume point).
#[derive(Default)]
struct Counter(std::sync::atomic::AtomicUsize);

impl ser_model::train::EpochReporter for Counter {
    fn on_epoch(&self, _record: &EpochRecord, _max_epochs: usize, _is_best: bool) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn resume_if_interrupted_continues_only_an_interrupted_run_of_the_same_config() {
    let (train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let config = ModelConfig { max_epochs: 4, ..small_config(5) };
    let whole = run(&config, None, Resume::Never);
    // Trains in `dir` under IfInterrupted: the outcome and how many epochs it trained itself.
    let train_in = |dir: &std::path::Path, config: &ModelConfig| {
        let counter = Counter::default();
        let options =
            TrainOptions { out_dir: Some(dir), resume: Resume::IfInterrupted, ..TrainOptions::in_memory(&Device::Cpu) };
        let outcome = train(&data, config, &options, &counter).unwrap();
        (outcome, counter.0.into_inner())
    };

    // A run killed after its second epoch leaves the resume point and no model.json (training
    // removes it first and writes it last): it goes on from epoch 3 to the whole run's weights.
    let dir = tempfile::tempdir().unwrap();
    run(&ModelConfig { max_epochs: 2, ..config.clone() }, Some(dir.path()), Resume::Never);
    std::fs::remove_file(dir.path().join("model.json")).unwrap();
    let (resumed, trained) = train_in(dir.path(), &config);
    assert_eq!(trained, 2);
    assert_eq!(history(&resumed), history(&whole));
    assert_eq!(weights(&resumed), weights(&whole));

    // A finished run (model.json there) is trained anew, from the first epoch.
    let (again, trained) = train_in(dir.path(), &config);
    assert_eq!(trained, 4);
    assert_eq!(weights(&again), weights(&whole));

    // An interrupted run of another config is not continued, nor refused: the new config trains
    // from the first epoch, as it would in an empty directory.
    let other = ModelConfig { dropout_dense: 0.3, ..config.clone() };
    std::fs::remove_file(dir.path().join("model.json")).unwrap();
    let (fresh, trained) = train_in(dir.path(), &other);
    assert_eq!(trained, 4);
    assert_eq!(weights(&fresh), weights(&run(&other, None, Resume::Never)));
    assert_ne!(weights(&fresh), weights(&whole));

    // Nor does an unreadable resume point stop it.
    std::fs::remove_file(dir.path().join("model.json")).unwrap();
    std::fs::write(dir.path().join("last.safetensors"), b"not a resume point").unwrap();
    let (fresh, trained) = train_in(dir.path(), &config);
    assert_eq!(trained, 4);
    assert_eq!(weights(&fresh), weights(&whole));
}

#[test]
fn class_weights_train_too() {
    let mut config = small_config(6);
    config.class_weights = true;
    config.max_epochs = 2;
    let outcome = run(&config, None, Resume::Never);
    assert!(outcome.history.iter().all(|r| r.train_loss.is_finite()));
}

#[test]
fn the_candle_engine_trains_along_the_same_curve() {
    // candle's graph and autograd (the path a GPU takes), run on the CPU, against the fused pass:
    // the same masks, batches and loss, so the curves part only by float rounding.
    let mut config = small_config(7);
    config.max_epochs = 4;
    config.patience = 10;
    let dir = tempfile::tempdir().unwrap();
    let candle = run_with(&config, Engine::Candle, Some(dir.path()), Resume::Never);
    let fused = run(&config, None, Resume::Never);
    assert_eq!(candle.epochs_run, fused.epochs_run);
    for (c, f) in candle.history.iter().zip(&fused.history) {
        for (what, a, b) in
            [("train_loss", c.train_loss, f.train_loss), ("val_loss", c.val_loss.unwrap(), f.val_loss.unwrap())]
        {
            assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "epoch {}: {what} candle {a} vs fused {b}", c.epoch);
        }
    }
    let first = &candle.history[0];
    assert!(candle.history.last().unwrap().train_loss < first.train_loss, "the candle engine learns");
    // Its checkpoint loads and predicts like any other.
    let checkpoint = ser_model::io::read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(checkpoint.members[0].meta.epochs_run, 4);
}

#[test]
fn the_sidecar_is_written_once_training_ends() {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = dir.path().join("model.json");
    std::fs::write(&sidecar, "an older run").unwrap();

    /// Looks at the directory after every epoch.
    struct Watch<'a>(&'a std::path::Path, std::sync::Mutex<Vec<bool>>);
    impl ser_model::train::EpochReporter for Watch<'_> {
        fn on_epoch(&self, _: &EpochRecord, _: usize, _: bool) {
            self.1.lock().unwrap().push(self.0.join("model.json").exists());
        }
    }
    let watch = Watch(dir.path(), Default::default());
    let (train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let mut config = small_config(4);
    config.max_epochs = 3;
    let options = TrainOptions { out_dir: Some(dir.path()), ..TrainOptions::in_memory(&Device::Cpu) };
    train(&data, &config, &options, &watch).unwrap();
    assert_eq!(*watch.1.lock().unwrap(), vec![false; 3], "no model.json while training runs");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    assert_eq!(meta["epochs_run"], 3);
    assert!(dir.path().join("last.safetensors").exists() && dir.path().join("model.safetensors").exists());
    let candle = meta["versions"]["candle"].as_str().unwrap();
    assert!(candle.starts_with("0.") && candle.matches('.').count() == 2, "candle version from the build: {candle}");
}

#[test]
fn a_label_set_of_its_own_gives_a_network_of_its_size() {
    let three = |n: usize, offset: usize| {
        let mut d = toy_dataset(n, offset);
        d.classes = vec!["bored".into(), "excited".into(), "frustrated".into()];
        d.labels = d.labels.iter().map(|l| l.map(|c| c % 3)).collect();
        d
    };
    let (train_set, val_set) = (three(48, 0), three(24, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let mut config = small_config(3);
    config.max_epochs = 2;
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions { out_dir: Some(dir.path()), ..TrainOptions::in_memory(&Device::Cpu) };
    train(&data, &config, &options, &Quiet).unwrap();
    let checkpoint = ser_model::io::read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(checkpoint.labels(), ["bored", "excited", "frustrated"]);
    let predictions = ser_model::predict::predict(&checkpoint, &three(5, 7)).unwrap();
    assert!(predictions.probabilities.iter().all(|p| p.len() == 3));
    assert!(
        predictions.truth.iter().all(|t| t.as_deref().is_some_and(|t| checkpoint.labels().contains(&t.to_string())))
    );
}

#[test]
fn fixed_epochs_train_without_a_validation_part() {
    use ser_model::config::StoppingPart;
    let mut config = small_config(7);
    config.max_epochs = 6;
    config.patience = 1; // does not apply: no validation, no early stop
    config.early_stopping_on = StoppingPart::None;
    let train_set = toy_dataset(96, 0);
    let empty = toy_dataset(0, 1000);
    let features = features_config();
    let dir = tempfile::tempdir().unwrap();
    let data = TrainData { train: &train_set, val: &empty, features_config: &features, provenance: provenance() };
    let options =
        TrainOptions { device: Device::Cpu, engine: Engine::Fused, out_dir: Some(dir.path()), resume: Resume::Never };
    let outcome = train(&data, &config, &options, &Quiet).unwrap();
    assert_eq!((outcome.epochs_run, outcome.best_epoch, outcome.stopped_early), (6, 6, false));
    assert!(outcome.history.iter().all(|r| r.val_loss.is_none() && r.val_uar.is_none()));
    assert!(outcome.meta.protocol.contains("fixed 6 epochs"), "{}", outcome.meta.protocol);
    let history = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    assert!(history.lines().nth(1).unwrap().contains(",,,,"), "empty validation cells:\n{history}");
    // The same config trains the same weights again.
    let again = train(&data, &config, &TrainOptions { out_dir: None, ..options }, &Quiet).unwrap();
    assert_eq!(weights(&outcome), weights(&again));
    // Interrupted after 3 epochs and resumed, it ends where the whole run did.
    let part_dir = tempfile::tempdir().unwrap();
    let part =
        |resume| TrainOptions { out_dir: Some(part_dir.path()), resume, ..TrainOptions::in_memory(&Device::Cpu) };
    train(&data, &ModelConfig { max_epochs: 3, ..config.clone() }, &part(Resume::Never), &Quiet).unwrap();
    let resumed = train(&data, &config, &part(Resume::Always), &Quiet).unwrap();
    assert_eq!(resumed.history.len(), 6);
    assert_eq!(weights(&outcome), weights(&resumed));

    // Without `none`, an empty validation part is an error that names the way out.
    config.early_stopping_on = StoppingPart::Val;
    let err = train(
        &data,
        &config,
        &TrainOptions { device: Device::Cpu, engine: Engine::Fused, out_dir: None, resume: Resume::Never },
        &Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("early_stopping_on: none"), "{err}");
}

#[test]
fn a_gender_head_trains_alongside_and_answers_the_emotions_alone() {
    let mut config = small_config(3);
    config.max_epochs = 3;
    config.gender_weight = Some(0.5);
    let (train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions { out_dir: Some(dir.path()), ..TrainOptions::in_memory(&Device::Cpu) };
    let outcome = train(&data, &config, &options, &Quiet).unwrap();
    let heads = outcome.model.network.heads();
    assert_eq!((heads.classes, heads.outputs()), (8, 10), "8 emotions, then female and male");
    // The head changes training: the same seed without it trains other weights.
    let plain = run(&ModelConfig { gender_weight: None, ..config.clone() }, None, Resume::Never);
    assert_ne!(weights(&outcome), weights(&plain));
    // Saved and loaded, it predicts the emotions alone, and the same seed trains it again.
    let checkpoint = ser_model::io::read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    let predictions = ser_model::predict::predict(&checkpoint, &toy_dataset(5, 7)).unwrap();
    assert!(predictions.probabilities.iter().all(|p| p.len() == 8 && (p.iter().sum::<f32>() - 1.0).abs() < 1e-5));
    let again = train(&data, &config, &TrainOptions::in_memory(&Device::Cpu), &Quiet).unwrap();
    assert_eq!(weights(&outcome), weights(&again));

    // A table without genders cannot train one, and says what to do.
    let mut unknown = toy_dataset(96, 0);
    unknown.genders = vec![None; unknown.len()];
    let data = TrainData { train: &unknown, val: &val_set, features_config: &features, provenance: provenance() };
    let err = train(&data, &config, &TrainOptions::in_memory(&Device::Cpu), &Quiet).unwrap_err().to_string();
    assert!(err.contains("no training clip has a gender") && err.contains("remove gender_weight"), "{err}");
    let bad = ModelConfig::from_yaml(&format!("{}gender_weight: -1\n", small_config(1).to_yaml())).unwrap_err();
    assert!(bad.to_string().contains("gender_weight: -1"), "{bad}");
}

#[test]
fn a_weight_average_is_what_validation_scores_and_the_checkpoint_keeps() {
    use ser_model::config::StoppingPart;
    use ser_model::io;
    let mut config = ModelConfig { weight_average: Some(0.95), ..small_config(8) };
    config.max_epochs = 3;
    let (train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };

    // Fixed epochs: the checkpoint is the average after the last epoch, not the last step's
    // weights, both of which the resume file holds.
    config.early_stopping_on = StoppingPart::None;
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions { out_dir: Some(dir.path()), ..TrainOptions::in_memory(&Device::Cpu) };
    let outcome = train(&data, &config, &options, &Quiet).unwrap();
    let network = &outcome.model.network;
    let point = io::read_epoch(dir.path(), network, config.learning_rate, config.weight_average).unwrap().unwrap();
    let saved = io::read_weights(&dir.path().join("model.safetensors"), network).unwrap();
    assert_eq!(&saved, point.average.as_ref().unwrap().weights());
    assert_ne!(saved, point.weights, "the average differs from the last step's weights");
    // Reproducible, and other weights than training without the average.
    let again = train(&data, &config, &TrainOptions::in_memory(&Device::Cpu), &Quiet).unwrap();
    assert_eq!(weights(&outcome), weights(&again));
    let plain = run(&ModelConfig { weight_average: None, ..config.clone() }, None, Resume::Never);
    assert_ne!(weights(&outcome), weights(&plain));

    // Early stopping: the best epoch's validation accuracy is the kept model's on that part.
    config.early_stopping_on = StoppingPart::Val;
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions { out_dir: Some(dir.path()), ..TrainOptions::in_memory(&Device::Cpu) };
    let outcome = train(&data, &config, &options, &Quiet).unwrap();
    let checkpoint = io::read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    let predictions = ser_model::predict::predict(&checkpoint, &val_set).unwrap();
    let predicted: Vec<u32> = predictions.probabilities.iter().map(|p| ser_model::predict::argmax(p) as u32).collect();
    let kept = ser_model::metrics::scores(&val_set.targets("validation").unwrap(), &predicted, val_set.classes.len());
    assert_eq!((outcome.metrics["val_accuracy"], outcome.metrics["val_uar"]), (kept.accuracy, kept.uar));

    // A decay outside (0, 1) is refused with the key.
    for bad in ["1", "0", "-0.5"] {
        let err = ModelConfig::from_yaml(&format!("{}weight_average: {bad}\n", small_config(1).to_yaml())).unwrap_err();
        assert!(err.to_string().contains("weight_average") && err.to_string().contains("(0, 1)"), "{err}");
    }
}

/// corpus_weights and corpus_classes change nothing for one corpus that has every class (its
/// weight is 1, its classes all), and change the training when a second corpus lacks a class.
#[test]
fn the_corpus_levers_act_only_between_corpora() {
    let config = ModelConfig { max_epochs: 2, ..small_config(5) };
    let both = ModelConfig { corpus_weights: true, corpus_classes: true, ..config.clone() };
    let plain = run(&config, None, Resume::Never);
    let one_corpus = run(&both, None, Resume::Never);
    assert_eq!(plain.model.weights, one_corpus.model.weights, "one corpus: bit for bit the plain training");
    let two = |config: &ModelConfig| {
        let (mut train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
        // A second corpus of about a quarter of the clips, none of class 1.
        train_set.corpora = (0..train_set.len())
            .map(|i| if i % 4 == 0 && train_set.labels[i] != Some(1) { "b" } else { "a" }.to_string())
            .collect();
        let features = features_config();
        let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
        let options = TrainOptions { device: Device::Cpu, engine: Engine::Fused, out_dir: None, resume: Resume::Never };
        train(&data, config, &options, &Quiet).unwrap()
    };
    assert_ne!(two(&config).model.weights, two(&both).model.weights, "two corpora: the levers act");
}

#[test]
fn an_adversary_trains_beside_the_emotions_and_stays_out_of_the_checkpoint() {
    use ser_model::config::{Adversary, Domain};
    let config = ModelConfig { max_epochs: 2, ..small_config(6) };
    let adversarial =
        ModelConfig { adversary: Some(Adversary { against: Domain::Speaker, weight: 0.5 }), ..config.clone() };
    let (mut train_set, val_set) = (toy_dataset(96, 0), toy_dataset(32, 1000));
    let features = features_config();
    // No speakers in the table: one domain, nothing to tell apart, and the error says so.
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let err = train(&data, &adversarial, &TrainOptions::in_memory(&Device::Cpu), &Quiet).unwrap_err().to_string();
    assert!(err.contains("adversary") && err.contains("at least two") && err.contains("has 1"), "{err}");
    // Six speakers: the head trains, and changes the weights below it.
    train_set.speakers = (0..train_set.len()).map(|i| format!("s{}", i % 6)).collect();
    let data = TrainData { train: &train_set, val: &val_set, features_config: &features, provenance: provenance() };
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions { out_dir: Some(dir.path()), ..TrainOptions::in_memory(&Device::Cpu) };
    let outcome = train(&data, &adversarial, &options, &Quiet).unwrap();
    let plain = train(&data, &config, &TrainOptions::in_memory(&Device::Cpu), &Quiet).unwrap();
    assert_ne!(weights(&outcome), weights(&plain));
    // The checkpoint is a plain network's: the same tensors, the emotions alone.
    let specs = |o: &TrainOutcome| {
        o.model.network.params().iter().map(|s| (s.name.clone(), s.dims.clone())).collect::<Vec<_>>()
    };
    assert_eq!(specs(&outcome), specs(&plain));
    assert_eq!(outcome.model.network.heads(), plain.model.network.heads());
    let checkpoint = ser_model::io::read_checkpoint(dir.path(), &Device::Cpu).unwrap();
    let predictions = ser_model::predict::predict(&checkpoint, &toy_dataset(5, 7)).unwrap();
    let mut standardised = toy_dataset(5, 7).features;
    outcome.meta.normalization.apply(&mut standardised);
    let in_memory = outcome.model.probabilities(&standardised, 5).unwrap();
    assert_eq!(predictions.probabilities, in_memory, "the checkpoint answers as the trained network");
    let bad = ModelConfig::from_yaml(&format!("{}adversary: {{against: speaker, weight: 0}}\n", config.to_yaml()));
    assert!(bad.unwrap_err().to_string().contains("adversary.weight: 0"));
}
