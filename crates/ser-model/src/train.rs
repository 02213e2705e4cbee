//! The training loop: Adam, cross-entropy, seeded shuffling and dropout, early stopping with
//! best-weight restore, reduce-on-plateau, and an atomic checkpoint after every epoch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{D, DType, Device, ModuleT, Tensor, Var};
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Normal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, DataProvenance, ModelJson, TrainState};
use crate::config::{Augment, ModelConfig, Monitor, StoppingPart};
use crate::data::{Dataset, Normalization};
use crate::fused;
use crate::metrics::{Scores, scores};
use crate::network::{self, Network};
use crate::{Error, Result};

/// One row of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_macro_f1: f64,
    pub val_uar: f64,
    pub learning_rate: f64,
    /// Wall-clock seconds of the epoch: reported on stderr, never written to artifacts.
    #[serde(skip)]
    pub seconds: f64,
}

/// Progress of training, drawn by the caller.
pub trait EpochReporter: Sync {
    fn on_epoch(&self, record: &EpochRecord, max_epochs: usize, is_best: bool);

    /// Asked after each epoch (after `on_epoch` and the checkpoint writes): `true` ends training
    /// now, as early stopping would, keeping the best epoch's weights. A search uses this to
    /// prune trials that trail the others.
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

/// What a finished training run gives.
pub struct TrainOutcome {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub metrics: BTreeMap<String, f64>,
    pub history: Vec<EpochRecord>,
    pub meta: ModelJson,
    pub varmap: VarMap,
    pub network: Network,
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

/// Adam as Keras does it (epsilon 1e-7, bias correction folded into the step size), with its
/// moments kept by variable name so they can be checkpointed.
struct Adam {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
    lr: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-7;

impl Adam {
    fn new(varmap: &VarMap, lr: f64) -> candle_core::Result<Adam> {
        let data = varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<(String, Var)> = data
            .iter()
            // Running statistics are variables too, but they are not trained by gradient.
            .filter(|(name, _)| !name.contains("running_"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let m = vars.iter().map(|(_, v)| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars.iter().map(|(_, v)| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Adam { vars, m, v, step: 0, lr })
    }

    /// A step from the gradients of `loss` (candle's autograd).
    fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step += 1;
        let alpha = self.step_size();
        for (k, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            let m = ((&self.m[k] * BETA1)? + (g * (1.0 - BETA1))?)?;
            let v = ((&self.v[k] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let update = ((&m * alpha)? / (v.sqrt()? + ADAM_EPS)?)?;
            var.set(&var.sub(&update)?)?;
            self.m[k] = m;
            self.v[k] = v;
        }
        Ok(())
    }

    fn step_size(&self) -> f64 {
        let t = self.step as f64;
        self.lr * (1.0 - BETA2.powf(t)).sqrt() / (1.0 - BETA1.powf(t))
    }

    /// A step from gradients by tensor name (the hand-written CPU pass), in one loop per
    /// tensor with the same arithmetic as [`Adam::backward_step`]; `params` holds the current
    /// values of the variables, as read for the pass.
    fn step_with(&mut self, grads: &fused::Params, mut params: fused::Params) -> candle_core::Result<()> {
        self.step += 1;
        let alpha = self.step_size() as f32;
        let (b1, b2, eps) = (BETA1 as f32, BETA2 as f32, ADAM_EPS as f32);
        for (k, (name, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(name) else { continue };
            let Some(mut w) = params.remove(name) else {
                candle_core::bail!("adam: no current value for {name}");
            };
            let mut m = self.m[k].flatten_all()?.to_vec1::<f32>()?;
            let mut v = self.v[k].flatten_all()?.to_vec1::<f32>()?;
            for (((w, m), v), g) in w.iter_mut().zip(&mut m).zip(&mut v).zip(g) {
                *m = *m * b1 + g * (1.0 - b1);
                *v = *v * b2 + g * g * (1.0 - b2);
                *w -= *m * alpha / (v.sqrt() + eps);
            }
            let shape = var.shape().clone();
            let device = var.device().clone();
            var.set(&Tensor::from_vec(w, shape.clone(), &device)?)?;
            self.m[k] = Tensor::from_vec(m, shape.clone(), &device)?;
            self.v[k] = Tensor::from_vec(v, shape, &device)?;
        }
        Ok(())
    }

    fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (k, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[k].clone());
            out.insert(format!("adam.v.{name}"), self.v[k].clone());
        }
        out
    }

    fn load_state(&mut self, tensors: &std::collections::HashMap<String, Tensor>, step: u64) -> Option<()> {
        for (k, (name, _)) in self.vars.iter().enumerate() {
            self.m[k] = tensors.get(&format!("adam.m.{name}"))?.clone();
            self.v[k] = tensors.get(&format!("adam.v.{name}"))?.clone();
        }
        self.step = step;
        Some(())
    }
}

/// Every variable's values by name (running statistics included), flattened.
fn read_params(varmap: &VarMap) -> candle_core::Result<fused::Params> {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter().map(|(name, var)| Ok((name.clone(), var.flatten_all()?.to_vec1::<f32>()?))).collect()
}

/// Sets the named variables from flattened values.
fn write_params(varmap: &VarMap, values: &fused::Params) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, v) in values {
        if let Some(var) = data.get(name) {
            var.set(&Tensor::from_vec(v.clone(), var.shape().clone(), var.device())?)?;
        }
    }
    Ok(())
}

/// A seed for epoch `epoch` of stream `stream`, independent of everything else.
fn epoch_seed(seed: u64, stream: &str, epoch: usize) -> u64 {
    let digest = Sha256::digest(format!("{seed}/{stream}/{epoch}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn batch_values(data: &Dataset, indices: &[usize]) -> Vec<f32> {
    let size = data.n_frames * data.n_coeffs;
    let mut values = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        values.extend_from_slice(data.clip(i));
    }
    values
}

fn batch_tensor(data: &Dataset, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_vec(batch_values(data, indices), (indices.len(), data.n_frames, data.n_coeffs), device)
}

/// Shift, masks and noise of one standardised clip (T, C), in place.
fn augment_clip(clip: &mut [f32], n_frames: usize, n_coeffs: usize, aug: &Augment, rng: &mut ChaCha8Rng) {
    if aug.time_shift > 0 {
        let max = aug.time_shift.min(n_frames.saturating_sub(1)) as i64;
        let shift = rng.random_range(-max..=max);
        if shift > 0 {
            clip.rotate_right(shift as usize * n_coeffs);
        } else if shift < 0 {
            clip.rotate_left((-shift) as usize * n_coeffs);
        }
    }
    for _ in 0..aug.time_masks {
        let width = rng.random_range(0..=aug.time_mask_width.min(n_frames));
        let start = rng.random_range(0..=n_frames - width);
        clip[start * n_coeffs..(start + width) * n_coeffs].fill(0.0);
    }
    for _ in 0..aug.feature_masks {
        let width = rng.random_range(0..=aug.feature_mask_width.min(n_coeffs));
        let start = rng.random_range(0..=n_coeffs - width);
        for frame in clip.chunks_exact_mut(n_coeffs) {
            frame[start..start + width].fill(0.0);
        }
    }
    if aug.noise_std > 0.0 {
        let normal = Normal::new(0.0f32, aug.noise_std).expect("noise_std validated");
        for v in clip.iter_mut() {
            *v += normal.sample(rng);
        }
    }
}

/// A training batch after augmentation. With mixup, clip `i` is mixed with clip `partner[i]`
/// with weight `lambda` on its own target.
struct AugmentedBatch {
    values: Vec<f32>,
    mixup: Option<(Vec<usize>, f32)>,
}

fn augment_batch(
    mut values: Vec<f32>,
    batch: usize,
    n_frames: usize,
    n_coeffs: usize,
    aug: &Augment,
    rng: &mut ChaCha8Rng,
) -> AugmentedBatch {
    let size = n_frames * n_coeffs;
    for clip in values.chunks_exact_mut(size) {
        augment_clip(clip, n_frames, n_coeffs, aug, rng);
    }
    if aug.mixup_alpha <= 0.0 || batch < 2 {
        return AugmentedBatch { values, mixup: None };
    }
    let beta = Beta::new(aug.mixup_alpha, aug.mixup_alpha).expect("mixup_alpha validated");
    let lambda: f32 = beta.sample(rng);
    // The clip's own target always weighs at least half.
    let lambda = lambda.max(1.0 - lambda);
    let mut partner: Vec<usize> = (0..batch).collect();
    partner.shuffle(rng);
    let source = values.clone();
    for (i, clip) in values.chunks_exact_mut(size).enumerate() {
        let other = &source[partner[i] * size..(partner[i] + 1) * size];
        for (v, o) in clip.iter_mut().zip(other) {
            *v = lambda * *v + (1.0 - lambda) * o;
        }
    }
    AugmentedBatch { values, mixup: Some((partner, lambda)) }
}

/// Softmax probabilities of every clip, in batches, in inference mode.
pub fn predict_proba(network: &Network, data: &Dataset, device: &Device) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(data.len());
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(64) {
        let x = batch_tensor(data, chunk, device)?;
        let logits = network.forward_t(&x, false)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        out.extend(probs);
    }
    Ok(out)
}

/// Mean cross-entropy of the probabilities against the targets.
fn log_loss(probs: &[Vec<f32>], targets: &[u32]) -> f64 {
    let total: f64 = probs.iter().zip(targets).map(|(p, &t)| -(p[t as usize].max(1e-12) as f64).ln()).sum();
    total / targets.len().max(1) as f64
}

fn argmax(p: &[f32]) -> u32 {
    p.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0 as u32
}

/// Loss, and scores, of a dataset.
fn evaluate(
    network: &Network,
    data: &Dataset,
    targets: &[u32],
    n_classes: usize,
    device: &Device,
) -> candle_core::Result<(f64, Scores)> {
    let probs = predict_proba(network, data, device)?;
    let predicted: Vec<u32> = probs.iter().map(|p| argmax(p)).collect();
    Ok((log_loss(&probs, targets), scores(targets, &predicted, n_classes)))
}

/// "balanced" class weights: n / (n_classes_present * count(c)); 0 for absent classes.
fn class_weights(targets: &[u32], n_classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; n_classes];
    for &t in targets {
        counts[t as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts.iter().map(|&c| if c == 0 { 0.0 } else { targets.len() as f32 / (present * c) as f32 }).collect()
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

/// Trains the network. With `out_dir`, writes the checkpoint directory as it goes (best and last
/// epoch, atomically) and, with `resume`, continues from its `last.safetensors`.
pub fn train(
    data: &TrainData,
    config: &ModelConfig,
    device: &Device,
    out_dir: Option<&Path>,
    resume: bool,
    reporter: &dyn EpochReporter,
) -> Result<TrainOutcome> {
    config.validate()?;
    let labels: Vec<String> = ser_features::labels::EMOTIONS.iter().map(|s| s.to_string()).collect();
    let n_classes = labels.len();
    if data.train.is_empty() {
        return Err(Error::Data("the training part is empty".into()));
    }
    if data.val.is_empty() {
        return Err(Error::Data(
            "the validation part is empty: early stopping needs one (set val_fraction or val_speakers)".into(),
        ));
    }
    let train_targets = data.train.targets("train")?;
    let val_targets = data.val.targets("validation")?;
    let normalization = Normalization::fit(data.train);
    let mut train_set = data.train.clone();
    normalization.apply(&mut train_set.features);
    let mut val_set = data.val.clone();
    normalization.apply(&mut val_set.features);

    let ctx = |e: candle_core::Error| Error::Train(e.to_string());
    let (network, varmap) = network::build(config, train_set.n_coeffs, n_classes, device).map_err(ctx)?;
    let mut adam = Adam::new(&varmap, config.learning_rate).map_err(ctx)?;
    let key = run_key(config, &data.provenance);
    let weights = if config.class_weights { Some(class_weights(&train_targets, n_classes)) } else { None };
    let weights_tensor = match &weights {
        Some(w) => Some(Tensor::from_vec(w.clone(), n_classes, device).map_err(ctx)?),
        None => None,
    };

    let mut state = TrainState {
        epochs_done: 0,
        adam_step: 0,
        learning_rate: config.learning_rate,
        best_epoch: 0,
        best_score: f64::NEG_INFINITY,
        best_val_loss: f64::INFINITY,
        epochs_since_best: 0,
        epochs_since_lr_improvement: 0,
        run_key: key.clone(),
        best_metrics: BTreeMap::new(),
    };
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best_weights: BTreeMap<String, Tensor> = BTreeMap::new();

    if let (Some(dir), true) = (out_dir, resume) {
        let state_path = dir.join(checkpoint::TRAIN_STATE_FILE);
        if state_path.is_file() {
            let saved: TrainState = checkpoint::read_json(&state_path)?;
            if saved.run_key != key {
                return Err(Error::Checkpoint {
                    path: state_path,
                    message:
                        "the interrupted run used another config or other data; remove the directory or drop --resume"
                            .into(),
                });
            }
            let last = dir.join(checkpoint::LAST_WEIGHTS_FILE);
            checkpoint::load_into(&varmap, &last, device)?;
            let tensors = candle_core::safetensors::load(&last, device).map_err(|e| Error::candle(&last, e))?;
            adam.load_state(&tensors, saved.adam_step).ok_or_else(|| Error::Checkpoint {
                path: last.clone(),
                message: "optimiser moments are missing".into(),
            })?;
            let best = candle_core::safetensors::load(dir.join(checkpoint::WEIGHTS_FILE), device)
                .map_err(|e| Error::candle(&dir.join(checkpoint::WEIGHTS_FILE), e))?;
            best_weights = best.into_iter().collect();
            history = checkpoint::read_json::<ResumeHistory>(&dir.join(RESUME_HISTORY_FILE))?.epochs;
            history.truncate(saved.epochs_done);
            tracing::info!("resuming after epoch {} (best epoch {})", saved.epochs_done, saved.best_epoch);
            state = saved;
        }
    }
    adam.lr = state.learning_rate;

    let protocol = match config.early_stopping_on {
        StoppingPart::Val => {
            "early stopping and learning-rate schedule on the split's val part; test part unseen".to_string()
        }
        StoppingPart::TestOptimistic => {
            "OPTIMISTIC: early stopping on the test part, as the reference did; test figures are biased upwards"
                .to_string()
        }
    };
    let make_meta = |state: &TrainState, epochs_run: usize| ModelJson {
        format_version: checkpoint::FORMAT_VERSION,
        labels: labels.clone(),
        features_config: data.features_config.clone(),
        features_config_hash: data.features_config.hash(),
        n_frames: train_set.n_frames,
        n_coeffs: train_set.n_coeffs,
        normalization: normalization.clone(),
        model_config: config.clone(),
        seed: config.seed,
        data: data.provenance.clone(),
        protocol: protocol.clone(),
        best_epoch: state.best_epoch,
        epochs_run,
        metrics: state.best_metrics.clone(),
        device: format!("{device:?}"),
        versions: checkpoint::versions(),
    };

    // On CPU, each batch runs the hand-written pass (same maths as the candle graph, a test
    // checks it); elsewhere candle's graph and autograd.
    let fused_pass = matches!(device, Device::Cpu);
    let mut stopped_early = false;
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    for epoch in state.epochs_done..config.max_epochs {
        let started = Instant::now();
        let _span = tracing::info_span!("epoch", epoch = epoch + 1).entered();
        order.sort_unstable();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(config.seed, "shuffle", epoch)));
        network.dropout.reseed(epoch_seed(config.seed, "dropout", epoch));
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        let mut augment_rng = ChaCha8Rng::seed_from_u64(epoch_seed(config.seed, "augment", epoch));
        for batch in order.chunks(config.batch_size) {
            let values = batch_values(&train_set, batch);
            let values = if config.augment.is_off() {
                AugmentedBatch { values, mixup: None }
            } else {
                augment_batch(
                    values,
                    batch.len(),
                    train_set.n_frames,
                    train_set.n_coeffs,
                    &config.augment,
                    &mut augment_rng,
                )
            };
            // What the loss weighs: the clips' own targets, and with mixup their partners' too.
            let own: Vec<u32> = batch.iter().map(|&i| train_targets[i]).collect();
            let terms = match &values.mixup {
                None => vec![(1.0f32, own)],
                Some((partner, lambda)) => {
                    let other: Vec<u32> = partner.iter().map(|&p| train_targets[batch[p]]).collect();
                    vec![(*lambda, own), (1.0 - lambda, other)]
                }
            };
            let (loss_value, predicted) = if fused_pass {
                let shape = fused::BatchShape {
                    batch: batch.len(),
                    frames: train_set.n_frames,
                    coeffs: train_set.n_coeffs,
                    n_classes,
                };
                let params = read_params(&varmap).map_err(ctx)?;
                let loss = fused::LossTerms { terms, class_weights: weights.as_deref() };
                let step = fused::train_step(config, &params, &values.values, shape, &loss, &network.dropout)?;
                let predicted: Vec<u32> = step.logits.chunks_exact(n_classes).map(argmax).collect();
                if step.loss.is_finite() {
                    adam.step_with(&step.grads, params).map_err(ctx)?;
                    write_params(&varmap, &step.running).map_err(ctx)?;
                }
                (step.loss as f64, predicted)
            } else {
                let x = Tensor::from_vec(values.values, (batch.len(), train_set.n_frames, train_set.n_coeffs), device)
                    .map_err(ctx)?;
                let logits = network.forward_t(&x, true).map_err(ctx)?;
                let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1).map_err(ctx)?;
                // Mean (class-weighted) cross-entropy against one target per clip.
                let loss_for = |targets: Vec<u32>| -> candle_core::Result<Tensor> {
                    let y = Tensor::from_vec(targets, batch.len(), device)?;
                    let nll = log_probs.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
                    match &weights_tensor {
                        Some(w) => (nll * w.gather(&y, 0)?)?.mean_all(),
                        None => nll.mean_all(),
                    }
                };
                let mut loss: Option<Tensor> = None;
                for (coef, targets) in terms {
                    let term = (loss_for(targets).map_err(ctx)? * coef as f64).map_err(ctx)?;
                    loss = Some(match loss {
                        None => term,
                        Some(sum) => (sum + term).map_err(ctx)?,
                    });
                }
                let loss = loss.expect("at least one loss term");
                let loss_value = loss.to_scalar::<f32>().map_err(ctx)? as f64;
                if loss_value.is_finite() {
                    adam.backward_step(&loss).map_err(ctx)?;
                }
                (loss_value, logits.argmax(D::Minus1).map_err(ctx)?.to_vec1::<u32>().map_err(ctx)?)
            };
            if !loss_value.is_finite() {
                return Err(Error::Train(format!(
                    "loss became {loss_value} in epoch {}; lower learning_rate",
                    epoch + 1
                )));
            }
            loss_sum += loss_value * batch.len() as f64;
            correct += predicted.iter().zip(batch).filter(|(p, i)| **p == train_targets[**i]).count();
        }
        let (val_loss, val) = evaluate(&network, &val_set, &val_targets, n_classes, device).map_err(ctx)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / train_set.len() as f64,
            train_accuracy: correct as f64 / train_set.len() as f64,
            val_loss,
            val_accuracy: val.accuracy,
            val_macro_f1: val.macro_f1,
            val_uar: val.uar,
            learning_rate: adam.lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        history.push(record.clone());

        let score = monitor_score(config.monitor, val_loss, &val);
        let is_best = score > state.best_score;
        if is_best {
            state.best_score = score;
            state.best_epoch = epoch + 1;
            state.epochs_since_best = 0;
            state.best_metrics = BTreeMap::from([
                ("val_loss".to_string(), val_loss),
                ("val_accuracy".to_string(), val.accuracy),
                ("val_macro_f1".to_string(), val.macro_f1),
                ("val_uar".to_string(), val.uar),
            ]);
            best_weights = checkpoint::varmap_tensors(&varmap)
                .into_iter()
                .map(|(k, t)| t.copy().map(|t| (k, t)))
                .collect::<candle_core::Result<_>>()
                .map_err(ctx)?;
        } else {
            state.epochs_since_best += 1;
        }
        // Reduce on plateau of the validation loss.
        if val_loss < state.best_val_loss - 1e-4 {
            state.best_val_loss = val_loss;
            state.epochs_since_lr_improvement = 0;
        } else {
            state.epochs_since_lr_improvement += 1;
            if state.epochs_since_lr_improvement >= config.lr_patience && adam.lr > config.min_lr {
                adam.lr = (adam.lr * config.lr_factor).max(config.min_lr);
                state.epochs_since_lr_improvement = 0;
                tracing::info!("learning rate reduced to {:.2e}", adam.lr);
            }
        }
        state.epochs_done = epoch + 1;
        state.adam_step = adam.step;
        state.learning_rate = adam.lr;
        reporter.on_epoch(&record, config.max_epochs, is_best);

        if let Some(dir) = out_dir {
            if is_best {
                checkpoint::save_tensors(&dir.join(checkpoint::WEIGHTS_FILE), &best_weights)?;
                checkpoint::write_json(&dir.join(checkpoint::SIDECAR_FILE), &make_meta(&state, epoch + 1))?;
            }
            let mut last = checkpoint::varmap_tensors(&varmap);
            last.extend(adam.state_tensors());
            checkpoint::save_tensors(&dir.join(checkpoint::LAST_WEIGHTS_FILE), &last)?;
            write_history(&dir.join(checkpoint::HISTORY_FILE), &history)?;
            checkpoint::write_json(&dir.join(RESUME_HISTORY_FILE), &ResumeHistory { epochs: history.clone() })?;
            checkpoint::write_json(&dir.join(checkpoint::TRAIN_STATE_FILE), &state)?;
        }
        if reporter.should_stop(&record) {
            tracing::info!("stopped after epoch {} at the caller's request", epoch + 1);
            stopped_early = true;
            break;
        }
        if state.epochs_since_best >= config.patience {
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

    // Restore the best weights.
    {
        let data = varmap.data().lock().expect("varmap lock");
        for (name, var) in data.iter() {
            if let Some(t) = best_weights.get(name) {
                var.set(t).map_err(ctx)?;
            }
        }
    }
    let meta = make_meta(&state, history.len());
    if let Some(dir) = out_dir {
        checkpoint::write_json(&dir.join(checkpoint::SIDECAR_FILE), &meta)?;
    }
    Ok(TrainOutcome {
        best_epoch: state.best_epoch,
        epochs_run: history.len(),
        metrics: state.best_metrics.clone(),
        history,
        meta,
        varmap,
        network,
        stopped_early,
    })
}

/// The epoch history as JSON beside the resume state (history.csv is for people and plots).
pub const RESUME_HISTORY_FILE: &str = "history.json";

#[derive(Debug, Serialize, Deserialize)]
struct ResumeHistory {
    epochs: Vec<EpochRecord>,
}

/// `history.csv`: one row per epoch, written atomically.
pub fn write_history(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut text =
        String::from("epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1,val_uar,learning_rate\n");
    for r in history {
        text.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3e}\n",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            r.val_macro_f1,
            r.val_uar,
            r.learning_rate
        ));
    }
    ser_features::io::write_atomic(path, text.as_bytes()).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(frames: usize, coeffs: usize) -> Vec<f32> {
        (0..frames * coeffs).map(|i| i as f32 + 1.0).collect()
    }

    #[test]
    fn masks_zero_runs_no_wider_than_asked() {
        let (frames, coeffs) = (30, 5);
        let aug = Augment { time_masks: 2, time_mask_width: 4, ..Augment::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let mut c = clip(frames, coeffs);
            augment_clip(&mut c, frames, coeffs, &aug, &mut rng);
            let zero_frames = c.chunks(coeffs).filter(|f| f.iter().all(|v| *v == 0.0)).count();
            assert!(zero_frames <= 8, "{zero_frames} masked frames from 2 masks of at most 4");
            // A frame is masked whole or not at all; nothing else changes.
            for (t, f) in c.chunks(coeffs).enumerate() {
                let whole = f.iter().all(|v| *v == 0.0);
                assert!(whole || f.iter().enumerate().all(|(k, v)| *v == (t * coeffs + k) as f32 + 1.0));
            }
        }
        let aug = Augment { feature_masks: 1, feature_mask_width: 2, ..Augment::default() };
        for _ in 0..50 {
            let mut c = clip(frames, coeffs);
            augment_clip(&mut c, frames, coeffs, &aug, &mut rng);
            let zero_coeffs = (0..coeffs).filter(|&k| (0..frames).all(|t| c[t * coeffs + k] == 0.0)).count();
            assert!(zero_coeffs <= 2);
            assert_eq!(c.iter().filter(|v| **v == 0.0).count(), zero_coeffs * frames);
        }
    }

    #[test]
    fn shift_rotates_whole_frames() {
        let (frames, coeffs) = (12, 3);
        let aug = Augment { time_shift: 3, ..Augment::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let original = clip(frames, coeffs);
            let mut c = original.clone();
            augment_clip(&mut c, frames, coeffs, &aug, &mut rng);
            let shift = (0..frames).find(|&s| {
                let mut r = original.clone();
                r.rotate_right(s * coeffs);
                r == c
            });
            let shift = shift.expect("a rotation by whole frames");
            assert!(shift <= 3 || shift >= frames - 3, "shift {shift} beyond 3 frames");
            seen.insert(shift);
        }
        assert_eq!(seen.len(), 7, "every shift in -3..=3 happens: {seen:?}");
    }

    #[test]
    fn mixup_mixes_with_a_partner_and_keeps_own_weight_at_least_half() {
        let (frames, coeffs, batch) = (4, 2, 6);
        let aug = Augment { mixup_alpha: 0.4, ..Augment::default() };
        let values: Vec<f32> = (0..batch * frames * coeffs).map(|i| (i / (frames * coeffs)) as f32).collect();
        let out = augment_batch(values, batch, frames, coeffs, &aug, &mut ChaCha8Rng::seed_from_u64(3));
        let (partner, lambda) = out.mixup.expect("mixup on");
        assert!((0.5..=1.0).contains(&lambda));
        let mut sorted = partner.clone();
        sorted.sort();
        assert_eq!(sorted, (0..batch).collect::<Vec<_>>(), "partners are a permutation");
        for (i, chunk) in out.values.chunks(frames * coeffs).enumerate() {
            let want = lambda * i as f32 + (1.0 - lambda) * partner[i] as f32;
            assert!(chunk.iter().all(|v| (v - want).abs() < 1e-5));
        }
    }
}
