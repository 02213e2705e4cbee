//! The CNN + BiLSTM network:
//!
//! (B, T, C) -> Conv1D(f1, k1, same, ReLU) -> BatchNorm -> MaxPool(2) -> Dropout
//!           -> Conv1D(f2, k2, same, ReLU) -> BatchNorm -> MaxPool(2) -> Dropout
//!           -> BiLSTM(u1, sequence) -> Dropout -> BiLSTM(u2, last state) -> Dropout
//!           -> Dense(d, ReLU) -> Dropout -> Dense(n_classes) (logits; softmax outside).
//!
//! Tensor names follow PyTorch (`conv1.weight` (out, in, k), `bn1.running_mean`,
//! `lstm1.weight_ih_l0_reverse`, `fc1.weight` (out, in)); they are part of the checkpoint format.

use std::sync::Mutex;

use candle_core::{DType, Device, Module, ModuleT, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Linear, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::lstm::BiLstm;

/// Keras's BatchNormalization epsilon (candle's default is 1e-5).
pub const BN_EPS: f64 = 1e-3;
/// Keras's momentum 0.99 in candle's convention (`running * (1 - m) + batch * m`).
pub const BN_MOMENTUM: f64 = 0.01;

/// Dropout with masks from a seeded generator, so training is reproducible on CPU (candle's CPU
/// generator cannot be seeded).
#[derive(Debug)]
pub struct SeededDropout {
    rng: Mutex<ChaCha8Rng>,
}

impl SeededDropout {
    pub fn new(seed: u64) -> SeededDropout {
        SeededDropout { rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)) }
    }

    pub fn reseed(&self, seed: u64) {
        *self.rng.lock().expect("dropout rng") = ChaCha8Rng::seed_from_u64(seed);
    }

    /// The next `n` values of an inverted-dropout mask: 0 with probability `p`, else 1/(1-p).
    /// `None` when `p` is 0 (nothing is drawn). Each value comes from one `u32` of the stream:
    /// dropped when its top 24 bits, as a fraction of 2^24, fall below `p`.
    pub fn mask(&self, n: usize, p: f32) -> Option<Vec<f32>> {
        if p == 0.0 {
            return None;
        }
        let scale = 1.0 / (1.0 - p);
        let threshold = (p as f64 * (1u64 << 24) as f64).ceil() as u32;
        let mut bits = vec![0u32; n];
        self.rng.lock().expect("dropout rng").fill(&mut bits[..]);
        Some(bits.into_iter().map(|u| if (u >> 8) < threshold { 0.0 } else { scale }).collect())
    }

    /// Inverted dropout: zero each value with probability `p`, scale the rest by 1/(1-p).
    pub fn apply(&self, xs: &Tensor, p: f32, train: bool) -> candle_core::Result<Tensor> {
        if !train {
            return Ok(xs.clone());
        }
        match self.mask(xs.elem_count(), p) {
            None => Ok(xs.clone()),
            Some(mask) => xs.mul(&Tensor::from_vec(mask, xs.shape(), xs.device())?),
        }
    }
}

#[derive(Debug)]
pub struct Network {
    conv1: SameConv1d,
    bn1: BatchNorm,
    conv2: SameConv1d,
    bn2: BatchNorm,
    lstm1: BiLstm,
    lstm2: BiLstm,
    fc1: Linear,
    fc2: Linear,
    dropout_conv: f32,
    dropout_lstm: f32,
    dropout_dense: f32,
    pub dropout: SeededDropout,
}

impl Network {
    /// Builds the layers under `vb` for inputs of `n_coeffs` values per frame.
    pub fn new(
        config: &ModelConfig,
        n_coeffs: usize,
        n_classes: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Network> {
        let bn = BatchNormConfig { eps: BN_EPS, remove_mean: true, affine: true, momentum: BN_MOMENTUM };
        let conv1 = SameConv1d::new(n_coeffs, config.conv1_filters, config.conv1_kernel, vb.pp("conv1"))?;
        let bn1 = candle_nn::batch_norm(config.conv1_filters, bn, vb.pp("bn1"))?;
        let conv2 = SameConv1d::new(config.conv1_filters, config.conv2_filters, config.conv2_kernel, vb.pp("conv2"))?;
        let bn2 = candle_nn::batch_norm(config.conv2_filters, bn, vb.pp("bn2"))?;
        let lstm1 = BiLstm::new(config.conv2_filters, config.lstm1_units, vb.pp("lstm1"))?;
        let lstm2 = BiLstm::new(2 * config.lstm1_units, config.lstm2_units, vb.pp("lstm2"))?;
        let fc1 = candle_nn::linear(2 * config.lstm2_units, config.dense_units, vb.pp("fc1"))?;
        let fc2 = candle_nn::linear(config.dense_units, n_classes, vb.pp("fc2"))?;
        Ok(Network {
            conv1,
            bn1,
            conv2,
            bn2,
            lstm1,
            lstm2,
            fc1,
            fc2,
            dropout_conv: config.dropout_conv,
            dropout_lstm: config.dropout_lstm,
            dropout_dense: config.dropout_dense,
            dropout: SeededDropout::new(config.seed),
        })
    }
}

/// Conv1D with "same" padding (odd kernel), computed as im2col + one matmul so that both
/// directions of autograd are matmuls (candle's CPU conv backward is a slow direct loop).
/// Weights as candle/PyTorch: `weight` (out, in, k), `bias` (out).
#[derive(Debug, Clone)]
pub struct SameConv1d {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
}

impl SameConv1d {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<SameConv1d> {
        let bound = 1.0 / ((in_channels * kernel) as f64).sqrt();
        let weight = vb.get_with_hints(
            (out_channels, in_channels, kernel),
            "weight",
            candle_nn::Init::Uniform { lo: -bound, up: bound },
        )?;
        let bias = vb.get_with_hints(out_channels, "bias", candle_nn::Init::Const(0.0))?;
        Ok(SameConv1d { weight, bias, kernel })
    }
}

impl Module for SameConv1d {
    /// (B, C_in, T) -> (B, C_out, T).
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, in_channels, steps) = xs.dims3()?;
        let pad = self.kernel / 2;
        let padded = xs.pad_with_zeros(2, pad, pad)?;
        // cols[j * C_in + c, b * T + t] = padded[b, c, t + j], plus a row of ones for the bias:
        // one 2-D matmul, no broadcast, so the backward pass is matmuls too.
        let mut shifted: Vec<Tensor> =
            (0..self.kernel).map(|j| padded.narrow(2, j, steps)).collect::<candle_core::Result<_>>()?;
        shifted.push(Tensor::ones((batch, 1, steps), xs.dtype(), xs.device())?);
        let cols =
            Tensor::cat(&shifted, 1)?.transpose(0, 1)?.reshape((self.kernel * in_channels + 1, batch * steps))?;
        let out_channels = self.weight.dim(0)?;
        let w = self.weight.permute((0, 2, 1))?.reshape((out_channels, self.kernel * in_channels))?; // [o, j*C_in + c]
        let w = Tensor::cat(&[w, self.bias.reshape((out_channels, 1))?], 1)?;
        w.matmul(&cols)?.reshape((out_channels, batch, steps))?.transpose(0, 1)?.contiguous()
    }
}

/// MaxPool1D(2) on (B, C, T), flooring like Keras: pairs of steps as a trailing axis of 2,
/// then a max over it (candle's max_pool2d and its backward are slow direct loops on CPU).
fn max_pool_time(xs: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, channels, steps) = xs.dims3()?;
    let half = steps / 2;
    xs.narrow(2, 0, 2 * half)?.reshape((batch, channels, half, 2))?.max(3)
}

impl ModuleT for Network {
    /// (B, T, C) standardised features -> (B, n_classes) logits.
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let xs = xs.transpose(1, 2)?.contiguous()?; // (B, C, T)
        let xs = self.conv1.forward(&xs)?.relu()?.apply_t(&self.bn1, train)?;
        let xs = self.dropout.apply(&max_pool_time(&xs)?, self.dropout_conv, train)?;
        let xs = self.conv2.forward(&xs)?.relu()?.apply_t(&self.bn2, train)?;
        let xs = self.dropout.apply(&max_pool_time(&xs)?, self.dropout_conv, train)?;
        let xs = xs.transpose(1, 2)?.contiguous()?; // (B, T/4, f2)
        let xs = self.dropout.apply(&self.lstm1.sequence(&xs)?, self.dropout_lstm, train)?;
        let xs = self.dropout.apply(&self.lstm2.last(&xs)?, self.dropout_lstm, train)?;
        let xs = self.dropout.apply(&self.fc1.forward(&xs)?.relu()?, self.dropout_dense, train)?;
        self.fc2.forward(&xs)
    }
}

/// Overwrites every variable with Keras's initialisers, drawn from a generator seeded by
/// `(seed, tensor name)`: the same seed gives the same weights whatever the variable order.
/// Conv/Dense/LSTM input kernels: Glorot uniform; LSTM recurrent kernels: orthogonal; biases 0
/// except the LSTM forget gate (1); BatchNorm: gamma 1, beta 0, mean 0, variance 1.
pub fn init_weights(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let digest = Sha256::digest(name.as_bytes());
        let name_seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ name_seed);
        let n: usize = dims.iter().product();
        let leaf = name.rsplit('.').next().unwrap_or(name);
        let values: Vec<f32> = if leaf.starts_with("running_var") || (name.starts_with("bn") && leaf == "weight") {
            vec![1.0; n]
        } else if leaf.starts_with("running_mean") || leaf == "bias" {
            vec![0.0; n]
        } else if leaf.starts_with("bias_ih") {
            let hidden = n / 4;
            (0..n).map(|i| if (hidden..2 * hidden).contains(&i) { 1.0 } else { 0.0 }).collect()
        } else if leaf.starts_with("bias_hh") {
            vec![0.0; n]
        } else if leaf.starts_with("weight_hh") {
            orthogonal(dims[0], dims[1], &mut rng)
        } else {
            // (out, in) or (out, in, k): fan_in = in * k, fan_out = out * k.
            let receptive: usize = dims[2..].iter().product();
            let (fan_in, fan_out) = (dims[1] * receptive, dims[0] * receptive);
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            (0..n).map(|_| rng.random_range(-limit..=limit)).collect()
        };
        var.set(&Tensor::from_vec(values, dims.as_slice(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// A (rows, cols) matrix with orthonormal columns (rows >= cols), as Keras's Orthogonal
/// initialiser gives for the transposed recurrent kernel.
fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let normal = |rng: &mut ChaCha8Rng| -> f64 {
        // Box-Muller
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(short);
    while basis.len() < short {
        let mut v: Vec<f64> = (0..tall).map(|_| normal(rng)).collect();
        for _ in 0..2 {
            for b in &basis {
                let proj: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                for (x, y) in v.iter_mut().zip(b) {
                    *x -= proj * y;
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = if rows >= cols { basis[c][r] } else { basis[r][c] } as f32;
        }
    }
    out
}

/// A freshly initialised network and its variables.
pub fn build(
    config: &ModelConfig,
    n_coeffs: usize,
    n_classes: usize,
    device: &Device,
) -> candle_core::Result<(Network, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let network = Network::new(config, n_coeffs, n_classes, vb)?;
    init_weights(&varmap, config.seed)?;
    Ok((network, varmap))
}
