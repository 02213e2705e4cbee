//! A bidirectional LSTM in PyTorch's layout: per direction `weight_ih_l0` (4H, in),
//! `weight_hh_l0` (4H, H), `bias_ih_l0` and `bias_hh_l0` (4H), the reverse direction's names
//! ending in `_reverse`. The input projections of all steps are one matrix product; the
//! recurrence is [`super::recurrence`]. The two directions run at once (they are independent),
//! with the same results on one thread or two.

use candle_core::{Device, Tensor};

use super::recurrence::{
    LstmRecurrence, Recurrence, RecurrenceShape, recurrence_backward, recurrence_forward, recurrence_stepwise,
};
use super::{Activations, Layer, LayerInput, Pass, Saved, Shape, unsave};
use crate::Result;
use crate::graph::{Attr, Graph};
use crate::linalg::{Threads, linear, linear_input_grad, linear_weight_grad};
use crate::params::{Gradients, Init, ParamId, Weights};

/// One direction's parameter gradients.
type DirectionGrads = Vec<(ParamId, Vec<f32>)>;

/// What the layer gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LstmOutput {
    /// Every step: (B, T, 2H), forward then reverse states.
    Sequence,
    /// The forward direction's last state and the reverse direction's state after reading back
    /// to step 0: (B, 2H) (Keras `Bidirectional(LSTM(return_sequences=False))`).
    Last,
}

/// One direction's parameters.
#[derive(Debug, Clone, Copy)]
struct Direction {
    w_ih: ParamId,
    w_hh: ParamId,
    b_ih: ParamId,
    b_hh: ParamId,
    reverse: bool,
}

#[derive(Debug)]
pub struct BiLstm {
    directions: [Direction; 2],
    in_dim: usize,
    hidden: usize,
    output: LstmOutput,
}

impl BiLstm {
    pub fn new(input: &mut LayerInput, name: &str, hidden: usize, output: LstmOutput) -> Result<BiLstm> {
        let (_, in_dim) = input.sequence(name)?;
        let mut direction = |suffix: &str, reverse: bool| Direction {
            w_ih: input.param(
                format!("{name}.weight_ih_l0{suffix}"),
                vec![4 * hidden, in_dim],
                Init::GlorotUniform { fan_in: in_dim, fan_out: 4 * hidden },
            ),
            w_hh: input.param(format!("{name}.weight_hh_l0{suffix}"), vec![4 * hidden, hidden], Init::Orthogonal),
            b_ih: input.param(format!("{name}.bias_ih_l0{suffix}"), vec![4 * hidden], Init::ForgetGateOnes),
            b_hh: input.param(format!("{name}.bias_hh_l0{suffix}"), vec![4 * hidden], Init::Zeros),
            reverse,
        };
        let directions = [direction("", false), direction("_reverse", true)];
        Ok(BiLstm { directions, in_dim, hidden, output })
    }

    /// The row (b, t) whose state the `Last` output takes for `direction`.
    fn last_row(&self, direction: &Direction, b: usize, steps: usize) -> usize {
        b * steps + if direction.reverse { 0 } else { steps - 1 }
    }

    fn forward_direction(
        &self,
        direction: &Direction,
        x: &Activations,
        weights: &Weights,
    ) -> (RecurrenceShape, Recurrence) {
        let (batch, steps) = (x.batch, x.shape.steps());
        let four_h = 4 * self.hidden;
        let projected =
            linear(&x.values, weights.get(direction.w_ih), (batch * steps, four_h, self.in_dim), Threads::One);
        let bias: Vec<f32> =
            weights.get(direction.b_ih).iter().zip(weights.get(direction.b_hh)).map(|(a, b)| a + b).collect();
        let shape = RecurrenceShape { batch, steps, hidden: self.hidden, reverse: direction.reverse };
        (shape, recurrence_forward(shape, &projected, weights.get(direction.w_hh), &bias))
    }

    /// Sets the direction's gradients from `d_h` (B, T, H); returns the input's gradient.
    fn backward_direction(
        &self,
        direction: &Direction,
        (shape, saved): &(RecurrenceShape, Recurrence),
        x: &[f32],
        d_h: &[f32],
        weights: &Weights,
        input_grad: bool,
    ) -> (DirectionGrads, Option<Vec<f32>>) {
        let dims = (shape.batch * shape.steps, 4 * self.hidden, self.in_dim);
        let (d_projected, d_w_hh, d_bias) = recurrence_backward(*shape, saved, weights.get(direction.w_hh), d_h);
        let d_w_ih = linear_weight_grad(&d_projected, x, dims, Threads::One);
        let d_x = input_grad.then(|| linear_input_grad(&d_projected, weights.get(direction.w_ih), dims, Threads::One));
        let grads = vec![
            (direction.w_ih, d_w_ih),
            (direction.w_hh, d_w_hh),
            (direction.b_ih, d_bias.clone()),
            (direction.b_hh, d_bias),
        ];
        (grads, d_x)
    }
}

struct LstmSaved {
    input: Activations,
    directions: [(RecurrenceShape, Recurrence); 2],
}

impl Layer for BiLstm {
    fn output_shape(&self, input: Shape) -> Shape {
        match self.output {
            LstmOutput::Sequence => Shape::Sequence { steps: input.steps(), features: 2 * self.hidden },
            LstmOutput::Last => Shape::Vector { features: 2 * self.hidden },
        }
    }

    fn forward_candle(&self, xs: &Tensor, params: &[Tensor], _pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        let (batch, steps, in_dim) = xs.dims3()?;
        let four_h = 4 * self.hidden;
        let flat = xs.reshape((batch * steps, in_dim))?;
        let run = |d: &Direction| -> candle_core::Result<Tensor> {
            let p = |id: ParamId| &params[id.index()];
            let projected = flat.matmul(&p(d.w_ih).t()?)?.reshape((batch, steps, four_h))?;
            // Summed here, not once: the parameters change as training goes on. The bias is added
            // inside the fused recurrence, so no broadcast (whose backward is a slow strided
            // reduction on CPU) enters the graph.
            let bias = (p(d.b_ih) + p(d.b_hh))?;
            match xs.device() {
                Device::Cpu => projected.apply_op3(p(d.w_hh), &bias, LstmRecurrence::new(self.hidden, d.reverse)),
                _ => recurrence_stepwise(&projected.broadcast_add(&bias)?, p(d.w_hh), self.hidden, d.reverse),
            }
        };
        let [f, r] = [run(&self.directions[0])?, run(&self.directions[1])?];
        match self.output {
            LstmOutput::Sequence => Tensor::cat(&[&f, &r], 2),
            LstmOutput::Last => {
                Tensor::cat(&[f.narrow(1, steps - 1, 1)?.squeeze(1)?, r.narrow(1, 0, 1)?.squeeze(1)?], 1)
            }
        }
    }

    fn forward_cpu(&self, x: Activations, weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let (batch, steps) = (x.batch, x.shape.steps());
        let h = self.hidden;
        let (forward, reverse) = rayon::join(
            || self.forward_direction(&self.directions[0], &x, weights),
            || self.forward_direction(&self.directions[1], &x, weights),
        );
        let hiddens = [&forward.1.hiddens, &reverse.1.hiddens];
        let values = match self.output {
            LstmOutput::Sequence => {
                let mut y = vec![0f32; batch * steps * 2 * h];
                for (row, out) in y.chunks_exact_mut(2 * h).enumerate() {
                    out[..h].copy_from_slice(&hiddens[0][row * h..(row + 1) * h]);
                    out[h..].copy_from_slice(&hiddens[1][row * h..(row + 1) * h]);
                }
                y
            }
            LstmOutput::Last => {
                let mut y = vec![0f32; batch * 2 * h];
                for (b, out) in y.chunks_exact_mut(2 * h).enumerate() {
                    for (k, direction) in self.directions.iter().enumerate() {
                        let row = self.last_row(direction, b, steps);
                        out[k * h..(k + 1) * h].copy_from_slice(&hiddens[k][row * h..(row + 1) * h]);
                    }
                }
                y
            }
        };
        let out = Activations::new(batch, self.output_shape(x.shape), values);
        (out, pass.save(|| LstmSaved { input: x, directions: [forward, reverse] }))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        weights: &Weights,
        grads: &mut Gradients,
        input_grad: bool,
    ) -> Option<Vec<f32>> {
        let LstmSaved { input, directions } = unsave(saved);
        let (batch, steps) = (input.batch, input.shape.steps());
        let h = self.hidden;
        // The gradient of each direction's hidden states (B, T, H).
        let d_h = |k: usize| -> Vec<f32> {
            let mut d = vec![0f32; batch * steps * h];
            match self.output {
                LstmOutput::Sequence => {
                    for (row, dst) in d.chunks_exact_mut(h).enumerate() {
                        dst.copy_from_slice(&d_out[row * 2 * h + k * h..row * 2 * h + (k + 1) * h]);
                    }
                }
                LstmOutput::Last => {
                    for b in 0..batch {
                        let row = self.last_row(&self.directions[k], b, steps);
                        d[row * h..(row + 1) * h].copy_from_slice(&d_out[b * 2 * h + k * h..b * 2 * h + (k + 1) * h]);
                    }
                }
            }
            d
        };
        let backward = |k: usize| {
            self.backward_direction(&self.directions[k], &directions[k], &input.values, &d_h(k), weights, input_grad)
        };
        let ((g_forward, d_forward), (g_reverse, d_reverse)) = rayon::join(|| backward(0), || backward(1));
        for (id, g) in g_forward.into_iter().chain(g_reverse) {
            grads.set(id, g);
        }
        let (mut d_x, d_reverse) = (d_forward?, d_reverse?);
        for (a, v) in d_x.iter_mut().zip(&d_reverse) {
            *a += v;
        }
        Some(d_x)
    }

    /// One ONNX `LSTM` node, `direction="bidirectional"`, on (T, B, F). ONNX orders the gates
    /// i, o, f, c where PyTorch's layout is i, f, g, o, and takes the two biases as one
    /// `[W_b; R_b]`. `Sequence` is `Y` (T, 2, B, H) as (B, T, 2H); `Last` is `Y_h` (2, B, H) as
    /// (B, 2H): the forward direction's last state and the reverse's after reading back to
    /// step 0.
    fn export_onnx(&self, graph: &mut Graph, x: &str, _input: Shape, weights: &Weights) -> Result<String> {
        let h = self.hidden;
        // PyTorch's gate blocks (i, f, g, o) in ONNX's order (i, o, f, c = g).
        let onnx_order = |values: &[f32], block: usize| -> Vec<f32> {
            [0, 3, 1, 2].iter().flat_map(|&gate| &values[gate * block..(gate + 1) * block]).copied().collect()
        };
        let mut w = Vec::new();
        let mut r = Vec::new();
        let mut b = Vec::new();
        for d in &self.directions {
            w.extend(onnx_order(weights.get(d.w_ih), h * self.in_dim));
            r.extend(onnx_order(weights.get(d.w_hh), h * h));
            b.extend(onnx_order(weights.get(d.b_ih), h));
            b.extend(onnx_order(weights.get(d.b_hh), h));
        }
        let w = graph.constant("lstm_W", &[2, 4 * h, self.in_dim], &w);
        let r = graph.constant("lstm_R", &[2, 4 * h, h], &r);
        let b = graph.constant("lstm_B", &[2, 8 * h], &b);
        let time_first = graph.node("Transpose", &[x], vec![Attr::Ints("perm", vec![1, 0, 2])]);
        let outputs = graph.node_outputs(
            "LSTM",
            &[&time_first, &w, &r, &b],
            2,
            vec![Attr::Int("hidden_size", h as i64), Attr::String("direction", "bidirectional".into())],
        );
        let two_h = 2 * h as i64;
        Ok(match self.output {
            LstmOutput::Sequence => {
                let batch_first = graph.node("Transpose", &[&outputs[0]], vec![Attr::Ints("perm", vec![2, 0, 1, 3])]);
                let shape = graph.constant_i64("lstm_shape", &[0, 0, two_h]);
                graph.node("Reshape", &[&batch_first, &shape], vec![])
            }
            LstmOutput::Last => {
                let batch_first = graph.node("Transpose", &[&outputs[1]], vec![Attr::Ints("perm", vec![1, 0, 2])]);
                let shape = graph.constant_i64("lstm_shape", &[0, two_h]);
                graph.node("Reshape", &[&batch_first, &shape], vec![])
            }
        })
    }
}
