//! Attention pooling over time: a sequence (B, T, F) becomes one vector (B, F), the states
//! weighted by `softmax_t(score . tanh(W h_t + b))` (additive attention, as in attention-pooled
//! SER models). Parameters `{name}.weight` (units, F), `{name}.bias` (units), `{name}.score`
//! (units).

use candle_core::{D, Tensor};

use super::{Activations, Layer, LayerInput, Pass, Saved, Shape, unsave};
use crate::Result;
use crate::graph::{Attr, Graph, transpose};
use crate::linalg::{Threads, column_sums, linear, linear_input_grad, linear_weight_grad};
use crate::params::{Gradients, Init, ParamId, Weights};

#[derive(Debug)]
pub struct AttentionPool {
    weight: ParamId,
    bias: ParamId,
    score: ParamId,
    features: usize,
    units: usize,
}

impl AttentionPool {
    pub fn new(input: &mut LayerInput, name: &str, units: usize) -> Result<AttentionPool> {
        let (_, features) = input.sequence(name)?;
        Ok(AttentionPool {
            weight: input.param(
                format!("{name}.weight"),
                vec![units, features],
                Init::GlorotUniform { fan_in: features, fan_out: units },
            ),
            bias: input.param(format!("{name}.bias"), vec![units], Init::Zeros),
            score: input.param(format!("{name}.score"), vec![units], Init::GlorotUniform { fan_in: units, fan_out: 1 }),
            features,
            units,
        })
    }
}

struct AttentionSaved {
    input: Activations,
    /// tanh(W h + b), (B T, units).
    hidden: Vec<f32>,
    /// The attention weights, (B, T).
    alpha: Vec<f32>,
}

impl Layer for AttentionPool {
    fn output_shape(&self, input: Shape) -> Shape {
        Shape::Vector { features: input.features() }
    }

    fn forward_candle(&self, xs: &Tensor, params: &[Tensor], _pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        let (batch, steps, features) = xs.dims3()?;
        let p = |id: ParamId| &params[id.index()];
        let hidden =
            xs.reshape((batch * steps, features))?.matmul(&p(self.weight).t()?)?.broadcast_add(p(self.bias))?.tanh()?;
        let scores = hidden.matmul(&p(self.score).reshape((self.units, 1))?)?.reshape((batch, steps))?;
        let alpha = candle_nn::ops::softmax(&scores, D::Minus1)?;
        alpha.unsqueeze(2)?.broadcast_mul(xs)?.sum(1)
    }

    fn forward_cpu(&self, x: Activations, weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let (batch, steps, f, u) = (x.batch, x.shape.steps(), self.features, self.units);
        let mut hidden = linear(&x.values, weights.get(self.weight), (batch * steps, u, f), Threads::One);
        let bias = weights.get(self.bias);
        for row in hidden.chunks_exact_mut(u) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = (*v + b).tanh();
            }
        }
        let score = weights.get(self.score);
        let mut alpha: Vec<f32> =
            hidden.chunks_exact(u).map(|row| row.iter().zip(score).map(|(h, s)| h * s).sum()).collect();
        for clip in alpha.chunks_exact_mut(steps) {
            let max = clip.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for a in clip.iter_mut() {
                *a = (*a - max).exp();
                sum += *a;
            }
            clip.iter_mut().for_each(|a| *a /= sum);
        }
        let mut out = vec![0f32; batch * f];
        for (b, o) in out.chunks_exact_mut(f).enumerate() {
            for t in 0..steps {
                let a = alpha[b * steps + t];
                for (o, v) in o.iter_mut().zip(&x.values[(b * steps + t) * f..(b * steps + t + 1) * f]) {
                    *o += a * v;
                }
            }
        }
        let out = Activations::new(batch, self.output_shape(x.shape), out);
        (out, pass.save(|| AttentionSaved { input: x, hidden, alpha }))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        weights: &Weights,
        grads: &mut Gradients,
        _input_grad: bool,
    ) -> Option<Vec<f32>> {
        let AttentionSaved { input, hidden, alpha } = unsave(saved);
        let (batch, steps, f, u) = (input.batch, input.shape.steps(), self.features, self.units);
        let x = &input.values;
        // Through the weighted sum: d x += alpha d_out, d alpha = d_out . x.
        let mut d_x = vec![0f32; x.len()];
        let mut d_alpha = vec![0f32; batch * steps];
        for b in 0..batch {
            let g = &d_out[b * f..(b + 1) * f];
            for t in 0..steps {
                let row = (b * steps + t) * f;
                let a = alpha[b * steps + t];
                let mut dot = 0f32;
                for k in 0..f {
                    d_x[row + k] = a * g[k];
                    dot += g[k] * x[row + k];
                }
                d_alpha[b * steps + t] = dot;
            }
        }
        // Through the softmax over time: d e = alpha (d alpha - sum_t alpha d alpha).
        let mut d_scores = vec![0f32; batch * steps];
        for b in 0..batch {
            let (a, da) = (&alpha[b * steps..(b + 1) * steps], &d_alpha[b * steps..(b + 1) * steps]);
            let mean: f32 = a.iter().zip(da).map(|(a, d)| a * d).sum();
            for t in 0..steps {
                d_scores[b * steps + t] = a[t] * (da[t] - mean);
            }
        }
        // Through e = score . hidden and hidden = tanh(W x + b).
        let score = weights.get(self.score);
        let mut d_score = vec![0f32; u];
        let mut d_pre = vec![0f32; batch * steps * u];
        for ((h, dp), de) in hidden.chunks_exact(u).zip(d_pre.chunks_exact_mut(u)).zip(&d_scores) {
            for k in 0..u {
                d_score[k] += de * h[k];
                dp[k] = de * score[k] * (1.0 - h[k] * h[k]);
            }
        }
        let dims = (batch * steps, u, f);
        grads.set(self.weight, linear_weight_grad(&d_pre, x, dims, Threads::One));
        grads.set(self.bias, column_sums(&d_pre, u));
        grads.set(self.score, d_score);
        for (d, v) in d_x.iter_mut().zip(linear_input_grad(&d_pre, weights.get(self.weight), dims, Threads::One)) {
            *d += v;
        }
        Some(d_x)
    }

    /// `tanh(x W^T + b)`, scores, a softmax over time, and the weighted sum of the states.
    fn export_onnx(&self, graph: &mut Graph, x: &str, _input: Shape, weights: &Weights) -> Result<String> {
        let (f, u) = (self.features, self.units);
        let w_t = graph.constant("attention_weight_t", &[f, u], &transpose(weights.get(self.weight), u, f));
        let b = graph.constant("attention_bias", &[u], weights.get(self.bias));
        let score = graph.constant("attention_score", &[u, 1], weights.get(self.score));
        let projected = graph.node("MatMul", &[x, &w_t], vec![]);
        let shifted = graph.node("Add", &[&projected, &b], vec![]);
        let hidden = graph.node("Tanh", &[&shifted], vec![]);
        let scores = graph.node("MatMul", &[&hidden, &score], vec![]);
        let alpha = graph.node("Softmax", &[&scores], vec![Attr::Int("axis", 1)]);
        let weighted = graph.node("Mul", &[&alpha, x], vec![]);
        let axes = graph.constant_i64("attention_axes", &[1]);
        Ok(graph.node("ReduceSum", &[&weighted, &axes], vec![Attr::Int("keepdims", 0)]))
    }
}
