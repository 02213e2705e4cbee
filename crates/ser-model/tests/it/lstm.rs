//! The fused CPU recurrence against step-wise candle ops: outputs and gradients.

use candle_core::{Device, Tensor, Var};
use ser_model::layers::recurrence::{LstmRecurrence, recurrence_stepwise};

fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0) * scale).collect()
}

#[track_caller]
fn assert_close(a: &Tensor, b: &Tensor, tolerance: f32, what: &str) {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= tolerance, "{what}: max |fused - stepwise| = {worst}");
}

#[track_caller]
fn check(batch: usize, steps: usize, hidden: usize, reverse: bool) {
    let device = Device::Cpu;
    let projected =
        Var::from_vec(values(batch * steps * 4 * hidden, 1, 2.0), (batch, steps, 4 * hidden), &device).unwrap();
    let weight_hh = Var::from_vec(values(4 * hidden * hidden, 2, 0.5), (4 * hidden, hidden), &device).unwrap();
    let bias = Var::from_vec(values(4 * hidden, 3, 0.5), 4 * hidden, &device).unwrap();
    // A loss that weights every output differently, so every gradient path matters.
    let weights = Tensor::from_vec(values(batch * steps * hidden, 4, 1.0), (batch, steps, hidden), &device).unwrap();

    let fused = projected.apply_op3(&weight_hh, &bias, LstmRecurrence::new(hidden, reverse)).unwrap();
    let stepwise = recurrence_stepwise(&projected.broadcast_add(&bias).unwrap(), &weight_hh, hidden, reverse).unwrap();
    assert_close(&fused, &stepwise, 1e-5, "outputs");

    let g_fused = (fused * &weights).unwrap().sum_all().unwrap().backward().unwrap();
    let g_step = (stepwise * &weights).unwrap().sum_all().unwrap().backward().unwrap();
    for (var, name) in [(&projected, "d projected"), (&weight_hh, "d weight_hh"), (&bias, "d bias")] {
        assert_close(g_fused.get(var).unwrap(), g_step.get(var).unwrap(), 1e-4, name);
    }
}

#[test]
fn forward_direction_matches_stepwise() {
    check(3, 7, 5, false);
}

#[test]
fn reverse_direction_matches_stepwise() {
    check(3, 7, 5, true);
}

#[test]
fn wider_hidden_with_remainder_lanes() {
    check(2, 4, 13, false);
}

#[test]
fn single_step() {
    check(1, 1, 8, true);
}
