//! The LSTM recurrence over time, in PyTorch's gate order (i, f, g, o): the CPU loops forward
//! and backward (backpropagation through time) that the hand-written training step calls, the
//! same loops as one candle custom op ([`LstmRecurrence`]) for candle's graph on CPU, and
//! step-wise candle ops for other devices.
//!
//! candle-nn's LSTM runs one small graph per time step, and its autograd replays every one of
//! them; for this network that dominates training time. Here the input projections of all
//! steps are one matmul, and the recurrence over time is a single op with a hand-written
//! backward pass. A test checks the fused and step-wise recurrences agree, gradients included.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

use crate::linalg::{self, Threads, View};

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

/// The shape of one recurrence: `batch` sequences of `steps` steps, `hidden` units, run from
/// the last step to the first when `reverse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrenceShape {
    pub batch: usize,
    pub steps: usize,
    pub hidden: usize,
    pub reverse: bool,
}

impl RecurrenceShape {
    /// Steps in the order they are read.
    fn order(&self) -> Vec<usize> {
        let steps = self.steps;
        if self.reverse { (0..steps).rev().collect() } else { (0..steps).collect() }
    }
}

/// What the forward recurrence computes and its backward pass needs.
#[derive(Debug, Default)]
pub struct Recurrence {
    /// (B, T, 4H): i, f, g, o after their non-linearities.
    pub gates: Vec<f32>,
    /// (B, T, H): cell states.
    pub cells: Vec<f32>,
    /// (B, T, H): tanh of the cell states.
    pub tanh_cells: Vec<f32>,
    /// (B, T, H): hidden states (the output).
    pub hiddens: Vec<f32>,
}

/// The recurrence over a batch: `projected` (B, T, 4H) input projections (no bias),
/// `w_hh` (4H, H), `bias` (4H). Step by step over the whole batch:
/// gates_t = x_t + bias + h_prev W_hh^T, one (B x H)(H x 4H) product per step.
pub fn recurrence_forward(shape: RecurrenceShape, projected: &[f32], w_hh: &[f32], bias: &[f32]) -> Recurrence {
    let RecurrenceShape { batch, steps, hidden, .. } = shape;
    let four_h = 4 * hidden;
    let mut gates = vec![0f32; batch * steps * four_h];
    let mut cells = vec![0f32; batch * steps * hidden];
    let mut tanh_cells = vec![0f32; batch * steps * hidden];
    let mut hiddens = vec![0f32; batch * steps * hidden];
    let mut c_prev = vec![0f32; hidden];
    let mut prev: Option<usize> = None;
    for t in shape.order() {
        for b in 0..batch {
            let row = (b * steps + t) * four_h;
            for ((g, x), bias) in gates[row..row + four_h].iter_mut().zip(&projected[row..row + four_h]).zip(bias) {
                *g = x + bias;
            }
        }
        if let Some(p) = prev {
            linalg::matmul(
                (batch, four_h, hidden),
                &mut gates[t * four_h..],
                View { row_stride: steps * four_h, col_stride: 1 },
                true,
                &hiddens[p * hidden..],
                View { row_stride: steps * hidden, col_stride: 1 },
                w_hh,
                linalg::transposed(hidden),
                Threads::One,
            );
        }
        for b in 0..batch {
            let row = b * steps + t;
            previous_cell(&cells, (b, steps, hidden), prev, &mut c_prev);
            let g = &mut gates[row * four_h..(row + 1) * four_h];
            activate_gates(g, hidden);
            let (i, rest) = g.split_at(hidden);
            let (f, rest) = rest.split_at(hidden);
            let (g, o) = rest.split_at(hidden);
            let span = row * hidden..(row + 1) * hidden;
            let out = (&mut cells[span.clone()], &mut tanh_cells[span.clone()], &mut hiddens[span]);
            update_cell(Cell { i, f, g, o, c_prev: &c_prev }, out);
        }
        prev = Some(t);
    }
    Recurrence { gates, cells, tanh_cells, hiddens }
}

/// Gradients of the recurrence (backpropagation through time) from `d_out` (B, T, H), the
/// gradient of the hidden states: `(d_projected (B, T, 4H), d_w_hh (4H, H), d_bias (4H))`.
pub fn recurrence_backward(
    shape: RecurrenceShape,
    saved: &Recurrence,
    w_hh: &[f32],
    d_out: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let RecurrenceShape { batch, steps, hidden, .. } = shape;
    let four_h = 4 * hidden;
    let mut d_projected = vec![0f32; batch * steps * four_h];
    let order = shape.order();
    let mut dh_next = vec![0f32; batch * hidden];
    let mut dc_next = vec![0f32; batch * hidden];
    let mut c_prev = vec![0f32; hidden];
    for (k_step, &t) in order.iter().enumerate().rev() {
        let prev = if k_step == 0 { None } else { Some(order[k_step - 1]) };
        for b in 0..batch {
            let row = b * steps + t;
            previous_cell(&saved.cells, (b, steps, hidden), prev, &mut c_prev);
            let span = row * hidden..(row + 1) * hidden;
            let x = StepGrad {
                gates: &saved.gates[row * four_h..(row + 1) * four_h],
                c_prev: &c_prev,
                tanh_c: &saved.tanh_cells[span.clone()],
                d_h_out: &d_out[span],
                dh_next: &dh_next[b * hidden..(b + 1) * hidden],
            };
            step_backward(
                x,
                &mut d_projected[row * four_h..(row + 1) * four_h],
                &mut dc_next[b * hidden..(b + 1) * hidden],
            );
        }
        if prev.is_some() {
            // dh_prev = dg_t W_hh: (B x 4H) (4H x H).
            linalg::matmul(
                (batch, hidden, four_h),
                &mut dh_next,
                linalg::rows(hidden),
                false,
                &d_projected[t * four_h..],
                View { row_stride: steps * four_h, col_stride: 1 },
                w_hh,
                linalg::rows(hidden),
                Threads::One,
            );
        }
    }
    // dW_hh = sum over (b, t) of dg[b, t]^T h[b, prev(t)]: one product (4H x BT) (BT x H)
    // against the hidden states shifted by one step (zero where there is no previous step).
    let mut h_prev = vec![0f32; batch * steps * hidden];
    for b in 0..batch {
        for pair in order.windows(2) {
            let (p, t) = (pair[0], pair[1]);
            let (src, dst) = ((b * steps + p) * hidden, (b * steps + t) * hidden);
            h_prev[dst..dst + hidden].copy_from_slice(&saved.hiddens[src..src + hidden]);
        }
    }
    let mut d_w_hh = vec![0f32; four_h * hidden];
    linalg::matmul(
        (four_h, hidden, batch * steps),
        &mut d_w_hh,
        linalg::rows(hidden),
        false,
        &d_projected,
        linalg::transposed(four_h),
        &h_prev,
        linalg::rows(hidden),
        Threads::One,
    );
    let mut d_bias = vec![0f32; four_h];
    for dg in d_projected.chunks_exact(four_h) {
        for (acc, d) in d_bias.iter_mut().zip(dg) {
            *acc += d;
        }
    }
    (d_projected, d_w_hh, d_bias)
}

/// Sequence `b`'s cell state at step `prev` into `out`, or zeros at the first step.
fn previous_cell(cells: &[f32], (b, steps, hidden): (usize, usize, usize), prev: Option<usize>, out: &mut [f32]) {
    match prev {
        Some(p) => out.copy_from_slice(&cells[(b * steps + p) * hidden..(b * steps + p + 1) * hidden]),
        None => out.fill(0.0),
    }
}

/// The fused recurrence as a candle op: inputs `projected` (B, T, 4H), `weight_hh` (4H, H)
/// and `bias` (4H), output (B, T, H).
#[derive(Debug)]
pub struct LstmRecurrence {
    hidden: usize,
    reverse: bool,
    saved: Mutex<Option<(RecurrenceShape, Recurrence)>>,
}

impl LstmRecurrence {
    pub fn new(hidden: usize, reverse: bool) -> LstmRecurrence {
        LstmRecurrence { hidden, reverse, saved: Mutex::new(None) }
    }
}

/// Calls `body(args)` as compiled for AVX2 and FMA when the CPU has them (checked once), so
/// its loops vectorise 8 wide with fused multiply-adds; else as compiled for the baseline.
/// `fn(...)` repeats `body`'s parameters with their types.
macro_rules! with_avx2_fma {
    ($body:ident($($arg:expr),*) as fn($($param:ident: $ty:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if avx2_fma() {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn wide($($param: $ty),*) {
                $body($($param),*)
            }
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            return unsafe { wide($($arg),*) };
        }
        $body($($arg),*)
    }};
}

#[cfg(test)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh` through one `exp`, without branches (saturates through `exp`'s clamp).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// One step's gates of one sequence, in place: sigmoid on i, f and o, tanh on g as
/// `2 sigmoid(2x) - 1`; a flat loop per gate, so each vectorises.
fn activate_gates(gates: &mut [f32], hidden: usize) {
    #[inline(always)]
    fn body(gates: &mut [f32], hidden: usize) {
        for (gate, values) in gates.chunks_exact_mut(hidden).enumerate() {
            let scale = if gate == 2 { 2.0 } else { 1.0 };
            for v in values {
                let s = 1.0 / (1.0 + exp(-scale * *v));
                *v = scale * s - (scale - 1.0);
            }
        }
    }
    with_avx2_fma!(body(gates, hidden) as fn(gates: &mut [f32], hidden: usize))
}

/// The gates of one sequence's step, after their non-linearities, and its previous cell.
struct Cell<'a> {
    i: &'a [f32],
    f: &'a [f32],
    g: &'a [f32],
    o: &'a [f32],
    c_prev: &'a [f32],
}

/// `c = f c_prev + i g`, `h = o tanh(c)`; writes c, tanh(c) and h.
fn update_cell(x: Cell, out: (&mut [f32], &mut [f32], &mut [f32])) {
    #[inline(always)]
    fn body(x: &Cell, (c_out, tc_out, h_out): (&mut [f32], &mut [f32], &mut [f32])) {
        let n = c_out.len();
        let (i, f, g, o, c_prev) = (&x.i[..n], &x.f[..n], &x.g[..n], &x.o[..n], &x.c_prev[..n]);
        let (tc_out, h_out) = (&mut tc_out[..n], &mut h_out[..n]);
        for k in 0..n {
            let c = f[k] * c_prev[k] + i[k] * g[k];
            let tc = tanh(c);
            c_out[k] = c;
            tc_out[k] = tc;
            h_out[k] = o[k] * tc;
        }
    }
    with_avx2_fma!(body(&x, out) as fn(x: &Cell, out: (&mut [f32], &mut [f32], &mut [f32])))
}

/// Gradients of one sequence's step: the gates' pre-activations from `dh` (what reaches h from
/// above and from the next step) and `dc_next`, which becomes the cell's gradient for the
/// step before.
struct StepGrad<'a> {
    gates: &'a [f32],
    c_prev: &'a [f32],
    tanh_c: &'a [f32],
    d_h_out: &'a [f32],
    dh_next: &'a [f32],
}

fn step_backward(x: StepGrad, d_gates: &mut [f32], dc_next: &mut [f32]) {
    #[inline(always)]
    fn body(x: &StepGrad, d_gates: &mut [f32], dc_next: &mut [f32]) {
        let n = dc_next.len();
        let (gi, rest) = x.gates.split_at(n);
        let (gf, rest) = rest.split_at(n);
        let (gg, go) = rest.split_at(n);
        let (di, rest) = d_gates.split_at_mut(n);
        let (df, rest) = rest.split_at_mut(n);
        let (dgg, d_o) = rest.split_at_mut(n);
        let (go, c_prev, tanh_c, d_h_out, dh_next) =
            (&go[..n], &x.c_prev[..n], &x.tanh_c[..n], &x.d_h_out[..n], &x.dh_next[..n]);
        let (d_o, dc_next) = (&mut d_o[..n], &mut dc_next[..n]);
        for k in 0..n {
            let (i, f, g, o) = (gi[k], gf[k], gg[k], go[k]);
            let tc = tanh_c[k];
            let dh = d_h_out[k] + dh_next[k];
            let dc = dh * o * (1.0 - tc * tc) + dc_next[k];
            di[k] = dc * g * i * (1.0 - i);
            df[k] = dc * c_prev[k] * f * (1.0 - f);
            dgg[k] = dc * i * (1.0 - g * g);
            d_o[k] = dh * tc * o * (1.0 - o);
            dc_next[k] = dc * f;
        }
    }
    with_avx2_fma!(body(&x, d_gates, dc_next) as fn(x: &StepGrad, d_gates: &mut [f32], dc_next: &mut [f32]))
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// `e^x` without a libm call, so loops over it vectorise: `x = n ln 2 + r` with `|r| <= ln 2 / 2`,
/// `e^r` by the degree-7 polynomial of Cephes' `expf` (relative error about 1e-7), times `2^n`
/// built in the exponent bits. `x` is clamped to [-87, 88], where `2^n` stays a normal float.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    e_r * f32::from_bits(((n_int + 127) << 23) as u32)
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
        let shape = RecurrenceShape { batch, steps, hidden, reverse: self.reverse };
        let saved = recurrence_forward(shape, projected, w_hh, bias);
        let out = saved.hiddens.clone();
        *self.saved.lock().expect("lstm saved state") = Some((shape, saved));
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
        let saved = self.saved.lock().expect("lstm saved state");
        let Some((shape, saved)) = saved.as_ref() else {
            candle_core::bail!("lstm recurrence: backward called before forward");
        };
        let (batch, steps, four_h) = (shape.batch, shape.steps, 4 * shape.hidden);
        let w_hh = weight_hh.flatten_all()?.to_vec1::<f32>()?;
        let d_out = grad_res.flatten_all()?.to_vec1::<f32>()?;
        let (d_projected, d_w_hh, d_bias) = recurrence_backward(*shape, saved, &w_hh, &d_out);
        let device = projected.device();
        let d_projected = Tensor::from_vec(d_projected, (batch, steps, four_h), device)?;
        let d_w_hh = Tensor::from_vec(d_w_hh, (four_h, shape.hidden), device)?;
        let d_bias = Tensor::from_vec(d_bias, four_h, device)?;
        Ok((Some(d_projected), Some(d_w_hh), Some(d_bias)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_is_accurate_and_saturates() {
        let mut worst = 0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let (got, want) = (super::exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(super::tanh(40.0), 1.0);
        assert_eq!(super::tanh(-40.0), -1.0);
        assert!((super::sigmoid(0.0) - 0.5).abs() < 1e-7);
        assert!(super::sigmoid(-200.0) >= 0.0 && super::sigmoid(200.0) <= 1.0);
    }
}
