//! A fully connected layer: `weight` (out, in), `bias` (out), as PyTorch's `nn.Linear`; its
//! last outputs may reach its input through a gradient reversal (domain-adversarial training).

use candle_core::Tensor;

use super::{Activations, Layer, LayerInput, Pass, Saved, Shape, unsave};
use crate::graph::{Attr, Graph, transpose};
use crate::linalg::{Threads, column_sums, linear, linear_input_grad, linear_weight_grad};
use crate::params::{Gradients, Init, ParamId, Weights};
use crate::{Error, Result};

#[derive(Debug)]
pub struct Dense {
    weight: ParamId,
    bias: ParamId,
    in_dim: usize,
    out_dim: usize,
    /// Outputs from this one on learn as usual, but their gradient reaches the input negated
    /// (a gradient reversal layer between the input and their rows, Ganin & Lempitsky 2015).
    reversed_from: Option<usize>,
}

impl Dense {
    /// `{name}.weight`, `{name}.bias`, on a vector input.
    pub fn new(input: &mut LayerInput, name: &str, out_dim: usize) -> Result<Dense> {
        let Shape::Vector { features: in_dim } = input.shape() else {
            return Err(Error::Config(format!("{name}: a dense layer needs a vector, gets {:?}", input.shape())));
        };
        let weight = input.param(
            format!("{name}.weight"),
            vec![out_dim, in_dim],
            Init::GlorotUniform { fan_in: in_dim, fan_out: out_dim },
        );
        let bias = input.param(format!("{name}.bias"), vec![out_dim], Init::Zeros);
        Ok(Dense { weight, bias, in_dim, out_dim, reversed_from: None })
    }

    /// The same layer, with the gradient of outputs `from..` reversed on its way to the input.
    pub fn reversing(self, from: usize) -> Dense {
        assert!(from <= self.out_dim, "reversed outputs {from}.. of {}", self.out_dim);
        Dense { reversed_from: (from < self.out_dim).then_some(from), ..self }
    }
}

impl Layer for Dense {
    fn output_shape(&self, _input: Shape) -> Shape {
        Shape::Vector { features: self.out_dim }
    }

    fn forward_candle(&self, xs: &Tensor, params: &[Tensor], _pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        let (w, b) = (&params[self.weight.index()], &params[self.bias.index()]);
        let Some(from) = self.reversed_from else {
            return xs.matmul(&w.t()?)?.broadcast_add(b);
        };
        // 2 x.detach() - x is x going forward, and sends the gradient back negated.
        let reversed = ((xs.detach() * 2.0)? - xs)?;
        let rows = |x: &Tensor, range: std::ops::Range<usize>| {
            let (start, len) = (range.start, range.len());
            x.matmul(&w.narrow(0, start, len)?.t()?)?.broadcast_add(&b.narrow(0, start, len)?)
        };
        Tensor::cat(&[rows(xs, 0..from)?, rows(&reversed, from..self.out_dim)?], 1)
    }

    fn forward_cpu(&self, x: Activations, weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let mut y = linear(&x.values, weights.get(self.weight), (x.batch, self.out_dim, self.in_dim), Threads::One);
        for row in y.chunks_exact_mut(self.out_dim) {
            for (v, b) in row.iter_mut().zip(weights.get(self.bias)) {
                *v += b;
            }
        }
        let out = Activations::new(x.batch, self.output_shape(x.shape), y);
        (out, pass.save(|| x))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        weights: &Weights,
        grads: &mut Gradients,
        input_grad: bool,
    ) -> Option<Vec<f32>> {
        let x: Activations = unsave(saved);
        let dims = (x.batch, self.out_dim, self.in_dim);
        grads.set(self.weight, linear_weight_grad(&d_out, &x.values, dims, Threads::One));
        grads.set(self.bias, column_sums(&d_out, self.out_dim));
        let mut d_out = d_out;
        if let Some(from) = self.reversed_from.filter(|_| input_grad) {
            for row in d_out.chunks_exact_mut(self.out_dim) {
                row[from..].iter_mut().for_each(|d| *d = -*d);
            }
        }
        input_grad.then(|| linear_input_grad(&d_out, weights.get(self.weight), dims, Threads::One))
    }

    /// `Gemm` (transB) on vectors; on a sequence, `MatMul` with the transposed weight, then the
    /// bias.
    fn export_onnx(&self, graph: &mut Graph, x: &str, input: Shape, weights: &Weights) -> Result<String> {
        let b = graph.constant("dense_bias", &[self.out_dim], weights.get(self.bias));
        Ok(match input {
            Shape::Vector { .. } => {
                let w = graph.constant("dense_weight", &[self.out_dim, self.in_dim], weights.get(self.weight));
                graph.node("Gemm", &[x, &w, &b], vec![Attr::Int("transB", 1)])
            }
            Shape::Sequence { .. } => {
                let w_t = transpose(weights.get(self.weight), self.out_dim, self.in_dim);
                let w = graph.constant("dense_weight_t", &[self.in_dim, self.out_dim], &w_t);
                let y = graph.node("MatMul", &[x, &w], vec![]);
                graph.node("Add", &[&y, &b], vec![])
            }
        })
    }
}
