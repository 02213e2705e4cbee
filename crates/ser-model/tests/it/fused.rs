//! The hand-written CPU training step gives the candle graph's loss, gradients and BatchNorm
//! statistics: same weights, same dropout masks, same batch.

use candle_core::{D, Device, ModuleT, Tensor};
use ser_model::fused::{BatchShape, LossTerms, Params, train_step};
use ser_model::network::{self, SeededDropout};

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((((i + seed) * 2654435761) % 1000) as f32 / 500.0 - 1.0) * 1.5).collect()
}

fn params(varmap: &candle_nn::VarMap) -> Params {
    let data = varmap.data().lock().unwrap();
    data.iter().map(|(k, v)| (k.clone(), v.flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 2e-4 * scale, "{what}[{i}]: fused {x} vs candle {y} (scale {scale})");
    }
}

/// `frames` odd on purpose: both poolings then drop a step.
fn check(frames: usize, class_weights: Option<Vec<f32>>, mixup: Option<f32>) {
    let mut config = crate::small_config(9);
    config.dropout_conv = 0.25;
    config.dropout_lstm = 0.3;
    config.dropout_dense = 0.4;
    let (batch, coeffs, n_classes) = (5, 7, 8);
    let device = Device::Cpu;
    let (net, varmap) = network::build(&config, coeffs, n_classes, &device).unwrap();
    let before = params(&varmap);
    let x = values(batch * frames * coeffs, frames);
    let own: Vec<u32> = vec![0, 3, 7, 3, 5];
    let other: Vec<u32> = vec![1, 1, 2, 6, 0];
    let terms = match mixup {
        None => vec![(1.0f32, own.clone())],
        Some(l) => vec![(l, own.clone()), (1.0 - l, other.clone())],
    };

    // candle: graph and autograd.
    net.dropout.reseed(77);
    let xs = Tensor::from_vec(x.clone(), (batch, frames, coeffs), &device).unwrap();
    let logits = net.forward_t(&xs, true).unwrap();
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
    let mut loss = Tensor::zeros((), candle_core::DType::F32, &device).unwrap();
    for (coef, targets) in &terms {
        let y = Tensor::from_vec(targets.clone(), batch, &device).unwrap();
        let nll = log_probs.gather(&y.unsqueeze(1).unwrap(), 1).unwrap().squeeze(1).unwrap().neg().unwrap();
        let term = match &class_weights {
            Some(w) => (nll * Tensor::new(w.as_slice(), &device).unwrap().gather(&y, 0).unwrap()).unwrap(),
            None => nll,
        };
        loss = (loss + (term.mean_all().unwrap() * *coef as f64).unwrap()).unwrap();
    }
    let grads = loss.backward().unwrap();
    let after = params(&varmap);

    // The hand-written step, from the weights as they were.
    let dropout = SeededDropout::new(0);
    dropout.reseed(77);
    let shape = BatchShape { batch, frames, coeffs, n_classes };
    let terms = LossTerms { terms, class_weights: class_weights.as_deref() };
    let step = train_step(&config, &before, &x, shape, &terms, &dropout).unwrap();

    assert!((step.loss - loss.to_scalar::<f32>().unwrap()).abs() < 1e-5, "loss");
    assert_close(&step.logits, &logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "logits");
    let data = varmap.data().lock().unwrap();
    let mut trained = 0;
    for (name, var) in data.iter() {
        if name.contains("running_") {
            assert_close(&step.running[name], &after[name], name);
            continue;
        }
        let want = grads.get(var).unwrap_or_else(|| panic!("candle has no gradient for {name}"));
        assert_close(&step.grads[name], &want.flatten_all().unwrap().to_vec1::<f32>().unwrap(), name);
        trained += 1;
    }
    assert_eq!(trained, step.grads.len(), "a gradient for every trained tensor, no more");
}

#[test]
fn fused_step_matches_candle_autograd() {
    check(23, None, None);
}

#[test]
fn fused_step_matches_with_class_weights_and_mixup() {
    check(16, Some(vec![0.5, 1.0, 2.0, 1.5, 0.8, 1.2, 0.9, 3.0]), Some(0.7));
}
