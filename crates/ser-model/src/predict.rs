//! Prediction: class probabilities of standardised clips from a network and its weights (the CPU
//! forward on the CPU, candle's on other devices), the argmax, a loaded [`Checkpoint`] (one
//! trained network or an ensemble's members, averaged) and a dataset's [`Predictions`].

use std::path::{Path, PathBuf};

use candle_core::{D, Device, Tensor};
use ser_features::FeaturesConfig;

use rayon::prelude::*;

use crate::checkpoint::{EnsembleJson, ModelJson};
use crate::data::Dataset;
use crate::layers::Activations;
use crate::loss::softmax;
use crate::network::Network;
use crate::params::Weights;
use crate::{Error, Result};

/// Clips per batch of the CPU forward. Fixed, so a clip's answer does not depend on the number
/// of threads; batches run in parallel.
pub const CPU_BATCH: usize = 16;
/// Clips per batch on other devices.
pub const DEVICE_BATCH: usize = 64;

/// The index of the largest value (the first of equal ones).
pub fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

/// A network with its weights on a device, ready to predict (uploaded to the device once).
#[derive(Debug)]
pub struct Model {
    pub network: Network,
    pub weights: Weights,
    device: Device,
    /// The weights as tensors on `device`, for candle's forward; `None` on the CPU.
    device_params: Option<Vec<Tensor>>,
}

impl Model {
    pub fn new(network: Network, weights: Weights, device: &Device) -> Result<Model> {
        let device_params = upload(&network, &weights, device)?;
        Ok(Model { network, weights, device: device.clone(), device_params })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Softmax probabilities of `n` standardised clips (row-major (n, T, C)), in inference mode.
    pub fn probabilities(&self, features: &[f32], n: usize) -> Result<Vec<Vec<f32>>> {
        probabilities(&self.network, &self.weights, self.device_params.as_deref(), features, n)
    }
}

/// The weights as tensors on `device` for candle's forward, or `None` on the CPU (whose forward
/// reads [`Weights`] directly).
pub fn upload(network: &Network, weights: &Weights, device: &Device) -> Result<Option<Vec<Tensor>>> {
    if device.is_cpu() {
        return Ok(None);
    }
    let tensors = tensors(network, weights, device)
        .map_err(|e| Error::Predict(format!("uploading the weights to {device:?}: {e}")))?;
    Ok(Some(tensors))
}

/// The weights as candle tensors on `device`, in parameter order (what
/// [`Network::forward_candle`] takes).
pub fn tensors(network: &Network, weights: &Weights, device: &Device) -> candle_core::Result<Vec<Tensor>> {
    network
        .params()
        .iter()
        .zip(weights.values())
        .map(|(spec, values)| Tensor::from_slice(values, spec.dims.as_slice(), device))
        .collect()
}

/// Softmax probabilities of `n` standardised clips with `weights`: on the CPU when `device_params`
/// is `None`, else through candle on the device that holds them.
pub fn probabilities(
    network: &Network,
    weights: &Weights,
    device_params: Option<&[Tensor]>,
    features: &[f32],
    n: usize,
) -> Result<Vec<Vec<f32>>> {
    let shape = network.input();
    if features.len() != n * shape.len() {
        return Err(Error::Predict(format!("{} values are not {n} clips of {shape:?}", features.len())));
    }
    let n_classes = network.n_classes();
    let per_clip = shape.len();
    match device_params {
        None => {
            let batch = |chunk: &[f32]| -> Result<Vec<Vec<f32>>> {
                let x = Activations::new(chunk.len() / per_clip, shape, chunk.to_vec());
                Ok(softmax(&network.infer_cpu(x, weights)?, n_classes))
            };
            // One batch runs on the calling thread: a single clip (a request, a stream's window)
            // is not handed to the pool and back.
            if (1..=CPU_BATCH).contains(&n) {
                return batch(features);
            }
            let batches: Vec<Result<Vec<Vec<f32>>>> = features.par_chunks(CPU_BATCH * per_clip).map(batch).collect();
            Ok(batches.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten().collect())
        }
        Some(params) => {
            let device = params.first().map_or(Device::Cpu, |p| p.device().clone());
            let mut out = Vec::with_capacity(n);
            for chunk in features.chunks(DEVICE_BATCH * per_clip) {
                let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                    let xs = Tensor::from_slice(chunk, shape.dims(chunk.len() / per_clip), &device)?;
                    let logits = network.infer_candle(&xs, params)?;
                    candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()
                };
                out.extend(run().map_err(|e| Error::Predict(e.to_string()))?);
            }
            Ok(out)
        }
    }
}

/// One trained network of a loaded checkpoint: its sidecar (so its own normalisation) and the
/// network with its weights.
#[derive(Debug)]
pub struct Member {
    pub meta: ModelJson,
    pub model: Model,
}

/// Test-time speaker normalisation: clips of one speaker (or one recording) whose speech frames
/// are standardised around that speaker's own mean frame instead of the training mean (each
/// member's spread is kept). It needs no labels, only more than one clip of the speaker.
#[derive(Debug, Clone, Copy)]
pub struct Centring<'a> {
    /// The speaker's mean frame (one value per coefficient), over the speech frames of their
    /// clips ([`MeanFrame`]).
    pub centre: &'a [f32],
    /// Each clip's speech frames: its first so many frames (the rest is padding, left as it is).
    pub speech_frames: &'a [usize],
}

/// The mean frame of speech: a running sum over the first `speech_frames[i]` frames of each clip
/// `i` added (clips of `n_frames` x `n_coeffs`), so a speaker's clips may come in several calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeanFrame {
    sum: Vec<f64>,
    frames: usize,
}

impl MeanFrame {
    pub fn add(&mut self, raw: &[f32], n_frames: usize, n_coeffs: usize, speech_frames: &[usize]) {
        self.sum.resize(n_coeffs, 0.0);
        for (clip, &k) in raw.chunks_exact(n_frames * n_coeffs).zip(speech_frames) {
            for frame in clip[..k.min(n_frames) * n_coeffs].chunks_exact(n_coeffs) {
                self.sum.iter_mut().zip(frame).for_each(|(s, v)| *s += *v as f64);
                self.frames += 1;
            }
        }
    }

    /// The mean frame; `None` before any speech frame.
    pub fn mean(&self) -> Option<Vec<f32>> {
        (self.frames > 0).then(|| self.sum.iter().map(|s| (s / self.frames as f64) as f32).collect())
    }
}

impl Member {
    /// Probabilities of `n` raw clips (row-major (n, T, C)): standardised with this member's
    /// statistics (around the speaker's mean frame with `centring`), then its network.
    pub fn probabilities(&self, raw: &[f32], n: usize, centring: Option<Centring>) -> Result<Vec<Vec<f32>>> {
        let mut features = raw.to_vec();
        let norm = &self.meta.normalization;
        if let Some(Centring { centre, speech_frames }) = centring {
            let (t, c) = (self.meta.n_frames, self.meta.n_coeffs);
            if centre.len() != c || speech_frames.len() != n {
                return Err(Error::Predict(format!(
                    "centring: a centre of {} values and {} clips' frame counts, for {c} coefficients and {n} clips",
                    centre.len(),
                    speech_frames.len()
                )));
            }
            // Moved by (training mean - centre), a speech frame standardises as (x - centre) / std.
            let shift: Vec<f32> = norm.mean.iter().zip(centre).map(|(m, c)| m - c).collect();
            for (clip, &k) in features.chunks_exact_mut(t * c).zip(speech_frames) {
                for frame in clip[..k.min(t) * c].chunks_exact_mut(c) {
                    frame.iter_mut().zip(&shift).for_each(|(v, d)| *v += d);
                }
            }
        }
        norm.apply(&mut features);
        self.model.probabilities(&features, n)
    }
}

/// A loaded checkpoint, ready for inference: a trained one (one member) or an ensemble (several,
/// their probabilities averaged). Every member has the same labels, feature config and input
/// shape (checked when it is read).
#[derive(Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub members: Vec<Member>,
    /// An ensemble's `model.json` as read (its members' sidecars are also each member's
    /// `meta`); `None` for a trained checkpoint.
    pub ensemble: Option<EnsembleJson>,
    /// The SHA-256 of `model.safetensors`, in hex: which weights answer.
    pub weights_sha256: String,
}

impl Checkpoint {
    fn first(&self) -> &ModelJson {
        &self.members[0].meta
    }

    /// Index = class id of the outputs.
    pub fn labels(&self) -> &[String] {
        &self.first().labels
    }

    pub fn features_config(&self) -> &FeaturesConfig {
        &self.first().features_config
    }

    pub fn features_config_hash(&self) -> &str {
        &self.first().features_config_hash
    }

    /// Input shape: frames x coefficients.
    pub fn n_frames(&self) -> usize {
        self.first().n_frames
    }

    pub fn n_coeffs(&self) -> usize {
        self.first().n_coeffs
    }

    /// The protocol in words (an ensemble's says how its members are combined).
    pub fn protocol(&self) -> &str {
        self.ensemble.as_ref().map_or(&self.first().protocol, |e| &e.protocol)
    }

    /// Class probabilities of `n` raw clips (row-major (n, T, C), as the feature table holds
    /// them): each member standardises them its own way; the members' probabilities are averaged.
    pub fn probabilities(&self, raw: &[f32], n: usize) -> Result<Vec<Vec<f32>>> {
        self.probabilities_centred(raw, n, None)
    }

    /// [`Checkpoint::probabilities`], the clips standardised around one speaker's mean frame
    /// with `centring` ([`Centring`]).
    pub fn probabilities_centred(&self, raw: &[f32], n: usize, centring: Option<Centring>) -> Result<Vec<Vec<f32>>> {
        let mut members = self.members.iter();
        let first = members.next().expect("a checkpoint has a member");
        let mut sum = first.probabilities(raw, n, centring)?;
        if self.members.len() == 1 {
            return Ok(sum);
        }
        for member in members {
            for (acc, p) in sum.iter_mut().zip(member.probabilities(raw, n, centring)?) {
                acc.iter_mut().zip(p).for_each(|(a, v)| *a += v);
            }
        }
        let k = self.members.len() as f32;
        sum.iter_mut().flatten().for_each(|v| *v /= k);
        Ok(sum)
    }

    /// Fails unless a feature table was computed with this checkpoint's feature config.
    pub fn check_features(&self, table_path: &Path, config: &FeaturesConfig) -> Result<()> {
        if config.hash() != self.features_config_hash() {
            return Err(Error::Data(format!(
                "{}: feature config hash {} differs from the checkpoint's {} ({}); re-extract with the checkpoint's features_config",
                table_path.display(),
                config.hash(),
                self.features_config_hash(),
                self.dir.display()
            )));
        }
        Ok(())
    }
}

/// Predictions of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub labels: Vec<String>,
    pub clip_ids: Vec<String>,
    pub truth: Vec<Option<String>>,
    pub probabilities: Vec<Vec<f32>>,
    /// Each clip's corpus, when known (the feature table's `corpus`): the predictions file's
    /// `corpus` column.
    pub corpora: Option<Vec<String>>,
}

impl Predictions {
    pub fn predicted(&self, row: usize) -> &str {
        &self.labels[argmax(&self.probabilities[row])]
    }
}

/// Predicts every clip of `data` ([`Checkpoint::probabilities`]).
pub fn predict(checkpoint: &Checkpoint, data: &Dataset) -> Result<Predictions> {
    let (n_frames, n_coeffs) = (checkpoint.n_frames(), checkpoint.n_coeffs());
    if (data.n_frames, data.n_coeffs) != (n_frames, n_coeffs) {
        return Err(Error::Data(format!(
            "clips are {}x{} (frames x coefficients), the checkpoint expects {n_frames}x{n_coeffs}",
            data.n_frames, data.n_coeffs
        )));
    }
    let probabilities = checkpoint.probabilities(&data.features, data.len())?;
    Ok(Predictions {
        labels: checkpoint.labels().to_vec(),
        clip_ids: data.clip_ids.clone(),
        truth: data.labels.iter().map(|l| l.map(|i| data.classes[i as usize].clone())).collect(),
        probabilities,
        corpora: None,
    })
}
