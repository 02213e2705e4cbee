//! A bidirectional LSTM in PyTorch's layout and gate order (i, f, g, o), with the recurrence
//! fused into one candle custom op on CPU.
//!
//! candle-nn's LSTM runs one small graph per time step, and its autograd replays every one of
//! them; for this network that dominates training time. Here the input projections of all
//! steps are one matmul (autograd as usual), and the recurrence over time is a single op with a
//! hand-written backward pass (backpropagation through time). On other devices, the same maths
//! runs as step-wise candle ops; a test checks both paths agree, gradients included.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

/// One direction of an LSTM layer: `weight_ih` (4H, in), `weight_hh` (4H, H), two biases (4H).
#[derive(Debug, Clone)]
pub struct LstmDirection {
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    hidden: usize,
}

impl LstmDirection {
    /// Tensor names follow PyTorch's `nn.LSTM`: `weight_ih_l0{suffix}` and friends.
    pub fn new(in_dim: usize, hidden: usize, suffix: &str, vb: &VarBuilder) -> candle_core::Result<LstmDirection> {
        let weight_ih = vb.get((4 * hidden, in_dim), &format!("weight_ih_l0{suffix}"))?;
        let weight_hh = vb.get((4 * hidden, hidden), &format!("weight_hh_l0{suffix}"))?;
        let bias_ih = vb.get(4 * hidden, &format!("bias_ih_l0{suffix}"))?;
        let bias_hh = vb.get(4 * hidden, &format!("bias_hh_l0{suffix}"))?;
        Ok(LstmDirection { weight_ih, weight_hh, bias_ih, bias_hh, hidden })
    }

    /// `xs` (B, T, in) -> all hidden states (B, T, H). `reverse` runs from the last step to the
    /// first; output t is then the state after reading steps T-1..=t (PyTorch's convention).
    pub fn forward(&self, xs: &Tensor, reverse: bool) -> candle_core::Result<Tensor> {
        let (batch, steps, in_dim) = xs.dims3()?;
        // Summed here, not at construction: the variables change as training goes on.
        let bias = (&self.bias_ih + &self.bias_hh)?;
        // One 2-D matmul for all steps; the bias is added inside the recurrence, so no
        // broadcast (whose backward is a slow strided reduction on CPU) enters the graph.
        let projected = xs.reshape((batch * steps, in_dim))?.matmul(&self.weight_ih.t()?)?.reshape((
            batch,
            steps,
            4 * self.hidden,
        ))?;
        match xs.device() {
            Device::Cpu => projected.apply_op3(&self.weight_hh, &bias, LstmRecurrence::new(self.hidden, reverse)),
            _ => recurrence_stepwise(&projected.broadcast_add(&bias)?, &self.weight_hh, self.hidden, reverse),
        }
    }
}

/// Forward and reverse LSTMs over the same input, outputs concatenated on the feature axis.
#[derive(Debug, Clone)]
pub struct BiLstm {
    forward: LstmDirection,
    backward: LstmDirection,
}

impl BiLstm {
    pub fn new(in_dim: usize, hidden: usize, vb: VarBuilder) -> candle_core::Result<BiLstm> {
        Ok(BiLstm {
            forward: LstmDirection::new(in_dim, hidden, "", &vb)?,
            backward: LstmDirection::new(in_dim, hidden, "_reverse", &vb)?,
        })
    }

    /// (B, T, in) -> (B, T, 2H).
    pub fn sequence(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let f = self.forward.forward(xs, false)?;
        let b = self.backward.forward(xs, true)?;
        Tensor::cat(&[&f, &b], 2)
    }

    /// (B, T, in) -> (B, 2H): the forward direction's last state and the reverse direction's
    /// state after reading back to step 0 (Keras `Bidirectional(LSTM(return_sequences=False))`).
    pub fn last(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let t = xs.dim(1)?;
        let f = self.forward.forward(xs, false)?.narrow(1, t - 1, 1)?.squeeze(1)?;
        let b = self.backward.forward(xs, true)?.narrow(1, 0, 1)?.squeeze(1)?;
        Tensor::cat(&[&f, &b], 1)
    }
}

/// The recurrence as step-wise candle ops: the reference the fused op is tested against, and
/// the path used on GPUs.
pub fn recurrence_stepwise(
    projected: &Tensor,
    weight_hh: &Tensor,
    hidden: usize,
    reverse: bool,
) -> candle_core::Result<Tensor> {
    let (batch, steps, _) = projected.dims3()?;
    let mut h = Tensor::zeros((batch, hidden), DType::F32, projected.device())?;
    let mut c = h.clone();
    let mut outputs = vec![None; steps];
    let w_t = weight_hh.t()?;
    let order: Vec<usize> = if reverse { (0..steps).rev().collect() } else { (0..steps).collect() };
    for t in order {
        let gates = (projected.narrow(1, t, 1)?.squeeze(1)? + h.matmul(&w_t)?)?;
        let chunks = gates.chunk(4, 1)?;
        let i = candle_nn::ops::sigmoid(&chunks[0])?;
        let f = candle_nn::ops::sigmoid(&chunks[1])?;
        let g = chunks[2].tanh()?;
        let o = candle_nn::ops::sigmoid(&chunks[3])?;
        c = ((f * &c)? + (i * g)?)?;
        h = (o * c.tanh()?)?;
        outputs[t] = Some(h.clone());
    }
    let outputs: Vec<Tensor> = outputs.into_iter().map(|o| o.expect("every step ran")).collect();
    Tensor::stack(&outputs, 1)
}

/// Activations the forward pass keeps for the backward pass.
#[derive(Debug, Default)]
struct Saved {
    /// (B, T, 4H): i, f, g, o after their non-linearities.
    gates: Vec<f32>,
    /// (B, T, H): cell states.
    cells: Vec<f32>,
    /// (B, T, H): hidden states (the op's output).
    hiddens: Vec<f32>,
    dims: (usize, usize),
}

/// The fused recurrence: inputs `projected` (B, T, 4H), `weight_hh` (4H, H) and `bias` (4H),
/// output (B, T, H).
#[derive(Debug)]
pub struct LstmRecurrence {
    hidden: usize,
    reverse: bool,
    saved: Mutex<Saved>,
}

impl LstmRecurrence {
    pub fn new(hidden: usize, reverse: bool) -> LstmRecurrence {
        LstmRecurrence { hidden, reverse, saved: Mutex::new(Saved::default()) }
    }

    fn order(&self, steps: usize) -> impl Iterator<Item = usize> + use<> {
        let reverse = self.reverse;
        (0..steps).map(move |k| if reverse { steps - 1 - k } else { k })
    }

    /// One sequence: `projected` (T, 4H) in; gates (T, 4H), cells and hiddens (T, H) out.
    fn forward_sequence(
        &self,
        projected: &[f32],
        w_hh: &[f32],
        bias: &[f32],
        gates: &mut [f32],
        cells: &mut [f32],
        hiddens: &mut [f32],
    ) {
        let hidden = self.hidden;
        let four_h = 4 * hidden;
        let steps = cells.len() / hidden;
        let zeros = vec![0f32; hidden];
        let mut prev: Option<usize> = None; // the previous step
        for t in self.order(steps) {
            let (h_before, h_rest) = hiddens.split_at_mut(t * hidden);
            let (h_t, h_after) = h_rest.split_at_mut(hidden);
            let h_prev: &[f32] = match prev {
                None => &zeros,
                // Forward: the previous step is below t; reverse: above it.
                Some(p) if p < t => &h_before[p * hidden..(p + 1) * hidden],
                Some(p) => &h_after[(p - t - 1) * hidden..(p - t) * hidden],
            };
            let g = &mut gates[t * four_h..(t + 1) * four_h];
            let x = &projected[t * four_h..(t + 1) * four_h];
            for (r, gr) in g.iter_mut().enumerate() {
                *gr = x[r] + bias[r] + dot(&w_hh[r * hidden..(r + 1) * hidden], h_prev);
            }
            for k in 0..hidden {
                let i = sigmoid(g[k]);
                let f = sigmoid(g[hidden + k]);
                let gg = tanh(g[2 * hidden + k]);
                let o = sigmoid(g[3 * hidden + k]);
                g[k] = i;
                g[hidden + k] = f;
                g[2 * hidden + k] = gg;
                g[3 * hidden + k] = o;
                let c_prev = prev.map_or(0.0, |p| cells[p * hidden + k]);
                let c = f * c_prev + i * gg;
                cells[t * hidden + k] = c;
                h_t[k] = o * tanh(c);
            }
            prev = Some(t);
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `tanh` through one `exp` (libm's tanhf goes through the slower expm1f).
#[inline]
fn tanh(x: f32) -> f32 {
    // Saturate early: exp(2x) overflows above x ~ 44.
    if x > 15.0 {
        1.0
    } else if x < -15.0 {
        -1.0
    } else {
        1.0 - 2.0 / ((2.0 * x).exp() + 1.0)
    }
}

/// `sum(a[i] * b[i])` with eight independent accumulators, so the compiler can vectorise it.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

fn slice_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("lstm recurrence: {what} must be contiguous"),
    }
}

impl CustomOp3 for LstmRecurrence {
    fn name(&self) -> &'static str {
        "lstm-recurrence"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let hidden = self.hidden;
        let (batch, steps, four_h) = l1.shape().dims3()?;
        if four_h != 4 * hidden || l2.shape().dims2()? != (4 * hidden, hidden) {
            candle_core::bail!(
                "lstm recurrence: shapes {:?} and {:?} do not match hidden {hidden}",
                l1.shape(),
                l2.shape()
            );
        }
        let projected = slice_f32(s1, l1, "projected input")?;
        let w_hh = slice_f32(s2, l2, "weight_hh")?;
        let bias = slice_f32(s3, l3, "bias")?;
        if bias.len() != four_h {
            candle_core::bail!("lstm recurrence: bias has {} values, expected {four_h}", bias.len());
        }
        let mut gates = vec![0f32; batch * steps * four_h];
        let mut cells = vec![0f32; batch * steps * hidden];
        let mut hiddens = vec![0f32; batch * steps * hidden];
        // The sequences of a batch are independent: one task each (same sums as sequentially).
        gates
            .par_chunks_mut(steps * four_h)
            .zip(cells.par_chunks_mut(steps * hidden))
            .zip(hiddens.par_chunks_mut(steps * hidden))
            .zip(projected.par_chunks(steps * four_h))
            .for_each(|(((gates, cells), hiddens), projected)| {
                self.forward_sequence(projected, w_hh, bias, gates, cells, hiddens)
            });
        let out = hiddens.clone();
        *self.saved.lock().expect("lstm saved state") = Saved { gates, cells, hiddens, dims: (batch, steps) };
        Ok((CpuStorage::F32(out), Shape::from((batch, steps, hidden))))
    }

    fn bwd(
        &self,
        projected: &Tensor,
        weight_hh: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let hidden = self.hidden;
        let four_h = 4 * hidden;
        let saved = self.saved.lock().expect("lstm saved state");
        let (batch, steps) = saved.dims;
        if saved.gates.is_empty() && batch * steps > 0 {
            candle_core::bail!("lstm recurrence: backward called before forward");
        }
        let w_hh = weight_hh.flatten_all()?.to_vec1::<f32>()?;
        let d_out = grad_res.flatten_all()?.to_vec1::<f32>()?;
        let mut d_projected = vec![0f32; batch * steps * four_h];
        let order: Vec<usize> = self.order(steps).collect();
        let saved: &Saved = &saved;
        // One task per sequence, each with its own weight and bias gradients, summed below in
        // sequence order: the same result on any number of threads.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = d_projected
            .par_chunks_mut(steps * four_h)
            .enumerate()
            .map(|(b, d_projected)| {
                let mut d_w_hh = vec![0f32; four_h * hidden];
                let mut d_bias = vec![0f32; four_h];
                let mut dh_next = vec![0f32; hidden];
                let mut dc_next = vec![0f32; hidden];
                for (k_step, &t) in order.iter().enumerate().rev() {
                    let row = b * steps + t;
                    let prev = if k_step == 0 { None } else { Some(b * steps + order[k_step - 1]) };
                    let g = &saved.gates[row * four_h..(row + 1) * four_h];
                    let dg = &mut d_projected[t * four_h..(t + 1) * four_h];
                    for k in 0..hidden {
                        let (i, f, gg, o) = (g[k], g[hidden + k], g[2 * hidden + k], g[3 * hidden + k]);
                        let c = saved.cells[row * hidden + k];
                        let c_prev = prev.map_or(0.0, |p| saved.cells[p * hidden + k]);
                        let tc = tanh(c);
                        let dh = d_out[row * hidden + k] + dh_next[k];
                        let dc = dh * o * (1.0 - tc * tc) + dc_next[k];
                        dg[k] = dc * gg * i * (1.0 - i);
                        dg[hidden + k] = dc * c_prev * f * (1.0 - f);
                        dg[2 * hidden + k] = dc * i * (1.0 - gg * gg);
                        dg[3 * hidden + k] = dh * tc * o * (1.0 - o);
                        dc_next[k] = dc * f;
                    }
                    for (acc, d) in d_bias.iter_mut().zip(dg.iter()) {
                        *acc += d;
                    }
                    // dh_prev = W_hh^T dg ; dW_hh += dg h_prev^T
                    dh_next.fill(0.0);
                    for (r, &d) in dg.iter().enumerate() {
                        let w_row = &w_hh[r * hidden..(r + 1) * hidden];
                        for (acc, w) in dh_next.iter_mut().zip(w_row) {
                            *acc += d * w;
                        }
                    }
                    if let Some(p) = prev {
                        let h_prev = &saved.hiddens[p * hidden..(p + 1) * hidden];
                        for (r, &d) in dg.iter().enumerate() {
                            let acc_row = &mut d_w_hh[r * hidden..(r + 1) * hidden];
                            for (acc, h) in acc_row.iter_mut().zip(h_prev) {
                                *acc += d * h;
                            }
                        }
                    }
                }
                (d_w_hh, d_bias)
            })
            .collect();
        let mut d_w_hh = vec![0f32; four_h * hidden];
        let mut d_bias = vec![0f32; four_h];
        for (w, b) in &partials {
            for (acc, x) in d_w_hh.iter_mut().zip(w) {
                *acc += x;
            }
            for (acc, x) in d_bias.iter_mut().zip(b) {
                *acc += x;
            }
        }
        let device = projected.device();
        let d_projected = Tensor::from_vec(d_projected, (batch, steps, four_h), device)?;
        let d_w_hh = Tensor::from_vec(d_w_hh, (four_h, hidden), device)?;
        let d_bias = Tensor::from_vec(d_bias, four_h, device)?;
        Ok((Some(d_projected), Some(d_w_hh), Some(d_bias)))
    }
}
