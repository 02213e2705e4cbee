//! Prediction: class probabilities of standardised clips from a network and its weights (the CPU
//! forward on the CPU, candle's on other devices), the argmax, a loaded [`Checkpoint`] and a
//! dataset's [`Predictions`].

use std::path::{Path, PathBuf};

use candle_core::{D, Device, Tensor};
use ser_features::FeaturesConfig;

use rayon::prelude::*;

use crate::checkpoint::ModelJson;
use crate::data::Dataset;
use crate::layers::{Activations, Pass};
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
            let batches: Vec<Result<Vec<Vec<f32>>>> = features
                .par_chunks(CPU_BATCH * per_clip)
                .map(|chunk| {
                    let x = Activations::new(chunk.len() / per_clip, shape, chunk.to_vec());
                    Ok(softmax(&network.infer_cpu(x, weights)?, n_classes))
                })
                .collect();
            Ok(batches.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten().collect())
        }
        Some(params) => {
            let device = params.first().map_or(Device::Cpu, |p| p.device().clone());
            let mut out = Vec::with_capacity(n);
            for chunk in features.chunks(DEVICE_BATCH * per_clip) {
                let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                    let xs = Tensor::from_slice(chunk, shape.dims(chunk.len() / per_clip), &device)?;
                    let logits = network.forward_candle(&xs, params, &mut Pass::inference())?;
                    candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()
                };
                out.extend(run().map_err(|e| Error::Predict(e.to_string()))?);
            }
            Ok(out)
        }
    }
}

/// A loaded checkpoint: its sidecar and the network with its weights, ready for inference.
#[derive(Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub meta: ModelJson,
    pub model: Model,
}

impl Checkpoint {
    /// Fails unless a feature table was computed with this checkpoint's feature config.
    pub fn check_features(&self, table_path: &Path, config: &FeaturesConfig) -> Result<()> {
        if config.hash() != self.meta.features_config_hash {
            return Err(Error::Data(format!(
                "{}: feature config hash {} differs from the checkpoint's {} ({}); re-extract with the checkpoint's features_config",
                table_path.display(),
                config.hash(),
                self.meta.features_config_hash,
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
}

impl Predictions {
    pub fn predicted(&self, row: usize) -> &str {
        &self.labels[argmax(&self.probabilities[row])]
    }
}

/// Standardises `data` with the checkpoint's statistics and predicts every clip.
pub fn predict(checkpoint: &Checkpoint, data: &Dataset) -> Result<Predictions> {
    let meta = &checkpoint.meta;
    if (data.n_frames, data.n_coeffs) != (meta.n_frames, meta.n_coeffs) {
        return Err(Error::Data(format!(
            "clips are {}x{} (frames x coefficients), the checkpoint expects {}x{}",
            data.n_frames, data.n_coeffs, meta.n_frames, meta.n_coeffs
        )));
    }
    let mut features = data.features.clone();
    meta.normalization.apply(&mut features);
    let probabilities = checkpoint.model.probabilities(&features, data.len())?;
    Ok(Predictions {
        labels: meta.labels.clone(),
        clip_ids: data.clip_ids.clone(),
        truth: data.labels.iter().map(|l| l.map(|i| data.classes[i as usize].clone())).collect(),
        probabilities,
    })
}
