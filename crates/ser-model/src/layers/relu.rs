//! ReLU. Its gradient at 0 is 1, as candle's.

use candle_core::Tensor;

use super::{Activations, Layer, Pass, Saved, Shape, unsave};
use crate::Result;
use crate::graph::Graph;
use crate::params::{Gradients, Weights};

#[derive(Debug)]
pub struct Relu;

impl Layer for Relu {
    fn output_shape(&self, input: Shape) -> Shape {
        input
    }

    fn forward_candle(&self, xs: &Tensor, _params: &[Tensor], _pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        xs.relu()
    }

    fn forward_cpu(&self, mut x: Activations, _weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let saved = pass.save(|| x.values.iter().map(|v| *v >= 0.0).collect::<Vec<bool>>());
        for v in &mut x.values {
            *v = v.max(0.0);
        }
        (x, saved)
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        mut d_out: Vec<f32>,
        _weights: &Weights,
        _grads: &mut Gradients,
        _input_grad: bool,
    ) -> Option<Vec<f32>> {
        let passes: Vec<bool> = unsave(saved);
        for (d, p) in d_out.iter_mut().zip(passes) {
            if !p {
                *d = 0.0;
            }
        }
        Some(d_out)
    }

    fn export_onnx(&self, graph: &mut Graph, x: &str, _input: Shape, _weights: &Weights) -> Result<String> {
        Ok(graph.node("Relu", &[x], vec![]))
    }
}
