//! BatchNorm over the feature axis, with statistics over every row of the batch (all clips and
//! steps), as Keras's BatchNormalization on (B, T, F): `weight` (gamma), `bias` (beta), and the
//! state `running_mean`, `running_var`. Training normalises with the batch's biased variance and
//! moves the running statistics towards the batch's (the variance unbiased), as candle does.

use candle_core::Tensor;

use super::{Activations, Layer, LayerInput, Pass, Saved, Shape, unsave};
use crate::Result;
use crate::graph::Graph;
use crate::params::{Gradients, Init, ParamId, Weights};

/// Keras's BatchNormalization epsilon (candle's default is 1e-5).
pub const BN_EPS: f64 = 1e-3;
/// Keras's momentum 0.99 in candle's convention (`running * (1 - m) + batch * m`).
pub const BN_MOMENTUM: f64 = 0.01;

#[derive(Debug)]
pub struct BatchNorm {
    gamma: ParamId,
    beta: ParamId,
    running_mean: ParamId,
    running_var: ParamId,
    features: usize,
}

impl BatchNorm {
    /// `{name}.weight`, `{name}.bias`, `{name}.running_mean`, `{name}.running_var`.
    pub fn new(input: &mut LayerInput, name: &str) -> Result<BatchNorm> {
        let features = input.shape().features();
        let dims = vec![features];
        Ok(BatchNorm {
            gamma: input.param(format!("{name}.weight"), dims.clone(), Init::Ones),
            beta: input.param(format!("{name}.bias"), dims.clone(), Init::Zeros),
            running_mean: input.state(format!("{name}.running_mean"), dims.clone(), Init::Zeros),
            running_var: input.state(format!("{name}.running_var"), dims, Init::Ones),
            features,
        })
    }
}

struct NormSaved {
    /// Normalised input, before scale and shift.
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Layer for BatchNorm {
    fn output_shape(&self, input: Shape) -> Shape {
        input
    }

    fn forward_candle(&self, xs: &Tensor, params: &[Tensor], pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        let dims = xs.dims().to_vec();
        let rows = xs.elem_count() / self.features;
        let x = xs.reshape((rows, self.features))?;
        let gamma = params[self.gamma.index()].reshape((1, self.features))?;
        let beta = params[self.beta.index()].reshape((1, self.features))?;
        let running_mean = &params[self.running_mean.index()];
        let running_var = &params[self.running_var.index()];
        let normalised = if pass.is_training() {
            let mean = x.mean_keepdim(0)?;
            let centred = x.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(0)?;
            let unbiased = rows as f64 / (rows as f64 - 1.0).max(1.0);
            let new_mean = ((running_mean * (1.0 - BN_MOMENTUM))? + (mean.flatten_all()?.detach() * BN_MOMENTUM)?)?;
            let new_var =
                ((running_var * (1.0 - BN_MOMENTUM))? + (var.flatten_all()?.detach() * (BN_MOMENTUM * unbiased))?)?;
            pass.update_state(self.running_mean, new_mean);
            pass.update_state(self.running_var, new_var);
            centred.broadcast_div(&(var + BN_EPS)?.sqrt()?)?
        } else {
            let mean = running_mean.reshape((1, self.features))?;
            let std = (running_var.reshape((1, self.features))? + BN_EPS)?.sqrt()?;
            x.broadcast_sub(&mean)?.broadcast_div(&std)?
        };
        normalised.broadcast_mul(&gamma)?.broadcast_add(&beta)?.reshape(dims)
    }

    fn forward_cpu(&self, x: Activations, weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let c = self.features;
        let n = x.rows();
        let (gamma, beta) = (weights.get(self.gamma), weights.get(self.beta));
        let (mean, inv_std): (Vec<f32>, Vec<f32>) = if pass.is_training() {
            let mut mean = vec![0f64; c];
            for row in x.values.chunks_exact(c) {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += *v as f64;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
            let mut var = vec![0f64; c];
            for row in x.values.chunks_exact(c) {
                for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                    let d = *v as f64 - m;
                    *s += d * d;
                }
            }
            var.iter_mut().for_each(|v| *v /= n as f64);
            let unbiased = n as f64 / (n as f64 - 1.0).max(1.0);
            let moved = |running: &[f32], batch: &[f64], scale: f64| -> Vec<f32> {
                running
                    .iter()
                    .zip(batch)
                    .map(|(r, b)| (*r as f64 * (1.0 - BN_MOMENTUM) + b * BN_MOMENTUM * scale) as f32)
                    .collect()
            };
            pass.update_state(self.running_mean, moved(weights.get(self.running_mean), &mean, 1.0));
            pass.update_state(self.running_var, moved(weights.get(self.running_var), &var, unbiased));
            (
                mean.iter().map(|m| *m as f32).collect(),
                var.iter().map(|v| 1.0 / ((*v + BN_EPS).sqrt() as f32)).collect(),
            )
        } else {
            let running_var = weights.get(self.running_var);
            (
                weights.get(self.running_mean).to_vec(),
                running_var.iter().map(|v| 1.0 / ((*v as f64 + BN_EPS).sqrt() as f32)).collect(),
            )
        };
        let mut xhat = x.values;
        let mut y = vec![0f32; xhat.len()];
        for (xr, yr) in xhat.chunks_exact_mut(c).zip(y.chunks_exact_mut(c)) {
            for f in 0..c {
                let h = (xr[f] - mean[f]) * inv_std[f];
                xr[f] = h;
                yr[f] = gamma[f] * h + beta[f];
            }
        }
        let out = Activations::new(x.batch, x.shape, y);
        (out, pass.save(|| NormSaved { xhat, inv_std }))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        weights: &Weights,
        grads: &mut Gradients,
        _input_grad: bool,
    ) -> Option<Vec<f32>> {
        let NormSaved { xhat, inv_std } = unsave(saved);
        let c = self.features;
        let n = xhat.len() / c;
        let (mut d_gamma, mut d_beta) = (vec![0f64; c], vec![0f64; c]);
        for (dr, xr) in d_out.chunks_exact(c).zip(xhat.chunks_exact(c)) {
            for f in 0..c {
                d_gamma[f] += (dr[f] * xr[f]) as f64;
                d_beta[f] += dr[f] as f64;
            }
        }
        // d x = gamma inv_std / N (N dy - sum(dy) - xhat sum(dy xhat)).
        let gamma = weights.get(self.gamma);
        let scale: Vec<f32> = (0..c).map(|f| gamma[f] * inv_std[f] / n as f32).collect();
        let (sum_dy, sum_dy_xhat): (Vec<f32>, Vec<f32>) =
            d_beta.iter().zip(&d_gamma).map(|(a, b)| (*a as f32, *b as f32)).unzip();
        let mut dx = vec![0f32; d_out.len()];
        for ((dxr, dr), xr) in dx.chunks_exact_mut(c).zip(d_out.chunks_exact(c)).zip(xhat.chunks_exact(c)) {
            for f in 0..c {
                dxr[f] = scale[f] * (n as f32 * dr[f] - sum_dy[f] - xr[f] * sum_dy_xhat[f]);
            }
        }
        grads.set(self.gamma, sum_dy_xhat);
        grads.set(self.beta, sum_dy);
        Some(dx)
    }

    /// Inference with the running statistics, in the CPU forward's order: `(x - mean) *
    /// inv_std * gamma + beta` over the last axis.
    fn export_onnx(&self, graph: &mut Graph, x: &str, _input: Shape, weights: &Weights) -> Result<String> {
        let c = self.features;
        let inv_std: Vec<f32> =
            weights.get(self.running_var).iter().map(|v| 1.0 / ((*v as f64 + BN_EPS).sqrt() as f32)).collect();
        let mean = graph.constant("bn_running_mean", &[c], weights.get(self.running_mean));
        let inv_std = graph.constant("bn_inv_std", &[c], &inv_std);
        let gamma = graph.constant("bn_weight", &[c], weights.get(self.gamma));
        let beta = graph.constant("bn_bias", &[c], weights.get(self.beta));
        let centred = graph.node("Sub", &[x, &mean], vec![]);
        let normalised = graph.node("Mul", &[&centred, &inv_std], vec![]);
        let scaled = graph.node("Mul", &[&normalised, &gamma], vec![]);
        Ok(graph.node("Add", &[&scaled, &beta], vec![]))
    }
}
