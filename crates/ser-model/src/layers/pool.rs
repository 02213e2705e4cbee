//! MaxPool1D over time, flooring like Keras (an odd last step is dropped). A tie passes the
//! gradient to both values, as candle's.

use candle_core::Tensor;

use super::{Activations, Layer, LayerInput, Pass, Saved, Shape, unsave};
use crate::graph::{Attr, Graph};
use crate::params::{Gradients, Weights};
use crate::{Error, Result};

#[derive(Debug)]
pub struct MaxPool {
    size: usize,
}

impl MaxPool {
    pub fn new(input: &mut LayerInput, size: usize) -> Result<MaxPool> {
        let (steps, _) = input.sequence("max pooling")?;
        if size == 0 || steps / size == 0 {
            return Err(Error::Config(format!(
                "max pooling by {size}: {steps} steps are too few; give the network more frames"
            )));
        }
        Ok(MaxPool { size })
    }
}

struct PoolSaved {
    input: Activations,
}

impl Layer for MaxPool {
    fn output_shape(&self, input: Shape) -> Shape {
        Shape::Sequence { steps: input.steps() / self.size, features: input.features() }
    }

    fn forward_candle(&self, xs: &Tensor, _params: &[Tensor], _pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        // Groups of steps as an axis of `size`, then a max over it (candle's pooling ops and their
        // backward are slow direct loops on CPU).
        let (batch, steps, features) = xs.dims3()?;
        let out = steps / self.size;
        xs.narrow(1, 0, out * self.size)?.reshape((batch, out, self.size, features))?.max(2)
    }

    fn forward_cpu(&self, x: Activations, _weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let (batch, steps, features) = (x.batch, x.shape.steps(), x.shape.features());
        let shape = self.output_shape(x.shape);
        let out_steps = shape.steps();
        let mut out = vec![f32::NEG_INFINITY; batch * out_steps * features];
        for b in 0..batch {
            for t in 0..out_steps {
                let o = &mut out[(b * out_steps + t) * features..(b * out_steps + t + 1) * features];
                for k in 0..self.size {
                    let row = (b * steps + t * self.size + k) * features;
                    for (o, v) in o.iter_mut().zip(&x.values[row..row + features]) {
                        *o = o.max(*v);
                    }
                }
            }
        }
        let out = Activations::new(batch, shape, out);
        (out, pass.save(|| PoolSaved { input: x }))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        _weights: &Weights,
        _grads: &mut Gradients,
        _input_grad: bool,
    ) -> Option<Vec<f32>> {
        let PoolSaved { input } = unsave(saved);
        let (batch, steps, features) = (input.batch, input.shape.steps(), input.shape.features());
        let out_steps = steps / self.size;
        let mut dx = vec![0f32; input.values.len()];
        for b in 0..batch {
            for t in 0..out_steps {
                let g = &d_out[(b * out_steps + t) * features..(b * out_steps + t + 1) * features];
                let first = (b * steps + t * self.size) * features;
                for f in 0..features {
                    let max = (0..self.size)
                        .map(|k| input.values[first + k * features + f])
                        .fold(f32::NEG_INFINITY, f32::max);
                    for k in 0..self.size {
                        if input.values[first + k * features + f] == max {
                            dx[first + k * features + f] = g[f];
                        }
                    }
                }
            }
        }
        Some(dx)
    }

    /// ONNX's MaxPool on (B, F, T), floor mode: a last odd step is dropped, as here.
    fn export_onnx(&self, graph: &mut Graph, x: &str, _input: Shape, _weights: &Weights) -> Result<String> {
        let channels_first = graph.swap_time_and_features(x);
        let size = self.size as i64;
        let y = graph.node(
            "MaxPool",
            &[&channels_first],
            vec![Attr::Ints("kernel_shape", vec![size]), Attr::Ints("strides", vec![size])],
        );
        Ok(graph.swap_time_and_features(&y))
    }
}
