//! The training loop: seeded shuffling, dropout and augmentation, one [`crate::step`] per batch
//! and an Adam update (with `weight_average`, the weights' moving average after it), validation
//! after every epoch, early stopping with best-weight restore, reduce-on-plateau, and (with a
//! directory) an atomic resume point after every epoch and the checkpoint when training ends.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::augment::{AugmentedBatch, augment_batch};
use crate::average::WeightAverage;
use crate::checkpoint::{self, DataProvenance, EpochRecord, ModelJson, Normalization, ResumeMeta, TrainState};
use crate::config::{ModelConfig, Monitor, StoppingPart};
use crate::data::Dataset;
use crate::io::{self, ResumePoint};
use crate::layers::{Activations, MaskStream};
use crate::loss::{Loss, balanced_weights, log_loss};
use crate::metrics::{Scores, scores};
use crate::network::Network;
use crate::optim::Adam;
use crate::params::Weights;
use crate::predict::{Model, argmax, probabilities, upload};
use crate::step::{Engine, train_step};
use crate::{Error, Result};

/// Progress of training, drawn by the caller.
pub trait EpochReporter: Sync {
    fn on_epoch(&self, record: &EpochRecord, max_epochs: usize, is_best: bool);

    /// Asked after each epoch (after `on_epoch` and the resume point's write): `true` ends
    /// training now, as early stopping would, keeping the best epoch's weights. A search uses
    /// this to prune trials that trail the others.
    fn should_stop(&self, _record: &EpochRecord) -> bool {
        false
    }
}

/// Reports nothing.
pub struct Quiet;

impl EpochReporter for Quiet {
    fn on_epoch(&self, _record: &EpochRecord, _max_epochs: usize, _is_best: bool) {}
}

/// What training needs besides the config: the parts, already split.
pub struct TrainData<'a> {
    pub train: &'a Dataset,
    pub val: &'a Dataset,
    /// The features config of the table the parts came from.
    pub features_config: &'a ser_features::FeaturesConfig,
    pub provenance: DataProvenance,
}

/// Where and how training runs.
#[derive(Debug, Clone)]
pub struct TrainOptions<'a> {
    pub device: Device,
    pub engine: Engine,
    /// The checkpoint directory to write, if any.
    pub out_dir: Option<&'a Path>,
    /// Whether to continue from `out_dir`'s resume point.
    pub resume: Resume,
}

/// Whether training continues from the resume point (`last.safetensors`) in its directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Resume {
    /// Train from the first epoch; a resume point there is overwritten.
    #[default]
    Never,
    /// Continue the resume point, finished run or not (to train a finished run longer, raise
    /// `max_epochs`); a resume point of another config or other data is an error. With none there,
    /// train from the first epoch.
    Always,
    /// Continue only an interrupted run (a resume point without `model.json`) of the same config
    /// and data; otherwise (nothing there, a finished run, another config or data, an unreadable
    /// resume point) train from the first epoch, saying why. What `make` asks for: a run stopped
    /// by a crash, a kill or a lost node goes on from its last finished epoch, and a checkpoint
    /// make retrains because its inputs or the binary changed is trained anew.
    IfInterrupted,
}

impl TrainOptions<'_> {
    /// On `device` with its default engine, writing nothing.
    pub fn in_memory(device: &Device) -> TrainOptions<'static> {
        TrainOptions {
            device: device.clone(),
            engine: Engine::default_for(device),
            out_dir: None,
            resume: Resume::Never,
        }
    }
}

/// What a finished training run gives.
pub struct TrainOutcome {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub metrics: BTreeMap<String, f64>,
    pub history: Vec<EpochRecord>,
    pub meta: ModelJson,
    /// The network with the best epoch's weights.
    pub model: Model,
    pub stopped_early: bool,
}

impl std::fmt::Debug for TrainOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOutcome")
            .field("best_epoch", &self.best_epoch)
            .field("epochs_run", &self.epochs_run)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// A seed for epoch `epoch` of stream `stream`, independent of everything else.
fn epoch_seed(seed: u64, stream: &str, epoch: usize) -> u64 {
    let digest = Sha256::digest(format!("{seed}/{stream}/{epoch}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn monitor_score(monitor: Monitor, loss: f64, s: &Scores) -> f64 {
    match monitor {
        Monitor::ValAccuracy => s.accuracy,
        Monitor::ValMacroF1 => s.macro_f1,
        Monitor::ValUar => s.uar,
        Monitor::ValLoss => -loss,
    }
}

/// What a resumed run must share with the interrupted one: everything but `max_epochs`, which
/// may grow to train longer.
fn run_key(config: &ModelConfig, provenance: &DataProvenance) -> String {
    let config = ModelConfig { max_epochs: 0, ..config.clone() };
    let text = format!("{}\n{}", config.to_yaml(), serde_json::to_string(provenance).expect("provenance serialises"));
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The resume point in `dir` that training continues from under `resume`, if any; `finished`
/// says whether `dir` held a finished run's `model.json`.
fn resume_point(
    dir: &Path,
    network: &Network,
    config: &ModelConfig,
    key: &str,
    resume: Resume,
    finished: bool,
) -> Result<Option<ResumePoint>> {
    let lenient = match resume {
        Resume::Never => return Ok(None),
        Resume::IfInterrupted if finished => {
            tracing::info!("{} holds a finished run: training again from the first epoch", dir.display());
            return Ok(None);
        }
        Resume::Always => false,
        Resume::IfInterrupted => true,
    };
    let saved = match io::read_epoch(dir, network, config.learning_rate, config.weight_average) {
        Ok(saved) => saved,
        Err(e) if lenient => {
            tracing::warn!("{e}: training from the first epoch");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let Some(mut saved) = saved else { return Ok(None) };
    if saved.meta.state.run_key != key {
        let path = dir.join(checkpoint::LAST_WEIGHTS_FILE);
        if lenient {
            tracing::warn!(
                "{}: the interrupted run used another config or other data: training from the first epoch",
                path.display()
            );
            return Ok(None);
        }
        return Err(Error::Checkpoint {
            path,
            message: "the interrupted run used another config or other data; remove the directory or drop --resume"
                .into(),
        });
    }
    saved.meta.history.truncate(saved.meta.state.epochs_done);
    Ok(Some(saved))
}

/// Validation loss and scores of standardised clips with `weights`; with `by_corpus` (and
/// clips of several corpora), the mean of each corpus's, as `corpus_weights` weighs the loss, so
/// that the largest corpus does not choose the epoch alone.
fn evaluate(
    network: &Network,
    weights: &Weights,
    device: &Device,
    data: &Dataset,
    targets: &[u32],
    by_corpus: bool,
) -> Result<(f64, Scores)> {
    let device_params = upload(network, weights, device)?;
    let probs = probabilities(network, weights, device_params.as_deref(), &data.features, data.len())?;
    let predicted: Vec<u32> = probs.iter().map(|p| argmax(p) as u32).collect();
    let corpora = crate::data::Corpora::of(data, targets, network.n_classes());
    if !by_corpus || corpora.names.len() < 2 {
        return Ok((log_loss(&probs, targets), scores(targets, &predicted, network.n_classes())));
    }
    let n = corpora.names.len() as f64;
    let (mut loss, mut mean) = (0.0, Scores { accuracy: 0.0, macro_f1: 0.0, uar: 0.0 });
    for c in 0..corpora.names.len() as u32 {
        let rows: Vec<usize> = (0..targets.len()).filter(|&i| corpora.index[i] == c).collect();
        let pick = |v: &[u32]| rows.iter().map(|&i| v[i]).collect::<Vec<u32>>();
        let p: Vec<Vec<f32>> = rows.iter().map(|&i| probs[i].clone()).collect();
        let s = scores(&pick(targets), &pick(&predicted), network.n_classes());
        loss += log_loss(&p, &pick(targets)) / n;
        mean.accuracy += s.accuracy / n;
        mean.macro_f1 += s.macro_f1 / n;
        mean.uar += s.uar / n;
    }
    Ok((loss, mean))
}

/// `each` of every clip a loss term weighs, term by term (the batch's clips, then with mixup
/// their partners'), as [`Loss`] takes per-clip weights, classes and targets.
fn per_term<T>(clips: &[(f32, Vec<usize>)], each: impl Fn(usize) -> T) -> Vec<Vec<T>> {
    clips.iter().map(|(_, ids)| ids.iter().map(|&i| each(i)).collect()).collect()
}

/// Trains the network. With `options.out_dir`, writes a resume point after every epoch and the
/// checkpoint at the end; with `options.resume`, continues from the directory's resume point.
pub fn train(
    data: &TrainData,
    config: &ModelConfig,
    options: &TrainOptions,
    reporter: &dyn EpochReporter,
) -> Result<TrainOutcome> {
    config.validate()?;
    let device = &options.device;
    options.engine.check(device)?;
    let labels = data.train.classes.clone();
    let fixed_epochs = config.early_stopping_on == StoppingPart::None;
    if !fixed_epochs && data.val.classes != labels {
        return Err(Error::Data(format!(
            "the training part's labels [{}] and the validation part's [{}] differ",
            labels.join(", "),
            data.val.classes.join(", ")
        )));
    }
    let n_classes = labels.len();
    if data.train.is_empty() {
        return Err(Error::Data("the training part is empty".into()));
    }
    if data.val.is_empty() && !fixed_epochs {
        return Err(Error::Data(
            "the validation part is empty: early stopping needs one (set val_fraction or val_speakers), or train a \
             fixed number of epochs with early_stopping_on: none"
                .into(),
        ));
    }
    let train_targets = data.train.targets("train")?;
    let val_targets = if fixed_epochs { Vec::new() } else { data.val.targets("validation")? };
    let normalization = Normalization::fit(&data.train.features, data.train.n_coeffs);
    let mut train_set = data.train.clone();
    normalization.apply(&mut train_set.features);
    let mut val_set = data.val.clone();
    normalization.apply(&mut val_set.features);

    // An adversary's domains: each training clip's, and how many the head tells apart.
    let domains = config.adversary.as_ref().map(|a| crate::data::domains(&train_set, a.against));
    if let (Some(a), Some((n, _))) = (&config.adversary, &domains)
        && *n < 2
    {
        return Err(Error::Data(format!(
            "adversary: against {:?} needs at least two in the training part, which has {n}; remove adversary \
             from model.yaml or train on more corpora or speakers",
            a.against
        )));
    }
    let n_domains = domains.as_ref().map_or(0, |(n, _)| *n);
    let network = Network::training(config, train_set.n_frames, train_set.n_coeffs, n_classes, n_domains)?;
    let heads = network.heads();
    if heads.gender().is_some() && data.train.genders.iter().all(Option::is_none) {
        return Err(Error::Data(format!(
            "gender_weight is set but no training clip has a gender (the table's gender column: {}); remove \
             gender_weight from model.yaml",
            ser_features::labels::GENDERS.join(" or ")
        )));
    }
    let specs = network.params();
    let key = run_key(config, &data.provenance);
    let class_weights = config.class_weights.then(|| balanced_weights(&train_targets, n_classes));
    // Several corpora in one model: each training clip's corpus, its weight and its classes.
    let corpora = crate::data::Corpora::of(&train_set, &train_targets, n_classes);
    let corpus_weights = config.corpus_weights.then(|| corpora.weights());

    let initial = network.init(config.seed);
    let mut point = ResumePoint {
        meta: ResumeMeta {
            state: TrainState {
                epochs_done: 0,
                adam_step: 0,
                learning_rate: config.learning_rate,
                best_epoch: 0,
                best_score: None,
                best_val_loss: None,
                epochs_since_best: 0,
                epochs_since_lr_improvement: 0,
                run_key: key.clone(),
                best_metrics: BTreeMap::new(),
            },
            history: Vec::new(),
        },
        best: initial.clone(),
        average: config.weight_average.map(|decay| WeightAverage::new(decay, initial.clone())),
        weights: initial,
        adam: Adam::new(specs, config.learning_rate),
    };
    if let Some(dir) = options.out_dir {
        let finished = io::retire_sidecar(dir)?;
        if let Some(saved) = resume_point(dir, &network, config, &key, options.resume, finished)? {
            tracing::info!(
                "resuming after epoch {} (best epoch {})",
                saved.meta.state.epochs_done,
                saved.meta.state.best_epoch
            );
            point = saved;
        }
    }
    point.adam.learning_rate = point.meta.state.learning_rate;

    let protocol = match config.early_stopping_on {
        StoppingPart::Val => {
            "early stopping and learning-rate schedule on the split's val part; test part unseen".to_string()
        }
        StoppingPart::TestOptimistic => {
            "OPTIMISTIC: early stopping on the test part, as the reference did; test figures are biased upwards"
                .to_string()
        }
        StoppingPart::None => {
            format!("fixed {} epochs on the train part, no validation; the last epoch's weights", config.max_epochs)
        }
    };
    tracing::debug!("training with engine {:?} on {device:?}", options.engine);

    let mut stopped_early = false;
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    for epoch in point.meta.state.epochs_done..config.max_epochs {
        let started = Instant::now();
        let _span = tracing::info_span!("epoch", epoch = epoch + 1).entered();
        order.sort_unstable();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(config.seed, "shuffle", epoch)));
        let mut masks = MaskStream::new(epoch_seed(config.seed, "dropout", epoch));
        let mut augment_rng = ChaCha8Rng::seed_from_u64(epoch_seed(config.seed, "augment", epoch));
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for batch in order.chunks(config.batch_size) {
            let values = train_set.gather(batch);
            let AugmentedBatch { values, mixup } = if config.augment.is_off() {
                AugmentedBatch { values, mixup: None }
            } else {
                let (frames, coeffs) = (train_set.n_frames, train_set.n_coeffs);
                augment_batch(values, batch.len(), frames, coeffs, &config.augment, &mut augment_rng)
            };
            // What the loss weighs: the clips' own targets, and with mixup their partners' too.
            let clips: Vec<(f32, Vec<usize>)> = match &mixup {
                None => vec![(1.0, batch.to_vec())],
                Some((partner, lambda)) => {
                    vec![(*lambda, batch.to_vec()), (1.0 - lambda, partner.iter().map(|&p| batch[p]).collect())]
                }
            };
            let terms = clips.iter().map(|(c, ids)| (*c, ids.iter().map(|&i| train_targets[i]).collect())).collect();
            let gender = config.gender_weight.map(|w| (w, per_term(&clips, |i| train_set.genders[i])));
            let domain = config
                .adversary
                .as_ref()
                .zip(domains.as_ref())
                .map(|(a, (_, d))| (a.weight, per_term(&clips, |i| Some(d[i]))));
            let loss = Loss {
                terms,
                class_weights: class_weights.as_deref(),
                clip_weights: corpus_weights.as_ref().map(|w| per_term(&clips, |i| w[corpora.index[i] as usize])),
                allowed: config.corpus_classes.then(|| per_term(&clips, |i| corpora.classes(i))),
                smoothing: config.label_smoothing,
                gender,
                domain,
            };
            let x = Activations::new(batch.len(), network.input(), values);
            let step = train_step(options.engine, &network, &point.weights, x, &loss, &mut masks, device)?;
            if !step.loss.is_finite() {
                return Err(Error::Train(format!(
                    "loss became {} in epoch {}; lower learning_rate",
                    step.loss,
                    epoch + 1
                )));
            }
            point.adam.update(specs, &mut point.weights, &step.grads);
            for (id, values) in step.state {
                point.weights.set(id, values);
            }
            if let Some(average) = &mut point.average {
                average.update(&point.weights, point.adam.step);
            }
            loss_sum += step.loss as f64 * batch.len() as f64;
            correct += step
                .logits
                .chunks_exact(heads.outputs())
                .zip(batch)
                .filter(|(logits, i)| argmax(&logits[heads.emotion()]) as u32 == train_targets[**i])
                .count();
        }
        // What validation scores and the checkpoint keeps: the average when there is one.
        let kept = point.average.as_ref().map_or(&point.weights, WeightAverage::weights);
        let validated = if fixed_epochs {
            None
        } else {
            Some(evaluate(&network, kept, device, &val_set, &val_targets, config.corpus_weights)?)
        };
        let state = &mut point.meta.state;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / train_set.len() as f64,
            train_accuracy: correct as f64 / train_set.len() as f64,
            val_loss: validated.as_ref().map(|(loss, _)| *loss),
            val_accuracy: validated.as_ref().map(|(_, s)| s.accuracy),
            val_macro_f1: validated.as_ref().map(|(_, s)| s.macro_f1),
            val_uar: validated.as_ref().map(|(_, s)| s.uar),
            learning_rate: point.adam.learning_rate,
            seconds: started.elapsed().as_secs_f64(),
        };
        point.meta.history.push(record.clone());

        let is_best = match validated {
            // Fixed epochs: every epoch is the latest, and the last one is the checkpoint.
            None => {
                state.best_epoch = epoch + 1;
                point.best = kept.clone();
                true
            }
            Some((val_loss, val)) => {
                let score = monitor_score(config.monitor, val_loss, &val);
                let is_best = state.best_score.is_none_or(|best| score > best);
                if is_best {
                    state.best_score = Some(score);
                    state.best_epoch = epoch + 1;
                    state.epochs_since_best = 0;
                    state.best_metrics = BTreeMap::from([
                        ("val_loss".to_string(), val_loss),
                        ("val_accuracy".to_string(), val.accuracy),
                        ("val_macro_f1".to_string(), val.macro_f1),
                        ("val_uar".to_string(), val.uar),
                    ]);
                    point.best = kept.clone();
                } else {
                    state.epochs_since_best += 1;
                }
                // Reduce on plateau of the validation loss.
                if state.best_val_loss.is_none_or(|best| val_loss < best - 1e-4) {
                    state.best_val_loss = Some(val_loss);
                    state.epochs_since_lr_improvement = 0;
                } else {
                    state.epochs_since_lr_improvement += 1;
                    if state.epochs_since_lr_improvement >= config.lr_patience
                        && point.adam.learning_rate > config.min_lr
                    {
                        point.adam.learning_rate = (point.adam.learning_rate * config.lr_factor).max(config.min_lr);
                        state.epochs_since_lr_improvement = 0;
                        tracing::info!("learning rate reduced to {:.2e}", point.adam.learning_rate);
                    }
                }
                is_best
            }
        };
        state.epochs_done = epoch + 1;
        state.adam_step = point.adam.step;
        state.learning_rate = point.adam.learning_rate;
        let epochs_since_best = state.epochs_since_best;
        reporter.on_epoch(&record, config.max_epochs, is_best);
        if let Some(dir) = options.out_dir {
            io::write_epoch(dir, &network, &point)?;
        }
        if reporter.should_stop(&record) {
            tracing::info!("stopped after epoch {} at the caller's request", epoch + 1);
            stopped_early = true;
            break;
        }
        if !fixed_epochs && epochs_since_best >= config.patience {
            tracing::info!(
                "early stop after epoch {}: no better {:?} for {} epochs",
                epoch + 1,
                config.monitor,
                config.patience
            );
            stopped_early = true;
            break;
        }
    }

    let state = &point.meta.state;
    let (network, best) = network.for_inference(config, &point.best)?;
    let meta = ModelJson {
        format_version: checkpoint::FORMAT_VERSION,
        labels,
        features_config: data.features_config.clone(),
        features_config_hash: data.features_config.hash(),
        n_frames: train_set.n_frames,
        n_coeffs: train_set.n_coeffs,
        normalization,
        model_config: config.clone(),
        seed: config.seed,
        data: data.provenance.clone(),
        protocol,
        best_epoch: state.best_epoch,
        epochs_run: point.meta.history.len(),
        metrics: state.best_metrics.clone(),
        device: format!("{device:?}"),
        versions: checkpoint::versions(),
    };
    if let Some(dir) = options.out_dir {
        io::write_checkpoint(dir, &network, &best, &meta)?;
    }
    Ok(TrainOutcome {
        best_epoch: state.best_epoch,
        epochs_run: point.meta.history.len(),
        metrics: state.best_metrics.clone(),
        history: point.meta.history,
        meta,
        model: Model::new(network, best, device)?,
        stopped_early,
    })
}
