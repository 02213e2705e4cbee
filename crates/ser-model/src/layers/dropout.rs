//! Inverted dropout with masks from a seeded generator, so training is reproducible on CPU
//! (candle's CPU generator cannot be seeded). Both paths draw a layer's mask from the pass's
//! [`MaskStream`] in layer order, over the activation's row-major values.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Activations, Layer, Pass, Saved, Shape, unsave};
use crate::Result;
use crate::graph::Graph;
use crate::params::{Gradients, Weights};

/// The dropout masks of a training run: a ChaCha stream, reseeded each epoch.
#[derive(Debug)]
pub struct MaskStream {
    rng: ChaCha8Rng,
}

impl MaskStream {
    pub fn new(seed: u64) -> MaskStream {
        MaskStream { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The next `n` values of an inverted-dropout mask: 0 with probability `p`, else 1/(1-p).
    /// `None` when `p` is 0 (nothing is drawn). Each value comes from one `u32` of the stream:
    /// dropped when its top 24 bits, as a fraction of 2^24, fall below `p`.
    pub fn mask(&mut self, n: usize, p: f32) -> Option<Vec<f32>> {
        if p == 0.0 {
            return None;
        }
        let scale = 1.0 / (1.0 - p);
        let threshold = (p as f64 * (1u64 << 24) as f64).ceil() as u32;
        let mut bits = vec![0u32; n];
        self.rng.fill(&mut bits[..]);
        Some(bits.into_iter().map(|u| if (u >> 8) < threshold { 0.0 } else { scale }).collect())
    }
}

#[derive(Debug)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Drops each value with probability `p` in training; the identity in inference.
    pub fn new(p: f32) -> Dropout {
        Dropout { p }
    }
}

impl Layer for Dropout {
    fn output_shape(&self, input: Shape) -> Shape {
        input
    }

    fn forward_candle(&self, xs: &Tensor, _params: &[Tensor], pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        match pass.mask(xs.elem_count(), self.p) {
            None => Ok(xs.clone()),
            Some(mask) => xs.mul(&Tensor::from_vec(mask, xs.shape(), xs.device())?),
        }
    }

    fn forward_cpu(&self, mut x: Activations, _weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let mask = pass.mask(x.values.len(), self.p);
        if let Some(mask) = &mask {
            for (v, m) in x.values.iter_mut().zip(mask) {
                *v *= m;
            }
        }
        (x, pass.save(|| mask))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        mut d_out: Vec<f32>,
        _weights: &Weights,
        _grads: &mut Gradients,
        _input_grad: bool,
    ) -> Option<Vec<f32>> {
        if let Some(mask) = unsave::<Option<Vec<f32>>>(saved) {
            for (d, m) in d_out.iter_mut().zip(mask) {
                *d *= m;
            }
        }
        Some(d_out)
    }

    /// Inference keeps every value: nothing to write.
    fn export_onnx(&self, _graph: &mut Graph, x: &str, _input: Shape, _weights: &Weights) -> Result<String> {
        Ok(x.to_string())
    }
}
