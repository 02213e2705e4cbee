//! One training step of the network on CPU, written out by hand: forward and backward over a
//! batch in plain loops and matrix products, with no autograd graph.
//!
//! candle's autograd builds a few hundred small tensors per batch, allocates and zero-fills a
//! buffer for every gradient it adds up, and computes gradients nobody asked for (the input of
//! the first convolution, every dropout mask); for this network that overhead cost more than
//! the arithmetic. [`crate::network::Network`] stays the definition of the network: inference
//! and other devices use it, and a test checks that this step gives its loss and gradients
//! (same dropout masks, same conventions: ReLU's gradient at 0 is 1, a tie in max pooling
//! passes the gradient to both values).

use std::collections::BTreeMap;

use crate::config::ModelConfig;
use crate::linalg::{Threads, matmul, rows, transposed};
use crate::lstm::{Recurrence, RecurrenceShape, recurrence_backward, recurrence_forward};
use crate::network::{BN_EPS, BN_MOMENTUM, SeededDropout};
use crate::{Error, Result};

/// The network's tensors by name (PyTorch layout, as in the checkpoint), flattened.
pub type Params = BTreeMap<String, Vec<f32>>;

/// What a batch's loss is measured against: the sum of `weight * mean over the batch of the
/// (class-weighted) negative log-likelihood of the targets`, over the terms (one term, or two
/// for mixup).
#[derive(Debug, Clone)]
pub struct LossTerms<'a> {
    pub terms: Vec<(f32, Vec<u32>)>,
    pub class_weights: Option<&'a [f32]>,
}

/// The result of one training step.
#[derive(Debug)]
pub struct StepOutcome {
    pub loss: f32,
    /// (B, n_classes).
    pub logits: Vec<f32>,
    /// The gradient of the loss for every trained tensor, by name.
    pub grads: Params,
    /// The BatchNorm running statistics after this batch, by name.
    pub running: Params,
}

/// The batch's shape: `batch` clips of `frames` x `coeffs` values, and the number of classes.
#[derive(Debug, Clone, Copy)]
pub struct BatchShape {
    pub batch: usize,
    pub frames: usize,
    pub coeffs: usize,
    pub n_classes: usize,
}

fn get<'p>(params: &'p Params, name: &str, len: usize) -> Result<&'p [f32]> {
    let values = params.get(name).ok_or_else(|| Error::Train(format!("tensor {name} is missing")))?;
    if values.len() != len {
        return Err(Error::Train(format!("tensor {name} has {} values, expected {len}", values.len())));
    }
    Ok(values)
}

/// Multiplies `values` by a dropout mask, if there is one.
fn apply_mask(values: &mut [f32], mask: Option<&Vec<f32>>) {
    if let Some(mask) = mask {
        for (v, m) in values.iter_mut().zip(mask) {
            *v *= m;
        }
    }
}

/// Conv1D(same) -> ReLU -> BatchNorm (batch statistics) -> MaxPool(2) -> Dropout, on rows
/// (b, t) of `c_in` values; the activations its backward pass needs.
struct ConvBlock {
    batch: usize,
    steps: usize,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    /// (B T, C_in K): im2col of the input, column `c K + j` = input step `t + j - K / 2`.
    cols: Vec<f32>,
    /// (B T, C_out): before the ReLU.
    z: Vec<f32>,
    /// (B T, C_out): normalised, before scale and shift.
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
    /// (B T, C_out): BatchNorm's output, what the pooling compares.
    y: Vec<f32>,
    /// Dropout mask of the output, (B, T / 2, C_out).
    mask: Option<Vec<f32>>,
}

struct ConvWeights<'p> {
    weight: &'p [f32],
    bias: &'p [f32],
    gamma: &'p [f32],
    beta: &'p [f32],
}

struct ConvGrads {
    d_input: Option<Vec<f32>>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl ConvBlock {
    /// Returns the block and its output (B T/2, C_out); updates the running statistics.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        x: &[f32],
        (batch, steps, c_in): (usize, usize, usize),
        kernel: usize,
        w: &ConvWeights,
        running_mean: &mut [f32],
        running_var: &mut [f32],
        dropout: &SeededDropout,
        p: f32,
    ) -> (ConvBlock, Vec<f32>) {
        let c_out = w.bias.len();
        let ck = c_in * kernel;
        let n = batch * steps;
        let pad = kernel / 2;
        let mut cols = vec![0f32; n * ck];
        for b in 0..batch {
            for t in 0..steps {
                let row = &mut cols[(b * steps + t) * ck..(b * steps + t + 1) * ck];
                for j in 0..kernel {
                    let Some(src) = (t + j).checked_sub(pad).filter(|&s| s < steps) else { continue };
                    let src = &x[(b * steps + src) * c_in..(b * steps + src + 1) * c_in];
                    for (c, v) in src.iter().enumerate() {
                        row[c * kernel + j] = *v;
                    }
                }
            }
        }
        let mut z = vec![0f32; n * c_out];
        matmul((n, c_out, ck), &mut z, rows(c_out), false, &cols, rows(ck), w.weight, transposed(ck), Threads::Pool);
        for row in z.chunks_exact_mut(c_out) {
            for (v, b) in row.iter_mut().zip(w.bias) {
                *v += b;
            }
        }
        // Batch statistics of the ReLU's output, per channel.
        let mut mean = vec![0f64; c_out];
        for row in z.chunks_exact(c_out) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v.max(0.0) as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; c_out];
        for row in z.chunks_exact(c_out) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                let d = v.max(0.0) as f64 - m;
                *s += d * d;
            }
        }
        var.iter_mut().for_each(|v| *v /= n as f64);
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / ((*v + BN_EPS).sqrt() as f32)).collect();
        let unbiased = n as f64 / (n as f64 - 1.0).max(1.0);
        for f in 0..c_out {
            running_mean[f] = (running_mean[f] as f64 * (1.0 - BN_MOMENTUM) + mean[f] * BN_MOMENTUM) as f32;
            running_var[f] = (running_var[f] as f64 * (1.0 - BN_MOMENTUM) + var[f] * BN_MOMENTUM * unbiased) as f32;
        }
        let mut xhat = vec![0f32; n * c_out];
        let mut y = vec![0f32; n * c_out];
        for ((zr, xr), yr) in z.chunks_exact(c_out).zip(xhat.chunks_exact_mut(c_out)).zip(y.chunks_exact_mut(c_out)) {
            for f in 0..c_out {
                let h = (zr[f].max(0.0) - mean[f] as f32) * inv_std[f];
                xr[f] = h;
                yr[f] = w.gamma[f] * h + w.beta[f];
            }
        }
        let half = steps / 2;
        let mut out = vec![0f32; batch * half * c_out];
        for b in 0..batch {
            for t2 in 0..half {
                let (r0, r1) = ((b * steps + 2 * t2) * c_out, (b * steps + 2 * t2 + 1) * c_out);
                let (y0, y1) = (&y[r0..r0 + c_out], &y[r1..r1 + c_out]);
                let o = &mut out[(b * half + t2) * c_out..(b * half + t2 + 1) * c_out];
                for ((o, a), b) in o.iter_mut().zip(y0).zip(y1) {
                    *o = a.max(*b);
                }
            }
        }
        // The mask is drawn in candle's (B, C, T) order and kept in this pass's (B, T, C).
        let mask = dropout.mask(out.len(), p).map(|m| {
            let mut t = vec![0f32; m.len()];
            for b in 0..batch {
                for f in 0..c_out {
                    for t2 in 0..half {
                        t[(b * half + t2) * c_out + f] = m[(b * c_out + f) * half + t2];
                    }
                }
            }
            t
        });
        apply_mask(&mut out, mask.as_ref());
        (ConvBlock { batch, steps, c_in, c_out, kernel, cols, z, xhat, inv_std, y, mask }, out)
    }

    /// Gradients from `d_out` (B T/2, C_out); the input's only when `input_grad`.
    fn backward(&self, d_out: &[f32], w: &ConvWeights, input_grad: bool) -> ConvGrads {
        let (batch, steps, c_out, c_in, kernel) = (self.batch, self.steps, self.c_out, self.c_in, self.kernel);
        let ck = c_in * kernel;
        let n = batch * steps;
        let half = steps / 2;
        let mut d_pooled = d_out.to_vec();
        apply_mask(&mut d_pooled, self.mask.as_ref());
        // The gradient goes to each value equal to the pair's max (both on a tie, as candle's).
        let mut dy = vec![0f32; n * c_out];
        for b in 0..batch {
            for t2 in 0..half {
                let (r0, r1) = ((b * steps + 2 * t2) * c_out, (b * steps + 2 * t2 + 1) * c_out);
                let g = &d_pooled[(b * half + t2) * c_out..(b * half + t2 + 1) * c_out];
                let (y0, y1) = (&self.y[r0..r0 + c_out], &self.y[r1..r1 + c_out]);
                let (d0, d1) = dy[r0..r1 + c_out].split_at_mut(c_out);
                for f in 0..c_out {
                    let max = y0[f].max(y1[f]);
                    d0[f] = if y0[f] == max { g[f] } else { 0.0 };
                    d1[f] = if y1[f] == max { g[f] } else { 0.0 };
                }
            }
        }
        let (mut d_gamma, mut d_beta) = (vec![0f64; c_out], vec![0f64; c_out]);
        for (dr, xr) in dy.chunks_exact(c_out).zip(self.xhat.chunks_exact(c_out)) {
            for f in 0..c_out {
                d_gamma[f] += (dr[f] * xr[f]) as f64;
                d_beta[f] += dr[f] as f64;
            }
        }
        // d relu-out = gamma inv_std / N (N dy - sum(dy) - xhat sum(dy xhat)); then the ReLU
        // (gradient 1 where its input is >= 0, as candle's).
        let scale: Vec<f32> = (0..c_out).map(|f| w.gamma[f] * self.inv_std[f] / n as f32).collect();
        let (sum_dy, sum_dy_xhat): (Vec<f32>, Vec<f32>) =
            d_beta.iter().zip(&d_gamma).map(|(a, b)| (*a as f32, *b as f32)).unzip();
        let mut dz = vec![0f32; n * c_out];
        for ((dzr, dr), (xr, zr)) in dz
            .chunks_exact_mut(c_out)
            .zip(dy.chunks_exact(c_out))
            .zip(self.xhat.chunks_exact(c_out).zip(self.z.chunks_exact(c_out)))
        {
            for f in 0..c_out {
                let d = scale[f] * (n as f32 * dr[f] - sum_dy[f] - xr[f] * sum_dy_xhat[f]);
                dzr[f] = if zr[f] >= 0.0 { d } else { 0.0 };
            }
        }
        let mut d_weight = vec![0f32; c_out * ck];
        matmul(
            (c_out, ck, n),
            &mut d_weight,
            rows(ck),
            false,
            &dz,
            transposed(c_out),
            &self.cols,
            rows(ck),
            Threads::Pool,
        );
        let mut d_bias = vec![0f64; c_out];
        for row in dz.chunks_exact(c_out) {
            for (acc, v) in d_bias.iter_mut().zip(row) {
                *acc += *v as f64;
            }
        }
        let d_input = input_grad.then(|| {
            let mut d_cols = vec![0f32; n * ck];
            matmul((n, ck, c_out), &mut d_cols, rows(ck), false, &dz, rows(c_out), w.weight, rows(ck), Threads::Pool);
            let pad = kernel / 2;
            let mut dx = vec![0f32; n * c_in];
            for b in 0..batch {
                for t in 0..steps {
                    let row = &d_cols[(b * steps + t) * ck..(b * steps + t + 1) * ck];
                    for j in 0..kernel {
                        let Some(src) = (t + j).checked_sub(pad).filter(|&s| s < steps) else { continue };
                        let dst = &mut dx[(b * steps + src) * c_in..(b * steps + src + 1) * c_in];
                        for (c, v) in dst.iter_mut().enumerate() {
                            *v += row[c * kernel + j];
                        }
                    }
                }
            }
            dx
        });
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        ConvGrads { d_input, weight: d_weight, bias: to_f32(d_bias), gamma: to_f32(d_gamma), beta: to_f32(d_beta) }
    }
}

/// One direction of an LSTM layer over rows (b, t) of `in_dim` values.
struct LstmPass {
    shape: RecurrenceShape,
    in_dim: usize,
    saved: Recurrence,
}

struct LstmWeights<'p> {
    w_ih: &'p [f32],
    w_hh: &'p [f32],
    b_ih: &'p [f32],
    b_hh: &'p [f32],
}

impl<'p> LstmWeights<'p> {
    fn get(params: &'p Params, prefix: &str, suffix: &str, in_dim: usize, hidden: usize) -> Result<LstmWeights<'p>> {
        Ok(LstmWeights {
            w_ih: get(params, &format!("{prefix}.weight_ih_l0{suffix}"), 4 * hidden * in_dim)?,
            w_hh: get(params, &format!("{prefix}.weight_hh_l0{suffix}"), 4 * hidden * hidden)?,
            b_ih: get(params, &format!("{prefix}.bias_ih_l0{suffix}"), 4 * hidden)?,
            b_hh: get(params, &format!("{prefix}.bias_hh_l0{suffix}"), 4 * hidden)?,
        })
    }
}

impl LstmPass {
    fn forward(x: &[f32], shape: RecurrenceShape, in_dim: usize, w: &LstmWeights) -> LstmPass {
        let n = shape.batch * shape.steps;
        let four_h = 4 * shape.hidden;
        let mut projected = vec![0f32; n * four_h];
        matmul(
            (n, four_h, in_dim),
            &mut projected,
            rows(four_h),
            false,
            x,
            rows(in_dim),
            w.w_ih,
            transposed(in_dim),
            Threads::One,
        );
        let bias: Vec<f32> = w.b_ih.iter().zip(w.b_hh).map(|(a, b)| a + b).collect();
        let saved = recurrence_forward(shape, &projected, w.w_hh, &bias);
        LstmPass { shape, in_dim, saved }
    }

    /// The input's gradient, and the weights' gradients named with `prefix` and `suffix`.
    fn backward(&self, x: &[f32], d_h: &[f32], w: &LstmWeights, names: (&str, &str)) -> (Vec<f32>, Params) {
        let n = self.shape.batch * self.shape.steps;
        let four_h = 4 * self.shape.hidden;
        let in_dim = self.in_dim;
        let (d_projected, d_w_hh, d_bias) = recurrence_backward(self.shape, &self.saved, w.w_hh, d_h);
        let mut d_w_ih = vec![0f32; four_h * in_dim];
        matmul(
            (four_h, in_dim, n),
            &mut d_w_ih,
            rows(in_dim),
            false,
            &d_projected,
            transposed(four_h),
            x,
            rows(in_dim),
            Threads::One,
        );
        let mut d_x = vec![0f32; n * in_dim];
        matmul(
            (n, in_dim, four_h),
            &mut d_x,
            rows(in_dim),
            false,
            &d_projected,
            rows(four_h),
            w.w_ih,
            rows(in_dim),
            Threads::One,
        );
        let (prefix, suffix) = names;
        let mut grads = Params::new();
        grads.insert(format!("{prefix}.weight_ih_l0{suffix}"), d_w_ih);
        grads.insert(format!("{prefix}.weight_hh_l0{suffix}"), d_w_hh);
        grads.insert(format!("{prefix}.bias_ih_l0{suffix}"), d_bias.clone());
        grads.insert(format!("{prefix}.bias_hh_l0{suffix}"), d_bias);
        (d_x, grads)
    }
}

/// Runs the two directions of a layer at once (they are independent); the same results on
/// one thread or two.
fn both<T: Send>(a: impl FnOnce() -> T + Send, b: impl FnOnce() -> T + Send) -> [T; 2] {
    let (a, b) = rayon::join(a, b);
    [a, b]
}

/// Both directions' backward passes at once: the input's gradient (their sum, forward first)
/// and the weights' gradients added to `grads`.
fn bi_backward(
    passes: &[LstmPass; 2],
    x: &[f32],
    [d_forward, d_reverse]: [Vec<f32>; 2],
    [w_forward, w_reverse]: [&LstmWeights; 2],
    prefix: &str,
    grads: &mut Params,
) -> Vec<f32> {
    let [(mut d_x, g_forward), (d_x_reverse, g_reverse)] = both(
        || passes[0].backward(x, &d_forward, w_forward, (prefix, "")),
        || passes[1].backward(x, &d_reverse, w_reverse, (prefix, "_reverse")),
    );
    for (a, v) in d_x.iter_mut().zip(&d_x_reverse) {
        *a += v;
    }
    grads.extend(g_forward.into_iter().chain(g_reverse));
    d_x
}

/// `x (B, in) W^T + b` for a Linear layer's `W (out, in)`.
fn dense(x: &[f32], batch: usize, weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (out_dim, in_dim) = (bias.len(), weight.len() / bias.len());
    let mut y = vec![0f32; batch * out_dim];
    matmul(
        (batch, out_dim, in_dim),
        &mut y,
        rows(out_dim),
        false,
        x,
        rows(in_dim),
        weight,
        transposed(in_dim),
        Threads::One,
    );
    for row in y.chunks_exact_mut(out_dim) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
    y
}

/// Gradients of a Linear layer from `d_y (B, out)`: (d_x, d_weight, d_bias).
fn dense_backward(
    x: &[f32],
    d_y: &[f32],
    batch: usize,
    weight: &[f32],
    out_dim: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let in_dim = weight.len() / out_dim;
    let mut d_w = vec![0f32; out_dim * in_dim];
    matmul(
        (out_dim, in_dim, batch),
        &mut d_w,
        rows(in_dim),
        false,
        d_y,
        transposed(out_dim),
        x,
        rows(in_dim),
        Threads::One,
    );
    let mut d_b = vec![0f32; out_dim];
    for row in d_y.chunks_exact(out_dim) {
        for (acc, v) in d_b.iter_mut().zip(row) {
            *acc += v;
        }
    }
    let mut d_x = vec![0f32; batch * in_dim];
    matmul(
        (batch, in_dim, out_dim),
        &mut d_x,
        rows(in_dim),
        false,
        d_y,
        rows(out_dim),
        weight,
        rows(in_dim),
        Threads::One,
    );
    (d_x, d_w, d_b)
}

/// Loss and its gradient for the logits (B, n_classes).
fn loss_and_gradient(logits: &[f32], n_classes: usize, loss: &LossTerms) -> (f32, Vec<f32>) {
    let batch = logits.len() / n_classes;
    let mut probs = vec![0f32; logits.len()];
    let mut log_z = vec![0f32; batch];
    for ((row, p), lz) in logits.chunks_exact(n_classes).zip(probs.chunks_exact_mut(n_classes)).zip(&mut log_z) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        *lz = max + sum.ln();
        for (pv, v) in p.iter_mut().zip(row) {
            *pv = (v - *lz).exp();
        }
    }
    let mut total = 0f32;
    let mut d_logits = vec![0f32; logits.len()];
    for (coef, targets) in &loss.terms {
        let mut term = 0f32;
        for (i, &y) in targets.iter().enumerate() {
            let w = loss.class_weights.map_or(1.0, |cw| cw[y as usize]);
            term += w * (log_z[i] - logits[i * n_classes + y as usize]);
            let scale = coef * w / batch as f32;
            for c in 0..n_classes {
                let indicator = if c == y as usize { 1.0 } else { 0.0 };
                d_logits[i * n_classes + c] += scale * (probs[i * n_classes + c] - indicator);
            }
        }
        total += coef * term / batch as f32;
    }
    (total, d_logits)
}

/// One training step: the loss of the batch `x` (B, T, C, standardised), its logits, the
/// gradient of every trained tensor, and the updated BatchNorm running statistics. Draws the
/// dropout masks from `dropout` in the same order as [`crate::network::Network`]'s forward pass.
pub fn train_step(
    config: &ModelConfig,
    params: &Params,
    x: &[f32],
    shape: BatchShape,
    loss: &LossTerms,
    dropout: &SeededDropout,
) -> Result<StepOutcome> {
    let BatchShape { batch, frames, coeffs, n_classes } = shape;
    if x.len() != batch * frames * coeffs {
        return Err(Error::Train(format!("batch has {} values, expected {batch} x {frames} x {coeffs}", x.len())));
    }
    let (f1, k1, f2, k2) = (config.conv1_filters, config.conv1_kernel, config.conv2_filters, config.conv2_kernel);
    let (h1, h2, dense_units) = (config.lstm1_units, config.lstm2_units, config.dense_units);
    let (t2, t4) = (frames / 2, frames / 4);
    if t4 == 0 {
        return Err(Error::Train(format!("{frames} frames are too few for two poolings")));
    }
    let conv_weights = |i: usize, c_in: usize, c_out: usize, k: usize| -> Result<ConvWeights> {
        Ok(ConvWeights {
            weight: get(params, &format!("conv{i}.weight"), c_out * c_in * k)?,
            bias: get(params, &format!("conv{i}.bias"), c_out)?,
            gamma: get(params, &format!("bn{i}.weight"), c_out)?,
            beta: get(params, &format!("bn{i}.bias"), c_out)?,
        })
    };
    let w1 = conv_weights(1, coeffs, f1, k1)?;
    let w2 = conv_weights(2, f1, f2, k2)?;
    let l1f = LstmWeights::get(params, "lstm1", "", f2, h1)?;
    let l1r = LstmWeights::get(params, "lstm1", "_reverse", f2, h1)?;
    let l2f = LstmWeights::get(params, "lstm2", "", 2 * h1, h2)?;
    let l2r = LstmWeights::get(params, "lstm2", "_reverse", 2 * h1, h2)?;
    let fc1_w = get(params, "fc1.weight", dense_units * 2 * h2)?;
    let fc1_b = get(params, "fc1.bias", dense_units)?;
    let fc2_w = get(params, "fc2.weight", n_classes * dense_units)?;
    let fc2_b = get(params, "fc2.bias", n_classes)?;
    let mut running = Params::new();
    for i in [1, 2] {
        let c = if i == 1 { f1 } else { f2 };
        for stat in ["running_mean", "running_var"] {
            let name = format!("bn{i}.{stat}");
            running.insert(name.clone(), get(params, &name, c)?.to_vec());
        }
    }
    let mut take = |name: &str| running.remove(name).expect("inserted above");
    let (mut rm1, mut rv1, mut rm2, mut rv2) =
        (take("bn1.running_mean"), take("bn1.running_var"), take("bn2.running_mean"), take("bn2.running_var"));

    // Forward.
    let (block1, out1) =
        ConvBlock::forward(x, (batch, frames, coeffs), k1, &w1, &mut rm1, &mut rv1, dropout, config.dropout_conv);
    let (block2, out2) =
        ConvBlock::forward(&out1, (batch, t2, f1), k2, &w2, &mut rm2, &mut rv2, dropout, config.dropout_conv);
    let seq = |hidden: usize, reverse: bool| RecurrenceShape { batch, steps: t4, hidden, reverse };
    let lstm1 = both(
        || LstmPass::forward(&out2, seq(h1, false), f2, &l1f),
        || LstmPass::forward(&out2, seq(h1, true), f2, &l1r),
    );
    let mut y1 = vec![0f32; batch * t4 * 2 * h1];
    for (row, out) in y1.chunks_exact_mut(2 * h1).enumerate() {
        out[..h1].copy_from_slice(&lstm1[0].saved.hiddens[row * h1..(row + 1) * h1]);
        out[h1..].copy_from_slice(&lstm1[1].saved.hiddens[row * h1..(row + 1) * h1]);
    }
    let mask_l1 = dropout.mask(y1.len(), config.dropout_lstm);
    apply_mask(&mut y1, mask_l1.as_ref());
    let lstm2 = both(
        || LstmPass::forward(&y1, seq(h2, false), 2 * h1, &l2f),
        || LstmPass::forward(&y1, seq(h2, true), 2 * h1, &l2r),
    );
    // The forward direction's last state and the reverse direction's state at step 0.
    let last_row = |b: usize, reverse: bool| b * t4 + if reverse { 0 } else { t4 - 1 };
    let mut last = vec![0f32; batch * 2 * h2];
    for (b, out) in last.chunks_exact_mut(2 * h2).enumerate() {
        let (rf, rr) = (last_row(b, false), last_row(b, true));
        out[..h2].copy_from_slice(&lstm2[0].saved.hiddens[rf * h2..(rf + 1) * h2]);
        out[h2..].copy_from_slice(&lstm2[1].saved.hiddens[rr * h2..(rr + 1) * h2]);
    }
    let mask_l2 = dropout.mask(last.len(), config.dropout_lstm);
    apply_mask(&mut last, mask_l2.as_ref());
    let pre1 = dense(&last, batch, fc1_w, fc1_b);
    let mut hidden1: Vec<f32> = pre1.iter().map(|v| v.max(0.0)).collect();
    let mask_fc = dropout.mask(hidden1.len(), config.dropout_dense);
    apply_mask(&mut hidden1, mask_fc.as_ref());
    let logits = dense(&hidden1, batch, fc2_w, fc2_b);

    // Backward.
    let (loss_value, d_logits) = loss_and_gradient(&logits, n_classes, loss);
    let mut grads = Params::new();
    let (d_hidden1, d_fc2_w, d_fc2_b) = dense_backward(&hidden1, &d_logits, batch, fc2_w, n_classes);
    grads.insert("fc2.weight".into(), d_fc2_w);
    grads.insert("fc2.bias".into(), d_fc2_b);
    let mut d_pre1 = d_hidden1;
    apply_mask(&mut d_pre1, mask_fc.as_ref());
    for (d, p) in d_pre1.iter_mut().zip(&pre1) {
        if *p < 0.0 {
            *d = 0.0;
        }
    }
    let (mut d_last, d_fc1_w, d_fc1_b) = dense_backward(&last, &d_pre1, batch, fc1_w, dense_units);
    grads.insert("fc1.weight".into(), d_fc1_w);
    grads.insert("fc1.bias".into(), d_fc1_b);
    apply_mask(&mut d_last, mask_l2.as_ref());
    let d_h2 = |dir: usize| {
        let mut d_h = vec![0f32; batch * t4 * h2];
        for b in 0..batch {
            let r = last_row(b, dir == 1);
            d_h[r * h2..(r + 1) * h2].copy_from_slice(&d_last[b * 2 * h2 + dir * h2..b * 2 * h2 + (dir + 1) * h2]);
        }
        d_h
    };
    let mut d_y1 = bi_backward(&lstm2, &y1, [d_h2(0), d_h2(1)], [&l2f, &l2r], "lstm2", &mut grads);
    apply_mask(&mut d_y1, mask_l1.as_ref());
    let d_h1 = |dir: usize| {
        let mut d_h = vec![0f32; batch * t4 * h1];
        for (row, d) in d_h.chunks_exact_mut(h1).enumerate() {
            d.copy_from_slice(&d_y1[row * 2 * h1 + dir * h1..row * 2 * h1 + (dir + 1) * h1]);
        }
        d_h
    };
    let d_out2 = bi_backward(&lstm1, &out2, [d_h1(0), d_h1(1)], [&l1f, &l1r], "lstm1", &mut grads);
    let g2 = block2.backward(&d_out2, &w2, true);
    let g1 = block1.backward(g2.d_input.as_deref().expect("asked for"), &w1, false);
    for (i, g) in [(1, g1), (2, g2)] {
        grads.insert(format!("conv{i}.weight"), g.weight);
        grads.insert(format!("conv{i}.bias"), g.bias);
        grads.insert(format!("bn{i}.weight"), g.gamma);
        grads.insert(format!("bn{i}.bias"), g.beta);
    }
    running.insert("bn1.running_mean".into(), rm1);
    running.insert("bn1.running_var".into(), rv1);
    running.insert("bn2.running_mean".into(), rm2);
    running.insert("bn2.running_var".into(), rv2);
    Ok(StepOutcome { loss: loss_value, logits, grads, running })
}
