//! Conv1D over time with "same" padding (odd kernel): `weight` (out, in, k), `bias` (out), as
//! PyTorch lays them out. Training's passes are im2col + one matrix product, so autograd's
//! backward is matrix products too (candle's CPU conv backward is a slow direct loop). Inference
//! keeps no columns for a backward pass, so it sums the same products without building them
//! ([`Conv1d::shifted_products`]).

use candle_core::Tensor;

use super::{Activations, Layer, LayerInput, Pass, Saved, Shape, unsave};
use crate::Result;
use crate::graph::{Attr, Graph};
use crate::linalg::{Threads, View, column_sums, linear, linear_input_grad, linear_weight_grad, matmul, rows};
use crate::params::{Gradients, Init, ParamId, Weights};

#[derive(Debug)]
pub struct Conv1d {
    weight: ParamId,
    bias: ParamId,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
}

impl Conv1d {
    /// `{name}.weight`, `{name}.bias`.
    pub fn new(input: &mut LayerInput, name: &str, out_channels: usize, kernel: usize) -> Result<Conv1d> {
        let (_, in_channels) = input.sequence(name)?;
        crate::config::check_kernel(name, kernel)?;
        let fans = Init::GlorotUniform { fan_in: in_channels * kernel, fan_out: out_channels * kernel };
        let weight = input.param(format!("{name}.weight"), vec![out_channels, in_channels, kernel], fans);
        let bias = input.param(format!("{name}.bias"), vec![out_channels], Init::Zeros);
        Ok(Conv1d { weight, bias, in_channels, out_channels, kernel })
    }

    /// Row (b, t) of the result: input steps `t - k/2 ..= t + k/2` of clip b, column `c k + j` =
    /// channel c at offset j (zero outside the clip): the layout of `weight`'s (in, k) rows.
    fn im2col(&self, x: &[f32], batch: usize, steps: usize) -> Vec<f32> {
        let (c_in, kernel) = (self.in_channels, self.kernel);
        let ck = c_in * kernel;
        let pad = kernel / 2;
        let mut cols = vec![0f32; batch * steps * ck];
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
        cols
    }

    /// `im2col(x) weight^T` without the columns, one core: for each kernel offset `j`, the clip's
    /// input steps shifted by `j - k/2` times `weight[:, :, j]^T` (a strided view of the weight),
    /// summed over the offsets into the output steps the shifted rows reach. The same terms as
    /// im2col's product, summed in another order (equal up to rounding).
    fn shifted_products(&self, x: &[f32], batch: usize, steps: usize, weight: &[f32]) -> Vec<f32> {
        let (c_in, c_out, kernel) = (self.in_channels, self.out_channels, self.kernel);
        let pad = kernel / 2;
        // weight[o, c, j] at o c_in k + c k + j: offset j's (c_in x c_out) matrix from element j.
        let offset_view = View { row_stride: kernel, col_stride: c_in * kernel };
        let mut z = vec![0f32; batch * steps * c_out];
        // The middle offset reaches every step, so it writes; the others add.
        let offsets = std::iter::once(pad).chain((0..kernel).filter(|&j| j != pad));
        for b in 0..batch {
            let (x, z) =
                (&x[b * steps * c_in..(b + 1) * steps * c_in], &mut z[b * steps * c_out..(b + 1) * steps * c_out]);
            for j in offsets.clone() {
                // Output steps t whose input step t + j - pad lies in the clip.
                let (first, end) = (pad.saturating_sub(j), (steps + pad).saturating_sub(j).min(steps));
                if first >= end {
                    continue;
                }
                let src = first + j - pad;
                matmul(
                    (end - first, c_out, c_in),
                    &mut z[first * c_out..end * c_out],
                    rows(c_out),
                    j != pad,
                    &x[src * c_in..],
                    rows(c_in),
                    &weight[j..],
                    offset_view,
                    Threads::One,
                );
            }
        }
        z
    }

    /// The adjoint of [`Conv1d::im2col`]: sums each column back onto the input step it came from.
    fn col2im(&self, d_cols: &[f32], batch: usize, steps: usize) -> Vec<f32> {
        let (c_in, kernel) = (self.in_channels, self.kernel);
        let ck = c_in * kernel;
        let pad = kernel / 2;
        let mut dx = vec![0f32; batch * steps * c_in];
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
    }
}

struct ConvSaved {
    batch: usize,
    steps: usize,
    cols: Vec<f32>,
}

impl Layer for Conv1d {
    fn output_shape(&self, input: Shape) -> Shape {
        Shape::Sequence { steps: input.steps(), features: self.out_channels }
    }

    fn forward_candle(&self, xs: &Tensor, params: &[Tensor], _pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor> {
        let (batch, steps, c_in) = xs.dims3()?;
        let (kernel, c_out) = (self.kernel, self.out_channels);
        let pad = kernel / 2;
        let padded = xs.pad_with_zeros(1, pad, pad)?;
        // cols[b t, j C_in + c] = padded[b, t + j, c], plus a column of ones for the bias: one 2-D
        // matmul, no broadcast, so the backward pass is matmuls too.
        let mut shifted: Vec<Tensor> =
            (0..kernel).map(|j| padded.narrow(1, j, steps)).collect::<candle_core::Result<_>>()?;
        shifted.push(Tensor::ones((batch, steps, 1), xs.dtype(), xs.device())?);
        let cols = Tensor::cat(&shifted, 2)?.reshape((batch * steps, kernel * c_in + 1))?;
        let w = params[self.weight.index()].permute((0, 2, 1))?.reshape((c_out, kernel * c_in))?; // [o, j C_in + c]
        let w = Tensor::cat(&[w, params[self.bias.index()].reshape((c_out, 1))?], 1)?;
        cols.matmul(&w.t()?)?.reshape((batch, steps, c_out))
    }

    fn forward_cpu(&self, x: Activations, weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved) {
        let (batch, steps) = (x.batch, x.shape.steps());
        let weight = weights.get(self.weight);
        // Training runs one batch at a time, so its products split over the cores and keeps the
        // columns for the backward pass; inference runs batches in parallel (`predict`), one
        // core each, and needs no columns.
        let (mut z, cols) = if pass.is_training() {
            let cols = self.im2col(&x.values, batch, steps);
            let dims = (batch * steps, self.out_channels, self.in_channels * self.kernel);
            (linear(&cols, weight, dims, Threads::Pool), Some(cols))
        } else {
            (self.shifted_products(&x.values, batch, steps, weight), None)
        };
        let bias = weights.get(self.bias);
        for row in z.chunks_exact_mut(self.out_channels) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
        let out = Activations::new(batch, self.output_shape(x.shape), z);
        (out, pass.save(|| ConvSaved { batch, steps, cols: cols.expect("training builds the columns") }))
    }

    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        weights: &Weights,
        grads: &mut Gradients,
        input_grad: bool,
    ) -> Option<Vec<f32>> {
        let ConvSaved { batch, steps, cols } = unsave(saved);
        let dims = (batch * steps, self.out_channels, self.in_channels * self.kernel);
        grads.set(self.weight, linear_weight_grad(&d_out, &cols, dims, Threads::Pool));
        grads.set(self.bias, column_sums(&d_out, self.out_channels));
        input_grad.then(|| {
            let d_cols = linear_input_grad(&d_out, weights.get(self.weight), dims, Threads::Pool);
            self.col2im(&d_cols, batch, steps)
        })
    }

    /// ONNX's Conv is channels first: (B, T, C) is transposed to (B, C, T) and back; the weight
    /// is already (out, in, k).
    fn export_onnx(&self, graph: &mut Graph, x: &str, _input: Shape, weights: &Weights) -> Result<String> {
        let k = self.kernel;
        let w = graph.constant("conv_weight", &[self.out_channels, self.in_channels, k], weights.get(self.weight));
        let b = graph.constant("conv_bias", &[self.out_channels], weights.get(self.bias));
        let channels_first = graph.swap_time_and_features(x);
        let pad = (k / 2) as i64;
        let y = graph.node(
            "Conv",
            &[&channels_first, &w, &b],
            vec![
                Attr::Ints("kernel_shape", vec![k as i64]),
                Attr::Ints("pads", vec![pad, pad]),
                Attr::Ints("strides", vec![1]),
                Attr::Ints("dilations", vec![1]),
            ],
        );
        Ok(graph.swap_time_and_features(&y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inference's shifted products equal training's im2col product, clip by clip, for kernels
    /// wider than the clip too.
    #[test]
    fn shifted_products_equal_the_im2col_product() {
        let value = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0;
        for (batch, steps, c_in, c_out, kernel) in
            [(1, 174, 12, 8, 5), (3, 9, 5, 4, 3), (2, 2, 3, 6, 5), (2, 1, 4, 3, 7)]
        {
            let conv = Conv1d { weight: ParamId(0), bias: ParamId(1), in_channels: c_in, out_channels: c_out, kernel };
            let x: Vec<f32> = (0..batch * steps * c_in).map(|i| value(i, 1)).collect();
            let w: Vec<f32> = (0..c_out * c_in * kernel).map(|i| value(i, 2)).collect();
            let want = linear(&conv.im2col(&x, batch, steps), &w, (batch * steps, c_out, c_in * kernel), Threads::One);
            let got = conv.shifted_products(&x, batch, steps, &w);
            assert_eq!(got.len(), want.len());
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "{batch}x{steps}x{c_in} -> {c_out}, k {kernel}: max difference {worst}");
        }
    }
}
